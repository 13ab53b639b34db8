// ReverseSequence: per-batch reversal of a sequence prefix.
#include "ops/reverse_sequence.h"

#include <functional>

#include "ops/movement_util.h"

namespace kiln {

namespace {

void check_axes(const ReverseSequenceAttrs& at, const std::function<void(std::string)>& error) {
  bool ok = (at.batch_axis == 0 && at.time_axis == 1) || (at.batch_axis == 1 && at.time_axis == 0);
  if (!ok)
    error(cat("batch_axis ", at.batch_axis, " and time_axis ", at.time_axis,
              " must be 0 and 1 in some order"));
}

void infer(InferContext& ctx) {
  const auto& at = ctx.node().a<ReverseSequenceAttrs>();
  check_axes(at, [&](const std::string& m) { ctx.error(m); });
  if (ctx.dtype(1) != DataType::kInt64) ctx.error("sequence_lens must be int64");
  Shape in = known_shape(ctx, 0), lens = known_shape(ctx, 1);
  if (in.rank_known && in.rank() < 2) ctx.error(cat("input ", in.str(), " must have rank >= 2"));
  if (in.rank_known && lens.rank_known) {
    const Dim& b = in.dims[at.batch_axis];
    if (lens.rank() != 1 || (b.known() && lens.dims[0].known() && lens.dims[0].value != b.value))
      ctx.error(
          cat("sequence_lens ", lens.str(), " must be 1-D with one entry per batch of ", in.str()));
  }
  ctx.set_output(0, ctx.dtype(0), in);
}

void compute(const ComputeArgs& a) {
  const auto& at = a.node.a<ReverseSequenceAttrs>();
  auto err = [&](const std::string& m) { fail(StatusCode::kInvalidArgument, m); };
  check_axes(at, err);
  const Tensor& x = a.in(0);
  if (x.rank() < 2) err("input must have rank >= 2");
  Ints lens = to_int64s(a.in(1));
  int64_t batch = x.dim(at.batch_axis), time = x.dim(at.time_axis);
  if (static_cast<int64_t>(lens.size()) != batch)
    err(cat("sequence_lens has ", lens.size(), " entries for a batch of ", batch));
  Tensor& y = output_tensor(a, 0, x.dtype(), x.dims());
  int64_t inner = 1;
  for (size_t k = 2; k < x.rank(); ++k) inner *= x.dim(k);
  size_t chunk = static_cast<size_t>(inner) * dtype_size(x.dtype());
  auto st = strides_of(x.dims());
  int64_t bs = st[at.batch_axis] * static_cast<int64_t>(dtype_size(x.dtype()));
  int64_t ts = st[at.time_axis] * static_cast<int64_t>(dtype_size(x.dtype()));
  const auto* src = static_cast<const char*>(x.raw());
  auto* dst = static_cast<char*>(y.raw());
  for (int64_t b = 0; b < batch; ++b) {
    int64_t n = lens[b];
    if (n < 0 || n > time) err(cat("sequence length ", n, " is outside [0, ", time, "]"));
    for (int64_t t = 0; t < time; ++t) {
      int64_t s = t < n ? n - 1 - t : t;
      if (chunk) std::memcpy(dst + b * bs + t * ts, src + b * bs + s * ts, chunk);
    }
  }
}

}  // namespace

const OpDef& kiln_op_reverse_sequence() {
  static const OpDef d{"ReverseSequence", make_attrs_of<ReverseSequenceAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
