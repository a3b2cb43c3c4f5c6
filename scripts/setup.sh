#!/usr/bin/env bash
# Installs every Debian package llmc needs to build and test; safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache git pkg-config
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  flatbuffers-compiler libflatbuffers-dev
  nlohmann-json3-dev libsentencepiece-dev libeigen3-dev libssl-dev
  libgtest-dev libgmock-dev
  clang libclang-rt-14-dev
  python3 python3-numpy python3-sentencepiece
  zlib1g-dev libzstd-dev libedit-dev libxml2-dev libcurl4-openssl-dev libffi-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
