#!/usr/bin/env bash
# Builds everything with AddressSanitizer and UndefinedBehaviorSanitizer in
# build-asan/ (CMake option LLMC_SANITIZE; the CUDA backend is left out) and
# runs the whole test suite under them: the unit tests, and the lit tests,
# whose compiled executables are instrumented too. Any report fails the run.
#
#   scripts/sanitize.sh [ctest arguments]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LLMC_ASAN_BUILD_DIR:-$root/build-asan}"
"$root/scripts/setup.sh"
if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLLMC_SANITIZE=ON
fi
ninja -C "$build" -j "${LLMC_JOBS:-$(nproc)}"
# The SmolLM2 GGUF is shared with the main build tree; the reference tools'
# virtual environment is made in this one.
export LLMC_MODEL_CACHE="${LLMC_MODEL_CACHE:-$root/build/models}"
LLMC_BUILD_DIR="$build" "$root/scripts/fetch_models.sh"
# allow_user_poisoning=0: LLVM's BumpPtrAllocator poisons the slabs it starts
# when its inline code is compiled with ASan (our sources), and unpoisons
# each allocation; libMLIR's own copy of that code is not instrumented, so
# when it allocates from a slab our code started (MLIR's type uniquer is
# shared), the bytes stay poisoned and ASan reports its writes there as
# use-after-poison. Ignoring manual poisoning keeps every real check.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allow_user_poisoning=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build"
ctest --output-on-failure -j "${LLMC_JOBS:-$(nproc)}" "$@"
