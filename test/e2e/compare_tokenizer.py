#!/usr/bin/env python3
"""Compares an executable's `--tokenize FILE` output with Hugging Face's
`tokenizers` package on the same lines: every line must give identical ids.

  compare_tokenizer.py TOKENIZER_JSON TEXT_FILE IDS_FILE
"""
import sys

from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
data = open(sys.argv[2], "rb").read()
lines = data.split(b"\n")
if data.endswith(b"\n"):
    lines.pop()  # std::getline reads no line after the last newline
got = open(sys.argv[3]).read().split("\n")
if got and got[-1] == "":
    got.pop()
if len(got) != len(lines):
    sys.exit("compare_tokenizer.py: %d lines of ids for %d lines of text" %
             (len(got), len(lines)))
bad = 0
tokens = 0
for n, (line, ids) in enumerate(zip(lines, got), 1):
    want = tok.encode(line.decode("utf-8", errors="replace"),
                      add_special_tokens=False).ids
    have = [int(x) for x in ids.split()]
    tokens += len(want)
    if want != have:
        bad += 1
        if bad <= 5:
            print("line %d: %r\n  reference %s\n  llmc      %s" %
                  (n, line[:200], want[:40], have[:40]))
print("%s: %d lines, %d tokens, %d lines differ" %
      (sys.argv[2].rsplit("/", 1)[-1], len(lines), tokens, bad))
sys.exit(1 if bad else 0)
