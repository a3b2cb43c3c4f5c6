// Internal CPU kernels: the portable versions, the per-ISA variants and their dispatch table.
#ifndef LLMC_RUNTIME_KERNELS_KERNELS_H
#define LLMC_RUNTIME_KERNELS_KERNELS_H

#include "runtime/kernels/quant.h"

#include <cstddef>
#include <cstdint>

namespace llmc::kernels {

/// Inner loops that have SIMD variants. Every function pointer of a variant
/// table computes what the generic one does (up to float reassociation).
struct KernelTable {
  const char *name;
  /// out[t] = sum_k w[k] * x[t * ldx + k] for t < m (m <= 4): one weight row
  /// against up to four activation rows, so the row is read once.
  void (*dotF32)(const float *w, const float *x, int64_t ldx, int m,
                 int64_t k, float *out);
  void (*dotF16)(const uint16_t *w, const float *x, int64_t ldx, int m,
                 int64_t k, float *out);
  void (*dotBF16)(const uint16_t *w, const float *x, int64_t ldx, int m,
                  int64_t k, float *out);
  /// y[i] += a * x[i]
  void (*axpy)(float a, const float *x, float *y, int64_t k);
  /// sum of x[i] * y[i]
  float (*dot)(const float *x, const float *y, int64_t k);
  /// out[t] = one quantized weight row (blocks of `group`) against
  /// activation row t, held as `nb` ActBlocks at a + t * nb, for t < m.
  void (*dotQ8)(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                int64_t group, float *out);
  void (*dotQ4)(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                int64_t group, float *out);
  void (*dotQ4Asym)(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                    int64_t group, float *out);
};

const KernelTable &genericKernels();
/// nullptr when the CPU lacks AVX2, FMA or F16C (or the build has no AVX2).
const KernelTable *avx2Kernels();
/// The best table for this CPU, chosen once; LLMC_KERNELS=generic forces the
/// portable one.
const KernelTable &bestKernels();

/// IEEE half <-> float; float -> half and -> bfloat16 round to nearest even.
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
uint16_t floatToBF16(float f);
inline float bf16ToFloat(uint16_t h) {
  uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &x, 4);
  return f;
}

/// Converts `n` stored elements of `format` (f32/f16/bf16) to f32.
void toFloat(const void *src, int32_t format, int64_t n, float *dst);

} // namespace llmc::kernels

#endif // LLMC_RUNTIME_KERNELS_KERNELS_H
