// The reference evaluator: the LLaMA forward pass written against the kernels, layer by layer.
// The runtime uses it for llmc_reference_program(); compression passes use
// it to run calibration text through the model being compressed.
#ifndef LLMC_RUNTIME_CORE_REFERENCE_H
#define LLMC_RUNTIME_CORE_REFERENCE_H

#include "runtime/core/exec.h"

#include <functional>
#include <vector>

namespace llmc {

/// One weight as the kernels take it.
struct RefWeight {
  const void *data = nullptr;
  int32_t format = LLMC_FORMAT_F32;
  int32_t group = 0;
  int32_t asym = 0;
};

struct RefLayer {
  RefWeight inputNorm, q, k, v, o, postNorm, gate, up, down;
};

struct RefModel {
  int64_t hidden = 0, ffn = 0, heads = 0, kvHeads = 0, headDim = 0, vocab = 0;
  float eps = 1e-5f, theta = 10000.0f;
  RefWeight embed, finalNorm, lmHead;
  std::vector<RefLayer> layers;
};

/// Where a linear layer's input is observed: the q/k/v input (after the
/// input norm), the o_proj input (attention output), the gate/up input
/// (after the post-attention norm) and the down_proj input.
enum class LinearSite { QKV = 0, O = 1, GateUp = 2, Down = 3 };

/// Called with the `n` x `width` input of the linears at `site`.
using SiteHook = std::function<void(LinearSite site, const float *x, int64_t n,
                                    int64_t width)>;

/// x[n, hidden] = embedding rows of `tokens`.
void referenceEmbed(const RefModel &m, llmc_exec *exec, const int32_t *tokens,
                    int64_t n, float *x);

/// Runs decoder layer `layer` in place on x[n, hidden] at positions
/// start..start+n-1, using cache layer `cacheLayer` of `exec`. `hook`, when
/// set, sees the input of each group of linears.
void referenceLayer(const RefModel &m, llmc_exec *exec, int64_t layer,
                    int64_t cacheLayer, float *x, int64_t n, int64_t start,
                    const SiteHook *hook = nullptr);

/// Final norm and logits of the last `rows` rows of x[n, hidden].
void referenceHead(const RefModel &m, llmc_exec *exec, const float *x,
                   int64_t n, int64_t rows, float *logits);

/// The whole forward pass (cache layer i for layer i).
void referenceForward(const RefModel &m, llmc_exec *exec,
                      const int32_t *tokens, int64_t n, int64_t start,
                      int64_t rows, float *logits);

} // namespace llmc

#endif // LLMC_RUNTIME_CORE_REFERENCE_H
