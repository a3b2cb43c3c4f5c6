#!/usr/bin/env python3
"""Compares the stored bytes of one llm.global in two printed llm modules.

  compare_blobs.py A.mlir B.mlir GLOBAL MAX_FRACTION

The global's data must be a dense_resource blob in both; the check passes
when at most MAX_FRACTION of its bytes differ (0 asks for identity).
"""
import re
import sys


def blob(path, name):
    text = open(path).read()
    m = re.search(r"llm\.global @%s : (\S+.*?) = dense_resource<([^>]+)>" % re.escape(name), text)
    if not m:
        sys.exit("FAIL: %s: no resource-backed global @%s" % (path, name))
    key = m.group(2)
    r = re.search(r'^\s*"?%s"?: "0x([0-9A-Fa-f]+)"' % re.escape(key), text, re.M)
    if not r:
        sys.exit("FAIL: %s: no blob %s" % (path, key))
    return m.group(1), bytes.fromhex(r.group(1))[4:]  # drop the alignment word


ta, a = blob(sys.argv[1], sys.argv[3])
tb, b = blob(sys.argv[2], sys.argv[3])
limit = float(sys.argv[4])
if len(a) != len(b):
    sys.exit("FAIL: %d vs %d bytes (%s vs %s)" % (len(a), len(b), ta, tb))
diff = sum(x != y for x, y in zip(a, b))
print("@%s: %d of %d bytes differ (%.4f%%, limit %.4f%%)" % (
    sys.argv[3], diff, len(a), 100.0 * diff / len(a), 100.0 * limit))
sys.exit(0 if diff <= limit * len(a) else 1)
