// The llmc_k_* kernels that compiled programs call: threading and data layout around the inner loops.
#include "runtime/core/exec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using llmc::kernels::KernelTable;

namespace {

// Activation rows processed per pass over a weight row block; sized so the
// block of x stays in L2 while the weights stream.
constexpr int64_t kTokenBlock = 64;

// Below this many multiply-adds a loop runs on the calling thread: waking
// workers costs more than the work.
constexpr int64_t kParallelWork = 1 << 15;

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
  /// Output columns j..j+r-1 of tokens t..t+m-1 from a kernel's tile
  /// (column i of token q at tile[i * rowStride + q * tokenStride]), plus
  /// the bias.
  void store(int64_t j, int r, int64_t t, int m, const float *tile,
             int rowStride, int tokenStride, const void *bias,
             int32_t biasFormat) const;
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

void Outputs::store(int64_t j, int r, int64_t t, int m, const float *tile,
                    int rowStride, int tokenStride, const void *bias,
                    int32_t biasFormat) const {
  for (int i = 0; i < r; ++i) {
    const float b = biasAt(bias, biasFormat, j + i);
    int64_t ld;
    float *col = column(j + i, ld);
    for (int q = 0; q < m; ++q) {
      col[(t + q) * ld] = tile[i * rowStride + q * tokenStride] + b;
    }
  }
}

/// Float weights: tiles of two weight rows by four activation rows.
void linearRows(const KernelTable &k, const float *x, int64_t n, int64_t in,
                const void *w, int32_t format, const void *bias,
                int32_t biasFormat, const Outputs &y, int64_t rowBegin,
                int64_t rowEnd) {
  float tile[8];
  for (int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
    int64_t t1 = std::min(n, t0 + kTokenBlock);
    for (int64_t j = rowBegin; j < rowEnd; j += 2) {
      int r = static_cast<int>(std::min<int64_t>(2, rowEnd - j));
      for (int64_t t = t0; t < t1; t += 4) {
        int m = static_cast<int>(std::min<int64_t>(4, t1 - t));
        const float *xr = x + t * in;
        switch (format) {
        case LLMC_FORMAT_S24:
        case LLMC_FORMAT_S24Q8:
        case LLMC_FORMAT_S24Q4: {
          const size_t rowBytes = llmc::kernels::sparseRowBytes(format, in);
          k.dotSparse(static_cast<const uint8_t *>(w) + j * rowBytes, rowBytes,
                      format, r, xr, in, m, in, tile);
          break;
        }
        case LLMC_FORMAT_F16:
          k.dotF16(static_cast<const uint16_t *>(w) + j * in, in, r, xr, in, m,
                   in, tile);
          break;
        case LLMC_FORMAT_BF16:
          k.dotBF16(static_cast<const uint16_t *>(w) + j * in, in, r, xr, in,
                    m, in, tile);
          break;
        default:
          k.dotF32(static_cast<const float *>(w) + j * in, in, r, xr, in, m,
                   in, tile);
          break;
        }
        y.store(j, r, t, m, tile, 4, 1, bias, biasFormat);
      }
    }
  }
}

/// f16x16 weights: each group of 16 rows (stored column by column) against
/// up to 8 tokens at a time; the rows past the last multiple of 16 are
/// row-major f16 and go through the row tiles. Units of work are groups.
void linearF16X16(llmc_exec *exec, const float *x, int64_t n, int64_t in,
                  const uint16_t *w, int64_t out, const void *bias,
                  int32_t biasFormat, const Outputs &y) {
  using llmc::kernels::kF16GroupRows;
  const KernelTable &k = *exec->k;
  const int64_t groups = out / kF16GroupRows;
  const int64_t tail = out - groups * kF16GroupRows;
  parallelFor(exec, groups + (tail > 0), n * in * out, [&](int64_t b, int64_t e, int) {
    if (e > groups) {
      linearRows(k, x, n, in, w, LLMC_FORMAT_F16, bias, biasFormat, y,
                 groups * kF16GroupRows, out);
      e = groups;
    }
    float tile[8 * kF16GroupRows];
    for (int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
      const int64_t t1 = std::min(n, t0 + kTokenBlock);
      for (int64_t u = b; u < e; ++u) {
        for (int64_t t = t0; t < t1; t += 8) {
          const int m = static_cast<int>(std::min<int64_t>(8, t1 - t));
          k.dotF16X16(w + u * kF16GroupRows * in, in, x + t * in, in, m, tile);
          y.store(u * kF16GroupRows, kF16GroupRows, t, m, tile, 1, kF16GroupRows,
                  bias, biasFormat);
        }
      }
    }
  });
}

/// Quantized weights: activations become int8 blocks once, then every
/// weight row is dotted against them in registers.
void linearQuant(llmc_exec *exec, const float *x, int64_t n, int64_t in,
                 const uint8_t *w, int32_t format, int32_t group, bool asym,
                 int64_t out, const void *bias, int32_t biasFormat,
                 const Outputs &y) {
  using namespace llmc::kernels;
  const int64_t groups = (in + group - 1) / group;
  const int64_t nb = groups * group / kQuantSubBlock;
  if (static_cast<int64_t>(exec->act.size()) < n * nb) {
    exec->act.resize(static_cast<size_t>(n * nb));
  }
  ActBlock *act = exec->act.data();
  parallelFor(exec, n, n * in * 4, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      quantizeActivations(x + t * in, in, nb, act + t * nb);
    }
  });
  const KernelTable &k = *exec->k;
  const int32_t rowFmt = rowFormat(format);
  auto dot = rowFmt == LLMC_FORMAT_Q8 ? k.dotQ8 : asym ? k.dotQ4Asym : k.dotQ4;
  const size_t rowBytes = quantRowBytes(format, in, group, asym);
  auto store = [&](int64_t j, int r, int64_t t, int m, const float *tile) {
    y.store(j, r, t, m, tile, 4, 1, bias, biasFormat);
  };
  if (isInterleavedFormat(format)) {
    // Units of work: each group of 8 interleaved rows, then the rows past
    // the last multiple of 8 (stored row by row) as one more unit.
    auto dotX8 = format == LLMC_FORMAT_Q8X8 ? k.dotQ8X8 : k.dotQ4X8;
    const int64_t groups = out / kInterleaveRows;
    const int64_t tail = out - groups * kInterleaveRows;
    const uint8_t *tailRows = w + groups * kInterleaveRows * rowBytes;
    parallelFor(exec, groups + (tail > 0), n * in * out, [&](int64_t b, int64_t e, int) {
      float tile[32];
      for (int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
        const int64_t t1 = std::min(n, t0 + kTokenBlock);
        for (int64_t u = b; u < e; ++u) {
          for (int64_t t = t0; t < t1; t += 4) {
            const int m = static_cast<int>(std::min<int64_t>(4, t1 - t));
            if (u < groups) {
              dotX8(w + u * kInterleaveRows * rowBytes, act + t * nb, nb, m,
                    group, tile);
              store(u * kInterleaveRows, kInterleaveRows, t, m, tile);
              continue;
            }
            for (int64_t i = 0; i < tail; ++i) {
              dot(tailRows + i * rowBytes, rowBytes, 1, act + t * nb, nb, m,
                  group, tile);
              store(groups * kInterleaveRows + i, 1, t, m, tile);
            }
          }
        }
      }
    });
    return;
  }
  // Two-row tiles pay off when several tokens share them (prefill); for a
  // single token (decode) they measured 35% slower than one row at a time.
  const int64_t tileRows = n == 1 ? 1 : 2;
  parallelFor(exec, out, n * in * out, [&](int64_t b, int64_t e, int) {
    float tile[8];
    for (int64_t t0 = 0; t0 < n; t0 += kTokenBlock) {
      int64_t t1 = std::min(n, t0 + kTokenBlock);
      for (int64_t j = b; j < e; j += tileRows) {
        int r = static_cast<int>(std::min<int64_t>(tileRows, e - j));
        for (int64_t t = t0; t < t1; t += 4) {
          int m = static_cast<int>(std::min<int64_t>(4, t1 - t));
          dot(w + j * rowBytes, rowBytes, r, act + t * nb, nb, m, group, tile);
          store(j, r, t, m, tile);
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
  std::vector<float> wf(static_cast<size_t>(dim));
  llmc::kernels::toFloat(w, format, dim, wf.data());
  for (int64_t i = 0; i < n; ++i) {
    const float *xr = x + i * dim;
    double ss = 0.0;
    for (int64_t j = 0; j < dim; ++j) {
      ss += static_cast<double>(xr[j]) * xr[j];
    }
    float scale = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    float *yr = out + i * dim;
    for (int64_t j = 0; j < dim; ++j) {
      yr[j] = wf[j] * (xr[j] * scale);
    }
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
  const KernelTable &k = *exec->k;
  const Outputs y{parts, widths, ys};
  if (format == LLMC_FORMAT_F16X16) {
    linearF16X16(exec, x, n, in_dim, static_cast<const uint16_t *>(w), out_dim,
                 bias, bias_format, y);
    return;
  }
  if (format == LLMC_FORMAT_Q8 || format == LLMC_FORMAT_Q4 ||
      llmc::kernels::isInterleavedFormat(format)) {
    linearQuant(exec, x, n, in_dim, static_cast<const uint8_t *>(w), format,
                group, asym != 0, out_dim, bias, bias_format, y);
    return;
  }
  parallelFor(exec, out_dim, n * in_dim * out_dim, [&](int64_t b, int64_t e, int) {
    linearRows(k, x, n, in_dim, w, format, bias, bias_format, y, b, e);
  });
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
  const int64_t half = head_dim / 2;
  std::vector<double> invFreq(static_cast<size_t>(half));
  for (int64_t j = 0; j < half; ++j) {
    invFreq[j] = std::pow(static_cast<double>(theta),
                          -2.0 * static_cast<double>(j) / head_dim);
  }
  std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
  for (int64_t i = 0; i < n; ++i) {
    double pos = static_cast<double>(start + i);
    for (int64_t j = 0; j < half; ++j) {
      cs[j] = static_cast<float>(std::cos(pos * invFreq[j]));
      sn[j] = static_cast<float>(std::sin(pos * invFreq[j]));
    }
    for (int64_t h = 0; h < heads; ++h) {
      const float *xr = x + (i * heads + h) * head_dim;
      float *yr = y + (i * heads + h) * head_dim;
      for (int64_t j = 0; j < half; ++j) {
        float a = xr[j], b = xr[j + half];
        yr[j] = a * cs[j] - b * sn[j];
        yr[j + half] = b * cs[j] + a * sn[j];
      }
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
  const int64_t ctx = exec->ctx, hd = head_dim;
  const size_t base = exec->layerOffset[layer];
  const bool half = exec->kvHalf;
  float *kc = half ? nullptr : exec->kCache.data() + base;
  float *vc = half ? nullptr : exec->vCache.data() + base;
  uint16_t *kh16 = half ? exec->kCacheH.data() + base : nullptr;
  uint16_t *vh16 = half ? exec->vCacheH.data() + base : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < kv_heads; ++h) {
      const size_t at = static_cast<size_t>((h * ctx + start + i) * hd);
      const float *kr = k + (i * kv_heads + h) * hd;
      const float *vr = v + (i * kv_heads + h) * hd;
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
      int64_t i = u / heads, h = u % heads, kvh = h / group;
      int64_t last = start + i;
      const float *qr = q + (i * heads + h) * hd;
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
