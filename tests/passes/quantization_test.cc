// INT8 (issue 13, CPU parts): the calibration algorithms on known distributions, the calibration
// cache (round trip, every corruption caught, stale caches told apart), Q/DQ folding (a QAT-style
// graph folds into quantized Conv/MatMul that compute what the unfolded graph computes), the
// post-training path end to end on the shipped model (accuracy against FP32 on test images),
// per-layer precision, and the directory calibrator's .npy/.npz batches.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <sys/stat.h>

#include "common/error.h"
#include "common/file.h"
#include "common/npy.h"
#include "ops/dequantize_linear.h"
#include "ops/concat.h"
#include "ops/mat_mul.h"
#include "ops/pad.h"
#include "ops/quantize_linear.h"
#include "ops/reshape.h"
#include "pass_harness.h"
#include "quant/calibration_cache.h"
#include "quant/histogram.h"

namespace kiln {
namespace {

using namespace passtest;

// ---- algorithms ------------------------------------------------------------------------------

AbsHistogram histogram_of(const std::vector<float>& v, size_t chunk = 1000) {
  AbsHistogram h;
  for (size_t i = 0; i < v.size(); i += chunk)
    h.add(v.data() + i, static_cast<int64_t>(std::min(chunk, v.size() - i)));
  return h;
}

TEST(Calibration, MinMaxIsTheLargestMagnitudeAcrossBatches) {
  // The range grows as later batches bring larger values (bins merged, nothing lost).
  std::vector<float> v{0.5f, -0.25f, 0.1f, 3.0f, -7.5f, 2.0f};
  AbsHistogram h = histogram_of(v, 2);
  EXPECT_EQ(h.count(), 6);
  EXPECT_DOUBLE_EQ(calibration_threshold(h, CalibrationAlgo::kMinMax, 0), 7.5);
  double total = 0;
  for (double b : h.bins()) total += b;
  EXPECT_EQ(total, 6);
  EXPECT_GE(h.range(), 7.5);
}

TEST(Calibration, PercentileCutsTheTail) {
  // 99% of the values in [0, 1), 1% at 100: the 99th percentile clips the outliers, 100 keeps
  // them.
  std::vector<float> v;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  for (int i = 0; i < 99000; ++i) v.push_back(u(rng));
  for (int i = 0; i < 1000; ++i) v.push_back(100.0f);
  AbsHistogram h = histogram_of(v, 7000);
  const double p99 = calibration_threshold(h, CalibrationAlgo::kPercentile, 99.0);
  EXPECT_GT(p99, 0.9);
  EXPECT_LT(p99, 1.2);
  EXPECT_NEAR(calibration_threshold(h, CalibrationAlgo::kPercentile, 100.0), 100.0, 0.1);
}

TEST(Calibration, EntropyKeepsAGaussianAndClipsRareOutliers) {
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> v;
  for (int i = 0; i < 400000; ++i) v.push_back(n(rng));
  const double max_abs = histogram_of(v).max_abs();
  // A Gaussian alone: the threshold stays within the bulk's last few percent of range.
  const double t = calibration_threshold(histogram_of(v), CalibrationAlgo::kEntropy, 0);
  EXPECT_GT(t, 3.0);
  EXPECT_LE(t, max_abs);
  // Ten values 12 sigma out: min-max would spend the int8 range on them; entropy does not.
  // (Outliers far beyond that leave the bulk too few of the 2048 bins to choose a threshold in,
  // as in TensorRT's histogram over [0, max].)
  for (int i = 0; i < 10; ++i) v.push_back(12.0f);
  const double t2 = calibration_threshold(histogram_of(v), CalibrationAlgo::kEntropy, 0);
  EXPECT_LT(t2, 6.0);
  EXPECT_GT(t2, 2.0);
}

TEST(Calibration, EntropyKeepsTheRangeOfATensorOfFewDistinctValues) {
  // 8-bit pixels normalised (x - 0.286) / 0.353, mostly background: 256 distinct magnitudes and a
  // spike. The divergence alone would clip at the spike (it did, at 40 % of the range, costing 6
  // points of top-1 on the demo model); the range is kept.
  std::vector<float> v;
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> pix(0, 255);
  for (int i = 0; i < 200000; ++i) {
    const int p = i % 3 == 0 ? pix(rng) : 0;
    v.push_back((p / 255.0f - 0.286f) / 0.353f);
  }
  AbsHistogram h = histogram_of(v);
  EXPECT_NEAR(calibration_threshold(h, CalibrationAlgo::kEntropy, 0), h.max_abs(), 1e-3 * h.max_abs());
}

TEST(Calibration, AllZerosAndBadNames) {
  std::vector<float> z(100, 0.0f);
  AbsHistogram h = histogram_of(z);
  for (auto a : {CalibrationAlgo::kEntropy, CalibrationAlgo::kPercentile, CalibrationAlgo::kMinMax})
    EXPECT_EQ(calibration_threshold(h, a, 99.9), 0.0);
  EXPECT_THROW(parse_calibration_algo("kl"), kiln::Error);
  EXPECT_EQ(parse_calibration_algo("minmax"), CalibrationAlgo::kMinMax);
}

// ---- the cache -------------------------------------------------------------------------------

CalibrationTable sample_table() {
  CalibrationTable t;
  t.algorithm = "entropy";
  t.model = std::string(64, 'a');
  t.scales["conv1 input"] = 0.0123456789012345;  // a space in the name, a double's digits
  t.scales["/block1/Relu"] = 1.0 / 3.0;
  t.scales["x%y"] = 2.5e-7;
  return t;
}

TEST(CalibrationCache, RoundTripIsExact) {
  CalibrationTable t = sample_table(), back;
  std::string bytes = serialize_calibration(t);
  CalibrationLoad l = parse_calibration(bytes, "entropy", t.model, back);
  ASSERT_TRUE(l.ok) << l.problem;
  EXPECT_EQ(back.scales, t.scales);  // exactly: hex floats
  EXPECT_EQ(serialize_calibration(back), bytes);
}

TEST(CalibrationCache, EveryTruncationAndByteFlipIsCaught) {
  const std::string bytes = serialize_calibration(sample_table());
  CalibrationTable out;
  for (size_t n = 0; n < bytes.size(); ++n) {
    CalibrationLoad l = parse_calibration(bytes.substr(0, n), "entropy", std::string(64, 'a'), out);
    EXPECT_FALSE(l.ok) << "truncated at " << n;
    EXPECT_TRUE(l.corrupt) << "truncated at " << n;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string b = bytes;
    b[i] = static_cast<char>(b[i] ^ 0x04);
    CalibrationLoad l = parse_calibration(b, "entropy", std::string(64, 'a'), out);
    EXPECT_FALSE(l.ok) << "flip at " << i;
  }
}

TEST(CalibrationCache, StaleCachesAreToldApartFromCorruptOnes) {
  const std::string bytes = serialize_calibration(sample_table());
  CalibrationTable out;
  CalibrationLoad algo = parse_calibration(bytes, "minmax", std::string(64, 'a'), out);
  EXPECT_FALSE(algo.ok);
  EXPECT_FALSE(algo.corrupt);
  EXPECT_NE(algo.problem.find("entropy"), std::string::npos) << algo.problem;
  CalibrationLoad model = parse_calibration(bytes, "entropy", std::string(64, 'b'), out);
  EXPECT_FALSE(model.ok);
  EXPECT_FALSE(model.corrupt);
  EXPECT_NE(model.problem.find("another model"), std::string::npos) << model.problem;
}

// ---- Q/DQ folding ----------------------------------------------------------------------------

Value* scalar_const(G& b, const std::string& name, DataType t, double v) {
  Tensor s(t, Dims{});
  s.set_f64(0, v);
  return b.constant(name, s);
}

Value* quantize(G& b, Value* x, double scale, int64_t zero, DataType t) {
  auto a = std::make_unique<QuantizeLinearAttrs>();
  a->output_dtype = t;
  return b.node("QuantizeLinear",
                {x, scalar_const(b, "s", DataType::kFloat, scale), scalar_const(b, "z", t, zero)},
                std::move(a), "q");
}

Value* dequantize(G& b, Value* xq, Value* scale, Value* zero, int64_t axis = 1) {
  auto a = std::make_unique<DequantizeLinearAttrs>();
  a->axis = axis;
  std::vector<Value*> ins{xq, scale};
  if (zero) ins.push_back(zero);
  return b.node("DequantizeLinear", ins, std::move(a), "dq");
}

// Constant int8 weights with per-channel float scales along `axis`, as a QAT export has them.
Value* qat_weights(G& b, Dims d, int64_t axis) {
  Tensor q(DataType::kInt8, d);
  std::uniform_int_distribution<int> u(-127, 127);
  for (int64_t i = 0; i < q.numel(); ++i) q.set_i64(i, u(b.rng));
  Tensor s(DataType::kFloat, Dims{d[axis]});
  for (int64_t c = 0; c < d[axis]; ++c) s.set_f64(c, 0.002 + 0.001 * c);
  return dequantize(b, b.constant("wq", q), b.constant("ws", s), nullptr, axis);
}

// x -> Q/DQ (uint8, zero point 128) -> Conv(per-channel QAT weights, bias) -> Relu
//   -> Q/DQ (int8) -> MatMul(per-column weights) -> y
std::unique_ptr<Graph> qat_graph(std::mt19937& rng) {
  G b;
  b.rng.seed(rng());
  Value* x = b.input("x", {2, 3, 9, 7});
  Value* xd = dequantize(b, quantize(b, x, 0.02, 128, DataType::kUInt8),
                         scalar_const(b, "xs", DataType::kFloat, 0.02),
                         scalar_const(b, "xz", DataType::kUInt8, 128));
  auto ca = std::make_unique<ConvAttrs>();
  ca->pads = {1, 1, 1, 1};
  Value* c = b.node("Conv", {xd, qat_weights(b, {5, 3, 3, 3}, 0), b.constant("bias", random({5}, b.rng))},
                    std::move(ca), "conv");
  Value* r = b.unary(Op::kRelu, c);
  auto sa = std::make_unique<ReshapeAttrs>();
  Tensor shape(DataType::kInt64, Dims{2});
  shape.set_i64(0, 2);
  shape.set_i64(1, 5 * 9 * 7);
  Value* flat = b.node("Reshape", {r, b.constant("shape", shape)}, std::move(sa), "flatten");
  Value* fd = dequantize(b, quantize(b, flat, 0.01, 0, DataType::kInt8),
                         scalar_const(b, "fs", DataType::kFloat, 0.01),
                         scalar_const(b, "fz", DataType::kInt8, 0));
  auto ma = std::make_unique<MatMulAttrs>();
  Value* y = b.node("MatMul", {fd, qat_weights(b, {5 * 9 * 7, 4}, 1)}, std::move(ma), "fc");
  b.output(y, "y");
  return std::move(b.g);
}

TEST(FoldQuantization, QatGraphFoldsAndComputesWhatItDid) {
  std::mt19937 rng(11);
  auto before = qat_graph(rng);
  infer_graph(*before);
  auto after = before->clone();
  PassContext ctx;
  run_pipeline(*after, ctx);
  // Every DequantizeLinear folded into the products; the Quantize of each activation remains.
  EXPECT_EQ(count_op(*after, "DequantizeLinear"), 0) << print_graph(*after);
  EXPECT_EQ(count_op(*after, "QuantizeLinear"), 2);
  const Node* conv = first(*after, "Conv");
  ASSERT_NE(conv, nullptr);
  const auto& ca = conv->a<ConvAttrs>();
  EXPECT_TRUE(ca.quantized());
  EXPECT_EQ(conv->in(0)->dtype, DataType::kUInt8);
  EXPECT_EQ(conv->in(1)->dtype, DataType::kInt8);
  EXPECT_EQ(ca.q_x_zero, 128);
  ASSERT_EQ(ca.q_w_scale.size(), 5u);
  EXPECT_NEAR(ca.q_w_scale[4], 0.006, 1e-9);  // the QAT scales, kept as they were
  EXPECT_EQ(ca.activation, "relu");           // epilogues still fuse into quantized products
  const Node* fc = first(*after, "MatMul");
  ASSERT_NE(fc, nullptr);
  EXPECT_TRUE(fc->a<MatMulAttrs>().quantized());
  EXPECT_EQ(fc->a<MatMulAttrs>().q_w_scale.size(), 4u);
  // Integer accumulation scaled once against float products of dequantized values: equal up to
  // float32 rounding.
  expect_same_outputs(*before, *after, 1e-5, rng, 1e-5);
}

// Q then DQ of an activation, per tensor, int8, zero point 0 (as ONNX Runtime's QDQ format has
// them around every op).
Value* qdq(G& b, Value* x, double scale) {
  return dequantize(b, quantize(b, x, scale, 0, DataType::kInt8),
                    scalar_const(b, "s", DataType::kFloat, scale),
                    scalar_const(b, "z", DataType::kInt8, 0));
}

TEST(PropagateDequantize, QdqAroundDataMovementFoldsIntoTheProducts) {
  // x -> QDQ -> MaxPool -> QDQ -> Conv -> Relu -> QDQ ---------> Concat -> QDQ -> Reshape -> QDQ
  //      x2 -> QDQ (the same scale) -----------------------------^                   -> MatMul
  std::mt19937 rng(13);
  G b;
  b.rng.seed(rng());
  Value* x = b.input("x", {2, 4, 10, 8});
  Value* x2 = b.input("x2", {2, 3, 5, 4});
  Value* p = b.pool("max", qdq(b, x, 0.02), {2, 2}, {2, 2});
  auto ca = std::make_unique<ConvAttrs>();
  ca->pads = {1, 1, 1, 1};
  Value* c = b.node("Conv", {qdq(b, p, 0.02), qat_weights(b, {6, 4, 3, 3}, 0),
                             b.constant("bias", random({6}, b.rng))},
                    std::move(ca), "conv");
  Value* r = b.unary(Op::kRelu, c);
  auto cat_a = std::make_unique<ConcatAttrs>();
  cat_a->axis = 1;
  Value* joined = b.node("Concat", {qdq(b, r, 0.05), qdq(b, x2, 0.05)}, std::move(cat_a), "cat");
  auto ra = std::make_unique<ReshapeAttrs>();
  Tensor shape(DataType::kInt64, Dims{2});
  shape.set_i64(0, 2);
  shape.set_i64(1, 9 * 5 * 4);
  Value* flat = b.node("Reshape", {qdq(b, joined, 0.05), b.constant("shape", shape)}, std::move(ra),
                       "flatten");
  auto ma = std::make_unique<MatMulAttrs>();
  b.output(b.node("MatMul", {qdq(b, flat, 0.05), qat_weights(b, {9 * 5 * 4, 3}, 1)},
                  std::move(ma), "fc"),
           "y");
  auto g = std::move(b.g);
  infer_graph(*g);
  auto before = g->clone();
  PassContext ctx;
  run_pipeline(*g, ctx);
  // Every DequantizeLinear moved down to a product and folded; the quantizers of x and x2
  // remain (the Relu's went into the Conv, which writes int8); the pool, concatenation and
  // reshape move int8.
  EXPECT_EQ(count_op(*g, "DequantizeLinear"), 0) << print_graph(*g);
  EXPECT_EQ(count_op(*g, "QuantizeLinear"), 2) << print_graph(*g);
  EXPECT_TRUE(first(*g, "Conv")->a<ConvAttrs>().requantized());
  EXPECT_GE(ctx.stats["propagate_dequantize.cancelled"], 3);
  EXPECT_TRUE(first(*g, "Conv")->a<ConvAttrs>().quantized());
  EXPECT_TRUE(first(*g, "MatMul")->a<MatMulAttrs>().quantized());
  EXPECT_EQ(first(*g, "Pool")->outputs[0]->dtype, DataType::kInt8);
  EXPECT_EQ(first(*g, "Concat")->outputs[0]->dtype, DataType::kInt8);
  // Moving integers and cancelling Q(DQ(q)) are exact; the products fold as before.
  expect_same_outputs(*before, *g, 1e-5, rng, 1e-5);
}

TEST(PropagateDequantize, DifferentScalesOrPadValuesStayPut) {
  // Concat of tensors dequantized with different scales, and a Pad of a nonzero value: nothing
  // moves, and nothing changes what the graph computes.
  std::mt19937 rng(14);
  G b;
  b.rng.seed(rng());
  Value* x = b.input("x", {1, 2, 3, 3});
  auto cat_a = std::make_unique<ConcatAttrs>();
  cat_a->axis = 1;
  Value* joined = b.node("Concat", {qdq(b, x, 0.02), qdq(b, x, 0.03)}, std::move(cat_a), "cat");
  auto pa = std::make_unique<PadAttrs>();
  Tensor pads(DataType::kInt64, Dims{8});
  for (int64_t i = 0; i < 8; ++i) pads.set_i64(i, i == 3 || i == 7 ? 1 : 0);
  b.output(b.node("Pad", {qdq(b, joined, 0.02), b.constant("pads", pads),
                          scalar_const(b, "value", DataType::kFloat, 0.5)},
                  std::move(pa), "pad"),
           "y");
  auto g = std::move(b.g);
  infer_graph(*g);
  auto before = g->clone();
  PassContext ctx;
  run_pipeline(*g, ctx);
  EXPECT_EQ(ctx.stats["propagate_dequantize.moved"], 0);
  EXPECT_EQ(first(*g, "Concat")->outputs[0]->dtype, DataType::kFloat);
  expect_same_outputs(*before, *g, 1e-6, rng, 1e-6);
}

TEST(FoldQuantization, PerTensorOnlyAndZeroWeightPointsOnly) {
  // A weight zero point other than 0 is not kiln's symmetric int8: the product stays as it was.
  std::mt19937 rng(12);
  G b;
  Value* x = b.input("x", {1, 2, 5, 5});
  Value* xd = dequantize(b, quantize(b, x, 0.05, 0, DataType::kInt8),
                         scalar_const(b, "xs", DataType::kFloat, 0.05),
                         scalar_const(b, "xz", DataType::kInt8, 0));
  Tensor q(DataType::kInt8, Dims{3, 2, 1, 1});
  for (int64_t i = 0; i < q.numel(); ++i) q.set_i64(i, i * 7 - 20);
  Value* w = dequantize(b, b.constant("wq", q), scalar_const(b, "ws", DataType::kFloat, 0.1),
                        scalar_const(b, "wz", DataType::kInt8, 3));
  auto ca = std::make_unique<ConvAttrs>();
  b.output(b.node("Conv", {xd, w}, std::move(ca), "conv"), "y");
  auto g = std::move(b.g);
  infer_graph(*g);
  auto before = g->clone();
  PassContext ctx;
  run_pipeline(*g, ctx);
  EXPECT_FALSE(first(*g, "Conv")->a<ConvAttrs>().quantized());
  expect_same_outputs(*before, *g, 1e-5, rng, 1e-5);
}

// ---- calibration data ------------------------------------------------------------------------

std::string temp_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// A zip archive of stored members, as numpy's savez writes it (local headers, central directory,
// end record), made here so that the reader is tested against the format, not against itself.
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& members) {
  auto u16 = [](std::string& s, uint32_t v) { s += char(v & 255); s += char((v >> 8) & 255); };
  auto u32 = [&](std::string& s, uint32_t v) { u16(s, v & 0xffff); u16(s, v >> 16); };
  std::string out, cd;
  for (const auto& [name, data] : members) {
    const uint32_t off = static_cast<uint32_t>(out.size());
    const uint32_t crc = 0;  // kiln does not check member CRCs; the .npy parser checks sizes
    u32(out, 0x04034b50); u16(out, 20); u16(out, 0); u16(out, 0); u16(out, 0); u16(out, 0);
    u32(out, crc); u32(out, data.size()); u32(out, data.size()); u16(out, name.size()); u16(out, 0);
    out += name + data;
    u32(cd, 0x02014b50); u16(cd, 20); u16(cd, 20); u16(cd, 0); u16(cd, 0); u16(cd, 0); u16(cd, 0);
    u32(cd, crc); u32(cd, data.size()); u32(cd, data.size()); u16(cd, name.size()); u16(cd, 0);
    u16(cd, 0); u16(cd, 0); u16(cd, 0); u32(cd, 0); u32(cd, off);
    cd += name;
  }
  const uint32_t cd_off = static_cast<uint32_t>(out.size());
  out += cd;
  u32(out, 0x06054b50); u16(out, 0); u16(out, 0); u16(out, members.size()); u16(out, members.size());
  u32(out, cd.size()); u32(out, cd_off); u16(out, 0);
  return out;
}

TEST(DirectoryCalibrator, ReadsNpyAndNpzBatchesInNameOrder) {
  const std::string d = temp_dir("kiln_calib_dir");
  std::mt19937 rng(1);
  Tensor a = random({2, 3}, rng), b = random({4, 3}, rng);
  write_npy(d + "/b.npy", b);
  write_npy(d + "/a.npy", a);
  write_npy(d + "/member.npy", a);
  write_file(d + "/c.npz", stored_zip({{"x.npy", read_file(d + "/member.npy")}}));
  std::filesystem::remove(d + "/member.npy");
  std::unique_ptr<Calibrator> c;
  ASSERT_TRUE(make_directory_calibrator(d, c).is_ok());
  EXPECT_EQ(c->batch_count(), 3);
  std::map<std::string, Tensor> batch;
  ASSERT_TRUE(c->next_batch(batch));
  EXPECT_EQ(dims_to_string(batch.at("").dims()), "[2,3]");  // a.npy first
  ASSERT_TRUE(c->next_batch(batch));
  EXPECT_EQ(dims_to_string(batch.at("").dims()), "[4,3]");
  ASSERT_TRUE(c->next_batch(batch));
  ASSERT_EQ(batch.count("x"), 1u);  // the .npz member, named after the array
  EXPECT_EQ(batch.at("x").get_f64(4), a.get_f64(4));
  EXPECT_FALSE(c->next_batch(batch));
  EXPECT_EQ(c->error(), "");
}

TEST(DirectoryCalibrator, BadFoldersAndFilesAreNamed) {
  std::unique_ptr<Calibrator> c;
  EXPECT_FALSE(make_directory_calibrator("/nonexistent/kiln", c).is_ok());
  const std::string empty = temp_dir("kiln_calib_empty");
  Status s = make_directory_calibrator(empty, c);
  EXPECT_NE(s.message().find("no .npy or .npz"), std::string::npos) << s.message();
  const std::string d = temp_dir("kiln_calib_bad");
  write_file(d + "/x.npy", "not an array");
  ASSERT_TRUE(make_directory_calibrator(d, c).is_ok());
  std::map<std::string, Tensor> batch;
  EXPECT_FALSE(c->next_batch(batch));
  EXPECT_NE(c->error().find("x.npy"), std::string::npos) << c->error();
}

// ---- robustness of the files calibration reads (issue 16) ------------------------------------

TEST(Files, NpyDeclaringMoreDataThanItHoldsIsRefusedBeforeAllocating) {
  // A 1.6 TB array declared in a file of a hundred bytes: an error at once, no allocation.
  const std::string p = ::testing::TempDir() + "kiln_huge_header.npy";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (400000, 1000000), }";
  header.resize(118, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 255) +
                      char(header.size() >> 8) + header + "abcd";
  write_file(p, bytes);
  try {
    read_npy(p);
    FAIL() << "a truncated array was read";
  } catch (const kiln::Error& e) {
    EXPECT_NE(e.message().find("fewer than"), std::string::npos) << e.message();
  }
  // A dimension of more digits than an int64 holds.
  std::string h2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }";
  h2.resize(118, ' ');
  h2 += '\n';
  write_file(p, std::string("\x93NUMPY\x01\x00", 8) + char(h2.size() & 255) + char(h2.size() >> 8) + h2);
  EXPECT_THROW(read_npy(p), kiln::Error);
  std::remove(p.c_str());
}

TEST(Files, AFifoIsRefusedNotWaitedOn) {
  const std::string p = ::testing::TempDir() + "kiln_fifo.npy";
  std::remove(p.c_str());
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  // With nobody writing, a blocking open would wait forever; ctest's timeout would catch it.
  try {
    read_npy(p);
    FAIL() << "a FIFO was read";
  } catch (const kiln::Error& e) {
    EXPECT_NE(e.message().find("not a regular file"), std::string::npos) << e.message();
  }
  std::remove(p.c_str());
}

// ---- post-training INT8 end to end -------------------------------------------------------------

// Calibration batches of the demo model's input (smooth random images in [0, 1]).
std::string image_batches(int files, int64_t per_file, uint32_t seed) {
  const std::string d = temp_dir("kiln_calib_images_" + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  for (int f = 0; f < files; ++f) {
    Tensor t(DataType::kFloat, Dims{per_file, 1, 28, 28});
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng) * u(rng);
    write_npy(d + "/batch" + std::to_string(f) + ".npy", t);
  }
  return d;
}

std::shared_ptr<Plan> build_demo(BuildOptions o) {
  o.device = "cpu";
  std::shared_ptr<Plan> p;
  Status s = Builder(o).build_from_onnx(std::string(KILN_SOURCE_DIR) + "/models/fashion_cnn.onnx", p);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return p;
}

int quantized_steps(const Plan& p) {
  int n = 0;
  for (const auto& s : p.data().graph->nodes())
    n += (s->op() == "Conv" && s->a<ConvAttrs>().quantized()) ||
         (s->op() == "MatMul" && s->a<MatMulAttrs>().quantized());
  return n;
}

TEST(Int8, CalibratesWritesTheCacheAndABuildWithTheCacheDoesNotCalibrate) {
  const std::string calib = image_batches(3, 20, 7);
  const std::string cache = ::testing::TempDir() + "kiln_int8.calib";
  std::remove(cache.c_str());
  BuildOptions o;
  o.int8 = true;
  o.calib_dir = calib;
  o.calib_cache = cache;
  std::vector<std::string> lines;
  o.progress = [&](const std::string& l) { lines.push_back(l); };
  auto cold = build_demo(o);
  ASSERT_TRUE(cold);
  EXPECT_EQ(quantized_steps(*cold), 10);  // 9 convolutions and the classifier
  ASSERT_TRUE(file_exists(cache));
  bool calibrated = false;
  for (const auto& l : lines) calibrated |= l.find("calibration: batch 3/3") != std::string::npos;
  EXPECT_TRUE(calibrated);
  // With the cache and no data: the same plan, no calibration.
  lines.clear();
  o.calib_dir.clear();
  auto warm = build_demo(o);
  ASSERT_TRUE(warm);
  EXPECT_TRUE(warm->serialize() == cold->serialize());
  for (const auto& l : lines) EXPECT_EQ(l.find("calibration: batch"), std::string::npos) << l;
  // Another algorithm: the cache is stale, and without data that is an error that says so.
  o.calib_algo = "minmax";
  std::shared_ptr<Plan> p;
  Status s = Builder(o).build_from_onnx(std::string(KILN_SOURCE_DIR) + "/models/fashion_cnn.onnx", p);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("stale"), std::string::npos) << s.message();
  // A corrupt cache is an error naming it, even with data to calibrate on.
  std::string bytes = read_file(cache);
  bytes[bytes.size() / 2] ^= 1;
  write_file(cache, bytes);
  o.calib_algo = "percentile";
  o.calib_dir = calib;
  s = Builder(o).build_from_onnx(std::string(KILN_SOURCE_DIR) + "/models/fashion_cnn.onnx", p);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("corrupt"), std::string::npos) << s.message();
  std::remove(cache.c_str());
}

TEST(Int8, NeedsDataOrACache) {
  BuildOptions o;
  o.int8 = true;
  o.device = "cpu";
  std::shared_ptr<Plan> p;
  Status s = Builder(o).build_from_onnx(std::string(KILN_SOURCE_DIR) + "/models/fashion_cnn.onnx", p);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("--calib"), std::string::npos) << s.message();
}

TEST(Int8, LayerPrecisionKeepsLayersInFloatAndOutputsStayClose) {
  const std::string calib = image_batches(2, 16, 9);
  BuildOptions o;
  o.int8 = true;
  o.calib_dir = calib;
  o.calib_algo = "minmax";
  auto all = build_demo(o);
  o.layer_precisions = {{"/block3/*", "fp32"}, {"/fc/*", "fp32"}};
  auto some = build_demo(o);
  ASSERT_TRUE(all && some);
  EXPECT_EQ(quantized_steps(*all), 10);
  EXPECT_EQ(quantized_steps(*some), 6);  // block3's three convolutions and the classifier stay
  // INT8 logits against FP32's on the model's own sample images: close, and the same classes.
  auto fp32 = build_demo(BuildOptions{});
  Tensor x = read_npy(std::string(KILN_SOURCE_DIR) + "/models/fashion_cnn.sample_input.npy");
  auto run1 = [&](const std::shared_ptr<Plan>& p) { return run_plan(p, {{"image", x}})["logits"]; };
  Tensor want = run1(fp32), got = run1(all), got_some = run1(some);
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    worst = std::max(worst, std::fabs(got.get_f64(i) - want.get_f64(i)));
    scale = std::max(scale, std::fabs(want.get_f64(i)));
  }
  EXPECT_LT(worst, 0.1 * scale) << "INT8 logits far from FP32's";
  EXPECT_GT(worst, 0.0) << "INT8 logits identical to FP32's: nothing was quantized";
  for (int64_t r = 0; r < want.dim(0); ++r) {
    auto argmax = [&](const Tensor& t) {
      int64_t best = 0;
      for (int64_t j = 1; j < t.dim(1); ++j)
        if (t.get_f64(r * t.dim(1) + j) > t.get_f64(r * t.dim(1) + best)) best = j;
      return best;
    };
    EXPECT_EQ(argmax(got), argmax(want)) << "image " << r;
    EXPECT_EQ(argmax(got_some), argmax(want)) << "image " << r;
  }
}

}  // namespace
}  // namespace kiln
