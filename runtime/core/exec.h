// The state behind llmc_exec: what the kernels of one session share.
#ifndef LLMC_RUNTIME_CORE_EXEC_H
#define LLMC_RUNTIME_CORE_EXEC_H

#include "llmc/program.h"
#include "runtime/core/gpu.h"
#include "runtime/core/pages.h"
#include "runtime/core/threadpool.h"
#include "runtime/kernels/kernels.h"

#include <algorithm>
#include <vector>

struct llmc_exec {
  // A session on a GPU: every llmc_k_* call goes to it (pointers are the
  // device's), and nothing below is used.
  llmc::gpu::Session *gpu = nullptr;
  llmc::ThreadPool *pool = nullptr;
  const llmc::kernels::KernelTable *k = nullptr;
  std::vector<llmc_cache_layer> layers; // the program's cache layout
  std::vector<size_t> layerOffset;      // floats before each layer's cache
  int64_t ctx = 0;           // positions the cache holds
  // Per layer: [kv_head][ctx][head_dim], in pages touched only where a
  // position is written, so a short sequence in a long context stays small.
  // f16 (the default for sessions) or f32 elements.
  bool kvHalf = false;
  llmc::PageBuffer<float> kCache, vCache;        // f32 cache
  llmc::PageBuffer<uint16_t> kCacheH, vCacheH;   // f16 cache
  std::vector<float> scratch; // per thread: ctx attention scores
  std::vector<llmc::kernels::ActBlock> act; // quantized activations
  // Grown on first use, then reused: the kernels allocate nothing per call
  // once a session has run its longest call.
  std::vector<float> normWeight; // an RMSNorm weight in f32
  std::vector<float> normed;     // RMS-normalized input rows (float weights)
  std::vector<float> rows;       // per thread: one row of scratch
  std::vector<float> streamRows; // per thread: a decode chunk's products
  std::vector<float> blockRows;  // per thread: an f16x16 prefill block's products
  std::vector<float> ropeCos, ropeSin; // [n][head_dim / 2] angles of a call
  // Greedy decoding (llmc_session_prefill_argmax): the LM head of a one-row
  // call finds its largest logit (into `argmax`) instead of writing logits;
  // per thread, the best value and id so far.
  bool argmaxOnly = false;
  int32_t argmax = -1;
  std::vector<float> bestValue;
  std::vector<int64_t> bestIndex;

  /// Allocates the cache of `cacheLayers` (f16 elements when `half`) and
  /// scratch for `nCtx` positions.
  void init(llmc::ThreadPool *p, const llmc::kernels::KernelTable *kt,
            const std::vector<llmc_cache_layer> &cacheLayers, int64_t nCtx,
            bool half = false) {
    pool = p;
    k = kt;
    layers = cacheLayers;
    ctx = nCtx;
    layerOffset.clear();
    size_t total = 0;
    for (const llmc_cache_layer &l : layers) {
      layerOffset.push_back(total);
      total += static_cast<size_t>(l.kv_heads * nCtx * l.head_dim);
    }
    kvHalf = half;
    kCache.assign(half ? 0 : total);
    vCache.assign(half ? 0 : total);
    kCacheH.assign(half ? total : 0);
    vCacheH.assign(half ? total : 0);
    scratch.assign(static_cast<size_t>(p->size() * nCtx), 0.0f);
  }
};

#endif // LLMC_RUNTIME_CORE_EXEC_H
