#!/usr/bin/env bash
# Sets up, builds, compiles the default model (or the checkpoint given as $1) and runs it on a prompt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LLMC_BUILD_DIR:-$root/build}"

ckpt="${1:-$root/../shared/models/stories260K}"
prompt="${2:-Once upon a time}"
if [ ! -f "$ckpt/config.json" ] && [ ! -f "$ckpt" ]; then
  echo "run.sh: no checkpoint at $ckpt" >&2
  echo "  usage: scripts/run.sh [CHECKPOINT_DIR [PROMPT]]" >&2
  echo "  The default model is stories260K (karpathy/tinyllamas on Hugging Face," >&2
  echo "  stories260K/), converted to the Hugging Face layout: config.json," >&2
  echo "  model.safetensors and tokenizer.model in one folder." >&2
  exit 1
fi

"$root/scripts/build.sh"
out="$build/run"
mkdir -p "$out"
exe="$out/$(basename "$ckpt")"
"$build/bin/llmc" compile "$ckpt" -o "$exe"
echo "== $exe -p \"$prompt\" -n 200"
"$exe" -p "$prompt" -n 200
