// llm-fuse-rope: the RoPE of query and key moves into the attention's input stage.
#include "passes/Passes.h"

#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/BuiltinOps.h"

namespace llmc {
#define GEN_PASS_DEF_FUSEROPEPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

struct FuseRoPEPass : llmc::impl::FuseRoPEPassBase<FuseRoPEPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<llm::AttentionOp> attns;
    getOperation().walk([&](llm::AttentionOp a) { attns.push_back(a); });
    for (llm::AttentionOp a : attns) {
      auto q = a.getQuery().getDefiningOp<llm::RoPEOp>();
      auto k = a.getKey().getDefiningOp<llm::RoPEOp>();
      if (!q || !k || q == k || a.getRopeTheta() || !q->hasOneUse() ||
          !k->hasOneUse() || q.getTheta() != k.getTheta() ||
          q.getStart() != a.getStart() || k.getStart() != a.getStart() ||
          q.getHeadDim() != a.getHeadDim() || k.getHeadDim() != a.getHeadDim() ||
          q.getNumHeads() != a.getNumHeads() ||
          k.getNumHeads() != a.getNumKvHeads()) {
        continue;
      }
      a.getQueryMutable().assign(q.getInput());
      a.getKeyMutable().assign(k.getInput());
      a.setRopeThetaAttr(q.getThetaAttr());
      q.erase();
      k.erase();
    }
  }
};

} // namespace
