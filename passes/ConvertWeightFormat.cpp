// llm-convert-weight-format: re-encodes floating-point weights (e.g. f32 → f16) and retypes their uses.
#include "passes/Passes.h"

#include "passes/WeightData.h"

namespace llmc {
#define GEN_PASS_DEF_CONVERTWEIGHTFORMATPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc;

namespace {

struct ConvertWeightFormatPass
    : llmc::impl::ConvertWeightFormatPassBase<ConvertWeightFormatPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<llm::StorageKind> target = llm::symbolizeStorageKind(format);
    if (!target || llm::floatElementBytes(*target) == 0) {
      module.emitError() << "llm-convert-weight-format: format must be f16, "
                            "bf16 or f32, got '"
                         << format << "'";
      return signalPassFailure();
    }
    for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
      llm::WeightType wt = g.getWeightType();
      if (!wt.isFloat() || wt.getKind() == *target ||
          (wt.getShape().size() == 1 && !includeNorms)) {
        continue;
      }
      if (!hasWeightValues(g)) {
        retypeShapesOnly(g, llm::WeightType::get(&getContext(), wt.getShape(), *target));
        continue;
      }
      std::optional<std::vector<float>> w = readFloatWeight(g);
      if (!w) {
        g.emitError() << "cannot read the data of @" << g.getSymName();
        return signalPassFailure();
      }
      writeFloatWeight(g, *target, *w);
    }
    retypeWeightRefs(module);
  }
};

} // namespace
