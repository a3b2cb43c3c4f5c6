#!/usr/bin/env python3
"""A second independent reference for a llama GGUF: Hugging Face
transformers loads the GGUF itself (its own GGUF loader, dequantizer, q/k
un-permutation, tokenizer conversion and LlamaForCausalLM, on CPU in
float32), and the compiled executable is compared with it:
  1. logits of the prompt ids IDS (`EXE --prompt-ids IDS --logits
     --kv-cache f32`): max |difference| and top-1 agreement;
  2. the prompt file's ids, and transformers' own greedy continuation of
     MIN_NEW tokens against the executable's greedy tokens.
Needs torch and transformers (several GB; not part of the CI run):

  python3 -m venv /tmp/venv-tf && /tmp/venv-tf/bin/pip install torch transformers gguf
  /tmp/venv-tf/bin/python test/e2e/transformers_reference.py MODEL.gguf EXE IDS PROMPT_FILE MIN_NEW
"""
import os
import subprocess
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf, exe, ids_arg, prompt_file, min_new = sys.argv[1:6]
min_new = int(min_new)
d, f = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
model.eval()

ids = [int(x) for x in ids_arg.split(",")]
with torch.no_grad():
    ref = model(torch.tensor([ids])).logits[0].double().numpy()
out = subprocess.run([exe, "--prompt-ids", ids_arg, "--logits", "--kv-cache", "f32"],
                     check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
got = np.array([[float(x) for x in line.split()] for line in out.splitlines() if line.strip()])
err = np.abs(got - ref).max()
top1 = (got.argmax(1) == ref.argmax(1)).mean()
print("logits: max |llmc - transformers| = %.3g over %d x %d, top-1 agree %.3f"
      % (err, *ref.shape, top1))

prompt = open(prompt_file, encoding="utf-8").read()
p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
llmc_ids = [int(x) for x in subprocess.run(
    [exe, "-f", prompt_file, "-n", "0", "--ids"], check=True,
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.split()]
print("prompt ids identical: %s (%d tokens)" % (p_ids == llmc_ids, len(p_ids)))
with torch.no_grad():
    gen = model.generate(torch.tensor([p_ids]), max_new_tokens=min_new, do_sample=False,
                         eos_token_id=None, pad_token_id=0)[0].tolist()[len(p_ids):]
ours = [int(x) for x in subprocess.run(
    [exe, "--prompt-ids", ",".join(map(str, p_ids)), "-n", str(min_new), "--ids",
     "--kv-cache", "f32"], check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    text=True).stdout.split()][len(p_ids):]
same = next((i for i in range(min(len(gen), len(ours))) if gen[i] != ours[i]), None)
print("greedy: transformers %d tokens, llmc %d tokens, %s"
      % (len(gen), len(ours), "identical" if same is None and len(gen) == len(ours)
         else "first difference at new token %s" % same))
print("transformers text: %r" % tok.decode(gen))
ok = err < 1e-3 and p_ids == llmc_ids and same is None and len(gen) == len(ours)
sys.exit(0 if ok else 1)
