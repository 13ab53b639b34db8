// Launcher of the quantized MatMul's epilogue (cuda.int8_matmul): cuBLASLt accumulates the int8
// products exactly into an int32 matrix; this kernel scales each column once and finishes in
// float32, y[r, c] = act(acc[r, c] * scale[c] + bias[c] + z[r, c]), stored as float32, float16 or
// bfloat16. Plain C++; `stream` is a cudaStream_t.
#pragma once
#include <cstdint>

namespace kiln::cuda::q8 {

enum class OutType { kFloat, kHalf, kBFloat16 };
enum class Act { kNone, kRelu, kGeluErf, kGeluTanh };

struct EpilogueArgs {
  const int32_t* acc = nullptr;  // [rows, cols], row-major
  int64_t rows = 0, cols = 0;
  const float* scale = nullptr;  // [cols]: q_x_scale * q_w_scale[c]
  const void* bias = nullptr;    // [cols] of the output type, or null
  const void* z = nullptr;       // [rows, cols] of the output type, or null
  void* y = nullptr;
  OutType type = OutType::kFloat;
  Act act = Act::kNone;
};

void launch_int8_epilogue(const EpilogueArgs& a, void* stream);

}  // namespace kiln::cuda::q8
