// llm-fuse-norm: an RMSNorm whose every use is a linear's input becomes those linears' input stage.
#include "passes/Passes.h"

#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/BuiltinOps.h"

namespace llmc {
#define GEN_PASS_DEF_FUSENORMPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

struct FuseNormPass : llmc::impl::FuseNormPassBase<FuseNormPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<llm::RMSNormOp> norms;
    getOperation().walk([&](llm::RMSNormOp n) { norms.push_back(n); });
    for (llm::RMSNormOp n : norms) {
      Value y = n.getResult();
      // Every use must be a linear's input (not its residual) that has no
      // norm yet; one other reader keeps the norm as it is.
      bool all = !y.use_empty() && llvm::all_of(y.getUses(), [&](OpOperand &u) {
        auto l = dyn_cast<llm::LinearOp>(u.getOwner());
        return l && u.get() == l.getInput() && l.getResidual() != y &&
               !l.getNorm();
      });
      if (!all) {
        continue;
      }
      for (Operation *user : llvm::to_vector(y.getUsers())) {
        auto l = cast<llm::LinearOp>(user);
        l.getInputMutable().assign(n.getInput());
        l.getNormMutable().assign(n.getWeight());
        l.setNormEpsAttr(n.getEpsAttr());
      }
      n.erase();
    }
  }
};

} // namespace
