// The evaluator: an op list executed with the llmc_k_* kernels, values freed after their last use.
#include "runtime/core/evaluator.h"

#include "runtime/kernels/quant.h"

#include <cmath>

namespace llmc::eval {

namespace {

const char *kindName(OpKind k) {
  switch (k) {
  case OpKind::Embedding: return "embedding";
  case OpKind::RMSNorm: return "rms_norm";
  case OpKind::Linear: return "linear";
  case OpKind::RoPE: return "rope";
  case OpKind::Attention: return "attention";
  case OpKind::SiLU: return "silu";
  case OpKind::Add: return "add";
  case OpKind::Mul: return "mul";
  case OpKind::LMHead: return "lm_head";
  }
  return "?";
}

bool isFloatFormat(int32_t f) {
  return f == LLMC_FORMAT_F32 || f == LLMC_FORMAT_F16 || f == LLMC_FORMAT_BF16;
}

} // namespace

Evaluator::Evaluator(Program program) : program_(std::move(program)) {
  const size_t none = program_.ops.size();
  const size_t nv = program_.numValues > 0 ? program_.numValues : 0;
  def_.assign(nv, none);
  lastUse_.assign(nv, 0);
  for (size_t i = 0; i < program_.ops.size(); ++i) {
    for (int32_t v : program_.ops[i].results) {
      if (v >= 0 && static_cast<size_t>(v) < nv) {
        def_[v] = i;
        lastUse_[v] = i; // a result nothing reads dies where it is made
      }
    }
    for (int32_t v : program_.ops[i].inputs) {
      if (v >= 0 && static_cast<size_t>(v) < nv) {
        lastUse_[v] = i;
      }
    }
  }
  if (program_.output >= 0 && static_cast<size_t>(program_.output) < nv) {
    lastUse_[program_.output] = none;
  }
}

std::string Evaluator::validate(const std::vector<Weight> &weights,
                                int64_t vocab) const {
  const Program &p = program_;
  if (p.numValues <= 0 || p.ops.empty()) {
    return "the program is empty";
  }
  std::vector<int64_t> width(p.numValues, -1);
  bool sawOutput = false;
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const Op &op = p.ops[i];
    std::string where = "op " + std::to_string(i) + " (" + kindName(op.kind) + "): ";
    auto bad = [&](const std::string &m) { return where + m; };
    // Operands and results.
    std::vector<int64_t> in;
    for (int32_t v : op.inputs) {
      if (v < 0 || v >= p.numValues || width[v] < 0) {
        return bad("reads value " + std::to_string(v) + " before it is defined");
      }
      in.push_back(width[v]);
    }
    if (op.results.empty() || op.results.size() != op.widths.size()) {
      return bad("results and widths disagree");
    }
    int64_t outTotal = 0;
    for (size_t r = 0; r < op.results.size(); ++r) {
      int32_t v = op.results[r];
      if (v < 0 || v >= p.numValues || width[v] >= 0) {
        return bad("defines value " + std::to_string(v) + " twice or out of range");
      }
      if (op.widths[r] <= 0 || op.widths[r] > (int64_t(1) << 31)) {
        return bad("result width " + std::to_string(op.widths[r]) + " is invalid");
      }
      width[v] = op.widths[r];
      outTotal += op.widths[r];
    }
    const int64_t W = op.widths[0];
    auto weight = [&](int32_t idx) -> const Weight * {
      return idx >= 0 && static_cast<size_t>(idx) < weights.size()
                 ? &weights[idx]
                 : nullptr;
    };
    auto nIn = [&](size_t k) { return op.inputs.size() == k; };
    auto shape2 = [](const Weight *w, int64_t a, int64_t b) {
      return w->shape.size() == 2 && w->shape[0] == a && w->shape[1] == b;
    };
    switch (op.kind) {
    case OpKind::Embedding: {
      const Weight *t = weight(op.weight);
      if (!nIn(0) || op.results.size() != 1 || !t || !shape2(t, vocab, W)) {
        return bad("needs a [" + std::to_string(vocab) + ", " +
                   std::to_string(W) + "] table");
      }
      if (llmc::kernels::isInterleavedFormat(t->format)) {
        return bad("its table cannot be stored with rows interleaved");
      }
      break;
    }
    case OpKind::RMSNorm: {
      const Weight *w = weight(op.weight);
      if (!nIn(1) || op.results.size() != 1 || in[0] != W || !w ||
          w->shape.size() != 1 || w->shape[0] != W || !isFloatFormat(w->format) ||
          !(op.eps > 0.0f)) {
        return bad("needs one input of its own width, a float [" +
                   std::to_string(W) + "] weight and a positive eps");
      }
      break;
    }
    case OpKind::Linear:
    case OpKind::LMHead: {
      const Weight *w = weight(op.weight);
      const bool residual = op.kind == OpKind::Linear && nIn(2);
      const bool swiglu = op.swigluBlock != 0;
      // A SwiGLU linear's weight has a gate and an up row per result column.
      const int64_t rows = swiglu ? 2 * outTotal : outTotal;
      if (!(nIn(1) || residual) || !w || !shape2(w, rows, in[0])) {
        return bad("weight must be [" + std::to_string(rows) + ", " +
                   std::to_string(in.empty() ? 0 : in[0]) + "]");
      }
      if ((residual || swiglu) && op.kind != OpKind::Linear) {
        return bad("only a linear takes a fused residual or SwiGLU");
      }
      if (op.norm >= 0) {
        const Weight *g = weight(op.norm);
        if (!g || g->shape.size() != 1 || g->shape[0] != in[0] ||
            !isFloatFormat(g->format) || !(op.eps > 0.0f)) {
          return bad("its fused norm needs a float [" + std::to_string(in[0]) +
                     "] weight and a positive eps");
        }
      }
      if (residual && (op.results.size() != 1 || in[1] != W)) {
        return bad("its residual must be one input of its result's width");
      }
      if (swiglu && (op.results.size() != 1 || residual || op.swigluBlock < 0 ||
                     op.swigluBlock % 16 != 0 || op.swigluBlock > 64)) {
        return bad("SwiGLU needs one result, no residual and a block of "
                   "16, 32, 48 or 64 rows");
      }
      if (op.bias >= 0) {
        const Weight *b = weight(op.bias);
        if (op.kind != OpKind::Linear || !b || b->shape.size() != 1 ||
            b->shape[0] != rows || !isFloatFormat(b->format)) {
          return bad("bias must be a float [" + std::to_string(rows) + "]");
        }
      }
      if (op.kind == OpKind::LMHead) {
        if (op.results.size() != 1 || W != vocab || op.results[0] != p.output) {
          return bad("must produce the program's [" + std::to_string(vocab) +
                     "]-wide logits");
        }
        sawOutput = true;
      }
      break;
    }
    case OpKind::RoPE:
      if (!nIn(1) || op.results.size() != 1 || in[0] != W || op.heads <= 0 ||
          op.headDim <= 0 || op.headDim % 2 != 0 || op.heads * op.headDim != W ||
          !(op.theta > 0.0f)) {
        return bad("needs heads x an even head_dim = its width and theta > 0");
      }
      break;
    case OpKind::Attention: {
      if (op.theta != 0.0f && (!(op.theta > 0.0f) || op.headDim % 2 != 0)) {
        return bad("fused RoPE needs theta > 0 and an even head_dim");
      }
      if (!nIn(3) || op.results.size() != 1 || op.heads <= 0 ||
          op.kvHeads <= 0 || op.headDim <= 0 || op.heads % op.kvHeads != 0 ||
          in[0] != op.heads * op.headDim || W != in[0] ||
          in[1] != op.kvHeads * op.headDim || in[2] != in[1]) {
        return bad("q/k/v widths do not match its head counts");
      }
      if (op.layer < 0 || static_cast<size_t>(op.layer) >= p.cache.size() ||
          p.cache[op.layer].kv_heads != op.kvHeads ||
          p.cache[op.layer].head_dim != op.headDim) {
        return bad("cache layer " + std::to_string(op.layer) +
                   " is missing or has another shape");
      }
      break;
    }
    case OpKind::SiLU:
      if (!nIn(1) || op.results.size() != 1 || in[0] != W) {
        return bad("needs one input of its own width");
      }
      break;
    case OpKind::Add:
    case OpKind::Mul:
      if (!nIn(2) || op.results.size() != 1 || in[0] != W || in[1] != W) {
        return bad("needs two inputs of its own width");
      }
      break;
    default:
      return bad("unknown op kind");
    }
  }
  if (!sawOutput) {
    return "the program has no lm_head producing its output";
  }
  return "";
}

void Evaluator::runOp(size_t i, llmc_exec *exec,
                      const std::vector<Weight> &weights, State &state,
                      const int32_t *tokens, int64_t n, int64_t start,
                      int64_t logitsRows, float *logits,
                      int64_t cacheSlot) const {
  const Op &op = program_.ops[i];
  auto &vals = state.values;
  auto in = [&](size_t k) { return vals[op.inputs[k]].data(); };
  auto out = [&](size_t r) {
    std::vector<float> &v = vals[op.results[r]];
    v.resize(static_cast<size_t>(n * op.widths[r]));
    return v.data();
  };
  const Weight *w = op.weight >= 0 ? &weights[op.weight] : nullptr;
  const int64_t W = op.widths[0];
  switch (op.kind) {
  case OpKind::Embedding:
    llmc_k_embedding(exec, w->data, w->format, w->group, w->asym, tokens, n, W,
                     out(0));
    break;
  case OpKind::RMSNorm:
    llmc_k_rms_norm(exec, in(0), n, W, w->data, w->format, op.eps, out(0));
    break;
  case OpKind::Linear: {
    const Weight *b = op.bias >= 0 ? &weights[op.bias] : nullptr;
    const Weight *g = op.norm >= 0 ? &weights[op.norm] : nullptr;
    std::vector<float *> ys;
    int64_t total = 0;
    for (size_t r = 0; r < op.results.size(); ++r) {
      ys.push_back(out(r));
      total += op.widths[r];
    }
    const int64_t rows = op.swigluBlock > 0 ? 2 * total : total;
    if (g || op.inputs.size() > 1 || op.swigluBlock > 0) {
      llmc_k_linear_fused(exec, in(0), n, w->shape[1], w->data, w->format,
                          w->group, w->asym, rows, b ? b->data : nullptr,
                          b ? b->format : 0, g ? g->data : nullptr,
                          g ? g->format : 0, op.eps,
                          op.inputs.size() > 1 ? in(1) : nullptr,
                          op.swigluBlock,
                          static_cast<int64_t>(op.widths.size()),
                          op.widths.data(), ys.data());
      break;
    }
    llmc_k_linear_split(exec, in(0), n, w->shape[1], w->data, w->format,
                        w->group, w->asym, total, b ? b->data : nullptr,
                        b ? b->format : 0,
                        static_cast<int64_t>(op.widths.size()),
                        op.widths.data(), ys.data());
    break;
  }
  case OpKind::RoPE:
    llmc_k_rope(exec, in(0), out(0), n, op.heads, op.headDim, op.theta, start);
    break;
  case OpKind::Attention:
    if (op.theta > 0.0f) {
      llmc_k_attention_rope(exec, cacheSlot >= 0 ? cacheSlot : op.layer, in(0),
                            in(1), in(2), n, start, op.heads, op.kvHeads,
                            op.headDim, op.theta, out(0));
      break;
    }
    llmc_k_attention(exec, cacheSlot >= 0 ? cacheSlot : op.layer, in(0), in(1),
                     in(2), n, start, op.heads, op.kvHeads, op.headDim, out(0));
    break;
  case OpKind::SiLU: {
    const float *x = in(0);
    float *y = out(0);
    for (int64_t j = 0; j < n * W; ++j) {
      y[j] = x[j] / (1.0f + std::exp(-x[j]));
    }
    break;
  }
  case OpKind::Add:
  case OpKind::Mul: {
    const float *a = in(0), *b = in(1);
    float *y = out(0);
    if (op.kind == OpKind::Add) {
      for (int64_t j = 0; j < n * W; ++j) {
        y[j] = a[j] + b[j];
      }
    } else {
      for (int64_t j = 0; j < n * W; ++j) {
        y[j] = a[j] * b[j];
      }
    }
    break;
  }
  case OpKind::LMHead: {
    const int64_t d = w->shape[1];
    const Weight *g = op.norm >= 0 ? &weights[op.norm] : nullptr;
    const int64_t rows = logits ? logitsRows : n;
    llmc_k_lm_head(exec, in(0) + (n - rows) * d, rows, d, w->data, w->format,
                   w->group, w->asym, W, g ? g->data : nullptr,
                   g ? g->format : 0, op.eps, logits ? logits : out(0));
    break;
  }
  }
}

void Evaluator::run(llmc_exec *exec, const std::vector<Weight> &weights,
                    State &state, const int32_t *tokens, int64_t n,
                    int64_t start, size_t begin, size_t end, Mode mode,
                    const Hook *hook, int64_t logitsRows, float *logits,
                    int64_t cacheSlot) const {
  state.values.resize(static_cast<size_t>(program_.numValues));
  for (size_t i = begin; i < end && i < program_.ops.size(); ++i) {
    const Op &op = program_.ops[i];
    if (hook) {
      for (size_t k = 0; k < op.inputs.size(); ++k) {
        const std::vector<float> &x = state.values[op.inputs[k]];
        int64_t w = static_cast<int64_t>(x.size()) / n;
        (*hook)(i, static_cast<int>(k), x.data(), n, w);
      }
    }
    runOp(i, exec, weights, state, tokens, n, start, logitsRows, logits,
          cacheSlot);
    for (int32_t v : op.inputs) {
      bool mine = mode == Mode::Commit || def_[v] >= begin;
      if (lastUse_[v] == i && mine) {
        std::vector<float>().swap(state.values[v]);
      }
    }
    for (int32_t v : op.results) {
      if (lastUse_[v] == i) { // never read
        std::vector<float>().swap(state.values[v]);
      }
    }
  }
  if (mode == Mode::Observe) {
    for (size_t i = begin; i < end && i < program_.ops.size(); ++i) {
      for (int32_t v : program_.ops[i].results) {
        std::vector<float>().swap(state.values[v]);
      }
    }
  }
}

void Evaluator::forward(llmc_exec *exec, const std::vector<Weight> &weights,
                        const int32_t *tokens, int64_t n, int64_t start,
                        int64_t rows, float *logits) const {
  State state;
  run(exec, weights, state, tokens, n, start, 0, program_.ops.size(),
      Mode::Commit, nullptr, rows, logits);
}

} // namespace llmc::eval
