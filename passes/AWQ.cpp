// llm-awq: activation-aware scaling (Lin et al. 2023): per-input-channel scales searched on
// calibration activations, folded into the op before, then round-to-nearest quantization.
#include "passes/Passes.h"

#include "passes/Calibration.h"
#include "passes/WeightData.h"
#include "runtime/kernels/quant.h"

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
                 const SiteInputs &in, const std::vector<float> &s,
                 int32_t format, int64_t group, bool asym, int64_t tokens) {
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

struct AWQPass : llmc::impl::AWQPassBase<AWQPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
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
    auto calib = LayerwiseCalibrator::create(module, "llm-awq");
    if (!calib) {
      return signalPassFailure();
    }
    const int32_t fmt = static_cast<int32_t>(target->kind);
    const LinearSite sites[] = {LinearSite::QKV, LinearSite::O,
                                LinearSite::GateUp, LinearSite::Down};
    for (int64_t l = 0; l < calib->numLayers(); ++l) {
      LayerGlobals L = calib->layer(l);
      std::vector<SiteInputs> inputs(4);
      // Evenly spaced tokens, so every window contributes to the search.
      const int64_t stride = std::max<int64_t>(1, calib->tokens() / maxTokens);
      SiteHook hook = [&](LinearSite site, const float *x, int64_t n,
                          int64_t width) {
        SiteInputs &in = inputs[static_cast<int>(site)];
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
      calib->observe(l, hook);

      std::vector<std::vector<float>> siteScale(4);
      for (LinearSite site : sites) {
        siteScale[static_cast<int>(site)].assign(
            inputs[static_cast<int>(site)].width, 1.0f);
        // The op that produces this site's input absorbs 1/s: the norms for
        // q/k/v and gate/up, up_proj's rows for down_proj, and v_proj's rows
        // for o_proj when every query head has its own value head (with
        // grouped-query attention one value row feeds several heads).
        llm::GlobalOp prev;
        switch (site) {
        case LinearSite::QKV:
          prev = L.inputNorm;
          break;
        case LinearSite::GateUp:
          prev = L.postNorm;
          break;
        case LinearSite::Down:
          prev = L.up;
          break;
        case LinearSite::O:
          if (L.v.getWeightType().getShape()[0] ==
              L.o.getWeightType().getShape()[1]) {
            prev = L.v;
          }
          break;
        }
        std::vector<llm::GlobalOp> linears;
        for (llm::GlobalOp g : L.at(site)) {
          if (!matchKeep(*keepRules, g.getSymName()) &&
              g.getWeightType().isFloat()) {
            linears.push_back(g);
          }
        }
        if (!prev || !prev.getWeightType().isFloat() || linears.empty()) {
          continue;
        }
        const SiteInputs &in = inputs[static_cast<int>(site)];
        const int64_t K = in.width;
        std::vector<std::vector<float>> weights;
        for (llm::GlobalOp g : linears) {
          weights.push_back(*readFloatWeight(g));
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
          for (size_t i = 0; i < linears.size(); ++i) {
            int64_t rows = linears[i].getWeightType().getShape()[0];
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
        // Fold: W <- W * s (each input channel), prev <- prev / s (each output).
        for (size_t i = 0; i < linears.size(); ++i) {
          int64_t rows = linears[i].getWeightType().getShape()[0];
          std::vector<float> &w = weights[i];
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < K; ++c) {
              w[r * K + c] *= best[c];
            }
          }
          writeFloatWeight(linears[i], linears[i].getWeightType().getKind(), w);
        }
        siteScale[static_cast<int>(site)] = best;
        std::vector<float> p = *readFloatWeight(prev);
        int64_t cols = prev.getWeightType().getShape().size() == 2
                           ? prev.getWeightType().getShape()[1]
                           : 1;
        for (int64_t c = 0; c < K; ++c) {
          for (int64_t j = 0; j < cols; ++j) {
            p[c * cols + j] /= best[c];
          }
        }
        writeFloatWeight(prev, prev.getWeightType().getKind(), p);
      }
      // Later layers see this layer's scaled float weights, as AWQ does.
      calib->advance(l);
      for (LinearSite site : sites) {
        const SiteInputs &in = inputs[static_cast<int>(site)];
        for (llm::GlobalOp g : L.at(site)) {
          if (matchKeep(*keepRules, g.getSymName()) ||
              !g.getWeightType().isFloat()) {
            continue;
          }
          // As the reference implementation, q and k are not clipped: the
          // attention scores are too sensitive to them.
          if (clip && g != L.q && g != L.k) {
            std::vector<float> w = *readFloatWeight(g);
            auto shape = g.getWeightType().getShape();
            clipWeights(w, shape[0], shape[1], in,
                        siteScale[static_cast<int>(site)], fmt, groupSize,
                        target->asymmetric, clipTokens);
            writeFloatWeight(g, g.getWeightType().getKind(), w);
          }
          quantizeWeightRTN(g, target->kind, groupSize, target->asymmetric);
        }
      }
      if (progress) {
        calib->progress(l + 1);
      }
    }
    retypeWeightRefs(module);
  }
};

} // namespace
