#!/usr/bin/env bash
# Builds the libFuzzer targets (test/fuzz) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer in build-fuzz/, replays the kept regression
# inputs (test/fuzz/regressions/TARGET/), then fuzzes each target for
# LLMC_FUZZ_SECONDS (default 60) from seeds made in the build tree. Fails on
# any crash, leak, sanitizer report or timeout; the input that did it is
# left in build-fuzz/findings/TARGET/ (add it to the regressions once fixed).
#   scripts/fuzz.sh [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${LLMC_FUZZ_BUILD_DIR:-$root/build-fuzz}"
main="${LLMC_BUILD_DIR:-$root/build}"
shared="$root/../shared"
seconds="${LLMC_FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_gguf fuzz_safetensors fuzz_config
  fuzz_tokenizer_files fuzz_artifact fuzz_tokenizer)

command -v clang++ >/dev/null || { echo "fuzz: needs clang++ (apt-get install clang)" >&2; exit 1; }
if [ ! -f "$out/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -G Ninja -S "$root" -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLLMC_BUILD_COMPILER=OFF -DLLMC_BUILD_TESTS=OFF -DLLMC_FUZZ=ON >/dev/null
fi
ninja -C "$out" -j "${LLMC_JOBS:-$(nproc)}" "${targets[@]}"

# The targets write each input to a file (test/fuzz/FuzzInput.h): keep those
# in the build tree, not in /tmp.
export TMPDIR="$out/tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"

# Seeds: real files from ../shared and, when the main build exists, a tiny
# model as GGUF (F32 SentencePiece, Q8_0 byte-level BPE) and as an artifact.
seeds="$out/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"/{fuzz_gguf,fuzz_safetensors,fuzz_config,fuzz_tokenizer_files,fuzz_artifact,fuzz_tokenizer}
printf 'Once upon a time, 123 caf\xc3\xa9 \xf0\x9f\x98\x80\n\tx  y\r\n' > "$seeds/fuzz_tokenizer/text"
cp "$root/test/lit/e2e/Inputs/tokenizer_edge_cases.txt" "$seeds/fuzz_tokenizer/"
echo '{"model_type":"llama","hidden_size":64,"intermediate_size":172,"num_hidden_layers":5,"num_attention_heads":8,"vocab_size":512}' \
  > "$seeds/fuzz_config/min.json"
if [ -d "$shared/models/stories260K" ]; then
  m="$shared/models/stories260K"
  cp "$m/config.json" "$seeds/fuzz_config/"
  cp "$m/model.safetensors" "$seeds/fuzz_safetensors/"
  { printf '\0'; cat "$m/tokenizer.model"; } > "$seeds/fuzz_tokenizer_files/sp"
  { printf '\1'; cat "$m/tokenizer.json"; } > "$seeds/fuzz_tokenizer_files/json-sp"
  head -c 4000 "$shared/data/text/calib_mixed.txt" > "$seeds/fuzz_tokenizer/calib"
fi
if [ -x "$main/bin/llmc" ] && [ -x "$main/bin/llmc-make-model" ]; then
  t="$out/seed-models" && rm -rf "$t" && mkdir -p "$t"
  "$main/bin/llmc-make-model" --preset tiny --dtype f32 -o "$t/sp" >/dev/null
  "$main/bin/llmc-make-model" --preset tiny --dtype f32 --tokenizer builtin-bpe -o "$t/bpe" >/dev/null
  "$main/bin/llmc" export "$t/sp" -o "$seeds/fuzz_gguf/sp.gguf"
  "$main/bin/llmc" export "$t/bpe" -o "$seeds/fuzz_gguf/bpe-q8.gguf" --type q8_0
  "$main/bin/llmc" compile "$t/sp" --q4 -o "$t/exe" --weights "$seeds/fuzz_artifact/tiny.llmc" --quiet
  { printf '\1'; cat "$t/bpe/tokenizer.json"; } > "$seeds/fuzz_tokenizer_files/json-bpe"
fi

status=0
for target in "${targets[@]}"; do
  reg="$root/test/fuzz/regressions/$target"
  if [ -d "$reg" ]; then
    echo "fuzz: $target: replaying $(ls "$reg" | wc -l) regression inputs"
    "$out/bin/$target" "$reg"/* >/dev/null 2>"$out/$target.regressions.log" ||
      { echo "fuzz: $target: a regression input fails (see $out/$target.regressions.log)" >&2; status=1; }
  fi
  corpus="$out/corpus/$target" findings="$out/findings/$target"
  mkdir -p "$corpus" "$findings"
  echo "fuzz: $target: ${seconds}s"
  if ! "$out/bin/$target" "$corpus" "$seeds/$target" -max_total_time="$seconds" \
       -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$findings/" \
       >"$out/$target.log" 2>&1; then
    echo "fuzz: $target: FAILED (log $out/$target.log, inputs in $findings)" >&2
    status=1
  else
    echo "fuzz: $target: $(grep -E '^Done' "$out/$target.log" | tail -1)"
  fi
done
exit $status
