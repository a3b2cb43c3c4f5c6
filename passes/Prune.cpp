// llm-prune: unstructured and N:M weight pruning of the decoder's linears by magnitude or by Wanda's
// |W|·‖X‖ score, layer by layer on the calibration activations (weights stay dense-stored).
#include "passes/Passes.h"

#include "passes/Calibration.h"
#include "passes/WeightData.h"
#include "runtime/kernels/quant.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace llmc {
#define GEN_PASS_DEF_PRUNEPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

struct PrunePass : llmc::impl::PrunePassBase<PrunePass> {
  using Base::Base;

  ModuleOp module;
  int64_t n = 0, m = 0; // N:M: keep n of every m (0: unstructured)
  int64_t zeros = 0, weights = 0, sparse = 0;

  InFlightDiagnostic error() { return module.emitError() << "llm-prune: "; }

  /// Zeroes the weights of `g` with the lowest score |W| (· ‖X_j‖ for
  /// Wanda): `ratio` of each row (Wanda) or of the matrix (magnitude), or
  /// all but `n` of every `m` along the row.
  LogicalResult prune(llm::GlobalOp g, const std::vector<double> *inputNorm,
                      bool wanda) {
    auto values = readFloatWeight(g);
    if (!values) {
      error() << "@" << g.getSymName()
              << " is not stored in a float format: prune before quantizing";
      return failure();
    }
    auto shape = g.getWeightType().getShape();
    const int64_t rows = shape[0], cols = shape[1];
    std::vector<float> &w = *values;
    auto score = [&](int64_t r, int64_t c) {
      double s = std::fabs(w[r * cols + c]);
      return inputNorm ? s * (*inputNorm)[c] : s;
    };
    std::vector<int64_t> idx;
    if (m > 0) {
      if (cols % m != 0) {
        error() << "@" << g.getSymName() << ": rows of " << cols
                << " weights cannot hold the " << n << ":" << m
                << " pattern (the row length must be a multiple of " << m
                << ")";
        return failure();
      }
      idx.resize(m);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c0 = 0; c0 < cols; c0 += m) {
          std::iota(idx.begin(), idx.end(), c0);
          std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
            return score(r, a) < score(r, b);
          });
          for (int64_t i = 0; i < m - n; ++i) {
            w[r * cols + idx[i]] = 0.0f;
          }
        }
      }
    } else if (wanda) {
      // Wanda compares weights within each output row.
      const int64_t drop = static_cast<int64_t>(std::llround(ratio * cols));
      idx.resize(cols);
      for (int64_t r = 0; r < rows; ++r) {
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
          return score(r, a) < score(r, b);
        });
        for (int64_t i = 0; i < drop; ++i) {
          w[r * cols + idx[i]] = 0.0f;
        }
      }
    } else {
      // Magnitude: the smallest weights of the whole matrix.
      const int64_t drop = static_cast<int64_t>(std::llround(ratio * rows * cols));
      idx.resize(rows * cols);
      std::iota(idx.begin(), idx.end(), 0);
      std::nth_element(idx.begin(), idx.begin() + drop, idx.end(),
                       [&](int64_t a, int64_t b) {
                         float x = std::fabs(w[a]), y = std::fabs(w[b]);
                         return x < y || (x == y && a < b);
                       });
      for (int64_t i = 0; i < drop; ++i) {
        w[idx[i]] = 0.0f;
      }
    }
    for (float v : w) {
      zeros += v == 0.0f;
    }
    weights += rows * cols;
    if (n == 2 && m == 4 && sparseFormat) {
      const size_t rowBytes = kernels::sparseRowBytes(LLMC_FORMAT_S24, cols);
      std::vector<uint8_t> bytes(rowBytes * rows);
      for (int64_t r = 0; r < rows; ++r) {
        kernels::packSparseRow(w.data() + r * cols, cols, LLMC_FORMAT_S24,
                               bytes.data() + r * rowBytes);
      }
      writeQuantWeight(g, llm::StorageKind::s24, 0, false, std::move(bytes));
      ++sparse;
      return success();
    }
    writeFloatWeight(g, g.getWeightType().getKind(), w);
    return success();
  }

  void runOnOperation() override {
    module = getOperation();
    if (failed(requireWeightValues(module, "llm-prune"))) {
      return signalPassFailure();
    }
    const std::string meth = method;
    const bool wanda = meth == "wanda";
    if (!wanda && meth != "magnitude") {
      error() << "unknown method '" << meth << "' (magnitude or wanda)";
      return signalPassFailure();
    }
    const std::string pat = pattern;
    if (pat != "unstructured") {
      size_t colon = pat.find(':');
      bool ok = colon != std::string::npos &&
                !StringRef(pat).substr(0, colon).getAsInteger(10, n) &&
                !StringRef(pat).substr(colon + 1).getAsInteger(10, m) &&
                n > 0 && m > n && m <= 64;
      if (!ok) {
        error() << "pattern must be 'unstructured' or N:M with 0 < N < M <= "
                   "64, got '"
                << pat << "'";
        return signalPassFailure();
      }
    } else if (!(ratio > 0.0 && ratio < 1.0)) {
      error() << "ratio must be between 0 and 1 (exclusive), got " << ratio;
      return signalPassFailure();
    }

    auto calib = wanda ? Calibrator::create(module, "llm-prune") : nullptr;
    if (wanda && !calib) {
      return signalPassFailure();
    }
    if (!wanda) {
      // Every decoder linear (the embedding table and LM head are not
      // llm.linear operands).
      llvm::DenseSet<Operation *> seen;
      WalkResult r = module.walk([&](llm::LinearOp l) {
        llm::GlobalOp g = globalOf(l.getWeight());
        if (!g || !seen.insert(g).second) {
          return WalkResult::advance();
        }
        return failed(prune(g, nullptr, false)) ? WalkResult::interrupt()
                                                : WalkResult::advance();
      });
      if (r.wasInterrupted()) {
        return signalPassFailure();
      }
    } else {
      // Layer by layer: each block's inputs with the blocks before it pruned.
      for (int64_t b = 0; b < calib->numBlocks(); ++b) {
        llvm::DenseMap<Value, std::vector<double>> norms;
        calib->observe(b, [&](Value input, const float *x, int64_t rows,
                              int64_t width) {
          std::vector<double> &s = norms[input];
          s.resize(width, 0.0);
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < width; ++c) {
              s[c] += double(x[r * width + c]) * x[r * width + c];
            }
          }
        });
        for (auto &[v, s] : norms) {
          for (double &e : s) {
            e = std::sqrt(e);
          }
        }
        for (llm::LinearOp l : calib->linears(b)) {
          llm::GlobalOp g = globalOf(l.getWeight());
          if (!g) {
            continue;
          }
          if (failed(prune(g, &norms[l.getInput()], true))) {
            return signalPassFailure();
          }
        }
        calib->advance(b);
        if (progress) {
          calib->progress(b + 1);
        }
      }
    }
    retypeWeightRefs(module);
    if (progress) {
      llvm::errs() << "llm-prune: " << meth << " " << pat << ": "
                   << zeros << " of " << weights
                   << " decoder weights are zero ("
                   << llvm::format("%.1f", weights ? 100.0 * zeros / weights : 0.0)
                   << "%)"
                   << (sparse ? ", " + std::to_string(sparse) +
                                    " matrices stored as s24 (2:4 sparse)"
                              : std::string())
                   << "\n";
    }
  }
};

} // namespace
