#include "expr/eval.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/half.h"

namespace kiln::expr {

namespace {

// One register lane. Float dtypes use f (double), unsigned 64-bit uses u, everything else i.
union Scalar {
  double f;
  int64_t i;
  uint64_t u;
};

enum class Cat { kF, kI, kU };
Cat cat_of(DataType t) {
  if (dtype_is_float(t)) return Cat::kF;
  if (t == DataType::kUInt64) return Cat::kU;
  return Cat::kI;
}

double round_float(double v, DataType t) {
  switch (t) {
    case DataType::kFloat: return static_cast<double>(static_cast<float>(v));
    case DataType::kFloat16: return half_bits_to_float(float_to_half_bits(static_cast<float>(v)));
    case DataType::kBFloat16: return bf16_bits_to_float(float_to_bf16_bits(static_cast<float>(v)));
    default: return v;
  }
}

int64_t wrap_int(int64_t v, DataType t) {
  switch (t) {
    case DataType::kInt8: return static_cast<int8_t>(v);
    case DataType::kUInt8: return static_cast<uint8_t>(v);
    case DataType::kInt16: return static_cast<int16_t>(v);
    case DataType::kUInt16: return static_cast<uint16_t>(v);
    case DataType::kInt32: return static_cast<int32_t>(v);
    case DataType::kUInt32: return static_cast<uint32_t>(v);
    case DataType::kBool: return v != 0;
    default: return v;
  }
}

// Float to integer conversion without undefined behaviour: NaN gives 0 and out-of-range values
// saturate to the 64-bit range before wrapping to the target width.
int64_t f2i(double v) {
  if (std::isnan(v)) return 0;
  if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}
uint64_t f2u(double v) {
  if (std::isnan(v) || v <= 0) return v <= -1 ? static_cast<uint64_t>(f2i(v)) : 0;
  if (v >= 1.8446744073709552e19) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(v);
}

Scalar convert(Scalar x, DataType from, DataType to) {
  Cat cf = cat_of(from), ct = cat_of(to);
  Scalar r;
  if (to == DataType::kBool) {
    r.i = cf == Cat::kF ? (x.f != 0) : (x.i != 0);
    return r;
  }
  if (ct == Cat::kF) {
    r.f = cf == Cat::kF ? x.f : cf == Cat::kU ? static_cast<double>(x.u) : static_cast<double>(x.i);
    r.f = round_float(r.f, to);
  } else if (ct == Cat::kU) {
    r.u = cf == Cat::kF ? f2u(x.f) : x.u;
  } else {
    r.i = wrap_int(cf == Cat::kF ? f2i(x.f) : x.i, to);
  }
  return r;
}

Scalar load(const Tensor& t, int64_t off) {
  Scalar s;
  switch (t.dtype()) {
    case DataType::kFloat: s.f = t.data<float>()[off]; break;
    case DataType::kDouble: s.f = t.data<double>()[off]; break;
    case DataType::kFloat16: s.f = half_bits_to_float(t.data<uint16_t>()[off]); break;
    case DataType::kBFloat16: s.f = bf16_bits_to_float(t.data<uint16_t>()[off]); break;
    case DataType::kUInt64: s.u = t.data<uint64_t>()[off]; break;
    default: s.i = t.get_i64(off); break;
  }
  return s;
}

void store(Tensor& t, int64_t off, Scalar s) {
  switch (t.dtype()) {
    case DataType::kFloat: t.data<float>()[off] = static_cast<float>(s.f); break;
    case DataType::kDouble: t.data<double>()[off] = s.f; break;
    case DataType::kFloat16: t.data<uint16_t>()[off] = float_to_half_bits(static_cast<float>(s.f)); break;
    case DataType::kBFloat16: t.data<uint16_t>()[off] = float_to_bf16_bits(static_cast<float>(s.f)); break;
    case DataType::kUInt64: t.data<uint64_t>()[off] = s.u; break;
    default: t.set_i64(off, s.i); break;
  }
}

double apply_f_unary(Op op, double x) {
  switch (op) {
    case Op::kNeg: return -x;
    case Op::kAbs: return std::fabs(x);
    case Op::kSign: return std::isnan(x) ? x : (x > 0) - (x < 0);
    case Op::kExp: return std::exp(x);
    case Op::kLog: return std::log(x);
    case Op::kSqrt: return std::sqrt(x);
    case Op::kRsqrt: return 1.0 / std::sqrt(x);
    case Op::kReciprocal: return 1.0 / x;
    case Op::kSin: return std::sin(x);
    case Op::kCos: return std::cos(x);
    case Op::kTan: return std::tan(x);
    case Op::kAsin: return std::asin(x);
    case Op::kAcos: return std::acos(x);
    case Op::kAtan: return std::atan(x);
    case Op::kSinh: return std::sinh(x);
    case Op::kCosh: return std::cosh(x);
    case Op::kTanh: return std::tanh(x);
    case Op::kAsinh: return std::asinh(x);
    case Op::kAcosh: return std::acosh(x);
    case Op::kAtanh: return std::atanh(x);
    case Op::kErf: return std::erf(x);
    case Op::kFloor: return std::floor(x);
    case Op::kCeil: return std::ceil(x);
    case Op::kRound: return std::nearbyint(x);  // half to even under the default rounding mode
    case Op::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Op::kSoftplus: return x > 30 ? x : std::log1p(std::exp(x));
    case Op::kRelu: return x > 0 ? x : (std::isnan(x) ? x : 0.0);
    default: fail(StatusCode::kInternal, "op ", op_name(op), " is not a float unary op");
  }
}

template <class T>
T int_pow(T base, T exp) {
  T r = 1;
  while (exp > 0) {
    if (exp & 1) r *= base;
    base *= base;
    exp >>= 1;
  }
  return r;
}

Scalar apply_unary(Op op, Scalar x, DataType in_t, DataType out_t) {
  Scalar r;
  Cat c = cat_of(in_t);
  switch (op) {
    case Op::kCast: return convert(x, in_t, out_t);
    case Op::kNot: r.i = c == Cat::kF ? x.f == 0 : x.i == 0; return r;
    case Op::kIsNaN: r.i = c == Cat::kF && std::isnan(x.f); return r;
    case Op::kIsPosInf: r.i = c == Cat::kF && std::isinf(x.f) && x.f > 0; return r;
    case Op::kIsNegInf: r.i = c == Cat::kF && std::isinf(x.f) && x.f < 0; return r;
    case Op::kBitNot:
      if (c == Cat::kU) r.u = ~x.u; else r.i = wrap_int(~x.i, out_t);
      return r;
    default: break;
  }
  if (c == Cat::kF) {
    r.f = round_float(apply_f_unary(op, x.f), out_t);
    return r;
  }
  if (c == Cat::kU) {
    switch (op) {
      case Op::kNeg: r.u = 0 - x.u; return r;
      case Op::kAbs: case Op::kFloor: case Op::kCeil: case Op::kRound: case Op::kRelu: return x;
      case Op::kSign: r.u = x.u > 0; return r;
      default: r.f = apply_f_unary(op, static_cast<double>(x.u)); r.u = f2u(r.f); return r;
    }
  }
  switch (op) {
    case Op::kNeg: r.i = wrap_int(-x.i, out_t); return r;
    case Op::kAbs: r.i = wrap_int(x.i < 0 ? -x.i : x.i, out_t); return r;
    case Op::kSign: r.i = (x.i > 0) - (x.i < 0); return r;
    case Op::kFloor: case Op::kCeil: case Op::kRound: return x;
    case Op::kRelu: r.i = x.i > 0 ? x.i : 0; return r;
    default: r.i = wrap_int(f2i(apply_f_unary(op, static_cast<double>(x.i))), out_t); return r;
  }
}

template <class T>
bool compare(Op op, T a, T b) {
  switch (op) {
    case Op::kEq: return a == b;
    case Op::kNe: return a != b;
    case Op::kLt: return a < b;
    case Op::kLe: return a <= b;
    case Op::kGt: return a > b;
    case Op::kGe: return a >= b;
    default: return false;
  }
}

Scalar apply_binary(Op op, Scalar x, Scalar y, DataType in_t, DataType in_b, DataType out_t) {
  Scalar r;
  Cat c = cat_of(in_t);
  if (is_comparison(op)) {
    r.i = c == Cat::kF ? compare(op, x.f, y.f) : c == Cat::kU ? compare(op, x.u, y.u)
                                                               : compare(op, x.i, y.i);
    return r;
  }
  if (op == Op::kAnd || op == Op::kOr || op == Op::kXor) {
    bool a = c == Cat::kF ? x.f != 0 : x.i != 0;
    bool b = cat_of(in_b) == Cat::kF ? y.f != 0 : y.i != 0;
    r.i = op == Op::kAnd ? (a && b) : op == Op::kOr ? (a || b) : (a != b);
    return r;
  }
  if (c == Cat::kF) {
    double a = x.f, b = cat_of(in_b) == Cat::kF ? y.f : cat_of(in_b) == Cat::kU
                                                          ? static_cast<double>(y.u)
                                                          : static_cast<double>(y.i);
    double v;
    switch (op) {
      case Op::kAdd: v = a + b; break;
      case Op::kSub: v = a - b; break;
      case Op::kMul: v = a * b; break;
      case Op::kDiv: v = a / b; break;
      case Op::kPow: v = std::pow(a, b); break;
      case Op::kMin: v = (std::isnan(a) || std::isnan(b)) ? NAN : std::min(a, b); break;
      case Op::kMax: v = (std::isnan(a) || std::isnan(b)) ? NAN : std::max(a, b); break;
      case Op::kFMod: v = std::fmod(a, b); break;
      case Op::kMod: {
        v = std::fmod(a, b);
        if (v != 0 && ((v < 0) != (b < 0))) v += b;
        break;
      }
      default: fail(StatusCode::kInternal, "op ", op_name(op), " on floats");
    }
    r.f = round_float(v, out_t);
    return r;
  }
  if (c == Cat::kU) {
    uint64_t a = x.u, b = y.u;
    switch (op) {
      case Op::kAdd: r.u = a + b; break;
      case Op::kSub: r.u = a - b; break;
      case Op::kMul: r.u = a * b; break;
      case Op::kDiv: r.u = b ? a / b : 0; break;
      case Op::kPow: r.u = int_pow<uint64_t>(a, b); break;
      case Op::kMin: r.u = std::min(a, b); break;
      case Op::kMax: r.u = std::max(a, b); break;
      case Op::kMod: case Op::kFMod: r.u = b ? a % b : 0; break;
      case Op::kBitAnd: r.u = a & b; break;
      case Op::kBitOr: r.u = a | b; break;
      case Op::kBitXor: r.u = a ^ b; break;
      case Op::kShl: r.u = b >= 64 ? 0 : a << b; break;
      case Op::kShr: r.u = b >= 64 ? 0 : a >> b; break;
      default: fail(StatusCode::kInternal, "op ", op_name(op), " on uint64");
    }
    return r;
  }
  int64_t a = x.i;
  int64_t b = cat_of(in_b) == Cat::kF ? f2i(y.f) : y.i;
  bool unsigned_t = dtype_is_unsigned_int(in_t);
  switch (op) {
    case Op::kAdd: r.i = a + b; break;
    case Op::kSub: r.i = a - b; break;
    case Op::kMul: r.i = static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); break;
    case Op::kDiv: r.i = b ? (b == -1 ? -a : a / b) : 0; break;
    case Op::kPow:
      if (cat_of(in_b) == Cat::kF) r.i = f2i(std::pow(static_cast<double>(a), y.f));
      else r.i = b < 0 ? f2i(std::pow(static_cast<double>(a), static_cast<double>(b)))
                       : int_pow<int64_t>(a, b);
      break;
    case Op::kMin: r.i = std::min(a, b); break;
    case Op::kMax: r.i = std::max(a, b); break;
    case Op::kFMod: r.i = b ? (b == -1 ? 0 : a % b) : 0; break;
    case Op::kMod: {
      if (!b) { r.i = 0; break; }
      int64_t m = b == -1 ? 0 : a % b;
      if (m != 0 && ((m < 0) != (b < 0))) m += b;
      r.i = m;
      break;
    }
    case Op::kBitAnd: r.i = a & b; break;
    case Op::kBitOr: r.i = a | b; break;
    case Op::kBitXor: r.i = a ^ b; break;
    case Op::kShl: r.i = b >= 64 ? 0 : static_cast<int64_t>(static_cast<uint64_t>(a) << b); break;
    case Op::kShr:
      r.i = b >= 64 ? 0 : unsigned_t ? static_cast<int64_t>(static_cast<uint64_t>(a) >> b) : a >> b;
      break;
    default: fail(StatusCode::kInternal, "op ", op_name(op), " on integers");
  }
  r.i = wrap_int(r.i, out_t);
  return r;
}

constexpr int64_t kBlock = 512;

}  // namespace

void evaluate(const Program& p, std::span<const Tensor> inputs, std::span<Tensor> outputs) {
  KILN_CHECK(inputs.size() == p.input_types.size(), "program expects ", p.input_types.size(),
             " inputs, got ", inputs.size());
  KILN_CHECK(!outputs.empty() && outputs.size() == p.outputs.size());
  const Dims& od = outputs[0].dims();
  const int64_t rank = static_cast<int64_t>(od.size());
  const int64_t total = outputs[0].numel();
  for (size_t k = 0; k < inputs.size(); ++k)
    KILN_CHECK(inputs[k].dtype() == p.input_types[k], "program input ", k, " is ",
               dtype_name(inputs[k].dtype()), ", expected ", dtype_name(p.input_types[k]));

  // Broadcast strides of each input in the output index space.
  std::vector<std::vector<int64_t>> strides(inputs.size(), std::vector<int64_t>(rank, 0));
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Dims& d = inputs[k].dims();
    int64_t r = static_cast<int64_t>(d.size());
    KILN_CHECK(r <= rank, "input rank exceeds output rank");
    int64_t s = 1;
    for (int64_t j = r - 1; j >= 0; --j) {
      int64_t oj = j + rank - r;
      KILN_CHECK(d[j] == od[oj] || d[j] == 1, "input ", k, " ", dims_to_string(d),
                 " does not broadcast to ", dims_to_string(od));
      strides[k][oj] = d[j] == 1 ? 0 : s;
      s *= d[j];
    }
  }

  bool simple = true;
  for (const Tensor& t : inputs) simple &= t.numel() == 1 || t.dims() == od;

  const size_t n_regs = p.code.size();
  std::vector<Scalar> regs(n_regs * kBlock);
  std::vector<int64_t> offs(inputs.size() * kBlock);
  std::vector<int64_t> idx(rank, 0);
  std::vector<int64_t> cur(inputs.size(), 0);

  for (int64_t base = 0; base < total; base += kBlock) {
    int64_t n = std::min(kBlock, total - base);
    // Odometer over the output index, producing each input's element offset. Inputs of the
    // output's shape read contiguously and scalars read element 0: no odometer needed then.
    if (simple) {
      for (size_t k = 0; k < inputs.size(); ++k) {
        int64_t* o = &offs[k * kBlock];
        if (inputs[k].numel() == 1)
          for (int64_t e = 0; e < n; ++e) o[e] = 0;
        else
          for (int64_t e = 0; e < n; ++e) o[e] = base + e;
      }
    } else
    for (int64_t e = 0; e < n; ++e) {
      for (size_t k = 0; k < inputs.size(); ++k) offs[k * kBlock + e] = cur[k];
      for (int64_t j = rank - 1; j >= 0; --j) {
        ++idx[j];
        for (size_t k = 0; k < inputs.size(); ++k) cur[k] += strides[k][j];
        if (idx[j] < od[j]) break;
        for (size_t k = 0; k < inputs.size(); ++k) cur[k] -= strides[k][j] * od[j];
        idx[j] = 0;
      }
    }
    for (size_t r = 0; r < n_regs; ++r) {
      const Instr& in = p.code[r];
      Scalar* out = &regs[r * kBlock];
      switch (in.op) {
        case Op::kInput: {
          const Tensor& t = inputs[in.a];
          const int64_t* o = &offs[in.a * kBlock];
          if (t.dtype() == DataType::kFloat) {
            const float* d = t.data<float>();
            for (int64_t e = 0; e < n; ++e) out[e].f = d[o[e]];
          } else {
            for (int64_t e = 0; e < n; ++e) out[e] = load(t, o[e]);
          }
          break;
        }
        case Op::kConst: {
          Scalar s;
          if (cat_of(in.dtype) == Cat::kF) s.f = in.fconst;
          else s.i = in.iconst;
          for (int64_t e = 0; e < n; ++e) out[e] = s;
          break;
        }
        case Op::kSelect: {
          const Scalar* c = &regs[in.a * kBlock];
          const Scalar* a = &regs[in.b * kBlock];
          const Scalar* b = &regs[in.c * kBlock];
          bool cf = cat_of(p.code[in.a].dtype) == Cat::kF;
          for (int64_t e = 0; e < n; ++e) out[e] = (cf ? c[e].f != 0 : c[e].i != 0) ? a[e] : b[e];
          break;
        }
        default: {
          int ar = op_arity(in.op);
          const Scalar* a = &regs[in.a * kBlock];
          DataType ta = p.code[in.a].dtype;
          if (ar == 1 && ta == DataType::kFloat && in.dtype == DataType::kFloat &&
              in.op != Op::kCast && !yields_bool(in.op) && in.op != Op::kBitNot) {
            // Float32 hot path: one switch per block rather than per element.
            if (in.op == Op::kRelu) {
              for (int64_t e = 0; e < n; ++e) out[e].f = a[e].f > 0 ? a[e].f : (a[e].f != a[e].f ? a[e].f : 0.0);
            } else {
              for (int64_t e = 0; e < n; ++e)
                out[e].f = static_cast<float>(apply_f_unary(in.op, a[e].f));
            }
          } else if (ar == 1) {
            for (int64_t e = 0; e < n; ++e) out[e] = apply_unary(in.op, a[e], ta, in.dtype);
          } else {
            const Scalar* b = &regs[in.b * kBlock];
            DataType tb = p.code[in.b].dtype;
            if (ta == DataType::kFloat && in.dtype == DataType::kFloat && tb == ta &&
                (in.op == Op::kAdd || in.op == Op::kMul || in.op == Op::kSub || in.op == Op::kDiv)) {
              // Float32 hot path. Rounding the double result to float gives the correctly
              // rounded float32 result for + - * / (double has more than 2p+2 bits).
              switch (in.op) {
                case Op::kAdd: for (int64_t e = 0; e < n; ++e) out[e].f = static_cast<float>(a[e].f + b[e].f); break;
                case Op::kSub: for (int64_t e = 0; e < n; ++e) out[e].f = static_cast<float>(a[e].f - b[e].f); break;
                case Op::kMul: for (int64_t e = 0; e < n; ++e) out[e].f = static_cast<float>(a[e].f * b[e].f); break;
                default: for (int64_t e = 0; e < n; ++e) out[e].f = static_cast<float>(a[e].f / b[e].f); break;
              }
            } else {
              for (int64_t e = 0; e < n; ++e)
                out[e] = apply_binary(in.op, a[e], b[e], ta, tb, in.dtype);
            }
          }
        }
      }
    }
    for (size_t k = 0; k < outputs.size(); ++k) {
      const Scalar* src = &regs[p.outputs[k] * kBlock];
      Tensor& t = outputs[k];
      if (t.dtype() == DataType::kFloat) {
        float* d = t.data<float>() + base;
        for (int64_t e = 0; e < n; ++e) d[e] = static_cast<float>(src[e].f);
      } else {
        for (int64_t e = 0; e < n; ++e) store(t, base + e, src[e]);
      }
    }
  }
}

}  // namespace kiln::expr
