// The `llm` dialect's registration and the verifier of the module's model config.
#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace llmc::llm;

#include "dialects/llm/LLMEnums.cpp.inc"

#include "dialects/llm/LLMDialect.cpp.inc"

void LLMDialect::initialize() {
  registerTypes();
  addOperations<
#define GET_OP_LIST
#include "dialects/llm/LLMOps.cpp.inc"
      >();
}

// `llm.config` is a dictionary on the module describing the model's
// hyper-parameters; the invariants here are those every op relies on.
LogicalResult LLMDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attr) {
  if (attr.getName() == kOffsetAttrName ||
      attr.getName() == kArenaBytesAttrName ||
      attr.getName() == kMaxTokensAttrName) {
    auto i = dyn_cast<IntegerAttr>(attr.getValue());
    if (!i || i.getInt() < 0) {
      return op->emitError() << "'" << attr.getName()
                             << "' must be a non-negative integer";
    }
    return success();
  }
  if (attr.getName() == "llm.offsets") {
    auto a = dyn_cast<DenseI64ArrayAttr>(attr.getValue());
    if (!a || static_cast<int64_t>(a.size()) != op->getNumResults() ||
        llvm::any_of(a.asArrayRef(), [](int64_t v) { return v < 0; })) {
      return op->emitError() << "'llm.offsets' must hold one non-negative "
                                "offset per result";
    }
    return success();
  }
  if (attr.getName() == "llm.calibration") {
    auto tokens = dyn_cast<DenseIntElementsAttr>(attr.getValue());
    auto type = tokens ? dyn_cast<RankedTensorType>(tokens.getType()) : nullptr;
    if (!type || type.getRank() != 2 || !type.getElementType().isInteger(32) ||
        type.getDimSize(0) < 1 || type.getDimSize(1) < 2) {
      return op->emitError() << "'llm.calibration' must be a "
                                "tensor<WINDOWSxCTXxi32> of token ids";
    }
    return success();
  }
  if (attr.getName() != kConfigAttrName) {
    return op->emitError() << "unknown llm attribute '" << attr.getName()
                           << "'";
  }
  if (!isa<ModuleOp>(op)) {
    return op->emitError() << "'" << kConfigAttrName
                           << "' belongs on a builtin.module";
  }
  auto dict = dyn_cast<DictionaryAttr>(attr.getValue());
  if (!dict) {
    return op->emitError() << "'" << kConfigAttrName
                           << "' must be a dictionary";
  }
  auto getInt = [&](StringRef key, int64_t &out) -> LogicalResult {
    auto a = dict.getAs<IntegerAttr>(key);
    if (!a) {
      return op->emitError() << "llm.config lacks integer '" << key << "'";
    }
    out = a.getInt();
    if (out <= 0) {
      return op->emitError() << "llm.config '" << key
                             << "' must be positive, got " << out;
    }
    return success();
  };
  int64_t hidden, ffn, layers, heads, kvHeads, headDim, vocab, maxSeq;
  if (failed(getInt("hidden_size", hidden)) ||
      failed(getInt("intermediate_size", ffn)) ||
      failed(getInt("num_layers", layers)) ||
      failed(getInt("num_heads", heads)) ||
      failed(getInt("num_kv_heads", kvHeads)) ||
      failed(getInt("head_dim", headDim)) ||
      failed(getInt("vocab_size", vocab)) ||
      failed(getInt("max_seq_len", maxSeq))) {
    return failure();
  }
  if (heads % kvHeads != 0) {
    return op->emitError() << "llm.config: num_kv_heads (" << kvHeads
                           << ") must divide num_heads (" << heads << ")";
  }
  if (headDim * heads != hidden) {
    return op->emitError() << "llm.config: head_dim (" << headDim
                           << ") x num_heads (" << heads
                           << ") must equal hidden_size (" << hidden << ")";
  }
  if (headDim % 2 != 0) {
    return op->emitError() << "llm.config: head_dim must be even for RoPE, got "
                           << headDim;
  }
  for (StringRef key : {"rms_norm_eps", "rope_theta"}) {
    auto f = dict.getAs<FloatAttr>(key);
    if (!f || f.getValueAsDouble() <= 0) {
      return op->emitError() << "llm.config lacks positive float '" << key
                             << "'";
    }
  }
  return success();
}
