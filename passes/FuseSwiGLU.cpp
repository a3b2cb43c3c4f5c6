// llm-fuse-swiglu: silu(gate) * up becomes the epilogue of the gate/up linear, its rows reordered.
#include "passes/Passes.h"

#include "passes/WeightData.h"
#include "runtime/kernels/quant.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <cstring>

namespace llmc {
#define GEN_PASS_DEF_FUSESWIGLUPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

/// The global `weight` reads when that read is its only one in the module.
llm::GlobalOp soleGlobal(Value weight, ModuleOp module) {
  auto ref = weight ? weight.getDefiningOp<llm::WeightOp>() : nullptr;
  if (!ref || !ref->hasOneUse()) {
    return nullptr;
  }
  int refs = 0;
  module.walk([&](llm::WeightOp w) { refs += w.getGlobal() == ref.getGlobal(); });
  return refs == 1 ? module.lookupSymbol<llm::GlobalOp>(ref.getGlobalAttr())
                   : nullptr;
}

struct FuseSwiGLUPass : llmc::impl::FuseSwiGLUPassBase<FuseSwiGLUPass> {
  using Base::Base;

  /// Rows [0, f) are the gate's, [f, 2f) the up's; reorders them into
  /// blocks of `block` gate rows then as many up rows.
  LogicalResult reorder(llm::GlobalOp g, int64_t f) {
    llm::WeightType t = g.getWeightType();
    if (kernels::isInterleavedFormat(static_cast<int32_t>(t.getKind()))) {
      return g.emitError() << "llm-fuse-swiglu: @" << g.getSymName()
                           << " is stored with rows interleaved; run the "
                              "pass before llm-interleave-weights";
    }
    if (!hasWeightValues(g)) {
      return success(); // shapes only: no rows to move
    }
    std::optional<std::vector<char>> bytes = readStoredBytes(g);
    if (!bytes || bytes->size() % static_cast<size_t>(2 * f) != 0) {
      return g.emitError() << "llm-fuse-swiglu: cannot read the rows of @"
                           << g.getSymName();
    }
    const size_t row = bytes->size() / static_cast<size_t>(2 * f);
    std::vector<char> out(bytes->size());
    char *dst = out.data();
    for (int64_t k = 0; k < f; k += block) {
      const int64_t b = std::min<int64_t>(block, f - k);
      for (int64_t half : {int64_t(0), f}) {
        std::memcpy(dst, bytes->data() + (half + k) * row, b * row);
        dst += b * row;
      }
    }
    releaseWeightData(g);
    g.setDataAttr(makeWeightData(t, g.getSymName(), out));
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (block <= 0 || block % 16 != 0 || block > 64) {
      module.emitError() << "llm-fuse-swiglu: block must be 16, 32, 48 or 64";
      return signalPassFailure();
    }
    SmallVector<llm::MulOp> muls;
    module.walk([&](llm::MulOp m) { muls.push_back(m); });
    for (llm::MulOp m : muls) {
      for (auto [s, up] : {std::pair(m.getLhs(), m.getRhs()),
                           std::pair(m.getRhs(), m.getLhs())}) {
        auto silu = s.getDefiningOp<llm::SiLUOp>();
        auto l = silu ? silu.getInput().getDefiningOp<llm::LinearOp>()
                      : nullptr;
        if (!l || !silu->hasOneUse() || l->getNumResults() != 2 ||
            l.getResidual() || l.getSwigluBlock() ||
            silu.getInput() != l->getResult(0) || up != l->getResult(1) ||
            !l->getResult(0).hasOneUse() || !l->getResult(1).hasOneUse() ||
            l.getResultWidth(0) != l.getResultWidth(1)) {
          continue;
        }
        llm::GlobalOp w = soleGlobal(l.getWeight(), module);
        llm::GlobalOp bias = soleGlobal(l.getBias(), module);
        if (!w || (l.getBias() && !bias)) {
          continue; // another reader needs the rows in their order
        }
        const int64_t f = l.getResultWidth(0);
        if (failed(reorder(w, f)) || (bias && failed(reorder(bias, f)))) {
          return signalPassFailure();
        }
        OpBuilder b(l);
        auto fused = llm::LinearOp::create(
            b, FusedLoc::get(&getContext(), {l.getLoc(), silu.getLoc(), m.getLoc()}),
            TypeRange{m.getType()}, l.getInput(), l.getWeight(), l.getBias(),
            l.getNorm(), Value(), l.getNormEpsAttr(),
            b.getI64IntegerAttr(block));
        m.getResult().replaceAllUsesWith(fused->getResult(0));
        m.erase();
        silu.erase();
        l.erase();
        break;
      }
    }
  }
};

} // namespace
