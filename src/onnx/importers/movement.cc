// ONNX data-movement ops: Transpose, Slice, Concat, Split, Pad, Tile, DepthToSpace, SpaceToDepth,
// Trilu, Compress, NonZero, ReverseSequence. Split lowers to Slices; DepthToSpace and SpaceToDepth
// lower to Reshape -> Transpose -> Reshape. Attributes that later opsets turned into inputs become
// constant inputs.
#include <limits>

#include "onnx/importer.h"
#include "onnx/importers/shape_helpers.h"
#include "ops/compress.h"
#include "ops/pad.h"
#include "ops/reverse_sequence.h"
#include "ops/trilu.h"

namespace kiln::onnx {

namespace {

constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

void require_supported(ImportContext& c, Value* x) {
  if (!dtype_is_supported(x->dtype))
    c.unsupported(cat("input type ", dtype_name(x->dtype), " is not supported"));
}

void require_int_indices(ImportContext& c, size_t i, const char* what) {
  DataType t = c.input(i)->dtype;
  if (t != DataType::kInt64 && t != DataType::kInt32)
    c.invalid(cat(what, " must be int32 or int64, not ", dtype_name(t)));
}

void imp_Transpose(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  c.set_output(0, transpose(c, x, c.attr_ints("perm")));
}

void imp_Slice(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  std::vector<Value*> ins = {x};
  if (c.opset() < 10) {
    if (!c.has_attr("starts") || !c.has_attr("ends"))
      c.invalid("the starts and ends attributes are required");
    ins.push_back(c.const_i64(c.attr_ints("starts")));
    ins.push_back(c.const_i64(c.attr_ints("ends")));
    if (c.has_attr("axes")) ins.push_back(c.const_i64(c.attr_ints("axes")));
  } else {
    for (size_t i = 1; i < 5; ++i) {
      if (i <= 2)
        require_int_indices(c, i, i == 1 ? "starts" : "ends");
      else if (c.has_input(i))
        require_int_indices(c, i, i == 3 ? "axes" : "steps");
      ins.push_back(c.input_or_null(i));
    }
    while (ins.back() == nullptr) ins.pop_back();
  }
  c.set_output(0, add_folded1(c, "Slice", std::move(ins)));
}

void imp_Concat(ImportContext& c) {
  if (c.num_inputs() == 0) c.invalid("needs at least one input");
  std::vector<Value*> ins;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    require_supported(c, c.input(i));
    ins.push_back(c.input(i));
  }
  if (c.opset() >= 4 && !c.has_attr("axis")) c.invalid("the axis attribute is required");
  c.set_output(0, concat(c, std::move(ins), c.attr_int("axis", 1)));
}

// Split sizes known only at run time: output i is Slice(x, s_i, s_i + split[i]) with the running
// sums s_i built from Gathers and Adds (they fold once the sizes are constant).
void split_at_run_time(ImportContext& c, Value* x, int64_t axis, Value* split) {
  if (split->dtype != DataType::kInt64) c.invalid("split must be int64");
  const Shape& ss = split->shape;
  int64_t n = static_cast<int64_t>(c.num_outputs());
  if (ss.rank_known && (ss.rank() != 1 || (ss.dims[0].known() && ss.dims[0].value != n)))
    c.invalid(cat("split ", ss.str(), " must hold one size per output (", n, ")"));
  Value* start = c.const_i64({0});
  for (int64_t i = 0; i < n; ++i) {
    Value* size =
        add_folded1(c, "Gather", {split, c.const_i64({i})}, std::make_unique<GatherAttrs>());
    Value* end = c.binary(expr::Op::kAdd, start, size);
    c.set_output(static_cast<size_t>(i), slice_axis(c, x, axis, start, end));
    start = end;
  }
}

void imp_Split(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  int64_t axis = c.attr_int("axis", 0);
  size_t n = c.num_outputs();
  if (n == 0) c.invalid("needs at least one output");
  const Shape& s = x->shape;
  if (s.rank_known) {
    int64_t r = static_cast<int64_t>(s.rank());
    if (axis < -r || axis >= r) c.invalid(cat("axis ", axis, " is out of range for rank ", r));
    if (axis < 0) axis += r;
  }
  Ints sizes;
  bool have_sizes = false;
  if (c.opset() >= 13 || (c.opset() < 2 && c.has_input(1))) {
    if (c.has_input(1)) {
      const Tensor* t = c.constant_input(1);
      if (!t) return split_at_run_time(c, x, axis, c.input(1));
      for (int64_t i = 0; i < t->numel(); ++i) sizes.push_back(t->get_i64(i));
      have_sizes = true;
    }
  } else if (c.has_attr("split")) {
    sizes = c.attr_ints("split");
    have_sizes = true;
  }
  Dim d = s.rank_known ? s.dims[axis] : Dim::unknown();
  // Opset 18: num_outputs parts of ceil(dim / num_outputs), the last one smaller.
  if (!have_sizes && c.opset() >= 18 && c.has_attr("num_outputs")) {
    const int64_t k = c.attr_int("num_outputs", 0);
    if (k != static_cast<int64_t>(n))
      c.invalid(cat("num_outputs is ", k, " but the node has ", n, " outputs"));
    if (!d.known()) c.unsupported("num_outputs with an axis of unknown size");
    const int64_t part = (d.value + k - 1) / k;
    for (int64_t i = 0; i < k; ++i) sizes.push_back(std::max<int64_t>(0, std::min(part, d.value - i * part)));
    have_sizes = true;
  } else if (!have_sizes && c.opset() >= 18) {
    c.invalid("from opset 18, Split needs the split input or the num_outputs attribute");
  }
  if (have_sizes) {
    if (sizes.size() != n) c.invalid(cat("split has ", sizes.size(), " sizes for ", n, " outputs"));
    int64_t sum = 0;
    for (int64_t v : sizes) {
      if (v < 0) c.invalid(cat("split size ", v, " is negative"));
      sum += v;
    }
    if (d.known() && sum != d.value)
      c.invalid(cat("split sizes ", dims_to_string(sizes), " add up to ", sum, ", not to the dim ",
                    d.value, " of axis ", axis));
    int64_t start = 0;
    for (size_t i = 0; i < n; ++i) {
      c.set_output(i,
                   slice_axis(c, x, axis, c.const_i64({start}), c.const_i64({start + sizes[i]})));
      start += sizes[i];
    }
    return;
  }
  int64_t parts = static_cast<int64_t>(n);
  if (d.known() && d.value % parts != 0)
    c.invalid(cat("axis ", axis, " of size ", d.value, " does not split into ", n, " equal parts"));
  if (!s.rank_known && axis < 0)
    c.unsupported("an equal split on a negative axis needs the input rank");
  for (int64_t i = 0; i < parts; ++i) {
    // Bounds i*dim/n and (i+1)*dim/n: constants when the dim is known, computed otherwise.
    Value* b = i == 0 ? c.const_i64({0}) : computed_shape(c, x, {DimTerm{axis, parts, i}});
    Value* e =
        i + 1 == parts ? c.const_i64({kEnd}) : computed_shape(c, x, {DimTerm{axis, parts, i + 1}});
    c.set_output(static_cast<size_t>(i), slice_axis(c, x, axis, b, e));
  }
}

void imp_Pad(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  auto a = std::make_unique<PadAttrs>();
  a->mode = c.attr_string("mode", "constant");
  if (a->mode == "wrap") c.unsupported("mode 'wrap' (opset 19)");
  if (a->mode != "constant" && a->mode != "reflect" && a->mode != "edge")
    c.invalid(cat("unknown mode '", a->mode, "'"));
  std::vector<Value*> ins = {x};
  if (c.opset() < 11) {
    if (!c.has_attr("pads")) c.invalid("the pads attribute is required");
    ins.push_back(c.const_i64(c.attr_ints("pads")));
    double v = c.attr_float("value", 0.0);
    if (v != 0) ins.push_back(c.const_scalar(x->dtype, v));
  } else {
    if (c.input(1)->dtype != DataType::kInt64) c.invalid("pads must be int64");
    ins.push_back(c.input(1));
    if (c.has_input(2) || c.has_input(3)) ins.push_back(c.input_or_null(2));
    if (c.has_input(3)) ins.push_back(c.input(3));
  }
  c.set_output(0, add_folded1(c, "Pad", std::move(ins), std::move(a)));
}

void imp_Tile(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  if (c.input(1)->dtype != DataType::kInt64) c.invalid("repeats must be int64");
  c.set_output(0, add_folded1(c, "Tile", {x, c.input(1)}));
}

// Checks for DepthToSpace/SpaceToDepth: a 4-D input and a positive blocksize.
int64_t block_size(ImportContext& c, Value* x) {
  require_supported(c, x);
  int64_t b = c.attr_int("blocksize", 0);
  if (b <= 0) c.invalid(cat("blocksize must be positive, not ", b));
  // b*b must not overflow (a hostile blocksize once made the divisibility check divide by 0).
  if (b > (int64_t(1) << 20)) c.invalid(cat("blocksize ", b, " is too large"));
  if (!x->shape.rank_known) c.unsupported("needs an input of known rank (4-D)");
  if (x->shape.rank() != 4) c.invalid(cat("input ", x->shape.str(), " must be 4-D"));
  return b;
}

void check_divisible(ImportContext& c, const Dim& d, int64_t by, const char* what) {
  if (d.known() && d.value % by != 0)
    c.invalid(cat(what, " ", d.value, " is not divisible by ", by));
}

void imp_DepthToSpace(ImportContext& c) {
  Value* x = c.input(0);
  int64_t b = block_size(c, x);
  std::string mode = c.opset() >= 11 ? c.attr_string("mode", "DCR") : "DCR";
  if (mode != "DCR" && mode != "CRD") c.invalid(cat("unknown mode '", mode, "'"));
  check_divisible(c, x->shape.dims[1], b * b, "channels");
  // [N, C, H, W] -> 6-D with the blocks split off the channels, interleave them with H and W.
  std::vector<DimTerm> split =
      mode == "DCR" ? std::vector<DimTerm>{{0}, {-1, 1, b}, {-1, 1, b}, {1, b * b, 1}, {2}, {3}}
                    : std::vector<DimTerm>{{0}, {1, b * b, 1}, {-1, 1, b}, {-1, 1, b}, {2}, {3}};
  Ints perm = mode == "DCR" ? Ints{0, 3, 4, 1, 5, 2} : Ints{0, 1, 4, 2, 5, 3};
  Value* shape2 = computed_shape(c, x, {{0}, {1, b * b, 1}, {2, 1, b}, {3, 1, b}});
  Value* y = reshape_exact(c, x, computed_shape(c, x, split));
  y = transpose(c, y, perm);
  c.set_output(0, reshape_exact(c, y, shape2));
}

void imp_SpaceToDepth(ImportContext& c) {
  Value* x = c.input(0);
  int64_t b = block_size(c, x);
  check_divisible(c, x->shape.dims[2], b, "height");
  check_divisible(c, x->shape.dims[3], b, "width");
  Value* shape1 = computed_shape(c, x, {{0}, {1}, {2, b, 1}, {-1, 1, b}, {3, b, 1}, {-1, 1, b}});
  Value* shape2 = computed_shape(c, x, {{0}, {1, 1, b * b}, {2, b, 1}, {3, b, 1}});
  Value* y = reshape_exact(c, x, shape1);
  y = transpose(c, y, {0, 3, 5, 1, 2, 4});
  c.set_output(0, reshape_exact(c, y, shape2));
}

void imp_Trilu(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  auto a = std::make_unique<TriluAttrs>();
  a->upper = c.attr_int("upper", 1);
  std::vector<Value*> ins = {x};
  if (c.has_input(1)) ins.push_back(c.input(1));
  c.set_output(0, add_folded1(c, "Trilu", std::move(ins), std::move(a)));
}

void imp_Compress(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  auto a = std::make_unique<CompressAttrs>();
  if (c.has_attr("axis")) {
    a->has_axis = true;
    a->axis = c.attr_int("axis", 0);
    if (c.opset() < 11 && a->axis < 0) c.invalid("axis must be >= 0 before opset 11");
  }
  c.set_output(0, add_folded1(c, "Compress", {x, c.input(1)}, std::move(a)));
}

void imp_NonZero(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  c.set_output(0, add_folded1(c, "NonZero", {x}));
}

void imp_ReverseSequence(ImportContext& c) {
  Value* x = c.input(0);
  require_supported(c, x);
  auto a = std::make_unique<ReverseSequenceAttrs>();
  a->batch_axis = c.attr_int("batch_axis", 1);
  a->time_axis = c.attr_int("time_axis", 0);
  c.set_output(0, add_folded1(c, "ReverseSequence", {x, c.input(1)}, std::move(a)));
}

}  // namespace

const ImporterList& kiln_import_movement() {
  static const ImporterList l{{
      {"Transpose", imp_Transpose},
      {"Slice", imp_Slice},
      {"Concat", imp_Concat},
      {"Split", imp_Split},
      {"Pad", imp_Pad, 2},
      {"Tile", imp_Tile, 6},
      {"DepthToSpace", imp_DepthToSpace},
      {"SpaceToDepth", imp_SpaceToDepth},
      {"Trilu", imp_Trilu, 14},
      {"Compress", imp_Compress, 9},
      {"NonZero", imp_NonZero, 9},
      {"ReverseSequence", imp_ReverseSequence, 10},
  }};
  return l;
}

}  // namespace kiln::onnx
