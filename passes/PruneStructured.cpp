// llm-prune-structured: removes whole KV groups of attention heads and FFN channels, with the ratio
// allocated across layers by standardized scores (FLaP, Wanda-SP or L2), so every layer keeps its own
// shape; FLaP's bias compensation puts the removed channels' mean contribution into o/down_proj's bias.
#include "passes/Passes.h"

#include "passes/Calibration.h"
#include "passes/WeightData.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <limits>
#include <map>
#include <cmath>
#include <numeric>

namespace llmc {
#define GEN_PASS_DEF_PRUNESTRUCTUREDPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

/// One layer's attention half: q/k/v → rope(q), rope(k) → attention →
/// o_proj → residual add.
struct AttnUnit {
  llm::LinearOp q, k, v, o;
  llm::RoPEOp qRope, kRope;
  llm::AttentionOp attn;
  llm::AddOp residual;
  int64_t heads = 0, kvHeads = 0, headDim = 0, hidden = 0;
  int64_t rep() const { return heads / kvHeads; }
  int64_t groupParams() const { return 2 * (rep() + 1) * headDim * hidden; }
};

/// One layer's MLP half: silu(gate) · up → down_proj → residual add.
struct MlpUnit {
  llm::LinearOp gate, up, down;
  llm::SiLUOp silu;
  llm::MulOp mul;
  llm::AddOp residual;
  int64_t width = 0, hidden = 0;
  int64_t channelParams() const { return 3 * hidden; }
};

/// Per-channel sums of a linear's input over the calibration tokens.
struct InputStats {
  std::vector<double> sum, sumSq;
  int64_t count = 0;
  void add(const float *x, int64_t n, int64_t width) {
    if (sum.empty()) {
      sum.assign(width, 0.0);
      sumSq.assign(width, 0.0);
    }
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t c = 0; c < width; ++c) {
        double v = x[r * width + c];
        sum[c] += v;
        sumSq[c] += v * v;
      }
    }
    count += n;
  }
  double mean(int64_t c) const { return count ? sum[c] / count : 0.0; }
  /// Sample variance (FLaP's fluctuation).
  double variance(int64_t c) const {
    if (count < 2) {
      return 0.0;
    }
    double m = mean(c);
    return std::max(0.0, (sumSq[c] - count * m * m) / (count - 1));
  }
  double norm(int64_t c) const { return std::sqrt(sumSq[c]); }
};

/// A removable structure: a KV group of one attention unit, or an FFN
/// channel of one MLP unit.
struct Candidate {
  bool attention;
  size_t unit;
  int64_t index;
  double score;
  int64_t params;
};

llm::LinearOp singleLinear(Value v) {
  auto l = v ? v.getDefiningOp<llm::LinearOp>() : nullptr;
  return l && l->getNumResults() == 1 ? l : nullptr;
}

template <typename OpT> OpT soleUser(Value v) {
  if (!v || !v.hasOneUse()) {
    return nullptr;
  }
  return dyn_cast<OpT>(*v.getUsers().begin());
}

/// The rows [out, in] of a linear's float weight.
struct Matrix {
  std::vector<float> data;
  int64_t rows = 0, cols = 0;
  float at(int64_t r, int64_t c) const { return data[r * cols + c]; }
};

struct PruneStructuredPass
    : llmc::impl::PruneStructuredPassBase<PruneStructuredPass> {
  using Base::Base;

  ModuleOp module;
  std::vector<AttnUnit> attns;
  std::vector<MlpUnit> mlps;

  InFlightDiagnostic error() {
    return module.emitError() << "llm-prune-structured: ";
  }

  /// A weight requireFloat has checked, as rows of floats.
  static Matrix matrix(Value weight) {
    llm::GlobalOp g = globalOf(weight);
    Matrix m;
    m.data = *readFloatWeight(g);
    auto shape = g.getWeightType().getShape();
    m.rows = shape[0];
    m.cols = shape.size() == 2 ? shape[1] : 1;
    return m;
  }

  /// Every weight and bias the rewrite reads must be a float global.
  LogicalResult requireFloat(std::initializer_list<llm::LinearOp> linears) {
    for (llm::LinearOp l : linears) {
      for (Value v : {l.getWeight(), l.getBias()}) {
        llm::GlobalOp g = v ? globalOf(v) : nullptr;
        if (v && (!g || !g.getWeightType().isFloat())) {
          error() << (g ? "@" + g.getSymName().str()
                        : std::string("a linear's weight"))
                  << " is not a global stored in a float format: prune "
                     "before quantizing";
          return failure();
        }
      }
    }
    return success();
  }

  /// Finds the attention and MLP halves of every layer; fails on a shape
  /// this pass does not know (fused projections among them).
  LogicalResult findUnits(func::FuncOp forward) {
    LogicalResult result = success();
    forward.walk([&](Operation *op) {
      if (failed(result)) {
        return;
      }
      if (auto a = dyn_cast<llm::AttentionOp>(op)) {
        AttnUnit u;
        u.attn = a;
        u.qRope = a.getQuery().getDefiningOp<llm::RoPEOp>();
        u.kRope = a.getKey().getDefiningOp<llm::RoPEOp>();
        u.q = u.qRope ? singleLinear(u.qRope.getInput()) : nullptr;
        u.k = u.kRope ? singleLinear(u.kRope.getInput()) : nullptr;
        u.v = singleLinear(a.getValue());
        u.o = soleUser<llm::LinearOp>(a.getResult());
        u.residual = u.o ? soleUser<llm::AddOp>(u.o.getResult()) : nullptr;
        if (!u.q || !u.k || !u.v || !u.o || u.o->getNumResults() != 1 ||
            !u.residual || !u.qRope.getResult().hasOneUse() ||
            !u.kRope.getResult().hasOneUse() ||
            !u.q.getResult().hasOneUse() || !u.k.getResult().hasOneUse() ||
            !u.v.getResult().hasOneUse()) {
          error() << "attention layer " << a.getLayer()
                  << " is not q/k/v_proj -> rope -> attention -> o_proj -> "
                     "add (prune before llm-fuse-projections)";
          result = failure();
          return;
        }
        if (failed(requireFloat({u.q, u.k, u.v, u.o}))) {
          result = failure();
          return;
        }
        u.heads = a.getNumHeads();
        u.kvHeads = a.getNumKvHeads();
        u.headDim = a.getHeadDim();
        u.hidden = u.o.getResultWidth(0);
        attns.push_back(u);
      } else if (auto m = dyn_cast<llm::MulOp>(op)) {
        MlpUnit u;
        u.mul = m;
        for (int i = 0; i < 2 && !u.silu; ++i) {
          auto s = op->getOperand(i).getDefiningOp<llm::SiLUOp>();
          if (s) {
            u.silu = s;
            u.gate = singleLinear(s.getInput());
            u.up = singleLinear(op->getOperand(1 - i));
          }
        }
        u.down = soleUser<llm::LinearOp>(m.getResult());
        u.residual = u.down ? soleUser<llm::AddOp>(u.down.getResult()) : nullptr;
        if (!u.silu || !u.gate || !u.up || !u.down ||
            u.down->getNumResults() != 1 || !u.residual ||
            !u.silu.getResult().hasOneUse() || !u.gate.getResult().hasOneUse() ||
            !u.up.getResult().hasOneUse()) {
          error() << "an MLP is not silu(gate_proj) * up_proj -> down_proj -> "
                     "add (prune before llm-fuse-projections)";
          result = failure();
          return;
        }
        if (failed(requireFloat({u.gate, u.up, u.down}))) {
          result = failure();
          return;
        }
        u.width = u.down.getInput().getType().getDimSize(1);
        u.hidden = u.down.getResultWidth(0);
        mlps.push_back(u);
      }
    });
    return result;
  }

  /// Adds `delta` to the bias of `l` (creating it, in f32, if it has none).
  void addBias(llm::LinearOp l, const std::vector<double> &delta) {
    llm::GlobalOp w = globalOf(l.getWeight());
    std::vector<float> b(delta.size(), 0.0f);
    llm::GlobalOp bg = l.getBias() ? globalOf(l.getBias()) : nullptr;
    if (bg) {
      if (auto old = readFloatWeight(bg)) {
        b = *old;
      }
    }
    for (size_t i = 0; i < b.size(); ++i) {
      b[i] = static_cast<float>(b[i] + delta[i]);
    }
    if (bg) {
      writeFloatWeight(bg, bg.getWeightType().isFloat()
                               ? bg.getWeightType().getKind()
                               : llm::StorageKind::f32,
                       b);
      return;
    }
    std::string name = w.getSymName().str();
    if (StringRef(name).ends_with(".weight")) {
      name.resize(name.size() - strlen(".weight"));
    }
    name += ".bias";
    SymbolTable symbols(module);
    std::string unique = name;
    for (int i = 1; symbols.lookup(unique); ++i) {
      unique = name + "." + std::to_string(i);
    }
    int64_t n = static_cast<int64_t>(b.size());
    llm::GlobalOp g =
        createFloatGlobal(w, unique, {n}, llm::StorageKind::f32, b);
    OpBuilder builder(l);
    auto ref = llm::WeightOp::create(builder, l.getLoc(), g.getWeightType(),
                                             g.getSymName());
    l.getBiasMutable().assign(ref.getResult());
  }

  /// The residual stream `x` gets `delta` added for every later reader:
  /// folded into the bias of the linear whose residual add made `x`, or
  /// into the rows of an untied embedding table.
  bool foldIntoResidual(Value x, const std::vector<double> &delta) {
    if (auto add = x.getDefiningOp<llm::AddOp>()) {
      for (Value operand : add->getOperands()) {
        if (llm::LinearOp l = singleLinear(operand)) {
          addBias(l, delta);
          return true;
        }
      }
      return false;
    }
    if (auto emb = x.getDefiningOp<llm::EmbeddingOp>()) {
      llm::GlobalOp table = globalOf(emb.getTable());
      bool tied = false;
      module.walk([&](llm::LMHeadOp h) {
        tied |= globalOf(h.getWeight()) == table;
      });
      auto values = table ? readFloatWeight(table) : std::nullopt;
      if (tied || !values) {
        return false;
      }
      int64_t width = static_cast<int64_t>(delta.size());
      for (size_t i = 0; i < values->size(); ++i) {
        (*values)[i] = static_cast<float>((*values)[i] + delta[i % width]);
      }
      writeFloatWeight(table, table.getWeightType().getKind(), *values);
      return true;
    }
    return false;
  }

  /// Keeps rows `keep` of a [rows, cols] weight (or of a bias).
  void keepRows(Value weight, const std::vector<int64_t> &keep) {
    llm::GlobalOp g = globalOf(weight);
    auto values = readFloatWeight(g);
    auto shape = g.getWeightType().getShape();
    int64_t cols = shape.size() == 2 ? shape[1] : 1;
    std::vector<float> out;
    out.reserve(keep.size() * cols);
    for (int64_t r : keep) {
      out.insert(out.end(), values->begin() + r * cols,
                 values->begin() + (r + 1) * cols);
    }
    SmallVector<int64_t> newShape(shape);
    newShape[0] = static_cast<int64_t>(keep.size());
    writeFloatWeight(g, g.getWeightType().getKind(), newShape, out);
  }

  /// Keeps columns `keep` of a [rows, cols] weight.
  void keepCols(Value weight, const std::vector<int64_t> &keep) {
    llm::GlobalOp g = globalOf(weight);
    auto values = readFloatWeight(g);
    auto shape = g.getWeightType().getShape();
    int64_t rows = shape[0], cols = shape[1];
    std::vector<float> out;
    out.reserve(rows * keep.size());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c : keep) {
        out.push_back((*values)[r * cols + c]);
      }
    }
    writeFloatWeight(g, g.getWeightType().getKind(),
                     {rows, static_cast<int64_t>(keep.size())}, out);
  }

  static void setWidth(Value v, int64_t width) {
    auto t = cast<RankedTensorType>(v.getType());
    v.setType(RankedTensorType::get({t.getDimSize(0), width},
                                    t.getElementType()));
  }

  /// The mean contribution W[:, removed] · mean(x[removed]) of the removed
  /// input channels of `l`.
  std::vector<double> compensation(const Matrix &w, const InputStats &s,
                                   const std::vector<int64_t> &removed) {
    std::vector<double> b(w.rows, 0.0);
    for (int64_t r = 0; r < w.rows; ++r) {
      for (int64_t c : removed) {
        b[r] += static_cast<double>(w.at(r, c)) * s.mean(c);
      }
    }
    return b;
  }

  /// Removes a whole residual branch (its add returns the residual input).
  void removeBranch(llm::AddOp residual, Operation *branchOut,
                    const std::vector<double> *delta, int64_t &unfolded) {
    Value x = residual.getLhs().getDefiningOp() == branchOut ? residual.getRhs()
                                                              : residual.getLhs();
    residual.getResult().replaceAllUsesWith(x);
    residual->erase();
    if (delta && !foldIntoResidual(x, *delta)) {
      ++unfolded;
    }
  }

  void runOnOperation() override {
    module = getOperation();
    if (failed(requireWeightValues(module, "llm-prune-structured"))) {
      return signalPassFailure();
    }
    const std::string m = method;
    const bool flap = m == "flap", wandaSp = m == "wanda-sp", l2 = m == "l2";
    if (!flap && !wandaSp && !l2) {
      error() << "unknown method '" << m << "' (flap, wanda-sp or l2)";
      return signalPassFailure();
    }
    if (!(ratio > 0.0 && ratio < 1.0)) {
      error() << "ratio must be between 0 and 1 (exclusive), got " << ratio;
      return signalPassFailure();
    }
    auto forward = module.lookupSymbol<func::FuncOp>(kForwardFuncName);
    if (!forward) {
      error() << "the module has no @forward";
      return signalPassFailure();
    }
    if (failed(findUnits(forward))) {
      return signalPassFailure();
    }

    // Calibration statistics of o_proj's and down_proj's inputs.
    std::vector<InputStats> attnStats(attns.size()), mlpStats(mlps.size());
    if (flap || wandaSp) {
      auto calib = Calibrator::create(module, "llm-prune-structured");
      if (!calib) {
        return signalPassFailure();
      }
      llvm::DenseMap<Value, InputStats *> site;
      for (size_t i = 0; i < attns.size(); ++i) {
        site[attns[i].o.getInput()] = &attnStats[i];
      }
      for (size_t i = 0; i < mlps.size(); ++i) {
        site[mlps[i].down.getInput()] = &mlpStats[i];
      }
      for (int64_t b = 0; b < calib->numBlocks(); ++b) {
        calib->observe(b, [&](Value input, const float *x, int64_t n,
                              int64_t width) {
          auto it = site.find(input);
          if (it != site.end()) {
            it->second->add(x, n, width);
          }
        });
        calib->advance(b);
        if (progress) {
          calib->progress(b + 1);
        }
      }
    }

    // Metrics of o_proj's and down_proj's input channels.
    std::vector<Matrix> oW(attns.size()), downW(mlps.size());
    auto colMetric = [&](const Matrix &w, const InputStats &st, int64_t c,
                         bool attention) {
      double s = 0;
      for (int64_t r = 0; r < w.rows; ++r) {
        s += wandaSp ? std::fabs(w.at(r, c)) : double(w.at(r, c)) * w.at(r, c);
      }
      if (flap) {
        // FLaP's WIFV, squared for attention as its reference code does.
        double m = s * st.variance(c);
        return attention ? m * m : m;
      }
      if (wandaSp) {
        return s / static_cast<double>(w.rows) * st.norm(c);
      }
      return std::sqrt(s); // l2: the column's norm
    };
    // FLaP standardizes each layer's channel metrics per structure type.
    auto standardize = [](std::vector<double> &v) {
      double n = static_cast<double>(v.size()), s1 = 0, s2 = 0;
      for (double x : v) {
        s1 += x, s2 += x * x;
      }
      double mean = s1 / n;
      double var = n > 1 ? (s2 - n * mean * mean) / (n - 1) : 0.0;
      double sd = std::sqrt(std::max(0.0, var));
      // A layer whose every channel scores 0 (inputs that never move)
      // contributes a constant, which the bias compensation keeps exactly:
      // its channels go first.
      const double lowest = -std::numeric_limits<double>::infinity();
      for (double &x : v) {
        x = sd > 0 ? (x - mean) / sd : mean == 0 ? lowest : 0.0;
      }
    };
    std::vector<Candidate> cands;
    for (size_t i = 0; i < attns.size(); ++i) {
      AttnUnit &u = attns[i];
      oW[i] = matrix(u.o.getWeight());
      const int64_t hd = u.headDim, rep = u.rep();
      std::vector<double> ch(u.heads * hd);
      for (int64_t c = 0; c < u.heads * hd; ++c) {
        ch[c] = colMetric(oW[i], attnStats[i], c, true);
      }
      if (flap) {
        standardize(ch);
      }
      for (int64_t g = 0; g < u.kvHeads; ++g) {
        double s = 0;
        for (int64_t c = g * rep * hd; c < (g + 1) * rep * hd; ++c) {
          s += ch[c];
        }
        cands.push_back({true, i, g, flap ? s / (rep * hd) : s, u.groupParams()});
      }
    }
    for (size_t i = 0; i < mlps.size(); ++i) {
      MlpUnit &u = mlps[i];
      downW[i] = matrix(u.down.getWeight());
      std::vector<double> ch(u.width);
      for (int64_t c = 0; c < u.width; ++c) {
        ch[c] = colMetric(downW[i], mlpStats[i], c, false);
      }
      if (flap) {
        standardize(ch);
      }
      for (int64_t c = 0; c < u.width; ++c) {
        cands.push_back({false, i, c, ch[c], u.channelParams()});
      }
    }
    if (cands.empty()) {
      error() << "found no attention heads or FFN channels to prune";
      return signalPassFailure();
    }

    // `ratio` is of all matrix weights (embeddings and LM head included):
    // the fraction of the artifact's matrix bytes that goes.
    int64_t total = 0, prunable = 0;
    for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
      if (g.getWeightType().getShape().size() == 2) {
        total += g.getWeightType().getNumElements();
      }
    }
    for (const Candidate &c : cands) {
      prunable += c.params;
    }
    const int64_t target = static_cast<int64_t>(std::llround(ratio * total));
    if (target > prunable) {
      char pct[32];
      snprintf(pct, sizeof pct, "%.1f", 100.0 * ratio);
      error() << "cannot remove " << pct << "% of the " << total
              << " matrix weights: the heads and FFN channels of the decoder "
                 "layers hold only "
              << prunable;
      return signalPassFailure();
    }
    std::vector<std::vector<bool>> groupGone(attns.size()), chanGone(mlps.size());
    for (size_t i = 0; i < attns.size(); ++i) {
      groupGone[i].assign(attns[i].kvHeads, false);
    }
    for (size_t i = 0; i < mlps.size(); ++i) {
      chanGone[i].assign(mlps[i].width, false);
    }
    int64_t removed = 0, groupsRemoved = 0, chansRemoved = 0;
    auto drop = [&](const Candidate &c) {
      (c.attention ? groupGone : chanGone)[c.unit][c.index] = true;
      (c.attention ? groupsRemoved : chansRemoved) += 1;
      removed += c.params;
    };
    auto ascending = [&](std::vector<size_t> &idx) {
      std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
        return cands[a].score < cands[b].score;
      });
    };
    if (flap) {
      // Adaptive structure: one ranking of every head group and channel of
      // every layer, cut where the removed weights reach the target.
      std::vector<size_t> order(cands.size());
      std::iota(order.begin(), order.end(), 0);
      ascending(order);
      for (size_t idx : order) {
        if (removed >= target) {
          break;
        }
        drop(cands[idx]);
      }
    } else {
      // Wanda-SP and L2 as FLaP's paper runs them: the same share of the
      // head groups, and then of the channels, in every layer (the channels'
      // share makes up for the rounding of whole head groups).
      std::map<std::pair<bool, size_t>, std::vector<size_t>> perUnit;
      int64_t attnParams = 0, mlpParams = 0;
      for (size_t i = 0; i < cands.size(); ++i) {
        perUnit[{cands[i].attention, cands[i].unit}].push_back(i);
        (cands[i].attention ? attnParams : mlpParams) += cands[i].params;
      }
      double share = static_cast<double>(target) / prunable;
      for (bool attention : {true, false}) {
        if (!attention && mlpParams > 0) {
          share = std::clamp(static_cast<double>(target - removed) / mlpParams,
                             0.0, 1.0);
        }
        for (auto &[key, idx] : perUnit) {
          if (key.first != attention) {
            continue;
          }
          ascending(idx);
          auto n = static_cast<size_t>(std::llround(share * idx.size()));
          for (size_t k = 0; k < n && k < idx.size(); ++k) {
            drop(cands[idx[k]]);
          }
        }
      }
    }

    // Rewrite the layers, in program order (a removed branch folds its
    // compensation into the residual stream as it stands then).
    int64_t unfolded = 0;
    struct Work {
      Operation *first;
      bool attention;
      size_t unit;
    };
    std::vector<Work> work;
    for (size_t i = 0; i < attns.size(); ++i) {
      work.push_back({attns[i].attn, true, i});
    }
    for (size_t i = 0; i < mlps.size(); ++i) {
      work.push_back({mlps[i].mul, false, i});
    }
    std::sort(work.begin(), work.end(), [](const Work &a, const Work &b) {
      return a.first->isBeforeInBlock(b.first);
    });
    std::string summary;
    llvm::raw_string_ostream os(summary);
    for (const Work &wk : work) {
      if (wk.attention) {
        AttnUnit &u = attns[wk.unit];
        const int64_t hd = u.headDim, rep = u.rep();
        std::vector<int64_t> qRows, kvRows, removedCh;
        for (int64_t g = 0; g < u.kvHeads; ++g) {
          for (int64_t c = g * rep * hd; c < (g + 1) * rep * hd; ++c) {
            (groupGone[wk.unit][g] ? removedCh : qRows).push_back(c);
          }
          if (!groupGone[wk.unit][g]) {
            for (int64_t c = g * hd; c < (g + 1) * hd; ++c) {
              kvRows.push_back(c);
            }
          }
        }
        const int64_t keptGroups = static_cast<int64_t>(kvRows.size()) / hd;
        os << " attn" << u.attn.getLayer() << "=" << keptGroups * rep << "/"
           << keptGroups;
        if (removedCh.empty()) {
          continue;
        }
        std::vector<double> delta;
        if (flap) {
          delta = compensation(oW[wk.unit], attnStats[wk.unit], removedCh);
        }
        if (keptGroups == 0) {
          removeBranch(u.residual, u.o, flap ? &delta : nullptr, unfolded);
          u.o->erase();
          u.attn->erase();
          u.qRope->erase();
          u.kRope->erase();
          u.q->erase();
          u.k->erase();
          u.v->erase();
          continue;
        }
        keepRows(u.q.getWeight(), qRows);
        keepRows(u.k.getWeight(), kvRows);
        keepRows(u.v.getWeight(), kvRows);
        for (auto [l, rows] : {std::pair{u.q, &qRows}, {u.k, &kvRows}, {u.v, &kvRows}}) {
          if (l.getBias()) {
            keepRows(l.getBias(), *rows);
          }
        }
        keepCols(u.o.getWeight(), qRows);
        if (flap) {
          addBias(u.o, delta);
        }
        const int64_t qw = static_cast<int64_t>(qRows.size());
        const int64_t kw = static_cast<int64_t>(kvRows.size());
        setWidth(u.q.getResult(), qw);
        setWidth(u.k.getResult(), kw);
        setWidth(u.v.getResult(), kw);
        setWidth(u.qRope.getResult(), qw);
        setWidth(u.kRope.getResult(), kw);
        setWidth(u.attn.getResult(), qw);
        Builder b(module.getContext());
        u.qRope.setNumHeadsAttr(b.getI64IntegerAttr(keptGroups * rep));
        u.kRope.setNumHeadsAttr(b.getI64IntegerAttr(keptGroups));
        u.attn.setNumHeadsAttr(b.getI64IntegerAttr(keptGroups * rep));
        u.attn.setNumKvHeadsAttr(b.getI64IntegerAttr(keptGroups));
      } else {
        MlpUnit &u = mlps[wk.unit];
        std::vector<int64_t> keep, removedCh;
        for (int64_t c = 0; c < u.width; ++c) {
          (chanGone[wk.unit][c] ? removedCh : keep).push_back(c);
        }
        os << " ffn=" << keep.size();
        if (removedCh.empty()) {
          continue;
        }
        std::vector<double> delta;
        if (flap) {
          delta = compensation(downW[wk.unit], mlpStats[wk.unit], removedCh);
        }
        if (keep.empty()) {
          removeBranch(u.residual, u.down, flap ? &delta : nullptr, unfolded);
          u.down->erase();
          u.mul->erase();
          u.silu->erase();
          u.gate->erase();
          u.up->erase();
          continue;
        }
        keepRows(u.gate.getWeight(), keep);
        keepRows(u.up.getWeight(), keep);
        for (llm::LinearOp l : {u.gate, u.up}) {
          if (l.getBias()) {
            keepRows(l.getBias(), keep);
          }
        }
        keepCols(u.down.getWeight(), keep);
        if (flap) {
          addBias(u.down, delta);
        }
        const int64_t w = static_cast<int64_t>(keep.size());
        for (Value v : std::initializer_list<Value>{
                 u.gate.getResult(), u.up.getResult(), u.silu.getResult(),
                 u.mul.getResult()}) {
          setWidth(v, w);
        }
      }
    }

    // Cache layers stay one per remaining attention op, numbered in order.
    int64_t layers = 0;
    Builder b(module.getContext());
    forward.walk([&](llm::AttentionOp a) {
      a.setLayerAttr(b.getI64IntegerAttr(layers++));
    });
    if (layers == 0) {
      error() << "the ratio removes every attention head of the model; "
                 "choose a lower ratio";
      return signalPassFailure();
    }
    for (BlockArgument arg : forward.getArguments()) {
      if (auto cache = dyn_cast<llm::KVCacheType>(arg.getType())) {
        if (cache.getLayers() != layers) {
          auto t = llm::KVCacheType::get(module.getContext(), layers,
                                         cache.getMaxSeq());
          arg.setType(t);
          SmallVector<Type> inputs;
          for (BlockArgument a : forward.getArguments()) {
            inputs.push_back(a.getType());
          }
          forward.setType(FunctionType::get(module.getContext(), inputs,
                                            forward.getResultTypes()));
        }
      }
    }
    eraseDeadCode(module);
    retypeWeightRefs(module);
    if (unfolded) {
      module.emitWarning()
          << "llm-prune-structured: " << unfolded
          << " removed branch(es) could not fold their bias compensation into "
             "the residual stream (a tied embedding table feeds it)";
    }
    if (progress) {
      int64_t groups = 0, chans = 0;
      for (const AttnUnit &u : attns) {
        groups += u.kvHeads;
      }
      for (const MlpUnit &u : mlps) {
        chans += u.width;
      }
      llvm::errs() << "llm-prune-structured: " << m << " removed "
                   << groupsRemoved << " of " << groups << " KV groups and "
                   << chansRemoved << " of " << chans << " FFN channels, "
                   << removed << " of " << total << " matrix weights ("
                   << llvm::format("%.1f", 100.0 * removed / total)
                   << "%); heads/kv heads and FFN width per layer:" << summary
                   << "\n";
    }
  }
};

} // namespace
