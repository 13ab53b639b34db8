// BatchedNMS (namespace kiln.examples): per-class non-maximum suppression with a fixed number of
// detections, as TensorRT's EfficientNMS plugin gives them.
//
// Inputs: boxes [N, B, 4] (x1, y1, x2, y2) and scores [N, B, C], float32.
// Fields: iou_threshold (0.45), score_threshold (0.25), max_detections (100), class_agnostic (0).
// Outputs: num_detections [N] int32; boxes [N, M, 4], scores [N, M] float32; classes [N, M]
// int32, M = max_detections. Rows past num_detections are zero, with class -1.
//
// Per image, every (box b, class c) whose score is above score_threshold is a candidate. In
// order of score, highest first, equal scores by b*C + c ascending (deterministic), a candidate
// is kept unless a kept candidate of the same class (any class when class_agnostic) overlaps it
// with IoU > iou_threshold; at most M are kept. IoU is torchvision's: areas (x2-x1)*(y2-y1),
// intersection clamped at zero; an empty union gives IoU 0.
#include <algorithm>
#include <numeric>
#include <vector>

#include "example_plugin.h"
#include "kernels.h"

namespace kiln_examples {

namespace {

using kiln::DataType;
using kiln::DimExpr;
using kiln::Status;

double iou(const float* a, const float* b) {
  double area_a = (double(a[2]) - a[0]) * (double(a[3]) - a[1]);
  double area_b = (double(b[2]) - b[0]) * (double(b[3]) - b[1]);
  double iw = std::max(0.0, std::min<double>(a[2], b[2]) - std::max<double>(a[0], b[0]));
  double ih = std::max(0.0, std::min<double>(a[3], b[3]) - std::max<double>(a[1], b[1]));
  double inter = iw * ih, uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0.0;
}

class BatchedNms final : public ExamplePlugin {
 public:
  static constexpr const char* kName = "BatchedNMS";

  static Status make(const kiln::PluginFields& f, std::unique_ptr<kiln::Plugin>& out) {
    if (f.get_int("max_detections", 100) <= 0) return invalid("BatchedNMS: max_detections must be positive");
    double iou_t = f.get_float("iou_threshold", 0.45);
    if (!(iou_t >= 0 && iou_t <= 1)) return invalid("BatchedNMS: iou_threshold must be in [0, 1]");
    out = std::make_unique<BatchedNms>(f);
    return Status::ok();
  }

  explicit BatchedNms(kiln::PluginFields f) : ExamplePlugin(std::move(f)) {
    iou_ = fields_.get_float("iou_threshold", 0.45);
    score_ = fields_.get_float("score_threshold", 0.25);
    max_det_ = fields_.get_int("max_detections", 100);
    agnostic_ = fields_.get_int("class_agnostic", 0) != 0;
  }
  std::string name() const override { return kName; }
  std::unique_ptr<kiln::Plugin> clone() const override { return std::make_unique<BatchedNms>(*this); }

  int32_t num_outputs() const override { return 4; }
  Status output_dtypes(std::span<const DataType> in, std::vector<DataType>& out) const override {
    if (in.size() != 2) return invalid("BatchedNMS takes boxes and scores");
    out = {DataType::kInt32, DataType::kFloat, DataType::kFloat, DataType::kInt32};
    return Status::ok();
  }
  Status output_shapes(std::span<const kiln::PluginTensorDesc> in,
                       std::vector<kiln::ShapeExpr>& out) const override {
    if (in[0].dims.size() != 3 || in[1].dims.size() != 3)
      return invalid("BatchedNMS: boxes must be [N, B, 4] and scores [N, B, C]");
    if (in[0].dims[2] >= 0 && in[0].dims[2] != 4) return invalid("BatchedNMS: boxes must be [N, B, 4]");
    const DimExpr n = DimExpr::input(0, 0), m(max_det_);
    out = {{n}, {n, m, 4}, {n, m}, {n, m}};
    return Status::ok();
  }
  bool supports_format(size_t pos, std::span<const kiln::PluginFormat> f, size_t nin,
                       kiln::PluginDevice) const override {
    static constexpr DataType kTypes[] = {DataType::kFloat, DataType::kFloat, DataType::kInt32,
                                          DataType::kFloat, DataType::kFloat, DataType::kInt32};
    return pos < 6 && f[pos].dtype == kTypes[pos] && f[pos].layout == kiln::PluginLayout::kLinear;
  }
  size_t workspace_size(std::span<const kiln::PluginTensorDesc> in,
                        std::span<const kiln::PluginTensorDesc>, kiln::PluginDevice d) const override {
    if (d != kiln::PluginDevice::kGpu) return 0;
    size_t n = 1;
    for (int64_t v : in[1].dims) n *= static_cast<size_t>(v);
    return n;  // one suppression flag per (image, box, class)
  }

  Status run_host(const kiln::PluginLaunch& l) const override {
    const kiln::PluginTensor& bx = l.inputs[0];
    const kiln::PluginTensor& sc = l.inputs[1];
    const int64_t n = bx.dims[0], b = bx.dims[1], c = sc.dims[2];
    if (sc.dims[0] != n || sc.dims[1] != b)
      return invalid("BatchedNMS: boxes and scores disagree on N or B");
    const float* boxes = bx.as<const float>();
    const float* scores = sc.as<const float>();
    int32_t* num = l.outputs[0].as<int32_t>();
    float* ob = l.outputs[1].as<float>();
    float* os = l.outputs[2].as<float>();
    int32_t* oc = l.outputs[3].as<int32_t>();
    std::fill(ob, ob + n * max_det_ * 4, 0.f);
    std::fill(os, os + n * max_det_, 0.f);
    std::fill(oc, oc + n * max_det_, -1);
    std::vector<int64_t> cand;
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < n; ++i) {
      const float* s = scores + i * b * c;
      const float* bb = boxes + i * b * 4;
      cand.clear();
      for (int64_t k = 0; k < b * c; ++k)
        if (s[k] > score_) cand.push_back(k);
      std::sort(cand.begin(), cand.end(), [&](int64_t x, int64_t y) {
        return s[x] != s[y] ? s[x] > s[y] : x < y;
      });
      kept.clear();
      for (int64_t k : cand) {
        if (static_cast<int64_t>(kept.size()) == max_det_) break;
        bool keep = true;
        for (int64_t q : kept)
          if ((agnostic_ || q % c == k % c) && iou(bb + (q / c) * 4, bb + (k / c) * 4) > iou_) {
            keep = false;
            break;
          }
        if (!keep) continue;
        const int64_t j = static_cast<int64_t>(kept.size());
        std::copy(bb + (k / c) * 4, bb + (k / c) * 4 + 4, ob + (i * max_det_ + j) * 4);
        os[i * max_det_ + j] = s[k];
        oc[i * max_det_ + j] = static_cast<int32_t>(k % c);
        kept.push_back(k);
      }
      num[i] = static_cast<int32_t>(kept.size());
    }
    return Status::ok();
  }

  Status enqueue(const kiln::PluginLaunch& l) const override {
#ifdef KILN_EXAMPLES_CUDA
    NmsParams p;
    p.boxes = l.inputs[0].as<const float>();
    p.scores = l.inputs[1].as<const float>();
    p.num = l.outputs[0].as<int32_t>();
    p.out_boxes = l.outputs[1].as<float>();
    p.out_scores = l.outputs[2].as<float>();
    p.out_classes = l.outputs[3].as<int32_t>();
    p.n = l.inputs[0].dims[0];
    p.b = l.inputs[0].dims[1];
    p.c = l.inputs[1].dims[2];
    p.max_det = max_det_;
    p.iou_threshold = iou_;
    p.score_threshold = score_;
    p.class_agnostic = agnostic_;
    p.flags = static_cast<unsigned char*>(l.workspace);
    if (l.workspace_bytes < static_cast<size_t>(p.n * p.b * p.c))
      return invalid("BatchedNMS: the workspace is smaller than asked");
    int rc = launch_batched_nms(p, l.stream);
    if (rc != 0) return Status(kiln::StatusCode::kDeviceError, "BatchedNMS: launch failed (" + std::to_string(rc) + ")");
    return Status::ok();
#else
    return ExamplePlugin::enqueue(l);
#endif
  }

 private:
  double iou_ = 0.45, score_ = 0.25;
  int64_t max_det_ = 100;
  bool agnostic_ = false;
};

}  // namespace

std::shared_ptr<const kiln::PluginCreator> batched_nms_creator() {
  return std::make_shared<ExampleCreator<BatchedNms>>();
}

}  // namespace kiln_examples
