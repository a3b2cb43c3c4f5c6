#!/usr/bin/env python3
"""Checks quality orderings between --perplexity --json results.

  quality.py within BASE.json OTHER.json REL   OTHER's ppl within REL (fraction) of BASE's
  quality.py better A.json B.json              A has lower ppl AND lower KL than B
  quality.py kl A.json B.json                  A has lower KL (to the same reference) than B
  quality.py ratio INSPECT_Q INSPECT_F MAX     quantized weight bytes / float weight bytes
                                               (norms excluded), from llmc inspect output
  quality.py ranks INSPECT                     some matrix (q_proj, ...) has different
                                               low-rank ranks in different layers
"""
import json
import re
import sys


def load(path):
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def weight_bytes(path):
    total = 0
    for line in open(path):
        m = re.match(r"\s+(\S+)\s+(\S+(?:, asym>)?)\s+(\S+)\s+(\d+) bytes$", line)
        # Tensor lines only (the "by format" summary has "N tensors" there).
        if m and m.group(3) != "tensors" and not m.group(1).endswith("norm.weight"):
            total += int(m.group(4))
    return total


def main():
    mode = sys.argv[1]
    if mode == "within":
        base, other, rel = load(sys.argv[2]), load(sys.argv[3]), float(sys.argv[4])
        d = abs(other["ppl"] - base["ppl"]) / base["ppl"]
        print("ppl %.4f vs %.4f: %.3f%% apart (limit %.3f%%)" % (other["ppl"], base["ppl"], 100 * d, 100 * rel))
        sys.exit(0 if d <= rel else 1)
    if mode == "better":
        a, b = load(sys.argv[2]), load(sys.argv[3])
        print("ppl %.4f vs %.4f, KL %.5f vs %.5f, top-1 %.4f vs %.4f" % (
            a["ppl"], b["ppl"], a["kl"], b["kl"], a["top1"], b["top1"]))
        sys.exit(0 if a["ppl"] < b["ppl"] and a["kl"] < b["kl"] else 1)
    if mode == "kl":
        a, b = load(sys.argv[2]), load(sys.argv[3])
        print("KL %.6f vs %.6f, top-1 %.4f vs %.4f" % (a["kl"], b["kl"], a["top1"], b["top1"]))
        sys.exit(0 if a["kl"] < b["kl"] else 1)
    if mode == "ratio":
        q, f, limit = weight_bytes(sys.argv[2]), weight_bytes(sys.argv[3]), float(sys.argv[4])
        r = q / f
        print("weights (norms excluded): %d / %d bytes = %.3f (limit %.3f)" % (q, f, r, limit))
        sys.exit(0 if r < limit else 1)
    if mode == "ranks":
        seen = {}
        for line in open(sys.argv[2]):
            m = re.match(r"\s+(\d+): attention .*, ranks ([^,]+)", line)
            if m:
                for item in m.group(2).split():
                    name, rank = item.split("=")
                    seen.setdefault(name, set()).add(int(rank))
        varied = {k: sorted(v) for k, v in seen.items() if len(v) > 1}
        print("ranks per matrix across layers: %s" % {k: sorted(v) for k, v in seen.items()})
        sys.exit(0 if varied else 1)
    sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
