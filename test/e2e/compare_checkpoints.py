#!/usr/bin/env python3
"""Compares the tensors of two Hugging Face checkpoints (model.safetensors):
the same names and shapes, and every value within TOL (F32, F16 and BF16
compared as float64).

  compare_checkpoints.py A_DIR B_DIR TOL
"""
import json
import os
import struct
import sys

import numpy as np


def load(d):
    raw = open(os.path.join(d, "model.safetensors"), "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[8 + n + a:8 + n + b]
        if info["dtype"] == "BF16":
            x = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            x = np.frombuffer(buf, {"F32": np.float32, "F16": np.float16}[info["dtype"]])
        out[name] = x.astype(np.float64).reshape(info["shape"])
    return out


a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
if sorted(a) != sorted(b):
    sys.exit("FAIL: tensor names differ: %s" % sorted(set(a) ^ set(b)))
worst, where = 0.0, ""
for name in sorted(a):
    if a[name].shape != b[name].shape:
        sys.exit("FAIL: %s: shape %s vs %s" % (name, a[name].shape, b[name].shape))
    d = float(np.abs(a[name] - b[name]).max())
    if d > worst:
        worst, where = d, name
print("%d tensors; max |a - b| = %.3g (%s), limit %g" % (len(a), worst, where, tol))
sys.exit(0 if worst <= tol else 1)
