#!/usr/bin/env bash
# Fusion alone: the default (fused) build of each config against a --no-fuse
# build of the same checkpoint, interleaved in one run (two rounds, the two
# builds alternating), as docs/PERFORMANCE.md reports it.
#
#   bench/ab_fusion.sh DIR     DIR: a bench/run.py --out folder (its
#                              checkpoint and default builds are reused)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:?usage: bench/ab_fusion.sh DIR (a bench/run.py --out folder)}"
llmc="$root/build/bin/llmc"
ckpt="$dir/tinyllama-1.1b"
declare -A flags=([q4g32]="--q4 --group-size 32" [q8]="--q8")
for cfg in q4g32 q8; do
  [ -x "$dir/tinyllama-1.1b-$cfg" ] || { echo "no $dir/tinyllama-1.1b-$cfg: run bench/run.py --out $dir first" >&2; exit 1; }
  # shellcheck disable=SC2086
  "$llmc" compile "$ckpt" -o "$dir/nofuse-$cfg" --max-seq 512 --quiet ${flags[$cfg]} --no-fuse
done
for round in 1 2; do
  for cfg in q4g32 q8; do
    for t in 1 2; do
      for exe in "tinyllama-1.1b-$cfg" "nofuse-$cfg"; do
        r=$("$dir/$exe" --bench --threads "$t" --bench-prefill 128 --bench-decode 64 --bench-reps 5 --json 2>/dev/null)
        echo "$round $cfg t$t $exe $r"
      done
    done
  done
done
