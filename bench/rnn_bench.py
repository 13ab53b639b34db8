#!/usr/bin/env python3
"""Exports the recurrent benchmark models for `kiln bench`: a torch.nn.LSTM and a torch.nn.GRU
(input 128, hidden 256, one layer, bidirectional, sequence-first) with random weights, at fixed
shapes (sequence 128, batch 64), as single ONNX LSTM / GRU nodes (opset 17). Prints each model's
path. Needs only torch and onnx.

Usage: python3 bench/rnn_bench.py --work DIR [--seq 128] [--batch 64]
"""
import argparse
import os

import onnx
import torch

INPUT, HIDDEN = 128, 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="directory for the .onnx files")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    x = torch.randn(args.seq, args.batch, INPUT)
    for name, cls, outputs in (("lstm", torch.nn.LSTM, ["y", "y_h", "y_c"]),
                               ("gru", torch.nn.GRU, ["y", "y_h"])):
        model = cls(INPUT, HIDDEN, num_layers=1, bidirectional=True, batch_first=False).eval()

        class Flat(torch.nn.Module):
            """The outputs as a flat tuple (LSTM returns (y, (h, c)))."""

            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                y, state = self.m(x)
                return (y, *state) if isinstance(state, tuple) else (y, state)

        path = os.path.join(args.work, f"{name}_s{args.seq}_b{args.batch}.onnx")
        with torch.no_grad():
            torch.onnx.export(Flat(model), (x,), path, input_names=["x"], output_names=outputs,
                              opset_version=17, dynamo=False)
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        onnx.checker.check_model(path)
        print(f"{path}  ({', '.join(ops)})")


if __name__ == "__main__":
    main()
