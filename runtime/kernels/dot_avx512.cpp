// AVX-512 versions of the dot-product inner loops (F/BW/VL with VNNI; compiled with -mavx512f
// -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c): 16-wide float tiles with masked tails, and
// the int8 dot products as VNNI dpbusd (one instruction where AVX2 needs maddubs and madd).
#include "runtime/kernels/kernels.h"

#if defined(__x86_64__) && defined(LLMC_HAVE_AVX512_FILE)
// GCC 12's AVX-512 headers build some intrinsics from _mm512_undefined_*,
// which -Wuninitialized reports inside the header (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "runtime/kernels/quant_tiles.h"
#pragma GCC diagnostic pop

#include <cstring>

namespace llmc::kernels {

namespace {

inline __m512 loadF32(const float *w, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, w);
}
inline __m512 loadF16(const uint16_t *w, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w));
}
inline __m512 loadBF16(const uint16_t *w, __mmask16 m) {
  __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/// An R x M tile of float weight rows against activation rows, 16 columns
/// a step; the last partial step loads under a mask (zeros elsewhere).
template <int R, int M, typename W, typename Load>
void dotTile(const W *w, int64_t ldw, const float *x, int64_t ldx, int64_t k,
             float *out, Load load) {
  __m512 acc[R][M];
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      acc[i][t] = _mm512_setzero_ps();
    }
  }
  for (int64_t c = 0; c < k; c += 16) {
    const __mmask16 m =
        k - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - c)) - 1);
    __m512 wv[R];
    for (int i = 0; i < R; ++i) {
      wv[i] = load(w + i * ldw + c, m);
    }
    for (int t = 0; t < M; ++t) {
      __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + c);
      for (int i = 0; i < R; ++i) {
        acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < M; ++t) {
      out[i * 4 + t] = _mm512_reduce_add_ps(acc[i][t]);
    }
  }
}

/// One activation row (decode): four accumulators per weight row, so the
/// FMA latency (4 cycles) does not bound the stream of weights.
template <int R, typename W, typename Load>
void dotRowTile(const W *w, int64_t ldw, const float *x, int64_t k, float *out,
                Load load) {
  __m512 acc[R][4];
  for (int i = 0; i < R; ++i) {
    for (int u = 0; u < 4; ++u) {
      acc[i][u] = _mm512_setzero_ps();
    }
  }
  int64_t c = 0;
  for (; c + 64 <= k; c += 64) {
    for (int u = 0; u < 4; ++u) {
      const __m512 xv = _mm512_loadu_ps(x + c + 16 * u);
      for (int i = 0; i < R; ++i) {
        acc[i][u] = _mm512_fmadd_ps(load(w + i * ldw + c + 16 * u, 0xFFFF), xv,
                                    acc[i][u]);
      }
    }
  }
  for (; c < k; c += 16) {
    const __mmask16 m =
        k - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - c)) - 1);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
    for (int i = 0; i < R; ++i) {
      acc[i][0] = _mm512_fmadd_ps(load(w + i * ldw + c, m), xv, acc[i][0]);
    }
  }
  for (int i = 0; i < R; ++i) {
    out[i * 4] = _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3])));
  }
}

template <int R, typename W, typename Load>
void dispatchTokens(const W *w, int64_t ldw, const float *x, int64_t ldx,
                    int m, int64_t k, float *out, Load load) {
  switch (m) {
  case 1: return dotRowTile<R>(w, ldw, x, k, out, load);
  case 2: return dotTile<R, 2>(w, ldw, x, ldx, k, out, load);
  case 3: return dotTile<R, 3>(w, ldw, x, ldx, k, out, load);
  default: return dotTile<R, 4>(w, ldw, x, ldx, k, out, load);
  }
}

template <typename W, typename Load>
void dispatchTile(const W *w, int64_t ldw, int r, const float *x, int64_t ldx,
                  int m, int64_t k, float *out, Load load) {
  if (r >= 2) {
    dispatchTokens<2>(w, ldw, x, ldx, m, k, out, load);
  } else {
    dispatchTokens<1>(w, ldw, x, ldx, m, k, out, load);
  }
}

/// The AVX2 table, looked up once (every AVX-512 CPU has AVX2).
const KernelTable *const kAvx2 = avx2Kernels();

// Several activation rows (prefill) run the AVX2 tiles: on the Xeon measured
// (docs/PERFORMANCE.md) 512-bit FMA tiles ran prefill at half the AVX2 speed,
// while one row (decode, bound by memory) gained from the wider loads.
void dotF32(const float *w, int64_t ldw, int r, const float *x, int64_t ldx,
            int m, int64_t k, float *out) {
  if (m > 1) {
    return kAvx2->dotF32(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF32);
}

void dotF16(const uint16_t *w, int64_t ldw, int r, const float *x,
            int64_t ldx, int m, int64_t k, float *out) {
  if (m > 1) {
    return kAvx2->dotF16(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadF16);
}

void dotBF16(const uint16_t *w, int64_t ldw, int r, const float *x,
             int64_t ldx, int m, int64_t k, float *out) {
  if (m > 1) {
    return kAvx2->dotBF16(w, ldw, r, x, ldx, m, k, out);
  }
  dispatchTile(w, ldw, r, x, ldx, m, k, out, loadBF16);
}

void axpy(float a, const float *x, float *y, int64_t k) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m =
        k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
    __m512 r = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i),
                               _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

void axpyF16(float a, const uint16_t *x, float *y, int64_t k) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m =
        k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
    __m512 r = _mm512_fmadd_ps(av, loadF16(x + i, m),
                               _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

float dot(const float *x, const float *y, int64_t k) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m =
        k - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (k - i)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i),
                          _mm512_maskz_loadu_ps(m, y + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

/// A 2:4 block's 16 values.
template <int32_t Format> inline __m512 sparseValues(const uint8_t *blk) {
  if constexpr (Format == LLMC_FORMAT_S24) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk)));
  } else {
    return _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sparseCodes<Format>(blk))),
        _mm512_set1_ps(sparseScale(blk)));
  }
}

/// 2:4 rows: a block's 32 index bits become the 16 columns its kept values
/// multiply (lane L's position sits at bit 2L, its run starts at column
/// 4·(L/2)), one two-register permute gathers those activations, one FMA
/// takes all 16 values. A partial last block runs in the generic twin.
template <int32_t Format> struct SparseAvx512 {
static void run(const uint8_t *w, size_t ldw, int r, const float *x,
                int64_t ldx, int m, int64_t k, float *out) {
  const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                           20, 22, 24, 26, 28, 30);
  const __m512i runs = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20,
                                         20, 24, 24, 28, 28);
  const __m512i three = _mm512_set1_epi32(3);
  const size_t bytes = sparseBlockBytes(Format);
  const int64_t full = k / kS24Columns;
  for (int i = 0; i < r; ++i) {
    const uint8_t *row = w + i * ldw;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t b = 0; b < full; ++b) {
      const uint8_t *blk = row + b * bytes;
      uint32_t bits;
      std::memcpy(&bits, blk + bytes - 4, 4);
      const __m512i lanes = _mm512_add_epi32(
          runs, _mm512_and_si512(
                    _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(bits)),
                                      shifts),
                    three));
      const __m512 v = sparseValues<Format>(blk);
      for (int t = 0; t < m; ++t) {
        const float *xb = x + t * ldx + b * kS24Columns;
        const __m512 xs = _mm512_permutex2var_ps(
            _mm512_loadu_ps(xb), lanes, _mm512_loadu_ps(xb + 16));
        acc[t] = _mm512_fmadd_ps(v, xs, acc[t]);
      }
    }
    float tail[8];
    sparseTail(row, Format, x, ldx, m, k, tail);
    for (int t = 0; t < m; ++t) {
      out[i * 4 + t] = _mm512_reduce_add_ps(acc[t]) + tail[t];
    }
  }
}
};

void dotSparse(const uint8_t *w, size_t ldw, int32_t format, int r,
               const float *x, int64_t ldx, int m, int64_t k, float *out) {
  dispatchSparse<SparseAvx512>(w, ldw, format, r, x, ldx, m, k, out);
}

/// VNNI: four unsigned-by-signed byte products summed into int32 at once.
struct VnniDot {
  static __m256i sum(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
  }
};

/// How far ahead of its loads the interleaved kernel prefetches (bytes).
constexpr int kPrefetchAhead = 8192;

/// 8 activation bytes x[at..at+8) in every 64-bit lane.
inline __m512i broadcast8(const int8_t *x) {
  int64_t v;
  std::memcpy(&v, x, 8);
  return _mm512_set1_epi64(v);
}

/// An interleaved group of 8 rows (q8x8 when Q8, else q4x8) against M
/// activation rows. Each 64-byte load is one 8-byte piece of all 8 rows'
/// codes (quant.h), so one dpbusd against a broadcast of the matching 8
/// activation bytes adds 4 products into each of 16 lanes, lanes 2i and
/// 2i + 1 belonging to row i: a sub-block's 4 (q8) or 2 x 2 (q4 low and
/// high nibbles) dpbusd all sum into one register per token, which takes
/// one conversion and one FMA with the rows' scales (spread over the lane
/// pairs once per group) times the activation scale. The weights are
/// loaded and unpacked once for up to 8 tokens.
template <bool Q8, int M>
void dotX8Tile(const uint8_t *w, const ActBlock *a, int64_t nb, int64_t group,
               float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t piece = Q8 ? kQuantSubBlock : kQuantSubBlock / 2;
  const size_t chunkBytes = kInterleaveRows * (2 + sub * piece);
  const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
                                          6, 6, 7, 7);
  __m512 acc[M];
  __m256 offset[M];
  for (int t = 0; t < M; ++t) {
    acc[t] = _mm512_setzero_ps();
    offset[t] = _mm256_setzero_ps();
  }
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  // Sub-block b is sub-block s of chunk b / sub (nb is a multiple of sub).
  const uint8_t *chunk = w;
  __m256 d8 = _mm256_setzero_ps();
  __m512 dpair = _mm512_setzero_ps();
  for (int64_t b = 0, s = 0; b < nb; ++b, s = s + 1 == sub ? 0 : s + 1) {
    if (s == 0) {
      chunk = b == 0 ? w : chunk + chunkBytes;
      d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(chunk)));
      dpair = _mm512_permutexvar_ps(pairs, _mm512_castps256_ps512(d8));
    }
    const uint8_t *q = chunk + 2 * kInterleaveRows + s * kInterleaveRows * piece;
    // The group's bytes are one stream: fetch ahead across page edges,
    // where the hardware prefetcher stops.
    _mm_prefetch(reinterpret_cast<const char *>(q) + kPrefetchAhead, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char *>(q) + kPrefetchAhead + 64, _MM_HINT_T0);
    if constexpr (Q8) {
      _mm_prefetch(reinterpret_cast<const char *>(q) + kPrefetchAhead + 128, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char *>(q) + kPrefetchAhead + 192, _MM_HINT_T0);
      // w + 128 (w's bytes with the top bit flipped, once for all tokens)
      // is the unsigned side and x the signed one, so the sums are
      // Σ(w + 128)·x = Σw·x + 128·Σx; the 128·Σx term comes off at the end
      // from the activation block's d·Σq, as q4's 8·Σx does (no flip per
      // token). Two independent dpbusd chains of two keep the latency
      // short.
      __m512i wu[4];
      for (int h = 0; h < 4; ++h) {
        wu[h] = _mm512_xor_si512(_mm512_loadu_si512(q + 64 * h), u128);
      }
      const __m512i zero = _mm512_setzero_si512();
      for (int t = 0; t < M; ++t) {
        const ActBlock &x = a[t * nb + b];
        const __m512i sum = _mm512_add_epi32(
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, wu[0], broadcast8(x.q)), wu[1],
                                broadcast8(x.q + 8)),
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, wu[2], broadcast8(x.q + 16)),
                                wu[3], broadcast8(x.q + 24)));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                 _mm512_mul_ps(dpair, _mm512_set1_ps(x.d)), acc[t]);
        offset[t] = _mm256_fmadd_ps(d8, _mm256_set1_ps(x.sum), offset[t]);
      }
    } else {
      __m512i lo[2], hi[2];
      for (int h = 0; h < 2; ++h) {
        const __m512i v = _mm512_loadu_si512(q + 64 * h);
        lo[h] = _mm512_and_si512(v, low);
        hi[h] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
      for (int t = 0; t < M; ++t) {
        const ActBlock &x = a[t * nb + b];
        // Piece h: codes 8h..8h+7 (low nibbles) and 16+8h.. (high); two
        // chains of two.
        const __m512i zero = _mm512_setzero_si512();
        const __m512i sum = _mm512_add_epi32(
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo[0], broadcast8(x.q)), lo[1],
                                broadcast8(x.q + 8)),
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, hi[0], broadcast8(x.q + 16)),
                                hi[1], broadcast8(x.q + 24)));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                 _mm512_mul_ps(dpair, _mm512_set1_ps(x.d)), acc[t]);
        offset[t] = _mm256_fmadd_ps(d8, _mm256_set1_ps(x.sum), offset[t]);
      }
    }
  }
  for (int t = 0; t < M; ++t) {
    alignas(64) float lanes[16];
    alignas(32) float off[8];
    _mm512_store_ps(lanes, acc[t]);
    _mm256_store_ps(off, offset[t]);
    for (int i = 0; i < 8; ++i) {
      const float s = lanes[2 * i] + lanes[2 * i + 1];
      out[i * kX8Tokens + t] = s - (Q8 ? 128.0f : 8.0f) * off[i];
    }
  }
}

/// f16x16: column c of the 16 rows is one 16-float register (one 32-byte
/// load and vcvtph2ps); every token broadcasts its x[c] into one FMA. One
/// token keeps four column phases apart (four accumulators) so the FMA
/// latency does not bound the stream; tokens run eight at a time, the eight
/// sharing each column.
template <int M>
void dotF16X16Tile(const uint16_t *w, int64_t k, const float *x, int64_t ldx,
                   float *out) {
  constexpr int kPhases = M == 1 ? 4 : M == 2 ? 2 : 1;
  __m512 acc[M][kPhases];
  for (int t = 0; t < M; ++t) {
    for (int p = 0; p < kPhases; ++p) {
      acc[t][p] = _mm512_setzero_ps();
    }
  }
  int64_t c = 0;
  for (; c + kPhases <= k; c += kPhases) {
    for (int p = 0; p < kPhases; ++p) {
      if (((c + p) & 1) == 0) { // one 64-byte line holds two columns
        _mm_prefetch(reinterpret_cast<const char *>(w + (c + p) * 16) + kPrefetchAhead,
                     _MM_HINT_T0);
      }
      const __m512 wv = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w + (c + p) * 16)));
      for (int t = 0; t < M; ++t) {
        acc[t][p] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[t * ldx + c + p]), acc[t][p]);
      }
    }
  }
  for (; c < k; ++c) {
    const __m512 wv = _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w + c * 16)));
    for (int t = 0; t < M; ++t) {
      acc[t][0] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[t * ldx + c]), acc[t][0]);
    }
  }
  for (int t = 0; t < M; ++t) {
    __m512 s = acc[t][0];
    for (int p = 1; p < kPhases; ++p) {
      s = _mm512_add_ps(s, acc[t][p]);
    }
    _mm512_storeu_ps(out + t * 16, s);
  }
}

void dotF16X16(const uint16_t *w, int64_t k, const float *x, int64_t ldx,
               int m, float *out) {
  forTokenTiles<8>(m, [&](auto n, int t) {
    dotF16X16Tile<decltype(n)::value>(w, k, x + t * ldx, ldx, out + t * 16);
  });
}

/// How far ahead of its loads each stream of a *Streams kernel prefetches
/// (bytes): with eight streams, 2 KB each measured best (16 KB in flight).
constexpr int kStreamAhead = 2048;

/// Decode: S interleaved groups (q8x8 when Q8, else q4x8), each its own
/// stream, against one activation row, all at the same sub-block in
/// lockstep: the activation's broadcasts are made once for all S. The
/// code offset (128 or 8 times the activation's sum) comes off inside the
/// loop, half on each lane of a row's pair, so a stream needs only its
/// accumulator and its scales.
template <bool Q8, int S>
void dotX8StreamsTile(const uint8_t *const *w, const ActBlock *a, int64_t nb,
                      int64_t group, float *out) {
  const int64_t sub = group / kQuantSubBlock;
  const size_t piece = Q8 ? kQuantSubBlock : kQuantSubBlock / 2;
  const size_t chunkBytes = kInterleaveRows * (2 + sub * piece);
  const __m512i pairs = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
                                          6, 6, 7, 7);
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i u128 = _mm512_set1_epi8(static_cast<char>(0x80));
  const float halfOffset = Q8 ? 64.0f : 4.0f;
  __m512 acc[S], dpair[S];
  for (int g = 0; g < S; ++g) {
    acc[g] = _mm512_setzero_ps();
    dpair[g] = _mm512_setzero_ps();
  }
  size_t chunk = 0; // byte offset of the current chunk in every group
  for (int64_t b = 0, s = 0; b < nb; ++b, s = s + 1 == sub ? 0 : s + 1) {
    if (s == 0) {
      chunk = b == 0 ? 0 : chunk + chunkBytes;
      for (int g = 0; g < S; ++g) {
        dpair[g] = _mm512_permutexvar_ps(
            pairs, _mm512_castps256_ps512(_mm256_cvtph_ps(
                       _mm_loadu_si128(reinterpret_cast<const __m128i *>(w[g] + chunk)))));
      }
    }
    const ActBlock &x = a[b];
    const __m512i x0 = broadcast8(x.q), x1 = broadcast8(x.q + 8);
    const __m512i x2 = broadcast8(x.q + 16), x3 = broadcast8(x.q + 24);
    const __m512 xd = _mm512_set1_ps(x.d);
    const __m512 xoff = _mm512_set1_ps(halfOffset * x.sum);
    const size_t at = chunk + 2 * kInterleaveRows + s * kInterleaveRows * piece;
    const __m512i zero = _mm512_setzero_si512();
    for (int g = 0; g < S; ++g) {
      const char *q = reinterpret_cast<const char *>(w[g] + at);
      _mm_prefetch(q + kStreamAhead, _MM_HINT_T0);
      _mm_prefetch(q + kStreamAhead + 64, _MM_HINT_T0);
      __m512i sum;
      if constexpr (Q8) {
        _mm_prefetch(q + kStreamAhead + 128, _MM_HINT_T0);
        _mm_prefetch(q + kStreamAhead + 192, _MM_HINT_T0);
        __m512i wu[4];
        for (int h = 0; h < 4; ++h) {
          wu[h] = _mm512_xor_si512(_mm512_loadu_si512(q + 64 * h), u128);
        }
        sum = _mm512_add_epi32(
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, wu[0], x0), wu[1], x1),
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, wu[2], x2), wu[3], x3));
      } else {
        const __m512i v0 = _mm512_loadu_si512(q), v1 = _mm512_loadu_si512(q + 64);
        const __m512i lo0 = _mm512_and_si512(v0, low), lo1 = _mm512_and_si512(v1, low);
        const __m512i hi0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low);
        const __m512i hi1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low);
        sum = _mm512_add_epi32(
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo0, x0), lo1, x1),
            _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, hi0, x2), hi1, x3));
      }
      acc[g] = _mm512_fmadd_ps(dpair[g], _mm512_fmsub_ps(_mm512_cvtepi32_ps(sum), xd, xoff),
                               acc[g]);
    }
  }
  for (int g = 0; g < S; ++g) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, acc[g]);
    for (int i = 0; i < 8; ++i) {
      out[g * kInterleaveRows + i] = lanes[2 * i] + lanes[2 * i + 1];
    }
  }
}

template <bool Q8>
void dotX8Streams(const uint8_t *const *w, int s, const ActBlock *a, int64_t nb,
                  int64_t group, float *out) {
  withStreamCount(s, [&](auto n) {
    dotX8StreamsTile<Q8, decltype(n)::value>(w, a, nb, group, out);
  });
}

/// Decode over f16x16: S groups side by side, one broadcast of x[c] for
/// all of them.
template <int S>
void dotF16X16StreamsTile(const uint16_t *const *w, int64_t k, const float *x,
                          float *out) {
  __m512 acc[S];
  for (int g = 0; g < S; ++g) {
    acc[g] = _mm512_setzero_ps();
  }
  for (int64_t c = 0; c < k; ++c) {
    const __m512 xv = _mm512_set1_ps(x[c]);
    for (int g = 0; g < S; ++g) {
      const uint16_t *col = w[g] + c * kF16GroupRows;
      if ((c & 1) == 0) { // one 64-byte line holds two columns
        _mm_prefetch(reinterpret_cast<const char *>(col) + kStreamAhead, _MM_HINT_T0);
      }
      acc[g] = _mm512_fmadd_ps(
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(col))), xv,
          acc[g]);
    }
  }
  for (int g = 0; g < S; ++g) {
    _mm512_storeu_ps(out + g * kF16GroupRows, acc[g]);
  }
}

void dotF16X16Streams(const uint16_t *const *w, int s, int64_t k, const float *x,
                      float *out) {
  withStreamCount(s, [&](auto n) {
    dotF16X16StreamsTile<decltype(n)::value>(w, k, x, out);
  });
}

template <bool Q8>
void dotX8(const uint8_t *w, const ActBlock *a, int64_t nb, int m,
           int64_t group, float *out) {
  switch (m) {
  case 1: return dotX8Tile<Q8, 1>(w, a, nb, group, out);
  case 2: return dotX8Tile<Q8, 2>(w, a, nb, group, out);
  case 3: return dotX8Tile<Q8, 3>(w, a, nb, group, out);
  case 4: return dotX8Tile<Q8, 4>(w, a, nb, group, out);
  case 5: return dotX8Tile<Q8, 5>(w, a, nb, group, out);
  case 6: return dotX8Tile<Q8, 6>(w, a, nb, group, out);
  case 7: return dotX8Tile<Q8, 7>(w, a, nb, group, out);
  default: return dotX8Tile<Q8, 8>(w, a, nb, group, out);
  }
}

} // namespace

const KernelTable *avx512Kernels() {
  static const KernelTable table = {
      "avx512",           dotF32, dotF16, dotBF16, axpy, dot,
      dotQuant<VnniDot, 0>, dotQuant<VnniDot, 1>, dotQuant<VnniDot, 2>,
      axpyF16, dotSparse, dotX8<true>, dotX8<false>, dotF16X16,
      dotX8Streams<true>, dotX8Streams<false>, dotF16X16Streams};
  // The AVX2 table serves the multi-row float tiles (every AVX-512 CPU has
  // AVX2).
  static const bool supported =
      avx2Kernels() != nullptr &&
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
      cpuHasF16C();
  return supported ? &table : nullptr;
}

} // namespace llmc::kernels

#else

namespace llmc::kernels {
const KernelTable *avx512Kernels() { return nullptr; }
} // namespace llmc::kernels

#endif
