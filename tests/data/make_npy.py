#!/usr/bin/env python3
"""Writes the small .npy files of tests/data (no numpy needed): run from this folder.

image_float64.npy  one 28x28 image in float64: the demo model's shape with the wrong type
                   (the CLI must report the type, not the shape)
three_float32.npy  [0.5, -1.25, 3.0] in float32, and three_float64.npy the same in float64
                   (kiln_npy_compare must not call them equal)
"""
import struct


def npy(path, descr, shape, values, fmt):
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    pad = (64 - (10 + len(hdr) + 1) % 64) % 64
    hdr = hdr + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


n = 28 * 28
npy("image_float64.npy", "<f8", (1, 1, 28, 28), [((i * 37) % 256) / 255.0 for i in range(n)], "d")
npy("three_float32.npy", "<f4", (3,), [0.5, -1.25, 3.0], "f")
npy("three_float64.npy", "<f8", (3,), [0.5, -1.25, 3.0], "d")
