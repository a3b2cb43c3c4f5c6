#!/usr/bin/env bash
# The GPU check, part 1 (on the build machine): compiles everything the check
# needs into one small folder, DIR, which bench/gpu/run.sh then runs on a
# machine with the GPU (driver, nvcc and python3 there; no MLIR, no network).
#
#   bench/gpu/prepare.sh DIR
#
# DIR receives: stories260K compiled with --target cuda (and golden.json,
# golden.py to check it), the CUDA kernel tests, the cuBLAS/bandwidth
# reference source, and TinyLlama-1.1B- and LLaMA-2-7B-shaped executables in
# f16, q8 (g32) and q4 (g128) compiled with --random-weights: no weights are
# carried, the GPU synthesizes them at load. The random checkpoints they are
# compiled from (2.2 and 13.5 GB) are made once with llmc-make-model under
# $LLMC_GPU_CKPTS (default /tmp/llmc-gpu-ckpts) and kept for the next run.
# LLMC_GPU_PRESETS and LLMC_GPU_FORMATS pick fewer shapes or formats (for a
# shorter check).
set -euo pipefail
DIR=${1:?usage: bench/gpu/prepare.sh DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${LLMC_BUILD:-$ROOT/build}
SHARED=${LLMC_SHARED_DIR:-$ROOT/../shared}
CKPTS=${LLMC_GPU_CKPTS:-/tmp/llmc-gpu-ckpts}
LLMC=$BUILD/bin/llmc
[ -x "$BUILD/bin/cuda-tests" ] || {
  echo "prepare.sh: $BUILD/bin/cuda-tests is missing: build with nvcc present" >&2
  exit 1
}
mkdir -p "$DIR" "$CKPTS"
step() { echo "prepare.sh: $*" >&2; }

step "stories260K (f32, and q8 g32) for --target cuda"
"$LLMC" compile "$SHARED/models/stories260K" --target cuda -o "$DIR/story" --quiet
"$LLMC" compile "$SHARED/models/stories260K" --target cuda --q8 -o "$DIR/story-q8" --quiet
cp "$SHARED/models/stories260K/golden.json" "$ROOT/test/e2e/golden.py" "$DIR/"
cp "$BUILD/bin/cuda-tests" "$ROOT/bench/gpu/reference_bench.cu" "$ROOT/bench/gpu/gemv_micro.cu" "$DIR/"

for preset in ${LLMC_GPU_PRESETS:-tinyllama-1.1b llama2-7b}; do
  ck="$CKPTS/$preset"
  if [ ! -f "$ck/config.json" ]; then
    step "making the random $preset checkpoint in $ck"
    "$BUILD/bin/llmc-make-model" --preset "$preset" -o "$ck" >&2
  fi
  for fmt in ${LLMC_GPU_FORMATS:-f16 q8 q4}; do
    case $fmt in
      f16) flags=() ;;
      q8) flags=(--q8) ;;
      q4) flags=(--q4 --group-size 128) ;;
    esac
    step "$preset $fmt (--random-weights)"
    "$LLMC" compile "$ck" --target cuda --random-weights --max-tokens 512 \
      "${flags[@]}" -o "$DIR/$preset-$fmt" --quiet
  done
done
# The archive is what travels (executables compress about 3x).
tar -C "$DIR" -czf "$DIR.tar.gz" .
du -sh "$DIR" "$DIR.tar.gz" >&2
