// llm-quantize-weights: round-to-nearest quantization of every weight matrix, with keep rules.
#include "passes/Passes.h"

#include "passes/WeightData.h"

namespace llmc {
#define GEN_PASS_DEF_QUANTIZEWEIGHTSPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

struct QuantizeWeightsPass
    : llmc::impl::QuantizeWeightsPassBase<QuantizeWeightsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<QuantTarget> target =
        parseQuantOptions(module, "llm-quantize-weights", format, groupSize,
                          keep, /*allowFloat=*/true);
    if (!target) {
      return signalPassFailure();
    }
    for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
      if (g.getWeightType().getShape().size() != 2) {
        continue; // norms and biases stay as they are
      }
      const KeepRule *rule = matchKeep(target->keep, g.getSymName());
      applyFormat(g, rule ? rule->format : target->format, groupSize);
    }
    retypeWeightRefs(module);
  }
};

} // namespace
