"""Makes the control-flow test models of tests/unit/control_flow_test.cc and
tests/gpu/control_flow_test.cc (run with a Python that has onnx, numpy and torch):

  cf_if_shapes.onnx     If whose branches give different shapes: x + 1 ([N, 3]) or
                        concat(x, x) ([2N, 3]); x is an outer-scope value of both branches.
  cf_loop.onnx          Loop with a trip count M, a condition that stops it early (sum < limit),
                        a carried value, two scan outputs, and the outer-scope value x.
  cf_scan_reverse.onnx  Scan-11 over axis 1 of x, in reverse, with its scan output on axis 1.
  cf_vad.onnx           A streaming voice-activity-detector-style model: If (sr == 16000) picks
                        one of two LSTMs (torch weights), both reading and returning the
                        recurrent state (h, c), which are graph inputs and outputs; a linear
                        head and a sigmoid give the speech probability per frame.
  cf_vad_*.npy          Two chunks of input, and torch's outputs after each chunk with the state
                        carried from the first to the second.
"""
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save(model, name):
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name))


def vi(name, t, shape):
    return helper.make_tensor_value_info(name, t, shape)


def if_shapes():
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    then = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["t_out"])], "then", [], [vi("t_out", TensorProto.FLOAT, ["N", 3])],
        initializer=[one])
    other = helper.make_graph(
        [helper.make_node("Concat", ["x", "x"], ["e_out"], axis=0)], "else", [],
        [vi("e_out", TensorProto.FLOAT, ["N2", 3])])
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other)], "if_shapes",
        [vi("cond", TensorProto.BOOL, []), vi("x", TensorProto.FLOAT, ["N", 3])],
        [vi("y", TensorProto.FLOAT, ["R", 3])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "cf_if_shapes.onnx")


def loop():
    # s_{i+1} = s_i + x * (i + 1); continue while sum(s) < limit; scan outputs s and i.
    body = helper.make_graph(
        [
            helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.array(1, np.int64))),
            helper.make_node("Add", ["i", "one"], ["i1"]),
            helper.make_node("Cast", ["i1"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["x", "f"], ["step"]),
            helper.make_node("Add", ["s_in", "step"], ["s_out"]),
            helper.make_node("ReduceSum", ["s_out"], ["total"], keepdims=0),
            helper.make_node("Less", ["total", "limit"], ["c_out"]),
            helper.make_node("Identity", ["s_out"], ["s_scan"]),
            helper.make_node("Identity", ["i"], ["i_scan"]),
        ],
        "body",
        [vi("i", TensorProto.INT64, []), vi("c_in", TensorProto.BOOL, []), vi("s_in", TensorProto.FLOAT, [2])],
        [vi("c_out", TensorProto.BOOL, []), vi("s_out", TensorProto.FLOAT, [2]),
         vi("s_scan", TensorProto.FLOAT, [2]), vi("i_scan", TensorProto.INT64, [])])
    g = helper.make_graph(
        [helper.make_node("Loop", ["M", "", "s0"], ["s", "s_all", "i_all"], body=body)], "loop",
        [vi("M", TensorProto.INT64, []), vi("limit", TensorProto.FLOAT, []), vi("x", TensorProto.FLOAT, [2]),
         vi("s0", TensorProto.FLOAT, [2])],
        [vi("s", TensorProto.FLOAT, [2]), vi("s_all", TensorProto.FLOAT, ["K", 2]),
         vi("i_all", TensorProto.INT64, ["K"])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "cf_loop.onnx")


def scan_reverse():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "col"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "col"], ["o"])],
        "body", [vi("s_in", TensorProto.FLOAT, [3]), vi("col", TensorProto.FLOAT, [3])],
        [vi("s_out", TensorProto.FLOAT, [3]), vi("o", TensorProto.FLOAT, [3])])
    g = helper.make_graph(
        [helper.make_node("Scan", ["s0", "x"], ["s", "y"], body=body, num_scan_inputs=1,
                          scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[1])],
        "scan_reverse", [vi("s0", TensorProto.FLOAT, [3]), vi("x", TensorProto.FLOAT, [3, 4])],
        [vi("s", TensorProto.FLOAT, [3]), vi("y", TensorProto.FLOAT, [3, 4])])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]), "cf_scan_reverse.onnx")


def onnx_lstm_weights(lstm):
    # torch gates i, f, g, o -> ONNX i, o, f, c
    def reorder(w):
        i, f, g, o = np.split(w, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)
    w = reorder(lstm.weight_ih_l0.detach().numpy())[None]
    r = reorder(lstm.weight_hh_l0.detach().numpy())[None]
    b = np.concatenate([reorder(lstm.bias_ih_l0.detach().numpy()), reorder(lstm.bias_hh_l0.detach().numpy())])[None]
    return w.astype(np.float32), r.astype(np.float32), b.astype(np.float32)


def vad():
    torch.manual_seed(0)
    feat, hidden = 8, 16
    lstms = [torch.nn.LSTM(feat, hidden), torch.nn.LSTM(feat, hidden)]   # 16 kHz, 8 kHz
    head = torch.nn.Linear(hidden, 1)
    branches = []
    for k, lstm in enumerate(lstms):
        w, r, b = onnx_lstm_weights(lstm)
        p = f"b{k}_"
        nodes = [helper.make_node("LSTM", ["x", p + "W", p + "R", p + "B", "", "h", "c"],
                                  [p + "Y", p + "Yh", p + "Yc"], hidden_size=hidden),
                 helper.make_node("Squeeze", [p + "Y", "axis1"], [p + "feat"]),
                 helper.make_node("Identity", [p + "Yh"], [p + "h_out"]),
                 helper.make_node("Identity", [p + "Yc"], [p + "c_out"])]
        inits = [numpy_helper.from_array(w, p + "W"), numpy_helper.from_array(r, p + "R"),
                 numpy_helper.from_array(b, p + "B")]
        branches.append(helper.make_graph(
            nodes, f"lstm_{k}", [], [vi(p + "feat", TensorProto.FLOAT, ["T", 1, hidden]), vi(p + "h_out", TensorProto.FLOAT, [1, 1, hidden]),
                                     vi(p + "c_out", TensorProto.FLOAT, [1, 1, hidden])], initializer=inits))
    head_w = numpy_helper.from_array(head.weight.detach().numpy().T.copy(), "head_w")
    head_b = numpy_helper.from_array(head.bias.detach().numpy().copy(), "head_b")
    axis1 = numpy_helper.from_array(np.array([1], np.int64), "axis1")
    sr16 = numpy_helper.from_array(np.array(16000, np.int64), "sr16")
    nodes = [
        helper.make_node("Equal", ["sr", "sr16"], ["is16"]),
        helper.make_node("If", ["is16"], ["feat", "h_out", "c_out"], then_branch=branches[0],
                         else_branch=branches[1]),
        helper.make_node("MatMul", ["feat", "head_w"], ["logit0"]),
        helper.make_node("Add", ["logit0", "head_b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob"]),
    ]
    g = helper.make_graph(
        nodes, "vad",
        [vi("x", TensorProto.FLOAT, ["T", 1, feat]), vi("sr", TensorProto.INT64, []),
         vi("h", TensorProto.FLOAT, [1, 1, hidden]), vi("c", TensorProto.FLOAT, [1, 1, hidden])],
        [vi("prob", TensorProto.FLOAT, ["T", 1, 1]), vi("h_out", TensorProto.FLOAT, [1, 1, hidden]),
         vi("c_out", TensorProto.FLOAT, [1, 1, hidden])],
        initializer=[head_w, head_b, axis1, sr16])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "cf_vad.onnx")

    rng = np.random.default_rng(1)
    chunks = [rng.standard_normal((5, 1, feat)).astype(np.float32),
              rng.standard_normal((7, 1, feat)).astype(np.float32)]
    for sr, name, lstm in [(16000, "16k", lstms[0]), (8000, "8k", lstms[1])]:
        h = torch.zeros(1, 1, hidden)
        c = torch.zeros(1, 1, hidden)
        for i, x in enumerate(chunks):
            with torch.no_grad():
                y, (h, c) = lstm(torch.from_numpy(x), (h, c))
                prob = torch.sigmoid(head(y))
            np.save(os.path.join(HERE, f"cf_vad_{name}_prob{i}.npy"), prob.numpy())
            np.save(os.path.join(HERE, f"cf_vad_{name}_h{i}.npy"), h.numpy())
            np.save(os.path.join(HERE, f"cf_vad_{name}_c{i}.npy"), c.numpy())
    for i, x in enumerate(chunks):
        np.save(os.path.join(HERE, f"cf_vad_x{i}.npy"), x)


if __name__ == "__main__":
    if_shapes()
    loop()
    scan_reverse()
    vad()
