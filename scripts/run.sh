#!/usr/bin/env bash
# Sets up, builds, and runs llmc on the default model (or the checkpoint given as $1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LLMC_BUILD_DIR:-$root/build}"

ckpt="${1:-$root/../shared/models/stories260K}"
if [ ! -f "$ckpt/config.json" ] && [ ! -f "$ckpt" ]; then
  echo "run.sh: no checkpoint at $ckpt" >&2
  echo "  pass a Hugging Face LLaMA checkpoint directory: scripts/run.sh path/to/ckpt" >&2
  echo "  (stories260K: https://huggingface.co/karpathy/tinyllamas, converted to HF layout)" >&2
  exit 1
fi

"$root/scripts/build.sh"
out="$build/run"
mkdir -p "$out"
"$build/bin/llmc" compile "$ckpt" --emit=mlir -o "$out/model.mlir"
echo "== $ckpt imported into the llm dialect: $out/model.mlir"
echo "   globals (weights): $(grep -c '^  llm.global' "$out/model.mlir")"
echo "   decoder layers:    $(grep -c 'llm.attention' "$out/model.mlir")"
echo "   ops by kind:"
grep -oE '= llm\.[a-z_]+' "$out/model.mlir" | sort | uniq -c | sort -rn | sed 's/= //; s/^/     /'
