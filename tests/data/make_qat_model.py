#!/usr/bin/python3
"""Writes qat_cnn.onnx: a small CNN in the form quantization-aware training exports (opset 13),
with its input and the expected output, for kiln's Q/DQ folding test.

  x [2,3,8,8] -> Q/DQ (uint8, zero point 128) -> Conv 3->4, 3x3, pad 1, bias (int8 weights,
  per-channel scales, DequantizeLinear axis 0) -> Relu -> Q/DQ (int8) -> Conv 4->6, 1x1
  -> Flatten -> Q/DQ (int8) -> MatMul [384, 5] (int8 weights, per-column scales, axis 1) -> y

The expected output follows the ONNX operators' definitions (QuantizeLinear rounds half to
even and saturates; DequantizeLinear multiplies in float32; the float ops between them compute in
float32, here in float64 and rounded once), which is what ONNX Runtime computes for such a graph.
Run with Debian's interpreter (python3-onnx, python3-numpy):

    /usr/bin/python3 tests/data/make_qat_model.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(7)


def q(x, s, z, lo, hi):
    return np.clip(np.rint(x / s) + z, lo, hi)


def dq(xq, s, z):
    return ((xq.astype(np.float64) - z) * s).astype(np.float32).astype(np.float64)


def conv(x, w, b, pad):
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = np.zeros((n, m, h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1))
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            patch = xp[:, :, i:i + kh, j:j + kw]
            y[:, :, i, j] = np.einsum("nckl,mckl->nm", patch, w)
    if b is not None:
        y += b[None, :, None, None]
    return y


x = rng.uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
w1q = rng.randint(-127, 128, (4, 3, 3, 3)).astype(np.int8)
w1s = (0.002 + 0.001 * np.arange(4)).astype(np.float32)
b1 = rng.uniform(-0.1, 0.1, 4).astype(np.float32)
w2q = rng.randint(-127, 128, (6, 4, 1, 1)).astype(np.int8)
w2s = (0.01 + 0.002 * np.arange(6)).astype(np.float32)
w3q = rng.randint(-127, 128, (384, 5)).astype(np.int8)
w3s = (0.001 + 0.0005 * np.arange(5)).astype(np.float32)
sx, zx = np.float32(1 / 127), 128
s1, s2 = np.float32(0.01), np.float32(0.02)

# The expected output, by the operators' definitions.
h = dq(q(x, sx, zx, 0, 255), sx, zx)
h = np.maximum(conv(h, dq(w1q, w1s[:, None, None, None], 0), b1, 1), 0).astype(np.float32)
h = dq(q(h, s1, 0, -128, 127), s1, 0)
h = conv(h, dq(w2q, w2s[:, None, None, None], 0), None, 0).astype(np.float32)
h = h.reshape(2, -1)
h = dq(q(h, s2, 0, -128, 127), s2, 0)
y = (h @ dq(w3q, w3s[None, :], 0)).astype(np.float32)


def const(name, arr):
    return numpy_helper.from_array(arr, name)


nodes = [
    helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
    helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
    helper.make_node("DequantizeLinear", ["w1q", "w1s"], ["w1"], axis=0),
    helper.make_node("Conv", ["xd", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c1"], ["r1"]),
    helper.make_node("QuantizeLinear", ["r1", "s1", "z1"], ["r1q"]),
    helper.make_node("DequantizeLinear", ["r1q", "s1", "z1"], ["r1d"]),
    helper.make_node("DequantizeLinear", ["w2q", "w2s"], ["w2"], axis=0),
    helper.make_node("Conv", ["r1d", "w2"], ["c2"]),
    helper.make_node("Flatten", ["c2"], ["f"]),
    helper.make_node("QuantizeLinear", ["f", "s2", "z2"], ["fq"]),
    helper.make_node("DequantizeLinear", ["fq", "s2", "z2"], ["fd"]),
    helper.make_node("DequantizeLinear", ["w3q", "w3s"], ["w3"], axis=1),
    helper.make_node("MatMul", ["fd", "w3"], ["y"]),
]
inits = [
    const("sx", np.array(sx, np.float32)), const("zx", np.array(zx, np.uint8)),
    const("w1q", w1q), const("w1s", w1s), const("b1", b1),
    const("s1", np.array(s1, np.float32)), const("z1", np.array(0, np.int8)),
    const("w2q", w2q), const("w2s", w2s),
    const("s2", np.array(s2, np.float32)), const("z2", np.array(0, np.int8)),
    const("w3q", w3q), const("w3s", w3s),
]
graph = helper.make_graph(
    nodes, "qat_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="kiln tests/data/make_qat_model.py")
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "qat_cnn.onnx"))
np.save(os.path.join(HERE, "qat_cnn_input.npy"), x)
np.save(os.path.join(HERE, "qat_cnn_output.npy"), y)
print("wrote qat_cnn.onnx, qat_cnn_input.npy, qat_cnn_output.npy; y[0] =", y[0])
