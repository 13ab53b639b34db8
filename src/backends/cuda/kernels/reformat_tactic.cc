// cuda.reformat: the Transposes that also convert float types or pad (TransposeAttrs::reformats),
// which the layout pass makes at the edges of NHWC regions. Plain transposes stay with
// cuda.transpose, whose tiled kernel is faster for them.
#include "backends/cuda/kernels/movement_tactic_util.h"
#include "backends/cuda/kernels/reformat.h"
#include "ops/transpose.h"

namespace kiln {
namespace cuda {
namespace {

bool float_type(DataType t, rf::FloatType& out) {
  switch (t) {
    case DataType::kFloat: out = rf::FloatType::kFloat; return true;
    case DataType::kFloat16: out = rf::FloatType::kFloat16; return true;
    case DataType::kBFloat16: out = rf::FloatType::kBFloat16; return true;
    default: return false;
  }
}

Status supports_reformat(const Node& n) {
  if (n.op() != "Transpose") return unsupported("not a Transpose");
  const auto& at = n.a<TransposeAttrs>();
  if (!at.reformats()) return unsupported("a plain transpose (cuda.transpose runs it)");
  rf::FloatType t;
  if (!n.in(0) || !float_type(n.in(0)->dtype, t) || !float_type(n.outputs[0]->dtype, t))
    return unsupported("reformats float32/float16/bfloat16 only");
  if (n.in(0)->shape.rank_known && n.in(0)->shape.rank() > static_cast<size_t>(rf::kMaxDims))
    return unsupported("rank above 8");
  return Status::ok();
}

void enqueue_reformat(const LaunchArgs& a) {
  const DeviceTensor& x = a.in(0);
  const DeviceTensor& y = a.out(0);
  const auto& at = a.node.a<TransposeAttrs>();
  const int r = static_cast<int>(x.rank());
  KILN_EXPECT(r <= rf::kMaxDims, StatusCode::kUnsupported, "cuda.reformat: rank ", r);
  Ints perm = at.perm;
  if (perm.empty())
    for (int k = r - 1; k >= 0; --k) perm.push_back(k);
  KILN_EXPECT(static_cast<int>(perm.size()) == r && y.rank() == x.rank(),
              StatusCode::kInvalidArgument, "cuda.reformat: perm does not fit rank ", r);
  std::vector<int64_t> strides(r, 1), sd(r), ss(r);
  for (int d = r - 2; d >= 0; --d) strides[d] = strides[d + 1] * x.dims[d + 1];
  for (int d = 0; d < r; ++d) {
    sd[d] = x.dims[perm[d]];
    ss[d] = strides[perm[d]];
    KILN_EXPECT(y.dims[d] >= sd[d], StatusCode::kInvalidArgument, "cuda.reformat: output dims");
  }
  rf::FloatType from, to;
  KILN_CHECK(float_type(x.dtype, from) && float_type(y.dtype, to), "cuda.reformat: types");
  if (y.numel() == 0) return;
  rf::reformat(x.data, from, y.data, to, r, sd.data(), ss.data(), y.dims.data(), a.stream);
  check_launch("cuda.reformat");
}

}  // namespace
}  // namespace cuda

const Tactic& kiln_cuda_tactic_reformat() {
  static const cuda::SimpleTactic t("cuda.reformat", "Transpose", cuda::supports_reformat,
                                    cuda::make_fn_kernel<cuda::enqueue_reformat>);
  return t;
}

}  // namespace kiln
