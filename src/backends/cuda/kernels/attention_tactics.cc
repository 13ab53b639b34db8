// cuda.attention: the Attention op (ops/attention.h) on kiln's own fused kernels (attention.cu):
// flash attention on tensor cores for float16/bfloat16 with head sizes up to 128, a row-per-block
// kernel for float32/float64 and larger heads. Q, K and V may be strided views (any batch, head
// and sequence strides, the head-size dim contiguous): the memory planner may hand the kernel
// the head splits of a fused projection in place.
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/kernels/attention.h"
#include "ops/attention.h"

namespace kiln {
namespace cuda {
namespace {

rk::DType rk_dtype(DataType t) { return static_cast<rk::DType>(static_cast<int>(t)); }

// Grid limits: heads and batch index the grid's y and z (65535 at most); the row kernel keeps at
// most 8 output columns per thread.
constexpr int64_t kMaxGridYZ = 65535;
constexpr int64_t kMaxHeadSize = 1024;

Status supports(const Node& n) {
  if (n.inputs.size() < 3 || !n.in(0) || !n.in(1) || !n.in(2))
    return unsupported("Q, K and V are required");
  const Value* q = n.in(0);
  const Value* m = n.in(3);
  DataType mt = m ? m->dtype : DataType::kBool;
  if (!rk::attention_supported(rk_dtype(q->dtype), rk_dtype(mt)))
    return unsupported(cat("Attention of ", dtype_name(q->dtype), " with a ", dtype_name(mt),
                           " mask"));
  if (m && m->shape.rank_known && m->shape.rank() > 4) return unsupported("a mask above 4-D");
  const Shape& qs = q->shape;
  const Shape& vs = n.in(2)->shape;
  if (qs.rank_known && qs.rank() == 4) {
    if (qs[0].known() && qs[0].value > kMaxGridYZ) return unsupported("batch above 65535");
    if (qs[1].known() && qs[1].value > kMaxGridYZ) return unsupported("heads above 65535");
    if (qs[3].known() && qs[3].value > kMaxHeadSize) return unsupported("head size above 1024");
  }
  if (vs.rank_known && vs.rank() == 4 && vs[3].known() && vs[3].value > kMaxHeadSize)
    return unsupported("value head size above 1024");
  return Status::ok();
}

// Strides (elements) of batch, head and sequence; false when the last dim is not contiguous.
bool strides3(const DeviceTensor& t, int64_t (&s)[3]) {
  const Dims& d = t.dims;
  if (d.size() != 4) return false;
  if (t.dense()) {
    s[2] = d[3];
    s[1] = d[2] * d[3];
    s[0] = d[1] * d[2] * d[3];
    return true;
  }
  if (t.strides.size() != 4 || (t.strides[3] != 1 && d[3] > 1)) return false;
  for (int i = 0; i < 3; ++i) s[i] = t.strides[i];
  return true;
}

class AttentionKernel : public Kernel {
 public:
  bool accepts_strided(const LaunchArgs& a) const override {
    int64_t s[3];
    for (size_t i = 0; i < 3; ++i)
      if (!strides3(a.in(i), s)) return false;
    if (a.has(3) && !a.in(3).dense()) return false;
    return a.out(0).dense();
  }

  void enqueue(const LaunchArgs& a) override {
    const auto& at = a.node.a<AttentionAttrs>();
    const DeviceTensor &q = a.in(0), &k = a.in(1), &v = a.in(2);
    const DeviceTensor& y = a.out(0);
    if (y.numel() == 0) return;
    rk::AttentionProblem p;
    p.dtype = rk_dtype(q.dtype);
    p.batch = q.dims[0];
    p.heads = q.dims[1];
    p.s_q = q.dims[2];
    p.d = q.dims[3];
    p.kv_heads = k.dims[1];
    p.s_kv = k.dims[2];
    p.d_v = v.dims[3];
    KILN_EXPECT(p.kv_heads > 0 && p.heads % p.kv_heads == 0, StatusCode::kInvalidModel,
                "Attention: ", p.heads, " query heads are not a multiple of ", p.kv_heads);
    p.q = q.data;
    p.k = k.data;
    p.v = v.data;
    p.y = y.data;
    KILN_CHECK(strides3(q, p.q_stride) && strides3(k, p.k_stride) && strides3(v, p.v_stride),
               "cuda.attention was given a layout it does not take");
    if (a.has(3)) {
      const DeviceTensor& m = a.in(3);
      p.mask = m.data;
      p.mask_dtype = rk_dtype(m.dtype);
      // Broadcast strides over [B, H, S_q, S_kv], right-aligned, 0 along size-1 dims.
      const Dims& md = m.dims;
      const size_t lead = 4 - md.size();
      int64_t stride = 1;
      for (size_t i = md.size(); i-- > 0;) {
        p.mask_stride[lead + i] = md[i] == 1 ? 0 : stride;
        stride *= md[i];
      }
    }
    p.scale = attention_scale(at, p.d);
    p.causal = at.causal;
    rk::launch_attention(p, a.stream);
    check_launch("cuda.attention");
  }
};

std::unique_ptr<Kernel> make(const Node&) { return std::make_unique<AttentionKernel>(); }

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_attention() {
  static const cuda::SimpleTactic t("cuda.attention", "Attention", cuda::supports, cuda::make);
  return t;
}

}  // namespace kiln
