"""Runs `EXE --perplexity FILE --json` on a text whose file name holds a quote,
a backslash and a tab, and checks that the JSON parses and names the file.

    json_name.py EXE DIR"""
import json
import os
import subprocess
import sys

exe, folder = sys.argv[1], sys.argv[2]
path = os.path.join(folder, 'a "quoted"\\name\t.txt')
with open(path, "w") as f:
    f.write("Once upon a time there was a little dog. " * 40)
out = subprocess.run([exe, "--perplexity", path, "--ctx", "16", "--json"],
                     capture_output=True, text=True, check=True).stdout
line = [l for l in out.splitlines() if l.startswith("{")][0]
got = json.loads(line)["file"]
if got != path:
    sys.exit("FAIL: file %r, expected %r" % (got, path))
print("ok: the JSON names %r" % got)
