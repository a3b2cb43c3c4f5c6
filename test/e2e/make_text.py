#!/usr/bin/env python3
"""Writes deterministic story-like text for tests that must not need ../shared.

  make_text.py SEED WORDS > FILE
"""
import random
import sys

rng = random.Random(int(sys.argv[1]))
names = ["Tom", "Lily", "Ben", "Sue", "the cat", "a dog", "the bird"]
verbs = ["saw", "liked", "found", "made", "took", "wanted", "helped"]
things = ["a ball", "the tree", "a red box", "the sun", "some water", "a big cake", "the park"]
ends = [".", ".", ".", "!", "?"]
out, words = [], 0
while words < int(sys.argv[2]):
    s = "%s %s %s%s" % (rng.choice(names), rng.choice(verbs), rng.choice(things), rng.choice(ends))
    s = s[0].upper() + s[1:]
    out.append(s)
    words += len(s.split())
    if rng.random() < 0.2:
        out.append("\n")
print(" ".join(out).replace(" \n ", "\n"))
