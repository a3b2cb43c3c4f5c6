// Fuzz targets' shared helper: the parsers under test read files, so each
// input is written to a per-process temporary file first.
#ifndef LLMC_TEST_FUZZ_FUZZINPUT_H
#define LLMC_TEST_FUZZ_FUZZINPUT_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace llmc::fuzz {

/// Writes `data` to a temporary file named with `suffix` and returns its
/// path (the same path for every input of this process).
inline std::string writeInput(const uint8_t *data, size_t size,
                              const char *suffix) {
  static const std::string dir = [] {
    const char *t = std::getenv("TMPDIR");
    return std::string(t && *t ? t : "/tmp");
  }();
  std::string path = dir + "/llmc-fuzz-" + std::to_string(::getpid()) + suffix;
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::abort();
  }
  if (size && std::fwrite(data, 1, size, f) != size) {
    std::abort();
  }
  std::fclose(f);
  return path;
}

} // namespace llmc::fuzz

#endif // LLMC_TEST_FUZZ_FUZZINPUT_H
