#!/usr/bin/env python3
"""Checks an emitted executable's output against stories260K's golden.json.

  golden.py text   GOLDEN OUT             greedy text from BOS must equal golden exactly
  golden.py logits GOLDEN OUT TOL         --logits rows must match golden logits within TOL
  golden.py ppl    OUT EXPECTED TOL       'perplexity: X' line of OUT within TOL of EXPECTED
"""
import json
import re
import sys


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main():
    mode = sys.argv[1]
    if mode == "text":
        golden = json.load(open(sys.argv[2]))["greedy"]["from_bos_only"]["text"]
        out = open(sys.argv[3], encoding="utf-8").read()
        if out.endswith("\n"):
            out = out[:-1]
        if out != golden:
            i = next((k for k, (a, b) in enumerate(zip(out, golden)) if a != b),
                     min(len(out), len(golden)))
            fail("text differs at char %d: got %r, want %r" % (i, out[i:i + 40], golden[i:i + 40]))
        print("ok: %d chars identical" % len(out))
    elif mode == "logits":
        golden = json.load(open(sys.argv[2]))["logits"]
        tol = float(sys.argv[4])
        rows = [[float(x) for x in line.split()] for line in open(sys.argv[3]) if line.strip()]
        if len(rows) != len(golden):
            fail("%d logits rows, golden has %d" % (len(rows), len(golden)))
        worst = 0.0
        for r, (a, b) in enumerate(zip(rows, golden)):
            if len(a) != len(b):
                fail("row %d has %d logits, golden %d" % (r, len(a), len(b)))
            worst = max(worst, max(abs(x - y) for x, y in zip(a, b)))
        if worst > tol:
            fail("max |logit - golden| = %.3g > %g" % (worst, tol))
        print("ok: max |logit - golden| = %.3g <= %g" % (worst, tol))
    elif mode == "ppl":
        text = open(sys.argv[2]).read()
        m = re.search(r"perplexity: ([0-9.]+)", text)
        if not m:
            fail("no 'perplexity:' line in output")
        got, want, tol = float(m.group(1)), float(sys.argv[3]), float(sys.argv[4])
        if abs(got - want) > tol:
            fail("perplexity %.4f, expected %.4f +- %g" % (got, want, tol))
        print("ok: perplexity %.4f (expected %.4f +- %g)" % (got, want, tol))
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
