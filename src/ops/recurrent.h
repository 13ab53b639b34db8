#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

// ONNX RNN, GRU and LSTM as one op. Inputs in ONNX order: X, W, R, B, sequence_lens, initial_h,
// and for LSTM also initial_c and P (any optional one may be absent). Outputs: Y, Y_h, and for
// LSTM Y_c.
struct RecurrentAttrs : AttrsOf<RecurrentAttrs> {
  std::string cell = "rnn";           // "rnn" | "gru" | "lstm"
  std::string direction = "forward";  // "forward" | "reverse" | "bidirectional"
  Int hidden_size = 0;                // <= 0: taken from R's last dim
  // Comma-separated activation names (attrs hold one string); empty = the cell's defaults.
  std::string activations;
  Floats activation_alpha;
  Floats activation_beta;
  Float clip = 0;               // <= 0: no clipping
  Int linear_before_reset = 0;  // GRU
  Int input_forget = 0;         // LSTM
  Int layout = 0;               // 0: [seq, batch, ...]; 1: [batch, seq, ...]
  template <class V>
  void reflect(V& v) {
    v("cell", cell);
    v("direction", direction);
    v("hidden_size", hidden_size);
    v("activations", activations);
    v("activation_alpha", activation_alpha);
    v("activation_beta", activation_beta);
    v("clip", clip);
    v("linear_before_reset", linear_before_reset);
    v("input_forget", input_forget);
    v("layout", layout);
  }
};

}  // namespace kiln
