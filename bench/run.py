#!/usr/bin/env python3
"""llmc's speed benchmark at real shapes (a benchmark, not a test).

Makes a TinyLlama-1.1B-shaped checkpoint with random f16 weights
(llmc-make-model), compiles it at f16, q8, q4 g32 and q4 g128 (or the
--configs named: s50 is 50% structured L2 pruning, nm24 2:4 magnitude
pruning, both f16; nm24q4 the 2:4 model with --q4, s24q4), then runs each executable's --bench (prefill N tokens,
decode N tokens, median of R reps) at 1 and 2 threads, interleaved: --passes
rounds over every (threads, config), the median of the passes reported.
Prints a table (with each config's speed relative to the first) and writes
JSON.

  bench/run.py [--build build] [--out bench/out] [--preset tinyllama-1.1b]
               [--prefill 128] [--decode 128] [--reps 5] [--threads 1,2]
               [--configs f16,q8,q4g32,q4g128] [--passes 1]

Needs a built tree (scripts/build.sh) and ../shared/models/llama2-tokenizer.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIGS = {
    "f16": [],
    "q8": ["--q8"],
    "q4g32": ["--q4", "--group-size", "32"],
    "q4g128": ["--q4", "--group-size", "128"],
    # Pruning at real shapes: structure only (random weights have no
    # calibration worth the name, so L2 and magnitude pick what goes).
    "s50": ["--prune-structured", "0.5", "--prune-method", "l2"],
    "nm24": ["--prune-pattern", "2:4", "--prune-method", "magnitude"],
    "nm24q4": ["--prune-pattern", "2:4", "--prune-method", "magnitude", "--q4"],
}


def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--preset", default="tinyllama-1.1b")
    ap.add_argument("--tokenizer", default=os.path.join(
        ROOT, "..", "shared", "models", "llama2-tokenizer", "tokenizer.model"))
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--configs", default="f16,q8,q4g32,q4g128")
    ap.add_argument("--passes", type=int, default=1,
                    help="interleaved rounds; the median is reported")
    args = ap.parse_args()

    bin_dir = os.path.join(args.build, "bin")
    for tool in ("llmc", "llmc-make-model"):
        if not os.path.exists(os.path.join(bin_dir, tool)):
            sys.exit("bench: %s not built; run scripts/build.sh first" % tool)
    if not os.path.exists(args.tokenizer):
        sys.exit("bench: no tokenizer at %s" % args.tokenizer)
    os.makedirs(args.out, exist_ok=True)

    ckpt = os.path.join(args.out, args.preset)
    if not os.path.exists(os.path.join(ckpt, "model.safetensors")):
        run([os.path.join(bin_dir, "llmc-make-model"), "--preset", args.preset,
             "--tokenizer", args.tokenizer, "-o", ckpt])

    names = args.configs.split(",")
    for name in names:
        if name not in CONFIGS:
            sys.exit("bench: unknown config %s (%s)" % (name, ", ".join(CONFIGS)))
    compile_s = {}
    for name in names:
        exe = os.path.join(args.out, "%s-%s" % (args.preset, name))
        t0 = time.time()
        run([os.path.join(bin_dir, "llmc"), "compile", ckpt, "-o", exe,
             "--max-seq", str(max(512, args.prefill + args.decode)), "--quiet"]
            + CONFIGS[name])
        compile_s[name] = time.time() - t0
    samples = {}
    for _ in range(args.passes):
        for threads in [int(t) for t in args.threads.split(",")]:
            for name in names:
                exe = os.path.join(args.out, "%s-%s" % (args.preset, name))
                out = run([exe, "--bench", "--threads", str(threads),
                           "--bench-prefill", str(args.prefill),
                           "--bench-decode", str(args.decode),
                           "--bench-reps", str(args.reps), "--json"],
                          stdout=subprocess.PIPE, text=True).stdout
                samples.setdefault((threads, name), []).append(
                    json.loads(out.strip().splitlines()[-1]))
    results = []
    for (threads, name), runs in samples.items():
        runs.sort(key=lambda r: r["decode_tok_s"])
        r = dict(runs[len(runs) // 2])
        r["prefill_tok_s"] = sorted(x["prefill_tok_s"] for x in runs)[len(runs) // 2]
        r.update({"config": name, "compile_s": round(compile_s[name], 2),
                  "preset": args.preset, "passes": len(runs),
                  "decode_samples": [x["decode_tok_s"] for x in runs],
                  "prefill_samples": [x["prefill_tok_s"] for x in runs]})
        results.append(r)
    base = {r["threads"]: r for r in results if r["config"] == names[0]}

    header = ("config", "threads", "prefill tok/s", "decode tok/s",
              "decode vs %s" % names[0], "weight MB", "MB read/token",
              "decode GB/s", "peak RSS MiB", "compile s")
    rows = [(r["config"], r["threads"], "%.1f" % r["prefill_tok_s"],
             "%.2f" % r["decode_tok_s"],
             "%.2fx" % (r["decode_tok_s"] / base[r["threads"]]["decode_tok_s"]),
             "%.0f" % (r["weight_bytes"] / 1e6),
             "%.0f" % (r["bytes_per_token"] / 1e6),
             "%.1f" % r["decode_gb_s"], "%.0f" % r["peak_rss_mib"],
             "%.1f" % r["compile_s"]) for r in results]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as f:
        json.dump({"preset": args.preset, "prefill": args.prefill,
                   "decode": args.decode, "reps": args.reps,
                   "passes": args.passes,
                   "results": results}, f, indent=1)
    print("JSON: " + path)


if __name__ == "__main__":
    main()
