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
    std::optional<TargetFormat> target = parseTargetFormat(format);
    if (!target) {
      module.emitError() << "llm-quantize-weights: unknown format '" << format
                         << "' (f32, f16, bf16, q8, q4, q4a)";
      return signalPassFailure();
    }
    if (groupSize <= 0 || groupSize % 32 != 0) {
      module.emitError() << "llm-quantize-weights: group-size must be a "
                            "positive multiple of 32, got "
                         << static_cast<int64_t>(groupSize);
      return signalPassFailure();
    }
    auto keepRules = parseKeepRules(module, keep);
    if (!keepRules) {
      return signalPassFailure();
    }
    for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
      if (g.getWeightType().getShape().size() != 2) {
        continue; // norms and biases stay as they are
      }
      const KeepRule *rule = matchKeep(*keepRules, g.getSymName());
      applyFormat(g, rule ? rule->format : *target, groupSize);
    }
    retypeWeightRefs(module);
  }
};

} // namespace
