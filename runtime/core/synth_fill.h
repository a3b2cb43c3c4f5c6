// Filling a --random-weights tensor on the host, in the artifact's layout.
#ifndef LLMC_RUNTIME_CORE_SYNTH_FILL_H
#define LLMC_RUNTIME_CORE_SYNTH_FILL_H

#include <cstdint>
#include <vector>

namespace llmc::synth {

/// Writes tensor `index` (its storage format, group, zero point and shape)
/// into `dst` as the artifact would hold it, from synth.h's recipe.
void fillTensor(uint64_t index, int32_t format, int32_t group, bool asym,
                const std::vector<int64_t> &shape, uint8_t *dst);

} // namespace llmc::synth

#endif // LLMC_RUNTIME_CORE_SYNTH_FILL_H
