// The int8 register tiles shared by the AVX2 and AVX-512 kernel files. Each file includes this
// header with its own ISA flags and supplies `Dot`, the 32-element integer dot of one sub-block:
// everything here has internal linkage, so each file's copy keeps its own instructions (an AVX2
// machine never runs code compiled for AVX-512).
#ifndef LLMC_RUNTIME_KERNELS_QUANT_TILES_H
#define LLMC_RUNTIME_KERNELS_QUANT_TILES_H

#include "runtime/kernels/kernels.h"

#include <cstring>
#include <immintrin.h>

namespace llmc::kernels {
namespace {

/// The 16 int8 codes of a quantized 2:4 block (s24q8: as stored; s24q4:
/// the nibbles unpacked in value order, minus 8) and the block's scale.
template <int32_t Format> inline __m128i sparseCodes(const uint8_t *blk) {
  if constexpr (Format == LLMC_FORMAT_S24Q8) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i *>(blk + 2));
  } else {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(blk + 2));
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm_sub_epi8(_mm_unpacklo_epi8(_mm_and_si128(b, m),
                                          _mm_and_si128(_mm_srli_epi16(b, 4), m)),
                        _mm_set1_epi8(8));
  }
}
inline float sparseScale(const uint8_t *blk) {
  uint16_t dh;
  std::memcpy(&dh, blk, 2);
  return _cvtsh_ss(dh);
}

/// The partial last block of a 2:4 row (none when k is a multiple of 32),
/// in portable code: tail[t] for t < m.
inline void sparseTail(const uint8_t *row, int32_t format, const float *x,
                       int64_t ldx, int m, int64_t k, float *tail) {
  const int64_t full = k / kS24Columns;
  for (int t = 0; t < 8; ++t) {
    tail[t] = 0.0f;
  }
  if (full * kS24Columns < k) {
    dotSparseGeneric(row + full * sparseBlockBytes(format), 0, format, 1,
                     x + full * kS24Columns, ldx, m, k - full * kS24Columns,
                     tail);
  }
}

/// Runs Kernel<F>::run for the 2:4 format F named at run time.
template <template <int32_t> class Kernel>
inline void dispatchSparse(const uint8_t *w, size_t ldw, int32_t format, int r,
                           const float *x, int64_t ldx, int m, int64_t k,
                           float *out) {
  switch (format) {
  case LLMC_FORMAT_S24Q8:
    return Kernel<LLMC_FORMAT_S24Q8>::run(w, ldw, r, x, ldx, m, k, out);
  case LLMC_FORMAT_S24Q4:
    return Kernel<LLMC_FORMAT_S24Q4>::run(w, ldw, r, x, ldx, m, k, out);
  default:
    return Kernel<LLMC_FORMAT_S24>::run(w, ldw, r, x, ldx, m, k, out);
  }
}

inline float hsum256(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

/// An R x M tile of q8 weight rows against int8 activation rows: every
/// 32-element weight sub-block is loaded once per tile and every activation
/// block once per tile. `Dot::sum(u, s)` gives the eight int32 sums of four
/// products of unsigned u and signed s bytes; |w| is the unsigned side and
/// x carries w's sign.
template <class Dot, int R, int M>
void dotQ8Tile(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
               int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t blockBytes = 2 + static_cast<size_t>(group);
  __m256 acc[R][M];
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      acc[i][t] = _mm256_setzero_ps();
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i aw[R], wq[R];
    float d[R];
    for (int i = 0; i < R; ++i) {
      const uint8_t *blk = w + i * ldw + (b / sub) * blockBytes;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      d[i] = _cvtsh_ss(dh);
      wq[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(
          blk + 2 + (b % sub) * kQuantSubBlock));
      aw[i] = _mm256_sign_epi8(wq[i], wq[i]);
    }
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.q));
      for (int i = 0; i < R; ++i) {
        __m256i s = Dot::sum(aw[i], _mm256_sign_epi8(xq, wq[i]));
        acc[i][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[i] * x.d),
                                    _mm256_cvtepi32_ps(s), acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = hsum256(acc[i][t]);
    }
  }
}

/// q4 rows: the unpacked nibbles (0..15) are the unsigned side; the -8 (or
/// the zero point) is applied once per block through x's sum.
template <class Dot, bool Asym, int R, int M>
void dotQ4Tile(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
               int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t head = Asym ? 4 : 2;
  const size_t blockBytes = head + static_cast<size_t>(group) / 2;
  const __m128i low = _mm_set1_epi8(0x0F);
  __m256 acc[R][M];
  float offset[R][M];
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      acc[i][t] = _mm256_setzero_ps();
      offset[i][t] = 0.0f;
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i nib[R];
    float d[R], mn[R];
    for (int i = 0; i < R; ++i) {
      const uint8_t *blk = w + i * ldw + (b / sub) * blockBytes;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      d[i] = _cvtsh_ss(dh);
      mn[i] = 0.0f;
      if (Asym) {
        uint16_t mh;
        std::memcpy(&mh, blk + 2, 2);
        mn[i] = _cvtsh_ss(mh);
      }
      __m128i raw = _mm_loadu_si128(
          reinterpret_cast<const __m128i *>(blk + head + (b % sub) * 16));
      nib[i] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), low),
                                _mm_and_si128(raw, low));
    }
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x.q));
      for (int i = 0; i < R; ++i) {
        acc[i][t] = _mm256_fmadd_ps(_mm256_set1_ps(d[i] * x.d),
                                    _mm256_cvtepi32_ps(Dot::sum(nib[i], xq)),
                                    acc[i][t]);
        offset[i][t] += Asym ? mn[i] * x.sum : -8.0f * d[i] * x.sum;
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = hsum256(acc[i][t]) + offset[i][t];
    }
  }
}

/// 8 activation bytes in every 64-bit lane.
inline __m256i broadcast8x4(const int8_t *x) {
  int64_t v;
  std::memcpy(&v, x, 8);
  return _mm256_set1_epi64x(v);
}

/// How far ahead of its loads the AVX2 interleaved kernel prefetches
/// (bytes): the matrix is one stream, and the hardware prefetcher stops at
/// page edges.
constexpr size_t kX8PrefetchAhead = 8192;

/// q4x8's sub-block at q (two 64-byte pieces, each 4 rows' codes per
/// 256-bit half) unpacked into nib[4h..4h+3] for piece h: rows 0-3 low
/// nibbles, rows 4-7 low, rows 0-3 high, rows 4-7 high.
inline void unpackX8Q4(const uint8_t *q, __m256i *nib) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  for (int h = 0; h < 2; ++h) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q + 64 * h));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q + 64 * h + 32));
    nib[4 * h] = _mm256_and_si256(va, low);
    nib[4 * h + 1] = _mm256_and_si256(vb, low);
    nib[4 * h + 2] = _mm256_and_si256(_mm256_srli_epi16(va, 4), low);
    nib[4 * h + 3] = _mm256_and_si256(_mm256_srli_epi16(vb, 4), low);
  }
}

/// One token's q4x8 sub-block against unpacked nibbles: sA holds rows 0-3
/// and sB rows 4-7, two int32 lanes a row. maddubs against a broadcast of
/// the matching 8 activation bytes gives 4 int16 lanes a row; the four
/// products of a nibble (<= 15) and x (|x| <= 127) sum to at most 15240,
/// so they add in int16 and take one madd per half.
inline void sumsX8Q4(const __m256i *nib, const int8_t *xq, __m256i &sA, __m256i &sB) {
  __m256i hA = _mm256_setzero_si256(), hB = hA;
  for (int h = 0; h < 2; ++h) {
    const __m256i xl = broadcast8x4(xq + 8 * h);
    const __m256i xh = broadcast8x4(xq + 16 + 8 * h);
    hA = _mm256_add_epi16(hA, _mm256_add_epi16(_mm256_maddubs_epi16(nib[4 * h], xl),
                                               _mm256_maddubs_epi16(nib[4 * h + 2], xh)));
    hB = _mm256_add_epi16(hB, _mm256_add_epi16(_mm256_maddubs_epi16(nib[4 * h + 1], xl),
                                               _mm256_maddubs_epi16(nib[4 * h + 3], xh)));
  }
  const __m256i ones = _mm256_set1_epi16(1);
  sA = _mm256_madd_epi16(hA, ones);
  sB = _mm256_madd_epi16(hB, ones);
}

/// Prefill with 256-bit registers: an interleaved group of 8 rows (q8x8
/// when Q8, else q4x8) against M <= 4 activation rows, a sub-block at a
/// time with the tokens inside, so q4's nibbles are unpacked once per
/// sub-block for all M. A 256-bit load is one 8-byte piece of 4 rows'
/// codes (quant.h): v[2h] rows 0-3 and v[2h + 1] rows 4-7 for q8's piece
/// h; q4 runs unpackX8Q4 once and sumsX8Q4 per token. q8's maddubs pairs
/// (up to 32258 each) take one madd each. q8 signs: |x| is the unsigned side and w takes x's
/// sign, which needs w != -128 (q8 codes are in [-127, 127]). One hadd of
/// the two halves leaves one int32 lane per row, in the order
/// `kX8HaddRows`, converted and scaled once per token. On a Zen 3 it
/// prefills 1.2-1.3x as fast as the token-at-a-time kernel it replaced
/// (PERFORMANCE, "AVX2 prefill tile").
constexpr int kX8HaddRows[8] = {0, 1, 4, 5, 2, 3, 6, 7};

template <bool Q8, int M>
void dotX8TileAvx2(const uint8_t *w, const ActBlock *a, int64_t nb, int64_t group,
                   float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t piece = Q8 ? kQuantSubBlock : kQuantSubBlock / 2;
  const size_t chunkBytes = kInterleaveRows * (2 + sub * piece);
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i order = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(kX8HaddRows));
  __m256 acc[M];
  for (int t = 0; t < M; ++t) {
    acc[t] = _mm256_setzero_ps();
  }
  const uint8_t *chunk = w;
  __m256 d = _mm256_setzero_ps();
  for (int64_t b = 0, s = 0; b < nb; ++b, s = s + 1 == sub ? 0 : s + 1) {
    if (s == 0) {
      chunk = b == 0 ? w : chunk + chunkBytes;
      d = _mm256_permutevar8x32_ps(
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(chunk))), order);
    }
    const uint8_t *q = chunk + 2 * kInterleaveRows + s * kInterleaveRows * piece;
    for (size_t line = 0; line < kInterleaveRows * piece; line += 64) {
      _mm_prefetch(reinterpret_cast<const char *>(q) + kX8PrefetchAhead + line, _MM_HINT_T0);
    }
    // The weights are read from memory for every token (L1 after the
    // first): held in registers they would crowd out the accumulators.
    alignas(32) __m256i nib[Q8 ? 1 : 8];
    const __m256i *v = reinterpret_cast<const __m256i *>(q);
    if constexpr (!Q8) {
      unpackX8Q4(q, nib);
      v = nib;
    }
    for (int t = 0; t < M; ++t) {
      const ActBlock &x = a[t * nb + b];
      // Hides from the compiler that the loads through `v` are the same
      // for every token (hoisted out of this loop, they would take 8
      // registers).
      __asm__("" : "+r"(v));
      __m256i sA, sB;
      if constexpr (Q8) {
        for (int h = 0; h < 4; ++h) {
          const __m256i xb = broadcast8x4(x.q + 8 * h);
          const __m256i ax = _mm256_abs_epi8(xb);
          const __m256i pA = _mm256_madd_epi16(
              _mm256_maddubs_epi16(ax, _mm256_sign_epi8(_mm256_loadu_si256(v + 2 * h), xb)),
              ones);
          const __m256i pB = _mm256_madd_epi16(
              _mm256_maddubs_epi16(ax, _mm256_sign_epi8(_mm256_loadu_si256(v + 2 * h + 1), xb)),
              ones);
          sA = h == 0 ? pA : _mm256_add_epi32(sA, pA);
          sB = h == 0 ? pB : _mm256_add_epi32(sB, pB);
        }
      } else {
        sumsX8Q4(v, x.q, sA, sB);
      }
      const __m256 sum = _mm256_cvtepi32_ps(_mm256_hadd_epi32(sA, sB));
      if constexpr (Q8) {
        acc[t] = _mm256_fmadd_ps(sum, _mm256_mul_ps(d, _mm256_set1_ps(x.d)), acc[t]);
      } else { // 8·Σx comes off before the rows' scales
        acc[t] = _mm256_fmadd_ps(
            d, _mm256_fmsub_ps(sum, _mm256_set1_ps(x.d), _mm256_set1_ps(8.0f * x.sum)), acc[t]);
      }
    }
  }
  for (int t = 0; t < M; ++t) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc[t]);
    for (int i = 0; i < 8; ++i) {
      out[kX8HaddRows[i] * kX8Tokens + t] = lanes[i];
    }
  }
}

/// The table entry: m <= kX8Tokens tokens, up to four a tile.
template <bool Q8>
void dotX8Avx2(const uint8_t *w, const ActBlock *a, int64_t nb, int m, int64_t group,
               float *out) {
  for (int t = 0; t < m; t += 4) {
    const ActBlock *at = a + t * nb;
    float *ot = out + t;
    switch (m - t) {
    case 1: dotX8TileAvx2<Q8, 1>(w, at, nb, group, ot); break;
    case 2: dotX8TileAvx2<Q8, 2>(w, at, nb, group, ot); break;
    case 3: dotX8TileAvx2<Q8, 3>(w, at, nb, group, ot); break;
    default: dotX8TileAvx2<Q8, 4>(w, at, nb, group, ot); break;
    }
  }
}

/// How far ahead of its loads each stream of dotX8StreamsAvx2 prefetches.
constexpr size_t kX8StreamAhead = 2048;

/// One sub-block of one stream of dotX8StreamsAvx2: the two row-pair sums
/// of its 8 rows against x (and the prefetch of what the stream reads next).
template <class Dot, bool Q8>
inline void x8StreamSums(const uint8_t *q, const ActBlock &x, size_t bytes,
                         __m256i &sumA, __m256i &sumB) {
  for (size_t line = 0; line < bytes; line += 64) {
    _mm_prefetch(reinterpret_cast<const char *>(q) + kX8StreamAhead + line, _MM_HINT_T0);
  }
  sumA = _mm256_setzero_si256();
  sumB = sumA;
  if constexpr (Q8) {
    for (int h = 0; h < 4; ++h) {
      const __m256i xb = broadcast8x4(x.q + 8 * h);
      const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q + 64 * h));
      const __m256i wb = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q + 64 * h + 32));
      sumA = _mm256_add_epi32(sumA, Dot::sum(_mm256_sign_epi8(wa, wa), _mm256_sign_epi8(xb, wa)));
      sumB = _mm256_add_epi32(sumB, Dot::sum(_mm256_sign_epi8(wb, wb), _mm256_sign_epi8(xb, wb)));
    }
  } else {
    __m256i nib[8];
    unpackX8Q4(q, nib);
    sumsX8Q4(nib, x.q, sumA, sumB);
  }
}

/// Decode with 256-bit registers: S interleaved groups, each its own
/// stream, against one activation row. q4's 8·Σx comes off inside the
/// loop, half on each lane of a row's pair (q8 needs none: its products are
/// |w| against sign-adjusted x). The S streams' accumulators do not fit in
/// the 16 registers:
/// - groups of one sub-block (g32) take the streams at the same sub-block
///   in lockstep, the scales of all S loaded first;
/// - longer groups (g128) take a chunk (one group of every row) of each
///   stream in turn: its sub-blocks sum in registers and meet the scales
///   and the accumulators once. TinyLlama q4 g128 decode on the Zen 3
///   (docs/PERFORMANCE.md): 25% faster at 2 threads, within the noise at 1;
///   the same order was slower for g32 in one run, so g32 keeps lockstep.
template <class Dot, bool Q8, int S>
void dotX8StreamsAvx2(const uint8_t *const *w, const ActBlock *a, int64_t nb,
                      int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t piece = Q8 ? kQuantSubBlock : kQuantSubBlock / 2;
  const size_t bytes = kInterleaveRows * piece; // a sub-block of a stream
  const size_t chunkBytes = kInterleaveRows * 2 + sub * bytes;
  const __m256i pairsA = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  const __m256i pairsB = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
  __m256 accA[S], accB[S];
  for (int g = 0; g < S; ++g) {
    accA[g] = accB[g] = _mm256_setzero_ps();
  }
  auto offset = [&](const ActBlock &x) {
    return _mm256_set1_ps(Q8 ? 0.0f : 4.0f * x.sum);
  };
  if (sub == 1) {
    __m256 dA[S], dB[S];
    for (int64_t b = 0; b < nb; ++b) {
      const size_t chunk = b * chunkBytes;
      for (int g = 0; g < S; ++g) {
        const __m256 d8 =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w[g] + chunk)));
        dA[g] = _mm256_permutevar8x32_ps(d8, pairsA);
        dB[g] = _mm256_permutevar8x32_ps(d8, pairsB);
      }
      const ActBlock &x = a[b];
      const __m256 xd = _mm256_set1_ps(x.d), xoff = offset(x);
      for (int g = 0; g < S; ++g) {
        __m256i sumA, sumB;
        x8StreamSums<Dot, Q8>(w[g] + chunk + 2 * kInterleaveRows, x, bytes, sumA, sumB);
        accA[g] = _mm256_fmadd_ps(dA[g], _mm256_fmsub_ps(_mm256_cvtepi32_ps(sumA), xd, xoff), accA[g]);
        accB[g] = _mm256_fmadd_ps(dB[g], _mm256_fmsub_ps(_mm256_cvtepi32_ps(sumB), xd, xoff), accB[g]);
      }
    }
  } else {
    size_t chunk = 0; // byte offset of the current chunk in every group
    for (int64_t b0 = 0; b0 < nb; b0 += sub, chunk += chunkBytes) {
      for (int g = 0; g < S; ++g) {
        __m256 tA = _mm256_setzero_ps(), tB = tA;
        for (int64_t s = 0; s < sub; ++s) {
          const ActBlock &x = a[b0 + s];
          __m256i sumA, sumB;
          x8StreamSums<Dot, Q8>(w[g] + chunk + 2 * kInterleaveRows + s * bytes, x, bytes,
                                sumA, sumB);
          const __m256 xd = _mm256_set1_ps(x.d), xoff = offset(x);
          tA = _mm256_add_ps(tA, _mm256_fmsub_ps(_mm256_cvtepi32_ps(sumA), xd, xoff));
          tB = _mm256_add_ps(tB, _mm256_fmsub_ps(_mm256_cvtepi32_ps(sumB), xd, xoff));
        }
        const __m256 d8 =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(w[g] + chunk)));
        accA[g] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(d8, pairsA), tA, accA[g]);
        accB[g] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(d8, pairsB), tB, accB[g]);
      }
    }
  }
  for (int g = 0; g < S; ++g) {
    alignas(32) float lanes[16];
    _mm256_store_ps(lanes, accA[g]);
    _mm256_store_ps(lanes + 8, accB[g]);
    for (int i = 0; i < 8; ++i) {
      out[g * kInterleaveRows + i] = lanes[2 * i] + lanes[2 * i + 1];
    }
  }
}

/// The table entry: s streams (s <= kMaxStreams).
template <class Dot, bool Q8>
void dotX8StreamsAvx2Entry(const uint8_t *const *w, int s, const ActBlock *a, int64_t nb,
                           int64_t group, float *out) {
  withStreamCount(s, [&](auto n) {
    dotX8StreamsAvx2<Dot, Q8, decltype(n)::value>(w, a, nb, group, out);
  });
}

/// `Tile(R, M)` for r in 1..2 and m in 1..4.
template <class Dot, int Kind> struct QuantTile {
  template <int R, int M>
  static void run(const uint8_t *w, size_t ldw, const ActBlock *a, int64_t nb,
                  int64_t group, float *out) {
    if constexpr (Kind == 0) {
      dotQ8Tile<Dot, R, M>(w, ldw, a, nb, group, out);
    } else {
      dotQ4Tile<Dot, Kind == 2, R, M>(w, ldw, a, nb, group, out);
    }
  }
};

/// The table entry for a quantized format: Kind 0 is q8, 1 q4, 2 q4 asym.
template <class Dot, int Kind>
void dotQuant(const uint8_t *w, size_t ldw, int r, const ActBlock *a,
              int64_t nb, int m, int64_t group, float *out) {
  using T = QuantTile<Dot, Kind>;
  m = m < 1 ? 1 : (m > 4 ? 4 : m);
  if (r >= 2) {
    switch (m) {
    case 1: return T::template run<2, 1>(w, ldw, a, nb, group, out);
    case 2: return T::template run<2, 2>(w, ldw, a, nb, group, out);
    case 3: return T::template run<2, 3>(w, ldw, a, nb, group, out);
    default: return T::template run<2, 4>(w, ldw, a, nb, group, out);
    }
  }
  switch (m) {
  case 1: return T::template run<1, 1>(w, ldw, a, nb, group, out);
  case 2: return T::template run<1, 2>(w, ldw, a, nb, group, out);
  case 3: return T::template run<1, 3>(w, ldw, a, nb, group, out);
  default: return T::template run<1, 4>(w, ldw, a, nb, group, out);
  }
}

} // namespace
} // namespace llmc::kernels

#endif // LLMC_RUNTIME_KERNELS_QUANT_TILES_H
