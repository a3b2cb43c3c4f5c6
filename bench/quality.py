#!/usr/bin/env python3
"""Quality of llmc's compression methods, in the survey's terms and beyond.

For one checkpoint (default ../shared/models/stories260K; a Hugging Face
directory or a GGUF file), compiles f32, f16, q8, q4 RTN, GPTQ and AWQ
variants (--set quant, the default) or pruned and factored variants (--set
prune: structured FLaP / Wanda-SP / L2 at 20% and 50%, unstructured and 2:4
magnitude / Wanda, 2:4 Wanda with q8 and q4, low-rank auto against one
uniform rank at two budgets, FLaP 20% and auto low-rank each with q4 GPTQ,
and the dense q8/q4 rows to set them against) and measures on the same
text and tokens:
perplexity, KL divergence from the f32 model's next-token distribution and
top-1 agreement with it (--kl-reference), weight bytes, decode/prefill
tokens/s and peak memory (--bench). Prints a markdown table, writes JSON.

  bench/quality.py [--set quant|prune] [--ckpt DIR] [--text FILE] [--calib FILE] [--ctx 256]
                   [--tokens 19968] [--groups 32,128] [--asym] [--also-score FILE]
                   [--out bench/out]

A GGUF checkpoint's f32 reference is its weights dequantized at import
(SmolLM2's Q4_1 blocks as f32), the model every row is compared with.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")


def run(cmd):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--ckpt", default=os.path.join(SHARED, "models", "stories260K"))
    ap.add_argument("--text", default=os.path.join(SHARED, "data", "text", "tinystories_val_dev.txt"))
    ap.add_argument("--calib", default="",
                    help="calibration text (default: the last --calib-tail bytes of --text)")
    ap.add_argument("--calib-tail", type=int, default=300000,
                    help="bytes from the end of --text used for calibration; they must "
                         "lie beyond the scored tokens (the first --tokens)")
    ap.add_argument("--set", default="quant", choices=["quant", "prune"],
                    help="which configurations: quantization (default) or "
                         "pruning and low-rank")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=19968)
    ap.add_argument("--groups", default="32,128")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--also-score", default="",
                    help="a second text scored by the same executables (its "
                         "first --tokens tokens; it must not overlap the "
                         "calibration text)")
    ap.add_argument("--asym", action="store_true",
                    help="add a q4 RTN g32 row with a zero point per group "
                         "(--asym), the grid of GGUF's Q4_1")
    ap.add_argument("--kv-cache", default="f32", choices=["f32", "f16"],
                    help="KV cache of the scored models (default f32, so KL "
                         "measures the weights alone; the reference always "
                         "runs with f32)")
    args = ap.parse_args()

    llmc = os.path.join(args.build, "bin", "llmc")
    os.makedirs(args.out, exist_ok=True)
    if not args.calib:
        # Held-out, in-domain calibration text: the tail of the evaluation
        # file, disjoint from the scored prefix.
        with open(args.text, "rb") as f:
            data = f.read()
        # 8 bytes per token bounds English text under these tokenizers, so
        # the tail starts past every scored token.
        if len(data) - args.calib_tail < 8 * args.tokens:
            sys.exit("quality: %s is too short to hold out %d bytes beyond %d scored tokens"
                     % (args.text, args.calib_tail, args.tokens))
        args.calib = os.path.join(args.out, "calib-tail.txt")
        with open(args.calib, "wb") as f:
            f.write(data[-args.calib_tail:])
    name = os.path.basename(os.path.normpath(args.ckpt))
    if name.endswith(".gguf"):
        name = name[:-len(".gguf")]
    ref = os.path.join(args.out, name + "-f32.llmc")
    configs = [("f32", ["--weights", ref])]
    calib = ["--calib", args.calib]
    if args.set == "prune":
        for r in ("0.2", "0.5"):
            for m in ("flap", "wanda-sp", "l2"):
                configs.append(("structured %s %s" % (m, r),
                                ["--prune-structured", r, "--prune-method", m] +
                                (calib if m != "l2" else [])))
        for m in ("magnitude", "wanda"):
            extra = calib if m == "wanda" else []
            configs.append(("unstructured %s 0.5" % m, ["--prune", "0.5", "--prune-method", m] + extra))
            configs.append(("2:4 %s" % m, ["--prune-pattern", "2:4", "--prune-method", m] + extra))
        # 2:4 with quantized values (s24q8, s24q4), beside the dense q8/q4.
        for q in ("q8", "q4"):
            configs.append(("2:4 wanda + %s" % q, ["--prune-pattern", "2:4", "--prune-method", "wanda",
                                                  "--" + q] + calib))
        # Two budgets, each against the uniform rank of about the same
        # weight bytes (the rank's own fraction, read from its progress line).
        for auto, rank in (("0.6", "24"), ("0.77", "32")):
            configs.append(("low-rank auto=" + auto, ["--lowrank", "auto=" + auto] + calib))
            configs.append(("low-rank rank=" + rank, ["--lowrank", "rank=" + rank] + calib))
        q4 = ["--q4", "--quant-method", "gptq"] + calib
        configs.append(("flap 0.2 + q4 gptq g32", ["--prune-structured", "0.2"] + q4))
        configs.append(("low-rank auto=0.6 + q4 gptq g32", ["--lowrank", "auto=0.6"] + q4))
        configs.append(("q4 gptq g32", q4))
        configs.append(("q8 rtn g32", ["--q8"]))
        configs.append(("q4 rtn g32", ["--q4"]))
        args.groups = ""
    else:
        configs += [("f16", ["--f16"]), ("q8 rtn g32", ["--q8"])]
    if args.asym:
        configs.append(("q4 rtn g32 asym", ["--q4", "--group-size", "32", "--asym"]))
    for g in filter(None, args.groups.split(",")):
        gs = ["--q4", "--group-size", g]
        configs += [("q4 rtn g" + g, gs),
                    ("q4 gptq g" + g, gs + ["--quant-method", "gptq", "--calib", args.calib]),
                    ("q4 awq g" + g, gs + ["--quant-method", "awq", "--calib", args.calib])]
    results = []
    for label, flags in configs:
        exe = os.path.join(args.out, name + "-" + label.replace(" ", "-").replace(":", "_")
                           .replace("=", "").replace("+", "and"))
        run([llmc, "compile", args.ckpt, "-o", exe, "--quiet"] + flags)
        ppl_cmd = [exe, "--kv-cache", args.kv_cache, "--perplexity", args.text, "--ctx", str(args.ctx),
                   "--ppl-tokens", str(args.tokens), "--json", "--threads", str(args.threads)]
        if label != "f32":
            ppl_cmd += ["--kl-reference", ref]
        p = last_json(run(ppl_cmd))
        also = {}
        if args.also_score:
            cmd = list(ppl_cmd)
            cmd[cmd.index(args.text)] = args.also_score
            a = last_json(run(cmd))
            also = {"also_ppl": a["ppl"], "also_kl": a.get("kl", 0.0),
                    "also_top1": a.get("top1", 1.0)}
        b = last_json(run([exe, "--bench", "--threads", str(args.threads), "--json"]))
        results.append({"config": label, "flags": " ".join(flags), "ppl": p["ppl"], **also,
                        "kl": p.get("kl", 0.0), "top1": p.get("top1", 1.0),
                        "weight_bytes": b["weight_bytes"],
                        "prefill_tok_s": b["prefill_tok_s"],
                        "decode_tok_s": b["decode_tok_s"],
                        "peak_rss_mib": b["peak_rss_mib"]})
    print("| config | perplexity | KL vs f32 (nats/token) | top-1 agreement | weight bytes | prefill tok/s | decode tok/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print("| %s | %.4f | %.5f | %.2f%% | %d | %.0f | %.0f | %.1f |" % (
            r["config"], r["ppl"], r["kl"], 100 * r["top1"], r["weight_bytes"],
            r["prefill_tok_s"], r["decode_tok_s"], r["peak_rss_mib"]))
    if args.also_score:
        print("\n%s (same executables):\n" % os.path.basename(args.also_score))
        print("| config | perplexity | KL vs f32 (nats/token) | top-1 agreement |")
        print("|---|---|---|---|")
        for r in results:
            print("| %s | %.4f | %.5f | %.2f%% |" % (
                r["config"], r["also_ppl"], r["also_kl"], 100 * r["also_top1"]))
    path = os.path.join(args.out, name + ("-quality.json" if args.set == "quant"
                                          else "-prune.json"))
    with open(path, "w") as f:
        json.dump({"ckpt": args.ckpt, "text": args.text, "also_score": args.also_score,
                   "calib": args.calib,
                   "ctx": args.ctx, "tokens": args.tokens, "results": results}, f, indent=1)
    print("JSON: " + path)


if __name__ == "__main__":
    main()
