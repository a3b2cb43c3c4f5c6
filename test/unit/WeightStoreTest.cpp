// The compile's weight store: large blobs are mappings of an unlinked spill
// file (not anonymous memory), released when the blob dies; small ones heap.
#include "passes/WeightStore.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

using namespace llmc;

namespace {

/// The /proc/self/maps line of the mapping that holds `p`, or "".
std::string mappingOf(const void *p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream in(line);
    in >> std::hex >> lo >> dash >> hi;
    if (addr >= lo && addr < hi) {
      return line;
    }
  }
  return "";
}

} // namespace

TEST(WeightStore, LargeBlobsAreAnUnlinkedFileAndGoBackWhenFreed) {
  if (weightSpillThreshold() > (size_t{3} << 20)) {
    GTEST_SKIP() << "LLMC_SPILL_MIN_BYTES turns the spill file off here";
  }
  const WeightSpillStats before = weightSpillStats();
  const size_t n = (size_t{3} << 20) + 123;
  {
    std::optional<mlir::AsmResourceBlob> blob = allocateWeightBlob(n);
    ASSERT_EQ(blob->getData().size(), n);
    char *data = blob->getMutableData().data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 64, 0u);
    for (size_t i = 0; i < n; ++i) {
      data[i] = static_cast<char>(i * 31);
    }
    for (size_t i = 0; i < n; i += 4093) {
      ASSERT_EQ(blob->getData()[i], static_cast<char>(i * 31));
    }
    const WeightSpillStats during = weightSpillStats();
    if (during.heapFallbacks > before.heapFallbacks) {
      GTEST_SKIP() << "the temporary folder cannot hold a spill file here";
    }
    EXPECT_EQ(during.blobs, before.blobs + 1);
    EXPECT_GE(during.liveBytes, before.liveBytes + n);
    std::string map = mappingOf(data);
    EXPECT_NE(map.find("llmc-weights-"), std::string::npos) << map;
    EXPECT_NE(map.find("(deleted)"), std::string::npos) << map;
    blob.reset();
    EXPECT_EQ(weightSpillStats().liveBytes, before.liveBytes);
    EXPECT_EQ(mappingOf(data), "");
  }
  // A small blob is heap memory: no file mapping behind it.
  mlir::AsmResourceBlob small = allocateWeightBlob(1000);
  EXPECT_EQ(small.getData().size(), 1000u);
  EXPECT_EQ(mappingOf(small.getData().data()).find("llmc-weights-"),
            std::string::npos);
  EXPECT_EQ(weightSpillStats().blobs, before.blobs + 1);
}
