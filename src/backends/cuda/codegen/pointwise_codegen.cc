#include "backends/cuda/codegen/pointwise_codegen.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

#include "common/error.h"

namespace kiln::cuda {

namespace {

using expr::Instr;
using expr::Op;
using expr::Program;

// How a register is held in the generated code. kF: float32/float16/bfloat16 as `float`;
// kD: float64; kI: every integer but uint64 (and bool) as `long long`, like eval.cc's Scalar::i;
// kU: uint64.
enum class Kind { kF, kD, kI, kU };

struct Unsupported {
  std::string why;
};
[[noreturn]] void reject(std::string why) { throw Unsupported{std::move(why)}; }

bool device_type(DataType t) {
  switch (t) {
    case DataType::kFloat: case DataType::kFloat16: case DataType::kBFloat16:
    case DataType::kDouble: case DataType::kInt8: case DataType::kUInt8: case DataType::kInt16:
    case DataType::kUInt16: case DataType::kInt32: case DataType::kUInt32: case DataType::kInt64:
    case DataType::kUInt64: case DataType::kBool:
      return true;
    default:
      return false;
  }
}

Kind kind_of(DataType t) {
  switch (t) {
    case DataType::kFloat: case DataType::kFloat16: case DataType::kBFloat16: return Kind::kF;
    case DataType::kDouble: return Kind::kD;
    case DataType::kUInt64: return Kind::kU;
    default: return Kind::kI;
  }
}
bool is_float(Kind k) { return k == Kind::kF || k == Kind::kD; }

const char* ctype(Kind k) {
  switch (k) {
    case Kind::kF: return "float";
    case Kind::kD: return "double";
    case Kind::kI: return "long long";
    case Kind::kU: return "unsigned long long";
  }
  return "";
}

// The suffix of the preamble's load/store helpers and the storage type in memory.
const char* tag(DataType t) {
  switch (t) {
    case DataType::kFloat: return "f32";
    case DataType::kFloat16: return "f16";
    case DataType::kBFloat16: return "bf16";
    case DataType::kDouble: return "f64";
    case DataType::kInt8: return "i8";
    case DataType::kUInt8: return "u8";
    case DataType::kInt16: return "i16";
    case DataType::kUInt16: return "u16";
    case DataType::kInt32: return "i32";
    case DataType::kUInt32: return "u32";
    case DataType::kInt64: return "i64";
    case DataType::kUInt64: return "u64";
    case DataType::kBool: return "b8";
    default: reject(cat("type ", dtype_name(t), " has no device representation"));
  }
}
const char* storage(DataType t) {
  switch (t) {
    case DataType::kFloat: return "float";
    case DataType::kFloat16: case DataType::kBFloat16: case DataType::kUInt16:
      return "unsigned short";
    case DataType::kDouble: return "double";
    case DataType::kInt8: return "signed char";
    case DataType::kUInt8: case DataType::kBool: return "unsigned char";
    case DataType::kInt16: return "short";
    case DataType::kInt32: return "int";
    case DataType::kUInt32: return "unsigned int";
    case DataType::kInt64: return "long long";
    case DataType::kUInt64: return "unsigned long long";
    default: reject(cat("type ", dtype_name(t), " has no device representation"));
  }
}
const char* vector_type(size_t bytes) {
  switch (bytes) {
    case 1: return "unsigned char";
    case 2: return "unsigned short";
    case 4: return "unsigned int";
    case 8: return "kiln_v8";
    case 16: return "kiln_v16";
    default: KILN_CHECK(false, "vector of ", bytes, " bytes");
  }
  return "";
}

// Helpers every module shares. No #include: NVRTC has no cuda_fp16.h of its own (CUDA 13), and a
// plan must not depend on headers on the machine that loads it. float16 goes through the PTX
// conversion instructions; bfloat16 is done on the bits, exactly as common/half.h does it.
constexpr const char* kPreamble = R"(
struct __align__(8) kiln_v8 { unsigned int x, y; };
struct __align__(16) kiln_v16 { unsigned int x, y, z, w; };

#define KILN_INF_F __int_as_float(0x7f800000)
#define KILN_INF_D __longlong_as_double(0x7ff0000000000000ll)

__device__ __forceinline__ float kiln_h2f(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
__device__ __forceinline__ unsigned short kiln_f2h(float f) {
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
__device__ __forceinline__ float kiln_bf2f(unsigned short b) {
  return __uint_as_float(((unsigned int)b) << 16);
}
__device__ __forceinline__ unsigned short kiln_f2bf(float f) {
  unsigned int x = __float_as_uint(f);
  if (f != f) return (unsigned short)((x >> 16) | 0x40u);
  return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ float kiln_rnd_f16(float f) { return kiln_h2f(kiln_f2h(f)); }
__device__ __forceinline__ float kiln_rnd_bf16(float f) { return kiln_bf2f(kiln_f2bf(f)); }

// eval.cc f2i/f2u: NaN gives 0, out-of-range values saturate to the 64-bit range.
__device__ __forceinline__ long long kiln_f2i(double v) {
  if (v != v) return 0;
  if (v >= 9.2233720368547758e18) return 0x7fffffffffffffffll;
  if (v <= -9.2233720368547758e18) return (long long)0x8000000000000000ull;
  return (long long)v;
}
__device__ __forceinline__ unsigned long long kiln_f2u(double v) {
  if (v != v || v <= 0) return v <= -1 ? (unsigned long long)kiln_f2i(v) : 0ull;
  if (v >= 1.8446744073709552e19) return 0xffffffffffffffffull;
  return (unsigned long long)v;
}

// Integer arithmetic of eval.cc without C++'s undefined cases: wrapping through uint64,
// x / 0 == x % 0 == 0, x / -1 == -x, shifts by 64 or more (or negative) give 0.
__device__ __forceinline__ long long kiln_iadd(long long a, long long b) {
  return (long long)((unsigned long long)a + (unsigned long long)b);
}
__device__ __forceinline__ long long kiln_isub(long long a, long long b) {
  return (long long)((unsigned long long)a - (unsigned long long)b);
}
__device__ __forceinline__ long long kiln_imul(long long a, long long b) {
  return (long long)((unsigned long long)a * (unsigned long long)b);
}
__device__ __forceinline__ long long kiln_ineg(long long a) {
  return (long long)(0ull - (unsigned long long)a);
}
__device__ __forceinline__ long long kiln_idiv(long long a, long long b) {
  return b ? (b == -1 ? kiln_ineg(a) : a / b) : 0ll;
}
__device__ __forceinline__ long long kiln_ifmod(long long a, long long b) {
  return b ? (b == -1 ? 0ll : a % b) : 0ll;
}
__device__ __forceinline__ long long kiln_imod(long long a, long long b) {
  if (!b) return 0;
  long long m = b == -1 ? 0ll : a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}
__device__ __forceinline__ long long kiln_ishl(long long a, long long b) {
  return (b < 0 || b >= 64) ? 0ll : (long long)((unsigned long long)a << b);
}
__device__ __forceinline__ long long kiln_ishr(long long a, long long b) {
  return (b < 0 || b >= 64) ? 0ll : (a >> b);
}
__device__ __forceinline__ long long kiln_ishr_u(long long a, long long b) {
  return (b < 0 || b >= 64) ? 0ll : (long long)((unsigned long long)a >> b);
}
__device__ __forceinline__ unsigned long long kiln_upow(unsigned long long b,
                                                        unsigned long long e) {
  unsigned long long r = 1;
  while (e > 0) {
    if (e & 1) r *= b;
    b *= b;
    e >>= 1;
  }
  return r;
}
__device__ __forceinline__ long long kiln_ipow(long long a, long long b) {
  if (b < 0) return kiln_f2i(pow((double)a, (double)b));
  return (long long)kiln_upow((unsigned long long)a, (unsigned long long)b);
}
__device__ __forceinline__ long long kiln_ipow_f(long long a, double e) {
  if (e == floor(e) && e >= 0 && e < 64) return kiln_ipow(a, (long long)e);
  return kiln_f2i(pow((double)a, e));
}
__device__ __forceinline__ float kiln_fmod_floor(float a, float b) {
  float v = fmodf(a, b);
  if (v != 0 && ((v < 0) != (b < 0))) v += b;
  return v;
}
__device__ __forceinline__ double kiln_fmod_floor(double a, double b) {
  double v = fmod(a, b);
  if (v != 0 && ((v < 0) != (b < 0))) v += b;
  return v;
}

// Storage <-> register conversions, one pair per dtype (kiln_cv_*: loaded element to register,
// kiln_en_*: register to the element stored).
#define KILN_IO(T, S, R, CV, EN)                                                   \
  __device__ __forceinline__ R kiln_cv_##T(S s) { return CV; }                     \
  __device__ __forceinline__ S kiln_en_##T(R r) { return EN; }                     \
  template <class I> __device__ __forceinline__ R kiln_ld_##T(const void* p, I i) { \
    return kiln_cv_##T(((const S*)p)[i]);                                          \
  }                                                                                \
  template <class I> __device__ __forceinline__ void kiln_st_##T(void* p, I i, R r) { \
    ((S*)p)[i] = kiln_en_##T(r);                                                   \
  }
KILN_IO(f32, float, float, s, r)
KILN_IO(f16, unsigned short, float, kiln_h2f(s), kiln_f2h(r))
KILN_IO(bf16, unsigned short, float, kiln_bf2f(s), kiln_f2bf(r))
KILN_IO(f64, double, double, s, r)
KILN_IO(i8, signed char, long long, (long long)s, (signed char)r)
KILN_IO(u8, unsigned char, long long, (long long)s, (unsigned char)r)
KILN_IO(i16, short, long long, (long long)s, (short)r)
KILN_IO(u16, unsigned short, long long, (long long)s, (unsigned short)r)
KILN_IO(i32, int, long long, (long long)s, (int)r)
KILN_IO(u32, unsigned int, long long, (long long)s, (unsigned int)r)
KILN_IO(i64, long long, long long, s, r)
KILN_IO(u64, unsigned long long, unsigned long long, s, r)
KILN_IO(b8, unsigned char, long long, (long long)(s != 0), (unsigned char)(r != 0))
)";

// Built with cat(): GCC 12 at -O3 warns falsely (-Wrestrict) about "literal" + std::string&&.
std::string reg(int32_t r) { return cat("r", r); }

std::string hex64(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%016" PRIx64 "ull", v);
  return b;
}

class Generator {
 public:
  Generator(const Program& p, int rank) : p_(p), rank_(rank) {}

  PointwiseSource run() {
    if (rank_ < 0 || rank_ > kPointwiseMaxRank)
      reject(cat("rank ", rank_, " exceeds the generated kernels' ", kPointwiseMaxRank));
    if (p_.outputs.empty()) reject("the program has no outputs");
    for (DataType t : p_.input_types)
      if (!device_type(t)) reject(cat("input type ", dtype_name(t), " is not a device type"));
    for (size_t r = 0; r < p_.code.size(); ++r)
      if (!device_type(p_.code[r].dtype))
        reject(cat("register r", r, " has type ", dtype_name(p_.code[r].dtype),
                   ", which is not a device type"));
    for (int32_t o : p_.outputs)
      if (o < 0 || static_cast<size_t>(o) >= p_.code.size()) reject("output register out of range");

    PointwiseSource s;
    s.max_rank = std::max(1, rank_);
    s.vec = pointwise_vector_width(p_);
    s.layout.max_rank = static_cast<size_t>(s.max_rank);
    s.layout.inputs = p_.input_types.size();
    s.layout.outputs = p_.outputs.size();
    if (s.layout.bytes() > kPointwiseMaxParamBytes)
      reject(cat("the kernel parameters for ", s.layout.inputs, " inputs and ", s.layout.outputs,
                 " outputs exceed ", kPointwiseMaxParamBytes, " bytes"));

    std::ostringstream os;
    os << "// kiln pointwise module (generated).\n// program: " << p_.str() << "\n";
    os << kPreamble;
    os << "\n#define KILN_R " << s.max_rank << "\n#define KILN_V " << s.vec << "\n";
    const size_t nin = p_.input_types.size(), nis = s.layout.input_slots(),
                 nout = p_.outputs.size();
    os << "struct KilnPwParams {\n"
       << "  long long numel;\n  long long rank;\n  long long dims[KILN_R];\n"
       << "  long long strides[" << nis << "][KILN_R];\n"
       << "  long long step[" << nis << "];\n"
       << "  const void* in[" << nis << "];\n"
       << "  void* out[" << nout << "];\n};\n\n";

    // The program: inputs in register types -> outputs in register types.
    os << "__device__ __forceinline__ void kiln_program(";
    for (size_t k = 0; k < nin; ++k)
      os << (k ? ", " : "") << ctype(kind_of(p_.input_types[k])) << " x" << k;
    for (size_t k = 0; k < nout; ++k)
      os << (k || nin ? ", " : "") << ctype(kind_of(out_type(k))) << "& y" << k;
    os << ") {\n";
    for (size_t r = 0; r < p_.code.size(); ++r) {
      const Instr& in = p_.code[r];
      os << "  const " << ctype(kind_of(in.dtype)) << " " << reg(static_cast<int32_t>(r)) << " = "
         << instr(static_cast<int32_t>(r)) << ";  // " << expr::op_name(in.op) << " "
         << dtype_name(in.dtype) << "\n";
    }
    for (size_t k = 0; k < nout; ++k) os << "  y" << k << " = " << reg(p_.outputs[k]) << ";\n";
    os << "}\n\n";

    // One element: load the inputs at their offsets, run, store at the output index.
    os << "template <class I>\n__device__ __forceinline__ void kiln_element(const KilnPwParams& p, "
          "I i";
    for (size_t k = 0; k < nin; ++k) os << ", I o" << k;
    os << ") {\n";
    for (size_t k = 0; k < nout; ++k)
      os << "  " << ctype(kind_of(out_type(k))) << " y" << k << ";\n";
    os << "  kiln_program(";
    for (size_t k = 0; k < nin; ++k)
      os << (k ? ", " : "") << "kiln_ld_" << tag(p_.input_types[k]) << "(p.in[" << k << "], o" << k
         << ")";
    for (size_t k = 0; k < nout; ++k) os << (k || nin ? ", " : "") << "y" << k;
    os << ");\n";
    for (size_t k = 0; k < nout; ++k)
      os << "  kiln_st_" << tag(out_type(k)) << "(p.out[" << k << "], i, y" << k << ");\n";
    os << "}\n\n";

    // Flat: every input is full-size (step 1) or a scalar (step 0).
    os << "extern \"C\" __global__ void __launch_bounds__(" << kPointwiseBlock
       << ") kiln_pw_flat(const KilnPwParams p) {\n"
       << "  const long long n = p.numel;\n"
       << "  const long long stride = (long long)gridDim.x * blockDim.x;\n"
       << "  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; "
          "i += stride)\n"
       << "    kiln_element<long long>(p, i" << flat_offsets("i") << ");\n}\n\n";

    // Vectorized flat: KILN_V elements per thread, one vector access per full operand.
    os << "extern \"C\" __global__ void __launch_bounds__(" << kPointwiseBlock
       << ") kiln_pw_vec(const KilnPwParams p) {\n"
       << "  const long long n = p.numel, nv = n / KILN_V;\n"
       << "  const long long stride = (long long)gridDim.x * blockDim.x;\n"
       << "  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
       << "  for (long long v = t; v < nv; v += stride) {\n"
       << "    const long long base = v * KILN_V;\n";
    for (size_t k = 0; k < nin; ++k) {
      DataType t = p_.input_types[k];
      const char* rt = ctype(kind_of(t));
      os << "    " << rt << " a" << k << "[KILN_V];\n"
         << "    if (p.step[" << k << "]) {\n"
         << "      union { " << vector_type(dtype_size(t) * s.vec) << " v; " << storage(t)
         << " e[KILN_V]; } u;\n"
         << "      u.v = *(const " << vector_type(dtype_size(t) * s.vec) << "*)((const "
         << storage(t) << "*)p.in[" << k << "] + base);\n"
         << "#pragma unroll\n"
         << "      for (int e = 0; e < KILN_V; ++e) a" << k << "[e] = kiln_cv_" << tag(t)
         << "(u.e[e]);\n"
         << "    } else {\n"
         << "      const " << rt << " s = kiln_ld_" << tag(t) << "(p.in[" << k << "], 0ll);\n"
         << "#pragma unroll\n"
         << "      for (int e = 0; e < KILN_V; ++e) a" << k << "[e] = s;\n"
         << "    }\n";
    }
    for (size_t k = 0; k < nout; ++k) {
      DataType t = out_type(k);
      os << "    union { " << vector_type(dtype_size(t) * s.vec) << " v; " << storage(t)
         << " e[KILN_V]; } w" << k << ";\n";
    }
    os << "#pragma unroll\n    for (int e = 0; e < KILN_V; ++e) {\n";
    for (size_t k = 0; k < nout; ++k)
      os << "      " << ctype(kind_of(out_type(k))) << " y" << k << ";\n";
    os << "      kiln_program(";
    for (size_t k = 0; k < nin; ++k) os << (k ? ", " : "") << "a" << k << "[e]";
    for (size_t k = 0; k < nout; ++k) os << (k || nin ? ", " : "") << "y" << k;
    os << ");\n";
    for (size_t k = 0; k < nout; ++k)
      os << "      w" << k << ".e[e] = kiln_en_" << tag(out_type(k)) << "(y" << k << ");\n";
    os << "    }\n";
    for (size_t k = 0; k < nout; ++k) {
      DataType t = out_type(k);
      os << "    *(" << vector_type(dtype_size(t) * s.vec) << "*)((" << storage(t) << "*)p.out["
         << k << "] + base) = w" << k << ".v;\n";
    }
    os << "  }\n"
       << "  for (long long i = nv * KILN_V + t; i < n; i += stride)\n"
       << "    kiln_element<long long>(p, i" << flat_offsets("i") << ");\n}\n\n";

    // Strided: the output index decomposed over the (coalesced) dims, innermost last.
    os << "template <class I>\n__device__ __forceinline__ void kiln_strided(const KilnPwParams& p) "
          "{\n"
       << "  const I n = (I)p.numel;\n"
       << "  const int first = KILN_R - (int)p.rank;\n"
       << "  const I stride = (I)gridDim.x * (I)blockDim.x;\n"
       << "  for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < n; i += stride) {\n"
       << "    I rem = i;\n";
    for (size_t k = 0; k < nin; ++k) os << "    I o" << k << " = 0;\n";
    os << "#pragma unroll\n"
       << "    for (int d = KILN_R - 1; d >= 0; --d) {\n"
       << "      if (d >= first) {\n"
       << "        const I dim = (I)p.dims[d];\n"
       << "        const I q = d == first ? (I)0 : rem / dim;\n"
       << "        const I c = rem - q * dim;\n"
       << "        rem = q;\n";
    for (size_t k = 0; k < nin; ++k)
      os << "        o" << k << " += c * (I)p.strides[" << k << "][d];\n";
    os << "      }\n    }\n"
       << "    kiln_element<I>(p, i";
    for (size_t k = 0; k < nin; ++k) os << ", o" << k;
    os << ");\n  }\n}\n\n"
       << "extern \"C\" __global__ void __launch_bounds__(" << kPointwiseBlock
       << ") kiln_pw_strided32(const KilnPwParams p) { kiln_strided<unsigned int>(p); }\n"
       << "extern \"C\" __global__ void __launch_bounds__(" << kPointwiseBlock
       << ") kiln_pw_strided64(const KilnPwParams p) { kiln_strided<long long>(p); }\n";
    s.source = os.str();
    return s;
  }

 private:
  DataType out_type(size_t k) const { return p_.code[p_.outputs[k]].dtype; }

  std::string flat_offsets(const char* i) const {
    std::string s;
    for (size_t k = 0; k < p_.input_types.size(); ++k)
      s += cat(", ", i, " * p.step[", k, "]");
    return s;
  }

  const Instr& operand(int32_t r, int32_t x, const char* which) const {
    if (x < 0 || x >= r) reject(cat("r", r, ": operand ", which, " is not an earlier register"));
    return p_.code[x];
  }

  // A float register's value in the compute type (float or double).
  static std::string as_ct(int32_t x, Kind k, bool dbl) {
    if (dbl) return k == Kind::kD ? reg(x) : "(double)" + reg(x);
    return reg(x);  // kF in a float computation
  }

  // A value computed in float or double, rounded to float dtype t (eval.cc round_float).
  static std::string round_to(DataType t, const std::string& e, bool dbl) {
    switch (t) {
      case DataType::kFloat: return dbl ? "(float)(" + e + ")" : e;
      case DataType::kFloat16: return "kiln_rnd_f16((float)(" + e + "))";
      case DataType::kBFloat16: return "kiln_rnd_bf16((float)(" + e + "))";
      case DataType::kDouble: return "(double)(" + e + ")";
      default: KILN_CHECK(false, "round_to ", dtype_name(t));
    }
    return "";
  }

  // An int64 value wrapped to integer dtype t (eval.cc wrap_int), as the register type of t.
  static std::string wrap(DataType t, const std::string& e) {
    switch (t) {
      case DataType::kInt8: return "(long long)(signed char)(" + e + ")";
      case DataType::kUInt8: return "(long long)(unsigned char)(" + e + ")";
      case DataType::kInt16: return "(long long)(short)(" + e + ")";
      case DataType::kUInt16: return "(long long)(unsigned short)(" + e + ")";
      case DataType::kInt32: return "(long long)(int)(" + e + ")";
      case DataType::kUInt32: return "(long long)(unsigned int)(" + e + ")";
      case DataType::kBool: return "(long long)((" + e + ") != 0)";
      case DataType::kUInt64: return "(unsigned long long)(" + e + ")";
      default: return "(long long)(" + e + ")";
    }
  }

  // A uint64 value held in the register type of integer dtype t (eval.cc writes r.u; no wrap).
  static std::string as_int_reg(DataType t, const std::string& e) {
    return kind_of(t) == Kind::kU ? "(" + e + ")" : "(long long)(" + e + ")";
  }

  static std::string truth(int32_t x) { return cat("(r", x, " != 0)"); }

  // eval.cc apply_f_unary in float (f suffix) or double.
  static std::string f_unary(Op op, const std::string& x, bool dbl) {
    const std::string f = dbl ? "" : "f";
    const std::string one = dbl ? "1.0" : "1.0f", zero = dbl ? "0.0" : "0.0f",
                      ct = dbl ? "double" : "float";
    auto fn = [&](const char* name) { return std::string(name) + f + "(" + x + ")"; };
    switch (op) {
      case Op::kNeg: return "(-" + x + ")";
      case Op::kAbs: return fn("fabs");
      case Op::kSign:
        return "(" + x + " != " + x + " ? " + x + " : (" + ct + ")((" + x + " > 0) - (" + x +
               " < 0)))";
      case Op::kExp: return fn("exp");
      case Op::kLog: return fn("log");
      case Op::kSqrt: return fn("sqrt");
      case Op::kRsqrt: return "(" + one + " / " + fn("sqrt") + ")";
      case Op::kReciprocal: return "(" + one + " / " + x + ")";
      case Op::kSin: return fn("sin");
      case Op::kCos: return fn("cos");
      case Op::kTan: return fn("tan");
      case Op::kAsin: return fn("asin");
      case Op::kAcos: return fn("acos");
      case Op::kAtan: return fn("atan");
      case Op::kSinh: return fn("sinh");
      case Op::kCosh: return fn("cosh");
      case Op::kTanh: return fn("tanh");
      case Op::kAsinh: return fn("asinh");
      case Op::kAcosh: return fn("acosh");
      case Op::kAtanh: return fn("atanh");
      case Op::kErf: return fn("erf");
      case Op::kFloor: return fn("floor");
      case Op::kCeil: return fn("ceil");
      case Op::kRound: return fn("rint");  // half to even, as nearbyint in the reference
      case Op::kSigmoid: return "(" + one + " / (" + one + " + exp" + f + "(-" + x + ")))";
      case Op::kSoftplus:
        return "(" + x + " > (" + ct + ")30 ? " + x + " : log1p" + f + "(exp" + f + "(" + x +
               ")))";
      case Op::kRelu:
        return "(" + x + " > " + zero + " ? " + x + " : (" + x + " != " + x + " ? " + x + " : " +
               zero + "))";
      default: reject(cat("op ", expr::op_name(op), " is not a float unary op"));
    }
  }

  std::string constant(const Instr& in) const {
    switch (kind_of(in.dtype)) {
      case Kind::kF: {
        float f = static_cast<float>(in.fconst);
        uint32_t u;
        std::memcpy(&u, &f, 4);
        char b[64];
        std::snprintf(b, sizeof b, "__int_as_float(0x%08x) /* %.9g */", u, f);
        return b;
      }
      case Kind::kD: {
        uint64_t u;
        std::memcpy(&u, &in.fconst, 8);
        char b[96];
        std::snprintf(b, sizeof b, "__longlong_as_double((long long)0x%016" PRIx64 "ull) /* %.17g */",
                      u, in.fconst);
        return b;
      }
      case Kind::kI: return "(long long)" + hex64(static_cast<uint64_t>(in.iconst));
      case Kind::kU: return hex64(static_cast<uint64_t>(in.iconst));
    }
    return "";
  }

  std::string cast(int32_t a, DataType from, DataType to) const {
    Kind kf = kind_of(from);
    if (to == DataType::kBool) return "(long long)" + truth(a);
    if (kind_of(to) == Kind::kF || kind_of(to) == Kind::kD) {
      if (is_float(kf)) {
        bool dbl = kf == Kind::kD || to == DataType::kDouble;
        return round_to(to, as_ct(a, kf, dbl), dbl);
      }
      // Integers convert through double first (as the reference does), then round.
      return round_to(to, "(double)" + reg(a), true);
    }
    if (kind_of(to) == Kind::kU)
      return is_float(kf) ? "kiln_f2u((double)" + reg(a) + ")" : "(unsigned long long)" + reg(a);
    return wrap(to, is_float(kf) ? "kiln_f2i((double)" + reg(a) + ")" : reg(a));
  }

  std::string unary(int32_t r, const Instr& in) const {
    const Instr& ia = operand(r, in.a, "a");
    const DataType ta = ia.dtype, t = in.dtype;
    const Kind ka = kind_of(ta);
    const std::string x = reg(in.a);
    switch (in.op) {
      case Op::kCast: return cast(in.a, ta, t);
      case Op::kNot: return "(long long)(" + x + " == 0)";
      case Op::kIsNaN: return is_float(ka) ? "(long long)(" + x + " != " + x + ")" : "0ll";
      case Op::kIsPosInf:
        return is_float(ka) ? "(long long)(" + x + " == " + (ka == Kind::kD ? "KILN_INF_D" : "KILN_INF_F") + ")"
                            : "0ll";
      case Op::kIsNegInf:
        return is_float(ka) ? "(long long)(" + x + " == -" + (ka == Kind::kD ? "KILN_INF_D" : "KILN_INF_F") + ")"
                            : "0ll";
      case Op::kBitNot:
        if (ka == Kind::kU) return as_int_reg(t, "~" + x);
        if (ka == Kind::kI) return wrap(t, "~" + x);
        reject("bitwise not of a float");
      default: break;
    }
    if (is_float(ka)) {
      if (!dtype_is_float(t))
        reject(cat(expr::op_name(in.op), " of a float with integer result type ", dtype_name(t)));
      bool dbl = ka == Kind::kD || t == DataType::kDouble;
      return round_to(t, f_unary(in.op, as_ct(in.a, ka, dbl), dbl), dbl);
    }
    if (dtype_is_float(t))
      reject(cat(expr::op_name(in.op), " of an integer with float result type ", dtype_name(t)));
    if (ka == Kind::kU) {
      switch (in.op) {
        case Op::kNeg: return as_int_reg(t, "0ull - " + x);
        case Op::kAbs: case Op::kFloor: case Op::kCeil: case Op::kRound: case Op::kRelu:
          return as_int_reg(t, x);
        case Op::kSign: return as_int_reg(t, "(unsigned long long)(" + x + " > 0)");
        default:
          return as_int_reg(t, "kiln_f2u(" + f_unary(in.op, "(double)" + x, true) + ")");
      }
    }
    // kI: eval.cc writes r.i; as a uint64 register those are the same bits.
    auto as_reg = [&](const std::string& e) {
      return kind_of(t) == Kind::kU ? "(unsigned long long)(" + e + ")" : "(long long)(" + e + ")";
    };
    switch (in.op) {
      case Op::kNeg: return wrap(t, "kiln_ineg(" + x + ")");
      case Op::kAbs: return wrap(t, "(" + x + " < 0 ? kiln_ineg(" + x + ") : " + x + ")");
      case Op::kSign: return as_reg("(" + x + " > 0) - (" + x + " < 0)");
      case Op::kFloor: case Op::kCeil: case Op::kRound: return as_reg(x);
      case Op::kRelu: return as_reg(x + " > 0 ? " + x + " : 0ll");
      default: return wrap(t, "kiln_f2i(" + f_unary(in.op, "(double)" + x, true) + ")");
    }
  }

  std::string binary(int32_t r, const Instr& in) const {
    const Instr& ia = operand(r, in.a, "a");
    const Instr& ib = operand(r, in.b, "b");
    const DataType ta = ia.dtype, tb = ib.dtype, t = in.dtype;
    const Kind ka = kind_of(ta), kb = kind_of(tb);
    const std::string a = reg(in.a), b = reg(in.b);
    const char* cmp = nullptr;
    switch (in.op) {
      case Op::kEq: cmp = "=="; break;
      case Op::kNe: cmp = "!="; break;
      case Op::kLt: cmp = "<"; break;
      case Op::kLe: cmp = "<="; break;
      case Op::kGt: cmp = ">"; break;
      case Op::kGe: cmp = ">="; break;
      default: break;
    }
    if (cmp) {
      if (is_float(ka) != is_float(kb))
        reject(cat("comparison of ", dtype_name(ta), " with ", dtype_name(tb)));
      if (is_float(ka)) {
        bool dbl = ka == Kind::kD || kb == Kind::kD;
        return "(long long)(" + as_ct(in.a, ka, dbl) + " " + cmp + " " + as_ct(in.b, kb, dbl) + ")";
      }
      const char* it = ka == Kind::kU ? "(unsigned long long)" : "(long long)";
      return "(long long)(" + std::string(it) + a + " " + cmp + " " + it + b + ")";
    }
    if (in.op == Op::kAnd) return "(long long)(" + truth(in.a) + " && " + truth(in.b) + ")";
    if (in.op == Op::kOr) return "(long long)(" + truth(in.a) + " || " + truth(in.b) + ")";
    if (in.op == Op::kXor) return "(long long)(" + truth(in.a) + " != " + truth(in.b) + ")";

    if (is_float(ka)) {
      if (!dtype_is_float(t))
        reject(cat(expr::op_name(in.op), " of a float with integer result type ", dtype_name(t)));
      bool dbl = ka == Kind::kD || kb == Kind::kD || !is_float(kb) || t == DataType::kDouble;
      std::string A = as_ct(in.a, ka, dbl);
      std::string B = is_float(kb) ? as_ct(in.b, kb, dbl) : "(double)" + b;
      const std::string f = dbl ? "" : "f";
      std::string v;
      switch (in.op) {
        case Op::kAdd: v = "(" + A + " + " + B + ")"; break;
        case Op::kSub: v = "(" + A + " - " + B + ")"; break;
        case Op::kMul: v = "(" + A + " * " + B + ")"; break;
        case Op::kDiv: v = "(" + A + " / " + B + ")"; break;
        case Op::kPow: v = "pow" + f + "(" + A + ", " + B + ")"; break;
        case Op::kMin:
          v = "((" + A + " != " + A + " || " + B + " != " + B + ") ? (" + A + " + " + B + ") : (" +
              B + " < " + A + " ? " + B + " : " + A + "))";
          break;
        case Op::kMax:
          v = "((" + A + " != " + A + " || " + B + " != " + B + ") ? (" + A + " + " + B + ") : (" +
              A + " < " + B + " ? " + B + " : " + A + "))";
          break;
        case Op::kFMod: v = "fmod" + f + "(" + A + ", " + B + ")"; break;
        case Op::kMod: v = "kiln_fmod_floor(" + A + ", " + B + ")"; break;
        default: reject(cat(expr::op_name(in.op), " of floats"));
      }
      return round_to(t, v, dbl);
    }
    if (dtype_is_float(t))
      reject(cat(expr::op_name(in.op), " of integers with float result type ", dtype_name(t)));
    if (ka == Kind::kU) {
      if (is_float(kb)) reject(cat(expr::op_name(in.op), " of uint64 and ", dtype_name(tb)));
      const std::string B = kb == Kind::kU ? b : "(unsigned long long)" + b;
      std::string v;
      switch (in.op) {
        case Op::kAdd: v = a + " + " + B; break;
        case Op::kSub: v = a + " - " + B; break;
        case Op::kMul: v = a + " * " + B; break;
        case Op::kDiv: v = B + " ? " + a + " / " + B + " : 0ull"; break;
        case Op::kPow: v = "kiln_upow(" + a + ", " + B + ")"; break;
        case Op::kMin: v = B + " < " + a + " ? " + B + " : " + a; break;
        case Op::kMax: v = a + " < " + B + " ? " + B + " : " + a; break;
        case Op::kMod: case Op::kFMod: v = B + " ? " + a + " % " + B + " : 0ull"; break;
        case Op::kBitAnd: v = a + " & " + B; break;
        case Op::kBitOr: v = a + " | " + B; break;
        case Op::kBitXor: v = a + " ^ " + B; break;
        case Op::kShl: v = B + " >= 64 ? 0ull : " + a + " << " + B; break;
        case Op::kShr: v = B + " >= 64 ? 0ull : " + a + " >> " + B; break;
        default: reject(cat(expr::op_name(in.op), " of uint64"));
      }
      return as_int_reg(t, v);
    }
    // kI: b as int64 (a float b truncates, eval.cc f2i; a uint64 b is reinterpreted).
    const std::string B = is_float(kb) ? "kiln_f2i((double)" + b + ")" : "(long long)" + b;
    std::string v;
    switch (in.op) {
      case Op::kAdd: v = "kiln_iadd(" + a + ", " + B + ")"; break;
      case Op::kSub: v = "kiln_isub(" + a + ", " + B + ")"; break;
      case Op::kMul: v = "kiln_imul(" + a + ", " + B + ")"; break;
      case Op::kDiv: v = "kiln_idiv(" + a + ", " + B + ")"; break;
      case Op::kPow:
        // CUDA's pow is within 2 ulp, not exact: pow(3.0, 1.0) may truncate to 2. An integral
        // exponent takes the exact integer power, as glibc's correctly rounded pow gives.
        v = is_float(kb) ? "kiln_ipow_f(" + a + ", (double)" + b + ")"
                         : "kiln_ipow(" + a + ", " + B + ")";
        break;
      case Op::kMin: v = "(" + B + " < " + a + " ? " + B + " : " + a + ")"; break;
      case Op::kMax: v = "(" + a + " < " + B + " ? " + B + " : " + a + ")"; break;
      case Op::kFMod: v = "kiln_ifmod(" + a + ", " + B + ")"; break;
      case Op::kMod: v = "kiln_imod(" + a + ", " + B + ")"; break;
      case Op::kBitAnd: v = "(" + a + " & " + B + ")"; break;
      case Op::kBitOr: v = "(" + a + " | " + B + ")"; break;
      case Op::kBitXor: v = "(" + a + " ^ " + B + ")"; break;
      case Op::kShl: v = "kiln_ishl(" + a + ", " + B + ")"; break;
      case Op::kShr:
        v = (dtype_is_unsigned_int(ta) ? "kiln_ishr_u(" : "kiln_ishr(") + a + ", " + B + ")";
        break;
      default: reject(cat(expr::op_name(in.op), " of integers"));
    }
    return wrap(t, v);
  }

  std::string select(int32_t r, const Instr& in) const {
    operand(r, in.a, "condition");
    const Instr& ib = operand(r, in.b, "b");
    const Instr& ic = operand(r, in.c, "c");
    Kind kb = kind_of(ib.dtype), kc = kind_of(ic.dtype), kt = kind_of(in.dtype);
    // eval.cc copies the register union of either branch: a value of another kind would be
    // reinterpreted (float vs double, float vs integer). Integer kinds share bits; float32, 16
    // and bf16 share `float`.
    auto same = [](Kind x, Kind y) { return x == y || (!is_float(x) && !is_float(y)); };
    if (!same(kb, kc) || !same(kb, kt))
      reject(cat("select between ", dtype_name(ib.dtype), " and ", dtype_name(ic.dtype), " as ",
                 dtype_name(in.dtype)));
    const std::string t = ctype(kt);
    return "(" + truth(in.a) + " ? (" + t + ")" + reg(in.b) + " : (" + t + ")" + reg(in.c) + ")";
  }

  std::string instr(int32_t r) const {
    const Instr& in = p_.code[r];
    if (in.op >= Op::kCount) reject(cat("r", r, ": unknown op"));
    switch (in.op) {
      case Op::kInput:
        if (in.a < 0 || static_cast<size_t>(in.a) >= p_.input_types.size())
          reject(cat("r", r, ": input ", in.a, " out of range"));
        if (p_.input_types[in.a] != in.dtype)
          reject(cat("r", r, ": input ", in.a, " is ", dtype_name(p_.input_types[in.a]),
                     " but the register is ", dtype_name(in.dtype)));
        return "x" + std::to_string(in.a);
      case Op::kConst: return constant(in);
      case Op::kSelect: return select(r, in);
      default: break;
    }
    int ar = expr::op_arity(in.op);
    if (ar == 1) return unary(r, in);
    if (ar == 2) return binary(r, in);
    reject(cat("r", r, ": op ", expr::op_name(in.op)));
  }

  const Program& p_;
  int rank_;
};

}  // namespace

int pointwise_vector_width(const Program& p) {
  size_t widest = 1;
  for (DataType t : p.input_types) widest = std::max(widest, dtype_size(t));
  for (int32_t o : p.outputs)
    if (o >= 0 && static_cast<size_t>(o) < p.code.size())
      widest = std::max(widest, dtype_size(p.code[o].dtype));
  return static_cast<int>(std::min<size_t>(8, 16 / widest));
}

PointwiseLaunch plan_pointwise_launch(const PointwiseParamLayout& layout, int vec,
                                      const std::vector<size_t>& in_sizes,
                                      const std::vector<size_t>& out_sizes,
                                      const std::vector<Dims>& in_dims, const Dims& od,
                                      const std::vector<const void*>& in_ptrs,
                                      const std::vector<void*>& out_ptrs) {
  const size_t nin = layout.inputs, nout = layout.outputs, R = layout.max_rank;
  KILN_CHECK(in_sizes.size() == nin && in_dims.size() == nin && in_ptrs.size() == nin &&
                 out_sizes.size() == nout && out_ptrs.size() == nout,
             "pointwise launch with ", in_dims.size(), " inputs and ", out_ptrs.size(),
             " outputs for a module of ", nin, " and ", nout);
  PointwiseLaunch L;
  const int64_t numel = dims_volume(od);
  if (numel == 0) return L;
  const size_t rank = od.size();

  // Broadcast strides of each input in the output's index space (0 on broadcast dims).
  std::vector<std::vector<int64_t>> st(nin, std::vector<int64_t>(rank, 0));
  std::vector<int64_t> step(nin, 0);
  bool flat = true;
  for (size_t k = 0; k < nin; ++k) {
    const Dims& d = in_dims[k];
    KILN_CHECK(d.size() <= rank, "pointwise input ", k, " has a higher rank than its output");
    KILN_CHECK(in_ptrs[k], "pointwise input ", k, " has no data");
    int64_t s = 1;
    for (size_t j = d.size(); j-- > 0;) {
      size_t oj = j + rank - d.size();
      KILN_CHECK(d[j] == od[oj] || d[j] == 1, "pointwise input ", k, " ", dims_to_string(d),
                 " does not broadcast to ", dims_to_string(od));
      st[k][oj] = d[j] == 1 ? 0 : s;
      s *= d[j];
    }
    const int64_t n = dims_volume(d);
    step[k] = n == numel ? 1 : 0;
    flat &= n == numel || n == 1;
  }
  for (size_t k = 0; k < nout; ++k) KILN_CHECK(out_ptrs[k], "pointwise output ", k, " has no data");

  std::vector<int64_t>& p = L.params;
  p.assign(layout.slots(), 0);
  p[layout.numel()] = numel;
  for (size_t d = 0; d < R; ++d) p[layout.dim(d)] = 1;
  for (size_t k = 0; k < nin; ++k) {
    p[layout.step(k)] = step[k];
    p[layout.in(k)] = static_cast<int64_t>(reinterpret_cast<intptr_t>(in_ptrs[k]));
  }
  for (size_t k = 0; k < nout; ++k)
    p[layout.out(k)] = static_cast<int64_t>(reinterpret_cast<intptr_t>(out_ptrs[k]));

  auto aligned = [](const void* ptr, size_t bytes) {
    return reinterpret_cast<uintptr_t>(ptr) % bytes == 0;
  };
  if (flat) {
    bool v = vec > 1 && numel >= vec;
    for (size_t k = 0; k < nin && v; ++k)
      if (step[k]) v = aligned(in_ptrs[k], in_sizes[k] * vec);
    for (size_t k = 0; k < nout && v; ++k) v = aligned(out_ptrs[k], out_sizes[k] * vec);
    L.kernel = v ? kPwVec : kPwFlat;
    L.items = v ? (numel + vec - 1) / vec : numel;
    return L;
  }
  // Coalesce: drop size-1 dims and merge neighbours that every input walks contiguously (outer
  // stride == inner stride * inner size; both 0 when broadcast), so that a bias [1,C,1,1] over
  // [N,C,H,W] becomes [N, C, H*W] and the per-element index math stays short.
  std::vector<int64_t> cd;
  std::vector<std::vector<int64_t>> cs(nin);
  for (size_t j = 0; j < rank; ++j) {
    if (od[j] == 1) continue;
    bool merge = !cd.empty();
    for (size_t k = 0; k < nin && merge; ++k) merge = cs[k].back() == st[k][j] * od[j];
    if (merge) {
      cd.back() *= od[j];
      for (size_t k = 0; k < nin; ++k) cs[k].back() = st[k][j];
      continue;
    }
    cd.push_back(od[j]);
    for (size_t k = 0; k < nin; ++k) cs[k].push_back(st[k][j]);
  }
  KILN_CHECK(cd.size() <= R, "pointwise module compiled for rank ", R, " got rank ", cd.size());
  const size_t first = R - cd.size();
  p[layout.rank()] = static_cast<int64_t>(cd.size());
  for (size_t i = 0; i < cd.size(); ++i) {
    p[layout.dim(first + i)] = cd[i];
    for (size_t k = 0; k < nin; ++k) p[layout.stride(k, first + i)] = cs[k][i];
  }
  L.rank = cd.size();
  L.kernel = numel <= std::numeric_limits<int32_t>::max() ? kPwStrided32 : kPwStrided64;
  L.items = numel;
  return L;
}

std::string pointwise_codegen_unsupported(const Program& p, int rank) {
  try {
    Generator(p, rank).run();
    return {};
  } catch (const Unsupported& u) {
    return u.why;
  }
}

PointwiseSource generate_pointwise_source(const Program& p, int rank) {
  try {
    return Generator(p, rank).run();
  } catch (const Unsupported& u) {
    fail(StatusCode::kUnsupported, "pointwise program cannot be compiled for the GPU: ", u.why);
  }
}

}  // namespace kiln::cuda
