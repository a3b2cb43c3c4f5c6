// llm-plan-memory: a static, liveness-based arena layout for the activations of @forward.
#include "compiler/Passes.h"

#include "dialects/llm/LLMDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <algorithm>

namespace llmc {
#define GEN_PASS_DEF_PLANMEMORYPASS
#include "compiler/Passes.h.inc"
} // namespace llmc

using namespace mlir;

namespace {

constexpr int64_t kAlign = 64;

struct Live {
  int64_t offset, size, lastUse;
};

struct PlanMemoryPass : llmc::impl::PlanMemoryPassBase<PlanMemoryPass> {
  using Base::Base;

  void runOnOperation() override {
    auto func = getOperation().lookupSymbol<func::FuncOp>(llmc::kForwardFuncName);
    if (!func) {
      getOperation().emitError() << "llm-plan-memory: no @"
                                 << llmc::kForwardFuncName << " function";
      return signalPassFailure();
    }
    if (maxTokens <= 0) {
      func.emitError() << "llm-plan-memory: max-tokens must be positive";
      return signalPassFailure();
    }
    Block &body = func.getBody().front();
    llvm::DenseMap<Operation *, int64_t> index;
    int64_t i = 0;
    for (Operation &op : body) {
      index[&op] = i++;
    }
    Operation *ret = body.getTerminator();
    Builder b(&getContext());
    std::vector<Live> live;
    int64_t arena = 0;
    for (Operation &op : body) {
      if (op.getNumResults() == 0 ||
          !isa<RankedTensorType>(op.getResult(0).getType()) ||
          isa<llmc::llm::LMHeadOp>(op)) {
        continue; // weight refs, the logits (caller's buffer), the return
      }
      SmallVector<int64_t> offsets;
      for (Value v : op.getResults()) {
        auto type = cast<RankedTensorType>(v.getType());
        int64_t lastUse = index[&op];
        for (Operation *user : v.getUsers()) {
          if (user == ret) {
            op.emitError() << "llm-plan-memory: only lm_head results may be "
                              "returned";
            return signalPassFailure();
          }
          lastUse = std::max(lastUse, index[user]);
        }
        int64_t size = (maxTokens * type.getDimSize(1) * 4 + kAlign - 1) /
                       kAlign * kAlign;
        // Values whose last use is before this op no longer need their space.
        int64_t now = index[&op];
        live.erase(std::remove_if(live.begin(), live.end(),
                                  [&](const Live &l) { return l.lastUse < now; }),
                   live.end());
        std::sort(live.begin(), live.end(),
                  [](const Live &a, const Live &b) { return a.offset < b.offset; });
        int64_t offset = 0;
        for (const Live &l : live) {
          if (l.offset - offset >= size) {
            break;
          }
          offset = std::max(offset, l.offset + l.size);
        }
        live.push_back({offset, size, lastUse});
        arena = std::max(arena, offset + size);
        offsets.push_back(offset);
      }
      if (offsets.size() == 1) {
        op.setAttr(llmc::kOffsetAttr, b.getI64IntegerAttr(offsets[0]));
      } else {
        // A split linear: one offset per result.
        op.setAttr(llmc::kOffsetsAttr, b.getDenseI64ArrayAttr(offsets));
      }
    }
    func->setAttr(llmc::kArenaBytesAttr, b.getI64IntegerAttr(arena));
    func->setAttr(llmc::kMaxTokensAttr, b.getI64IntegerAttr(maxTokens));
  }
};

} // namespace
