#!/usr/bin/env python3
"""llmc's speed benchmark at real shapes (a benchmark, not a test).

Makes a TinyLlama-1.1B-shaped checkpoint with random f16 weights
(llmc-make-model), compiles it at f16, q8, q4 g32 and q4 g128 (or the
--configs named: s50 is 50% structured L2 pruning, nm24 2:4 magnitude
pruning, both f16; nm24q4 the 2:4 model with --q4, s24q4), then runs each
executable's --bench (prefill N tokens, decode N tokens, median of R reps) at
1 and 2 threads, interleaved: --passes rounds over every (threads, config),
the median of the passes reported. Each round also measures the machine's
read bandwidth (llmc-membw) at each thread count, and the table gives each
decode's share of it.

With --llama-cpp DIR (a CPU build of llama.cpp: DIR holds llama-bench and
llama-quantize), the same checkpoint is exported to GGUF (llmc export --type
f16) and quantized to the matching llama.cpp types (f16 F16, q8 Q8_0, q4g32
Q4_0, q4g128 Q4_K_M), and llama-bench (-p N -n N -r R, same threads) runs
beside every llmc run, the two alternating which goes first; the table gets
llama.cpp's figures and the ratio llmc / llama.cpp.

With --random-weights, llmc compiles the preset's config alone (llmc-make-model
--config-only; `llmc compile config.json --random-weights`): no checkpoint is
written and the executables synthesize their weights at load, so shapes whose
files do not fit (--preset llama2-7b: 13.5 GB of f16) can be timed. Speed
does not depend on the values; llama.cpp still reads the GGUF files, so with
--llama-cpp the checkpoint is made for them.

Each compile's time and peak anonymous memory (RssAnon, sampled from
/proc every 50 ms; the mapped checkpoint's file pages do not count) are
recorded too. Prints a table, writes JSON and (with matplotlib: /usr/bin/python3 and
python3-matplotlib) a plot of decode tokens/s against weight bytes.

  bench/run.py [--build build] [--out bench/out] [--preset tinyllama-1.1b]
               [--prefill 128] [--decode 128] [--reps 5] [--threads 1,2]
               [--configs f16,q8,q4g32,q4g128] [--passes 1]
               [--llama-cpp DIR] [--random-weights]

Needs a built tree (scripts/build.sh) and ../shared/models/llama2-tokenizer.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import track_memory  # noqa: E402

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


LLAMA_TYPES = {"f16": "F16", "q8": "Q8_0", "q4g32": "Q4_0", "q4g128": "Q4_K_M"}


def compile_tracked(cmd):
    """Runs an llmc compile under track_memory.py's sampler; returns
    (seconds, peak RssAnon MiB)."""
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    rc, seconds, anon, _ = track_memory.track(cmd)
    if rc != 0:
        sys.exit("bench: %s failed" % " ".join(cmd))
    return seconds, anon


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def llama_bench(llama_dir, gguf, threads, args):
    """llama-bench's pp and tg tokens/s (averages over -r reps) and the model size."""
    out = run([os.path.join(llama_dir, "llama-bench"), "-m", gguf,
               "-p", str(args.prefill), "-n", str(args.decode),
               "-t", str(threads), "-r", str(args.reps), "-o", "json"],
              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    rows = json.loads(out)
    pp = [r for r in rows if r["n_prompt"] > 0 and r["n_gen"] == 0]
    tg = [r for r in rows if r["n_gen"] > 0 and r["n_prompt"] == 0]
    return {"prefill_tok_s": pp[0]["avg_ts"], "decode_tok_s": tg[0]["avg_ts"],
            "model_bytes": tg[0]["model_size"]}


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: no matplotlib here (run with /usr/bin/python3 after "
              "apt install python3-matplotlib): no plot", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for threads, marker in ((1, "o"), (2, "s")):
        for engine, color, key, size in (
                ("llmc", "tab:blue", "decode_tok_s", "weight_bytes"),
                ("llama.cpp", "tab:orange", "llama_decode_tok_s", "llama_model_bytes")):
            pts = [(r[size] / 1e6, r[key], r["config"]) for r in results
                   if r["threads"] == threads and key in r]
            if not pts:
                continue
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color,
                       marker=marker, label="%s, %d thread%s" % (
                           engine, threads, "" if threads == 1 else "s"))
            for x, y, name in pts:
                ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
    ax.set_xlabel("weight bytes (MB)")
    ax.set_ylabel("decode tokens/s")
    ax.set_title("decode speed against weight bytes (%s)" % results[0]["preset"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


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
    ap.add_argument("--llama-cpp", default="",
                    help="a llama.cpp CPU build's bin folder (llama-bench, "
                         "llama-quantize): run it side by side")
    ap.add_argument("--random-weights", action="store_true",
                    help="compile the preset's config alone (weights "
                         "synthesized at load): no checkpoint for llmc")
    args = ap.parse_args()

    bin_dir = os.path.join(args.build, "bin")
    for tool in ("llmc", "llmc-make-model", "llmc-membw"):
        if not os.path.exists(os.path.join(bin_dir, tool)):
            sys.exit("bench: %s not built; run scripts/build.sh first" % tool)
    if not os.path.exists(args.tokenizer):
        sys.exit("bench: no tokenizer at %s" % args.tokenizer)
    names = args.configs.split(",")
    for name in names:
        if name not in CONFIGS:
            sys.exit("bench: unknown config %s (%s)" % (name, ", ".join(CONFIGS)))
    if args.llama_cpp:
        for tool in ("llama-bench", "llama-quantize"):
            if not os.path.exists(os.path.join(args.llama_cpp, tool)):
                sys.exit("bench: no %s in %s" % (tool, args.llama_cpp))
        for name in names:
            if name not in LLAMA_TYPES:
                sys.exit("bench: config %s has no llama.cpp counterpart (%s)"
                         % (name, ", ".join(LLAMA_TYPES)))
    if args.random_weights:
        for name in names:
            if name not in ("f16", "q8", "q4g32", "q4g128"):
                sys.exit("bench: config %s prunes, which needs the weights' "
                         "values; --random-weights has none" % name)
    os.makedirs(args.out, exist_ok=True)

    ckpt = os.path.join(args.out, args.preset)
    if (not args.random_weights or args.llama_cpp) and \
            not os.path.exists(os.path.join(ckpt, "model.safetensors")):
        run([os.path.join(bin_dir, "llmc-make-model"), "--preset", args.preset,
             "--tokenizer", args.tokenizer, "-o", ckpt])
    source = ckpt
    if args.random_weights:
        shapes = os.path.join(args.out, args.preset + "-config")
        run([os.path.join(bin_dir, "llmc-make-model"), "--preset", args.preset,
             "--tokenizer", args.tokenizer, "--config-only", "-o", shapes],
            stdout=subprocess.DEVNULL)
        source = os.path.join(shapes, "config.json")

    compile_s, compile_rss = {}, {}
    for name in names:
        exe = os.path.join(args.out, "%s-%s" % (args.preset, name))
        compile_s[name], compile_rss[name] = compile_tracked(
            [os.path.join(bin_dir, "llmc"), "compile", source, "-o", exe,
             "--max-seq", str(max(512, args.prefill + args.decode)), "--quiet"]
            + (["--random-weights"] if args.random_weights else [])
            + CONFIGS[name])
    ggufs = {}
    if args.llama_cpp:
        f16 = os.path.join(args.out, "%s-F16.gguf" % args.preset)
        if not os.path.exists(f16):
            run([os.path.join(bin_dir, "llmc"), "export", ckpt, "-o", f16,
                 "--type", "f16"])
        for name in names:
            t = LLAMA_TYPES[name]
            g = os.path.join(args.out, "%s-%s.gguf" % (args.preset, t))
            if not os.path.exists(g):
                run([os.path.join(args.llama_cpp, "llama-quantize"), f16, g, t],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ggufs[name] = g

    threads_list = [int(t) for t in args.threads.split(",")]
    samples, llama, bandwidth = {}, {}, {}
    for p in range(args.passes):
        for threads in threads_list:
            bw = run([os.path.join(bin_dir, "llmc-membw"), "--threads",
                      str(threads), "--json"], stdout=subprocess.PIPE,
                     text=True).stdout
            bandwidth.setdefault(threads, []).append(json.loads(bw)["read_gb_s"])
            for i, name in enumerate(names):
                exe = os.path.join(args.out, "%s-%s" % (args.preset, name))

                def ours():
                    out = run([exe, "--bench", "--threads", str(threads),
                               "--bench-prefill", str(args.prefill),
                               "--bench-decode", str(args.decode),
                               "--bench-reps", str(args.reps), "--json"],
                              stdout=subprocess.PIPE, text=True).stdout
                    samples.setdefault((threads, name), []).append(
                        json.loads(out.strip().splitlines()[-1]))

                def theirs():
                    llama.setdefault((threads, name), []).append(
                        llama_bench(args.llama_cpp, ggufs[name], threads, args))

                order = [ours, theirs] if (p + i) % 2 == 0 else [theirs, ours]
                for fn in order:
                    if fn is ours or args.llama_cpp:
                        fn()
    results = []
    for (threads, name), runs in samples.items():
        runs.sort(key=lambda r: r["decode_tok_s"])
        r = dict(runs[len(runs) // 2])
        r["prefill_tok_s"] = median(x["prefill_tok_s"] for x in runs)
        bw = median(bandwidth[threads])
        r.update({"config": name, "compile_s": round(compile_s[name], 2),
                  "compile_rss_anon_mib": round(compile_rss[name], 1),
                  "preset": args.preset, "passes": len(runs),
                  "random_weights": args.random_weights,
                  "decode_samples": [x["decode_tok_s"] for x in runs],
                  "prefill_samples": [x["prefill_tok_s"] for x in runs],
                  "read_gb_s": bw, "read_gb_s_samples": bandwidth[threads],
                  "bandwidth_share": r["decode_gb_s"] / bw})
        if (threads, name) in llama:
            ls = llama[(threads, name)]
            r.update({"llama_type": LLAMA_TYPES[name],
                      "llama_decode_tok_s": median(x["decode_tok_s"] for x in ls),
                      "llama_prefill_tok_s": median(x["prefill_tok_s"] for x in ls),
                      "llama_model_bytes": ls[0]["model_bytes"],
                      "llama_decode_samples": [x["decode_tok_s"] for x in ls],
                      "llama_prefill_samples": [x["prefill_tok_s"] for x in ls]})
        results.append(r)
    base = {r["threads"]: r for r in results if r["config"] == names[0]}

    header = ["config", "threads", "prefill tok/s", "decode tok/s",
              "decode vs %s" % names[0], "weight MB", "MB read/token",
              "decode GB/s", "share of read bandwidth", "peak RSS MiB",
              "compile s", "compile RssAnon MiB"]
    if args.llama_cpp:
        header[2:4] = ["llama.cpp type", "prefill tok/s (llama.cpp / llmc / ratio)",
                       "decode tok/s (llama.cpp / llmc / ratio)"]
    rows = []
    for r in results:
        row = [r["config"], r["threads"], "%.1f" % r["prefill_tok_s"],
               "%.2f" % r["decode_tok_s"],
               "%.2fx" % (r["decode_tok_s"] / base[r["threads"]]["decode_tok_s"]),
               "%.0f" % (r["weight_bytes"] / 1e6),
               "%.0f" % (r["bytes_per_token"] / 1e6),
               "%.1f" % r["decode_gb_s"],
               "%.0f%% of %.1f GB/s" % (100 * r["bandwidth_share"], r["read_gb_s"]),
               "%.0f" % r["peak_rss_mib"], "%.1f" % r["compile_s"],
               "%.0f" % r["compile_rss_anon_mib"]]
        if args.llama_cpp:
            row[2:4] = [r["llama_type"],
                        "%.1f / %.1f / %.2fx" % (r["llama_prefill_tok_s"], r["prefill_tok_s"],
                                                 r["prefill_tok_s"] / r["llama_prefill_tok_s"]),
                        "%.2f / %.2f / %.2fx" % (r["llama_decode_tok_s"], r["decode_tok_s"],
                                                 r["decode_tok_s"] / r["llama_decode_tok_s"])]
        rows.append(row)
    if args.random_weights:
        print("llmc: compiled from %s's config alone (--random-weights; compile "
              "figures are of that compile)" % args.preset)
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as f:
        json.dump({"preset": args.preset, "random_weights": args.random_weights,
                   "prefill": args.prefill,
                   "decode": args.decode, "reps": args.reps,
                   "passes": args.passes, "llama_cpp": args.llama_cpp,
                   "results": results}, f, indent=1)
    print("JSON: " + path)
    png = plot(results, os.path.join(args.out, "results.png"))
    if png:
        print("plot: " + png)


if __name__ == "__main__":
    main()
