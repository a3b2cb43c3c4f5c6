// Deterministic random weights for artifacts compiled with --random-weights.
//
// Such an artifact carries the tensor table but no bytes; wherever the model
// runs (CPU or GPU), the runtime fills each tensor from this one recipe, so
// both devices see the same values and the executable stays small (the GPU
// benchmark carries 7B-shaped executables of a few hundred kilobytes).
// Every value is a function of (tensor key, row, element), the key being the
// tensor's index mixed with the seed of --random-weights=SEED (tensorKey):
//   - float formats: rank 2: uniform in [-1, 1) / sqrt(columns); rank 1 (norm
//     weights, biases): 1 + 0.1 * uniform;
//   - q8: codes uniform in [-127, 127], scale 1 / (73 * sqrt(columns));
//   - q4: nibbles uniform in [0, 15], scale 1 / (4.6 * sqrt(columns)), and
//     for asymmetric groups the minimum -8 * scale;
// so every weight has a standard deviation near 1 / sqrt(columns) and the
// activations stay in range through any number of layers.
#ifndef LLMC_RUNTIME_CORE_SYNTH_H
#define LLMC_RUNTIME_CORE_SYNTH_H

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define LLMC_HD __host__ __device__ inline
#else
#define LLMC_HD inline
#endif

namespace llmc::synth {

/// The `tensor` coordinate of tensor `index` under `seed` (seed 0: the index
/// itself, so artifacts from before seeds keep their values). Seeds are 32
/// bits (llmc compile refuses larger ones), indices below 2^32.
LLMC_HD uint64_t tensorKey(uint64_t index, uint64_t seed) {
  return index + (seed << 32);
}

/// A 64-bit mix (splitmix64's finalizer) of the three coordinates.
LLMC_HD uint64_t hash(uint64_t tensor, uint64_t row, uint64_t col) {
  uint64_t z = tensor * 0x9E3779B97F4A7C15ull ^ (row + 0x632BE59BD9B4E019ull) *
                                                   0xBF58476D1CE4E5B9ull ^
               (col + 1) * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Uniform in [-1, 1).
LLMC_HD float uniform(uint64_t tensor, uint64_t row, uint64_t col) {
  return static_cast<float>(hash(tensor, row, col) >> 40) *
             (2.0f / 16777216.0f) -
         1.0f;
}

/// Element (row, col) of a float tensor of `rank` with `cols` columns.
LLMC_HD float floatValue(uint64_t tensor, int rank, int64_t cols, int64_t row,
                         int64_t col) {
  float u = uniform(tensor, static_cast<uint64_t>(row), static_cast<uint64_t>(col));
  return rank == 1 ? 1.0f + 0.1f * u : u / sqrtf(static_cast<float>(cols));
}

/// The code of element `col` of `row` in a block format: q8 in [-127, 127],
/// q4 in [0, 15]. Padding past the row's end is the code of zero.
LLMC_HD int quantCode(uint64_t tensor, bool q8, bool asym, int64_t cols,
                      int64_t row, int64_t col) {
  if (col >= cols) {
    return q8 || asym ? 0 : 8;
  }
  uint64_t h = hash(tensor, static_cast<uint64_t>(row), static_cast<uint64_t>(col));
  return q8 ? static_cast<int>(h % 255) - 127 : static_cast<int>(h & 15);
}

/// A group's scale (as a float; stored rounded to f16).
LLMC_HD float quantScale(bool q8, int64_t cols) {
  return 1.0f / ((q8 ? 73.0f : 4.6f) * sqrtf(static_cast<float>(cols)));
}

} // namespace llmc::synth

#undef LLMC_HD

#endif // LLMC_RUNTIME_CORE_SYNTH_H
