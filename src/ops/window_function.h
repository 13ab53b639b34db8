#pragma once
#include <string>

#include "ir/attrs.h"
#include "kiln/types.h"

namespace kiln {

// WindowFunction: the Hann, Hamming and Blackman windows of ONNX opset 17, for a size known only
// at run time (the importer folds a known size to a constant with make_window()). Input: size, a
// scalar int32/int64. Output: [size] of output_dtype.
struct WindowFunctionAttrs : AttrsOf<WindowFunctionAttrs> {
  std::string kind = "hann";  // hann | hamming | blackman
  bool periodic = true;       // false: symmetric (divides by size - 1)
  DataType output_dtype = DataType::kFloat;
  template <class V>
  void reflect(V& v) {
    v("kind", kind);
    v("periodic", periodic);
    v("output_dtype", output_dtype);
  }
};

// The window as a tensor; throws kInvalidModel for an unknown kind or a negative size.
Tensor make_window(const std::string& kind, int64_t size, bool periodic, DataType dtype);

}  // namespace kiln
