// NonMaxSuppression: greedy per (batch, class) selection by descending score, dropping boxes whose
// IoU with an already selected box exceeds iou_threshold. The output row count depends on the
// data, so compute() allocates it. Ties in score keep the lower box index first; the IoU test
// follows onnxruntime (areas and IoU in the boxes' precision, strict comparisons).
#include "ops/non_max_suppression.h"

#include <algorithm>
#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

void infer(InferContext& ctx) {
  DataType bt = ctx.dtype(0), st = ctx.dtype(1);
  if (!dtype_is_float(bt)) ctx.error(cat("boxes must be a float tensor, got ", dtype_name(bt)));
  if (st != bt) ctx.error(cat("scores is ", dtype_name(st), " but boxes is ", dtype_name(bt)));
  const Shape& b = ctx.shape(0);
  const Shape& s = ctx.shape(1);
  if (b.rank_known && b.rank() != 3)
    ctx.error(cat("boxes must be 3-D [B,N,4], got rank ", b.rank()));
  if (s.rank_known && s.rank() != 3)
    ctx.error(cat("scores must be 3-D [B,C,N], got rank ", s.rank()));
  if (b.rank_known && b[2].known() && b[2].value != 4)
    ctx.error(cat("boxes' last dimension must be 4, got ", b[2].value));
  if (b.rank_known && s.rank_known) {
    if (b[0].known() && s[0].known() && b[0].value != s[0].value)
      ctx.error(cat("boxes has batch ", b[0].value, " but scores has ", s[0].value));
    if (b[1].known() && s[2].known() && b[1].value != s[2].value)
      ctx.error(cat("boxes has ", b[1].value, " boxes but scores has ", s[2].value));
  }
  if (ctx.has_input(2) && ctx.dtype(2) != DataType::kInt64 && ctx.dtype(2) != DataType::kInt32)
    ctx.error("max_output_boxes_per_class must be int64");
  for (size_t i = 3; i < 5; ++i)
    if (ctx.has_input(i) && !dtype_is_float(ctx.dtype(i)))
      ctx.error(cat(i == 3 ? "iou_threshold" : "score_threshold", " must be a float tensor"));
  for (size_t i = 2; i < 5; ++i)
    if (ctx.has_input(i)) {
      auto v = ctx.shape(i).volume();
      if (ctx.shape(i).rank_known && v && *v != 1)
        ctx.error(cat("input ", i, " must hold one value, got shape ", ctx.shape(i).str()));
    }
  ctx.set_output(0, DataType::kInt64, Shape({Dim::unknown(), Dim(3)}));
}

template <class F>
struct Box {
  F x0, y0, x1, y1;
};

template <class F>
Box<F> box_at(const Tensor& boxes, int64_t i, bool center) {
  F a = static_cast<F>(boxes.get_f64(i * 4)), b = static_cast<F>(boxes.get_f64(i * 4 + 1));
  F c = static_cast<F>(boxes.get_f64(i * 4 + 2)), d = static_cast<F>(boxes.get_f64(i * 4 + 3));
  if (center) return {a - c / 2, b - d / 2, a + c / 2, b + d / 2};
  return {std::min(b, d), std::min(a, c), std::max(b, d), std::max(a, c)};  // (y1,x1,y2,x2)
}

template <class F>
bool suppresses(const Box<F>& p, const Box<F>& q, F threshold) {
  F ix0 = std::max(p.x0, q.x0), ix1 = std::min(p.x1, q.x1);
  if (ix1 <= ix0) return false;
  F iy0 = std::max(p.y0, q.y0), iy1 = std::min(p.y1, q.y1);
  if (iy1 <= iy0) return false;
  F inter = (ix1 - ix0) * (iy1 - iy0);
  F area_p = (p.x1 - p.x0) * (p.y1 - p.y0), area_q = (q.x1 - q.x0) * (q.y1 - q.y0);
  F uni = area_p + area_q - inter;
  if (inter <= 0 || area_p <= 0 || area_q <= 0 || uni <= 0) return false;
  return inter / uni > threshold;
}

template <class F>
void run(const ComputeArgs& args) {
  const auto& a = args.node.a<NonMaxSuppressionAttrs>();
  const Tensor& boxes = args.in(0);
  const Tensor& scores = args.in(1);
  if (boxes.rank() != 3 || scores.rank() != 3 || boxes.dim(2) != 4 ||
      boxes.dim(0) != scores.dim(0) || boxes.dim(1) != scores.dim(2))
    fail(StatusCode::kInvalidArgument, "NonMaxSuppression: boxes ", dims_to_string(boxes.dims()),
         " and scores ", dims_to_string(scores.dims()), " do not agree");
  auto scalar = [&](size_t i) -> const Tensor* {
    if (!args.has(i)) return nullptr;
    if (args.in(i).numel() != 1)
      fail(StatusCode::kInvalidArgument, "NonMaxSuppression: input ", i, " must hold one value");
    return &args.in(i);
  };
  int64_t max_out = scalar(2) ? std::max<int64_t>(scalar(2)->get_i64(0), 0) : 0;
  F iou = scalar(3) ? static_cast<F>(scalar(3)->get_f64(0)) : F(0);
  bool has_score = scalar(4) != nullptr;
  F score_min = has_score ? static_cast<F>(scalar(4)->get_f64(0)) : F(0);
  if (!(iou >= 0 && iou <= 1))
    fail(StatusCode::kInvalidArgument, "NonMaxSuppression: iou_threshold ", iou,
         " is outside [0, 1]");
  const int64_t B = boxes.dim(0), N = boxes.dim(1), C = scores.dim(1);
  std::vector<int64_t> rows;
  std::vector<Box<F>> bx(static_cast<size_t>(N));
  std::vector<int64_t> order;
  std::vector<F> sc(static_cast<size_t>(N));
  std::vector<int64_t> chosen;
  for (int64_t b = 0; b < B && max_out > 0; ++b) {
    for (int64_t i = 0; i < N; ++i) bx[i] = box_at<F>(boxes, b * N + i, a.center_point_box);
    for (int64_t c = 0; c < C; ++c) {
      order.clear();
      for (int64_t i = 0; i < N; ++i) {
        sc[i] = static_cast<F>(scores.get_f64((b * C + c) * N + i));
        if (std::isnan(sc[i])) continue;  // unorderable; never selected
        if (!has_score || sc[i] > score_min) order.push_back(i);
      }
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t p, int64_t q) { return sc[p] > sc[q]; });
      chosen.clear();
      for (int64_t i : order) {
        if (static_cast<int64_t>(chosen.size()) >= max_out) break;
        bool keep = true;
        for (int64_t j : chosen)
          if (suppresses(bx[j], bx[i], iou)) {
            keep = false;
            break;
          }
        if (!keep) continue;
        chosen.push_back(i);
        rows.insert(rows.end(), {b, c, i});
      }
    }
  }
  Tensor out(DataType::kInt64, {static_cast<int64_t>(rows.size() / 3), 3});
  std::copy(rows.begin(), rows.end(), out.data<int64_t>());
  args.out(0) = out;
}

void compute(const ComputeArgs& args) {
  // float32 boxes are compared in float, like the frameworks, so borderline IoUs agree.
  if (args.in(0).dtype() == DataType::kDouble)
    run<double>(args);
  else
    run<float>(args);
}

}  // namespace

const OpDef& kiln_op_non_max_suppression() {
  static const OpDef d{"NonMaxSuppression", make_attrs_of<NonMaxSuppressionAttrs>, infer, compute,
                       /*data_dependent_shape=*/true};
  return d;
}

}  // namespace kiln
