#pragma once
#include "ir/attrs.h"
#include "kiln/types.h"

namespace kiln {

// MelWeightMatrix (ONNX opset 17): the [dft_length / 2 + 1, num_mel_bins] matrix of triangular
// mel filters. Inputs: num_mel_bins, dft_length, sample_rate (int scalars), lower_edge_hertz,
// upper_edge_hertz (float scalars). The importer folds known inputs to a constant with
// make_mel_weight_matrix(); this op covers inputs known only at run time.
struct MelWeightMatrixAttrs : AttrsOf<MelWeightMatrixAttrs> {
  DataType output_dtype = DataType::kFloat;
  template <class V>
  void reflect(V& v) {
    v("output_dtype", output_dtype);
  }
};

// Throws kInvalidModel for out-of-range arguments.
Tensor make_mel_weight_matrix(int64_t num_mel_bins, int64_t dft_length, int64_t sample_rate,
                              double lower_edge_hertz, double upper_edge_hertz, DataType dtype);

}  // namespace kiln
