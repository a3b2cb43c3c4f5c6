#!/usr/bin/env python3
"""Rewrites a byte-level tokenizer.json's pre_tokenizer to the one GPT-2 or
Llama-3 publish (for testing every pre-tokenizer llmc implements).

  set_pretokenizer.py TOKENIZER_JSON gpt2|llama3
"""
import json
import sys

path, kind = sys.argv[1], sys.argv[2]
j = json.load(open(path, encoding="utf-8"))
byte_level = {"type": "ByteLevel", "add_prefix_space": False,
              "trim_offsets": True, "use_regex": True}
if kind == "gpt2":
    j["pre_tokenizer"] = byte_level
elif kind == "llama3":
    pattern = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
               "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
               "\\s+(?!\\S)|\\s+")
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern},
         "behavior": "Isolated", "invert": False},
        dict(byte_level, use_regex=False)]}
else:
    sys.exit("unknown pre-tokenizer " + kind)
json.dump(j, open(path, "w", encoding="utf-8"), ensure_ascii=False)
