#!/usr/bin/env python3
"""The GPU check, part 2: runs on the machine with the GPU, over the folder
bench/gpu/prepare.sh made, and prints one markdown report.

    python3 bench/gpu/run.py DIR [--quick] [--eager-profile] [--micro]

(a) stories260K on the GPU: the same greedy text as the CPU program of the
    same executable and as golden.json; logits of the golden prompt against
    golden.json (bound stated in the row);
(b) the CUDA kernels against the CPU kernels on random inputs of odd sizes
    (the cuda-tests GoogleTest binary);
(c) the card's read bandwidth (reference_bench.cu, built here with nvcc);
(d) decode (128 tokens after a 128-token prompt) and prefill (512 tokens) at
    batch 1 for TinyLlama-1.1B and LLaMA-2-7B shapes in f16, q8 g32 and q4
    g128, with the fraction of the measured bandwidth reached, beside
    cuBLAS's f16 matrix-vector over the same shapes in the same run;
(e) at real shapes, the GPU's logits against the CPU program's over the same
    synthesized weights (one-token and eight-token prompts);
then, unless --quick, where a decode step's time goes: each kernel's duration
under Nsight Compute, when ncu is there (with --eager-profile also
LLMC_CUDA_PROFILE's CUDA events); with --micro, bench/gpu/gemv_micro.cu (the
matrix-vector kernel's design space, built here).
Python's standard library only.
"""
import csv
import json
import os
import subprocess
import sys
import time

DIR = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
QUICK = "--quick" in sys.argv
EAGER = "--eager-profile" in sys.argv
MICRO = "--micro" in sys.argv
WORK = "/tmp/llmc-gpu-check"
os.makedirs(WORK, exist_ok=True)
REPORT = []
T0 = time.time()


def say(line=""):
    print(line, flush=True)
    REPORT.append(line)


HUNG = []


def run(cmd, timeout=150, check=False, env=None):
    """Runs cmd; a command that outruns its timeout counts as failed (and
    is reported), so that one hang cannot eat the GPU session."""
    t = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        print("  [timed out after %ds] %s" % (timeout, " ".join(cmd)), flush=True)
        HUNG.append(" ".join(cmd))
        return subprocess.CompletedProcess(cmd, 124, "", "timed out")
    if p.returncode != 0:
        print("  [rc %d in %.1fs] %s\n%s" % (p.returncode, time.time() - t,
                                             " ".join(cmd), p.stderr[-2000:]),
              flush=True)
        if check:
            raise SystemExit(1)
    return p


def exe(name):
    return os.path.join(DIR, name)


GOLDEN_PROMPT = "Once upon a time, there was a little girl named Lily."


def stories():
    say("## (a) stories260K: GPU against CPU and golden.json")
    say("")
    say("| check | result |")
    say("|---|---|")
    for name in ["story", "story-q8"]:
        g = run([exe(name), "-n", "256"])
        c = run([exe(name), "--device", "cpu", "-n", "256"])
        same = g.returncode == 0 and g.stdout == c.stdout
        say("| %s: greedy 256 tokens from BOS, GPU == CPU | %s (%d bytes)%s |" % (
            name, "identical" if same else "DIFFERENT", len(g.stdout),
            "" if g.returncode == 0 else " rc %d: %s" % (g.returncode,
                                                         g.stderr.strip()[-200:])))
        if name == "story":
            open(os.path.join(WORK, "greedy.txt"), "w").write(g.stdout)
            r = run([sys.executable, exe("golden.py"), "text", exe("golden.json"),
                     os.path.join(WORK, "greedy.txt")])
            say("| story: greedy text vs golden.json | %s |" % (r.stdout.strip() or r.stderr.strip()))
    for kv, tol in [("f32", "1e-4"), ("f16", "2e-2")]:
        r = run([exe("story"), "-p", GOLDEN_PROMPT, "--kv-cache", kv, "--logits"])
        path = os.path.join(WORK, "logits-%s.txt" % kv)
        open(path, "w").write(r.stdout)
        chk = run([sys.executable, exe("golden.py"), "logits", exe("golden.json"),
                   path, tol])
        say("| story: 16-token prompt, %s KV cache, logits vs golden.json, bound %s | %s |" % (
            kv, tol, (chk.stdout.strip() or chk.stderr.strip()).replace("|", "/")))
    say("")


def kernels():
    say("## (b) CUDA kernels against the CPU kernels")
    say("")
    r = run([exe("cuda-tests")], timeout=180)
    # Both team sizes of the matrix-vector kernels, whichever the default
    # picks for a shape.
    runs = [("default", r)]
    for split in ["1", "2"]:
        e = dict(os.environ)
        e["LLMC_CUDA_GEMV_SPLIT"] = split
        runs.append(("LLMC_CUDA_GEMV_SPLIT=" + split,
                     run([exe("cuda-tests")], timeout=180, env=e)))
    for label, p in runs:
        lines = [l for l in p.stdout.splitlines()
                 if l.startswith("[  PASSED") or l.startswith("[  FAILED") or
                 l.startswith("[  SKIPPED") or "Failure" in l or "Expected" in l or
                 "Which is" in l or "relErr" in l or "Trace" in l or "format" in l]
        say("%s:" % label)
        say("```")
        for l in lines[:60]:
            say(l)
        say("```")
        say("")
    return all(p.returncode == 0 for _, p in runs)


def refbench():
    binary = os.path.join(WORK, "refbench")
    if not os.path.exists(binary):
        t = time.time()
        r = run(["nvcc", "-O3", "-std=c++17", "-gencode",
                 "arch=compute_90,code=sm_90", exe("reference_bench.cu"),
                 "-lcublas", "-o", binary], timeout=300)
        print("  nvcc refbench: %.1fs rc %d" % (time.time() - t, r.returncode),
              flush=True)
        if r.returncode != 0:
            return None
    return binary


def jsonline(p):
    for line in reversed(p.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


SHAPES = {
    "tinyllama-1.1b": ["--hidden", "2048", "--ffn", "5632", "--layers", "22",
                       "--heads", "32", "--kv-heads", "4", "--vocab", "32000"],
    "llama2-7b": ["--hidden", "4096", "--ffn", "11008", "--layers", "32",
                  "--heads", "32", "--kv-heads", "32", "--vocab", "32000"],
}
FORMATS = [("f16", "f16"), ("q8", "q8 g32"), ("q4", "q4 g128")]


def speed(rb):
    say("## (c) read bandwidth and (d) speed at batch 1")
    say("")
    bw = None
    if rb:
        b = jsonline(run([rb, "--bandwidth"]))
        if b:
            bw = b["read_gbs"]
            say("Read bandwidth (streaming 128-bit loads over 2 GiB, best of 10): "
                "**%.0f GB/s** (median %.0f); device-to-device copy %.0f GB/s "
                "(read + write). Device: %s." % (
                    b["read_gbs"], b.get("read_gbs_median", 0), b.get("d2d_gbs", 0),
                    b.get("device", "?")))
            say("")
    say("| shape | format | weight bytes read per token | decode tok/s (128 after 128) | decode GB/s | % of read bandwidth | decode tok/s, LLMC_CUDA_PDL=0 | decode tok/s, LLMC_CUDA_GEMV_SPLIT=1 | decode tok/s, LLMC_CUDA_GEMV_SPLIT=2 | decode tok/s, LLMC_CUDA_FUSE=0 | prefill 512 tok/s (cuBLAS) | prefill 512 tok/s (built-in kernel) |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    reps = "2" if QUICK else "3"
    for shape in ["tinyllama-1.1b", "llama2-7b"]:
        if rb:
            c = jsonline(run([rb] + SHAPES[shape] + ["--label", shape]))
            if c:
                say("| %s | cuBLAS f16 GEMV only (reference) | %.2f GB | %.1f | %.0f | %s | | | | | | |" % (
                    shape, c["weight_bytes"] / 1e9, c["tokens_per_s"], c["gbs"],
                    "%.0f%%" % (100 * c["gbs"] / bw) if bw else "?"))
        for fmt, label in FORMATS:
            name = exe("%s-%s" % (shape, fmt))
            if not os.path.exists(name):
                continue
            decode = [name, "--bench", "--bench-prefill", "128", "--bench-decode",
                      "128", "--bench-reps", reps, "--ctx", "1024", "--json"]
            prefill = [name, "--bench", "--bench-prefill", "512", "--bench-decode",
                       "0", "--bench-reps", reps, "--ctx", "1024", "--json"]

            def env(**kw):
                e = dict(os.environ)
                e.update(kw)
                return e
            d = jsonline(run(decode))
            p = jsonline(run(prefill))
            n = jsonline(run(decode, env=env(LLMC_CUDA_PDL="0")))
            r = jsonline(run(decode, env=env(LLMC_CUDA_GEMV_SPLIT="1")))
            r2 = jsonline(run(decode, env=env(LLMC_CUDA_GEMV_SPLIT="2")))
            u = jsonline(run(decode, env=env(LLMC_CUDA_FUSE="0")))
            q = jsonline(run(prefill, env=env(LLMC_CUBLAS="0")))
            if not d:
                say("| %s | %s | failed | | | | | | | | | |" % (shape, label))
                continue
            gbs = d["decode_gb_s"]
            say("| %s | %s | %.2f GB | %.1f | %.0f | %s | %s | %s | %s | %s | %s | %s |" % (
                shape, label, d["bytes_per_token"] / 1e9, d["decode_tok_s"], gbs,
                "%.0f%%" % (100 * gbs / bw) if bw else "?",
                "%.1f" % n["decode_tok_s"] if n else "failed",
                "%.1f" % r["decode_tok_s"] if r else "failed",
                "%.1f" % r2["decode_tok_s"] if r2 else "failed",
                "%.1f" % u["decode_tok_s"] if u else "failed",
                "%.0f" % p["prefill_tok_s"] if p else "failed",
                "%.0f" % q["prefill_tok_s"] if q else "failed"))
    say("")


def logits(name, ids, dev, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = run([exe(name), "--device", dev, "--prompt-ids", ids,
             "--logits", "--kv-cache", "f32", "--ctx", "64"], env=e)
    return [[float(v) for v in l.split()] for l in p.stdout.splitlines() if l.strip()]


def rel(a, b):
    if not a or not b or len(a) != len(b):
        return float("nan")
    worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    return worst / max(max(abs(y) for rb in b for y in rb), 1e-30)


def real_shapes():
    say("## (e) real shapes: GPU logits against the CPU program over the same synthesized weights")
    say("")
    say("max |difference| / max |logit| of the prompt's logits; the CPU twice: its "
        "best kernels (AVX2/AVX-512) and the portable ones (LLMC_KERNELS=generic).")
    say("")
    say("| executable | prompt | GPU vs CPU | GPU vs CPU generic | CPU vs CPU generic |")
    say("|---|---|---|---|---|")
    for name in ["tinyllama-1.1b-f16", "tinyllama-1.1b-q8", "tinyllama-1.1b-q4"]:
        if not os.path.exists(exe(name)):
            continue
        for ids in ["1", "1,450,1200,3000,77,9,15000,31999"]:
            g = logits(name, ids, "cuda")
            c = logits(name, ids, "cpu")
            cg = logits(name, ids, "cpu", {"LLMC_KERNELS": "generic"})
            say("| %s | %d token(s) | %.2e | %.2e | %.2e |" % (
                name, len(ids.split(",")), rel(g, c), rel(g, cg), rel(c, cg)))
    say("")


def profile():
    say("## Where a decode step's time goes (LLMC_CUDA_PROFILE=1: every kernel eager, timed by CUDA events)")
    say("")
    for name in ["tinyllama-1.1b-q4", "llama2-7b-q4", "llama2-7b-f16"]:
        if not os.path.exists(exe(name)):
            continue
        e = dict(os.environ)
        e["LLMC_CUDA_PROFILE"] = "1"
        p = run([exe(name), "--bench", "--bench-prefill", "1",
                 "--bench-decode", "32", "--bench-reps", "1", "--ctx", "1024"],
                env=e)
        say("%s (1-token prompt, 32 decode steps):" % name)
        say("```")
        for l in p.stderr.splitlines()[:24]:
            say(l)
        say("```")
    say("")


NCU = next((p for p in [os.path.join(d, "ncu") for d in
             os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/cuda/bin"]]
             if os.path.exists(p)), None)


def kernel_times():
    """Each kernel of one graph-replayed decode step, timed alone by Nsight
    Compute (kernels serialized: no overlap of one kernel's tail with the
    next one's start), as means over the layers by position in the layer."""
    if not NCU:
        return
    say("## Each kernel of a decode step (Nsight Compute, serialized; real clocks, warm caches)")
    say("")
    say("`ncu --graph-profiling node --clock-control none --cache-control none "
        "--metrics gpu__time_duration.sum --csv EXE --bench --bench-prefill 4 "
        "--bench-decode 3 --bench-reps 1 --ctx 1024`; the last step's kernels, "
        "a layer's by their place in it (mean over the layers, microseconds).")
    say("")
    for name in ["tinyllama-1.1b-q4", "llama2-7b-q4", "llama2-7b-f16"]:
        if not os.path.exists(exe(name)):
            continue
        p = run([NCU, "--graph-profiling", "node", "--clock-control", "none",
                 "--cache-control", "none", "--metrics", "gpu__time_duration.sum",
                 "--csv", exe(name), "--bench", "--bench-prefill", "4",
                 "--bench-decode", "3", "--bench-reps", "1", "--ctx", "1024"],
                timeout=180)
        rows = list(csv.reader(l for l in p.stdout.splitlines() if l.startswith('"')))
        if len(rows) < 2:
            say("%s: no kernels profiled" % name)
            continue
        hdr, rows = rows[0], rows[1:]
        ki, vi = hdr.index("Kernel Name"), hdr.index("Metric Value")
        gi = hdr.index("Grid Size")
        names = [r[ki].split("(")[0].split("::")[-1].split("<")[0].replace("void ", "")
                 for r in rows]
        us = [float(r[vi].replace(",", "")) / 1e3 for r in rows]
        ends = [i for i, n in enumerate(names) if n == "argmaxKernel"]
        if len(ends) < 2:
            say("%s: no decode step found" % name)
            continue
        step = list(range(ends[-2] + 1, ends[-1] + 1))
        # Layers repeat one pattern of kernels; it starts after the embedding.
        first = next(i for i in step if names[i] == "embeddingKernel") + 1
        last_attn = max(i for i in step if names[i].startswith("attn"))
        body = list(range(first, last_attn + 1))
        attn = [i for i in body if names[i].startswith("attn")]
        period = attn[1] - attn[0] if len(attn) > 1 else len(body)
        layers = len(attn)
        cols = []
        for k in range(period):
            idx = [first + j * period + k for j in range(layers)
                   if first + j * period + k < len(names)]
            cols.append((names[idx[0]], sum(us[i] for i in idx) / len(idx)))
        rest = [i for i in step if i < first or i >= first + layers * period]
        total = sum(us[i] for i in step)
        say("%s: %d layers of %d kernels; the step's kernels add up to %.0f us" % (
            name, layers, period, total))
        say("")
        say("| kernel (place in the layer) | mean us |")
        say("|---|---|")
        for k, (n, t) in enumerate(cols):
            say("| %s, grid %s | %.2f |" % (n, rows[first + k][gi], t))
        for i in rest:
            say("| %s, grid %s (once a step) | %.2f |" % (names[i], rows[i][gi], us[i]))
        say("")


def micro():
    """bench/gpu/gemv_micro.cu: the matrix-vector kernel's design space."""
    src = exe("gemv_micro.cu")
    if not os.path.exists(src):
        return
    binary = os.path.join(WORK, "gemv_micro")
    r = run(["nvcc", "-O3", "-std=c++17", "-gencode", "arch=compute_90,code=sm_90",
             src, "-o", binary], timeout=300)
    if r.returncode != 0:
        say("gemv_micro: nvcc failed")
        return
    p = run([binary, "--reps", "15"], timeout=240)
    say("## The matrix-vector kernel's design space (bench/gpu/gemv_micro.cu)")
    say("")
    say("```")
    for l in p.stdout.splitlines():
        say(l)
    say("```")
    say("")


def main():
    r = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
             "--format=csv,noheader"])
    say("# llmc GPU check, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    say("")
    say("GPU: %s" % r.stdout.strip())
    say("")
    ok = kernels()
    stories()
    rb = refbench()
    speed(rb)
    real_shapes()
    if not QUICK:
        kernel_times()
    if EAGER:
        profile()
    if MICRO:
        micro()
    if HUNG:
        say("Timed out: " + "; ".join(HUNG))
    say("Total time: %.0f s." % (time.time() - T0))
    out = os.environ.get("OUT")
    if out:
        open(os.path.join(out, "gpu_report.md"), "w").write("\n".join(REPORT) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
