// llm-fuse-lm-head: the final RMSNorm becomes the LM head's input stage.
#include "passes/Passes.h"

#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/BuiltinOps.h"

namespace llmc {
#define GEN_PASS_DEF_FUSELMHEADPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

struct FuseLMHeadPass : llmc::impl::FuseLMHeadPassBase<FuseLMHeadPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<llm::LMHeadOp> heads;
    getOperation().walk([&](llm::LMHeadOp h) { heads.push_back(h); });
    for (llm::LMHeadOp h : heads) {
      auto n = h.getInput().getDefiningOp<llm::RMSNormOp>();
      // The norm must feed the head alone: another reader needs every row
      // normalized, and the head normalizes only the rows it keeps.
      if (!n || h.getNorm() || !n.getResult().hasOneUse()) {
        continue;
      }
      h.getInputMutable().assign(n.getInput());
      h.getNormMutable().assign(n.getWeight());
      h.setNormEpsAttr(n.getEpsAttr());
      n.erase();
    }
  }
};

} // namespace
