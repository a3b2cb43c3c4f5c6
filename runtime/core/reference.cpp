// The reference evaluator: the LLaMA forward pass written directly against the kernels.
#include "runtime/core/reference.h"

#include <cmath>

namespace llmc {

namespace {

void linear(llmc_exec *exec, const float *x, int64_t n, int64_t in,
            const RefWeight &w, int64_t out, float *y) {
  llmc_k_linear(exec, x, n, in, w.data, w.format, w.group, w.asym, out,
                nullptr, 0, y);
}

void rmsNorm(const RefModel &m, llmc_exec *exec, const float *x, int64_t n,
             const RefWeight &w, float *y) {
  llmc_k_rms_norm(exec, x, n, m.hidden, w.data, w.format, m.eps, y);
}

} // namespace

void referenceEmbed(const RefModel &m, llmc_exec *exec, const int32_t *tokens,
                    int64_t n, float *x) {
  llmc_k_embedding(exec, m.embed.data, m.embed.format, m.embed.group,
                   m.embed.asym, tokens, n, m.hidden, x);
}

void referenceLayer(const RefModel &m, llmc_exec *exec, int64_t layer,
                    int64_t cacheLayer, float *x, int64_t n, int64_t start,
                    const SiteHook *hook) {
  const int64_t D = m.hidden, F = m.ffn, H = m.heads, KV = m.kvHeads,
                hd = m.headDim;
  const RefLayer &L = m.layers[layer];
  std::vector<float> h(n * D), q(n * H * hd), k(n * KV * hd), v(n * KV * hd),
      a(n * H * hd), o(n * D), g(n * F), u(n * F);
  rmsNorm(m, exec, x, n, L.inputNorm, h.data());
  if (hook) {
    (*hook)(LinearSite::QKV, h.data(), n, D);
  }
  linear(exec, h.data(), n, D, L.q, H * hd, q.data());
  linear(exec, h.data(), n, D, L.k, KV * hd, k.data());
  linear(exec, h.data(), n, D, L.v, KV * hd, v.data());
  llmc_k_rope(exec, q.data(), q.data(), n, H, hd, m.theta, start);
  llmc_k_rope(exec, k.data(), k.data(), n, KV, hd, m.theta, start);
  llmc_k_attention(exec, cacheLayer, q.data(), k.data(), v.data(), n, start, H,
                   KV, hd, a.data());
  if (hook) {
    (*hook)(LinearSite::O, a.data(), n, H * hd);
  }
  linear(exec, a.data(), n, H * hd, L.o, D, o.data());
  for (int64_t i = 0; i < n * D; ++i) {
    x[i] += o[i];
  }
  rmsNorm(m, exec, x, n, L.postNorm, h.data());
  if (hook) {
    (*hook)(LinearSite::GateUp, h.data(), n, D);
  }
  linear(exec, h.data(), n, D, L.gate, F, g.data());
  linear(exec, h.data(), n, D, L.up, F, u.data());
  for (int64_t i = 0; i < n * F; ++i) {
    g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
  if (hook) {
    (*hook)(LinearSite::Down, g.data(), n, F);
  }
  linear(exec, g.data(), n, F, L.down, D, o.data());
  for (int64_t i = 0; i < n * D; ++i) {
    x[i] += o[i];
  }
}

void referenceHead(const RefModel &m, llmc_exec *exec, const float *x,
                   int64_t n, int64_t rows, float *logits) {
  std::vector<float> h(rows * m.hidden);
  rmsNorm(m, exec, x + (n - rows) * m.hidden, rows, m.finalNorm, h.data());
  linear(exec, h.data(), rows, m.hidden, m.lmHead, m.vocab, logits);
}

void referenceForward(const RefModel &m, llmc_exec *exec,
                      const int32_t *tokens, int64_t n, int64_t start,
                      int64_t rows, float *logits) {
  std::vector<float> x(n * m.hidden);
  referenceEmbed(m, exec, tokens, n, x.data());
  for (int64_t l = 0; l < static_cast<int64_t>(m.layers.size()); ++l) {
    referenceLayer(m, exec, l, l, x.data(), n, start);
  }
  referenceHead(m, exec, x.data(), n, rows, logits);
}

} // namespace llmc
