// llm-lowrank: W ≈ U·V by truncated SVD (Eigen's BDCSVD), whitened by the calibration inputs'
// covariance when there are any (SVD-LLM), with per-matrix ranks from a fixed rank, an energy
// fraction, or a global budget allocated greedily by output error per byte.
#include "passes/Passes.h"

#include "passes/Calibration.h"
#include "passes/WeightData.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <Eigen/SVD>

#include <cmath>
#include <queue>

namespace llmc {
#define GEN_PASS_DEF_LOWRANKPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// One matrix's truncated factorization.
struct Factors {
  Eigen::VectorXd sigma; // singular values of W·L, descending
  Mat u, v;              // W·L = u·diag(sigma)·vᵀ (thin)
  Mat l;                 // the whitening factor (lower), empty for none
};

enum class Mode { Rank, Energy, Auto };

struct LowRankPass : llmc::impl::LowRankPassBase<LowRankPass> {
  using Base::Base;

  ModuleOp module;
  Mode mode = Mode::Rank;
  double value = 0;

  InFlightDiagnostic error() { return module.emitError() << "llm-lowrank: "; }

  LogicalResult parseSpec() {
    StringRef s(spec);
    auto [key, val] = s.split('=');
    if (key == "rank") {
      mode = Mode::Rank;
    } else if (key == "energy") {
      mode = Mode::Energy;
    } else if (key == "auto") {
      mode = Mode::Auto;
    } else {
      error() << "expected rank=R, energy=E or auto=FRACTION, got '" << spec
              << "'";
      return failure();
    }
    if (val.getAsDouble(value) || !std::isfinite(value)) {
      error() << "'" << spec << "': the value after '=' must be a number";
      return failure();
    }
    if (mode == Mode::Rank && (value < 1 || value != std::floor(value))) {
      error() << "rank must be a positive integer, got '" << val << "'";
      return failure();
    }
    if (mode != Mode::Rank && !(value > 0 && value < 1)) {
      error() << key << " must be between 0 and 1 (exclusive), got '" << val
              << "'";
      return failure();
    }
    return success();
  }

  /// Rows [out, in] of W as doubles.
  static Mat toMat(const std::vector<float> &w, int64_t rows, int64_t cols) {
    Mat m(rows, cols);
    for (int64_t i = 0; i < rows * cols; ++i) {
      m.data()[i] = w[i];
    }
    return m;
  }

  /// SVD of W·L, with L the Cholesky factor of the damped input covariance
  /// (or the identity when `cov` is null).
  Factors factorize(const Mat &w, const Mat *cov) {
    Factors f;
    Mat a = w;
    if (cov) {
      Mat c = *cov;
      double mean = c.diagonal().mean();
      c.diagonal().array() += damp * (mean > 0 ? mean : 1.0);
      Eigen::LLT<Mat> llt(c);
      f.l = llt.matrixL();
      a = w * f.l;
    }
    Eigen::BDCSVD<Mat> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
    f.sigma = svd.singularValues();
    f.u = svd.matrixU();
    f.v = svd.matrixV();
    return f;
  }

  /// Replaces `l` (weight `g`) by two linears of rank `r`.
  void rewrite(llm::LinearOp l, llm::GlobalOp g, const Factors &f, int64_t r) {
    const int64_t out = f.u.rows(), in = f.v.rows();
    // W' = (U_r·√Σ)·(√Σ·V_rᵀ·L⁻¹): balanced factors quantize alike.
    Eigen::VectorXd root = f.sigma.head(r).array().sqrt();
    Mat uf = f.u.leftCols(r) * root.asDiagonal();
    Mat vt = root.asDiagonal() * f.v.leftCols(r).transpose(); // r x in
    if (f.l.size()) {
      // vt · L⁻¹: solve Lᵀ·Z = vtᵀ for Z = L⁻ᵀ·vtᵀ.
      Mat z = f.l.transpose().triangularView<Eigen::Upper>().solve(
          Mat(vt.transpose()));
      vt = z.transpose();
    }
    std::vector<float> uv(out * r), vv(r * in);
    for (int64_t i = 0; i < out * r; ++i) {
      uv[i] = static_cast<float>(uf.data()[i]);
    }
    for (int64_t i = 0; i < r * in; ++i) {
      vv[i] = static_cast<float>(vt.data()[i]);
    }
    llm::StorageKind kind = g.getWeightType().getKind();
    std::string base = g.getSymName().str();
    llm::GlobalOp gv = createFloatGlobal(g, base + ".v", {r, in}, kind, vv);
    llm::GlobalOp gu = createFloatGlobal(gv, base + ".u", {out, r}, kind, uv);
    OpBuilder b(l);
    auto wv = llm::WeightOp::create(b, l.getLoc(), gv.getWeightType(),
                                      gv.getSymName());
    auto inType = cast<RankedTensorType>(l.getInput().getType());
    auto midType = RankedTensorType::get({inType.getDimSize(0), r},
                                         inType.getElementType());
    auto mid = llm::LinearOp::create(b, l.getLoc(), TypeRange{midType},
                                       l.getInput(), wv.getResult(), Value());
    auto wu = llm::WeightOp::create(b, l.getLoc(), gu.getWeightType(),
                                      gu.getSymName());
    l.getInputMutable().assign(mid.getResult());
    l.getWeightMutable().assign(wu.getResult());
  }

  /// Parameters of the factored form at rank r, and the dense form's.
  static int64_t factoredParams(int64_t out, int64_t in, int64_t r) {
    return r * (out + in);
  }
  /// The largest rank that still saves weights.
  static int64_t maxUsefulRank(int64_t out, int64_t in) {
    return (out * in - 1) / (out + in);
  }

  /// The rank `mode` picks for one matrix on its own (not auto).
  int64_t ownRank(const Factors &f, int64_t out, int64_t in) {
    int64_t full = f.sigma.size();
    int64_t r = full;
    if (mode == Mode::Rank) {
      r = std::min<int64_t>(static_cast<int64_t>(value), full);
    } else {
      double total = f.sigma.squaredNorm(), acc = 0;
      for (r = 0; r < full && acc < value * total; ++r) {
        acc += f.sigma[r] * f.sigma[r];
      }
      r = std::max<int64_t>(r, 1);
    }
    return r <= maxUsefulRank(out, in) ? r : 0; // 0: stays dense
  }

  struct Site {
    llm::GlobalOp global;
    int64_t out = 0, in = 0;
    std::vector<double> energy; // σ², descending
  };

  /// Greedy allocation: every matrix starts at rank 1; the step with the
  /// most relative output error removed per parameter is taken while the
  /// budget lasts (a matrix past its largest useful rank goes dense).
  /// Returns each site's rank (0: dense).
  std::vector<int64_t> allocate(const std::vector<Site> &sites) {
    int64_t dense = 0, used = 0;
    std::vector<int64_t> rank(sites.size(), 1);
    std::vector<double> totalEnergy(sites.size());
    for (size_t i = 0; i < sites.size(); ++i) {
      const Site &s = sites[i];
      dense += s.out * s.in;
      used += factoredParams(s.out, s.in, 1);
      double t = 0;
      for (double e : s.energy) {
        t += e;
      }
      totalEnergy[i] = t > 0 ? t : 1.0;
    }
    const double budget = value * static_cast<double>(dense);
    struct Step {
      double gain;
      size_t site;
      int64_t cost;
      bool operator<(const Step &o) const { return gain < o.gain; }
    };
    auto next = [&](size_t i) -> std::optional<Step> {
      const Site &s = sites[i];
      int64_t r = rank[i];
      if (r == 0) {
        return std::nullopt; // dense already
      }
      if (r + 1 > maxUsefulRank(s.out, s.in) ||
          r + 1 > static_cast<int64_t>(s.energy.size())) {
        double rest = 0;
        for (size_t k = r; k < s.energy.size(); ++k) {
          rest += s.energy[k];
        }
        int64_t cost = s.out * s.in - factoredParams(s.out, s.in, r);
        return Step{rest / totalEnergy[i] / std::max<int64_t>(cost, 1), i, cost};
      }
      int64_t cost = s.out + s.in;
      return Step{s.energy[r] / totalEnergy[i] / cost, i, cost};
    };
    std::priority_queue<Step> heap;
    for (size_t i = 0; i < sites.size(); ++i) {
      if (auto st = next(i)) {
        heap.push(*st);
      }
    }
    while (!heap.empty()) {
      Step st = heap.top();
      heap.pop();
      if (used + st.cost > budget) {
        continue; // this matrix cannot grow; others with cheaper steps may
      }
      used += st.cost;
      const Site &s = sites[st.site];
      if (rank[st.site] + 1 > maxUsefulRank(s.out, s.in) ||
          rank[st.site] + 1 > static_cast<int64_t>(s.energy.size())) {
        rank[st.site] = 0;
      } else {
        ++rank[st.site];
      }
      if (auto n = next(st.site)) {
        heap.push(*n);
      }
    }
    return rank;
  }

  void runOnOperation() override {
    module = getOperation();
    if (failed(requireWeightValues(module, "llm-lowrank"))) {
      return signalPassFailure();
    }
    if (failed(parseSpec())) {
      return signalPassFailure();
    }
    const bool haveCalib = module->hasAttr(kCalibrationAttrName);
    if (mode == Mode::Auto && !haveCalib) {
      error() << "auto needs calibration tokens (the llm.calibration module "
                 "attribute; llmc compile sets it from --calib FILE)";
      return signalPassFailure();
    }
    int64_t factored = 0, kept = 0, before = 0, after = 0;
    std::string summary;
    llvm::raw_string_ostream os(summary);
    auto apply = [&](llm::LinearOp l, llm::GlobalOp g, const Factors &f,
                     int64_t r, int64_t out, int64_t in) {
      before += out * in;
      if (r == 0) {
        after += out * in;
        ++kept;
        return;
      }
      after += factoredParams(out, in, r);
      ++factored;
      os << " " << g.getSymName() << "=" << r;
      rewrite(l, g, f, r);
    };
    auto readSite = [&](llm::LinearOp l, Site &s) -> std::optional<Mat> {
      s.global = globalOf(l.getWeight());
      // A fused linear (norm, residual, SwiGLU) is not one product to
      // factor: left as it is (the pipeline factors before fusing).
      if (!s.global || l->getNumResults() != 1 || l.isFused() ||
          s.global.getWeightType().getShape().size() != 2) {
        return std::nullopt;
      }
      auto w = readFloatWeight(s.global);
      if (!w) {
        return std::nullopt; // quantized already: left as it is
      }
      s.out = s.global.getWeightType().getShape()[0];
      s.in = s.global.getWeightType().getShape()[1];
      return toMat(*w, s.out, s.in);
    };

    if (!haveCalib) {
      std::vector<llm::LinearOp> linears;
      module.walk([&](llm::LinearOp l) { linears.push_back(l); });
      for (llm::LinearOp l : linears) {
        Site s;
        auto w = readSite(l, s);
        if (!w) {
          continue;
        }
        Factors f = factorize(*w, nullptr);
        apply(l, s.global, f, ownRank(f, s.out, s.in), s.out, s.in);
      }
    } else {
      // Input covariance of every linear's input, block by block.
      auto covariances = [&](Calibrator &c, int64_t b) {
        llvm::DenseMap<Value, Mat> cov;
        llvm::DenseMap<Value, int64_t> count;
        c.observe(b, [&](Value input, const float *x, int64_t n, int64_t width) {
          Mat &m = cov[input];
          if (m.size() == 0) {
            m = Mat::Zero(width, width);
          }
          Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                         Eigen::RowMajor>>
              xs(x, n, width);
          Mat xd = xs.cast<double>();
          m.noalias() += xd.transpose() * xd;
          count[input] += n;
        });
        for (auto &[v, m] : cov) {
          m /= static_cast<double>(std::max<int64_t>(count[v], 1));
        }
        return cov;
      };
      // One calibration pass: each block's linears factorized with their
      // inputs' covariance, handed to `use`. The calibrator runs the program
      // as it was when created, so every block sees the unchanged model's
      // inputs (as ASVD and SVD-LLM whiten).
      auto forEachFactored = [&](auto &&use) -> LogicalResult {
        auto calib = Calibrator::create(module, "llm-lowrank");
        if (!calib) {
          return failure();
        }
        for (int64_t b = 0; b < calib->numBlocks(); ++b) {
          auto cov = covariances(*calib, b);
          for (llm::LinearOp l : calib->linears(b)) {
            Site s;
            auto w = readSite(l, s);
            if (w) {
              use(l, s, factorize(*w, &cov[l.getInput()]));
            }
          }
          calib->advance(b);
          if (progress) {
            calib->progress(b + 1);
          }
        }
        return success();
      };
      std::vector<int64_t> ranks;
      if (mode == Mode::Auto) {
        // Pass 1: every matrix's spectrum, then the allocation.
        std::vector<Site> sites;
        if (failed(forEachFactored([&](llm::LinearOp, Site &s, const Factors &f) {
              for (int64_t k = 0; k < f.sigma.size(); ++k) {
                s.energy.push_back(f.sigma[k] * f.sigma[k]);
              }
              sites.push_back(std::move(s));
            }))) {
          return signalPassFailure();
        }
        ranks = allocate(sites);
      }
      // Pass 2: factorize again and rewrite.
      size_t next = 0;
      if (failed(forEachFactored([&](llm::LinearOp l, Site &s, const Factors &f) {
            int64_t r = mode == Mode::Auto ? ranks[next++]
                                           : ownRank(f, s.out, s.in);
            apply(l, s.global, f, r, s.out, s.in);
          }))) {
        return signalPassFailure();
      }
    }
    eraseDeadCode(module);
    retypeWeightRefs(module);
    if (progress) {
      llvm::errs() << "llm-lowrank: " << spec << ": " << factored
                   << " matrices factored, " << kept << " kept dense; "
                   << after << " of " << before << " weights ("
                   << llvm::format("%.1f", before ? 100.0 * after / before : 0.0)
                   << "%); ranks:" << summary << "\n";
    }
  }
};

} // namespace
