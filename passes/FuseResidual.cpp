// llm-fuse-residual: add(linear(x), r) becomes the linear with r added in its epilogue.
#include "passes/Passes.h"

#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/BuiltinOps.h"

namespace llmc {
#define GEN_PASS_DEF_FUSERESIDUALPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

/// Whether `v` is available where `op` runs: an argument of its block or
/// a value defined before it there (@forward is one block).
bool definedBefore(Value v, Operation *op) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    return arg.getOwner() == op->getBlock();
  }
  Operation *def = v.getDefiningOp();
  return def->getBlock() == op->getBlock() && def->isBeforeInBlock(op);
}

struct FuseResidualPass : llmc::impl::FuseResidualPassBase<FuseResidualPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<llm::AddOp> adds;
    getOperation().walk([&](llm::AddOp a) { adds.push_back(a); });
    for (llm::AddOp a : adds) {
      for (auto [y, r] : {std::pair(a.getLhs(), a.getRhs()),
                          std::pair(a.getRhs(), a.getLhs())}) {
        auto l = y.getDefiningOp<llm::LinearOp>();
        if (!l || l->getNumResults() != 1 || l.getResidual() ||
            l.getSwigluBlock() || !y.hasOneUse() || r == y ||
            !definedBefore(r, l)) {
          continue;
        }
        l.getResidualMutable().assign(r);
        a.getResult().replaceAllUsesWith(y);
        a.erase();
        break;
      }
    }
  }
};

} // namespace
