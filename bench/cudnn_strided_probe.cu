// Probe: does cuDNN (legacy API) run fp16 NHWC convolutions whose x/y are channel slices of wider
// tensors (strided descriptors)? And conv1 with C=3 vs padded C=4/8.
#include <cudnn.h>
#include <cuda_fp16.h>
#include <cstdio>
#include <vector>
#include <cstdlib>
#include <cmath>
#define CK(x) do { auto s_ = (x); if (s_ != CUDNN_STATUS_SUCCESS) { printf("  %s -> %s\n", #x, cudnnGetErrorString(s_)); } } while (0)
static cudnnHandle_t h;
struct T { cudnnTensorDescriptor_t d; };
cudnnTensorDescriptor_t nhwc(int n, int c, int hh, int w, int ctot) {
  cudnnTensorDescriptor_t d; cudnnCreateTensorDescriptor(&d);
  CK(cudnnSetTensor4dDescriptorEx(d, CUDNN_DATA_HALF, n, c, hh, w, hh * w * ctot, 1, w * ctot, ctot));
  return d;
}
void run(const char* tag, int N, int C, int Cx, int xoff, int H, int W, int K, int Ky, int yoff,
         int R, int stride, int pad, bool bias_act) {
  int P = (H + 2 * pad - R) / stride + 1, Q = (W + 2 * pad - R) / stride + 1;
  auto xd = nhwc(N, C, H, W, Cx), yd = nhwc(N, K, P, Q, Ky);
  cudnnFilterDescriptor_t wd; cudnnCreateFilterDescriptor(&wd);
  CK(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, K, C, R, R));
  cudnnConvolutionDescriptor_t cd; cudnnCreateConvolutionDescriptor(&cd);
  CK(cudnnSetConvolution2dDescriptor(cd, pad, pad, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  CK(cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH));
  size_t xn = (size_t)N * H * W * Cx, yn = (size_t)N * P * Q * Ky, wn = (size_t)K * R * R * C;
  std::vector<__half> hx(xn), hw(wn);
  for (auto& v : hx) v = __float2half((rand() % 200 - 100) / 100.f);
  for (auto& v : hw) v = __float2half((rand() % 200 - 100) / 400.f);
  __half *x, *y, *w, *y2; void* ws; size_t wsn = 512 << 20;
  cudaMalloc(&x, xn * 2); cudaMalloc(&y, yn * 2); cudaMalloc(&y2, yn * 2); cudaMalloc(&w, wn * 2); cudaMalloc(&ws, wsn);
  cudaMemcpy(x, hx.data(), xn * 2, cudaMemcpyHostToDevice); cudaMemcpy(w, hw.data(), wn * 2, cudaMemcpyHostToDevice);
  cudaMemset(y, 0, yn * 2);
  cudnnConvolutionFwdAlgoPerf_t perf[16]; int got = 0;
  cudnnStatus_t s = cudnnFindConvolutionForwardAlgorithmEx(h, xd, x + xoff, wd, w, cd, yd, y + yoff, 16, &got, perf, ws, wsn);
  printf("%s: find %s, %d results\n", tag, cudnnGetErrorString(s), got);
  float best = 1e9; int bi = -1;
  for (int i = 0; i < got; ++i) {
    if (perf[i].status == CUDNN_STATUS_SUCCESS) {
      printf("   algo %d  %.4f ms  ws %zu MB\n", perf[i].algo, perf[i].time, perf[i].memory >> 20);
      if (perf[i].time < best) { best = perf[i].time; bi = i; }
    }
  }
  if (bi >= 0 && bias_act) {
    cudnnTensorDescriptor_t bd; cudnnCreateTensorDescriptor(&bd);
    CK(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, K, 1, 1));
    __half* b; cudaMalloc(&b, K * 2); cudaMemset(b, 0, K * 2);
    cudnnActivationDescriptor_t ad; cudnnCreateActivationDescriptor(&ad);
    cudnnSetActivationDescriptor(ad, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0);
    float one = 1, zero = 0;
    for (int i = 0; i < got; ++i) if (perf[i].status == CUDNN_STATUS_SUCCESS) {
      cudnnStatus_t s2 = cudnnConvolutionBiasActivationForward(h, &one, xd, x + xoff, wd, w, cd, perf[i].algo, ws, wsn, &zero, yd, y + yoff, bd, b, ad, yd, y + yoff);
      cudaError_t ce = cudaDeviceSynchronize();
      printf("   biasact algo %d: %s %s\n", perf[i].algo, cudnnGetErrorString(s2), cudaGetErrorString(ce));
    }
  }
  cudaFree(x); cudaFree(y); cudaFree(y2); cudaFree(w); cudaFree(ws);
}
int main() {
  cudnnCreate(&h);
  printf("cuDNN %zu\n", cudnnGetVersion());
  run("3x3 packed        ", 128, 96, 96, 0, 28, 28, 128, 128, 0, 3, 1, 1, true);
  run("3x3 strided x     ", 128, 96, 208, 16, 28, 28, 128, 128, 0, 3, 1, 1, true);
  run("3x3 strided y     ", 128, 96, 96, 0, 28, 28, 128, 256, 64, 3, 1, 1, true);
  run("3x3 strided x,y   ", 128, 96, 208, 16, 28, 28, 128, 256, 64, 3, 1, 1, true);
  run("1x1 strided y     ", 128, 192, 192, 0, 28, 28, 64, 256, 0, 1, 1, 0, true);
  run("conv1 C=3         ", 128, 3, 3, 0, 224, 224, 64, 64, 0, 7, 2, 3, false);
  run("conv1 C=4         ", 128, 4, 4, 0, 224, 224, 64, 64, 0, 7, 2, 3, false);
  run("conv1 C=8         ", 128, 8, 8, 0, 224, 224, 64, 64, 0, 7, 2, 3, false);
  return 0;
}
