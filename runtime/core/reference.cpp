// The reference evaluator: the LLaMA forward pass written directly against the kernels, by tensor name.
#include "runtime/core/model.h"

#include <cmath>
#include <string>

namespace llmc {

namespace {

struct Weight {
  const void *data;
  int32_t format;
  int32_t group;
  int32_t asym;
};

Weight weight(const llmc_model &m, const std::string &name) {
  const artifact::TensorRef *t = m.reader->find(name);
  return {t->data, static_cast<int32_t>(t->format), t->groupSize,
          t->asymmetric ? 1 : 0};
}

} // namespace

void referenceForward(const llmc_model &m, llmc_exec *exec,
                      const int32_t *tokens, int64_t n, int64_t start,
                      int64_t logitsRows, float *logits) {
  const int64_t D = m.info.hidden_size, F = m.intermediateSize,
                H = m.numHeads, KV = m.numKvHeads, hd = m.headDim,
                V = m.info.vocab_size;
  std::vector<float> x(n * D), h(n * D), q(n * H * hd), k(n * KV * hd),
      v(n * KV * hd), a(n * H * hd), o(n * D), g(n * F), u(n * F);
  Weight emb = weight(m, "model.embed_tokens.weight");
  llmc_k_embedding(exec, emb.data, emb.format, emb.group, emb.asym, tokens, n,
                   D, x.data());
  auto linear = [&](const std::vector<float> &in, int64_t inDim,
                    const std::string &name, int64_t outDim,
                    std::vector<float> &out) {
    Weight w = weight(m, name);
    llmc_k_linear(exec, in.data(), n, inDim, w.data, w.format, w.group, w.asym,
                  outDim, nullptr, 0, out.data());
  };
  for (int64_t l = 0; l < m.info.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    Weight ln = weight(m, p + "input_layernorm.weight");
    llmc_k_rms_norm(exec, x.data(), n, D, ln.data, ln.format, m.rmsNormEps,
                    h.data());
    linear(h, D, p + "self_attn.q_proj.weight", H * hd, q);
    linear(h, D, p + "self_attn.k_proj.weight", KV * hd, k);
    linear(h, D, p + "self_attn.v_proj.weight", KV * hd, v);
    llmc_k_rope(exec, q.data(), q.data(), n, H, hd, m.ropeTheta, start);
    llmc_k_rope(exec, k.data(), k.data(), n, KV, hd, m.ropeTheta, start);
    llmc_k_attention(exec, l, q.data(), k.data(), v.data(), n, start, H, KV,
                     hd, a.data());
    linear(a, H * hd, p + "self_attn.o_proj.weight", D, o);
    for (int64_t i = 0; i < n * D; ++i) {
      x[i] += o[i];
    }
    Weight pn = weight(m, p + "post_attention_layernorm.weight");
    llmc_k_rms_norm(exec, x.data(), n, D, pn.data, pn.format, m.rmsNormEps,
                    h.data());
    linear(h, D, p + "mlp.gate_proj.weight", F, g);
    linear(h, D, p + "mlp.up_proj.weight", F, u);
    for (int64_t i = 0; i < n * F; ++i) {
      g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }
    linear(g, F, p + "mlp.down_proj.weight", D, o);
    for (int64_t i = 0; i < n * D; ++i) {
      x[i] += o[i];
    }
  }
  Weight fn = weight(m, "model.norm.weight");
  const float *last = x.data() + (n - logitsRows) * D;
  llmc_k_rms_norm(exec, last, logitsRows, D, fn.data, fn.format, m.rmsNormEps,
                  h.data());
  Weight head = weight(m, m.tied ? "model.embed_tokens.weight" : "lm_head.weight");
  llmc_k_linear(exec, h.data(), logitsRows, D, head.data, head.format,
                head.group, head.asym, V, nullptr, 0, logits);
}

} // namespace llmc
