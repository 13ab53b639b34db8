// Conv: N-D convolution (1-D, 2-D, 3-D...), grouped, dilated, strided, padded, optionally
// transposed. Layout NCHW: X [N, C, D1..Dk]; W [M, C/group, K1..Kk] (forward) or
// [C, M/group, K1..Kk] (transposed); optional bias B [M]; Y [N, M, O1..Ok].
#pragma once
#include <string>

#include "ir/attrs.h"

namespace kiln {

struct ConvAttrs : AttrsOf<ConvAttrs> {
  Ints strides;    // per spatial axis; empty means all 1
  Ints dilations;  // per spatial axis; empty means all 1
  Ints pads;       // begin per axis, then end per axis; empty means all 0
  Int group = 1;
  bool transposed = false;
  Ints output_padding;  // transposed only: extra output at the end of each axis
  Ints output_shape;    // transposed only: requested spatial output size; pads are derived
  // NOTSET, VALID, SAME_UPPER, SAME_LOWER. Importers resolve it into `pads` when the input's
  // spatial dims are known; it stays here only for symbolic shapes and is resolved by infer() and
  // compute() from the actual dims.
  std::string auto_pad = "NOTSET";
  // NHWC: X [N, D1..Dk, C] and Y [N, O1..Ok, M]; W keeps its ONNX layout (tactics reorder it).
  // Set by the layout pass, never by importers.
  bool channels_last = false;
  // Fused epilogue, set by the epilogue-fusion passes: Y = epilogue(act(conv(X, W) + B + Z)),
  // where Z is the optional input 3 (a residual of Y's shape), act is "" (none) or "relu", and
  // `epilogue` is empty or a program with one input and one output, both of Y's type, applied to
  // every element of the rounded Y (ops/epilogue.h).
  std::string activation;
  expr::Program epilogue;
  // Set by the precision pass when the build allows TF32: float32 convolutions may then use
  // TF32 tensor cores. Off, they keep full float32 products.
  bool allow_tf32 = false;
  // Quantized (set by the Q/DQ folding pass, passes/fold_quantization.cc; ops/quantized.h): X is
  // int8/uint8 and W int8; the products accumulate exactly over (x - q_x_zero) * w, and
  // Y = epilogue(act(acc * q_x_scale * q_w_scale[m] + B + Z)) in type q_out, which B and Z have.
  // q_w_scale has one scale per output channel, or one for all. q_x_scale 0: not quantized.
  Float q_x_scale = 0;
  Int q_x_zero = 0;
  Floats q_w_scale;
  DataType q_out = DataType::kUndefined;
  // Requantized output (set by FoldQuantization when a per-tensor QuantizeLinear to int8 is the
  // only reader of Y): Y is int8, saturate(round_half_even(v / q_y_scale)) of the epilogue's
  // value v, computed before any rounding to q_out (which B and Z keep). 0: Y is of type q_out.
  Float q_y_scale = 0;
  // Quantized residual (set by FoldRequantization when Z is a per-tensor int8 DequantizeLinear's
  // output with zero point 0): Z is int8 and enters the sum as Z * q_z_scale. 0: Z, if any, is of
  // type q_out.
  Float q_z_scale = 0;
  bool quantized() const { return q_x_scale > 0; }
  bool requantized() const { return q_y_scale > 0; }
  bool quantized_residual() const { return q_z_scale > 0; }

  template <class V>
  void reflect(V& v) {
    v("strides", strides);
    v("dilations", dilations);
    v("pads", pads);
    v("group", group);
    v("transposed", transposed);
    v("output_padding", output_padding);
    v("output_shape", output_shape);
    v("auto_pad", auto_pad);
    v("channels_last", channels_last);
    v("activation", activation);
    v("epilogue", epilogue);
    v("allow_tf32", allow_tf32);
    v("q_x_scale", q_x_scale);
    v("q_x_zero", q_x_zero);
    v("q_w_scale", q_w_scale);
    v("q_out", q_out);
    v("q_y_scale", q_y_scale);
    v("q_z_scale", q_z_scale);
  }
};

// Fully resolved geometry of one Conv node for concrete spatial input and kernel sizes: what the
// reference compute and every backend tactic work from.
struct ConvGeometry {
  Ints in, kernel, out;  // spatial sizes
  Ints strides, dilations;
  Ints pad_begin, pad_end;
  Ints output_padding;  // transposed only (zeros otherwise); includes any growth needed
                        // to reach a requested output_shape
};

// Throws kInvalidModel when the attributes do not fit the sizes.
ConvGeometry conv_geometry(const ConvAttrs& a, const Ints& in_spatial, const Ints& kernel_spatial);

}  // namespace kiln
