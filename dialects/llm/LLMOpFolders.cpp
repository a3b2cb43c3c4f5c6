// Canonicalization patterns of the `llm` ops.
#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace llmc::llm;

namespace {

/// True when every stored element of `data` is zero.
bool isAllZero(ElementsAttr data) {
  if (auto dense = dyn_cast<DenseElementsAttr>(data)) {
    if (dense.isSplat()) {
      auto f = dyn_cast<FloatAttr>(dense.getSplatValue<Attribute>());
      return f && f.getValue().isZero();
    }
  }
  if (auto blob = dyn_cast<DenseResourceElementsAttr>(data)) {
    AsmResourceBlob *b = blob.getRawHandle().getBlob();
    if (!b) {
      return false;
    }
    // +0.0 is all-zero bits in f32, f16 and bf16; a -0.0 bias is left alone.
    return llvm::all_of(b->getData(), [](char c) { return c == 0; });
  }
  if (auto dense = dyn_cast<DenseElementsAttr>(data)) {
    return llvm::all_of(dense.getRawData(), [](char c) { return c == 0; });
  }
  return false;
}

/// A bias that is all zeros adds nothing: checkpoints with attention_bias=true
/// often carry them, and dropping them lets the matmul skip its epilogue.
struct DropZeroBias : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    Value bias = op.getBias();
    if (!bias) {
      return failure();
    }
    auto ref = bias.getDefiningOp<WeightOp>();
    if (!ref) {
      return failure();
    }
    auto global = SymbolTable::lookupNearestSymbolFrom<GlobalOp>(
        op, ref.getGlobalAttr());
    if (!global || !global.getDataAttr() || !isAllZero(global.getDataAttr())) {
      return failure();
    }
    rewriter.modifyOpInPlace(op, [&] { op.getBiasMutable().clear(); });
    return success();
  }
};

} // namespace

void LinearOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                           MLIRContext *context) {
  results.add<DropZeroBias>(context);
}
