#!/usr/bin/env python3
"""Compares --logits output with the float64 numpy reference of ../shared/tools.

  reference_logits.py TOOLS_DIR CHECKPOINT PROMPT LOGITS_FILE TOLERANCE
"""
import sys, os, numpy as np
sys.path.insert(0, sys.argv[1])
from ref_llama_np import Llama
import sentencepiece as spm
d, prompt, logits_file, tol = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
ids = [sp.bos_id()] + sp.encode(prompt)
ref = Llama(d, np.float64).forward(ids)
got = np.loadtxt(logits_file, ndmin=2)
assert got.shape == ref.shape, (got.shape, ref.shape)
err = np.abs(got - ref).max()
print("max |logit - float64 reference| = %.3g over %d x %d" % (err, *ref.shape))
sys.exit(0 if err <= tol else 1)
