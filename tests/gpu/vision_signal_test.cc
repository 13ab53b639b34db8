// cuda.grid_sample, cuda.roi_align, cuda.dft, cuda.stft and cuda.mel_weight_matrix against the
// reference computes. GridSample: every mode (and alias), padding and align_corners, grid points
// on pixel centres and rounding ties, outside the image, NaN, infinite and huge, mixed X / grid
// types, sizes of 1 and empty tensors. RoiAlign: avg / max, both coordinate modes, adaptive and
// fixed sampling, spatial scales, rois partly or wholly outside the image and malformed ones,
// int32 / int64 batch indices, empty roi sets. DFT / STFT: real and complex, every axis,
// forward / inverse, onesided, dft_length / frame_step / frame_length absent, constant or known
// only at run time, prime and > 1024 lengths. MelWeightMatrix: inputs at run time and constant,
// every output type family. Kernels compute in double (float for 16-bit data in GridSample and
// RoiAlign), so float32 results match within 1e-5, float64 within 1e-9, float16 / bfloat16
// within their rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <random>

#include "gpu/gpu_compare.h"
#include "ops/dft.h"
#include "ops/grid_sample.h"
#include "ops/mel_weight_matrix.h"
#include "ops/roi_align.h"
#include "ops/stft.h"

namespace kiln::testing {
namespace {

// ---- helpers ----------------------------------------------------------------------------------

Tensor scalar(DataType t, double v) {
  Tensor x(t, {});
  x.set_f64(0, v);
  return x;
}

double rtol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-2;
    case DataType::kBFloat16:
      return 3e-2;
    case DataType::kDouble:
      return 1e-9;
    default:
      return 1e-5;
  }
}
double atol_of(DataType t) {
  switch (t) {
    case DataType::kFloat16:
      return 1e-2;
    case DataType::kBFloat16:
      return 3e-2;
    case DataType::kDouble:
      return 1e-9;
    default:
      return 1e-6;
  }
}

const double kNan = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// ---- GridSample -------------------------------------------------------------------------------

constexpr const char* kGridSample = "cuda.grid_sample";

std::unique_ptr<GridSampleAttrs> gs_attrs(const std::string& mode, const std::string& pad,
                                          bool align) {
  auto a = std::make_unique<GridSampleAttrs>();
  a->mode = mode;
  a->padding_mode = pad;
  a->align_corners = align;
  return a;
}

// Grid points in [-1.3, 1.3); with `special`, every fifth coordinate is one of: the corners and
// centre, points that unnormalise to .5 (nearest-mode ties) or whole pixels, NaN, infinities and
// huge values.
Tensor gs_grid(DataType t, Dims d, uint32_t seed, bool special = true) {
  Tensor g = random_values(t, std::move(d), seed, -1.3, 1.3);
  const double specials[] = {-1,   1,    0,     -0.5, 0.5,   0.25, -0.75, 1.0 / 3, -1.0 / 7,
                             kNan, kInf, -kInf, 1e30, -1e30, 2.5,  -3.75, 1.0625,  -0.9999};
  if (special)
    for (int64_t i = 0, k = 0; i < g.numel(); i += 5, ++k)
      g.set_f64(i, specials[k % static_cast<int64_t>(std::size(specials))]);
  return g;
}

void check_gs(const Tensor& x, const Tensor& grid, const std::string& mode, const std::string& pad,
              bool align, double rtol, double atol) {
  SCOPED_TRACE(cat("GridSample ", mode, " ", pad, align ? " align_corners" : "", " X ",
                   dtype_name(x.dtype()), dims_to_string(x.dims()), " grid ",
                   dtype_name(grid.dtype()), dims_to_string(grid.dims())));
  expect_gpu_matches_reference("GridSample", gs_attrs(mode, pad, align),
                               {NodeInput::of(x), NodeInput::of(grid)}, 1, kGridSample, rtol, atol);
}

const char* kGsModes[] = {"bilinear", "nearest", "bicubic"};
const char* kGsPads[] = {"zeros", "border", "reflection"};

TEST(CudaGridSample, EveryModePaddingAndAlignmentFloat32) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1;
  for (const char* mode : {"bilinear", "nearest", "bicubic", "linear", "cubic"})
    for (const char* pad : kGsPads)
      for (bool align : {false, true}) {
        Tensor x = random_values(DataType::kFloat, {2, 3, 5, 7}, seed++, -2, 2);
        Tensor g = gs_grid(DataType::kFloat, {2, 4, 6, 2}, seed++);
        check_gs(x, g, mode, pad, align, 1e-5, 1e-6);
      }
}

TEST(CudaGridSample, Float16BFloat16Float64AndMixedGridTypes) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 101;
  for (DataType dt : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (const char* mode : kGsModes)
      for (const char* pad : kGsPads)
        for (bool align : {false, true}) {
          Tensor x = random_values(dt, {2, 2, 6, 5}, seed++, -2, 2);
          Tensor g = gs_grid(dt, {2, 3, 7, 2}, seed++);
          check_gs(x, g, mode, pad, align, rtol_of(dt), atol_of(dt));
        }
  const std::pair<DataType, DataType> mixed[] = {{DataType::kFloat16, DataType::kFloat},
                                                 {DataType::kFloat, DataType::kDouble},
                                                 {DataType::kDouble, DataType::kBFloat16}};
  for (const auto& [xt, gt] : mixed)
    for (const char* mode : kGsModes) {
      Tensor x = random_values(xt, {1, 3, 4, 6}, seed++, -2, 2);
      Tensor g = gs_grid(gt, {1, 5, 5, 2}, seed++);
      check_gs(x, g, mode, "reflection", false, rtol_of(xt), atol_of(xt));
    }
}

TEST(CudaGridSample, AwkwardSizes) {
  KILN_REQUIRE_GPU();
  struct Case {
    Dims x, grid;
  } cases[] = {
      {{1, 1, 1, 1}, {1, 3, 3, 2}},        // a single pixel (align_corners spans 0)
      {{3, 1, 1, 9}, {3, 2, 5, 2}},        // one row
      {{1, 2, 37, 41}, {1, 33, 35, 2}},    // primes
      {{2, 4, 64, 64}, {2, 128, 128, 2}},  // many blocks
      {{1, 1, 2, 2}, {1, 1, 1100, 2}},     // a long output row
  };
  uint32_t seed = 201;
  for (const Case& c : cases)
    for (const char* mode : kGsModes)
      for (const char* pad : kGsPads)
        for (bool align : {false, true}) {
          Tensor x = random_values(DataType::kFloat, c.x, seed++, -2, 2);
          Tensor g = gs_grid(DataType::kFloat, c.grid, seed++);
          check_gs(x, g, mode, pad, align, 1e-5, 1e-6);
        }
}

TEST(CudaGridSample, EmptyTensors) {
  KILN_REQUIRE_GPU();
  for (const char* mode : kGsModes)
    for (const char* pad : kGsPads) {
      // No output points, no channels, and an image without rows (every sample reads zeros).
      check_gs(random_values(DataType::kFloat, {2, 3, 4, 4}, 301),
               gs_grid(DataType::kFloat, {2, 0, 5, 2}, 302), mode, pad, false, 1e-5, 1e-6);
      check_gs(Tensor(DataType::kFloat, {1, 0, 4, 4}), gs_grid(DataType::kFloat, {1, 3, 3, 2}, 303),
               mode, pad, true, 1e-5, 1e-6);
      check_gs(Tensor(DataType::kFloat, {1, 2, 0, 3}),
               gs_grid(DataType::kFloat, {1, 2, 3, 2}, 304, false), mode, pad, false, 1e-5, 1e-6);
    }
}

// ---- RoiAlign ---------------------------------------------------------------------------------

constexpr const char* kRoiAlign = "cuda.roi_align";

std::unique_ptr<RoiAlignAttrs> ra_attrs(const std::string& mode, const std::string& coord,
                                        int64_t ph, int64_t pw, int64_t sampling, double scale) {
  auto a = std::make_unique<RoiAlignAttrs>();
  a->mode = mode;
  a->coordinate_transformation_mode = coord;
  a->output_height = ph;
  a->output_width = pw;
  a->sampling_ratio = sampling;
  a->spatial_scale = scale;
  return a;
}

// r rois over an h x w feature map, given in image coordinates (feature / scale): corners from
// 2 pixels before the map to 1 past it, sizes from -1 (malformed) to half the map plus 2.
Tensor ra_rois(DataType t, int64_t r, int64_t h, int64_t w, double scale, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Tensor rois(t, {r, 4});
  for (int64_t i = 0; i < r; ++i) {
    const double x1 = -2 + u(rng) * static_cast<double>(w + 3);
    const double y1 = -2 + u(rng) * static_cast<double>(h + 3);
    const double rw = -1 + u(rng) * static_cast<double>(w / 2 + 3);
    const double rh = -1 + u(rng) * static_cast<double>(h / 2 + 3);
    rois.set_f64(i * 4 + 0, x1 / scale);
    rois.set_f64(i * 4 + 1, y1 / scale);
    rois.set_f64(i * 4 + 2, (x1 + rw) / scale);
    rois.set_f64(i * 4 + 3, (y1 + rh) / scale);
  }
  return rois;
}

Tensor batch_indices(DataType t, int64_t r, int64_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> u(0, n - 1);
  Tensor b(t, {r});
  for (int64_t i = 0; i < r; ++i) b.set_i64(i, u(rng));
  return b;
}

void check_ra(const Tensor& x, const Tensor& rois, const Tensor& bidx,
              std::unique_ptr<RoiAlignAttrs> a, double rtol, double atol) {
  SCOPED_TRACE(cat("RoiAlign ", a->mode, " ", a->coordinate_transformation_mode, " ",
                   a->output_height, "x", a->output_width, " sampling ", a->sampling_ratio,
                   " scale ", a->spatial_scale, " X ", dtype_name(x.dtype()),
                   dims_to_string(x.dims()), " rois ", dims_to_string(rois.dims()), " ",
                   dtype_name(bidx.dtype())));
  expect_gpu_matches_reference("RoiAlign", std::move(a),
                               {NodeInput::of(x), NodeInput::of(rois), NodeInput::of(bidx)}, 1,
                               kRoiAlign, rtol, atol);
}

TEST(CudaRoiAlign, EveryModeCoordinateSamplingAndScaleFloat32) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 401;
  for (const char* mode : {"avg", "max"})
    for (const char* coord : {"half_pixel", "output_half_pixel"})
      for (int64_t sampling : {0, 1, 2, 3})
        for (double scale : {1.0, 0.5, 0.0625}) {
          Tensor x = random_values(DataType::kFloat, {2, 3, 11, 13}, seed++, -2, 2);
          Tensor rois = ra_rois(DataType::kFloat, 6, 11, 13, scale, seed++);
          Tensor b = batch_indices(DataType::kInt64, 6, 2, seed++);
          check_ra(x, rois, b, ra_attrs(mode, coord, 3, 4, sampling, scale), 1e-5, 1e-6);
        }
}

TEST(CudaRoiAlign, Float16BFloat16Float64AndInt32Indices) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 501;
  for (DataType dt : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (const char* mode : {"avg", "max"})
      for (const char* coord : {"half_pixel", "output_half_pixel"})
        for (int64_t sampling : {0, 2})
          for (DataType bt : {DataType::kInt64, DataType::kInt32}) {
            Tensor x = random_values(dt, {3, 2, 9, 8}, seed++, -2, 2);
            Tensor rois = ra_rois(dt, 5, 9, 8, 0.5, seed++);
            Tensor b = batch_indices(bt, 5, 3, seed++);
            check_ra(x, rois, b, ra_attrs(mode, coord, 2, 3, sampling, 0.5), rtol_of(dt),
                     atol_of(dt));
          }
}

TEST(CudaRoiAlign, AwkwardSizes) {
  KILN_REQUIRE_GPU();
  const auto i64_batch = DataType::kInt64;
  for (const char* mode : {"avg", "max"}) {
    const uint32_t s = std::string(mode) == "avg" ? 601 : 651;
    // 1x1 and 7x7 outputs, a 1x1 image, many channels.
    check_ra(random_values(DataType::kFloat, {1, 4, 10, 10}, s),
             ra_rois(DataType::kFloat, 3, 10, 10, 1, s + 1), batch_indices(i64_batch, 3, 1, s + 2),
             ra_attrs(mode, "half_pixel", 1, 1, 0, 1), 1e-5, 1e-6);
    check_ra(random_values(DataType::kFloat, {2, 3, 1, 1}, s + 3),
             ra_rois(DataType::kFloat, 4, 1, 1, 1, s + 4), batch_indices(i64_batch, 4, 2, s + 5),
             ra_attrs(mode, "output_half_pixel", 2, 2, 2, 1), 1e-5, 1e-6);
    check_ra(random_values(DataType::kFloat, {1, 64, 50, 50}, s + 6),
             ra_rois(DataType::kFloat, 10, 50, 50, 0.25, s + 7),
             batch_indices(i64_batch, 10, 1, s + 8), ra_attrs(mode, "half_pixel", 7, 7, 0, 0.25),
             1e-5, 1e-6);
    // One roi over the whole map, adaptive: 50 x 50 samples in the single bin.
    check_ra(random_values(DataType::kFloat, {1, 2, 50, 50}, s + 9), f32({1, 4}, {0, 0, 50, 50}),
             i64({1}, {0}), ra_attrs(mode, "half_pixel", 1, 1, 0, 1), 1e-5, 1e-6);
    // No rois, and no channels.
    check_ra(random_values(DataType::kFloat, {1, 2, 5, 5}, s + 10), Tensor(DataType::kFloat, {0, 4}),
             Tensor(DataType::kInt64, {0}), ra_attrs(mode, "half_pixel", 2, 2, 0, 1), 1e-5, 1e-6);
    check_ra(Tensor(DataType::kFloat, {1, 0, 5, 5}), ra_rois(DataType::kFloat, 2, 5, 5, 1, s + 11),
             batch_indices(i64_batch, 2, 1, s + 12), ra_attrs(mode, "half_pixel", 2, 2, 0, 1), 1e-5,
             1e-6);
  }
}

// ---- DFT --------------------------------------------------------------------------------------

constexpr const char* kDft = "cuda.dft";

std::unique_ptr<DftAttrs> dft_attrs(int64_t axis, bool inverse, bool onesided) {
  auto a = std::make_unique<DftAttrs>();
  a->axis = axis;
  a->inverse = inverse;
  a->onesided = onesided;
  return a;
}

void check_dft(const Tensor& x, std::optional<NodeInput> length, int64_t axis, bool inverse,
               bool onesided, double rtol, double atol) {
  SCOPED_TRACE(cat("DFT of ", dtype_name(x.dtype()), dims_to_string(x.dims()), " axis ", axis,
                   inverse ? " inverse" : "", onesided ? " onesided" : "",
                   length ? cat(" dft_length ", length->value.get_i64(0),
                                length->constant ? " (constant)" : " (run time)")
                          : std::string()));
  std::vector<NodeInput> ins = {NodeInput::of(x)};
  if (length) ins.push_back(*length);
  expect_gpu_matches_reference("DFT", dft_attrs(axis, inverse, onesided), std::move(ins), 1, kDft,
                               rtol, atol);
}

TEST(CudaDft, RealAndComplexEveryAxisFloat32) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 701;
  for (int64_t comps : {1, 2})
    for (int64_t axis : {0, 1, 2, -2, -3, -4})
      for (bool inverse : {false, true})
        for (bool onesided : {false, true}) {
          Tensor x = random_values(DataType::kFloat, {3, 7, 5, comps}, seed++);
          check_dft(x, std::nullopt, axis, inverse, onesided, 1e-5, 1e-6);
        }
}

TEST(CudaDft, DftLengthConstantAndAtRunTime) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 801;
  for (int64_t len : {1, 4, 13, 16, 25})  // truncate, equal, zero-pad
    for (bool onesided : {false, true})
      for (bool inverse : {false, true})
        for (int64_t comps : {1, 2}) {
          Tensor x = random_values(DataType::kFloat, {2, 13, 3, comps}, seed++);
          check_dft(x, NodeInput::constant_of(i64({}, {len})), 1, inverse, onesided, 1e-5, 1e-6);
          check_dft(x, NodeInput::of(i64({}, {len})), 1, inverse, onesided, 1e-5, 1e-6);
          check_dft(x, NodeInput::of(i32({}, {static_cast<int32_t>(len)})), -3, inverse, onesided,
                    1e-5, 1e-6);
          check_dft(x, NodeInput::constant_of(i32({1}, {static_cast<int32_t>(len)})), 1, inverse,
                    onesided, 1e-5, 1e-6);
        }
}

TEST(CudaDft, LongPrimeAndBatchedSignals) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 901;
  for (bool onesided : {false, true}) {
    check_dft(random_values(DataType::kFloat, {2, 1, 1}, seed++), std::nullopt, 1, false, onesided, 1e-5,
              1e-6);
    check_dft(random_values(DataType::kFloat, {2, 1031, 1}, seed++), std::nullopt, 1, false, onesided, 1e-5,
              1e-5);
    check_dft(random_values(DataType::kDouble, {1, 2048, 2}, seed++), std::nullopt, 1, true, onesided, 1e-9,
              1e-9);
    check_dft(random_values(DataType::kFloat, {64, 256, 1}, seed++), std::nullopt, 1, false, onesided, 1e-5,
              1e-5);
    check_dft(random_values(DataType::kFloat, {2, 500, 1}, seed++), NodeInput::of(i64({}, {1500})), 1, false,
              onesided, 1e-5, 1e-5);
  }
}

TEST(CudaDft, Float16BFloat16Float64) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1001;
  for (DataType dt : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (int64_t comps : {1, 2})
      for (bool inverse : {false, true})
        for (bool onesided : {false, true}) {
          Tensor x = random_values(dt, {3, 17, comps}, seed++);
          check_dft(x, std::nullopt, 1, inverse, onesided, rtol_of(dt), atol_of(dt));
          check_dft(x, NodeInput::of(i64({}, {20})), 1, inverse, onesided, rtol_of(dt),
                    atol_of(dt));
        }
}

TEST(CudaDft, EmptyTensors) {
  KILN_REQUIRE_GPU();
  check_dft(Tensor(DataType::kFloat, {0, 5, 1}), std::nullopt, 1, false, false, 1e-5, 1e-6);
  check_dft(Tensor(DataType::kFloat, {2, 5, 0, 2}), std::nullopt, 1, false, true, 1e-5, 1e-6);
  // An empty signal padded to 4: zeros.
  check_dft(Tensor(DataType::kFloat, {2, 0, 1}), NodeInput::constant_of(i64({}, {4})), 1, false,
            false, 1e-5, 1e-6);
}

// ---- STFT -------------------------------------------------------------------------------------

constexpr const char* kStft = "cuda.stft";

void check_stft(const Tensor& signal, const NodeInput& step, const std::optional<Tensor>& window,
                const std::optional<NodeInput>& frame_length, bool onesided, double rtol,
                double atol) {
  SCOPED_TRACE(cat("STFT of ", dtype_name(signal.dtype()), dims_to_string(signal.dims()), " step ",
                   step.value.get_i64(0), step.constant ? " (constant)" : " (run time)",
                   window ? cat(" window ", window->numel()) : std::string(),
                   frame_length ? cat(" frame_length ", frame_length->value.get_i64(0),
                                      frame_length->constant ? " (constant)" : " (run time)")
                                : std::string(),
                   onesided ? " onesided" : ""));
  auto a = std::make_unique<StftAttrs>();
  a->onesided = onesided;
  std::vector<NodeInput> ins = {NodeInput::of(signal), step,
                                window ? NodeInput::of(*window) : NodeInput::none()};
  if (frame_length) ins.push_back(*frame_length);
  expect_gpu_matches_reference("STFT", std::move(a), std::move(ins), 1, kStft, rtol, atol);
}

TEST(CudaStft, EveryInputCombinationFloat32) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1101;
  for (int64_t comps : {1, 2})
    for (bool step_constant : {true, false})
      for (int with : {0, 1, 2})  // window only, frame_length only, both
        for (bool fl_constant : {true, false})
          for (bool onesided : {true, false}) {
            if (with == 0 && !fl_constant) continue;
            Tensor signal = random_values(DataType::kFloat, {2, 50, comps}, seed++);
            NodeInput step =
                step_constant ? NodeInput::constant_of(i64({}, {3})) : NodeInput::of(i64({}, {3}));
            std::optional<Tensor> window;
            if (with != 1) window = random_values(DataType::kFloat, {8}, seed++, 0, 1);
            std::optional<NodeInput> fl;
            if (with != 0)
              fl = fl_constant ? NodeInput::constant_of(i32({}, {8})) : NodeInput::of(i64({}, {8}));
            check_stft(signal, step, window, fl, onesided, 1e-5, 1e-6);
          }
}

TEST(CudaStft, AwkwardFrames) {
  KILN_REQUIRE_GPU();
  // An audio-like front end: 400-sample frames every 160, Hann window.
  Tensor hann(DataType::kFloat, {400});
  for (int64_t i = 0; i < 400; ++i)
    hann.set_f64(i, 0.5 - 0.5 * std::cos(2 * M_PI * static_cast<double>(i) / 400.0));
  for (bool onesided : {true, false}) {
    const uint32_t s = onesided ? 1201 : 1251;
    check_stft(random_values(DataType::kFloat, {2, 4001, 1}, s), NodeInput::constant_of(i64({}, {160})), hann,
               std::nullopt, onesided, 1e-5, 1e-5);
    // One frame covering the signal; frames of 1; prime frames and steps.
    check_stft(random_values(DataType::kFloat, {1, 37, 2}, s + 1), NodeInput::of(i64({}, {5})), std::nullopt,
               NodeInput::constant_of(i64({}, {37})), onesided, 1e-5, 1e-6);
    check_stft(random_values(DataType::kFloat, {3, 10, 1}, s + 2), NodeInput::constant_of(i64({}, {1})),
               std::nullopt, NodeInput::of(i64({}, {1})), onesided, 1e-5, 1e-6);
    check_stft(random_values(DataType::kFloat, {2, 101, 1}, s + 3), NodeInput::of(i32({}, {7})),
               random_values(DataType::kFloat, {13}, s + 4, 0, 1), NodeInput::of(i64({}, {13})), onesided,
               1e-5, 1e-6);
    // A step longer than the frame skips samples; an empty batch.
    check_stft(random_values(DataType::kFloat, {1, 60, 1}, s + 5), NodeInput::constant_of(i64({}, {11})),
               random_values(DataType::kFloat, {4}, s + 6, 0, 1), std::nullopt, onesided, 1e-5, 1e-6);
    check_stft(Tensor(DataType::kFloat, {0, 20, 1}), NodeInput::constant_of(i64({}, {4})),
               std::nullopt, NodeInput::constant_of(i64({}, {8})), onesided, 1e-5, 1e-6);
  }
}

TEST(CudaStft, Float16BFloat16Float64) {
  KILN_REQUIRE_GPU();
  uint32_t seed = 1301;
  for (DataType dt : {DataType::kFloat16, DataType::kBFloat16, DataType::kDouble})
    for (int64_t comps : {1, 2})
      for (bool onesided : {true, false}) {
        Tensor signal = random_values(dt, {2, 40, comps}, seed++);
        Tensor window = random_values(dt, {10}, seed++, 0, 1);
        check_stft(signal, NodeInput::of(i64({}, {4})), window, std::nullopt, onesided, rtol_of(dt),
                   atol_of(dt));
      }
}

// ---- MelWeightMatrix --------------------------------------------------------------------------

constexpr const char* kMel = "cuda.mel_weight_matrix";

struct MelArgs {
  int64_t bins, dft_length, sample_rate;
  double lower, upper;
};

// Edge frequencies whose float32 mel values glibc's log10f rounds correctly, and bins at least
// 1e-3 away from a floor boundary (checked on the host with the reference's arithmetic): the
// kernel's double log10 then gives exactly the reference's matrix.
const MelArgs kMelCases[] = {
    {4, 40, 16000, 100, 7000},   {1, 1, 8000, 0, 4000},        {40, 512, 16000, 0, 8000},
    {80, 400, 16000, 0, 8000},   {23, 1023, 22050, 20, 11025}, {7, 64, 8000, 100, 7000},
    {80, 512, 16000, 20, 8000},  {13, 257, 44100, 0, 22050},   {10, 100, 8000, 0, 8000},
    {128, 1024, 16000, 0, 8000},
};

void check_mel(const MelArgs& m, DataType out, DataType int_t, DataType edge_t, bool constant) {
  SCOPED_TRACE(cat("MelWeightMatrix ", m.bins, " bins, dft_length ", m.dft_length, ", rate ",
                   m.sample_rate, ", ", m.lower, "..", m.upper, " Hz, ", dtype_name(out), " from ",
                   dtype_name(int_t), " / ", dtype_name(edge_t),
                   constant ? " constants" : " run-time inputs"));
  auto in = [&](Tensor t) { return constant ? NodeInput::constant_of(t) : NodeInput::of(t); };
  auto a = std::make_unique<MelWeightMatrixAttrs>();
  a->output_dtype = out;
  const bool is_float = dtype_is_float(out);
  expect_gpu_matches_reference("MelWeightMatrix", std::move(a),
                               {in(scalar(int_t, static_cast<double>(m.bins))),
                                in(scalar(int_t, static_cast<double>(m.dft_length))),
                                in(scalar(int_t, static_cast<double>(m.sample_rate))),
                                in(scalar(edge_t, m.lower)), in(scalar(edge_t, m.upper))},
                               1, kMel, is_float ? rtol_of(out) : 0, is_float ? atol_of(out) : 0);
}

TEST(CudaMelWeightMatrix, RunTimeAndConstantInputs) {
  KILN_REQUIRE_GPU();
  for (const MelArgs& m : kMelCases)
    for (bool constant : {false, true}) {
      check_mel(m, DataType::kFloat, DataType::kInt64, DataType::kFloat, constant);
      check_mel(m, DataType::kDouble, DataType::kInt32, DataType::kDouble, constant);
    }
}

TEST(CudaMelWeightMatrix, EveryOutputTypeFamily) {
  KILN_REQUIRE_GPU();
  const DataType outs[] = {DataType::kFloat16, DataType::kBFloat16, DataType::kInt32,
                           DataType::kInt64,   DataType::kUInt8,    DataType::kInt8};
  for (DataType out : outs) {
    check_mel(kMelCases[0], out, DataType::kInt32, DataType::kFloat, false);
    check_mel(kMelCases[2], out, DataType::kInt64, DataType::kDouble, false);
  }
  // Edges given as float16 (100, 7000, 0 and 8000 are exact in it).
  check_mel(kMelCases[0], DataType::kFloat, DataType::kInt64, DataType::kFloat16, false);
  check_mel(kMelCases[3], DataType::kFloat, DataType::kInt64, DataType::kFloat16, false);
}

}  // namespace
}  // namespace kiln::testing
