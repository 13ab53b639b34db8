// The example plugins' CUDA launchers (kernels.cu). Plain C++: the plugins include this without
// CUDA headers. Each returns a cudaError_t as an int (0: launched).
#pragma once
#include <cstdint>

namespace kiln_examples {

struct DecodeParams {
  const float* x = nullptr;
  float* boxes = nullptr;       // [N, num_boxes, 4]
  float* scores = nullptr;      // [N, num_boxes, C]
  int64_t n = 0, num_boxes = 0, classes = 0;
  // Raw head ([N, A*(5+C), H, W]) when anchors > 0; else decoded rows [N, num_boxes, 5+C].
  int64_t anchors = 0, h = 0, w = 0;
  static constexpr int kMaxAnchors = 16;
  float anchor_wh[2 * kMaxAnchors] = {};  // by value: graph capture records it with the launch
  float stride = 0;
  bool sigmoid_rows = false;    // rows: obj and classes are logits
};
int launch_yolo_decode(const DecodeParams& p, void* stream);

struct NmsParams {
  const float* boxes = nullptr;   // [N, B, 4] xyxy
  const float* scores = nullptr;  // [N, B, C]
  int32_t* num = nullptr;         // [N]
  float* out_boxes = nullptr;     // [N, M, 4]
  float* out_scores = nullptr;    // [N, M]
  int32_t* out_classes = nullptr; // [N, M]
  int64_t n = 0, b = 0, c = 0, max_det = 0;
  double iou_threshold = 0.5, score_threshold = 0;  // compared in double, as on the CPU
  bool class_agnostic = false;
  unsigned char* flags = nullptr; // workspace: N*B*C bytes
};
int launch_batched_nms(const NmsParams& p, void* stream);

}  // namespace kiln_examples
