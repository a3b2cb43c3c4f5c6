// refbench: the reference line of llmc's GPU benchmark.
//
// Batch-1 decode of a LLaMA model is bound by reading the weights once per
// token, so the useful yardsticks for llmc's decode are:
//   * what cuBLAS's f16 matrix-vector product reaches over exactly the weights
//     one llmc decode step reads (shape mode), and
//   * the card's own read bandwidth, measured in the same run (--bandwidth),
// so that llmc's tokens/s and GB/s can be put next to numbers from the same
// device, driver and clocks.
//
// Shape mode: per layer, fused qkv [(NH + 2*NKV) * H/NH, H], o [H, H], fused
// gate+up [2F, H], down [H, F]; then lm_head [V, H]. Each weight is its own f16
// allocation, row-major [out, in]. Every product is cublasGemmEx with n = 1
// (f16 in/out, 32-bit compute). The whole step is captured into a CUDA graph on
// one stream, replayed once to warm up, then R replays are timed.
//
// Build: nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90
//        -gencode arch=compute_80,code=sm_80 bench/gpu/reference_bench.cu
//        -lcublas -o /tmp/refbench
// Usage: refbench --hidden H --ffn F --layers L --heads NH --kv-heads NKV
//                 --vocab V [--label NAME] [--reps R]
//        refbench --bandwidth
// Output: one JSON line on stdout. Errors: one line on stderr, exit status 1.

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

[[noreturn]] static void die(const std::string &what, const char *why) {
  std::fprintf(stderr, "refbench: %s: %s\n", what.c_str(), why);
  std::exit(1);
}
static void ck(cudaError_t e, const char *what) {
  if (e != cudaSuccess) die(what, cudaGetErrorString(e));
}
static void ckb(cublasStatus_t s, const char *what) {
  if (s != CUBLAS_STATUS_SUCCESS) die(what, cublasGetStatusString(s));
}

// JSON string body with quotes, backslashes and control characters escaped.
static std::string json_str(const char *s) {
  std::string out = "\"";
  for (; *s; ++s) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { out += '\\'; out += (char)c; }
    else if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out += b; }
    else out += (char)c;
  }
  return out + "\"";
}

__device__ __forceinline__ uint32_t mix(uint64_t i, uint32_t seed) {
  uint32_t h = (uint32_t)i * 0x9E3779B1u ^ (uint32_t)(i >> 32) ^ seed;
  h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
  return h;
}

__global__ void fill_u32(uint32_t *p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = mix(i, seed);
}

// Uniform values in [-scale, scale].
__global__ void fill_half(__half *p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    p[i] = __float2half(((mix(i, seed) & 0xFFFFu) / 65535.0f * 2.0f - 1.0f) * scale);
}

// Streams n 16-byte words, four loads in flight per thread, and folds them
// into one word so the compiler cannot drop the reads.
__global__ void read_xor(const uint4 *__restrict__ p, size_t n, unsigned *out) {
  const size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  unsigned acc = 0;
  for (; i + 3 * stride < n; i += 4 * stride) {
    uint4 a = p[i], b = p[i + stride], c = p[i + 2 * stride], d = p[i + 3 * stride];
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w;
    acc ^= c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) { uint4 a = p[i]; acc ^= a.x ^ a.y ^ a.z ^ a.w; }
  for (int o = 16; o > 0; o >>= 1) acc ^= __shfl_xor_sync(0xFFFFFFFFu, acc, o);
  if ((threadIdx.x & 31) == 0) atomicXor(out, acc);
}

static int grid_for(int blocks_per_sm) {
  int dev = 0, sms = 0;
  ck(cudaGetDevice(&dev), "cudaGetDevice");
  ck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  return sms * blocks_per_sm;
}

static void fill_halves(__half *p, size_t n, uint32_t seed, float scale) {
  fill_half<<<grid_for(4), 256>>>(p, n, seed, scale);
  ck(cudaGetLastError(), "fill_half launch");
}

// Times fn() `runs` times with events on the default stream; sorted ms.
template <class F> static std::vector<float> time_runs(int runs, F fn) {
  cudaEvent_t a, b;
  ck(cudaEventCreate(&a), "cudaEventCreate");
  ck(cudaEventCreate(&b), "cudaEventCreate");
  std::vector<float> ms(runs);
  for (int r = 0; r < runs; ++r) {
    ck(cudaEventRecord(a, 0), "cudaEventRecord");
    fn();
    ck(cudaEventRecord(b, 0), "cudaEventRecord");
    ck(cudaEventSynchronize(b), "cudaEventSynchronize");
    ck(cudaEventElapsedTime(&ms[r], a, b), "cudaEventElapsedTime");
  }
  ck(cudaEventDestroy(a), "cudaEventDestroy");
  ck(cudaEventDestroy(b), "cudaEventDestroy");
  std::sort(ms.begin(), ms.end());
  return ms;
}

static void bandwidth(const char *device) {
  const size_t bytes = size_t(2) << 30, runs = 10;
  void *buf = nullptr;
  unsigned *out = nullptr;
  ck(cudaMalloc(&buf, bytes), "cudaMalloc 2 GiB");
  ck(cudaMalloc(&out, sizeof(unsigned)), "cudaMalloc");
  ck(cudaMemset(out, 0, sizeof(unsigned)), "cudaMemset");
  fill_u32<<<grid_for(4), 256>>>((uint32_t *)buf, bytes / 4, 12345u);
  ck(cudaGetLastError(), "fill_u32 launch");
  const int grid = grid_for(8);
  auto read = [&] {
    read_xor<<<grid, 256>>>((const uint4 *)buf, bytes / sizeof(uint4), out);
    ck(cudaGetLastError(), "read_xor launch");
  };
  read();  // warm-up
  ck(cudaDeviceSynchronize(), "read warm-up");
  std::vector<float> r = time_runs(runs, read);
  double med = (r[runs / 2 - 1] + r[runs / 2]) / 2.0;
  double read_best = bytes / (r[0] * 1e-3) / 1e9, read_med = bytes / (med * 1e-3) / 1e9;

  // Device-to-device copy of the first half onto the second half; counted as
  // read + write, i.e. 2x the copy size.
  const size_t half = bytes / 2;
  char *src = (char *)buf;
  auto copy = [&] {
    ck(cudaMemcpyAsync(src + half, src, half, cudaMemcpyDeviceToDevice, 0), "cudaMemcpyAsync D2D");
  };
  copy();  // warm-up
  ck(cudaDeviceSynchronize(), "D2D warm-up");
  std::vector<float> c = time_runs(runs, copy);
  double d2d = 2.0 * half / (c[0] * 1e-3) / 1e9;

  ck(cudaFree(out), "cudaFree");
  ck(cudaFree(buf), "cudaFree");
  std::printf("{\"what\":\"bandwidth\",\"device\":%s,\"read_gbs\":%.1f,\"read_gbs_median\":%.1f,"
              "\"d2d_gbs\":%.1f,\"read_bytes\":%zu,\"runs\":%zu,"
              "\"d2d_note\":\"best of runs; copy of %zu bytes counted as read+write (2x)\"}\n",
              json_str(device).c_str(), read_best, read_med, d2d, bytes, runs, half);
}

struct Shape { long long hidden = 0, ffn = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, reps = 50; };

static void gemv_step(const Shape &s, const char *label) {
  const long long hd = s.hidden / s.heads, qkv = (s.heads + 2 * s.kv_heads) * hd;
  struct Mat { long long out, in; __half *w; };
  std::vector<Mat> mats;  // in decode order
  for (long long l = 0; l < s.layers; ++l) {
    mats.push_back({qkv, s.hidden, nullptr});
    mats.push_back({s.hidden, s.hidden, nullptr});
    mats.push_back({2 * s.ffn, s.hidden, nullptr});
    mats.push_back({s.hidden, s.ffn, nullptr});
  }
  mats.push_back({s.vocab, s.hidden, nullptr});
  size_t weight_bytes = 0;
  for (const Mat &m : mats) weight_bytes += (size_t)m.out * m.in * sizeof(__half);

  size_t free_b = 0, total_b = 0;
  ck(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  if (weight_bytes + (size_t(256) << 20) > free_b) {
    std::fprintf(stderr, "refbench: weights need %.2f GB but only %.2f GB of device memory is free\n",
                 weight_bytes / 1e9, free_b / 1e9);
    std::exit(1);
  }
  uint32_t seed = 1;
  for (Mat &m : mats) {
    ck(cudaMalloc(&m.w, (size_t)m.out * m.in * sizeof(__half)), "cudaMalloc weight");
    fill_halves(m.w, (size_t)m.out * m.in, seed++, 1.0f / std::sqrt((float)m.in));
  }
  // Activations: x [H], qkv [qkv], gu [2F], logits [V]. o reads the q part of
  // qkv (standing in for the attention output), down reads the first F of gu.
  __half *x, *q, *gu, *logits;
  ck(cudaMalloc(&x, s.hidden * sizeof(__half)), "cudaMalloc x");
  ck(cudaMalloc(&q, qkv * sizeof(__half)), "cudaMalloc qkv");
  ck(cudaMalloc(&gu, 2 * s.ffn * sizeof(__half)), "cudaMalloc gate_up");
  ck(cudaMalloc(&logits, s.vocab * sizeof(__half)), "cudaMalloc logits");
  fill_halves(x, s.hidden, 999u, 1.0f);
  fill_halves(q, qkv, 998u, 1.0f);
  fill_halves(gu, 2 * s.ffn, 997u, 1.0f);
  ck(cudaDeviceSynchronize(), "weight fill");

  cudaStream_t st;
  cublasHandle_t h;
  void *ws = nullptr;
  const size_t ws_bytes = size_t(32) << 20;
  ck(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreate");
  ckb(cublasCreate(&h), "cublasCreate");
  ckb(cublasSetStream(h, st), "cublasSetStream");
  ck(cudaMalloc(&ws, ws_bytes), "cudaMalloc cublas workspace");
  ckb(cublasSetWorkspace(h, ws, ws_bytes), "cublasSetWorkspace");

  // y[out] = W[out, in] x[in]: W row-major is column-major [in, out], so op T.
  const float one = 1.0f, zero = 0.0f;
  auto gemv = [&](const Mat &m, const __half *in, __half *out) {
    ckb(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)m.out, 1, (int)m.in, &one, m.w, CUDA_R_16F,
                     (int)m.in, in, CUDA_R_16F, (int)m.in, &zero, out, CUDA_R_16F, (int)m.out,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
  };
  auto step = [&] {
    for (long long l = 0; l < s.layers; ++l) {
      const Mat *m = &mats[4 * l];
      gemv(m[0], x, q);      // qkv
      gemv(m[1], q, x);      // o
      gemv(m[2], x, gu);     // gate+up
      gemv(m[3], gu, x);     // down
    }
    gemv(mats.back(), x, logits);  // lm_head
  };
  step();  // eager run so cuBLAS picks and loads its kernels outside capture
  ck(cudaStreamSynchronize(st), "eager step");

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ck(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  step();
  ck(cudaStreamEndCapture(st, &graph), "cudaStreamEndCapture");
  ck(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  ck(cudaGraphLaunch(exec, st), "cudaGraphLaunch warm-up");
  ck(cudaStreamSynchronize(st), "graph warm-up");

  cudaEvent_t a, b;
  ck(cudaEventCreate(&a), "cudaEventCreate");
  ck(cudaEventCreate(&b), "cudaEventCreate");
  ck(cudaEventRecord(a, st), "cudaEventRecord");
  for (long long r = 0; r < s.reps; ++r) ck(cudaGraphLaunch(exec, st), "cudaGraphLaunch");
  ck(cudaEventRecord(b, st), "cudaEventRecord");
  ck(cudaEventSynchronize(b), "cudaEventSynchronize");
  float total_ms = 0;
  ck(cudaEventElapsedTime(&total_ms, a, b), "cudaEventElapsedTime");
  const double ms = total_ms / s.reps;

  ck(cudaEventDestroy(a), "cudaEventDestroy");
  ck(cudaEventDestroy(b), "cudaEventDestroy");
  ck(cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
  ck(cudaGraphDestroy(graph), "cudaGraphDestroy");
  ckb(cublasDestroy(h), "cublasDestroy");
  ck(cudaStreamDestroy(st), "cudaStreamDestroy");
  for (void *p : {(void *)ws, (void *)x, (void *)q, (void *)gu, (void *)logits}) ck(cudaFree(p), "cudaFree");
  for (Mat &m : mats) ck(cudaFree(m.w), "cudaFree weight");

  std::printf("{\"what\":\"cublas_f16_gemv\",\"label\":%s,\"ms\":%.4f,\"tokens_per_s\":%.2f,"
              "\"weight_bytes\":%zu,\"gbs\":%.1f,\"reps\":%lld}\n",
              json_str(label).c_str(), ms, 1000.0 / ms, weight_bytes,
              weight_bytes / (ms * 1e-3) / 1e9, s.reps);
}

[[noreturn]] static void usage(const char *why) {
  std::fprintf(stderr,
               "refbench: %s (usage: refbench --hidden H --ffn F --layers L --heads NH "
               "--kv-heads NKV --vocab V [--label NAME] [--reps R] | refbench --bandwidth)\n",
               why);
  std::exit(1);
}

int main(int argc, char **argv) {
  Shape s;
  bool bw = false;
  const char *label = "";
  struct Opt { const char *name; long long *v; } opts[] = {
      {"--hidden", &s.hidden}, {"--ffn", &s.ffn}, {"--layers", &s.layers}, {"--heads", &s.heads},
      {"--kv-heads", &s.kv_heads}, {"--vocab", &s.vocab}, {"--reps", &s.reps}};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--bandwidth") { bw = true; continue; }
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char *val = argv[++i];
    if (a == "--label") { label = val; continue; }
    Opt *o = std::find_if(std::begin(opts), std::end(opts), [&](const Opt &x) { return a == x.name; });
    if (o == std::end(opts)) usage(("unknown argument " + a).c_str());
    char *end = nullptr;
    long long v = std::strtoll(val, &end, 10);
    if (*val == '\0' || *end != '\0' || v <= 0 || v > (1LL << 24))
      usage((a + " needs a positive integer up to 16777216, got '" + val + "'").c_str());
    *o->v = v;
  }
  if (bw && argc != 2) usage("--bandwidth takes no other arguments");
  if (!bw) {
    for (const Opt &o : opts)
      if (*o.v == 0) usage((std::string("missing ") + o.name).c_str());
    if (s.hidden % s.heads) usage("--hidden must be divisible by --heads");
    if (s.kv_heads > s.heads || s.heads % s.kv_heads) usage("--heads must be a multiple of --kv-heads");
    if (2 * s.ffn > INT32_MAX || s.vocab * s.hidden > (1LL << 40)) usage("shape too large");
  }

  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::fprintf(stderr, "refbench: no CUDA device found%s%s\n", e != cudaSuccess ? ": " : "",
                 e != cudaSuccess ? cudaGetErrorString(e) : "");
    return 1;
  }
  cudaDeviceProp prop;
  ck(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  ck(cudaSetDevice(0), "cudaSetDevice");
  if (bw) bandwidth(prop.name);
  else gemv_step(s, label);
  return 0;
}
