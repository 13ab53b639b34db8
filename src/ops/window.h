// Sliding-window geometry shared by Conv, Pool and MaxUnpool: auto_pad resolution and output
// sizes. Kept in one place so that shape inference and the reference compute cannot disagree.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "ir/attrs.h"

namespace kiln {

// The span of input a dilated kernel covers.
inline int64_t effective_kernel(int64_t kernel, int64_t dilation) {
  return (kernel - 1) * dilation + 1;
}

inline bool is_valid_auto_pad(const std::string& s) {
  return s == "NOTSET" || s == "VALID" || s == "SAME_UPPER" || s == "SAME_LOWER";
}

// Splits a total padding the ONNX way: SAME_UPPER puts the odd element at the end, SAME_LOWER
// (and an explicit output_shape of ConvTranspose without SAME_UPPER) at the beginning.
inline void split_padding(int64_t total, bool upper, int64_t& begin, int64_t& end) {
  if (upper) {
    begin = total / 2;
    end = total - begin;
  } else {
    end = total / 2;
    begin = total - end;
  }
}

// One spatial axis of a forward window (Conv, Pool). `pad_begin/pad_end` are the explicit pads;
// auto_pad other than NOTSET replaces them. Returns the output length; throws kInvalidModel (with
// `what` naming the op) when the window does not fit.
inline int64_t forward_window(const std::string& auto_pad, int64_t in, int64_t kernel,
                              int64_t stride, int64_t dilation, bool ceil_mode, int64_t& pad_begin,
                              int64_t& pad_end, const char* what = "window") {
  KILN_EXPECT(stride > 0 && dilation > 0 && kernel > 0, StatusCode::kInvalidModel, what,
              ": kernel, strides and dilations must be positive (got kernel ", kernel, ", stride ",
              stride, ", dilation ", dilation, ")");
  int64_t k = effective_kernel(kernel, dilation);
  if (auto_pad == "VALID") {
    pad_begin = pad_end = 0;
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    int64_t out = (in + stride - 1) / stride;
    int64_t total = std::max<int64_t>(0, (out - 1) * stride + k - in);
    split_padding(total, auto_pad == "SAME_UPPER", pad_begin, pad_end);
    return out;
  }
  KILN_EXPECT(pad_begin >= 0 && pad_end >= 0, StatusCode::kInvalidModel, what,
              ": pads must not be negative (got ", pad_begin, ", ", pad_end, ")");
  int64_t span = in + pad_begin + pad_end - k;
  KILN_EXPECT(span >= 0, StatusCode::kInvalidModel, what, ": the kernel (extent ", k,
              ") is larger than the padded input (", in, " + pads ", pad_begin, "+", pad_end, ")");
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // With ceil_mode, a last window that starts inside the end padding sees no input; drop it
  // (as PyTorch and onnxruntime do).
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

// One spatial axis of a transposed convolution. With an explicit output length (`out_request`
// >= 0, from ConvTranspose's output_shape) or auto_pad SAME_*, the pads are derived; otherwise the
// explicit pads give the output length. A requested length beyond the full output is reached by
// growing output_padding (zeros at the end, as onnxruntime and the ONNX tests do).
inline int64_t transposed_window(const std::string& auto_pad, int64_t in, int64_t kernel,
                                 int64_t stride, int64_t dilation, int64_t& output_padding,
                                 int64_t out_request, int64_t& pad_begin, int64_t& pad_end) {
  KILN_EXPECT(stride > 0 && dilation > 0 && kernel > 0, StatusCode::kInvalidModel,
              "ConvTranspose: kernel, strides and dilations must be positive");
  KILN_EXPECT(output_padding >= 0, StatusCode::kInvalidModel,
              "ConvTranspose: output_padding must not be negative (got ", output_padding, ")");
  int64_t full = stride * (in - 1) + output_padding + effective_kernel(kernel, dilation);
  if (auto_pad == "VALID") {
    pad_begin = pad_end = 0;
  } else if (out_request >= 0 || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    int64_t out = out_request >= 0 ? out_request : in * stride;
    int64_t total = full - out;
    if (total < 0) {
      output_padding -= total;
      total = 0;
    }
    split_padding(total, auto_pad == "SAME_UPPER", pad_begin, pad_end);
    return out;
  }
  KILN_EXPECT(pad_begin >= 0 && pad_end >= 0, StatusCode::kInvalidModel,
              "ConvTranspose: pads must not be negative (got ", pad_begin, ", ", pad_end, ")");
  int64_t out = full - pad_begin - pad_end;
  KILN_EXPECT(out > 0, StatusCode::kInvalidModel, "ConvTranspose: pads ", pad_begin, "+", pad_end,
              " leave no output (full size ", full, ")");
  return out;
}

}  // namespace kiln
