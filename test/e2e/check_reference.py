#!/usr/bin/env python3
"""Checks an executable against the float64 numpy reference of ../shared/tools
on a Hugging Face checkpoint, given token ids (no tokenizer involved).

  check_reference.py logits TOOLS CKPT IDS LOGITS_FILE TOL
      LOGITS_FILE is `--prompt-ids IDS --logits` output; passes when the
      largest |logit - reference| is at most TOL.
  check_reference.py greedy TOOLS CKPT PROMPT_IDS OUTPUT_IDS MIN_NEW
      OUTPUT_IDS is `--prompt-ids PROMPT_IDS --ids` output (prompt echoed,
      then the greedy tokens). One reference forward pass over prompt +
      generated tokens must pick, at every position, the token the
      executable generated next: by induction the reference's own greedy
      decoding gives the same sequence. At least MIN_NEW new tokens needed.
IDS are comma-separated.
"""
import sys

import numpy as np

mode, tools, ckpt = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, tools)
from ref_llama_np import Llama  # noqa: E402

model = Llama(ckpt, np.float64)
ids = [int(x) for x in sys.argv[4].split(",")]
if mode == "logits":
    got = np.loadtxt(sys.argv[5], ndmin=2)
    ref = model.forward(ids)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = np.abs(got - ref).max()
    top1 = (got.argmax(1) == ref.argmax(1)).mean()
    print("max |logit - float64 reference| = %.3g over %d x %d (top-1 agree %.3f)"
          % (err, *ref.shape, top1))
    sys.exit(0 if err <= float(sys.argv[6]) else 1)
elif mode == "greedy":
    out = [int(x) for x in open(sys.argv[5]).read().split()]
    assert out[:len(ids)] == ids, "the output does not start with the prompt"
    new = out[len(ids):]
    if len(new) < int(sys.argv[6]):
        sys.exit("only %d new tokens, fewer than %s" % (len(new), sys.argv[6]))
    logits = model.forward(out[:-1])
    ref = logits[len(ids) - 1:].argmax(1)
    same = int(np.sum(ref == np.array(new)))
    first = next((i for i in range(len(new)) if ref[i] != new[i]), None)
    print("greedy: %d of %d new tokens are the reference's argmax%s" %
          (same, len(new), "" if first is None else
           " (first difference at new token %d)" % first))
    sys.exit(0 if first is None else 1)
else:
    sys.exit("unknown mode " + mode)
