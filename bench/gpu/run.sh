#!/usr/bin/env bash
# The GPU check, part 2 (on the machine with the GPU): unpacks what
# bench/gpu/prepare.sh made and runs bench/gpu/run.py over it.
#
#   bench/gpu/run.sh DIR|ARCHIVE.tar.gz [--quick] [--eager-profile] [--micro]
set -euo pipefail
src=${1:?usage: bench/gpu/run.sh DIR|ARCHIVE.tar.gz [--quick] [--eager-profile] [--micro]}
shift
if [[ $src == *.tar.gz ]]; then
  rm -rf /tmp/llmc-gpu && mkdir -p /tmp/llmc-gpu
  tar -C /tmp/llmc-gpu -xzf "$src"
  src=/tmp/llmc-gpu
fi
exec python3 "$(dirname "$0")/run.py" "$src" "$@"
