// Launchers of the element-wise kernels of cuda.recurrent (recurrent.cu): ONNX RNN, GRU and LSTM
// cells between the matrix products the tactic runs on cuBLASLt (recurrent_tactics.cc).
//
// Numbers: "Acc" is float for float32 / float16 / bfloat16 inputs and double for float64. The
// input projections XW, the recurrent products HR, the biases, the peepholes and the state h (and
// c) are Acc arrays in the workspace; only Y, Y_h and Y_c are written in the input's type, so
// long sequences of float16 inputs do not drift by rounding the state at every step.
//
// Time: every batch row advances in lock step, step s being time s (forward) or len - 1 - s
// (reverse, len the row's sequence length, as the reference counts it); a row whose length is
// reached keeps its state, and writes zeros to Y at time s, which covers Y past its length.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reduction_common.h"

namespace kiln::cuda::rk {

enum class RnnCell : int { kRnn = 0, kGru = 1, kLstm = 2 };

// The reference's activation functions (src/ops/recurrent.cc), with their alpha and beta.
enum class RnnActKind : int {
  kRelu,
  kTanh,
  kSigmoid,
  kAffine,
  kLeakyRelu,
  kThresholdedRelu,
  kScaledTanh,
  kHardSigmoid,
  kElu,
  kSoftsign,
  kSoftplus
};
struct RnnActivation {
  RnnActKind kind = RnnActKind::kTanh;
  double alpha = 0, beta = 0;
};

struct RnnProblem {
  DType dtype = DType::kF32;  // of X, initial_h / initial_c, Y, Y_h, Y_c
  RnnCell cell = RnnCell::kRnn;
  int ndir = 1;
  bool reverse = false;  // direction "reverse": direction 0 runs backwards (direction 1 always does)
  int layout = 0;        // 0: X [S, N, I], Y [S, ndir, N, H]; 1: X [N, S, I], Y [N, S, ndir, H]
  long long seq = 0, batch = 0, hidden = 0;  // S, N, H
  double clip = 0;                           // <= 0: none
  bool linear_before_reset = false;          // GRU
  bool input_forget = false;                 // LSTM
  RnnActivation act[2][3];                   // per direction: f, g, h (as the cell uses them)

  // Acc arrays (G gates: 1 RNN, 3 GRU, 4 LSTM).
  const void* xw = nullptr;    // X · Wᵀ: [rows][ndir][G*H], rows in X's order (t*N+b or b*S+t)
  const void* hr = nullptr;    // h · Rᵀ of the step: [ndir][N][G*H]
  const void* bias = nullptr;  // [ndir][2*G*H] (Wb then Rb), or null
  const void* peep = nullptr;  // [ndir][3*H] (i, o, f), or null
  void* h = nullptr;           // state [ndir][N][H]
  void* c = nullptr;           // LSTM cell state [ndir][N][H]
  void* rh = nullptr;          // GRU, linear_before_reset = 0: r ⊙ h_prev [ndir][N][H]

  const void* lens = nullptr;  // sequence_lens [N], or null (every row has S steps)
  DType lens_dtype = DType::kI32;  // kI32 or kI64; values are clamped to [0, S]
  const void* h0 = nullptr;    // initial_h in the state layout of `layout`, or null (zeros)
  const void* c0 = nullptr;    // initial_c, or null (zeros)
  void* y = nullptr;           // outputs, or null when absent
  void* y_h = nullptr;
  void* y_c = nullptr;
};

// Each returns 0 when enqueued, else a cudaError_t value.

// dst[i] = src[i] for i < n, converted from any float type to Acc (double when acc_double).
int launch_rnn_convert(const void* src, DType src_dtype, void* dst, bool acc_double, long long n,
                       void* stream);
// h (and c) from initial_h (and initial_c), or zeros.
int launch_rnn_init(const RnnProblem& p, void* stream);
// GRU with linear_before_reset = 0: rh = r ⊙ h_prev of step `step`, from HR's z/r columns.
int launch_rnn_gru_reset(const RnnProblem& p, long long step, void* stream);
// The cell of step `step`: gates from XW, HR and the biases, new h (and c), Y at the step's time.
int launch_rnn_step(const RnnProblem& p, long long step, void* stream);
// Y_h and Y_c from the state.
int launch_rnn_final(const RnnProblem& p, void* stream);

}  // namespace kiln::cuda::rk
