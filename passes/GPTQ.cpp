// llm-gptq: GPTQ (Frantar et al. 2022) on every decoder linear, layer by layer, from calibration Hessians.
#include "passes/Passes.h"

#include "passes/Calibration.h"
#include "passes/WeightData.h"
#include "runtime/kernels/quant.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>

#include <numeric>
#include <optional>

namespace llmc {
#define GEN_PASS_DEF_GPTQPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Options {
  int32_t format;
  int64_t group;
  bool asym;
  double damp;
  int64_t blockSize;
  bool actOrder;
};

/// Quantizes W (rows x K) column by column, spreading each column's rounding
/// error over the columns not yet quantized through the inverse Hessian's
/// Cholesky factor. Returns the packed rows.
/// The damped Hessian of one input site, its column order and the upper
/// Cholesky factor U of its inverse (H⁻¹ = UᵀU), shared by every linear
/// that reads that input.
struct Factorization {
  std::vector<int64_t> perm;
  std::vector<bool> dead; // columns never activated
  Matrix H;               // damped, for act-order's ranking
  Matrix U;
};

/// With R the order-reversing permutation and R·H·R = L·Lᵀ, the upper
/// Cholesky factor of H⁻¹ is R·L⁻¹·R: one factorization and one triangular
/// inverse, instead of inverting H and factorizing again.
Matrix upperCholeskyOfInverse(const Matrix &H) {
  const int64_t K = H.rows();
  Matrix Hr = H.reverse();
  Eigen::LLT<Matrix> llt(Hr);
  Matrix Linv = llt.matrixL().solve(Matrix::Identity(K, K));
  return Linv.reverse();
}

Factorization factorize(Matrix H, const Options &o) {
  const int64_t K = H.rows();
  Factorization f;
  f.dead.assign(K, false);
  for (int64_t c = 0; c < K; ++c) {
    if (H(c, c) == 0.0) {
      H(c, c) = 1.0;
      f.dead[c] = true;
    }
  }
  H.diagonal().array() += o.damp * H.diagonal().mean();
  f.perm.resize(K);
  std::iota(f.perm.begin(), f.perm.end(), 0);
  if (o.actOrder) {
    // Largest Hessian diagonal first; ties by index, so the order is stable.
    std::stable_sort(f.perm.begin(), f.perm.end(), [&](int64_t a, int64_t b) {
      return H(a, a) > H(b, b);
    });
  }
  Matrix Hp(K, K);
  for (int64_t i = 0; i < K; ++i) {
    for (int64_t j = 0; j < K; ++j) {
      Hp(i, j) = H(f.perm[i], f.perm[j]);
    }
  }
  f.U = upperCholeskyOfInverse(Hp);
  return f;
}

std::vector<uint8_t> gptqQuantize(const std::vector<float> &weights,
                                  int64_t rows, int64_t K,
                                  const Factorization &f, const Options &o) {
  Matrix W(rows, K);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < K; ++c) {
      W(r, c) = weights[r * K + c];
    }
  }
  // Columns never activated carry no information: quantize them as zero.
  for (int64_t c = 0; c < K; ++c) {
    if (f.dead[c]) {
      W.col(c).setZero();
    }
  }
  const std::vector<int64_t> &perm = f.perm;
  const int64_t groups = (K + o.group - 1) / o.group;
  // Group parameters, per row and group (of original columns).
  std::vector<kernels::GroupParams> params(rows * groups);
  std::vector<bool> haveParams(groups, false);
  auto computeParams = [&](const Matrix &Wcur, int64_t g) {
    int64_t begin = g * o.group, len = std::min(o.group, K - begin);
    std::vector<float> buf(len);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < len; ++i) {
        buf[i] = static_cast<float>(Wcur(r, begin + i));
      }
      params[r * groups + g] =
          kernels::groupParams(buf.data(), len, o.format, o.asym);
    }
    haveParams[g] = true;
  };
  if (o.actOrder) {
    // With act-order, groups are fixed from the unmodified weights (static
    // groups), since columns are visited out of group order.
    for (int64_t g = 0; g < groups; ++g) {
      computeParams(W, g);
    }
  }

  Matrix Wp(rows, K);
  for (int64_t i = 0; i < K; ++i) {
    Wp.col(i) = W.col(perm[i]);
  }
  const Matrix &U = f.U;

  std::vector<int> codes(rows * K, 0);
  for (int64_t b0 = 0; b0 < K; b0 += o.blockSize) {
    int64_t b1 = std::min(K, b0 + o.blockSize), count = b1 - b0;
    Matrix E(rows, count);
    for (int64_t i = b0; i < b1; ++i) {
      int64_t col = perm[i], g = col / o.group;
      if (!haveParams[g]) {
        // Natural order (perm is the identity, so Wp is W): the group's
        // parameters come from its current, error-compensated weights when
        // its first column is reached.
        computeParams(Wp, g);
      }
      double d = U(i, i);
      for (int64_t r = 0; r < rows; ++r) {
        const kernels::GroupParams &p = params[r * groups + g];
        float w = static_cast<float>(Wp(r, i));
        int code = kernels::quantCode(w, p, o.format, o.asym);
        codes[r * K + col] = code;
        double q = kernels::dequantCode(code, p, o.format, o.asym);
        E(r, i - b0) = (Wp(r, i) - q) / d;
      }
      // Spread this column's error over the rest of the block.
      Wp.block(0, i + 1, rows, b1 - i - 1).noalias() -=
          E.col(i - b0) * U.block(i, i + 1, 1, b1 - i - 1);
    }
    // ...and, lazily, over every column after the block.
    if (b1 < K) {
      Wp.block(0, b1, rows, K - b1).noalias() -=
          E * U.block(b0, b1, count, K - b1);
    }
  }

  size_t blockBytes = kernels::quantBlockBytes(o.format, o.group, o.asym);
  std::vector<uint8_t> out(rows * groups * blockBytes);
  std::vector<int> groupCodes(o.group);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      int64_t begin = g * o.group, len = std::min(o.group, K - begin);
      for (int64_t i = 0; i < o.group; ++i) {
        groupCodes[i] = i < len ? codes[r * K + begin + i]
                                : kernels::paddingCode(o.format, o.asym);
      }
      kernels::packGroup(groupCodes.data(), o.group, params[r * groups + g],
                         o.format, o.asym,
                         out.data() + (r * groups + g) * blockBytes);
    }
  }
  return out;
}

struct GPTQPass : llmc::impl::GPTQPassBase<GPTQPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(requireWeightValues(module, "llm-gptq"))) {
      return signalPassFailure();
    }
    std::optional<QuantTarget> options =
        parseQuantOptions(module, "llm-gptq", format, groupSize, keep,
                          /*allowFloat=*/false);
    if (!options) {
      return signalPassFailure();
    }
    if (damp < 0 || blockSize <= 0) {
      module.emitError() << "llm-gptq: damp must be >= 0 and block-size > 0";
      return signalPassFailure();
    }
    const TargetFormat *target = &options->format;
    const std::vector<KeepRule> *keepRules = &options->keep;
    auto calib = Calibrator::create(module, "llm-gptq");
    if (!calib) {
      return signalPassFailure();
    }
    Options o{static_cast<int32_t>(target->kind), groupSize, target->asymmetric,
              damp, blockSize, actOrder};
    for (int64_t b = 0; b < calib->numBlocks(); ++b) {
      // Hessians of each linear input (linears that read the same value
      // share one), from this block's float weights and the
      // already-quantized blocks before it.
      llvm::DenseMap<Value, Matrix> H;
      llvm::DenseMap<Value, int64_t> seen;
      LinearHook hook = [&](Value input, const float *x, int64_t n,
                            int64_t width) {
        Matrix &h = H[input];
        if (h.size() == 0) {
          h = Matrix::Zero(width, width);
        }
        Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                       Eigen::RowMajor>>
            X(x, n, width);
        Matrix Xd = X.cast<double>();
        h.selfadjointView<Eigen::Lower>().rankUpdate(Xd.transpose());
        seen[input] += n;
      };
      calib->observe(b, hook);
      llvm::DenseMap<Value, Factorization> factors;
      for (llm::LinearOp linear : calib->linears(b)) {
        llm::GlobalOp g = globalOf(linear.getWeight());
        if (!g || matchKeep(*keepRules, g.getSymName())) {
          continue; // the keep rule's format is applied by RTN later
        }
        std::optional<std::vector<float>> w = readFloatWeight(g);
        if (!w) {
          continue; // already quantized
        }
        Value in = linear.getInput();
        auto it = factors.find(in);
        if (it == factors.end()) {
          Matrix full = H[in].selfadjointView<Eigen::Lower>();
          full *= 2.0 / static_cast<double>(seen[in]);
          it = factors.try_emplace(in, factorize(full, o)).first;
        }
        llm::WeightType t = g.getWeightType();
        int64_t rows = t.getShape()[0], K = t.getShape()[1];
        writeQuantWeight(g, target->kind, groupSize, target->asymmetric,
                         gptqQuantize(*w, rows, K, it->second, o));
      }
      calib->advance(b);
      if (progress) {
        calib->progress(b + 1);
      }
    }
    retypeWeightRefs(module);
  }
};

} // namespace
