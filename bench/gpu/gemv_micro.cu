// gemv_micro: the design space of llmc's q4 g128 decode matrix-vector
// kernel, at LLaMA-2-7B shapes, on one GPU.
//
// llmc's decode kernel (runtime/cuda/backend.cu, gemvQuantKernel) reached
// 36% of an H100's read bandwidth at LLaMA-2-7B q4 g128, and Nsight Compute
// called it latency-bound. This program times variants of its structure over
// exactly the weights one decode step's layers read (32 layers of fused qkv
// 12288x4096, o 4096x4096, fused gate/up 22016x4096 and down 4096x11008, each
// layer its own weights, so L2 holds none of them), to find which structure
// streams the weights near the bandwidth before the product kernel changes:
//   R   rows a warp owns (their loads interleave);
//   U   16-byte loads a row and lane has in flight;
//   KS  warps splitting one row group's columns (summed in shared memory);
//   X   where the int8 activation row comes from: staged in shared memory by
//       each block from the f32 row (smem, as llmc's kernel does) or read
//       pre-quantized from global memory through L1 (global);
//   grid: one warp team per row group (full) or the resident blocks looping
//       over the groups (capped).
// Every launch uses programmatic dependent launch, as llmc's decode does,
// and each variant is captured once into a CUDA graph of the 128 products
// and replayed. Each variant's outputs are checked against a host reference
// (the same int8 activations, double sums) before it is timed.
//
// Build: nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90
//        bench/gpu/gemv_micro.cu -o /tmp/gemv_micro
// Usage: gemv_micro [--reps N] [--layers L]
// Output: a table on stdout, one row per variant; exit status 1 on a CUDA
// error or a wrong result.

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

static void ck(cudaError_t e, const char *what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "gemv_micro: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

constexpr int kGroup = 128;

// llmc's q4 row: cols/2 code bytes (byte j of a 32-element sub-block holds
// element j in its low nibble and j + 16 in its high one), then one f16
// scale a group, padded to 16 bytes.
__host__ __device__ inline int64_t rowStride(int64_t cols) {
  return (cols / 2 + cols / kGroup * 2 + 15) / 16 * 16;
}

__device__ inline float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, o);
  }
  return v;
}
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

__device__ inline uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

// Random codes, scales in [0.002, 0.01).
__global__ void fillWeights(uint8_t *w, int64_t rows, int64_t cols, uint64_t seed) {
  const int64_t stride = rowStride(cols), codes = cols / 2;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * stride;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / stride, b = i % stride;
    if (b < codes) {
      w[i] = static_cast<uint8_t>(mix(seed * 0x9e3779b97f4a7c15ull + i));
    } else if (b < codes + cols / kGroup * 2 && (b - codes) % 2 == 0) {
      const float s = 0.002f + 0.008f * (mix(seed + 7 * i + r) % 1000) / 1000.0f;
      *reinterpret_cast<__half *>(w + i) = __float2half(s);
    } else if (b >= codes + cols / kGroup * 2) {
      w[i] = 0;
    }
  }
}

// Random f16 weights in [-0.05, 0.05).
__global__ void fillF16(__half *w, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    w[i] = __float2half(0.1f * (mix(seed * 0x9e3779b97f4a7c15ull + i) % 10000) / 10000.0f -
                        0.05f);
  }
}

// Eight elements of x (a quarter of a block of 32, the block's four threads
// adjacent lanes) to int8 codes: scale amax/127, rounded to even, and the
// block's code sum. Every lane calls it (the shuffles); `active` stores.
__device__ inline void quantize8(const float v[8], int64_t base, bool active, int8_t *xq,
                                 float *xd, int *xs) {
  float amax = 0.0f;
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    amax = fmaxf(amax, fabsf(v[k]));
  }
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
  const float d = amax / 127.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
  int sum = 0;
  uint32_t packed[2] = {0, 0};
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const int q = __float2int_rn(v[k] * inv);
    sum += q;
    packed[k / 4] |= (static_cast<uint32_t>(q) & 0xFFu) << (8 * (k % 4));
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  if (active) {
    *reinterpret_cast<uint2 *>(xq + base) = make_uint2(packed[0], packed[1]);
    if (threadIdx.x % 4 == 0) {
      xd[base / 32] = d;
      xs[base / 32] = sum;
    }
  }
}

// x to int8 blocks of 32 with each block's code sum, eight elements a thread.
__global__ void quantizeX(const float *x, int64_t cols, int8_t *xq, float *xd, int *xs) {
  pdlLaunchNext();
  pdlWait();
  const int64_t base = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * 8;
  float v[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    v[k] = base + k < cols ? x[base + k] : 0.0f;
  }
  quantize8(v, base, base < cols, xq, xd, xs);
}

struct Args {
  const uint8_t *w;
  int64_t rows, cols;
  const float *x;   // f32 row (SMEMX)
  const int8_t *xq; // pre-quantized row (global X)
  const float *xd;
  const int *xs;
  float *y;
};

// What a kernel reads, by weight format: a 16-byte chunk of a row is 32 q4
// elements (with its group's f16 scale) or 8 f16 elements.
template <bool GLOBAL, typename T>
__device__ inline T ld(const T *p) {
  if (GLOBAL) {
    return __ldg(p);
  }
  return *p;
}
struct Q4 {
  static constexpr int kElems = 32;
  using Scale = __half;
  __host__ __device__ static int64_t stride(int64_t cols) { return rowStride(cols); }
  __device__ static Scale scale(const uint8_t *row, int64_t cols, int64_t c) {
    return __ldg(reinterpret_cast<const __half *>(row + cols / 2) + (32 * c) / kGroup);
  }
  template <bool GLOBAL>
  __device__ static float dot(const uint4 &w, Scale s, const int8_t *xq, const float *xd,
                              const int *xs, const float *, int64_t c) {
    const int4 xl = ld<GLOBAL>(reinterpret_cast<const int4 *>(xq + 32 * c));
    const int4 xh = ld<GLOBAL>(reinterpret_cast<const int4 *>(xq + 32 * c + 16));
    const float dx = ld<GLOBAL>(xd + c);
    const int sx = ld<GLOBAL>(xs + c);
    const int lo[4] = {xl.x, xl.y, xl.z, xl.w};
    const int hi[4] = {xh.x, xh.y, xh.z, xh.w};
    const uint32_t wd[4] = {w.x, w.y, w.z, w.w};
    int d = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      d = __dp4a(static_cast<int>(wd[j] & 0x0F0F0F0Fu), lo[j], d);
      d = __dp4a(static_cast<int>((wd[j] >> 4) & 0x0F0F0F0Fu), hi[j], d);
    }
    return dx * __half2float(s) * static_cast<float>(d - 8 * sx);
  }
};
struct F16 {
  static constexpr int kElems = 8;
  using Scale = char; // none
  __host__ __device__ static int64_t stride(int64_t cols) { return cols * 2; }
  __device__ static Scale scale(const uint8_t *, int64_t, int64_t) { return 0; }
  template <bool GLOBAL>
  __device__ static float dot(const uint4 &w, Scale, const int8_t *, const float *,
                              const int *, const float *xf, int64_t c) {
    const float4 a = ld<GLOBAL>(reinterpret_cast<const float4 *>(xf + 8 * c));
    const float4 b = ld<GLOBAL>(reinterpret_cast<const float4 *>(xf + 8 * c + 4));
    const uint32_t q[4] = {w.x, w.y, w.z, w.w};
    float2 f[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      __half2 h;
      memcpy(&h, &q[j], 4);
      f[j] = __half22float2(h);
    }
    return f[0].x * a.x + f[0].y * a.y + f[1].x * a.z + f[1].y * a.w + f[2].x * b.x +
           f[2].y * b.y + f[3].x * b.z + f[3].y * b.w;
  }
};

// The variant kernel. A team of KS warps owns R rows; warp k of the team
// takes chunks lane + 32 * (k + KS * j). The loop over row groups is
// block-uniform so that KS > 1 can use the block's barriers.
template <typename FMT, int R, int U, int KS, bool SMEMX, int MINB>
__global__ void __launch_bounds__(256, MINB) gemv(Args a) {
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ float red[8 * R];
  pdlLaunchNext();
  using Scale = typename FMT::Scale;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int teams = (blockDim.x / 32) / KS, team = warp / KS, k = warp % KS;
  const int64_t cols = a.cols, chunks = cols / FMT::kElems, stride = FMT::stride(cols);
  const int64_t groups = (a.rows + R - 1) / R;
  int64_t g = int64_t(blockIdx.x) * teams + team;
  const int64_t gstep = int64_t(gridDim.x) * teams;
  const int64_t gEnd = (groups + teams - 1) / teams * teams; // block-uniform bound
  const uint8_t *rp[R];
  uint4 wv[U][R];
  Scale sv[U][R];
#define MICRO_ROWS()                                                          \
  _Pragma("unroll") for (int r = 0; r < R; ++r) {                             \
    int64_t row_ = g * R + r;                                                 \
    row_ = row_ < a.rows ? row_ : a.rows - 1;                                 \
    rp[r] = a.w + row_ * stride;                                              \
  }
#define MICRO_LOAD(c0)                                                        \
  _Pragma("unroll") for (int u = 0; u < U; ++u) {                             \
    const int64_t c_ = (c0) + 32 * KS * u;                                    \
    if (c_ < chunks) {                                                        \
      _Pragma("unroll") for (int r = 0; r < R; ++r) {                         \
        wv[u][r] = __ldg(reinterpret_cast<const uint4 *>(rp[r]) + c_);        \
        sv[u][r] = FMT::scale(rp[r], cols, c_);                               \
      }                                                                       \
    }                                                                         \
  }
  const int64_t cFirst = lane + 32 * k;
  if (g < groups) {
    MICRO_ROWS();
    MICRO_LOAD(cFirst);
  }
  pdlWait();
  const int8_t *xq = a.xq;
  const float *xd = a.xd, *xf = a.x;
  const int *xs = a.xs;
  if (SMEMX && FMT::kElems == 8) {
    float *sx = reinterpret_cast<float *>(smem);
    for (int64_t c = 4 * threadIdx.x; c < cols; c += 4 * int64_t(blockDim.x)) {
      *reinterpret_cast<float4 *>(sx + c) = *reinterpret_cast<const float4 *>(a.x + c);
    }
    __syncthreads();
    xf = sx;
  } else if (SMEMX) {
    int8_t *sq = reinterpret_cast<int8_t *>(smem);
    float *sd = reinterpret_cast<float *>(smem + cols);
    int *ssum = reinterpret_cast<int *>(sd + cols / 32);
    for (int64_t p = 0; p < cols; p += int64_t(blockDim.x) * 8) {
      const int64_t base = p + threadIdx.x * 8;
      const bool active = base < cols;
      float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (active) {
        const float4 v0 = *reinterpret_cast<const float4 *>(a.x + base);
        const float4 v1 = *reinterpret_cast<const float4 *>(a.x + base + 4);
        v[0] = v0.x, v[1] = v0.y, v[2] = v0.z, v[3] = v0.w;
        v[4] = v1.x, v[5] = v1.y, v[6] = v1.z, v[7] = v1.w;
      }
      quantize8(v, base, active, sq, sd, ssum);
    }
    __syncthreads();
    xq = sq;
    xd = sd;
    xs = ssum;
  }
  bool loaded = true;
  for (; g < gEnd; g += gstep) {
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      acc[r] = 0.0f;
    }
    if (g < groups) {
      if (!loaded) {
        MICRO_ROWS();
      }
      for (int64_t c0 = cFirst; c0 < chunks; c0 += 32 * KS * U) {
        if (!loaded) {
          MICRO_LOAD(c0);
        }
        loaded = false;
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int64_t c = c0 + 32 * KS * u;
          if (c < chunks) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
              acc[r] += FMT::template dot<!SMEMX>(wv[u][r], sv[u][r], xq, xd, xs, xf, c);
            }
          }
        }
      }
    }
    loaded = false;
    float v[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      v[r] = warpSum(acc[r]);
    }
    if (KS > 1) {
      if (lane == 0) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          red[warp * R + r] = v[r];
        }
      }
      __syncthreads();
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float s = 0.0f;
        for (int j = 0; j < KS; ++j) {
          s += red[(team * KS + j) * R + r];
        }
        v[r] = s;
      }
      __syncthreads();
    }
    if (g < groups && k == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (lane == r && g * R + r < a.rows) {
          a.y[g * R + r] = v[r];
        }
      }
    }
  }
#undef MICRO_LOAD
#undef MICRO_ROWS
}

// KS = 1, global X, software-pipelined: a warp walks its (row group, chunk
// step) pairs and issues the next pair's loads before it computes the
// current one, across row groups too.
template <typename FMT, int R, int U, int MINB>
__global__ void __launch_bounds__(256, MINB) gemvPipe(Args a) {
  pdlLaunchNext();
  using Scale = typename FMT::Scale;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int warps = blockDim.x / 32;
  const int64_t cols = a.cols, chunks = cols / FMT::kElems, stride = FMT::stride(cols);
  const int64_t groups = (a.rows + R - 1) / R;
  const int64_t gstep = int64_t(gridDim.x) * warps;
  int64_t g = int64_t(blockIdx.x) * warps + warp, c0 = lane;
  uint4 wv[U][R], wn[U][R];
  Scale sv[U][R], sn[U][R];
  auto rowPtr = [&](int64_t gg, int r) {
    int64_t row = gg * R + r;
    row = row < a.rows ? row : a.rows - 1;
    return a.w + row * stride;
  };
#define PIPE_LOAD(W, S, gg, cc)                                               \
  _Pragma("unroll") for (int u = 0; u < U; ++u) {                             \
    const int64_t c_ = (cc) + 32 * u;                                         \
    if (c_ < chunks) {                                                        \
      _Pragma("unroll") for (int r = 0; r < R; ++r) {                         \
        const uint8_t *p_ = rowPtr(gg, r);                                    \
        W[u][r] = __ldg(reinterpret_cast<const uint4 *>(p_) + c_);            \
        S[u][r] = FMT::scale(p_, cols, c_);                                   \
      }                                                                       \
    }                                                                         \
  }
  if (g < groups) {
    PIPE_LOAD(wv, sv, g, c0);
  }
  pdlWait();
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    acc[r] = 0.0f;
  }
  while (g < groups) {
    int64_t ng = g, nc = c0 + 32 * U;
    if (nc >= chunks) {
      ng = g + gstep;
      nc = lane;
    }
    if (ng < groups) {
      PIPE_LOAD(wn, sn, ng, nc);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c = c0 + 32 * u;
      if (c < chunks) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          acc[r] += FMT::template dot<true>(wv[u][r], sv[u][r], a.xq, a.xd, a.xs, a.x, c);
        }
      }
    }
    if (ng != g) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float v = warpSum(acc[r]);
        if (lane == r && g * R + r < a.rows) {
          a.y[g * R + r] = v;
        }
        acc[r] = 0.0f;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        wv[u][r] = wn[u][r];
        sv[u][r] = sn[u][r];
      }
    }
    g = ng;
    c0 = nc;
  }
#undef PIPE_LOAD
}

// A streaming read: the reference read bandwidth of this run.
__global__ void readKernel(const uint4 *p, int64_t n, uint32_t *sink) {
  uint32_t x = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldg(p + i);
    x ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (x == 0x12345678u) {
    *sink = x;
  }
}

using Kernel = void (*)(Args);

struct Variant {
  std::string name;
  Kernel fn;
  bool f16;
  int R, KS;
  bool smemX, capped, quantize; // quantize: a quantizeX launch before each product
};

#define V(FMT, R, U, KS, SM, MINB, capped, q)                                            \
  Variant {                                                                             \
    #FMT " R" #R " U" #U " KS" #KS " X=" + std::string(SM ? "smem" : "global") +          \
        " minB" #MINB + (capped ? " capped" : " full") + (q ? " +quantize" : ""),        \
        gemv<FMT, R, U, KS, SM, MINB>, std::is_same<FMT, F16>::value, R, KS, SM, capped, q \
  }
#define P(FMT, R, U, MINB, capped)                                                       \
  Variant {                                                                             \
    #FMT " pipelined R" #R " U" #U " minB" #MINB + std::string(capped ? " capped" : " full"), \
        gemvPipe<FMT, R, U, MINB>, std::is_same<FMT, F16>::value, R, 1, false, capped,   \
        false                                                                           \
  }

struct Shape {
  const char *name;
  int64_t rows, cols;
};

// The median over `reps` timings of what `work` launches on `st`, in ms.
template <class F>
static double medianMs(cudaStream_t st, int reps, F work) {
  cudaEvent_t e0, e1;
  ck(cudaEventCreate(&e0), "event");
  ck(cudaEventCreate(&e1), "event");
  std::vector<float> ms;
  for (int r = 0; r < reps; ++r) {
    ck(cudaEventRecord(e0, st), "record");
    work();
    ck(cudaEventRecord(e1, st), "record");
    ck(cudaEventSynchronize(e1), "sync");
    float t;
    ck(cudaEventElapsedTime(&t, e0, e1), "elapsed");
    ms.push_back(t);
  }
  ck(cudaEventDestroy(e0), "event");
  ck(cudaEventDestroy(e1), "event");
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int main(int argc, char **argv) {
  int reps = 20, layers = 32;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--layers") && i + 1 < argc) {
      layers = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: gemv_micro [--reps N] [--layers L]\n");
      return 1;
    }
  }
  const Shape shapes[4] = {{"qkv", 12288, 4096}, {"o", 4096, 4096},
                           {"gate/up", 22016, 4096}, {"down", 4096, 11008}};
  std::vector<Variant> vars = {
      V(Q4, 4, 4, 1, true, 2, true, false), // llmc's kernel as of b197e92
      V(Q4, 4, 4, 1, true, 2, false, false),
      V(Q4, 4, 4, 1, false, 2, false, false),
      V(Q4, 4, 4, 1, false, 2, true, false),
      V(Q4, 4, 4, 1, false, 2, false, true),
      V(Q4, 2, 4, 1, false, 3, false, false),
      V(Q4, 4, 2, 1, false, 3, false, false),
      V(Q4, 2, 2, 1, false, 4, false, false),
      V(Q4, 4, 4, 2, false, 2, false, false),
      V(Q4, 4, 4, 4, false, 2, false, false),
      V(Q4, 2, 4, 2, false, 3, false, false),
      V(Q4, 2, 4, 4, false, 3, false, false),
      V(Q4, 2, 8, 1, false, 2, false, false),
      V(Q4, 1, 8, 1, false, 3, false, false),
      V(Q4, 1, 4, 2, false, 4, false, false),
      V(Q4, 8, 2, 1, false, 2, false, false),
      V(Q4, 4, 4, 2, true, 2, false, false),
      V(Q4, 2, 4, 2, true, 3, false, false),
      P(Q4, 2, 4, 2, false), P(Q4, 2, 4, 2, true), P(Q4, 4, 2, 2, false),
      P(Q4, 4, 2, 2, true), P(Q4, 2, 2, 3, false), P(Q4, 2, 2, 3, true),
      P(Q4, 1, 8, 2, false), P(Q4, 1, 4, 3, false),
      V(F16, 4, 4, 1, true, 2, true, false), // llmc's kernel as of b197e92
      V(F16, 4, 4, 1, false, 2, false, false),
      V(F16, 2, 4, 1, false, 3, false, false),
      V(F16, 4, 2, 1, false, 3, false, false),
      V(F16, 2, 8, 1, false, 2, false, false),
      V(F16, 1, 8, 1, false, 3, false, false),
      V(F16, 4, 4, 2, false, 2, false, false),
      V(F16, 2, 4, 2, false, 3, false, false),
      P(F16, 2, 4, 2, false), P(F16, 2, 4, 2, true), P(F16, 4, 2, 2, true),
      P(F16, 2, 2, 3, true),
  };


  cudaDeviceProp prop;
  ck(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);

  // Weights: layers x 4 shapes, each its own allocation.
  // Weights: layers x 4 shapes, each its own allocation, in q4 g128 and f16.
  std::vector<std::vector<uint8_t *>> w(4, std::vector<uint8_t *>(layers));
  std::vector<std::vector<uint8_t *>> wh(4, std::vector<uint8_t *>(layers));
  double stepBytes = 0, stepBytesF16 = 0;
  for (int s = 0; s < 4; ++s) {
    const int64_t bytes = shapes[s].rows * rowStride(shapes[s].cols);
    const int64_t bytesH = shapes[s].rows * shapes[s].cols * 2;
    stepBytes += double(bytes) * layers;
    stepBytesF16 += double(bytesH) * layers;
    for (int l = 0; l < layers; ++l) {
      ck(cudaMalloc(&w[s][l], bytes), "cudaMalloc weights");
      fillWeights<<<1024, 256>>>(w[s][l], shapes[s].rows, shapes[s].cols,
                                 1000003ull * s + l + 1);
      ck(cudaMalloc(&wh[s][l], bytesH), "cudaMalloc f16 weights");
      fillF16<<<1024, 256>>>(reinterpret_cast<__half *>(wh[s][l]),
                             shapes[s].rows * shapes[s].cols, 7000003ull * s + l + 1);
    }
  }
  ck(cudaGetLastError(), "fillWeights");
  // Activations: one f32 row per width, pre-quantized copies, outputs.
  const int64_t widths[2] = {4096, 11008};
  float *xf[2];
  int8_t *xq[2];
  float *xd[2];
  int *xs[2];
  for (int i = 0; i < 2; ++i) {
    std::vector<float> h(widths[i]);
    for (int64_t j = 0; j < widths[i]; ++j) {
      h[j] = std::sin(0.37 * j + i) * (1.0 + (j % 7) * 0.1);
    }
    ck(cudaMalloc(&xf[i], widths[i] * 4), "cudaMalloc");
    ck(cudaMalloc(&xq[i], widths[i]), "cudaMalloc");
    ck(cudaMalloc(&xd[i], widths[i] / 32 * 4), "cudaMalloc");
    ck(cudaMalloc(&xs[i], widths[i] / 32 * 4), "cudaMalloc");
    ck(cudaMemcpy(xf[i], h.data(), widths[i] * 4, cudaMemcpyHostToDevice), "memcpy");
    quantizeX<<<(widths[i] / 8 + 255) / 256, 256>>>(xf[i], widths[i], xq[i], xd[i], xs[i]);
  }
  float *y[4];
  for (int s = 0; s < 4; ++s) {
    ck(cudaMalloc(&y[s], shapes[s].rows * 4), "cudaMalloc");
  }
  ck(cudaDeviceSynchronize(), "setup");

  // Host references of layer 0 of each shape, from the same int8 row.
  std::vector<std::vector<double>> ref(4), refH(4);
  for (int s = 0; s < 4; ++s) {
    const int64_t rows = shapes[s].rows, cols = shapes[s].cols, st = rowStride(cols);
    const int xi = cols == 4096 ? 0 : 1;
    std::vector<uint8_t> hw(rows * st);
    std::vector<int8_t> hq(cols);
    std::vector<float> hd(cols / 32);
    ck(cudaMemcpy(hw.data(), w[s][0], hw.size(), cudaMemcpyDeviceToHost), "memcpy");
    ck(cudaMemcpy(hq.data(), xq[xi], cols, cudaMemcpyDeviceToHost), "memcpy");
    ck(cudaMemcpy(hd.data(), xd[xi], cols / 32 * 4, cudaMemcpyDeviceToHost), "memcpy");
    ref[s].assign(rows, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t *row = hw.data() + r * st;
      const __half *sc = reinterpret_cast<const __half *>(row + cols / 2);
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const uint8_t b = row[(c / 32) * 16 + c % 16];
        const int nib = (c % 32) < 16 ? (b & 15) : (b >> 4);
        acc += double(__half2float(sc[c / kGroup])) * (nib - 8) * hd[c / 32] * hq[c];
      }
      ref[s][r] = acc;
    }
    std::vector<__half> hh(rows * cols);
    std::vector<float> hx(cols);
    ck(cudaMemcpy(hh.data(), wh[s][0], hh.size() * 2, cudaMemcpyDeviceToHost), "memcpy");
    ck(cudaMemcpy(hx.data(), xf[xi], cols * 4, cudaMemcpyDeviceToHost), "memcpy");
    refH[s].assign(rows, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) {
        acc += double(__half2float(hh[r * cols + c])) * hx[c];
      }
      refH[s][r] = acc;
    }
  }

  cudaStream_t st;
  ck(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
  auto launch = [&](const void *fn, dim3 grid, dim3 block, size_t smem, void **args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    ck(cudaLaunchKernelExC(&cfg, fn, args), "cudaLaunchKernelExC");
  };
  auto product = [&](const Variant &v, int s, int l) {
    const int xi = shapes[s].cols == 4096 ? 0 : 1;
    if (v.quantize) {
      const float *px = xf[xi];
      int64_t cols = widths[xi];
      void *qa[] = {&px, &cols, &xq[xi], &xd[xi], &xs[xi]};
      launch(reinterpret_cast<const void *>(quantizeX),
             dim3((cols / 8 + 255) / 256), dim3(256), 0, qa);
    }
    Args a{(v.f16 ? wh : w)[s][l], shapes[s].rows, shapes[s].cols, xf[xi], xq[xi], xd[xi], xs[xi], y[s]};
    const int teams = 8 / v.KS;
    const int64_t groups = (shapes[s].rows + v.R - 1) / v.R;
    int64_t grid = (groups + teams - 1) / teams;
    const size_t smem = !v.smemX ? 0
                        : v.f16  ? shapes[s].cols * 4
                                 : shapes[s].cols + shapes[s].cols / 32 * 8;
    if (v.capped) {
      int per = 0;
      ck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per, v.fn, 256, smem), "occupancy");
      grid = std::min<int64_t>(grid, int64_t(per) * prop.multiProcessorCount);
    }
    void *args[] = {&a};
    launch(reinterpret_cast<const void *>(v.fn), dim3(grid), dim3(256), smem, args);
  };

  double bw = 0;
  // Read bandwidth over the weights of the gate/up shape, all layers.
  {
    uint32_t *sink;
    ck(cudaMalloc(&sink, 4), "cudaMalloc");
    const int64_t n = shapes[2].rows * rowStride(shapes[2].cols) / 16;
    const double ms = medianMs(st, 5, [&] {
      for (int l = 0; l < layers; ++l) {
        readKernel<<<prop.multiProcessorCount * 8, 512, 0, st>>>(
            reinterpret_cast<const uint4 *>(w[2][l]), n, sink);
      }
    });
    bw = double(n) * 16 * layers / (ms * 1e-3) / 1e9;
    std::printf("read bandwidth: %.0f GB/s\n", bw);
  }
  std::printf("one step's products: %.2f GB in q4 g128, %.2f GB in f16 (%d layers)\n",
              stepBytes / 1e9, stepBytesF16 / 1e9, layers);
  std::printf("%-48s %8s %8s %6s %9s %9s %9s %9s %4s\n", "variant", "step us", "GB/s", "of bw",
              "qkv us", "o us", "gu us", "down us", "regs");

  bool allOk = true;
  for (const Variant &v : vars) {
    cudaFuncAttributes fa;
    ck(cudaFuncGetAttributes(&fa, v.fn), "attributes");
    // Correctness: layer 0 of each shape.
    bool ok = true;
    double worst = 0;
    for (int s = 0; s < 4; ++s) {
      ck(cudaMemset(y[s], 0, shapes[s].rows * 4), "memset");
      product(v, s, 0);
      ck(cudaStreamSynchronize(st), "check run");
      std::vector<float> hy(shapes[s].rows);
      ck(cudaMemcpy(hy.data(), y[s], hy.size() * 4, cudaMemcpyDeviceToHost), "memcpy");
      double amax = 0, diff = 0;
      const std::vector<double> &want = v.f16 ? refH[s] : ref[s];
      for (int64_t r = 0; r < shapes[s].rows; ++r) {
        amax = std::max(amax, std::fabs(want[r]));
        diff = std::max(diff, std::fabs(want[r] - hy[r]));
      }
      worst = std::max(worst, diff / amax);
      ok = ok && diff <= 1e-4 * amax;
    }
    if (!ok) {
      std::printf("%-48s WRONG: max difference %.3g of the largest output\n",
                  v.name.c_str(), worst);
      allOk = false;
      continue;
    }
    // Timing: the whole step, then each shape alone, each as one graph.
    auto timeGraph = [&](int only) {
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      ck(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal), "capture");
      for (int l = 0; l < layers; ++l) {
        for (int s = 0; s < 4; ++s) {
          if (only < 0 || only == s) {
            product(v, s, l);
          }
        }
      }
      ck(cudaStreamEndCapture(st, &graph), "end capture");
      ck(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
      ck(cudaGraphLaunch(exec, st), "graph launch"); // warm-up
      const double ms =
          medianMs(st, reps, [&] { ck(cudaGraphLaunch(exec, st), "graph launch"); });
      ck(cudaGraphExecDestroy(exec), "destroy");
      ck(cudaGraphDestroy(graph), "destroy");
      return ms * 1e3; // us
    };
    const double step = timeGraph(-1);
    double per[4];
    for (int s = 0; s < 4; ++s) {
      per[s] = timeGraph(s) / layers;
    }
    const double bytes = v.f16 ? stepBytesF16 : stepBytes;
    std::printf("%-48s %8.0f %8.0f %5.1f%% %9.2f %9.2f %9.2f %9.2f %4d\n", v.name.c_str(),
                step, bytes / (step * 1e-6) / 1e9, 100.0 * bytes / (step * 1e-6) / 1e9 / bw, per[0], per[1], per[2], per[3], fa.numRegs);
    std::fflush(stdout);
  }
  return allOk ? 0 : 1;
}
