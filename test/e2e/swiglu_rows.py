#!/usr/bin/env python3
"""Checks llm-fuse-swiglu's row order: the global GLOBAL of AFTER.mlir holds
the rows of the same global in BEFORE.mlir (gate rows 0..F-1, then up rows
F..2F-1) as blocks of BLOCK gate rows followed by the matching up rows.

  swiglu_rows.py BEFORE.mlir AFTER.mlir GLOBAL F BLOCK

Row bytes are the blob's size over 2F, so any row-wise format works.
"""
import re
import sys


def blob(path, name):
    text = open(path).read()
    m = re.search(r"llm\.global @%s : .*? = dense_resource<([^>]+)>" % re.escape(name), text)
    if not m:
        sys.exit("FAIL: %s: no resource-backed global @%s" % (path, name))
    r = re.search(r'^\s*"?%s"?: "0x([0-9A-Fa-f]+)"' % re.escape(m.group(1)), text, re.M)
    if not r:
        sys.exit("FAIL: %s: no blob %s" % (path, m.group(1)))
    return bytes.fromhex(r.group(1))[4:]  # drop the alignment word


before = blob(sys.argv[1], sys.argv[3])
after = blob(sys.argv[2], sys.argv[3])
f, block = int(sys.argv[4]), int(sys.argv[5])
if len(before) != len(after) or len(before) % (2 * f):
    sys.exit("FAIL: sizes %d and %d for %d rows" % (len(before), len(after), 2 * f))
row = len(before) // (2 * f)
expect = b""
for k in range(0, f, block):
    b = min(block, f - k)
    expect += before[k * row:(k + b) * row] + before[(f + k) * row:(f + k + b) * row]
if after != expect:
    first = next(i for i in range(len(after)) if after[i] != expect[i])
    sys.exit("FAIL: byte %d (row %d) is not where the block order puts it" % (first, first // row))
print("@%s: %d rows of %d bytes in blocks of %d gate + %d up rows" % (sys.argv[3], 2 * f, row, block, block))
