// llm-interleave-weights: lays q8/q4 and f16 matrices out for the CPU kernels (rows interleaved).
#include "passes/Passes.h"

#include "passes/WeightData.h"
#include "runtime/kernels/quant.h"

#include "llvm/ADT/StringMap.h"

namespace llmc {
#define GEN_PASS_DEF_INTERLEAVEWEIGHTSPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

struct InterleaveWeightsPass
    : llmc::impl::InterleaveWeightsPassBase<InterleaveWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    // A global qualifies when every read of it is a matrix product's weight
    // (llm.linear, llm.lm_head): an embedding reads single rows, which the
    // interleaved layout spreads over a group of 8.
    llvm::StringMap<bool> onlyMatrix;
    module.walk([&](llm::WeightOp ref) {
      bool matrix = llvm::all_of(ref->getUses(), [](OpOperand &use) {
        Operation *user = use.getOwner();
        if (auto l = dyn_cast<llm::LinearOp>(user)) {
          return l.getWeight() == use.get();
        }
        if (auto h = dyn_cast<llm::LMHeadOp>(user)) {
          return h.getWeight() == use.get();
        }
        return false;
      });
      auto [it, inserted] = onlyMatrix.try_emplace(ref.getGlobal(), matrix);
      if (!inserted) {
        it->second = it->second && matrix;
      }
    });
    for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
      llm::WeightType t = g.getWeightType();
      // The interleaved kind this weight takes, if any.
      std::optional<llm::StorageKind> to;
      const bool matrix = t.getShape().size() == 2;
      if (matrix && t.getKind() == llm::StorageKind::f16 &&
          t.getShape()[0] >= kernels::kF16GroupRows) {
        to = llm::StorageKind::f16x16;
      } else if (matrix && !t.getAsymmetric() &&
                 t.getShape()[0] >= kernels::kInterleaveRows &&
                 (t.getKind() == llm::StorageKind::q8 ||
                  t.getKind() == llm::StorageKind::q4)) {
        to = t.getKind() == llm::StorageKind::q8 ? llm::StorageKind::q8x8
                                                 : llm::StorageKind::q4x8;
      }
      auto it = onlyMatrix.find(g.getSymName());
      if (!to || it == onlyMatrix.end() || !it->second) {
        continue;
      }
      if (!hasWeightValues(g)) {
        retypeShapesOnly(g, t.withFormat(*to, t.getGroupSize(), false));
        continue;
      }
      std::optional<std::vector<char>> bytes = readStoredBytes(g);
      if (!bytes) {
        g.emitError() << "llm-interleave-weights: cannot read the data of @"
                      << g.getSymName();
        return signalPassFailure();
      }
      const int64_t rows = t.getShape()[0], cols = t.getShape()[1];
      std::vector<uint8_t> out(bytes->size());
      if (*to == llm::StorageKind::f16x16) {
        kernels::interleaveF16Rows(reinterpret_cast<const uint16_t *>(bytes->data()),
                                   rows, cols, reinterpret_cast<uint16_t *>(out.data()));
      } else {
        kernels::interleaveRows(reinterpret_cast<const uint8_t *>(bytes->data()),
                                rows, cols, static_cast<int32_t>(*to),
                                t.getGroupSize(), out.data());
      }
      writeQuantWeight(g, *to, t.getGroupSize(), false, std::move(out));
    }
    retypeWeightRefs(module);
  }
};

} // namespace
