// Where the bytes of rewritten weights live during a compile.
//
// Every pass that replaces a weight (quantization, format conversion, fusion,
// interleaving) allocates its bytes here. Small blobs are heap memory. A blob
// of at least weightSpillThreshold() bytes is a shared mapping of a range of
// one unlinked temporary file (in TMPDIR), so a 7B model's gigabytes of
// quantized weights are file pages the kernel can write back and drop, not
// anonymous memory: the compile's anonymous footprint stays near one matrix
// in flight. Freeing such a blob unmaps it and punches the range out of the
// file. Where the file cannot be created or its blocks cannot be reserved
// (a full disk), the blob is heap memory instead: never a SIGBUS later.
#ifndef LLMC_PASSES_WEIGHTSTORE_H
#define LLMC_PASSES_WEIGHTSTORE_H

#include "mlir/IR/AsmState.h"

#include <cstddef>
#include <cstdint>

namespace llmc {

/// A mutable, 64-byte aligned blob of `bytes` bytes (contents unspecified).
mlir::AsmResourceBlob allocateWeightBlob(size_t bytes);

/// Blobs of this many bytes or more go to the spill file: 1 MiB, or the
/// environment's LLMC_SPILL_MIN_BYTES (0 spills every blob, "off" none).
uint64_t weightSpillThreshold();

/// The bytes of live blobs the spill file holds, how many blobs it has
/// taken, and how many fell back to the heap because it could not take them.
struct WeightSpillStats {
  uint64_t liveBytes = 0;
  uint64_t blobs = 0;
  uint64_t heapFallbacks = 0;
};
WeightSpillStats weightSpillStats();

} // namespace llmc

#endif // LLMC_PASSES_WEIGHTSTORE_H
