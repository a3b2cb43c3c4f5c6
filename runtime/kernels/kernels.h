// Internal CPU kernels: the portable versions, the per-ISA variants and their dispatch table.
#ifndef LLMC_RUNTIME_KERNELS_KERNELS_H
#define LLMC_RUNTIME_KERNELS_KERNELS_H

#include "runtime/kernels/quant.h"

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace llmc::kernels {

/// The most activation rows one dotQ8X8 / dotQ4X8 call takes.
constexpr int kX8Tokens = 8;

/// The most weight streams one *Streams call reads side by side.
constexpr int kMaxStreams = 8;

/// Calls f(std::integral_constant<int, S>{}) with S = s for 1 <= s <
/// kMaxStreams, else with kMaxStreams: the SIMD *Streams kernels are
/// templates on their stream count, so each stream's accumulators stay in
/// registers.
template <class F> void withStreamCount(int s, F &&f) {
  switch (s) {
  case 1: return f(std::integral_constant<int, 1>{});
  case 2: return f(std::integral_constant<int, 2>{});
  case 3: return f(std::integral_constant<int, 3>{});
  case 4: return f(std::integral_constant<int, 4>{});
  case 5: return f(std::integral_constant<int, 5>{});
  case 6: return f(std::integral_constant<int, 6>{});
  case 7: return f(std::integral_constant<int, 7>{});
  default: return f(std::integral_constant<int, kMaxStreams>{});
  }
}

/// Runs m tokens as tiles of Tile and a smaller last one: f(std::
/// integral_constant<int, M>{}, t) for the tile of M <= Tile tokens from
/// token t. The SIMD f16x16 kernels are templates on M, so a tile's
/// accumulators stay in registers; only M <= Tile are instantiated.
template <int M, class F> void callTokenTile(int n, int t, F &f) {
  if constexpr (M > 1) {
    if (n < M) {
      return callTokenTile<M - 1>(n, t, f);
    }
  }
  f(std::integral_constant<int, M>{}, t);
}
template <int Tile, class F> void forTokenTiles(int m, F &&f) {
  for (int t = 0; t < m; t += Tile) {
    callTokenTile<Tile>(m - t < Tile ? m - t : Tile, t, f);
  }
}

/// Inner loops that have SIMD variants. Every function pointer of a variant
/// table computes what the generic one does (up to float reassociation).
struct KernelTable {
  const char *name;
  /// out[i * 4 + t] = sum_c w[i * ldw + c] * x[t * ldx + c] for i < r
  /// (r <= 2) and t < m (m <= 4): a tile of up to two weight rows against up
  /// to four activation rows, so each row is read once for the whole tile.
  void (*dotF32)(const float *w, int64_t ldw, int r, const float *x,
                 int64_t ldx, int m, int64_t k, float *out);
  void (*dotF16)(const uint16_t *w, int64_t ldw, int r, const float *x,
                 int64_t ldx, int m, int64_t k, float *out);
  void (*dotBF16)(const uint16_t *w, int64_t ldw, int r, const float *x,
                  int64_t ldx, int m, int64_t k, float *out);
  /// y[i] += a * x[i]
  void (*axpy)(float a, const float *x, float *y, int64_t k);
  /// sum of x[i] * y[i]
  float (*dot)(const float *x, const float *y, int64_t k);
  /// out[i * 4 + t] = quantized weight row i (blocks of `group`, rows
  /// `ldw` bytes apart) against activation row t, held as `nb` ActBlocks at
  /// a + t * nb, for i < r (r <= 2) and t < m (m <= 4).
  void (*dotQ8)(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                int64_t nb, int m, int64_t group, float *out);
  void (*dotQ4)(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                int64_t nb, int m, int64_t group, float *out);
  void (*dotQ4Asym)(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
                    int64_t nb, int m, int64_t group, float *out);
  /// y[i] += a * x[i] with x in f16 (the f16 KV cache's values)
  void (*axpyF16)(float a, const uint16_t *x, float *y, int64_t k);
  /// As dotF32, for 2:4 sparse rows of `format` (s24, s24q8, s24q4; rows
  /// `ldw` bytes apart) of `k` columns.
  void (*dotSparse)(const uint8_t *w, size_t ldw, int32_t format, int r,
                    const float *x, int64_t ldx, int m, int64_t k, float *out);
  /// q8x8 / q4x8: the interleaved group of 8 weight rows at `w` against
  /// activation rows t < m (m <= kX8Tokens) held as in dotQ8:
  /// out[i * kX8Tokens + t] for i < 8 (out holds 64 floats). One call
  /// covers a whole block of tokens, so a SIMD kernel loads and unpacks each
  /// piece of the weights once for all of them (the AVX2 one: once for each
  /// 4).
  void (*dotQ8X8)(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                  int64_t group, float *out);
  void (*dotQ4X8)(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
                  int64_t group, float *out);
  /// f16x16: the group of 16 rows at `w` (`k` columns, column by column)
  /// against activation rows t < m (any m >= 1, `ldx` floats apart):
  /// out[t * 16 + i] for i < 16 (out holds 16 * m floats). Prefill passes a
  /// whole token block, so a SIMD kernel picks its own token tile (AVX2:
  /// 6, AVX-512: 8) and converts each column once a tile.
  void (*dotF16X16)(const uint16_t *w, int64_t k, const float *x, int64_t ldx,
                    int m, float *out);
  /// Decode (one activation row): the s groups at w[0..s) (s <=
  /// kMaxStreams, each an interleaved group as dotQ8X8 / dotQ4X8 /
  /// dotF16X16 take it) against the same row, out[g * 8 + i] (x8) or
  /// out[g * 16 + i] (f16x16). The caller passes groups far apart in
  /// memory: the kernel reads them side by side, so the hardware prefetcher
  /// follows s streams at once instead of one.
  void (*dotQ8X8Streams)(const uint8_t *const *w, int s, const ActBlock *a,
                         int64_t nb, int64_t group, float *out);
  void (*dotQ4X8Streams)(const uint8_t *const *w, int s, const ActBlock *a,
                         int64_t nb, int64_t group, float *out);
  void (*dotF16X16Streams)(const uint16_t *const *w, int s, int64_t k,
                           const float *x, float *out);
};

const KernelTable &genericKernels();
/// The portable 2:4 kernel (the SIMD ones finish a row's partial last block
/// with it).
void dotSparseGeneric(const uint8_t *w, size_t ldw, int32_t format, int r,
                      const float *x, int64_t ldx, int m, int64_t k,
                      float *out);
/// nullptr when the CPU lacks AVX2, FMA or F16C (or the build has no AVX2).
const KernelTable *avx2Kernels();
/// nullptr when the CPU lacks AVX-512 F/BW/VL with VNNI (or FMA, F16C).
const KernelTable *avx512Kernels();
/// The best table for this CPU, chosen once (AVX-512, then AVX2, then the
/// portable one); LLMC_KERNELS=generic|avx2|avx512 asks for one (a table
/// the CPU cannot run falls back to the next).
const KernelTable &bestKernels();

/// F16C (CPUID leaf 1, ECX bit 29), read directly: not every compiler's
/// __builtin_cpu_supports knows the feature (clang 14 does not).
inline bool cpuHasF16C() {
  unsigned eax, ebx, ecx, edx;
  __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  return (ecx >> 29) & 1;
}

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
