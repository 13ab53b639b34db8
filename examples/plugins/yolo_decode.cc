// YoloDecode (namespace kiln.examples): a YOLO detection head's raw output to boxes and scores.
//
// Input 0, float32, one of
//   [N, A*(5+C), H, W]  a raw head (YOLOv5): per anchor a and cell (y, x) the channels
//                       a*(5+C) + (tx, ty, tw, th, obj, class 0..C-1), all logits; needs the
//                       fields `anchors` (w, h pairs in pixels, A of them) and `stride`;
//   [N, num_boxes, 5+C] rows (cx, cy, w, h, obj, classes...) in pixels, as a detector exported
//                       with its decode writes them; `sigmoid` = 1 if obj and classes are logits.
// Outputs: boxes [N, num_boxes, 4] (x1, y1, x2, y2), float32; scores [N, num_boxes, C] = class
// probability * objectness, float32. For a raw head, box index (a*H + y)*W + x and, with s the
// sigmoid: cx = (2 s(tx) - 0.5 + x) * stride, cy likewise, w = (2 s(tw))^2 * anchor_w, h likewise.
#include <cmath>
#include <vector>

#include "example_plugin.h"
#include "kernels.h"

namespace kiln_examples {

namespace {

using kiln::DataType;
using kiln::DimExpr;
using kiln::Status;

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

class YoloDecode final : public ExamplePlugin {
 public:
  static constexpr const char* kName = "YoloDecode";

  static Status make(const kiln::PluginFields& f, std::unique_ptr<kiln::Plugin>& out) {
    std::vector<double> anchors = f.get_floats("anchors");
    if (anchors.size() % 2 != 0) return invalid("YoloDecode: anchors must be (w, h) pairs");
    if (anchors.size() / 2 > static_cast<size_t>(DecodeParams::kMaxAnchors))
      return invalid("YoloDecode: at most 16 anchors");
    if (!anchors.empty() && !(f.get_float("stride", 0) > 0))
      return invalid("YoloDecode: a raw head needs a positive stride");
    out = std::make_unique<YoloDecode>(f);
    return Status::ok();
  }

  explicit YoloDecode(kiln::PluginFields f) : ExamplePlugin(std::move(f)) {
    anchors_ = fields_.get_floats("anchors");
    stride_ = fields_.get_float("stride", 0);
    sigmoid_rows_ = fields_.get_int("sigmoid", 0) != 0;
  }
  std::string name() const override { return kName; }
  std::unique_ptr<kiln::Plugin> clone() const override { return std::make_unique<YoloDecode>(*this); }

  int32_t num_outputs() const override { return 2; }
  Status output_dtypes(std::span<const DataType> in, std::vector<DataType>& out) const override {
    if (in.size() != 1) return invalid("YoloDecode takes one input");
    out = {DataType::kFloat, DataType::kFloat};
    return Status::ok();
  }
  Status output_shapes(std::span<const kiln::PluginTensorDesc> in,
                       std::vector<kiln::ShapeExpr>& out) const override {
    const auto x = [](int32_t axis) { return DimExpr::input(0, axis); };
    const int64_t a = static_cast<int64_t>(anchors_.size() / 2);
    if (in[0].dims.size() == 4) {
      if (a == 0) return invalid("YoloDecode: a raw head [N, A*(5+C), H, W] needs anchors");
      if (in[0].dims[1] >= 0 && (in[0].dims[1] % a != 0 || in[0].dims[1] / a <= 5))
        return invalid("YoloDecode: the channels are not A*(5+C)");
      DimExpr boxes = DimExpr(a) * x(2) * x(3), classes = x(1) / a - 5;
      out = {{x(0), boxes, 4}, {x(0), boxes, classes}};
      return Status::ok();
    }
    if (in[0].dims.size() == 3) {
      if (in[0].dims[2] >= 0 && in[0].dims[2] <= 5) return invalid("YoloDecode: rows need 5+C values");
      out = {{x(0), x(1), 4}, {x(0), x(1), x(2) - 5}};
      return Status::ok();
    }
    return invalid("YoloDecode: the input must be [N, A*(5+C), H, W] or [N, boxes, 5+C]");
  }
  bool supports_format(size_t pos, std::span<const kiln::PluginFormat> f, size_t,
                       kiln::PluginDevice) const override {
    return f[pos].dtype == DataType::kFloat && f[pos].layout == kiln::PluginLayout::kLinear;
  }

  Status run_host(const kiln::PluginLaunch& l) const override {
    const kiln::PluginTensor& x = l.inputs[0];
    const float* xp = x.as<const float>();
    float* bp = l.outputs[0].as<float>();
    float* sp = l.outputs[1].as<float>();
    const int64_t n = x.dims[0], nb = l.outputs[0].dims[1], c = l.outputs[1].dims[2];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t b = 0; b < nb; ++b) {
        double cx, cy, w, h, obj;
        std::vector<double> cls(static_cast<size_t>(c));
        if (x.dims.size() == 4) {
          const int64_t hh = x.dims[2], ww = x.dims[3], a = b / (hh * ww), y = (b / ww) % hh, xx = b % ww;
          auto at = [&](int64_t k) {
            return sigmoid(xp[((i * x.dims[1] + a * (5 + c) + k) * hh + y) * ww + xx]);
          };
          cx = (2 * at(0) - 0.5 + static_cast<double>(xx)) * stride_;
          cy = (2 * at(1) - 0.5 + static_cast<double>(y)) * stride_;
          w = 4 * at(2) * at(2) * anchors_[2 * a];
          h = 4 * at(3) * at(3) * anchors_[2 * a + 1];
          obj = at(4);
          for (int64_t k = 0; k < c; ++k) cls[k] = at(5 + k);
        } else {
          const float* row = xp + (i * nb + b) * (5 + c);
          cx = row[0], cy = row[1], w = row[2], h = row[3];
          obj = sigmoid_rows_ ? sigmoid(row[4]) : row[4];
          for (int64_t k = 0; k < c; ++k) cls[k] = sigmoid_rows_ ? sigmoid(row[5 + k]) : row[5 + k];
        }
        float* box = bp + (i * nb + b) * 4;
        box[0] = static_cast<float>(cx - w / 2);
        box[1] = static_cast<float>(cy - h / 2);
        box[2] = static_cast<float>(cx + w / 2);
        box[3] = static_cast<float>(cy + h / 2);
        for (int64_t k = 0; k < c; ++k) sp[(i * nb + b) * c + k] = static_cast<float>(cls[k] * obj);
      }
    return Status::ok();
  }

  Status enqueue(const kiln::PluginLaunch& l) const override {
#ifdef KILN_EXAMPLES_CUDA
    const kiln::PluginTensor& x = l.inputs[0];
    DecodeParams p;
    p.x = x.as<const float>();
    p.boxes = l.outputs[0].as<float>();
    p.scores = l.outputs[1].as<float>();
    p.n = x.dims[0];
    p.num_boxes = l.outputs[0].dims[1];
    p.classes = l.outputs[1].dims[2];
    if (x.dims.size() == 4) {
      p.anchors = static_cast<int64_t>(anchors_.size() / 2);
      p.h = x.dims[2];
      p.w = x.dims[3];
      for (size_t k = 0; k < anchors_.size(); ++k) p.anchor_wh[k] = static_cast<float>(anchors_[k]);
      p.stride = static_cast<float>(stride_);
    }
    p.sigmoid_rows = sigmoid_rows_;
    int rc = launch_yolo_decode(p, l.stream);
    if (rc != 0) return Status(kiln::StatusCode::kDeviceError, "YoloDecode: launch failed (" + std::to_string(rc) + ")");
    return Status::ok();
#else
    return ExamplePlugin::enqueue(l);
#endif
  }

 private:
  std::vector<double> anchors_;
  double stride_ = 0;
  bool sigmoid_rows_ = false;
};

}  // namespace

std::shared_ptr<const kiln::PluginCreator> yolo_decode_creator() {
  return std::make_shared<ExampleCreator<YoloDecode>>();
}

}  // namespace kiln_examples
