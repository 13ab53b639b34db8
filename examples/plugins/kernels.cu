// The example plugins' CUDA kernels: simple, one thread per box for the decoder, one block per
// image for NMS (an argmax over the candidates left, then a suppression sweep, per detection).
// They compute as the CPU implementations do (IoU in double), so that the GPU test compares
// them exactly on the kept set.
#include <cuda_runtime.h>

#include "kernels.h"

namespace kiln_examples {

namespace {

__device__ float sigmoidf_(float v) { return 1.f / (1.f + expf(-v)); }

__global__ void decode_kernel(DecodeParams p) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= p.n * p.num_boxes) return;
  const int64_t i = t / p.num_boxes, b = t % p.num_boxes, c = p.classes;
  float cx, cy, w, h, obj;
  float* sp = p.scores + t * c;
  if (p.anchors > 0) {
    const int64_t a = b / (p.h * p.w), y = (b / p.w) % p.h, x = b % p.w;
    const int64_t ch = p.anchors * (5 + c);
    auto at = [&](int64_t k) { return sigmoidf_(p.x[((i * ch + a * (5 + c) + k) * p.h + y) * p.w + x]); };
    cx = (2.f * at(0) - 0.5f + static_cast<float>(x)) * p.stride;
    cy = (2.f * at(1) - 0.5f + static_cast<float>(y)) * p.stride;
    const float tw = 2.f * at(2), th = 2.f * at(3);
    w = tw * tw * p.anchor_wh[2 * a];
    h = th * th * p.anchor_wh[2 * a + 1];
    obj = at(4);
    for (int64_t k = 0; k < c; ++k) sp[k] = at(5 + k) * obj;
  } else {
    const float* row = p.x + t * (5 + c);
    cx = row[0], cy = row[1], w = row[2], h = row[3];
    obj = p.sigmoid_rows ? sigmoidf_(row[4]) : row[4];
    for (int64_t k = 0; k < c; ++k) sp[k] = (p.sigmoid_rows ? sigmoidf_(row[5 + k]) : row[5 + k]) * obj;
  }
  float* box = p.boxes + t * 4;
  box[0] = cx - w / 2;
  box[1] = cy - h / 2;
  box[2] = cx + w / 2;
  box[3] = cy + h / 2;
}

__device__ double iou(const float* a, const float* b) {
  double area_a = (double(a[2]) - a[0]) * (double(a[3]) - a[1]);
  double area_b = (double(b[2]) - b[0]) * (double(b[3]) - b[1]);
  double iw = fmax(0.0, fmin(double(a[2]), double(b[2])) - fmax(double(a[0]), double(b[0])));
  double ih = fmax(0.0, fmin(double(a[3]), double(b[3])) - fmax(double(a[1]), double(b[1])));
  double inter = iw * ih, uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0.0;
}

constexpr int kThreads = 256;

__global__ void nms_kernel(NmsParams p) {
  const int64_t i = blockIdx.x, bc = p.b * p.c;
  const float* s = p.scores + i * bc;
  const float* boxes = p.boxes + i * p.b * 4;
  unsigned char* alive = p.flags + i * bc;
  for (int64_t k = threadIdx.x; k < bc; k += blockDim.x) alive[k] = s[k] > p.score_threshold;
  for (int64_t k = threadIdx.x; k < p.max_det; k += blockDim.x) {
    for (int q = 0; q < 4; ++q) p.out_boxes[(i * p.max_det + k) * 4 + q] = 0.f;
    p.out_scores[i * p.max_det + k] = 0.f;
    p.out_classes[i * p.max_det + k] = -1;
  }
  __shared__ float best_s[kThreads];
  __shared__ long long best_k[kThreads];
  __syncthreads();
  int64_t kept = 0;
  for (; kept < p.max_det; ++kept) {
    float bs = 0.f;
    long long bk = -1;
    for (int64_t k = threadIdx.x; k < bc; k += blockDim.x)
      if (alive[k] && (bk < 0 || s[k] > bs)) {  // k rises: an equal score keeps the smaller k
        bs = s[k];
        bk = k;
      }
    best_s[threadIdx.x] = bs;
    best_k[threadIdx.x] = bk;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w /= 2) {
      if (threadIdx.x < w) {
        float os = best_s[threadIdx.x + w];
        long long ok = best_k[threadIdx.x + w];
        long long mk = best_k[threadIdx.x];
        if (ok >= 0 && (mk < 0 || os > best_s[threadIdx.x] || (os == best_s[threadIdx.x] && ok < mk))) {
          best_s[threadIdx.x] = os;
          best_k[threadIdx.x] = ok;
        }
      }
      __syncthreads();
    }
    const long long k = best_k[0];
    const float score = best_s[0];
    __syncthreads();  // every thread has read the winner before slot 0 is reused
    if (k < 0) break;
    const float* kb = boxes + (k / p.c) * 4;
    if (threadIdx.x == 0) {
      for (int q = 0; q < 4; ++q) p.out_boxes[(i * p.max_det + kept) * 4 + q] = kb[q];
      p.out_scores[i * p.max_det + kept] = score;
      p.out_classes[i * p.max_det + kept] = static_cast<int32_t>(k % p.c);
      alive[k] = 0;
    }
    for (int64_t q = threadIdx.x; q < bc; q += blockDim.x)
      if (alive[q] && q != k && (p.class_agnostic || q % p.c == k % p.c) &&
          iou(kb, boxes + (q / p.c) * 4) > p.iou_threshold)
        alive[q] = 0;
    __syncthreads();
  }
  if (threadIdx.x == 0) p.num[i] = static_cast<int32_t>(kept);
}

}  // namespace

int launch_yolo_decode(const DecodeParams& p, void* stream) {
  const int64_t total = p.n * p.num_boxes;
  if (total == 0) return 0;
  const int threads = 256;
  decode_kernel<<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0,
                  static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

int launch_batched_nms(const NmsParams& p, void* stream) {
  if (p.n == 0) return 0;
  nms_kernel<<<static_cast<unsigned>(p.n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace kiln_examples
