#!/usr/bin/python3
"""Attribute fuzzing: writes copies of the ONNX node-test models with one attribute changed to a
hostile value (negative, zero, huge, NaN, truncated or extended lists, bogus strings), each with
its original test data, into OUT. Run kiln's conformance runner over OUT; every outcome but a
pass or a clear error (a crash, a hang, an internal error) is a kiln bug:

  /usr/bin/python3 scripts/attr_fuzz.py --seed 4 --out /tmp/attrfuzz
  build/tests/kiln_conformance --data /tmp/attrfuzz --verbose --timeout 30 \\
      | grep -E "crashed|timed out|internal error|without a result"

Needs Debian's python3-onnx (scripts/install_deps.sh --with-python).
"""
import argparse
import copy
import os
import random

import onnx

A = onnx.AttributeProto


def mutate(a, rng):
    if a.type == A.INT:
        a.i = rng.choice([-1, 0, -100, 2**40, -2**40, 7, 3])
    elif a.type == A.INTS:
        c = rng.random()
        if c < 0.3 and len(a.ints) > 0:
            del a.ints[-1]
        elif c < 0.5:
            a.ints.append(rng.choice([0, -1, 5]))
        elif len(a.ints) > 0:
            a.ints[rng.randrange(len(a.ints))] = rng.choice([-1, 0, -5, 2**40, 1000])
    elif a.type == A.FLOAT:
        a.f = rng.choice([float("nan"), -1.0, 0.0, 1e30, -1e30])
    elif a.type == A.FLOATS:
        if len(a.floats) > 0:
            a.floats[rng.randrange(len(a.floats))] = rng.choice([float("nan"), -1.0, 0.0, 1e30])
        else:
            a.floats.append(0.0)
    elif a.type == A.STRING:
        a.s = rng.choice([b"", b"bogus", b"NOTSET", b"VALID"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/libonnx-testdata/data/node")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--per-model", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = (A.INT, A.INTS, A.FLOAT, A.FLOATS, A.STRING)
    n = 0
    for t in sorted(os.listdir(args.data)):
        m = onnx.load(os.path.join(args.data, t, "model.onnx"))
        attrs = [(ni, ai) for ni, node in enumerate(m.graph.node)
                 for ai, a in enumerate(node.attribute) if a.type in kinds]
        if not attrs:
            continue
        for k in range(args.per_model):
            mm = copy.deepcopy(m)
            ni, ai = rng.choice(attrs)
            mutate(mm.graph.node[ni].attribute[ai], rng)
            d = os.path.join(args.out, f"{t}__{k}")
            os.makedirs(d)
            onnx.save(mm, os.path.join(d, "model.onnx"))
            os.symlink(os.path.abspath(os.path.join(args.data, t, "test_data_set_0")),
                       os.path.join(d, "test_data_set_0"))
            n += 1
    print(n, "mutants in", args.out)


if __name__ == "__main__":
    main()
