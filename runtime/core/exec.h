// The state behind llmc_exec: what the kernels of one session share.
#ifndef LLMC_RUNTIME_CORE_EXEC_H
#define LLMC_RUNTIME_CORE_EXEC_H

#include "llmc/program.h"
#include "runtime/core/threadpool.h"
#include "runtime/kernels/kernels.h"

#include <vector>

struct llmc_exec {
  llmc::ThreadPool *pool = nullptr;
  const llmc::kernels::KernelTable *k = nullptr;
  int64_t layers = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  int64_t ctx = 0;           // positions the cache holds
  std::vector<float> kCache; // [layer][kv_head][ctx][head_dim]
  std::vector<float> vCache;
  std::vector<float> scratch; // per thread: ctx attention scores
  std::vector<llmc::kernels::ActBlock> act; // quantized activations

  /// Allocates the cache and scratch for `ctx` positions.
  void init(llmc::ThreadPool *p, const llmc::kernels::KernelTable *kt,
            int64_t nLayers, int64_t nKvHeads, int64_t hd, int64_t nCtx) {
    pool = p;
    k = kt;
    layers = nLayers;
    kvHeads = nKvHeads;
    headDim = hd;
    ctx = nCtx;
    size_t cache = static_cast<size_t>(nLayers * nKvHeads * nCtx * hd);
    kCache.assign(cache, 0.0f);
    vCache.assign(cache, 0.0f);
    scratch.assign(static_cast<size_t>(p->size() * nCtx), 0.0f);
  }
};

#endif // LLMC_RUNTIME_CORE_EXEC_H
