// The llmc_k_* kernels that compiled programs call: threading and data layout around the inner loops.
#include "runtime/core/exec.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>

using llmc::kernels::KernelTable;

namespace {

// Activation rows processed per pass over a weight row block; sized so the
// block of x stays in L2 while the weights stream.
constexpr int64_t kTokenBlock = 64;

// Below this many multiply-adds a loop runs on the calling thread: waking
// workers costs more than the work.
constexpr int64_t kParallelWork = 1 << 15;

/// Runs of groups a decode *Streams kernel reads side by side, per thread:
/// 8 for one thread, fewer as threads share the memory (8 / threads, at
/// least 2). TinyLlama shapes on the Zen 3, 2 threads, interleaved rounds
/// (docs/PERFORMANCE.md): 4 a thread decoded 7-18% faster than 8 (q4 g128,
/// q4 g32, q8, f16); at 1 thread the count made no difference there, and on
/// the Xeon 8 had gained 27-41% over one. LLMC_DECODE_STREAMS=1..8 forces a
/// count (other values are ignored).
int64_t decodeStreams(int threads) {
  static const int forced = [] {
    const char *e = std::getenv("LLMC_DECODE_STREAMS");
    const int v = e ? std::atoi(e) : 0;
    return v >= 1 && v <= llmc::kernels::kMaxStreams ? v : 0;
  }();
  if (forced > 0) {
    return forced;
  }
  return std::max<int64_t>(2, llmc::kernels::kMaxStreams / std::max(threads, 1));
}

void parallelFor(llmc_exec *exec, int64_t n, int64_t work, llmc::RangeFn fn) {
  if (work < kParallelWork) {
    fn(0, n, 0);
  } else {
    exec->pool->parallelFor(n, fn);
  }
}

/// Where output column j of a linear goes: the results of a split linear
/// are separate row-major tensors (see llmc_k_linear_split).
struct Outputs {
  int64_t parts;
  const int64_t *widths;
  float *const *ys;
  /// The row-0 address of column j; the column's rows are `stride` apart.
  float *column(int64_t j, int64_t &stride) const {
    for (int64_t p = 0; p < parts; ++p) {
      if (j < widths[p]) {
        stride = widths[p];
        return ys[p] + j;
      }
      j -= widths[p];
    }
    stride = 0;
    return nullptr; // unreachable: the widths add up to out_dim
  }
};

float biasAt(const void *bias, int32_t format, int64_t j) {
  float b = 0.0f;
  if (bias) {
    llmc::kernels::toFloat(static_cast<const char *>(bias) +
                               j * (format == LLMC_FORMAT_F32 ? 4 : 2),
                           format, 1, &b);
  }
  return b;
}

/// Tokens one block computation covers, and the most rows it may span: a
/// block's products land in a [rows][kBlockTokens] buffer before its
/// epilogue writes them out.
constexpr int kBlockTokens = 8;
constexpr int64_t kMaxBlockRows = 128;

/// One linear call as its blocks see it: the weight, the activations (f32
/// rows, or int8 blocks for q8/q4) and what happens to each block's
/// products.
struct Linear {
  const KernelTable *k;
  const float *x; // f32 input rows (already normalized when fused)
  int64_t n, in, out;
  const void *w;
  int32_t format, group;
  bool asym;
  const llmc::kernels::ActBlock *act = nullptr; // q8/q4: quantized rows
  int64_t nb = 0;                               // ActBlocks a row
  const void *bias;
  int32_t biasFormat;
  const float *residual;
  int64_t swiglu; // gate/up rows a block of each; 0: no SwiGLU
  Outputs y;
  int64_t maxStreams = llmc::kernels::kMaxStreams; // see decodeStreams()

  /// buf[(j - j0) * kBlockTokens + q] = row j of W against token t + q, for
  /// j0 <= j < j1 and q < m (m <= kBlockTokens). [j0, j1) is one unit of
  /// work (unitRows): an interleaved format's groups never straddle it.
  void computeBlock(int64_t j0, int64_t j1, int64_t t, int m, float *buf) const;
  /// f16x16 rows [j0, j1) (whole groups) against tokens [t0, t1) (at most
  /// kTokenBlock) into buf[(j - j0) * kTokenBlock + t - t0]: one kernel call
  /// a group for the whole token block, so the kernel tiles the tokens as
  /// its registers allow (computeBlock's 8 would leave AVX2's 6-token tile
  /// a 2-token remainder every 8).
  void computeF16Block(int64_t j0, int64_t j1, int64_t t0, int64_t t1,
                       float *buf) const;
  /// Writes block [j0, j1) of tokens t..t+m-1 to the outputs: bias and
  /// residual added, or SwiGLU applied. Row j's products are at
  /// buf[(j - j0) * ld].
  void finish(int64_t j0, int64_t j1, int64_t t, int m, const float *buf,
              int64_t ld = kBlockTokens) const;
  /// Whether one token's products come from the *Streams kernels.
  bool streams() const {
    return n == 1 && (format == LLMC_FORMAT_Q8X8 || format == LLMC_FORMAT_Q4X8 ||
                      format == LLMC_FORMAT_F16X16);
  }
  /// One token (decode): rows [j0, j1), a run of whole units, into dst[j -
  /// j0]. The interleaved groups are split into up to maxStreams runs of
  /// consecutive groups, read side by side.
  void computeStreams(int64_t j0, int64_t j1, float *dst) const;
};

void Linear::computeStreams(int64_t j0, int64_t j1, float *dst) const {
  using namespace llmc::kernels;
  const bool f16 = format == LLMC_FORMAT_F16X16;
  const int64_t gr = f16 ? kF16GroupRows : kInterleaveRows;
  const int64_t full = std::min(j1, out / gr * gr);
  const int64_t groups = std::max<int64_t>(0, full - j0) / gr;
  const int64_t s = std::min<int64_t>(maxStreams, groups);
  const int64_t per = s > 0 ? (groups + s - 1) / s : 0;
  const uint8_t *wb = static_cast<const uint8_t *>(w);
  const size_t groupBytes = f16 ? static_cast<size_t>(gr * in * 2)
                                : gr * quantRowBytes(format, in, group, asym);
  float tile[kMaxStreams * kF16GroupRows];
  const uint8_t *ws[kMaxStreams];
  for (int64_t i = 0; i < per; ++i) {
    // Stream g reads groups g * per .. (g + 1) * per - 1 of the run: the
    // streams still going at step i are a prefix.
    int live = 0;
    while (live < s && live * per + i < groups) {
      ws[live] = wb + (j0 / gr + live * per + i) * groupBytes;
      ++live;
    }
    if (f16) {
      k->dotF16X16Streams(reinterpret_cast<const uint16_t *const *>(ws), live, in, x,
                          tile);
    } else {
      (format == LLMC_FORMAT_Q8X8 ? k->dotQ8X8Streams : k->dotQ4X8Streams)(
          ws, live, act, nb, group, tile);
    }
    for (int g = 0; g < live; ++g) {
      std::memcpy(dst + (g * per + i) * gr, tile + g * gr, gr * sizeof(float));
    }
  }
  // Rows past the last whole group (stored row by row).
  alignas(64) float buf[kMaxBlockRows * kBlockTokens];
  for (int64_t j = std::max(j0, full); j < j1; j += kMaxBlockRows) {
    const int64_t e = std::min(j1, j + kMaxBlockRows);
    computeBlock(j, e, 0, 1, buf);
    for (int64_t r = j; r < e; ++r) {
      dst[r - j0] = buf[(r - j) * kBlockTokens];
    }
  }
}

void Linear::computeBlock(int64_t j0, int64_t j1, int64_t t, int m,
                          float *buf) const {
  using namespace llmc::kernels;
  float tile[8 * kF16GroupRows];
  // Copies a kernel tile (row i of token q at tile[i * rs + q * ts]) into
  // the block buffer at row j.
  auto put = [&](int64_t j, int r, int q0, int mq, int rs, int ts) {
    for (int i = 0; i < r; ++i) {
      for (int q = 0; q < mq; ++q) {
        buf[(j - j0 + i) * kBlockTokens + q0 + q] = tile[i * rs + q * ts];
      }
    }
  };
  if (act) {
    const int32_t rowFmt = rowFormat(format);
    auto dot = rowFmt == LLMC_FORMAT_Q8 ? k->dotQ8 : asym ? k->dotQ4Asym : k->dotQ4;
    const size_t rowBytes = quantRowBytes(format, in, group, asym);
    const uint8_t *wb = static_cast<const uint8_t *>(w);
    int64_t j = j0;
    if (format == LLMC_FORMAT_Q8X8 || format == LLMC_FORMAT_Q4X8) {
      auto dotX8 = format == LLMC_FORMAT_Q8X8 ? k->dotQ8X8 : k->dotQ4X8;
      const int64_t full = out / kInterleaveRows * kInterleaveRows;
      for (; j + kInterleaveRows <= std::min(j1, full); j += kInterleaveRows) {
        for (int q = 0; q < m; q += kX8Tokens) {
          const int mq = std::min(kX8Tokens, m - q);
          dotX8(wb + j * rowBytes, act + (t + q) * nb, nb, mq, group, tile);
          put(j, kInterleaveRows, q, mq, kX8Tokens, 1);
        }
      }
    }
    // Row by row: two-row tiles pay off when several tokens share them
    // (prefill); for a single token (decode) they measured 35% slower than
    // one row at a time.
    const int64_t tileRows = n == 1 ? 1 : 2;
    for (; j < j1; j += tileRows) {
      const int r = static_cast<int>(std::min<int64_t>(tileRows, j1 - j));
      for (int q = 0; q < m; q += 4) {
        const int mq = std::min(4, m - q);
        dot(wb + j * rowBytes, rowBytes, r, act + (t + q) * nb, nb, mq, group,
            tile);
        put(j, r, q, mq, 4, 1);
      }
    }
    return;
  }
  int64_t j = j0;
  if (format == LLMC_FORMAT_F16X16) { // only a unit with rows past the last group
    const uint16_t *wh = static_cast<const uint16_t *>(w);
    const int64_t full = out / kF16GroupRows * kF16GroupRows;
    for (; j + kF16GroupRows <= std::min(j1, full); j += kF16GroupRows) {
      k->dotF16X16(wh + j * in, in, x + t * in, in, m, tile);
      put(j, kF16GroupRows, 0, m, 1, kF16GroupRows);
    }
  }
  // Row-major float or 2:4 rows (and the f16x16 rows past the last group,
  // stored row-major): tiles of two weight rows by four activation rows.
  const int32_t fmt = format == LLMC_FORMAT_F16X16 ? LLMC_FORMAT_F16 : format;
  for (; j < j1; j += 2) {
    const int r = static_cast<int>(std::min<int64_t>(2, j1 - j));
    for (int q = 0; q < m; q += 4) {
      const int mq = std::min(4, m - q);
      const float *xr = x + (t + q) * in;
      switch (fmt) {
      case LLMC_FORMAT_S24:
      case LLMC_FORMAT_S24Q8:
      case LLMC_FORMAT_S24Q4: {
        const size_t rowBytes = llmc::kernels::sparseRowBytes(fmt, in);
        k->dotSparse(static_cast<const uint8_t *>(w) + j * rowBytes, rowBytes,
                     fmt, r, xr, in, mq, in, tile);
        break;
      }
      case LLMC_FORMAT_F16:
        k->dotF16(static_cast<const uint16_t *>(w) + j * in, in, r, xr, in, mq,
                  in, tile);
        break;
      case LLMC_FORMAT_BF16:
        k->dotBF16(static_cast<const uint16_t *>(w) + j * in, in, r, xr, in,
                   mq, in, tile);
        break;
      default:
        k->dotF32(static_cast<const float *>(w) + j * in, in, r, xr, in, mq,
                  in, tile);
        break;
      }
      put(j, r, q, mq, 4, 1);
    }
  }
}

void Linear::computeF16Block(int64_t j0, int64_t j1, int64_t t0, int64_t t1,
                             float *buf) const {
  using llmc::kernels::kF16GroupRows;
  const uint16_t *wh = static_cast<const uint16_t *>(w);
  const int m = static_cast<int>(t1 - t0);
  float tile[kTokenBlock * kF16GroupRows];
  for (int64_t j = j0; j < j1; j += kF16GroupRows) {
    k->dotF16X16(wh + j * in, in, x + t0 * in, in, m, tile);
    float *rows = buf + (j - j0) * kTokenBlock;
    for (int i = 0; i < kF16GroupRows; ++i) {
      for (int q = 0; q < m; ++q) {
        rows[i * kTokenBlock + q] = tile[q * kF16GroupRows + i];
      }
    }
  }
}

void Linear::finish(int64_t j0, int64_t j1, int64_t t, int m,
                    const float *buf, int64_t ld) const {
  if (swiglu > 0) {
    // Block j0 / (2 * swiglu): b gate rows, then b up rows.
    const int64_t b = (j1 - j0) / 2;
    const int64_t c0 = j0 / 2, width = out / 2;
    for (int64_t i = 0; i < b; ++i) {
      const float bg = biasAt(bias, biasFormat, j0 + i);
      const float bu = biasAt(bias, biasFormat, j0 + b + i);
      for (int q = 0; q < m; ++q) {
        const float g = buf[i * ld + q] + bg;
        const float u = buf[(b + i) * ld + q] + bu;
        y.ys[0][(t + q) * width + c0 + i] = g / (1.0f + std::exp(-g)) * u;
      }
    }
    return;
  }
  for (int64_t j = j0; j < j1; ++j) {
    const float b = biasAt(bias, biasFormat, j);
    int64_t stride;
    float *col = y.column(j, stride);
    const float *row = buf + (j - j0) * ld;
    if (residual) {
      for (int q = 0; q < m; ++q) {
        col[(t + q) * stride] = (row[q] + b) + residual[(t + q) * out + j];
      }
    } else {
      for (int q = 0; q < m; ++q) {
        col[(t + q) * stride] = row[q] + b;
      }
    }
  }
}

/// Rows a unit of work spans: the format's natural group (so no group is
/// split between threads), or one SwiGLU block of gate and up rows.
int64_t unitRows(const Linear &l) {
  if (l.swiglu > 0) {
    return 2 * l.swiglu;
  }
  if (l.format == LLMC_FORMAT_F16X16) {
    return llmc::kernels::kF16GroupRows;
  }
  return l.format == LLMC_FORMAT_Q8X8 || l.format == LLMC_FORMAT_Q4X8
             ? llmc::kernels::kInterleaveRows
             : 2;
}

/// Row `dim` of x normalized as llmc_k_rms_norm does (the same arithmetic,
/// so fused and unfused programs agree bit for bit).
void rmsNormRow(const float *x, int64_t dim, const float *w, float eps,
                float *y) {
  double ss = 0.0;
  for (int64_t j = 0; j < dim; ++j) {
    ss += static_cast<double>(x[j]) * x[j];
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
  for (int64_t j = 0; j < dim; ++j) {
    y[j] = w[j] * (x[j] * scale);
  }
}

template <typename T> T *grow(std::vector<T> &v, size_t size) {
  if (v.size() < size) {
    v.resize(size);
  }
  return v.data();
}

/// Whether logit v of row j beats the best so far (bi < 0: none yet): the
/// larger value, the smaller id on a tie; a NaN never wins.
inline bool beats(float v, int64_t j, float bv, int64_t bi) {
  return bi < 0 ? !std::isnan(v) : v > bv || (v == bv && j < bi);
}

/// With `argmax` (one row, one plain output: the LM head of a greedy step),
/// each thread keeps its best column and exec->argmax gets the overall one;
/// the outputs are not written.
void runLinear(llmc_exec *exec, const float *x, int64_t n, int64_t in,
               const void *w, int32_t format, int32_t group, bool asym,
               int64_t out, const void *bias, int32_t biasFormat,
               const void *norm, int32_t normFormat, float eps,
               const float *residual, int64_t swiglu, const Outputs &y,
               bool argmax = false) {
  using namespace llmc::kernels;
  Linear l{exec->k, x,    n,        in,       out,      w,       format,
           group,   asym, nullptr,  0,        bias,     biasFormat,
           residual, swiglu, y};
  l.maxStreams = decodeStreams(exec->pool->size());
  const float *normW = nullptr;
  if (norm) {
    normW = grow(exec->normWeight, static_cast<size_t>(in));
    toFloat(norm, normFormat, in, exec->normWeight.data());
  }
  const bool quant = format == LLMC_FORMAT_Q8 || format == LLMC_FORMAT_Q4 ||
                     format == LLMC_FORMAT_Q8X8 || format == LLMC_FORMAT_Q4X8;
  if (quant) {
    // The activations become int8 blocks once (normalized on the way when
    // the RMSNorm is fused: the row is read from memory once, normalized
    // into a per-thread row that stays in L1, and quantized from there).
    l.nb = (in + group - 1) / group * group / kQuantSubBlock;
    ActBlock *act = grow(exec->act, static_cast<size_t>(n * l.nb));
    float *rows = norm ? grow(exec->rows, static_cast<size_t>(exec->pool->size() * in))
                       : nullptr;
    const int64_t nb = l.nb;
    parallelFor(exec, n, n * in * 4, [&](int64_t b, int64_t e, int thread) {
      for (int64_t t = b; t < e; ++t) {
        const float *src = x + t * in;
        if (normW) {
          float *row = rows + thread * in;
          rmsNormRow(src, in, normW, eps, row);
          src = row;
        }
        quantizeActivations(src, in, nb, act + t * nb);
      }
    });
    l.act = act;
  } else if (normW) {
    float *normed = grow(exec->normed, static_cast<size_t>(n * in));
    parallelFor(exec, n, n * in * 4, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        rmsNormRow(x + t * in, in, normW, eps, normed + t * in);
      }
    });
    l.x = normed;
  }
  const int64_t unit = unitRows(l);
  // SwiGLU blocks hold 2 * swiglu rows, the last one 2 * (out / 2 % swiglu).
  const int64_t units = swiglu > 0 ? (out / 2 + swiglu - 1) / swiglu
                                   : (out + unit - 1) / unit;
  auto rowsOf = [&](int64_t u, int64_t &j0, int64_t &j1) {
    j0 = u * unit;
    j1 = swiglu > 0 ? j0 + 2 * std::min(swiglu, out / 2 - u * swiglu)
                    : std::min(out, j0 + unit);
  };
  if (argmax) {
    const size_t threads = static_cast<size_t>(exec->pool->size());
    exec->bestValue.assign(threads, 0.0f);
    exec->bestIndex.assign(threads, -1);
  }
  const int threads = exec->pool->size();
  const int64_t chunk = std::max<int64_t>(1, units / (8 * threads));
  // One token over an interleaved format: a chunk's rows at once, into a
  // row of this thread's scratch.
  const bool streams = l.streams();
  const int64_t chunkRows = chunk * unit;
  float *streamRows = streams ? grow(exec->streamRows, static_cast<size_t>(threads * chunkRows))
                              : nullptr;
  // Several tokens over f16x16 (argmax has one token, so streams): a unit of
  // whole groups goes through computeF16Block into this thread's
  // [rows][kTokenBlock] scratch; a unit reaching past the last group (a
  // SwiGLU block can hold groups and row-major rows) takes computeBlock.
  const bool f16Block = !streams && !argmax && l.format == LLMC_FORMAT_F16X16;
  const int64_t f16Full = l.out / llmc::kernels::kF16GroupRows * llmc::kernels::kF16GroupRows;
  const size_t blockFloats = static_cast<size_t>(kMaxBlockRows * kTokenBlock);
  float *blockRows = f16Block ? grow(exec->blockRows, threads * blockFloats) : nullptr;
  // Units [b, e) for all tokens; `bv`/`bi`: the argmax so far of the
  // calling thread (kept local: the threads' slots share a cache line).
  auto run = [&](int64_t b, int64_t e, float &bv, int64_t &bi, int thread) {
    if (streams) {
      int64_t j0, j1, a0, a1;
      rowsOf(b, j0, a1);
      rowsOf(e - 1, a0, j1);
      float *rows = streamRows + thread * chunkRows;
      l.computeStreams(j0, j1, rows);
      if (!argmax) {
        for (int64_t u = b; u < e; ++u) {
          rowsOf(u, a0, a1);
          l.finish(a0, a1, 0, 1, rows + (a0 - j0), 1);
        }
        return;
      }
      for (int64_t j = j0; j < j1; ++j) {
        const float v = rows[j - j0] + biasAt(bias, biasFormat, j);
        if (beats(v, j, bv, bi)) {
          bv = v;
          bi = j;
        }
      }
      return;
    }
    alignas(64) float buf[kMaxBlockRows * kBlockTokens];
    float *block = f16Block ? blockRows + thread * blockFloats : nullptr;
    for (int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
      const int64_t t1 = std::min(n, t0 + kTokenBlock);
      for (int64_t u = b; u < e; ++u) {
        int64_t j0, j1;
        rowsOf(u, j0, j1);
        if (f16Block && j1 <= f16Full) {
          l.computeF16Block(j0, j1, t0, t1, block);
          l.finish(j0, j1, t0, static_cast<int>(t1 - t0), block, kTokenBlock);
          continue;
        }
        for (int64_t t = t0; t < t1; t += kBlockTokens) {
          const int m = static_cast<int>(std::min<int64_t>(kBlockTokens, t1 - t));
          l.computeBlock(j0, j1, t, m, buf);
          if (!argmax) {
            l.finish(j0, j1, t, m, buf);
            continue;
          }
          for (int64_t j = j0; j < j1; ++j) {
            const float v = buf[(j - j0) * kBlockTokens] + biasAt(bias, biasFormat, j);
            if (beats(v, j, bv, bi)) {
              bv = v;
              bi = j;
            }
          }
        }
      }
    }
  };
  // The units are taken in chunks, each thread the next one as it finishes
  // the last (about 8 a thread): the two cores of these machines do not
  // always run at one speed, and a static half each left the faster one
  // waiting (16% of a two-thread prefill's samples). A chunk's rows are
  // reused across all the call's token blocks while they are in L2.
  std::atomic<int64_t> nextChunk{0};
  parallelFor(exec, threads, n * in * out, [&](int64_t, int64_t, int thread) {
    float bv = 0.0f;
    int64_t bi = -1;
    for (int64_t c = nextChunk++; c * chunk < units; c = nextChunk++) {
      run(c * chunk, std::min(units, (c + 1) * chunk), bv, bi, thread);
    }
    if (argmax) {
      exec->bestValue[thread] = bv;
      exec->bestIndex[thread] = bi;
    }
  });
  if (argmax) {
    float bv = 0.0f;
    int64_t bi = -1;
    for (size_t i = 0; i < exec->bestIndex.size(); ++i) {
      if (exec->bestIndex[i] >= 0 &&
          beats(exec->bestValue[i], exec->bestIndex[i], bv, bi)) {
        bv = exec->bestValue[i];
        bi = exec->bestIndex[i];
      }
    }
    exec->argmax = static_cast<int32_t>(bi < 0 ? 0 : bi);
  }
}

/// The angles of RoPE for positions start..start+n-1 (cos and sin of
/// position * theta^(-2j/head_dim), in double, rounded to float), shared by
/// llmc_k_rope and the fused attention so both rotate identically.
void ropeAngles(llmc_exec *exec, int64_t n, int64_t headDim, float theta,
                int64_t start) {
  const int64_t half = headDim / 2;
  float *cs = grow(exec->ropeCos, static_cast<size_t>(n * half));
  float *sn = grow(exec->ropeSin, static_cast<size_t>(n * half));
  for (int64_t j = 0; j < half; ++j) {
    const double invFreq = std::pow(static_cast<double>(theta),
                                    -2.0 * static_cast<double>(j) / headDim);
    for (int64_t i = 0; i < n; ++i) {
      const double a = static_cast<double>(start + i) * invFreq;
      cs[i * half + j] = static_cast<float>(std::cos(a));
      sn[i * half + j] = static_cast<float>(std::sin(a));
    }
  }
}

/// One head of row i rotated with the angles ropeAngles computed.
void ropeHead(const llmc_exec *exec, int64_t i, int64_t headDim,
              const float *x, float *y) {
  const int64_t half = headDim / 2;
  const float *cs = exec->ropeCos.data() + i * half;
  const float *sn = exec->ropeSin.data() + i * half;
  for (int64_t j = 0; j < half; ++j) {
    const float a = x[j], b = x[j + half];
    y[j] = a * cs[j] - b * sn[j];
    y[j + half] = b * cs[j] + a * sn[j];
  }
}

/// Causal GQA attention; with theta > 0, q and k are rotated on the way in.
void attention(llmc_exec *exec, int64_t layer, const float *q, const float *k,
               const float *v, int64_t n, int64_t start, int64_t heads,
               int64_t kv_heads, int64_t head_dim, float theta, float *out) {
  const int64_t ctx = exec->ctx, hd = head_dim;
  const size_t base = exec->layerOffset[layer];
  const bool half = exec->kvHalf;
  float *kc = half ? nullptr : exec->kCache.data() + base;
  float *vc = half ? nullptr : exec->vCache.data() + base;
  uint16_t *kh16 = half ? exec->kCacheH.data() + base : nullptr;
  uint16_t *vh16 = half ? exec->vCacheH.data() + base : nullptr;
  const bool rope = theta > 0.0f;
  float *rot = nullptr; // per thread: one rotated head
  if (rope) {
    ropeAngles(exec, n, hd, theta, start);
    rot = grow(exec->rows, static_cast<size_t>(exec->pool->size() * hd));
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < kv_heads; ++h) {
      const size_t at = static_cast<size_t>((h * ctx + start + i) * hd);
      const float *kr = k + (i * kv_heads + h) * hd;
      const float *vr = v + (i * kv_heads + h) * hd;
      if (rope) {
        ropeHead(exec, i, hd, kr, rot);
        kr = rot;
      }
      if (half) {
        for (int64_t j = 0; j < hd; ++j) {
          kh16[at + j] = llmc::kernels::floatToHalf(kr[j]);
          vh16[at + j] = llmc::kernels::floatToHalf(vr[j]);
        }
      } else {
        std::memcpy(kc + at, kr, static_cast<size_t>(hd) * 4);
        std::memcpy(vc + at, vr, static_cast<size_t>(hd) * 4);
      }
    }
  }
  const KernelTable &kt = *exec->k;
  const int64_t group = heads / kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One unit of work is one (token, head) pair.
  const int64_t work = n * heads * (start + n) * hd * 2;
  parallelFor(exec, n * heads, work, [&](int64_t b, int64_t e, int thread) {
    float *scores = exec->scratch.data() + thread * ctx;
    for (int64_t u = b; u < e; ++u) {
      // Tokens in the order 0, n-1, 1, n-2, ...: token i reads i + 1 keys,
      // so contiguous ranges of units carry even shares of the work.
      const int64_t p = u / heads;
      const int64_t i = p % 2 == 0 ? p / 2 : n - 1 - p / 2;
      const int64_t h = u % heads, kvh = h / group;
      int64_t last = start + i;
      const float *qr = q + (i * heads + h) * hd;
      if (rope) {
        float *r = rot + thread * hd;
        ropeHead(exec, i, hd, qr, r);
        qr = r;
      }
      const size_t head = static_cast<size_t>(kvh * ctx * hd);
      float mx = -INFINITY;
      for (int64_t t = 0; t <= last; ++t) {
        float s;
        if (half) {
          // One f16 key row against the query: a 1 x 1 tile.
          float tile[8];
          kt.dotF16(kh16 + head + t * hd, hd, 1, qr, hd, 1, hd, tile);
          s = tile[0];
        } else {
          s = kt.dot(qr, kc + head + t * hd, hd);
        }
        scores[t] = s * scale;
        mx = std::max(mx, scores[t]);
      }
      float sum = 0.0f;
      for (int64_t t = 0; t <= last; ++t) {
        scores[t] = std::exp(scores[t] - mx);
        sum += scores[t];
      }
      float *o = out + (i * heads + h) * hd;
      std::fill(o, o + hd, 0.0f);
      float inv = 1.0f / sum;
      for (int64_t t = 0; t <= last; ++t) {
        if (half) {
          kt.axpyF16(scores[t] * inv, vh16 + head + t * hd, o, hd);
        } else {
          kt.axpy(scores[t] * inv, vc + head + t * hd, o, hd);
        }
      }
    }
  });
}

} // namespace

extern "C" {

void llmc_k_embedding(llmc_exec *exec, const void *table, int32_t format,
                      int32_t group, int32_t asym, const int32_t *ids,
                      int64_t n, int64_t dim, float *out) {
  if (exec->gpu) {
    return exec->gpu->embedding(table, format, group, asym, ids, n, dim, out);
  }
  const bool quant = format == LLMC_FORMAT_Q8 || format == LLMC_FORMAT_Q4;
  size_t rowBytes = quant ? llmc::kernels::quantRowBytes(format, dim, group, asym)
                    : llmc::kernels::isSparseFormat(format)
                        ? llmc::kernels::sparseRowBytes(format, dim)
                        : static_cast<size_t>(dim) *
                              (format == LLMC_FORMAT_F32 ? 4 : 2);
  for (int64_t i = 0; i < n; ++i) {
    const char *row = static_cast<const char *>(table) +
                      static_cast<size_t>(ids[i]) * rowBytes;
    if (llmc::kernels::isSparseFormat(format)) {
      llmc::kernels::unpackSparseRow(reinterpret_cast<const uint8_t *>(row),
                                     dim, format, out + i * dim);
    } else if (quant) {
      llmc::kernels::dequantizeRow(reinterpret_cast<const uint8_t *>(row), dim,
                                   format, group, asym != 0, out + i * dim);
    } else {
      llmc::kernels::toFloat(row, format, dim, out + i * dim);
    }
  }
}

void llmc_k_rms_norm(llmc_exec *exec, const float *x, int64_t n, int64_t dim,
                     const void *w, int32_t format, float eps, float *out) {
  if (exec->gpu) {
    return exec->gpu->rmsNorm(x, n, dim, w, format, eps, out);
  }
  float *wf = grow(exec->normWeight, static_cast<size_t>(dim));
  llmc::kernels::toFloat(w, format, dim, wf);
  for (int64_t i = 0; i < n; ++i) {
    rmsNormRow(x + i * dim, dim, wf, eps, out + i * dim);
  }
}

void llmc_k_linear_split(llmc_exec *exec, const float *x, int64_t n,
                         int64_t in_dim, const void *w, int32_t format,
                         int32_t group, int32_t asym, int64_t out_dim,
                         const void *bias, int32_t bias_format, int64_t parts,
                         const int64_t *widths, float *const *ys) {
  if (exec->gpu) {
    return exec->gpu->linear(x, n, in_dim, w, format, group, asym, out_dim,
                             bias, bias_format, parts, widths, ys);
  }
  runLinear(exec, x, n, in_dim, w, format, group, asym != 0, out_dim, bias,
            bias_format, nullptr, 0, 0.0f, nullptr, 0,
            Outputs{parts, widths, ys});
}

void llmc_k_linear_fused(llmc_exec *exec, const float *x, int64_t n,
                         int64_t in_dim, const void *w, int32_t format,
                         int32_t group, int32_t asym, int64_t out_dim,
                         const void *bias, int32_t bias_format,
                         const void *norm, int32_t norm_format, float eps,
                         const float *residual, int64_t swiglu_block,
                         int64_t parts, const int64_t *widths,
                         float *const *ys) {
  // Fused linears are made for the CPU target only (compiler/Pipeline.cpp):
  // a GPU session never runs a program that calls this.
  runLinear(exec, x, n, in_dim, w, format, group, asym != 0, out_dim, bias,
            bias_format, norm, norm_format, eps, residual, swiglu_block,
            Outputs{parts, widths, ys});
}

void llmc_k_lm_head(llmc_exec *exec, const float *x, int64_t n, int64_t in_dim,
                    const void *w, int32_t format, int32_t group, int32_t asym,
                    int64_t vocab, const void *norm, int32_t norm_format,
                    float eps, float *logits) {
  if (exec->gpu) {
    // The GPU target never fuses the norm (compiler/Pipeline.cpp; lowering
    // refuses a fused one for it), and finds its argmax on the device from
    // the logits.
    assert(!norm && "an LM head's fused norm has no GPU kernel");
    return llmc_k_linear(exec, x, n, in_dim, w, format, group, asym, vocab,
                         nullptr, 0, logits);
  }
  runLinear(exec, x, n, in_dim, w, format, group, asym != 0, vocab, nullptr, 0,
            norm, norm_format, eps, nullptr, 0, Outputs{1, &vocab, &logits},
            exec->argmaxOnly && n == 1);
}

void llmc_k_linear(llmc_exec *exec, const float *x, int64_t n, int64_t in_dim,
                   const void *w, int32_t format, int32_t group, int32_t asym,
                   int64_t out_dim, const void *bias, int32_t bias_format,
                   float *y) {
  llmc_k_linear_split(exec, x, n, in_dim, w, format, group, asym, out_dim,
                      bias, bias_format, 1, &out_dim, &y);
}

void llmc_k_rope(llmc_exec *exec, const float *x, float *y, int64_t n,
                 int64_t heads, int64_t head_dim, float theta, int64_t start) {
  if (exec->gpu) {
    // The GPU reads the position from device memory, so that one captured
    // decode step serves every position.
    return exec->gpu->rope(x, y, n, heads, head_dim, theta);
  }
  ropeAngles(exec, n, head_dim, theta, start);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < heads; ++h) {
      ropeHead(exec, i, head_dim, x + (i * heads + h) * head_dim,
               y + (i * heads + h) * head_dim);
    }
  }
}

void llmc_k_attention(llmc_exec *exec, int64_t layer, const float *q,
                      const float *k, const float *v, int64_t n, int64_t start,
                      int64_t heads, int64_t kv_heads, int64_t head_dim,
                      float *out) {
  if (exec->gpu) {
    return exec->gpu->attention(layer, q, k, v, n, heads, kv_heads, head_dim,
                                out);
  }
  attention(exec, layer, q, k, v, n, start, heads, kv_heads, head_dim, 0.0f,
            out);
}

void llmc_k_attention_rope(llmc_exec *exec, int64_t layer, const float *q,
                           const float *k, const float *v, int64_t n,
                           int64_t start, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, float theta, float *out) {
  attention(exec, layer, q, k, v, n, start, heads, kv_heads, head_dim, theta,
            out);
}

void llmc_k_elementwise(llmc_exec *exec, int32_t op, const float *a,
                        const float *b, float *y, int64_t count) {
  if (exec->gpu) {
    return exec->gpu->elementwise(op, a, b, y, count);
  }
  auto silu = [](float x) { return x / (1.0f + std::exp(-x)); };
  switch (op) {
  case LLMC_EW_SILU:
    for (int64_t i = 0; i < count; ++i) y[i] = silu(a[i]);
    break;
  case LLMC_EW_MUL:
    for (int64_t i = 0; i < count; ++i) y[i] = a[i] * b[i];
    break;
  case LLMC_EW_ADD:
    for (int64_t i = 0; i < count; ++i) y[i] = a[i] + b[i];
    break;
  case LLMC_EW_SWIGLU:
    for (int64_t i = 0; i < count; ++i) y[i] = silu(a[i]) * b[i];
    break;
  default:
    break;
  }
}

} // extern "C"
