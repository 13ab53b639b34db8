// Pooling: MaxPool (with Indices), AveragePool, LpPool, their Global forms and MaxUnpool. auto_pad
// becomes explicit pads when the input's spatial dims are known; with symbolic dims Pool resolves
// it at run time.
#include "ops/pool.h"

#include "onnx/importer.h"
#include "ops/max_unpool.h"
#include "ops/window.h"

namespace kiln::onnx {

namespace {

// A model naming more outputs than the op has is invalid (it would leave outputs unbound).
void expect_outputs(ImportContext& c, size_t n) {
  if (c.num_outputs() > n)
    c.invalid(cat(c.proto().op_type, " has ", n, " output(s), the node names ", c.num_outputs()));
}

std::unique_ptr<PoolAttrs> pool_attrs(ImportContext& c, const std::string& kind) {
  auto a = std::make_unique<PoolAttrs>();
  a->kind = kind;
  if (!c.has_attr("kernel_shape")) c.invalid("kernel_shape is required");
  a->kernel = c.attr_ints("kernel_shape");
  a->strides = c.attr_ints("strides");
  a->pads = c.attr_ints("pads");
  a->dilations = c.attr_ints("dilations");
  a->ceil_mode = c.attr_int("ceil_mode", 0) != 0;
  a->auto_pad = c.attr_string("auto_pad", "NOTSET");
  if (a->auto_pad.empty()) a->auto_pad = "NOTSET";
  if (!is_valid_auto_pad(a->auto_pad))
    c.invalid(
        cat("auto_pad '", a->auto_pad, "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"));
  Value* x = c.input(0);
  size_t nsp = a->kernel.size();
  if (x->shape.rank_known && x->shape.rank() != nsp + 2)
    c.invalid(cat("kernel_shape has ", nsp, " values but X ", x->shape.str(), " has ",
                  static_cast<int64_t>(x->shape.rank()) - 2, " spatial axes"));
  if (a->auto_pad == "NOTSET" || !x->shape.rank_known) return a;
  Ints in(nsp);
  for (size_t i = 0; i < nsp; ++i) {
    if (!x->shape[2 + i].known()) return a;  // resolved by Pool at run time
    in[i] = x->shape[2 + i].value;
  }
  try {
    PoolGeometry g = pool_geometry(*a, in);
    a->pads = g.pad_begin;
    a->pads.insert(a->pads.end(), g.pad_end.begin(), g.pad_end.end());
  } catch (const Error& e) {
    c.invalid(e.message());
  }
  a->auto_pad = "NOTSET";
  a->ceil_mode = false;  // SAME/VALID sizes do not depend on it, and the pads are now explicit
  return a;
}

void check_input(ImportContext& c, bool allow_int8) {
  DataType t = c.input(0)->dtype;
  if (dtype_is_float(t)) return;
  if (allow_int8 && (t == DataType::kInt8 || t == DataType::kUInt8)) return;
  c.invalid(cat("X has type ", dtype_name(t), ", which this pooling op does not accept"));
}

void imp_MaxPool(ImportContext& c) {
  expect_outputs(c, 2);
  check_input(c, c.opset() >= 12);
  auto a = pool_attrs(c, "max");
  a->storage_order = c.attr_int("storage_order", 0);
  size_t n_out = c.wants_output(1) ? 2 : 1;
  auto outs = c.add("Pool", {c.input(0)}, std::move(a), n_out);
  c.set_output(0, outs[0]);
  if (n_out == 2) c.set_output(1, outs[1]);
}

void imp_AveragePool(ImportContext& c) {
  expect_outputs(c, 1);
  check_input(c, false);
  auto a = pool_attrs(c, "avg");
  a->count_include_pad = c.attr_int("count_include_pad", 0) != 0;
  c.set_output(0, c.add1("Pool", {c.input(0)}, std::move(a)));
}

double lp_order(ImportContext& c) {
  // LpPool-1 stored p as a float; later opsets as an int.
  const AttributeProto* p = c.proto().attr("p");
  if (!p) return 2.0;
  if (p->type == AttributeProto::Type::kFloat) return p->f;
  return static_cast<double>(c.attr_int("p", 2));
}

void imp_LpPool(ImportContext& c) {
  expect_outputs(c, 1);
  check_input(c, false);
  auto a = pool_attrs(c, "lp");
  a->p = lp_order(c);
  c.set_output(0, c.add1("Pool", {c.input(0)}, std::move(a)));
}

void global_pool(ImportContext& c, const char* kind) {
  expect_outputs(c, 1);
  check_input(c, false);
  auto a = std::make_unique<PoolAttrs>();
  a->kind = kind;
  a->global = true;
  if (a->kind == "lp") a->p = lp_order(c);
  c.set_output(0, c.add1("Pool", {c.input(0)}, std::move(a)));
}
void imp_GlobalMaxPool(ImportContext& c) { global_pool(c, "max"); }
void imp_GlobalAveragePool(ImportContext& c) { global_pool(c, "avg"); }
void imp_GlobalLpPool(ImportContext& c) { global_pool(c, "lp"); }

void imp_MaxUnpool(ImportContext& c) {
  expect_outputs(c, 1);
  auto a = std::make_unique<MaxUnpoolAttrs>();
  if (!c.has_attr("kernel_shape")) c.invalid("kernel_shape is required");
  a->kernel = c.attr_ints("kernel_shape");
  a->strides = c.attr_ints("strides");
  a->pads = c.attr_ints("pads");
  std::vector<Value*> ins = {c.input(0), c.input(1)};
  if (c.has_input(2)) ins.push_back(c.input(2));
  c.set_output(0, c.add1("MaxUnpool", ins, std::move(a)));
}

}  // namespace

const ImporterList& kiln_import_pool() {
  static const ImporterList l{{
      {"MaxPool", imp_MaxPool},
      {"AveragePool", imp_AveragePool},
      {"LpPool", imp_LpPool},
      {"GlobalMaxPool", imp_GlobalMaxPool},
      {"GlobalAveragePool", imp_GlobalAveragePool},
      {"GlobalLpPool", imp_GlobalLpPool},
      {"MaxUnpool", imp_MaxUnpool, 9},
  }};
  return l;
}

}  // namespace kiln::onnx
