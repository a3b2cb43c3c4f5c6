// llm-awq: activation-aware scaling (Lin et al. 2023): per-input-channel scales searched on
// calibration activations, folded into the op before, then round-to-nearest quantization.
#include "passes/Passes.h"

#include "passes/Calibration.h"
#include "passes/WeightData.h"
#include "runtime/kernels/quant.h"

#include "llvm/ADT/MapVector.h"

#include <algorithm>
#include <cmath>

namespace llmc {
#define GEN_PASS_DEF_AWQPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

/// Inputs of one site, subsampled to at most `maxTokens` rows.
struct SiteInputs {
  int64_t width = 0, rows = 0;
  std::vector<float> x;
  std::vector<double> meanAbs; // per channel, over every observed token
  int64_t seen = 0;
};

/// Q(W * s) / s: what the layer computes once W is scaled and quantized.
std::vector<float> fakeQuantScaled(const std::vector<float> &w, int64_t rows,
                                   int64_t K, const std::vector<float> &s,
                                   int32_t format, int64_t group, bool asym) {
  std::vector<float> scaled(K), out(rows * K);
  std::vector<uint8_t> q(kernels::quantRowBytes(format, K, group, asym));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < K; ++c) {
      scaled[c] = w[r * K + c] * s[c];
    }
    kernels::quantizeRow(scaled.data(), K, format, group, asym, q.data());
    kernels::dequantizeRow(q.data(), K, format, group, asym, &out[r * K]);
    for (int64_t c = 0; c < K; ++c) {
      out[r * K + c] /= s[c];
    }
  }
  return out;
}

/// Squared error of X·Ŵᵀ against X·Wᵀ over the sampled inputs.
double outputError(const SiteInputs &in, const std::vector<float> &w,
                   const std::vector<float> &wq, int64_t rows) {
  const int64_t K = in.width;
  std::vector<float> diff(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    diff[i] = w[i] - wq[i];
  }
  double err = 0.0;
  for (int64_t t = 0; t < in.rows; ++t) {
    const float *x = &in.x[t * K];
    for (int64_t r = 0; r < rows; ++r) {
      const float *d = &diff[r * K];
      float acc = 0.0f;
      for (int64_t c = 0; c < K; ++c) {
        acc += d[c] * x[c];
      }
      err += static_cast<double>(acc) * acc;
    }
  }
  return err;
}

/// AWQ's weight clipping: for each row and group of W·s, the clip range
/// (a fraction of the group's largest magnitude, down to half) whose
/// quantization gives the least output error on sampled inputs x/s; the
/// weights are clamped to it before round-to-nearest.
void clipWeights(std::vector<float> &w, int64_t rows, int64_t K,
                 const std::vector<bool> &clipRow, const SiteInputs &in,
                 const std::vector<float> &s, int32_t format, int64_t group,
                 bool asym, int64_t tokens) {
  const int64_t stride = std::max<int64_t>(1, in.rows / tokens);
  std::vector<float> xs; // sampled inputs as W·s sees them: x / s
  int64_t T = 0;
  for (int64_t t = 0; t < in.rows; t += stride, ++T) {
    for (int64_t c = 0; c < K; ++c) {
      xs.push_back(in.x[t * K + c] / s[c]);
    }
  }
  const int kGrid = 20, kSteps = 10; // shrink by 5% steps, down to 50%
  std::vector<float> clipped(group), q(group);
  std::vector<double> bestErr, err(T);
  for (int64_t r = 0; r < rows; ++r) {
    if (!clipRow[r]) {
      continue;
    }
    for (int64_t g0 = 0; g0 < K; g0 += group) {
      const int64_t len = std::min(group, K - g0);
      float *wg = &w[r * K + g0];
      float amax = 0.0f;
      for (int64_t i = 0; i < len; ++i) {
        amax = std::max(amax, std::fabs(wg[i]));
      }
      double best = -1.0;
      float bestMax = amax;
      for (int step = 0; step <= kSteps; ++step) {
        float mx = amax * (1.0f - static_cast<float>(step) / kGrid);
        for (int64_t i = 0; i < len; ++i) {
          clipped[i] = std::clamp(wg[i], -mx, mx);
        }
        kernels::GroupParams p =
            kernels::groupParams(clipped.data(), len, format, asym);
        for (int64_t i = 0; i < len; ++i) {
          q[i] = kernels::dequantCode(
                     kernels::quantCode(clipped[i], p, format, asym), p,
                     format, asym) -
                 wg[i];
        }
        double e = 0.0;
        for (int64_t t = 0; t < T; ++t) {
          const float *x = &xs[t * K + g0];
          float acc = 0.0f;
          for (int64_t i = 0; i < len; ++i) {
            acc += q[i] * x[i];
          }
          e += static_cast<double>(acc) * acc;
        }
        if (best < 0 || e < best) {
          best = e;
          bestMax = mx;
        }
      }
      for (int64_t i = 0; i < len; ++i) {
        wg[i] = std::clamp(wg[i], -bestMax, bestMax);
      }
    }
  }
}

/// Where 1/s of a site's scales can be folded so the float model computes
/// the same function: into an RMSNorm's weight, or into the rows of the
/// linear result that is the only other factor of the input (up_proj's rows
/// for down_proj: silu(gate) * up), or that is attention's value when every
/// query head has its own value head (v_proj's rows for o_proj; with
/// grouped-query attention one value row feeds several heads).
struct Absorber {
  llm::GlobalOp weight;      // norm weight, or linear weight
  llm::GlobalOp bias;        // the linear's bias, if any
  int64_t rowBegin = 0;      // first scaled row (linear), 0 for a norm
};

/// The rows of `linear`'s weight that produce `result`.
int64_t rowOffset(llm::LinearOp linear, Value result) {
  int64_t off = 0;
  for (unsigned i = 0; i < linear->getNumResults(); ++i) {
    if (linear->getResult(i) == result) {
      return off;
    }
    off += linear.getResultWidth(i);
  }
  return -1;
}

std::optional<Absorber> linearRowsOf(Value v) {
  auto producer = v.getDefiningOp<llm::LinearOp>();
  if (!producer || !v.hasOneUse()) {
    return std::nullopt;
  }
  Absorber a;
  a.weight = globalOf(producer.getWeight());
  a.bias = globalOf(producer.getBias());
  a.rowBegin = rowOffset(producer, v);
  if (!a.weight || !a.weight.getWeightType().isFloat()) {
    return std::nullopt;
  }
  return a;
}

std::optional<Absorber> absorberOf(Value input) {
  Operation *def = input.getDefiningOp();
  if (auto norm = dyn_cast_or_null<llm::RMSNormOp>(def)) {
    Absorber a;
    a.weight = globalOf(norm.getWeight());
    if (!a.weight || !a.weight.getWeightType().isFloat()) {
      return std::nullopt;
    }
    return a;
  }
  if (auto mul = dyn_cast_or_null<llm::MulOp>(def)) {
    for (auto [gate, other] : {std::pair(mul.getLhs(), mul.getRhs()),
                               std::pair(mul.getRhs(), mul.getLhs())}) {
      if (gate.getDefiningOp<llm::SiLUOp>() && !other.getDefiningOp<llm::SiLUOp>()) {
        return linearRowsOf(other);
      }
    }
    return std::nullopt;
  }
  if (auto attn = dyn_cast_or_null<llm::AttentionOp>(def)) {
    if (attn.getNumHeads() == attn.getNumKvHeads()) {
      return linearRowsOf(attn.getValue());
    }
  }
  return std::nullopt;
}

/// Divides rows (or elements, for a norm) rowBegin + c by s[c].
void foldInverse(llm::GlobalOp g, int64_t rowBegin, const std::vector<float> &s) {
  if (!g) {
    return;
  }
  std::vector<float> p = *readFloatWeight(g);
  auto shape = g.getWeightType().getShape();
  int64_t cols = shape.size() == 2 ? shape[1] : 1;
  for (size_t c = 0; c < s.size(); ++c) {
    for (int64_t j = 0; j < cols; ++j) {
      p[(rowBegin + c) * cols + j] /= s[c];
    }
  }
  writeFloatWeight(g, g.getWeightType().getKind(), p);
}

/// True for the results whose rows must not be clipped: those that become
/// attention's queries or keys (directly or through rope), as the reference
/// implementation leaves q and k unclipped: the scores are too sensitive.
bool feedsScores(Value v) {
  for (Operation *user : v.getUsers()) {
    if (auto rope = dyn_cast<llm::RoPEOp>(user)) {
      if (feedsScores(rope.getResult())) {
        return true;
      }
    } else if (auto attn = dyn_cast<llm::AttentionOp>(user)) {
      if (attn.getQuery() == v || attn.getKey() == v) {
        return true;
      }
    }
  }
  return false;
}

struct AWQPass : llmc::impl::AWQPassBase<AWQPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(requireWeightValues(module, "llm-awq"))) {
      return signalPassFailure();
    }
    std::optional<QuantTarget> options =
        parseQuantOptions(module, "llm-awq", format, groupSize, keep,
                          /*allowFloat=*/false);
    if (!options) {
      return signalPassFailure();
    }
    if (grid < 1 || maxTokens < 1) {
      module.emitError() << "llm-awq: grid and max-tokens must be positive";
      return signalPassFailure();
    }
    const TargetFormat *target = &options->format;
    const std::vector<KeepRule> *keepRules = &options->keep;
    auto calib = Calibrator::create(module, "llm-awq");
    if (!calib) {
      return signalPassFailure();
    }
    const int32_t fmt = static_cast<int32_t>(target->kind);
    // The linears AWQ quantizes: float weights no keep rule claims.
    auto quantizes = [&](llm::LinearOp l) {
      llm::GlobalOp g = globalOf(l.getWeight());
      return g && g.getWeightType().isFloat() &&
             !matchKeep(*keepRules, g.getSymName());
    };
    for (int64_t b = 0; b < calib->numBlocks(); ++b) {
      llvm::MapVector<Value, SiteInputs> inputs;
      // Evenly spaced tokens, so every window contributes to the search.
      const int64_t stride = std::max<int64_t>(1, calib->tokens() / maxTokens);
      LinearHook hook = [&](Value input, const float *x, int64_t n,
                            int64_t width) {
        SiteInputs &in = inputs[input];
        if (in.width == 0) {
          in.width = width;
          in.meanAbs.assign(width, 0.0);
        }
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t c = 0; c < width; ++c) {
            in.meanAbs[c] += std::fabs(x[t * width + c]);
          }
          if ((in.seen + t) % stride == 0 && in.rows < maxTokens) {
            in.x.insert(in.x.end(), x + t * width, x + (t + 1) * width);
            ++in.rows;
          }
        }
        in.seen += n;
      };
      calib->observe(b, hook);

      llvm::DenseMap<Value, std::vector<float>> siteScale;
      for (auto &[site, in] : inputs) {
        const int64_t K = in.width;
        siteScale[site].assign(K, 1.0f);
        // Every reader of the site's input must take W·s: all of them are
        // linears with float weights (the searched ones are those AWQ
        // quantizes), and the producer must absorb 1/s.
        std::vector<llm::LinearOp> readers, searched;
        bool foldable = true;
        for (Operation *user : site.getUsers()) {
          auto l = dyn_cast<llm::LinearOp>(user);
          llm::GlobalOp g = l ? globalOf(l.getWeight()) : nullptr;
          if (!g || !g.getWeightType().isFloat() || l.getInput() != site) {
            foldable = false;
            break;
          }
          readers.push_back(l);
          if (quantizes(l)) {
            searched.push_back(l);
          }
        }
        std::optional<Absorber> prev = absorberOf(site);
        if (!foldable || !prev || searched.empty()) {
          continue;
        }
        std::vector<std::vector<float>> weights;
        for (llm::LinearOp l : searched) {
          weights.push_back(*readFloatWeight(globalOf(l.getWeight())));
        }
        // Search s = mean|x|^alpha (normalized), alpha on a grid in [0, 1).
        double bestErr = -1.0;
        std::vector<float> best(K, 1.0f);
        for (int64_t gi = 0; gi < grid; ++gi) {
          double alpha = static_cast<double>(gi) / static_cast<double>(grid);
          std::vector<float> s(K);
          double lo = 1e30, hi = 0.0;
          for (int64_t c = 0; c < K; ++c) {
            double v = std::pow(std::max(in.meanAbs[c] / in.seen, 1e-4), alpha);
            s[c] = static_cast<float>(v);
            lo = std::min(lo, v);
            hi = std::max(hi, v);
          }
          float norm = static_cast<float>(std::sqrt(lo * hi));
          for (float &v : s) {
            v /= norm;
          }
          double err = 0.0;
          for (size_t i = 0; i < searched.size(); ++i) {
            int64_t rows = globalOf(searched[i].getWeight()).getWeightType().getShape()[0];
            err += outputError(in, weights[i],
                               fakeQuantScaled(weights[i], rows, K, s, fmt,
                                               groupSize, target->asymmetric),
                               rows);
          }
          if (bestErr < 0 || err < bestErr) {
            bestErr = err;
            best = s;
          }
        }
        // Fold: W <- W * s (each input channel) for every reader, and the
        // producer's rows (and bias) <- / s.
        for (llm::LinearOp l : readers) {
          llm::GlobalOp g = globalOf(l.getWeight());
          std::vector<float> w = *readFloatWeight(g);
          int64_t rows = g.getWeightType().getShape()[0];
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < K; ++c) {
              w[r * K + c] *= best[c];
            }
          }
          writeFloatWeight(g, g.getWeightType().getKind(), w);
        }
        foldInverse(prev->weight, prev->rowBegin, best);
        foldInverse(prev->bias, prev->rowBegin, best);
        siteScale[site] = best;
      }
      // Later blocks see this block's scaled float weights, as AWQ does.
      calib->advance(b);
      for (llm::LinearOp l : calib->linears(b)) {
        if (!quantizes(l)) {
          continue;
        }
        llm::GlobalOp g = globalOf(l.getWeight());
        auto it = inputs.find(l.getInput());
        if (clip && it != inputs.end()) {
          std::vector<float> w = *readFloatWeight(g);
          auto shape = g.getWeightType().getShape();
          std::vector<bool> clipRow(shape[0], true);
          int64_t row = 0;
          for (unsigned i = 0; i < l->getNumResults(); ++i) {
            bool scores = feedsScores(l->getResult(i));
            for (int64_t r = 0; r < l.getResultWidth(i); ++r) {
              clipRow[row++] = !scores;
            }
          }
          clipWeights(w, shape[0], shape[1], clipRow, it->second,
                      siteScale[l.getInput()], fmt, groupSize,
                      target->asymmetric, clipTokens);
          writeFloatWeight(g, g.getWeightType().getKind(), w);
        }
        quantizeWeightRTN(g, target->kind, groupSize, target->asymmetric);
      }
      if (progress) {
        calib->progress(b + 1);
      }
    }
    retypeWeightRefs(module);
  }
};

} // namespace
