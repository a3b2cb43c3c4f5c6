#!/usr/bin/env bash
# Sets up, builds and runs every test (lit + GoogleTest) through ctest, then
# again under ASan + UBSan (scripts/sanitize.sh; LLMC_SANITIZE_TESTS=0 skips),
# then a short fuzz run of every parser (scripts/fuzz.sh; LLMC_FUZZ_TESTS=0 skips).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LLMC_BUILD_DIR:-$root/build}"

"$root/scripts/build.sh"
# Optional: the SmolLM2 GGUF and the Python reference tools (tests that need
# them are skipped without them).
"$root/scripts/fetch_models.sh"
(cd "$build" && ctest --output-on-failure -j "${LLMC_JOBS:-$(nproc)}" "$@")
# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
if [ "${LLMC_SANITIZE_TESTS:-1}" != 0 ]; then
  "$root/scripts/sanitize.sh" "$@"
fi
# A short run of every fuzz target (the regression inputs replayed, then
# LLMC_FUZZ_SECONDS each, 10 by default here; scripts/fuzz.sh alone: 60).
if [ "${LLMC_FUZZ_TESTS:-1}" != 0 ]; then
  LLMC_FUZZ_SECONDS="${LLMC_FUZZ_SECONDS:-10}" "$root/scripts/fuzz.sh"
fi
