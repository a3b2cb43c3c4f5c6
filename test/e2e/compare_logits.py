#!/usr/bin/env python3
"""Compares two --logits outputs (one row of logits per prompt position).

  compare_logits.py A.txt B.txt TOL    max |a - b| over every logit <= TOL
"""
import sys


def rows(path):
    return [[float(x) for x in line.split()] for line in open(path) if line.strip()]


a, b, tol = rows(sys.argv[1]), rows(sys.argv[2]), float(sys.argv[3])
if not a or len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b)):
    print("FAIL: shapes differ: %d rows vs %d" % (len(a), len(b)))
    sys.exit(1)
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
print("max |a - b| = %.3g over %d x %d (limit %g)" % (worst, len(a), len(a[0]), tol))
sys.exit(0 if worst <= tol else 1)
