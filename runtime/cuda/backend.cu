// The CUDA backend: device layout of the weights, the kernels behind llmc_k_*, and decode steps replayed as one CUDA graph.
//
// Layout. Float weights (f32, f16, bf16) are the artifact's rows as they are.
// Block-quantized weights are re-laid out at load, row by row: each row is
// its codes (q8: one byte per element, q4: the artifact's 16-byte sub-blocks
// of 32 nibbles), then its group scales (f16; q4 asymmetric: (scale, min)
// pairs), padded to 16 bytes, so a warp reads a row's codes with coalesced
// 128-bit loads and the row's scales from the same lines.
//
// Decode (one token) multiplies with matrix-vector kernels: a block stages
// the activation row in shared memory (int8 blocks of 32 for q8/q4, as the
// CPU kernels quantize it), each warp streams four weight rows and sums with
// dp4a or FMAs; the norm before, and the residual add, SwiGLU or RoPE after,
// are fused in. Prefill (several tokens) multiplies through cuBLAS, or a
// tensor-core (WMMA) tile kernel that converts activations and dequantized
// weights to f16 in shared memory and accumulates in f32. Attention splits
// the context across blocks (flash-decoding) and merges the partial
// softmaxes.
//
// Position and tokens live in device memory, so the captured decode step
// (every kernel of one forward call) serves every position: a step is one
// 16-byte copy, one graph launch and, for greedy decoding, one argmax whose
// 4-byte result comes back.
#include "runtime/cuda/backend.h"

#include "runtime/core/synth.h"
#include "runtime/kernels/quant.h"

#include <cublas_api.h> // types only: the library is opened at run time
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <cmath>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

namespace llmc::cuda {
namespace {

// Positions per attention block: short for a decode step, which has one
// query row per head and needs the splits for parallelism; longer for a
// prefill, which has a row per token already.
constexpr int kDecodeChunk = 64, kPrefillChunk = 256;
constexpr int kMaxParts = 4;    // results of one split linear

// ---------------------------------------------------------------- layout

/// Bytes of one re-laid-out row of a block-quantized weight.
__host__ __device__ inline int64_t quantRowStride(int32_t format, int64_t cols,
                                                  int32_t group, int32_t asym) {
  int64_t groups = (cols + group - 1) / group;
  int64_t kp = groups * group;
  int64_t codes = format == LLMC_FORMAT_Q8 ? kp : kp / 2;
  int64_t scales = groups * 2 * (asym && format == LLMC_FORMAT_Q4 ? 2 : 1);
  return (codes + scales + 15) / 16 * 16;
}

__host__ __device__ inline int64_t quantCodeBytes(int32_t format, int64_t cols,
                                                  int32_t group) {
  int64_t kp = (cols + group - 1) / group * group;
  return format == LLMC_FORMAT_Q8 ? kp : kp / 2;
}

__device__ inline float loadFloat(const void *p, int32_t format, int64_t i) {
  if (format == LLMC_FORMAT_F32) {
    return static_cast<const float *>(p)[i];
  }
  if (format == LLMC_FORMAT_F16) {
    return __half2float(static_cast<const __half *>(p)[i]);
  }
  return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
}

/// Elements i..i+3 of an f32, f16 or bf16 tensor (16-byte aligned for
/// f32, 8-byte for the others).
__device__ inline float4 load4(const void *p, int32_t format, int64_t i) {
  if (format == LLMC_FORMAT_F32) {
    return *reinterpret_cast<const float4 *>(static_cast<const float *>(p) + i);
  }
  const uint2 raw = *reinterpret_cast<const uint2 *>(static_cast<const uint16_t *>(p) + i);
  float2 a, b;
  if (format == LLMC_FORMAT_F16) {
    __half2 lo, hi;
    memcpy(&lo, &raw.x, 4);
    memcpy(&hi, &raw.y, 4);
    a = __half22float2(lo);
    b = __half22float2(hi);
  } else {
    __nv_bfloat162 lo, hi;
    memcpy(&lo, &raw.x, 4);
    memcpy(&hi, &raw.y, 4);
    a = __bfloat1622float2(lo);
    b = __bfloat1622float2(hi);
  }
  return make_float4(a.x, a.y, b.x, b.y);
}

/// Element (row, col) of a weight of any format with `cols` columns.
__device__ inline float weightAt(const void *w, int32_t format, int32_t group,
                                 int32_t asym, int64_t cols, int64_t row,
                                 int64_t col) {
  if (format != LLMC_FORMAT_Q8 && format != LLMC_FORMAT_Q4) {
    return loadFloat(w, format, row * cols + col);
  }
  const uint8_t *r = static_cast<const uint8_t *>(w) +
                     row * quantRowStride(format, cols, group, asym);
  const __half *sc = reinterpret_cast<const __half *>(
      r + quantCodeBytes(format, cols, group));
  int64_t g = col / group;
  if (format == LLMC_FORMAT_Q8) {
    return __half2float(sc[g]) * static_cast<float>(static_cast<int8_t>(r[col]));
  }
  uint8_t b = r[(col / 32) * 16 + (col % 16)];
  int nib = (col % 32) < 16 ? (b & 15) : (b >> 4);
  if (asym) {
    return __half2float(sc[2 * g]) * nib + __half2float(sc[2 * g + 1]);
  }
  return __half2float(sc[g]) * (nib - 8);
}

// Where output column j of a (split) linear goes.
struct Outs {
  float *y[kMaxParts];
  int64_t begin[kMaxParts + 1];
  int parts;
  // Unrolled, so that no parameter array is indexed at run time (which
  // would copy the struct to local memory in every thread).
  __device__ __forceinline__ float *at(int64_t row, int64_t j) const {
    float *base = y[0];
    int64_t from = 0, w = begin[1];
#pragma unroll
    for (int p = 1; p < kMaxParts; ++p) {
      if (p < parts && j >= begin[p]) {
        base = y[p];
        from = begin[p];
        w = begin[p + 1] - begin[p];
      }
    }
    return base + row * w + (j - from);
  }
};

__device__ inline float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, o);
  }
  return v;
}

__device__ inline float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  }
  return v;
}

// ------------------------------------------------------------ synthesis

__global__ void fillFloatKernel(void *dst, int32_t format, uint64_t tensor,
                                int rank, int64_t rows, int64_t cols) {
  int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = synth::floatValue(tensor, rank, cols, i / cols, i % cols);
    if (format == LLMC_FORMAT_F32) {
      static_cast<float *>(dst)[i] = v;
    } else if (format == LLMC_FORMAT_F16) {
      static_cast<__half *>(dst)[i] = __float2half_rn(v);
    } else {
      static_cast<__nv_bfloat16 *>(dst)[i] = __float2bfloat16_rn(v);
    }
  }
}

__global__ void fillQuantKernel(uint8_t *dst, int32_t format, uint64_t tensor,
                                int64_t rows, int64_t cols, int32_t group,
                                int32_t asym) {
  const bool q8 = format == LLMC_FORMAT_Q8;
  const int64_t stride = quantRowStride(format, cols, group, asym);
  const int64_t codeBytes = quantCodeBytes(format, cols, group);
  const int64_t groups = (cols + group - 1) / group;
  const __half d = __float2half_rn(synth::quantScale(q8, cols));
  const __half m = __float2half_rn(-8.0f * __half2float(d));
  const int64_t total = rows * stride;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i / stride, b = i % stride;
    uint8_t *row = dst + r * stride;
    if (b < codeBytes) {
      if (q8) {
        row[b] = static_cast<uint8_t>(static_cast<int8_t>(
            synth::quantCode(tensor, true, false, cols, r, b)));
      } else {
        int64_t s = b / 16, j = b % 16;
        int lo = synth::quantCode(tensor, false, asym, cols, r, 32 * s + j);
        int hi = synth::quantCode(tensor, false, asym, cols, r, 32 * s + 16 + j);
        row[b] = static_cast<uint8_t>(lo | (hi << 4));
      }
    } else if ((b - codeBytes) % 2 == 0 &&
               (b - codeBytes) / 2 < groups * (asym ? 2 : 1)) {
      int64_t k = (b - codeBytes) / 2;
      __half v = asym && k % 2 == 1 ? m : d;
      memcpy(row + b, &v, 2);
    } else if (b >= codeBytes + groups * 2 * (asym ? 2 : 1)) {
      row[b] = 0;
    }
  }
}

// --------------------------------------------------------------- kernels

__global__ void embeddingKernel(const void *table, int32_t format,
                                int32_t group, int32_t asym, const int32_t *ids,
                                int64_t dim, float *out) {
  const int64_t i = blockIdx.x;
  const int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c < dim) {
    out[i * dim + c] = weightAt(table, format, group, asym, dim, ids[i], c);
  }
}

__global__ void rmsNormKernel(const float *x, int64_t dim, const void *w,
                              int32_t format, float eps, float *out) {
  __shared__ float part[32];
  const float *xr = x + blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    ss += xr[c] * xr[c];
  }
  ss = warpSum(ss);
  if (threadIdx.x % 32 == 0) {
    part[threadIdx.x / 32] = ss;
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
    v = warpSum(v);
    if (threadIdx.x == 0) {
      part[0] = rsqrtf(v / static_cast<float>(dim) + eps);
    }
  }
  __syncthreads();
  float scale = part[0];
  float *yr = out + blockIdx.x * dim;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    yr[c] = loadFloat(w, format, c) * (xr[c] * scale);
  }
}

__device__ inline void storeOut(const Outs &o, int64_t row, int64_t j, float v,
                                const void *bias, int32_t biasFormat) {
  if (bias) {
    v += loadFloat(bias, biasFormat, j);
  }
  *o.at(row, j) = v;
}

// Matrix-vector kernels (decode). A team of two warps owns R = 4 output
// rows at a time, each warp streaming half of the rows' 16-byte chunks
// (coalesced 128-bit loads, kGemvUnroll a row and lane in flight); the
// team's two partial sums meet in shared memory. What keeps the loads going
// (measured by bench/gpu/gemv_micro.cu, docs/PERFORMANCE.md):
//  - a warp issues its first weight loads (and their scales) before
//    anything that depends on the previous kernel: under programmatic
//    dependent launch (sm_90) they overlap that kernel's tail;
//  - nothing stands between those loads and the sums: the activation row
//    is prepared once, by gemvPrepKernel (the fused RMSNorm, and the int8
//    quantization for q8/q4), and read through L1 by every warp. Staging it
//    in each block's shared memory had cost every block a serial prologue
//    over the whole row;
//  - two warps a row group: twice the warps in flight for products with
//    few rows (o, down), and half the chunks a warp walks in a long row;
//  - the epilogue takes in what would be launches of their own: the
//    residual add, SwiGLU (the group's rows are two gate rows and the two
//    matching up rows) and RoPE (two rotation pairs of one head).
constexpr int kGemvWarps = 8;
constexpr int kGemvSplit = 2;  // warps of a team (LLMC_CUDA_GEMV_SPLIT=1: one)
constexpr int kGemvUnroll = 4; // 16-byte chunks per lane per row in flight
constexpr int kGemvR = 4;      // rows per warp

/// Waits for the kernel this one was launched after (programmatic
/// dependent launch), and lets the next one launch: no-ops before sm_90 or
/// when launched without the attribute.
__device__ inline void pdlWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ inline void pdlLaunchNext() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// What a matrix-vector kernel fuses: the RMSNorm before it (done by
/// gemvPrepKernel, which also writes the normalized row to `normOut` for
/// any other reader), and after
/// it the residual add (y + `resid` also goes to `residOut`), SwiGLU (rows
/// [0, F) gate and [F, 2F) up; silu(gate) * up to `swiglu`; `raw0`,
/// `raw1`: gate and up are written as well) or RoPE of the first one or two
/// results (heads of `headDim`; the rotated values to `rot0` and `rot1`,
/// which may reuse the space of the norm's output or of the results: what
/// a later write of the unfused order covers is not written). Scalars
/// rather than arrays, so that the kernel indexes no parameter array.
struct Fuse {
  const void *normW = nullptr; // null: no norm
  int32_t normFormat = 0;
  float eps = 0.0f;
  float *normOut = nullptr;
  const float *resid = nullptr; // null: no residual
  float *residOut = nullptr;
  float *swiglu = nullptr; // null: no SwiGLU
  int64_t ropeRows = 0;    // 0: no RoPE; else rows [0, ropeRows) rotate
  int64_t headDim = 0, rotBegin1 = 0; // rows of the second rotated result
  float *rot0 = nullptr, *rot1 = nullptr;
  int64_t rot0Len = 0, rot1Len = 0;
  float theta = 0.0f;
  const int64_t *pos = nullptr;
  // cos, sin of every (position, pair) as the CPU computes them; null: the
  // kernel computes them itself (in double precision, as ropeKernel).
  const float2 *ropeCS = nullptr;
  bool raw0 = true, raw1 = true; // per result (SwiGLU: gate, up)
};

/// Lane p's (< 2) cos and sin for warp group g of a RoPE product, loaded
/// with the group's first weights so that the epilogue does not wait for
/// them.
__device__ __forceinline__ float2 ropeCs(int64_t g, const Fuse &f, int64_t pos, int lane) {
  if (!f.ropeCS || g >= f.ropeRows / 4 || lane >= 2) {
    return make_float2(1.0f, 0.0f);
  }
  const int64_t half = f.headDim / 2, perHead = half / 2;
  return __ldg(f.ropeCS + pos * half + 2 * (g % perHead) + lane);
}

/// Whether a RoPE output written after p (in the unfused order) covers p.
__device__ __forceinline__ bool laterRope(const float *p, const float *r, int64_t len) {
  return r && p >= r && p < r + len;
}

/// Stores an unfused result of a RoPE product unless a rotation covers it.
__device__ __forceinline__ void storeRaw(float *p, float v, const Fuse &f) {
  if (!laterRope(p, f.rot0, f.rot0Len) && !laterRope(p, f.rot1, f.rot1Len)) {
    *p = v;
  }
}

/// Warp groups of a product with `outDim` rows under `f`.
__host__ __device__ inline int64_t gemvGroups(int64_t outDim, const Fuse &f) {
  if (f.swiglu) {
    return outDim / 4; // (2 gate + 2 up) rows; outDim % 4 == 0
  }
  return f.ropeRows / 4 + (outDim - f.ropeRows + kGemvR - 1) / kGemvR;
}

/// The four rows of warp group `g` (clamped to the last row past outDim).
__device__ __forceinline__ void gemvRows(int64_t g, int64_t outDim, const Fuse &f,
                                int64_t rows[kGemvR]) {
  if (f.swiglu) {
    const int64_t F = outDim / 2;
    rows[0] = 2 * g;
    rows[1] = 2 * g + 1;
    rows[2] = F + 2 * g;
    rows[3] = F + 2 * g + 1;
    return;
  }
  if (g < f.ropeRows / 4) {
    // Rotation pairs (j, j + half) and (j + 1, j + 1 + half) of one head.
    const int64_t half = f.headDim / 2, perHead = half / 2;
    const int64_t base = (g / perHead) * f.headDim, j = 2 * (g % perHead);
    rows[0] = base + j;
    rows[1] = base + j + 1;
    rows[2] = base + half + j;
    rows[3] = base + half + j + 1;
    return;
  }
  const int64_t r0 = f.ropeRows + (g - f.ropeRows / 4) * kGemvR;
  for (int r = 0; r < kGemvR; ++r) {
    rows[r] = r0 + r < outDim ? r0 + r : outDim - 1;
  }
}

/// Writes warp group g's results: lane r (< 4) takes row r, or pair r
/// (< 2) of a SwiGLU or RoPE group. `v` holds the four row sums, already
/// scaled.
__device__ __forceinline__ void gemvStore(int64_t g, const int64_t rows[kGemvR],
                                 const float v[kGemvR], int64_t outDim,
                                 const Outs &outs, const Fuse &f,
                                 const void *bias, int32_t biasFormat, int lane,
                                 float2 rcs) {
  float b[kGemvR];
  for (int r = 0; r < kGemvR; ++r) {
    b[r] = v[r] + (bias ? loadFloat(bias, biasFormat, rows[r]) : 0.0f);
  }
  const bool pairs = f.swiglu || g < f.ropeRows / 4;
  if (!pairs) {
    const int64_t r0 = f.ropeRows + (g - f.ropeRows / 4) * kGemvR;
    for (int r = 0; r < kGemvR; ++r) {
      if (lane == r && r0 + r < outDim) {
        storeRaw(outs.at(0, r0 + r), b[r], f);
        if (f.resid) {
          f.residOut[r0 + r] = b[r] + f.resid[r0 + r];
        }
      }
    }
    return;
  }
  for (int p = 0; p < 2; ++p) {
    if (lane != p) {
      continue;
    }
    const float a = b[p], c = b[p + 2];
    if (f.swiglu) {
      if (f.raw0) {
        *outs.at(0, rows[p]) = a;
      }
      if (f.raw1) {
        *outs.at(0, rows[p + 2]) = c;
      }
      // As elementwiseKernel's SWIGLU.
      f.swiglu[rows[p]] = a / (1.0f + expf(-a)) * c;
      continue;
    }
    const bool second = rows[p] >= f.rotBegin1;
    storeRaw(outs.at(0, rows[p]), a, f);
    storeRaw(outs.at(0, rows[p + 2]), c, f);
    float fc = rcs.x, fs = rcs.y;
    if (!f.ropeCS) {
      // As ropeKernel: the angle in double precision.
      const int64_t j = rows[p] % f.headDim;
      const double inv = exp2(-2.0 * static_cast<double>(j) /
                              static_cast<double>(f.headDim) *
                              log2(static_cast<double>(f.theta)));
      double sn, cs;
      sincos(static_cast<double>(*f.pos) * inv, &sn, &cs);
      fc = static_cast<float>(cs);
      fs = static_cast<float>(sn);
    }
    float *y = second ? f.rot1 + (rows[p] - f.rotBegin1) : f.rot0 + rows[p];
    float *y2 = y + f.headDim / 2;
    // The second rotation is written after the first.
    if (second || !laterRope(y, f.rot1, f.rot1Len)) {
      *y = a * fc - c * fs;
    }
    if (second || !laterRope(y2, f.rot1, f.rot1Len)) {
      *y2 = c * fc + a * fs;
    }
  }
}

/// The activation row of one decode product, prepared once for all its
/// blocks by gemvPrepKernel: for q8/q4 weights int8 codes in blocks of 32
/// with each block's scale and code sum, else the f32 row.
struct GemvRow {
  const int8_t *q = nullptr; // kp codes (0 past the row)
  const float *d = nullptr;  // kp / 32 scales
  const int *s = nullptr;    // kp / 32 code sums
  const float *f = nullptr;  // the f32 row
};

constexpr int kPrepThreads = 256; // eight elements a thread

/// Prepares a decode product's activation row: RMSNorm'd when one is fused
/// (normW * (x * 1/rms), as rmsNormKernel; also written to normOut for the
/// norm's other readers), then quantized to int8 blocks of 32 for q8/q4
/// weights (as the CPU's quantizeActivations: x * (1 / d), rounded to even)
/// or stored as f32. Every block reduces the whole row's sum of squares
/// itself (a few KB from L2) rather than waiting for one another.
template <bool QUANT>
__global__ void __launch_bounds__(kPrepThreads)
    gemvPrepKernel(const float *x, int64_t cols, int64_t kp, const void *normW,
                   int32_t normFormat, float eps, float *normOut, int8_t *q,
                   float *qd, int *qs, float *xf) {
  __shared__ float part[kPrepThreads / 32];
  pdlLaunchNext();
  const int64_t base = (int64_t(blockIdx.x) * kPrepThreads + threadIdx.x) * 8;
  // The norm weight is a weight: loaded before the wait. The thread's own
  // eight elements are loaded with the sum of squares' first loads.
  float nw[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    nw[k] = normW && base + k < cols ? loadFloat(normW, normFormat, base + k) : 1.0f;
  }
  pdlWait();
  float v[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    v[k] = base + k < cols ? x[base + k] : 0.0f;
  }
  if (normW) {
    float ss = 0.0f;
    const int64_t vecEnd = reinterpret_cast<uintptr_t>(x) % 16 == 0 ? cols / 4 * 4 : 0;
#pragma unroll 4
    for (int64_t c = 4 * threadIdx.x; c < vecEnd; c += 4 * kPrepThreads) {
      const float4 t = *reinterpret_cast<const float4 *>(x + c);
      ss += t.x * t.x + t.y * t.y + t.z * t.z + t.w * t.w;
    }
    for (int64_t c = vecEnd + threadIdx.x; c < cols; c += kPrepThreads) {
      ss += x[c] * x[c];
    }
    ss = warpSum(ss);
    if (threadIdx.x % 32 == 0) {
      part[threadIdx.x / 32] = ss;
    }
    __syncthreads();
    float tot = 0.0f;
#pragma unroll
    for (int w = 0; w < kPrepThreads / 32; ++w) {
      tot += part[w];
    }
    const float scale = rsqrtf(tot / static_cast<float>(cols) + eps);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      v[k] = nw[k] * (v[k] * scale);
    }
  }
  if (normOut) {
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      if (base + k < cols) {
        normOut[base + k] = v[k];
      }
    }
  }
  if (!QUANT) {
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      if (base + k < cols) {
        xf[base + k] = v[k];
      }
    }
    return;
  }
  // Four threads a block of 32; the grid covers whole warps, so every lane
  // takes part in the shuffles.
  float amax = 0.0f;
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    amax = fmaxf(amax, fabsf(v[k]));
  }
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
  const float d = amax / 127.0f;
  const float inv = d != 0.0f ? 1.0f / d : 0.0f;
  int sum = 0;
  uint32_t packed[2] = {0, 0};
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const int c = __float2int_rn(v[k] * inv);
    sum += c;
    packed[k / 4] |= (static_cast<uint32_t>(c) & 0xFFu) << (8 * (k % 4));
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  if (base < kp) {
    *reinterpret_cast<uint2 *>(q + base) = make_uint2(packed[0], packed[1]);
    if (threadIdx.x % 4 == 0) {
      qd[base / 32] = d;
      qs[base / 32] = sum;
    }
  }
}

/// Sums a team's partial row sums: warp k of each team of KS holds v (its
/// own columns' sums); afterwards every warp of the team holds the total.
/// Called by the whole block (its barriers).
template <int KS>
__device__ __forceinline__ void teamSum(float v[kGemvR], float *red, int warp, int lane) {
  if (KS == 1) {
    return;
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < kGemvR; ++r) {
      red[warp * kGemvR + r] = v[r];
    }
  }
  __syncthreads();
  const int first = warp / KS * KS;
#pragma unroll
  for (int r = 0; r < kGemvR; ++r) {
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < KS; ++j) {
      s += red[(first + j) * kGemvR + r];
    }
    v[r] = s;
  }
  __syncthreads();
}

/// Ends a team's warp group g: the warps' sums, the team's total, and the
/// first warp's stores (gemvStore). Called by the whole block.
template <int KS>
__device__ __forceinline__ void gemvGroupEnd(int64_t g, int64_t groups,
                                             const float acc[kGemvR], float *red,
                                             int warp, int lane, int64_t outDim,
                                             const Outs &outs, const Fuse &fuse,
                                             const void *bias, int32_t biasFormat,
                                             float2 rcs) {
  float v[kGemvR];
#pragma unroll
  for (int r = 0; r < kGemvR; ++r) {
    v[r] = warpSum(acc[r]);
  }
  teamSum<KS>(v, red, warp, lane);
  if (g < groups && warp % KS == 0) {
    int64_t rows[kGemvR];
    gemvRows(g, outDim, fuse, rows);
    gemvStore(g, rows, v, outDim, outs, fuse, bias, biasFormat, lane, rcs);
  }
}

/// One activation row (prepared: int8 blocks of 32) times block-quantized
/// rows, dp4a sums. Teams of KS warps own a warp group (4 rows); warp k of
/// a team takes the 16-byte chunks lane + 32 * (k + KS * j) of each row.
/// The loop over warp groups has the same trip count in every team of a
/// block, for teamSum's barriers.
template <int FMT, bool ASYM, int KS>
__global__ void __launch_bounds__(kGemvWarps * 32, 2)
    gemvQuantKernel(const uint8_t *w, int64_t cols, int32_t group,
                    int64_t outDim, GemvRow xr, const void *bias,
                    int32_t biasFormat, Outs outs, Fuse fuse) {
  __shared__ float red[kGemvWarps * kGemvR];
  pdlLaunchNext();
  const int64_t kp = (cols + group - 1) / group * group;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  constexpr int kTeams = kGemvWarps / KS;
  const int team = warp / KS, k = warp % KS;
  const int64_t stride = quantRowStride(FMT, cols, group, ASYM);
  const int64_t codeBytes = quantCodeBytes(FMT, cols, group);
  const int64_t groups = gemvGroups(outDim, fuse);
  // q4: a 16-byte chunk is one sub-block of 32 elements; q8: half a block.
  constexpr int kElems = FMT == LLMC_FORMAT_Q4 ? 32 : 16;
  const int64_t chunks = kp / kElems;
  const int64_t cFirst = lane + 32 * k;
  const int64_t gEnd = (groups + kTeams - 1) / kTeams * kTeams;

  int64_t g = int64_t(blockIdx.x) * kTeams + team;
  const uint8_t *rp[kGemvR];
  uint4 wv[kGemvUnroll][kGemvR];
  // Each chunk's group scale (and minimum) is loaded with its codes: the
  // scales lie past the row's codes, in lines the code loads do not bring.
  using Scale = typename std::conditional<ASYM, __half2, __half>::type;
  Scale sv[kGemvUnroll][kGemvR];
#define LLMC_GEMV_ROWS()                                                       \
  do {                                                                         \
    int64_t rows_[kGemvR];                                                     \
    gemvRows(g, outDim, fuse, rows_);                                          \
    _Pragma("unroll") for (int r = 0; r < kGemvR; ++r) {                       \
      rp[r] = w + rows_[r] * stride;                                           \
    }                                                                          \
    rcs = ropeCs(g, fuse, pos0, lane);                                         \
  } while (0)
#define LLMC_GEMV_LOAD(c0)                                                     \
  _Pragma("unroll") for (int u = 0; u < kGemvUnroll; ++u) {                    \
    const int64_t c_ = (c0) + 32 * KS * u;                                     \
    if (c_ < chunks) {                                                         \
      const int64_t gi_ = (kElems * c_) / group;                               \
      _Pragma("unroll") for (int r = 0; r < kGemvR; ++r) {                     \
        wv[u][r] = __ldg(reinterpret_cast<const uint4 *>(rp[r]) + c_);         \
        sv[u][r] = __ldg(reinterpret_cast<const Scale *>(rp[r] + codeBytes) + gi_); \
      }                                                                        \
    }                                                                          \
  }
  // The first loads need nothing from the previous kernels.
  // The position is the host's (written before the step), not a kernel's.
  const int64_t pos0 = fuse.ropeCS ? *fuse.pos : 0;
  float2 rcs = make_float2(1.0f, 0.0f);
  if (g < groups) {
    LLMC_GEMV_ROWS();
    LLMC_GEMV_LOAD(cFirst);
  }
  pdlWait();
  bool loaded = true;
  for (; g < gEnd; g += int64_t(gridDim.x) * kTeams) {
    float acc[kGemvR] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (g < groups) {
      if (!loaded) {
        LLMC_GEMV_ROWS();
      }
      for (int64_t c0 = cFirst; c0 < chunks; c0 += 32 * KS * kGemvUnroll) {
        if (!loaded) {
          LLMC_GEMV_LOAD(c0);
        }
        loaded = false;
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u) {
          const int64_t c = c0 + 32 * KS * u;
          if (c < chunks) {
            if (FMT == LLMC_FORMAT_Q4) {
              const int4 xl = __ldg(reinterpret_cast<const int4 *>(xr.q + 32 * c));
              const int4 xh = __ldg(reinterpret_cast<const int4 *>(xr.q + 32 * c + 16));
              const float dx = __ldg(xr.d + c);
              const int sx = __ldg(xr.s + c);
              const int lo[4] = {xl.x, xl.y, xl.z, xl.w};
              const int hi[4] = {xh.x, xh.y, xh.z, xh.w};
#pragma unroll
              for (int r = 0; r < kGemvR; ++r) {
                const uint32_t wd[4] = {wv[u][r].x, wv[u][r].y, wv[u][r].z, wv[u][r].w};
                int dot = 0;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                  dot = __dp4a(static_cast<int>(wd[j] & 0x0F0F0F0Fu), lo[j], dot);
                  dot = __dp4a(static_cast<int>((wd[j] >> 4) & 0x0F0F0F0Fu), hi[j], dot);
                }
                if constexpr (ASYM) {
                  acc[r] += dx * (__low2float(sv[u][r]) * static_cast<float>(dot) +
                                  __high2float(sv[u][r]) * static_cast<float>(sx));
                } else {
                  acc[r] += dx * __half2float(sv[u][r]) * static_cast<float>(dot - 8 * sx);
                }
              }
            } else {
              const int4 xv = __ldg(reinterpret_cast<const int4 *>(xr.q + 16 * c));
              const float dx = __ldg(xr.d + c / 2);
              const int xi[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
              for (int r = 0; r < kGemvR; ++r) {
                const int wd[4] = {static_cast<int>(wv[u][r].x), static_cast<int>(wv[u][r].y),
                                   static_cast<int>(wv[u][r].z), static_cast<int>(wv[u][r].w)};
                int dot = 0;
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                  dot = __dp4a(wd[j], xi[j], dot);
                }
                if constexpr (!ASYM) {
                  acc[r] += dx * __half2float(sv[u][r]) * static_cast<float>(dot);
                }
              }
            }
          }
        }
      }
    }
    loaded = false;
    gemvGroupEnd<KS>(g, groups, acc, red, warp, lane, outDim, outs, fuse, bias,
                     biasFormat, rcs);
  }
#undef LLMC_GEMV_LOAD
#undef LLMC_GEMV_ROWS
}

/// One activation row (f32: prepared, or the product's own input) times
/// float rows; teams as gemvQuantKernel's, 16-byte chunks of 8 (f16, bf16)
/// or 4 (f32) elements.
template <int FMT, int KS>
__global__ void __launch_bounds__(kGemvWarps * 32, 2)
    gemvFloatKernel(const void *w, int64_t cols, int64_t outDim, const float *x,
                    const void *bias, int32_t biasFormat, Outs outs, Fuse fuse) {
  __shared__ float red[kGemvWarps * kGemvR];
  pdlLaunchNext();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  constexpr int kTeams = kGemvWarps / KS;
  const int team = warp / KS, k = warp % KS;
  constexpr int kPer = FMT == LLMC_FORMAT_F32 ? 4 : 8; // elements per 16 bytes
  constexpr int kBytes = FMT == LLMC_FORMAT_F32 ? 4 : 2;
  const int64_t groups = gemvGroups(outDim, fuse);
  // 128-bit loads where rows are whole chunks (and x is 16-byte aligned:
  // the host sees to it), else element by element.
  const bool vec = cols % kPer == 0;
  const int64_t chunks = vec ? cols / kPer : 0;
  const auto *wb = static_cast<const uint8_t *>(w);
  const int64_t cFirst = lane + 32 * k;
  const int64_t gEnd = (groups + kTeams - 1) / kTeams * kTeams;

  int64_t g = int64_t(blockIdx.x) * kTeams + team;
  const uint4 *rp[kGemvR];
  uint4 wv[kGemvUnroll][kGemvR];
#define LLMC_GEMV_ROWS()                                                       \
  do {                                                                         \
    int64_t rows_[kGemvR];                                                     \
    gemvRows(g, outDim, fuse, rows_);                                          \
    _Pragma("unroll") for (int r = 0; r < kGemvR; ++r) {                       \
      rp[r] = reinterpret_cast<const uint4 *>(wb + rows_[r] * cols * kBytes);  \
    }                                                                          \
    rcs = ropeCs(g, fuse, pos0, lane);                                         \
  } while (0)
#define LLMC_GEMV_LOAD(c0)                                                     \
  _Pragma("unroll") for (int u = 0; u < kGemvUnroll; ++u) {                    \
    if ((c0) + 32 * KS * u < chunks) {                                         \
      _Pragma("unroll") for (int r = 0; r < kGemvR; ++r) {                     \
        wv[u][r] = __ldg(rp[r] + (c0) + 32 * KS * u);                          \
      }                                                                        \
    }                                                                          \
  }
  // The position is the host's (written before the step), not a kernel's.
  const int64_t pos0 = fuse.ropeCS ? *fuse.pos : 0;
  float2 rcs = make_float2(1.0f, 0.0f);
  if (g < groups) {
    LLMC_GEMV_ROWS();
    LLMC_GEMV_LOAD(cFirst);
  }
  pdlWait();
  bool loaded = true;
  for (; g < gEnd; g += int64_t(gridDim.x) * kTeams) {
    float acc[kGemvR] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (g < groups) {
      if (!loaded) {
        LLMC_GEMV_ROWS();
      }
      for (int64_t c0 = cFirst; c0 < chunks; c0 += 32 * KS * kGemvUnroll) {
        if (!loaded) {
          LLMC_GEMV_LOAD(c0);
        }
        loaded = false;
#pragma unroll
        for (int u = 0; u < kGemvUnroll; ++u) {
          const int64_t c = c0 + 32 * KS * u;
          if (c < chunks) {
            const float4 *xv = reinterpret_cast<const float4 *>(x + c * kPer);
            if (FMT == LLMC_FORMAT_F32) {
              const float4 a = __ldg(xv);
#pragma unroll
              for (int r = 0; r < kGemvR; ++r) {
                const uint4 q = wv[u][r];
                acc[r] += __uint_as_float(q.x) * a.x + __uint_as_float(q.y) * a.y +
                          __uint_as_float(q.z) * a.z + __uint_as_float(q.w) * a.w;
              }
            } else {
              const float4 a = __ldg(xv), b = __ldg(xv + 1);
#pragma unroll
              for (int r = 0; r < kGemvR; ++r) {
                const uint32_t q[4] = {wv[u][r].x, wv[u][r].y, wv[u][r].z, wv[u][r].w};
                float2 f[4];
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                  if (FMT == LLMC_FORMAT_F16) {
                    __half2 h;
                    memcpy(&h, &q[j], 4);
                    f[j] = __half22float2(h);
                  } else {
                    __nv_bfloat162 h;
                    memcpy(&h, &q[j], 4);
                    f[j] = __bfloat1622float2(h);
                  }
                }
                acc[r] += f[0].x * a.x + f[0].y * a.y + f[1].x * a.z + f[1].y * a.w +
                          f[2].x * b.x + f[2].y * b.y + f[3].x * b.z + f[3].y * b.w;
              }
            }
          }
        }
      }
      if (!vec) {
        int64_t rows[kGemvR];
        gemvRows(g, outDim, fuse, rows);
        for (int64_t c = cFirst; c < cols; c += 32 * KS) {
          const float xc = x[c];
#pragma unroll
          for (int r = 0; r < kGemvR; ++r) {
            acc[r] += loadFloat(w, FMT, rows[r] * cols + c) * xc;
          }
        }
      }
    }
    loaded = false;
    gemvGroupEnd<KS>(g, groups, acc, red, warp, lane, outDim, outs, fuse, bias,
                     biasFormat, rcs);
  }
#undef LLMC_GEMV_LOAD
#undef LLMC_GEMV_ROWS
}

// Tensor-core tiles for several activation rows: a block computes BM rows
// by BN output columns, BK columns of the inner dimension at a time.
constexpr int kBM = 64, kBN = 128, kBK = 32, kPad = 8;
constexpr int kGemmThreads = 256; // 8 warps: 2 x 4, each 32 x 32

template <int FMT>
__device__ inline void loadWeightTile(const void *w, int32_t group,
                                      int32_t asym, int64_t cols,
                                      int64_t outDim, int64_t n0, int64_t k0,
                                      __half (*bs)[kBK + kPad]) {
  // Two threads per weight row, 16 elements each.
  const int r = threadIdx.x / 2, h = threadIdx.x % 2;
  const int64_t row = n0 + r;
  __half *dst = &bs[r][h * 16];
  if (row >= outDim) {
    for (int j = 0; j < 16; ++j) {
      dst[j] = __float2half(0.0f);
    }
    return;
  }
  if (FMT == LLMC_FORMAT_Q4 || FMT == LLMC_FORMAT_Q8) {
    const int64_t kp = (cols + group - 1) / group * group;
    const uint8_t *rp = static_cast<const uint8_t *>(w) +
                        row * quantRowStride(FMT, cols, group, asym);
    const __half *sc = reinterpret_cast<const __half *>(
        rp + quantCodeBytes(FMT, cols, group));
    if (k0 >= kp) {
      for (int j = 0; j < 16; ++j) {
        dst[j] = __float2half(0.0f);
      }
      return;
    }
    const int64_t g = k0 / group;
    if (FMT == LLMC_FORMAT_Q4) {
      uint4 v = __ldg(reinterpret_cast<const uint4 *>(rp + k0 / 2));
      const uint8_t *b = reinterpret_cast<const uint8_t *>(&v);
      float d = asym ? __half2float(sc[2 * g]) : __half2float(sc[g]);
      float m = asym ? __half2float(sc[2 * g + 1]) : -8.0f * d;
      for (int j = 0; j < 16; ++j) {
        int nib = h == 0 ? (b[j] & 15) : (b[j] >> 4);
        dst[j] = __float2half(d * nib + m);
      }
    } else {
      uint4 v = __ldg(reinterpret_cast<const uint4 *>(rp + k0 + 16 * h));
      const int8_t *q = reinterpret_cast<const int8_t *>(&v);
      float d = __half2float(sc[g]);
      for (int j = 0; j < 16; ++j) {
        dst[j] = __float2half(d * q[j]);
      }
    }
    return;
  }
  const int64_t c0 = k0 + 16 * h;
  if (FMT != LLMC_FORMAT_F32 && cols % 8 == 0 && c0 + 16 <= cols) {
    // Two 128-bit loads of 8 halves.
    const uint4 *src = reinterpret_cast<const uint4 *>(
        static_cast<const uint8_t *>(w) + (row * cols + c0) * 2);
    for (int v = 0; v < 2; ++v) {
      uint4 u = __ldg(src + v);
      if (FMT == LLMC_FORMAT_F16) {
        memcpy(dst + 8 * v, &u, 16);
      } else {
        const __nv_bfloat162 *b = reinterpret_cast<const __nv_bfloat162 *>(&u);
        for (int j = 0; j < 4; ++j) {
          float2 f = __bfloat1622float2(b[j]);
          dst[8 * v + 2 * j] = __float2half(f.x);
          dst[8 * v + 2 * j + 1] = __float2half(f.y);
        }
      }
    }
    return;
  }
  for (int j = 0; j < 16; ++j) {
    int64_t c = c0 + j;
    dst[j] = __float2half(c < cols ? loadFloat(w, FMT, row * cols + c) : 0.0f);
  }
}

template <int FMT>
__global__ void __launch_bounds__(kGemmThreads)
    gemmKernel(const float *x, int64_t n, const void *w, int32_t group,
               int32_t asym, int64_t cols, int64_t outDim, const void *bias,
               int32_t biasFormat, Outs outs) {
  using namespace nvcuda;
  __shared__ __align__(32) __half as[kBM][kBK + kPad];
  __shared__ __align__(32) __half bs[kBN][kBK + kPad];
  __shared__ __align__(32) float cs[kBM][kBN + 4];
  const int64_t m0 = int64_t(blockIdx.y) * kBM, n0 = int64_t(blockIdx.x) * kBN;
  const int warp = threadIdx.x / 32;
  const int wm = warp / 4, wn = warp % 4; // 2 x 4 warps of 32 x 32
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      wmma::fill_fragment(acc[i][j], 0.0f);
    }
  }
  for (int64_t k0 = 0; k0 < cols; k0 += kBK) {
    // Activations: 64 x 32, 8 per thread.
    for (int e = threadIdx.x; e < kBM * kBK; e += kGemmThreads) {
      int r = e / kBK, c = e % kBK;
      int64_t row = m0 + r, col = k0 + c;
      as[r][c] = __float2half(row < n && col < cols ? x[row * cols + col] : 0.0f);
    }
    loadWeightTile<FMT>(w, group, asym, cols, outDim, n0, k0, bs);
    __syncthreads();
    for (int kk = 0; kk < kBK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[2];
      for (int i = 0; i < 2; ++i) {
        wmma::load_matrix_sync(fa[i], &as[wm * 32 + i * 16][kk], kBK + kPad);
      }
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(fb[j], &bs[wn * 32 + j * 16][kk], kBK + kPad);
      }
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
      }
    }
    __syncthreads();
  }
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(&cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j],
                              kBN + 4, wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kBM * kBN; e += kGemmThreads) {
    int r = e / kBN, c = e % kBN;
    int64_t row = m0 + r, col = n0 + c;
    if (row < n && col < outDim) {
      storeOut(outs, row, col, cs[r][c], bias, biasFormat);
    }
  }
}

/// f32 weights, several rows: a plain f32 tile product (16 x 16 outputs a
/// block, the inner dimension in steps of 16 through shared memory), so an
/// f32 model's prefill stays in f32 as on the CPU.
__global__ void gemmF32Kernel(const float *x, int64_t n, const float *w,
                              int64_t cols, int64_t outDim, const void *bias,
                              int32_t biasFormat, Outs outs) {
  __shared__ float xs[16][17], ws[16][17];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t row = int64_t(blockIdx.y) * 16 + ty; // activation row
  const int64_t col = int64_t(blockIdx.x) * 16 + tx; // output column
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < cols; k0 += 16) {
    int64_t xr = int64_t(blockIdx.y) * 16 + ty, wr = int64_t(blockIdx.x) * 16 + ty;
    xs[ty][tx] = xr < n && k0 + tx < cols ? x[xr * cols + k0 + tx] : 0.0f;
    ws[ty][tx] = wr < outDim && k0 + tx < cols ? w[wr * cols + k0 + tx] : 0.0f;
    __syncthreads();
    for (int k = 0; k < 16; ++k) {
      acc += xs[ty][k] * ws[tx][k];
    }
    __syncthreads();
  }
  if (row < n && col < outDim) {
    storeOut(outs, row, col, acc, bias, biasFormat);
  }
}

/// RoPE on up to two tensors of n rows at positions pos..pos+n-1 (the q and
/// k of one layer in one launch): x1 has h1 heads a row, x2 h2 (0: none).
__global__ void ropeKernel(const float *x1, float *y1, int64_t h1,
                           const float *x2, float *y2, int64_t h2, int64_t n,
                           int64_t headDim, float theta, const int64_t *pos) {
  const int64_t half = headDim / 2, heads = h1 + h2;
  const int64_t total = n * heads * half;
  for (int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; u < total;
       u += int64_t(gridDim.x) * blockDim.x) {
    int64_t j = u % half, rh = u / half, i = rh / heads, h = rh % heads;
    const float *xr = h < h1 ? x1 + (i * h1 + h) * headDim
                             : x2 + (i * h2 + h - h1) * headDim;
    float *yr = h < h1 ? y1 + (i * h1 + h) * headDim
                       : y2 + (i * h2 + h - h1) * headDim;
    // As the CPU kernel: the angle in double precision.
    double inv = exp2(-2.0 * static_cast<double>(j) / static_cast<double>(headDim) *
                      log2(static_cast<double>(theta)));
    double s, c;
    sincos(static_cast<double>(*pos + i) * inv, &s, &c);
    float cs = static_cast<float>(c), sn = static_cast<float>(s);
    float a = xr[j], b = xr[j + half];
    yr[j] = a * cs - b * sn;
    yr[j + half] = b * cs + a * sn;
  }
}

template <typename T> __device__ inline T toCache(float v);
template <> __device__ inline float toCache<float>(float v) { return v; }
template <> __device__ inline __half toCache<__half>(float v) {
  return __float2half_rn(v);
}
__device__ inline float fromCache(float v) { return v; }
__device__ inline float fromCache(__half v) { return __half2float(v); }

template <typename T>
__global__ void appendKvKernel(T *kc, T *vc, const float *k, const float *v,
                               int64_t n, int64_t kvHeads, int64_t headDim,
                               int64_t ctx, const int64_t *pos) {
  const int64_t total = n * kvHeads * headDim;
  for (int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; u < total;
       u += int64_t(gridDim.x) * blockDim.x) {
    int64_t d = u % headDim, h = (u / headDim) % kvHeads, i = u / (headDim * kvHeads);
    int64_t at = (h * ctx + *pos + i) * headDim + d;
    kc[at] = toCache<T>(k[u]);
    vc[at] = toCache<T>(v[u]);
  }
}

constexpr int kAttnThreads = 128;
constexpr int kAttnWarps = kAttnThreads / 32;
constexpr int kMaxHeadDim = 256;

/// Combines the splits' (max, sum, weighted values) of one head into out.
/// Reads through L2 (another block may have written them); the loops are
/// unrolled so that their loads are in flight together.
__device__ inline void mergeHead(const float *p, int64_t splits, int64_t headDim,
                                 float *out) {
  const int64_t stride = headDim + 2;
  float M = -INFINITY;
#pragma unroll 8
  for (int64_t s = 0; s < splits; ++s) {
    M = fmaxf(M, __ldcg(p + s * stride));
  }
  auto weight = [&](int64_t s) {
    const float ms = __ldcg(p + s * stride);
    return ms == -INFINITY ? 0.0f : expf(ms - M);
  };
  float L = 0.0f;
#pragma unroll 8
  for (int64_t s = 0; s < splits; ++s) {
    L += weight(s) * __ldcg(p + s * stride + 1);
  }
  for (int64_t d = threadIdx.x; d < headDim; d += blockDim.x) {
    float v = 0.0f;
#pragma unroll 8
    for (int64_t s = 0; s < splits; ++s) {
      v += weight(s) * __ldcg(p + s * stride + 2 + d);
    }
    out[d] = v / L;
  }
}

/// Query row i (blockIdx.z), head h (blockIdx.x), the positions of split s
/// (blockIdx.y): the split's max score, sum of exponentials and weighted
/// values, for attnMergeKernel. Three phases, each with independent loads
/// in flight: scores (a warp per position, four positions at a time), the
/// softmax of the chunk in shared memory, then the values (a thread per
/// element of the head, a loop over the chunk's positions).
///
/// DECODE (one query row): the new key and value are read from `knew` and
/// `vnew` rather than the cache, and the first block of each KV head writes
/// them to the cache; the last block of a head to finish (an atomic ticket
/// in `counters`) merges the splits into `out`. One launch per layer.
template <typename T, bool DECODE>
__global__ void __launch_bounds__(kAttnThreads)
    attnSplitKernel(const float *q, T *kc, T *vc, int64_t heads,
                    int64_t kvHeads, int64_t headDim, int64_t ctx,
                    const int64_t *pos, int64_t splits, int64_t chunk,
                    float *partial, const float *knew, const float *vnew,
                    int *counters, float *out) {
  // The chunk's scores, the scaled query, the value sums' slots.
  extern __shared__ __align__(16) float sh[];
  __shared__ float red[kAttnWarps];
  __shared__ bool last;
  float *sc = sh, *qs = sh + chunk;
  pdlLaunchNext();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t h = blockIdx.x, s = blockIdx.y, i = blockIdx.z;
  // The position is the host's (written before the step), not a kernel's.
  const int64_t p0 = *pos;
  const int64_t len = p0 + i + 1;
  const int64_t b = s * chunk, e = min(len, b + chunk), cnt = e - b;
  // A decode step's grid covers the whole context: the splits past the
  // position have nothing to do, and the merge waits only for the others.
  const int64_t active = DECODE ? (len + chunk - 1) / chunk : splits;
  if (s >= active) {
    return;
  }
  float *part = partial + ((i * heads + h) * splits + s) * (headDim + 2);
  const int64_t group = heads / kvHeads, kvh = h / group;
  T *kb = kc + (kvh * ctx + b) * headDim;
  T *vb = vc + (kvh * ctx + b) * headDim;
  if (DECODE) {
    // Earlier steps wrote the cached keys and values: bring the chunk's
    // lines to L2 while the previous kernel finishes.
    const int64_t rows = p0 >= b && p0 < e ? p0 - b : cnt;
    const int64_t bytes = rows * headDim * static_cast<int64_t>(sizeof(T));
    for (int64_t off = 128 * threadIdx.x; off < bytes; off += 128 * kAttnThreads) {
      asm volatile("prefetch.global.L2 [%0];" ::"l"(reinterpret_cast<const char *>(kb) + off));
      asm volatile("prefetch.global.L2 [%0];" ::"l"(reinterpret_cast<const char *>(vb) + off));
    }
  }
  pdlWait();
  const float *kn = knew + kvh * headDim, *vn = vnew + kvh * headDim;
  if (DECODE && s == 0 && h % group == 0) {
    T *kr = kc + (kvh * ctx + p0) * headDim, *vr = vc + (kvh * ctx + p0) * headDim;
    for (int64_t d = threadIdx.x; d < headDim; d += kAttnThreads) {
      kr[d] = toCache<T>(kn[d]);
      vr[d] = toCache<T>(vn[d]);
    }
  }
  // The new position's key and value as the cache will hold them.
  auto key = [&](int64_t t, int64_t d) {
    return DECODE && b + t == p0 ? fromCache(toCache<T>(kn[d]))
                                 : fromCache(kb[t * headDim + d]);
  };
  auto value = [&](int64_t t, int64_t d) {
    return DECODE && b + t == p0 ? fromCache(toCache<T>(vn[d]))
                                 : fromCache(vb[t * headDim + d]);
  };
  if (cnt > 0) {
    const float scale = rsqrtf(static_cast<float>(headDim));
    const float *qp = q + (i * heads + h) * headDim;
    for (int64_t d = threadIdx.x; d < headDim; d += kAttnThreads) {
      qs[d] = qp[d] * scale;
    }
    __syncthreads();
    // The positions read from the cache: all but the new one in decode.
    const int64_t cached = DECODE && p0 >= b && p0 < e ? p0 - b : cnt;
    constexpr int kPer = 16 / sizeof(T); // cache elements per 16 bytes
    if (headDim % kPer == 0 && reinterpret_cast<uintptr_t>(kc) % 16 == 0) {
      // Scores: a thread per cached position, its key row in 128-bit
      // loads; the last warp takes the new position.
      for (int64_t t = threadIdx.x; t < cached; t += kAttnThreads) {
        float acc = 0.0f;
        const uint4 *kr = reinterpret_cast<const uint4 *>(kb + t * headDim);
#pragma unroll 8
        for (int64_t c = 0; c < headDim / kPer; ++c) {
          const uint4 raw = kr[c];
          const T *kv = reinterpret_cast<const T *>(&raw);
#pragma unroll
          for (int j = 0; j < kPer; ++j) {
            acc += qs[c * kPer + j] * fromCache(kv[j]);
          }
        }
        sc[t] = acc;
      }
      if (cached < cnt && warp == kAttnWarps - 1) {
        float acc = 0.0f;
        for (int64_t d = lane; d < headDim; d += 32) {
          acc += qs[d] * key(cached, d);
        }
        acc = warpSum(acc);
        if (lane == 0) {
          sc[cached] = acc;
        }
      }
    } else
    // Scores: four positions per warp at a time.
    for (int64_t t0 = warp * 4; t0 < cnt; t0 += kAttnWarps * 4) {
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int64_t d = lane; d < headDim; d += 32) {
        const float qd = qs[d];
        for (int u = 0; u < 4; ++u) {
          if (t0 + u < cnt) {
            acc[u] += qd * key(t0 + u, d);
          }
        }
      }
      for (int u = 0; u < 4; ++u) {
        float v = warpSum(acc[u]);
        if (lane == 0 && t0 + u < cnt) {
          sc[t0 + u] = v;
        }
      }
    }
    __syncthreads();
    // Softmax of the chunk.
    float m = -INFINITY;
    for (int64_t t = threadIdx.x; t < cnt; t += kAttnThreads) {
      m = fmaxf(m, sc[t]);
    }
    m = warpMax(m);
    if (lane == 0) {
      red[warp] = m;
    }
    __syncthreads();
    m = red[0];
    for (int w = 1; w < kAttnWarps; ++w) {
      m = fmaxf(m, red[w]);
    }
    __syncthreads();
    float l = 0.0f;
    for (int64_t t = threadIdx.x; t < cnt; t += kAttnThreads) {
      float p = expf(sc[t] - m);
      sc[t] = p;
      l += p;
    }
    l = warpSum(l);
    if (lane == 0) {
      red[warp] = l;
    }
    __syncthreads();
    const int64_t quads = headDim / 4; // threads per position below
    if (headDim % 4 == 0 && kAttnThreads % quads == 0) {
      // Values: each thread sums four elements of the head over every
      // slots-th cached position (independent loads), the slots' sums
      // meet in shared memory, then the new position.
      const int64_t slots = kAttnThreads / quads;
      const int64_t slot = threadIdx.x / quads, d4 = 4 * (threadIdx.x % quads);
      float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 8
      for (int64_t t = slot; t < cached; t += slots) {
        const float4 v =
            load4(vb, sizeof(T) == 4 ? LLMC_FORMAT_F32 : LLMC_FORMAT_F16, t * headDim + d4);
        const float p = sc[t];
        acc.x += p * v.x;
        acc.y += p * v.y;
        acc.z += p * v.z;
        acc.w += p * v.w;
      }
      float *vs = qs + headDim; // [slots][headDim]
      reinterpret_cast<float4 *>(vs + slot * headDim + d4)[0] = acc;
      __syncthreads();
      for (int64_t d = threadIdx.x; d < headDim; d += kAttnThreads) {
        float v = 0.0f;
        for (int64_t k = 0; k < slots; ++k) {
          v += vs[k * headDim + d];
        }
        for (int64_t t = cached; t < cnt; ++t) {
          v += sc[t] * value(t, d);
        }
        part[2 + d] = v;
      }
    } else
    // Values: a thread per element, the cached positions four at a time
    // (independent loads), then the new one.
    for (int64_t d = threadIdx.x; d < headDim; d += kAttnThreads) {
      float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
      int64_t t = 0;
#pragma unroll 2
      for (; t + 4 <= cached; t += 4) {
        v0 += sc[t] * fromCache(vb[t * headDim + d]);
        v1 += sc[t + 1] * fromCache(vb[(t + 1) * headDim + d]);
        v2 += sc[t + 2] * fromCache(vb[(t + 2) * headDim + d]);
        v3 += sc[t + 3] * fromCache(vb[(t + 3) * headDim + d]);
      }
      for (; t < cnt; ++t) {
        v0 += sc[t] * value(t, d);
      }
      part[2 + d] = (v0 + v1) + (v2 + v3);
    }
    if (threadIdx.x == 0) {
      float L = 0.0f;
      for (int w = 0; w < kAttnWarps; ++w) {
        L += red[w];
      }
      part[0] = m;
      part[1] = L;
    }
  } else if (threadIdx.x == 0) {
    part[0] = -INFINITY;
    part[1] = 0.0f;
  }
  if (DECODE) {
    // The last of the head's blocks merges (threadFenceReduction pattern).
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
      last = atomicAdd(counters + h, 1) == active - 1;
    }
    __syncthreads();
    if (last) {
      __threadfence();
      mergeHead(partial + h * splits * (headDim + 2), active, headDim,
                out + h * headDim);
      if (threadIdx.x == 0) {
        counters[h] = 0; // ready for the next step
      }
    }
  }
}

__global__ void attnMergeKernel(const float *partial, int64_t heads,
                                int64_t headDim, int64_t splits, float *out) {
  const int64_t h = blockIdx.x, i = blockIdx.y;
  mergeHead(partial + (i * heads + h) * splits * (headDim + 2), splits, headDim,
            out + (i * heads + h) * headDim);
}

__global__ void elementwiseKernel(int32_t op, const float *a, const float *b,
                                  float *y, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = a[i];
    switch (op) {
    case LLMC_EW_SILU:
      v = v / (1.0f + expf(-v));
      break;
    case LLMC_EW_MUL:
      v = v * b[i];
      break;
    case LLMC_EW_ADD:
      v = v + b[i];
      break;
    default: // LLMC_EW_SWIGLU
      v = v / (1.0f + expf(-v)) * b[i];
      break;
    }
    y[i] = v;
  }
}

/// The first index of the largest value (one block).
__global__ void argmaxKernel(const float *x, int64_t n, int32_t *out) {
  __shared__ float bv[1024];
  __shared__ int64_t bi[1024];
  float best = -INFINITY;
  int64_t at = 0;
  // Four elements a load, rounds unrolled so that their loads overlap (a
  // load per round had made this a chain of 32 round trips, 14 us of a
  // decode step). A thread sees its indices in increasing order, so `>`
  // keeps the first of equal values, as the reduction below does.
  const int64_t n4 = reinterpret_cast<uintptr_t>(x) % 16 == 0 ? n / 4 : 0;
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) {
    const float4 v = reinterpret_cast<const float4 *>(x)[i];
    const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (e[k] > best) {
        best = e[k];
        at = 4 * i + k;
      }
    }
  }
  for (int64_t i = 4 * n4 + threadIdx.x; i < n; i += blockDim.x) {
    if (x[i] > best) {
      best = x[i];
      at = i;
    }
  }
  bv[threadIdx.x] = best;
  bi[threadIdx.x] = at;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      float ov = bv[threadIdx.x + s];
      int64_t oi = bi[threadIdx.x + s];
      if (ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < bi[threadIdx.x])) {
        bv[threadIdx.x] = ov;
        bi[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *out = static_cast<int32_t>(bi[0]);
  }
}

__global__ void toHalfKernel(const float *x, __half *y, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x) {
    y[i] = __float2half_rn(x[i]);
  }
}

/// A weight of any format as f16 rows, for cuBLAS.
__global__ void weightToHalfKernel(const void *w, int32_t format, int32_t group,
                                   int32_t asym, int64_t rows, int64_t cols,
                                   __half *out) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = __float2half_rn(weightAt(w, format, group, asym, cols, i / cols, i % cols));
  }
}

__global__ void biasKernel(Outs o, int64_t n, int64_t out, const void *bias,
                           int32_t biasFormat) {
  const int64_t total = n * out;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t j = i % out;
    *o.at(i / out, j) += loadFloat(bias, biasFormat, j);
  }
}

/// cuBLAS, opened at run time when the machine has it (libcublas.so.13):
/// the executable needs only the driver, and uses cuBLAS's tensor-core
/// GEMM for prefill where it can (LLMC_CUBLAS=0 turns it off).
struct Cublas {
  using Create = cublasStatus_t (*)(cublasHandle_t *);
  using Destroy = cublasStatus_t (*)(cublasHandle_t);
  using SetStream = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
  using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t,
                                    cublasOperation_t, int, int, int,
                                    const void *, const void *, cudaDataType,
                                    int, const void *, cudaDataType, int,
                                    const void *, void *, cudaDataType, int,
                                    cublasComputeType_t, cublasGemmAlgo_t);
  void *lib = nullptr;
  Create create = nullptr;
  Destroy destroy = nullptr;
  SetStream setStream = nullptr;
  GemmEx gemmEx = nullptr;

  bool open() {
    const char *off = std::getenv("LLMC_CUBLAS");
    if (off && std::strcmp(off, "0") == 0) {
      return false;
    }
    lib = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      return false;
    }
    create = reinterpret_cast<Create>(dlsym(lib, "cublasCreate_v2"));
    destroy = reinterpret_cast<Destroy>(dlsym(lib, "cublasDestroy_v2"));
    setStream = reinterpret_cast<SetStream>(dlsym(lib, "cublasSetStream_v2"));
    gemmEx = reinterpret_cast<GemmEx>(dlsym(lib, "cublasGemmEx"));
    return create && destroy && setStream && gemmEx;
  }
};

inline unsigned gridFor(int64_t total, int threads) {
  int64_t blocks = (total + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

// ------------------------------------------------------------- session

/// What the host writes before each forward call: the position, then the
/// tokens (one copy).
struct Step {
  int64_t pos;
  int32_t tokens[1];
};

class CudaSession final : public gpu::Session {
public:
  ~CudaSession() override {
    if (profile_) {
      // Each launch's time is the GPU time from the previous launch's end
      // (or a forward call's start) to its own end.
      cudaStreamSynchronize(stream_);
      for (size_t i = 1; i < marks_.size(); ++i) {
        float ms = 0.0f;
        if (!marks_[i].first.empty() &&
            cudaEventElapsedTime(&ms, marks_[i - 1].second, marks_[i].second) ==
                cudaSuccess) {
          Timing &t = timings_[marks_[i].first];
          t.calls += 1;
          t.seconds += ms * 1e-3;
        }
      }
      for (auto &m : marks_) {
        cudaEventDestroy(m.second);
      }
      std::vector<std::pair<double, std::string>> order;
      double total = 0;
      for (const auto &[name, t] : timings_) {
        order.push_back({t.seconds, name});
        total += t.seconds;
      }
      std::sort(order.rbegin(), order.rend());
      std::fprintf(stderr, "LLMC_CUDA_PROFILE: %.3f ms in kernels (eager "
                           "launches, CUDA events between consecutive ones)\n",
                   total * 1e3);
      for (const auto &[sec, name] : order) {
        const Timing &t = timings_[name];
        std::fprintf(stderr, "  %10.3f ms %6.1f%% %8ld calls %9.2f us/call  %s\n",
                     sec * 1e3, 100 * sec / total, t.calls, sec * 1e6 / t.calls,
                     name.c_str());
      }
    }
    if (graphExec_) {
      cudaGraphExecDestroy(graphExec_);
    }
    if (cublasHandle_) {
      cublas_.destroy(cublasHandle_);
    }
    for (void *p : allocations_) {
      cudaFree(p);
    }
    cudaFree(xHalf_);
    cudaFree(wHalf_);
    if (staging_) {
      cudaFreeHost(staging_);
    }
    if (stagingFree_) {
      cudaEventDestroy(stagingFree_);
    }
    if (stream_) {
      cudaStreamDestroy(stream_);
    }
  }

  bool init(const gpu::SessionSpec &spec, std::string &error);

  // Inside a forward call, a decode step's kernels fuse as the program calls
  // them: an RMSNorm waits for the matrix-vector product that reads it
  // (and becomes its prologue), a matrix-vector product with one result
  // waits for a residual add of its output (its epilogue), and a RoPE waits
  // for the next one (q and k in one launch). Any other call launches what
  // waits first, so the stream's order is the program's.
  void embedding(const void *table, int32_t format, int32_t group, int32_t asym,
                 const int32_t *ids, int64_t n, int64_t dim, float *out) override {
    flush();
    // A block per token and 256 columns: one load a thread (a block per
    // token, looping over the row, took 9-12 us of a decode step).
    embeddingKernel<<<dim3(static_cast<unsigned>(n), static_cast<unsigned>((dim + 255) / 256)),
                      256, 0, stream_>>>(table, format, group, asym, ids, dim, out);
    noteLaunch("embedding");
  }

  void rmsNorm(const float *x, int64_t n, int64_t dim, const void *w,
               int32_t format, float eps, float *out) override {
    flush();
    if (fusing_ && n == 1) {
      pendNorm_ = {true, x, dim, w, format, eps, out};
      return;
    }
    launchNorm(x, n, dim, w, format, eps, out);
  }

  void linear(const float *x, int64_t n, int64_t in, const void *w,
              int32_t format, int32_t group, int32_t asym, int64_t out,
              const void *bias, int32_t biasFormat, int64_t parts,
              const int64_t *widths, float *const *ys) override {
    if (parts < 1 || parts > kMaxParts) {
      flush();
      setError("a linear with " + std::to_string(parts) +
               " results (the CUDA kernels take at most 4)");
      return;
    }
    Outs o{};
    o.parts = static_cast<int>(parts);
    o.begin[0] = 0;
    for (int p = 0; p < o.parts; ++p) {
      o.y[p] = ys[p];
      o.begin[p + 1] = o.begin[p] + widths[p];
    }
    if (n == 1) {
      Fuse f;
      // gemvPrepKernel's blocks all read the norm's input while they write
      // its output, so the two may not overlap. The product's own writes
      // come after the prepared row is complete (gemv()).
      if (pendNorm_.on && pendNorm_.out == x && pendNorm_.dim == in &&
          !overlaps(pendNorm_.x, in, pendNorm_.out, in)) {
        f.normW = pendNorm_.w;
        f.normFormat = pendNorm_.format;
        f.eps = pendNorm_.eps;
        f.normOut = pendNorm_.out;
        x = pendNorm_.x;
        pendNorm_.on = false;
      }
      flush();
      PendingLinear l{true, x, in, w, format, group, asym, out, bias, biasFormat, o, f};
      if (fusing_) {
        // Waits for a residual add, a SwiGLU or RoPE of its results.
        pendLinear_ = l;
        return;
      }
      gemv(l);
      return;
    }
    flush();
    static const char *kFormatNames[] = {"f32", "f16", "bf16", "q8", "q4"};
    const std::string name =
        !profile_ ? std::string("linear")
                  : std::string("prefill ") +
                        kFormatNames[format < 0 || format > 4 ? 0 : format] +
                        (group ? " g" + std::to_string(group) : "") + " " +
                        std::to_string(out) + "x" + std::to_string(in);
    if (format != LLMC_FORMAT_F32 &&
        cublasLinear(x, n, in, w, format, group, asym, out, bias, biasFormat, o)) {
      // done by cuBLAS
    } else {
      dim3 grid(static_cast<unsigned>((out + kBN - 1) / kBN),
                static_cast<unsigned>((n + kBM - 1) / kBM));
      switch (format) {
      case LLMC_FORMAT_F32:
        gemmF32Kernel<<<dim3(static_cast<unsigned>((out + 15) / 16),
                             static_cast<unsigned>((n + 15) / 16)),
                        256, 0, stream_>>>(x, n, static_cast<const float *>(w),
                                           in, out, bias, biasFormat, o);
        break;
      case LLMC_FORMAT_F16:
        gemmKernel<LLMC_FORMAT_F16><<<grid, kGemmThreads, 0, stream_>>>(
            x, n, w, group, asym, in, out, bias, biasFormat, o);
        break;
      case LLMC_FORMAT_BF16:
        gemmKernel<LLMC_FORMAT_BF16><<<grid, kGemmThreads, 0, stream_>>>(
            x, n, w, group, asym, in, out, bias, biasFormat, o);
        break;
      case LLMC_FORMAT_Q8:
        gemmKernel<LLMC_FORMAT_Q8><<<grid, kGemmThreads, 0, stream_>>>(
            x, n, w, group, asym, in, out, bias, biasFormat, o);
        break;
      default:
        gemmKernel<LLMC_FORMAT_Q4><<<grid, kGemmThreads, 0, stream_>>>(
            x, n, w, group, asym, in, out, bias, biasFormat, o);
        break;
      }
    }
    noteLaunch(name);
  }

  void rope(const float *x, float *y, int64_t n, int64_t heads,
            int64_t headDim, float theta) override {
    if (n == 1 && ropeIntoLinear(x, y, heads, headDim, theta)) {
      return;
    }
    if (pendRope_.on && pendRope_.n == n && pendRope_.headDim == headDim &&
        pendRope_.theta == theta) {
      launchRope(pendRope_.x, pendRope_.y, pendRope_.heads, x, y, heads, n,
                 headDim, theta);
      pendRope_.on = false;
      return;
    }
    flush();
    if (fusing_) {
      pendRope_ = {true, x, y, n, heads, headDim, theta};
      return;
    }
    launchRope(x, y, heads, nullptr, nullptr, 0, n, headDim, theta);
  }

  void attention(int64_t layer, const float *q, const float *k, const float *v,
                 int64_t n, int64_t heads, int64_t kvHeads, int64_t headDim,
                 float *out) override {
    flush();
    if (headDim > kMaxHeadDim || kvHeads <= 0 || heads % kvHeads != 0) {
      setError("attention with head_dim " + std::to_string(headDim) +
               " (the CUDA kernels take at most 256)");
      return;
    }
    // One decode step (n == 1) covers the whole context, so that the
    // captured graph serves every position; a prefill covers what it uses.
    const int64_t chunk = n == 1 ? kDecodeChunk : kPrefillChunk;
    const int64_t splits = n == 1 ? (ctx_ + chunk - 1) / chunk
                                  : (curStart_ + n + chunk - 1) / chunk;
    const size_t need = static_cast<size_t>(n * heads * splits * (headDim + 2));
    if (need > partialFloats_ || (n == 1 && heads > counterCount_)) {
      setError("attention scratch too small (" + std::to_string(need) +
               " floats; the session sized " + std::to_string(partialFloats_) + ")");
      return;
    }
    if (kvHalf_) {
      launchAttention(static_cast<__half *>(kCache_) + cacheOffset_[layer],
                      static_cast<__half *>(vCache_) + cacheOffset_[layer], q, k,
                      v, n, heads, kvHeads, headDim, splits, chunk, out);
    } else {
      launchAttention(static_cast<float *>(kCache_) + cacheOffset_[layer],
                      static_cast<float *>(vCache_) + cacheOffset_[layer], q, k, v,
                      n, heads, kvHeads, headDim, splits, chunk, out);
    }
    if (n != 1) {
      attnMergeKernel<<<dim3(heads, n), 128, 0, stream_>>>(partial_, heads, headDim,
                                                           splits, out);
    }
    noteLaunch("attention");
  }

  void elementwise(int32_t op, const float *a, const float *b, float *y,
                   int64_t count) override {
    // Where an epilogue's output lands on the product's input, gemv()
    // prepares the row first (the product's blocks then read that copy).
    if (op == LLMC_EW_SWIGLU && pendLinear_.on && !pendLinear_.fuse.ropeRows &&
        pendLinear_.o.parts == 2 && count * 2 == pendLinear_.out && count % 2 == 0 &&
        pendLinear_.o.begin[1] == count && a == pendLinear_.o.y[0] &&
        b == pendLinear_.o.y[1]) {
      // SwiGLU becomes the gate/up product's epilogue; the gate and up
      // results are written too unless the output takes their place.
      pendLinear_.fuse.swiglu = y;
      pendLinear_.fuse.raw0 = !overlaps(y, count, a, count);
      pendLinear_.fuse.raw1 = !overlaps(y, count, b, count);
      PendingLinear l = pendLinear_;
      pendLinear_.on = false;
      gemv(l);
      return;
    }
    if (op == LLMC_EW_ADD && pendLinear_.on && pendLinear_.o.parts == 1 &&
        !pendLinear_.fuse.ropeRows && count == pendLinear_.out &&
        (a == pendLinear_.o.y[0] || b == pendLinear_.o.y[0])) {
      // The residual add becomes the product's epilogue.
      pendLinear_.fuse.resid = a == pendLinear_.o.y[0] ? b : a;
      pendLinear_.fuse.residOut = y;
      PendingLinear l = pendLinear_;
      pendLinear_.on = false;
      gemv(l);
      return;
    }
    flush();
    elementwiseKernel<<<gridFor(count, 256), 256, 0, stream_>>>(op, a, b, y, count);
    noteLaunch("elementwise");
  }

  /// Launches whatever waits to be fused.
  void flush() {
    if (pendLinear_.on) {
      PendingLinear l = pendLinear_;
      pendLinear_.on = false;
      gemv(l);
    }
    if (pendNorm_.on) {
      pendNorm_.on = false;
      launchNorm(pendNorm_.x, 1, pendNorm_.dim, pendNorm_.w, pendNorm_.format,
                 pendNorm_.eps, pendNorm_.out);
    }
    if (pendRope_.on) {
      pendRope_.on = false;
      launchRope(pendRope_.x, pendRope_.y, pendRope_.heads, nullptr, nullptr, 0,
                 pendRope_.n, pendRope_.headDim, pendRope_.theta);
    }
  }

  bool forward(llmc_exec *exec, const int32_t *tokens, int64_t n, int64_t start,
               int64_t rows, std::string &error) override;

  bool logits(float *out, int64_t rows, std::string &error) override {
    if (!check(cudaMemcpyAsync(out, logits_, sizeof(float) * rows * vocab_,
                               cudaMemcpyDeviceToHost, stream_),
               "copying the logits", error) ||
        !check(cudaStreamSynchronize(stream_), "running the model", error)) {
      return false;
    }
    return true;
  }

  bool argmax(int32_t *token, std::string &error) override {
    if (profile_) {
      mark("");
    }
    argmaxKernel<<<1, 1024, 0, stream_>>>(logits_ + (lastRows_ - 1) * vocab_,
                                          vocab_, &dstep_->tokens[0] + maxTokens_);
    noteLaunch("argmax");
    if (!check(cudaGetLastError(), "argmax", error) ||
        !check(cudaMemcpyAsync(token, &dstep_->tokens[0] + maxTokens_,
                               sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
               "copying the token", error) ||
        !check(cudaStreamSynchronize(stream_), "running the model", error)) {
      return false;
    }
    return true;
  }

  std::string deviceName() const override { return name_; }
  const void *weight(size_t i) const override { return weights_[i]; }

  /// Device memory of `bytes`, freed with the session.
  void *alloc(size_t bytes, std::string &error, const std::string &what) {
    void *p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes < 16 ? 16 : bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t freeB = 0, totalB = 0;
      cudaMemGetInfo(&freeB, &totalB);
      error = "out of GPU memory for " + what + " (" + std::to_string(bytes >> 20) +
              " MiB asked, " + std::to_string(freeB >> 20) + " MiB free of " +
              std::to_string(totalB >> 20) + ")";
      return nullptr;
    }
    allocations_.push_back(p);
    return p;
  }

private:
  struct PendingNorm {
    bool on = false;
    const float *x = nullptr;
    int64_t dim = 0;
    const void *w = nullptr;
    int32_t format = 0;
    float eps = 0.0f;
    float *out = nullptr;
  };
  struct PendingLinear {
    bool on = false;
    const float *x = nullptr;
    int64_t in = 0;
    const void *w = nullptr;
    int32_t format = 0, group = 0, asym = 0;
    int64_t out = 0;
    const void *bias = nullptr;
    int32_t biasFormat = 0;
    Outs o{};
    Fuse fuse{};
  };
  struct PendingRope {
    bool on = false;
    const float *x = nullptr;
    float *y = nullptr;
    int64_t n = 0, heads = 0, headDim = 0;
    float theta = 0.0f;
  };
  void gemv(const PendingLinear &l);
  static bool overlaps(const float *p, int64_t n, const float *q, int64_t m) {
    return p && q && p < q + m && q < p + n;
  }
  /// A decode step's RoPE of the pending product's first result (q), then
  /// of its second (k), becomes the product's epilogue. The rotated rows may
  /// land on the norm's output or the results (the kernel then writes only
  /// what the unfused order leaves there; on the product's input, gemv()
  /// prepares a copy of the row first), but q's not on the k that the second
  /// RoPE reads.
  bool ropeIntoLinear(const float *x, float *y, int64_t heads, int64_t headDim,
                      float theta) {
    PendingLinear &l = pendLinear_;
    Fuse &f = l.fuse;
    if (!fusing_ || !l.on || f.swiglu || f.resid || headDim % 4 != 0) {
      return false;
    }
    const int s = f.ropeRows == 0 ? 0 : 1; // the result this one rotates
    if (s >= l.o.parts ||
        (s == 1 && (f.headDim != headDim || f.theta != theta ||
                    f.ropeRows != l.o.begin[1]))) {
      return false;
    }
    const int64_t width = l.o.begin[s + 1] - l.o.begin[s];
    if (x != l.o.y[s] || heads * headDim != width ||
        (s == 1 && overlaps(f.rot0, f.rot0Len, x, width))) {
      return false;
    }
    (s ? f.rot1 : f.rot0) = y;
    (s ? f.rot1Len : f.rot0Len) = width;
    f.headDim = headDim;
    f.theta = theta;
    f.pos = &dstep_->pos;
    f.ropeCS = ropeTable(headDim, theta);
    f.ropeRows = l.o.begin[s + 1];
    f.rotBegin1 = l.o.begin[1];
    return true;
  }
  /// cos and sin of every position of the context and rotation pair
  /// (headDim / 2 a position) as ropeKernel and the CPU compute them (the
  /// angle in double precision, rounded to float): made once per head size
  /// and theta, outside a graph capture (inside one, the kernels compute
  /// them themselves). The fused RoPE loads its pair's with the group's
  /// first weights; computing them in the epilogue took each group's
  /// lanes 0 and 1 through double-precision exp2, log2 and sincos.
  const float2 *ropeTable(int64_t headDim, float theta) {
    const auto key = std::make_pair(headDim, theta);
    auto it = ropeTables_.find(key);
    if (it != ropeTables_.end()) {
      return it->second;
    }
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream_, &cs) != cudaSuccess ||
        cs != cudaStreamCaptureStatusNone) {
      cudaGetLastError();
      return nullptr;
    }
    const int64_t half = headDim / 2;
    std::vector<float2> host(static_cast<size_t>(ctx_ * half));
    for (int64_t j = 0; j < half; ++j) {
      const double inv = std::exp2(-2.0 * static_cast<double>(j) /
                                   static_cast<double>(headDim) *
                                   std::log2(static_cast<double>(theta)));
      for (int64_t p = 0; p < ctx_; ++p) {
        const double a = static_cast<double>(p) * inv;
        host[static_cast<size_t>(p * half + j)] =
            make_float2(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
      }
    }
    std::string error;
    auto *d = static_cast<float2 *>(alloc(host.size() * sizeof(float2), error, "the RoPE table"));
    if (!d || cudaMemcpy(d, host.data(), host.size() * sizeof(float2),
                         cudaMemcpyHostToDevice) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    ropeTables_.emplace(key, d);
    return d;
  }
  /// Launches `kernel` after the stream's last work; with programmatic
  /// dependent launch (sm_90, unless LLMC_CUDA_PDL=0) its blocks may start
  /// while that work finishes, and wait in pdlWait() for its results.
  template <typename... Params, typename... Args>
  void launch(void (*kernel)(Params...), dim3 grid, unsigned threads,
              size_t smem, Args... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream_;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl_ ? 1 : 0;
    cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
    if (e != cudaSuccess) {
      setError(std::string("CUDA error launching a kernel: ") + cudaGetErrorString(e));
    }
  }
  /// One decode step: a single launch (append, splits, merge); a prefill:
  /// the append, the splits, then attention's merge kernel (by the caller).
  template <typename T>
  void launchAttention(T *kc, T *vc, const float *q, const float *k,
                       const float *v, int64_t n, int64_t heads,
                       int64_t kvHeads, int64_t headDim, int64_t splits,
                       int64_t chunk, float *out) {
    // Scores, the query, then the value sums of attnSplitKernel.
    const size_t smem =
        sizeof(float) * static_cast<size_t>(chunk + headDim + 4 * kAttnThreads);
    const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(splits),
                    static_cast<unsigned>(n));
    if (n == 1) {
      launch(attnSplitKernel<T, true>, grid, kAttnThreads, smem, q, kc, vc, heads,
             kvHeads, headDim, ctx_, &dstep_->pos, splits, chunk, partial_, k, v,
             counters_, out);
      return;
    }
    appendKvKernel<T><<<gridFor(n * kvHeads * headDim, 256), 256, 0, stream_>>>(
        kc, vc, k, v, n, kvHeads, headDim, ctx_, &dstep_->pos);
    attnSplitKernel<T, false><<<grid, kAttnThreads, smem, stream_>>>(
        q, kc, vc, heads, kvHeads, headDim, ctx_, &dstep_->pos, splits, chunk,
        partial_, k, v, counters_, out);
  }
  void launchNorm(const float *x, int64_t n, int64_t dim, const void *w,
                  int32_t format, float eps, float *out) {
    rmsNormKernel<<<static_cast<unsigned>(n), 256, 0, stream_>>>(x, dim, w, format,
                                                                 eps, out);
    noteLaunch("rms_norm");
  }
  void launchRope(const float *x1, float *y1, int64_t h1, const float *x2,
                  float *y2, int64_t h2, int64_t n, int64_t headDim,
                  float theta) {
    int64_t total = n * (h1 + h2) * (headDim / 2);
    ropeKernel<<<gridFor(total, 256), 256, 0, stream_>>>(
        x1, y1, h1, x2, y2, h2, n, headDim, theta, &dstep_->pos);
    noteLaunch(h2 ? "rope (q and k)" : "rope");
  }
  PendingNorm pendNorm_;
  PendingLinear pendLinear_;
  PendingRope pendRope_;
  bool fusing_ = false; // inside forward(), unless LLMC_CUDA_FUSE=0
  bool pdl_ = false;     // programmatic dependent launch (see launch())
  // Warps splitting a matrix-vector product's row group: 0 chooses by the
  // row's length (see gemv()); LLMC_CUDA_GEMV_SPLIT=1 or 2 forces one, for
  // a same-run comparison (other values are ignored).
  int gemvSplit_ = [] {
    const char *e = std::getenv("LLMC_CUDA_GEMV_SPLIT");
    const int v = e ? std::atoi(e) : 0;
    return v >= 1 && v <= kGemvSplit ? v : 0;
  }();
  std::map<std::pair<int64_t, float>, float2 *> ropeTables_; // see ropeTable()
  // A decode product's prepared activation row (gemvPrepKernel).
  void *gemvRow_ = nullptr;
  size_t gemvRowBytes_ = 0;
  int64_t smCount_ = 1;
  bool fuseEnabled_ = !(std::getenv("LLMC_CUDA_FUSE") &&
                        std::strcmp(std::getenv("LLMC_CUDA_FUSE"), "0") == 0);
  int *counters_ = nullptr; // per head: blocks of a decode attention done
  int64_t counterCount_ = 0;

  static bool check(cudaError_t e, const std::string &what, std::string &error) {
    if (e == cudaSuccess) {
      return true;
    }
    error = "CUDA error while " + what + ": " + cudaGetErrorString(e);
    return false;
  }
  void noteLaunch(const std::string &what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess && error_.empty()) {
      error_ = "CUDA error launching " + what + ": " + cudaGetErrorString(e);
    }
    if (profile_) {
      mark(what);
    }
  }
  /// LLMC_CUDA_PROFILE: an event after each launch, named by it ("": the
  /// start of a forward call or argmax, which is not a kernel's time).
  void mark(const std::string &what) {
    cudaEvent_t ev = nullptr;
    if (cudaEventCreate(&ev) == cudaSuccess) {
      cudaEventRecord(ev, stream_);
      marks_.push_back({what, ev});
    }
  }
  struct Timing {
    long calls = 0;
    double seconds = 0;
  };
  void setError(const std::string &e) {
    if (error_.empty()) {
      error_ = e;
    }
  }

  const llmc_program *program_ = nullptr;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::vector<void *> allocations_;
  std::vector<const void *> weights_; // device pointers, artifact order
  void *arena_ = nullptr;
  float *logits_ = nullptr;
  Step *dstep_ = nullptr;    // device: position, tokens, then the argmax
  Step *staging_ = nullptr;  // pinned host copy
  cudaEvent_t stagingFree_ = nullptr;
  bool stagingBusy_ = false;
  void *kCache_ = nullptr, *vCache_ = nullptr;
  std::vector<size_t> cacheOffset_;
  bool kvHalf_ = true;
  float *partial_ = nullptr;
  size_t partialFloats_ = 0;
  int64_t ctx_ = 0, vocab_ = 0, maxTokens_ = 0;
  int64_t curStart_ = 0, lastRows_ = 1;
  bool decodeWarm_ = false;
  cudaGraphExec_t graphExec_ = nullptr;
  std::string error_; // the first launch error of a forward call
  // Prefill through cuBLAS (when it opens): f16 copies of the activations
  // and, for other formats, of the weight.
  Cublas cublas_;
  cublasHandle_t cublasHandle_ = nullptr;
  __half *xHalf_ = nullptr, *wHalf_ = nullptr;
  size_t xHalfCap_ = 0, wHalfCap_ = 0;
  bool cublasLinear(const float *x, int64_t n, int64_t in, const void *w,
                    int32_t format, int32_t group, int32_t asym, int64_t out,
                    const void *bias, int32_t biasFormat, const Outs &o);
  bool profile_ = std::getenv("LLMC_CUDA_PROFILE") != nullptr;
  std::map<std::string, Timing> timings_;
  std::vector<std::pair<std::string, cudaEvent_t>> marks_;
};

bool CudaSession::cublasLinear(const float *x, int64_t n, int64_t in,
                               const void *w, int32_t format, int32_t group,
                               int32_t asym, int64_t out, const void *bias,
                               int32_t biasFormat, const Outs &o) {
  if (!cublasHandle_) {
    return false;
  }
  auto grow = [&](__half *&buf, size_t &cap, size_t elems) {
    if (elems <= cap) {
      return true;
    }
    cudaFree(buf);
    buf = nullptr;
    cap = 0;
    if (cudaMalloc(&buf, elems * sizeof(__half)) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    cap = elems;
    return true;
  };
  if (!grow(xHalf_, xHalfCap_, static_cast<size_t>(n * in))) {
    return false;
  }
  const __half *wh = static_cast<const __half *>(w);
  if (format != LLMC_FORMAT_F16) {
    if (!grow(wHalf_, wHalfCap_, static_cast<size_t>(out * in))) {
      return false;
    }
    weightToHalfKernel<<<gridFor(out * in, 256), 256, 0, stream_>>>(
        w, format, group, asym, out, in, wHalf_);
    wh = wHalf_;
  }
  toHalfKernel<<<gridFor(n * in, 256), 256, 0, stream_>>>(x, xHalf_, n * in);
  const float one = 1.0f, zero = 0.0f;
  for (int p = 0; p < o.parts; ++p) {
    const int64_t width = o.begin[p + 1] - o.begin[p];
    // Row-major y_p[n, width] is column-major [width, n]: W_p^T x.
    cublasStatus_t st = cublas_.gemmEx(
        cublasHandle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(width),
        static_cast<int>(n), static_cast<int>(in), &one, wh + o.begin[p] * in,
        CUDA_R_16F, static_cast<int>(in), xHalf_, CUDA_R_16F,
        static_cast<int>(in), &zero, o.y[p], CUDA_R_32F, static_cast<int>(width),
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
      setError("cuBLAS GEMM failed (status " + std::to_string(static_cast<int>(st)) + ")");
      return true;
    }
  }
  if (bias) {
    biasKernel<<<gridFor(n * out, 256), 256, 0, stream_>>>(o, n, out, bias, biasFormat);
  }
  return true;
}

void CudaSession::gemv(const PendingLinear &l) {
  const bool quant = l.format == LLMC_FORMAT_Q8 || l.format == LLMC_FORMAT_Q4;
  const int64_t kp = quant ? (l.in + l.group - 1) / l.group * l.group : l.in;
  // The row goes through gemvPrepKernel for q8/q4 (quantized), a fused
  // norm, or where the product could not read it in place: misaligned for
  // 16-byte loads, or overlapping what the product writes (its blocks write
  // while others still read).
  const Fuse &f = l.fuse;
  bool prep = quant || f.normW || reinterpret_cast<uintptr_t>(l.x) % 16 != 0;
  for (int p = 0; !prep && p < l.o.parts; ++p) {
    prep = overlaps(l.o.y[p], l.o.begin[p + 1] - l.o.begin[p], l.x, l.in);
  }
  prep = prep || overlaps(f.residOut, l.out, l.x, l.in) ||
         overlaps(f.swiglu, l.out / 2, l.x, l.in) ||
         overlaps(f.rot0, f.rot0Len, l.x, l.in) || overlaps(f.rot1, f.rot1Len, l.x, l.in);
  const int64_t qOff = (kp + 15) / 16 * 16;
  const size_t need = quant ? static_cast<size_t>(qOff + kp / 32 * 8)
                            : static_cast<size_t>(l.in) * 4;
  if (prep && need > gemvRowBytes_) {
    setError("a decode product's row of " + std::to_string(l.in) +
             " elements is longer than the session sized its scratch for");
    return;
  }
  GemvRow xr;
  const float *x = l.x;
  if (prep) {
    auto *q = static_cast<int8_t *>(gemvRow_);
    auto *qd = reinterpret_cast<float *>(static_cast<uint8_t *>(gemvRow_) + qOff);
    auto *qs = reinterpret_cast<int *>(qd + kp / 32);
    auto *xf = static_cast<float *>(gemvRow_);
    const unsigned blocks =
        static_cast<unsigned>((kp + 8 * kPrepThreads - 1) / (8 * kPrepThreads));
    launch(quant ? gemvPrepKernel<true> : gemvPrepKernel<false>, dim3(blocks),
           static_cast<unsigned>(kPrepThreads), 0, l.x, l.in, kp, f.normW,
           f.normFormat, f.eps, f.normW ? f.normOut : nullptr, q, qd, qs, xf);
    xr = GemvRow{q, qd, qs, xf};
    x = xf;
    noteLaunch(profile_ ? std::string("gemv row ") + (quant ? "(int8)" : "(f32)") +
                              (f.normW ? " +norm" : "")
                        : std::string("gemv row"));
  }
  // Two warps a row group where each still has a full unroll of loads in
  // flight (chunks of a row >= 2 * 32 * kGemvUnroll): not q4 rows of 4096
  // (128 chunks), which measured faster with one warp on an H100. A block
  // per kGemvWarps / split groups: measured faster than resident blocks
  // looping over the groups (bench/gpu/gemv_micro.cu).
  const int64_t rowChunks = l.format == LLMC_FORMAT_Q4   ? kp / 32
                            : l.format == LLMC_FORMAT_Q8 ? kp / 16
                            : l.format == LLMC_FORMAT_F32 ? l.in / 4
                                                          : l.in / 8;
  const int split = gemvSplit_ ? gemvSplit_
                               : rowChunks >= 2 * 32 * kGemvUnroll ? kGemvSplit : 1;
  const int64_t groups = gemvGroups(l.out, f);
  const int64_t teams = kGemvWarps / split;
  const dim3 grid(static_cast<unsigned>((groups + teams - 1) / teams));
  const unsigned threads = kGemvWarps * 32;
  const auto *wq = static_cast<const uint8_t *>(l.w);
  auto go = [&](auto k1, auto k2, auto... args) {
    if (split == 1) {
      launch(k1, grid, threads, 0, args...);
    } else {
      launch(k2, grid, threads, 0, args...);
    }
  };
  switch (l.format) {
  case LLMC_FORMAT_Q4:
    if (l.asym) {
      go(gemvQuantKernel<LLMC_FORMAT_Q4, true, 1>, gemvQuantKernel<LLMC_FORMAT_Q4, true, 2>,
         wq, l.in, l.group, l.out, xr, l.bias, l.biasFormat, l.o, f);
    } else {
      go(gemvQuantKernel<LLMC_FORMAT_Q4, false, 1>, gemvQuantKernel<LLMC_FORMAT_Q4, false, 2>,
         wq, l.in, l.group, l.out, xr, l.bias, l.biasFormat, l.o, f);
    }
    break;
  case LLMC_FORMAT_Q8:
    go(gemvQuantKernel<LLMC_FORMAT_Q8, false, 1>, gemvQuantKernel<LLMC_FORMAT_Q8, false, 2>,
       wq, l.in, l.group, l.out, xr, l.bias, l.biasFormat, l.o, f);
    break;
  case LLMC_FORMAT_F32:
    go(gemvFloatKernel<LLMC_FORMAT_F32, 1>, gemvFloatKernel<LLMC_FORMAT_F32, 2>, l.w, l.in,
       l.out, x, l.bias, l.biasFormat, l.o, f);
    break;
  case LLMC_FORMAT_F16:
    go(gemvFloatKernel<LLMC_FORMAT_F16, 1>, gemvFloatKernel<LLMC_FORMAT_F16, 2>, l.w, l.in,
       l.out, x, l.bias, l.biasFormat, l.o, f);
    break;
  default:
    go(gemvFloatKernel<LLMC_FORMAT_BF16, 1>, gemvFloatKernel<LLMC_FORMAT_BF16, 2>, l.w,
       l.in, l.out, x, l.bias, l.biasFormat, l.o, f);
    break;
  }
  if (profile_) {
    static const char *kFormatNames[] = {"f32", "f16", "bf16", "q8", "q4"};
    noteLaunch(std::string("gemv ") +
               kFormatNames[l.format < 0 || l.format > 4 ? 0 : l.format] +
               (l.group ? " g" + std::to_string(l.group) : "") + " " +
               std::to_string(l.out) + "x" + std::to_string(l.in) +
               (l.fuse.normW ? " +norm" : "") + (l.fuse.resid ? " +add" : "") +
               (l.fuse.swiglu ? " +swiglu" : "") + (l.fuse.ropeRows ? " +rope" : ""));
  } else {
    noteLaunch("gemv");
  }
}

/// The artifact's blocks of one quantized tensor, re-laid out (see top).
std::vector<uint8_t> relayoutQuant(const gpu::Tensor &t) {
  const int64_t cols = t.shape.back();
  const int64_t rows = static_cast<int64_t>(t.bytes) /
                       static_cast<int64_t>(kernels::quantRowBytes(
                           t.format, cols, t.group, t.asym != 0));
  const int64_t groups = (cols + t.group - 1) / t.group;
  const int64_t stride = quantRowStride(t.format, cols, t.group, t.asym);
  const int64_t codeBytes = quantCodeBytes(t.format, cols, t.group);
  const size_t block = kernels::quantBlockBytes(t.format, t.group, t.asym != 0);
  const size_t head = t.format == LLMC_FORMAT_Q8 ? 2 : (t.asym ? 4 : 2);
  const size_t body = block - head;
  std::vector<uint8_t> out(static_cast<size_t>(rows * stride), 0);
  const auto *src = static_cast<const uint8_t *>(t.data);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t *dst = out.data() + r * stride;
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t *b = src + (r * groups + g) * block;
      std::memcpy(dst + g * body, b + head, body);
      std::memcpy(dst + codeBytes + g * head, b, head);
    }
  }
  return out;
}

bool CudaSession::init(const gpu::SessionSpec &spec, std::string &error) {
  // The static CUDA runtime loads the driver's libcuda itself; without one
  // it would report an old driver, which misleads.
  if (void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
    dlclose(driver);
  } else {
    error = "no CUDA device found: no NVIDIA driver (libcuda.so.1) on this "
            "machine; --device cpu runs on the CPU";
    return false;
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorInsufficientDriver) {
    error = "the NVIDIA driver is too old for this executable (it needs one "
            "that supports CUDA " + std::to_string(CUDART_VERSION / 1000) + "." +
            std::to_string(CUDART_VERSION % 1000 / 10) + ")";
    return false;
  }
  if (e != cudaSuccess || count == 0) {
    error = std::string("no CUDA device found") +
            (e != cudaSuccess ? std::string(" (") + cudaGetErrorString(e) + ")" : "") +
            "; --device cpu runs on the CPU";
    return false;
  }
  cudaDeviceProp prop{};
  if (!check(cudaGetDeviceProperties(&prop, 0), "querying the GPU", error) ||
      !check(cudaSetDevice(0), "opening the GPU", error)) {
    return false;
  }
  name_ = std::string("cuda:0 (") + prop.name + ", sm_" +
          std::to_string(prop.major * 10 + prop.minor) + ")";
  smCount_ = prop.multiProcessorCount;
  // Programmatic dependent launch needs sm_90 code (its wait instruction):
  // not the sm_80 code JIT-compiled for a newer card.
  const char *pdl = std::getenv("LLMC_CUDA_PDL");
  cudaFuncAttributes fa{};
  pdl_ = prop.major >= 9 && !(pdl && std::strcmp(pdl, "0") == 0) &&
         cudaFuncGetAttributes(&fa, reinterpret_cast<const void *>(
                                        gemvQuantKernel<LLMC_FORMAT_Q4, false, 1>)) ==
             cudaSuccess &&
         fa.binaryVersion >= 90;
  cudaGetLastError();
  if (prop.major < 8) {
    error = name_ + ": the CUDA kernels need compute capability 8.0 or newer";
    return false;
  }
  if (!check(cudaGetLastError(), "configuring the kernels", error) ||
      !check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
             "creating a stream", error) ||
      !check(cudaEventCreateWithFlags(&stagingFree_, cudaEventDisableTiming),
             "creating an event", error)) {
    return false;
  }
  program_ = spec.program;
  ctx_ = spec.ctx;
  vocab_ = spec.vocab;
  maxTokens_ = spec.maxTokens;
  kvHalf_ = spec.kvHalf;

  for (const gpu::Tensor &t : spec.tensors) {
    if (t.format == LLMC_FORMAT_S24 || t.format == LLMC_FORMAT_S24Q8 ||
        t.format == LLMC_FORMAT_S24Q4) {
      error = "2:4 sparse weights (s24, s24q8, s24q4) have no GPU kernel yet; "
              "run this executable with --device cpu";
      return false;
    }
    if (t.format == LLMC_FORMAT_Q8X8 || t.format == LLMC_FORMAT_Q4X8 ||
        t.format == LLMC_FORMAT_F16X16) {
      error = "weights interleaved for the CPU kernels (q8x8, q4x8, f16x16) have no "
              "GPU kernel; compile with --target cuda, or run this executable "
              "with --device cpu";
      return false;
    }
  }
  // Weights: uploaded in the GPU layout, or synthesized there.
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const gpu::Tensor &t = spec.tensors[i];
    const bool quant = t.format == LLMC_FORMAT_Q8 || t.format == LLMC_FORMAT_Q4;
    const int64_t cols = t.shape.back();
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < t.shape.size(); ++d) {
      rows *= t.shape[d];
    }
    size_t bytes = quant ? static_cast<size_t>(
                               rows * quantRowStride(t.format, cols, t.group, t.asym))
                         : static_cast<size_t>(t.bytes);
    void *d = alloc(bytes, error, "the weights");
    if (!d) {
      return false;
    }
    if (!t.data) {
      if (quant) {
        fillQuantKernel<<<gridFor(static_cast<int64_t>(bytes), 256), 256, 0, stream_>>>(
            static_cast<uint8_t *>(d), t.format, synth::tensorKey(i, spec.seed), rows,
            cols, t.group, t.asym);
      } else {
        fillFloatKernel<<<gridFor(rows * cols, 256), 256, 0, stream_>>>(
            d, t.format, synth::tensorKey(i, spec.seed), static_cast<int>(t.shape.size()),
            rows, cols);
      }
      if (!check(cudaGetLastError(), "synthesizing the weights", error)) {
        return false;
      }
    } else if (quant) {
      std::vector<uint8_t> host = relayoutQuant(t);
      if (!check(cudaMemcpy(d, host.data(), host.size(), cudaMemcpyHostToDevice),
                 "uploading the weights", error)) {
        return false;
      }
    } else if (!check(cudaMemcpy(d, t.data, t.bytes, cudaMemcpyHostToDevice),
                      "uploading the weights", error)) {
      return false;
    }
    weights_.push_back(d);
  }

  // Activations, logits, the step block, the KV cache, attention scratch,
  // the prepared row of the longest decode product.
  for (const gpu::Tensor &t : spec.tensors) {
    const int64_t cols = t.shape.back();
    const int64_t kp = t.group > 0 ? (cols + t.group - 1) / t.group * t.group : cols;
    const int64_t kq = (kp + 31) / 32 * 32;
    gemvRowBytes_ = std::max<size_t>(
        gemvRowBytes_, static_cast<size_t>(std::max((kq + 15) / 16 * 16 + kq / 32 * 8,
                                                    cols * 4)));
  }
  gemvRow_ = alloc(gemvRowBytes_, error, "the matrix-vector scratch");
  if (!gemvRow_) {
    return false;
  }
  arena_ = alloc(program_->arena_bytes, error, "the activations");
  logits_ = static_cast<float *>(
      alloc(sizeof(float) * maxTokens_ * vocab_, error, "the logits"));
  dstep_ = static_cast<Step *>(alloc(sizeof(Step) + 4 * (maxTokens_ + 1), error,
                                     "the step buffer"));
  if (!arena_ || !logits_ || !dstep_ ||
      !check(cudaMallocHost(reinterpret_cast<void **>(&staging_),
                            sizeof(Step) + 4 * maxTokens_),
             "allocating pinned memory", error)) {
    return false;
  }
  size_t cacheElems = 0;
  int64_t maxHeads = 0, maxHeadDim = 0;
  for (const llmc_cache_layer &l : spec.cache) {
    cacheOffset_.push_back(cacheElems);
    cacheElems += static_cast<size_t>(l.kv_heads * ctx_ * l.head_dim);
    maxHeadDim = std::max<int64_t>(maxHeadDim, l.head_dim);
  }
  const size_t elem = kvHalf_ ? 2 : 4;
  kCache_ = alloc(cacheElems * elem, error, "the KV cache");
  vCache_ = kCache_ ? alloc(cacheElems * elem, error, "the KV cache") : nullptr;
  if (!kCache_ || !vCache_) {
    return false;
  }
  maxHeads = spec.maxHeads;
  partialFloats_ = static_cast<size_t>(
      maxHeads * (maxHeadDim + 2) *
      std::max((ctx_ + kDecodeChunk - 1) / kDecodeChunk,
               maxTokens_ * ((ctx_ + kPrefillChunk - 1) / kPrefillChunk)));
  partial_ = static_cast<float *>(
      alloc(sizeof(float) * std::max<size_t>(partialFloats_, 1), error,
            "attention scratch"));
  counterCount_ = std::max<int64_t>(maxHeads, 1);
  counters_ = static_cast<int *>(
      alloc(sizeof(int) * counterCount_, error, "attention counters"));
  if (!partial_ || !counters_ ||
      !check(cudaMemset(counters_, 0, sizeof(int) * counterCount_),
             "clearing the attention counters", error)) {
    return false;
  }
  if (cublas_.open() && cublas_.create(&cublasHandle_) == CUBLAS_STATUS_SUCCESS &&
      cublas_.setStream(cublasHandle_, stream_) == CUBLAS_STATUS_SUCCESS) {
    name_ += ", cuBLAS for prefill";
  } else {
    cublasHandle_ = nullptr;
  }
  return check(cudaStreamSynchronize(stream_), "preparing the weights", error);
}

bool CudaSession::forward(llmc_exec *exec, const int32_t *tokens, int64_t n,
                          int64_t start, int64_t rows, std::string &error) {
  // The pinned staging block is reused: wait until the last copy read it.
  if (stagingBusy_ &&
      !check(cudaEventSynchronize(stagingFree_), "running the model", error)) {
    return false;
  }
  staging_->pos = start;
  std::memcpy(staging_->tokens, tokens, sizeof(int32_t) * n);
  if (!check(cudaMemcpyAsync(dstep_, staging_, sizeof(Step) + 4 * (n - 1),
                             cudaMemcpyHostToDevice, stream_),
             "copying the tokens", error) ||
      !check(cudaEventRecord(stagingFree_, stream_), "recording an event", error)) {
    return false;
  }
  stagingBusy_ = true;
  curStart_ = start;
  lastRows_ = rows;
  error_.clear();
  const void *const *w = weights_.data();
  auto run = [&] {
    fusing_ = fuseEnabled_;
    program_->forward(exec, w, arena_, dstep_->tokens, n, start, rows, logits_);
    flush();
    fusing_ = false;
  };
  if (profile_) {
    mark("");
  }
  if (n == 1 && rows == 1 && decodeWarm_ && !profile_) {
    if (!graphExec_) {
      // Capture one decode step; kernels read the position from dstep_.
      cudaGraph_t graph = nullptr;
      if (!check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                 "capturing the decode step", error)) {
        return false;
      }
      run();
      cudaError_t ce = cudaStreamEndCapture(stream_, &graph);
      if (!error_.empty()) {
        error = error_;
        if (graph) {
          cudaGraphDestroy(graph);
        }
        return false;
      }
      if (!check(ce, "capturing the decode step", error)) {
        return false;
      }
      cudaError_t ie = cudaGraphInstantiate(&graphExec_, graph, 0);
      cudaGraphDestroy(graph);
      if (!check(ie, "instantiating the decode graph", error)) {
        graphExec_ = nullptr;
        return false;
      }
    }
    return check(cudaGraphLaunch(graphExec_, stream_), "launching the decode step",
                 error);
  }
  run();
  if (!error_.empty()) {
    error = error_;
    return false;
  }
  if (n == 1 && rows == 1) {
    decodeWarm_ = true; // the next decode step is captured
  }
  return true;
}

} // namespace

std::unique_ptr<gpu::Session> createSession(const gpu::SessionSpec &spec,
                                            std::string &error) {
  auto s = std::make_unique<CudaSession>();
  if (!s->init(spec, error)) {
    return nullptr;
  }
  return s;
}

} // namespace llmc::cuda
