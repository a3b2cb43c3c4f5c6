// Verifiers of the `llm` ops: every shape and head-count invariant the lowering relies on.
#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace llmc::llm;

namespace {

/// Checks that `t` is `?xN` (or `MxN`) and returns N through `width`.
LogicalResult verifyActivation(Operation *op, StringRef what, Type t,
                               int64_t &width) {
  auto rt = cast<RankedTensorType>(t);
  if (rt.getRank() != 2) {
    return op->emitOpError() << what << " must be a 2-D [seq, features] tensor";
  }
  if (rt.isDynamicDim(1)) {
    return op->emitOpError() << what << " must have a static feature dimension";
  }
  width = rt.getDimSize(1);
  return success();
}

/// The leading (sequence) dimensions of two activations agree when both are static.
LogicalResult verifySameSeq(Operation *op, Type a, Type b) {
  int64_t x = cast<RankedTensorType>(a).getDimSize(0);
  int64_t y = cast<RankedTensorType>(b).getDimSize(0);
  if (!ShapedType::isDynamic(x) && !ShapedType::isDynamic(y) && x != y) {
    return op->emitOpError() << "sequence lengths differ: " << x << " vs " << y;
  }
  return success();
}

} // namespace

LogicalResult GlobalOp::verify() {
  WeightType wt = getWeightType();
  if (!getDataAttr()) {
    return success(); // shapes only: the values are synthesized at load
  }
  auto dataType = cast<ShapedType>(getDataAttr().getType());
  if (wt.isFloat()) {
    Type expected;
    switch (wt.getKind()) {
    case StorageKind::f32:
      expected = Float32Type::get(getContext());
      break;
    case StorageKind::f16:
      expected = Float16Type::get(getContext());
      break;
    default:
      expected = BFloat16Type::get(getContext());
      break;
    }
    if (dataType.getShape() != wt.getShape() ||
        dataType.getElementType() != expected) {
      return emitOpError() << "data of type " << dataType
                           << " does not match weight type " << wt;
    }
    return success();
  }
  if (dataType.getRank() != 1 || !dataType.getElementType().isInteger(8) ||
      dataType.getDimSize(0) != wt.getStorageBytes()) {
    return emitOpError() << "block-format data must be tensor<"
                         << wt.getStorageBytes() << "xi8>, got " << dataType;
  }
  return success();
}

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto global =
      symbolTable.lookupNearestSymbolFrom<GlobalOp>(*this, getGlobalAttr());
  if (!global) {
    return emitOpError() << "'" << getGlobal()
                         << "' does not name an llm.global";
  }
  if (global.getWeightType() != getType()) {
    return emitOpError() << "type " << getType() << " differs from @"
                         << getGlobal() << "'s " << global.getWeightType();
  }
  return success();
}

LogicalResult EmbeddingOp::verify() {
  WeightType table = getTable().getType();
  int64_t width;
  if (failed(verifyActivation(*this, "result", getType(), width))) {
    return failure();
  }
  if (table.getShape().size() != 2 || table.getShape()[1] != width) {
    return emitOpError() << "table " << table << " must be [vocab, " << width
                         << "]";
  }
  return verifySameSeq(*this, RankedTensorType::get(
                                  {getTokens().getType().getDimSize(0), 1},
                                  Float32Type::get(getContext())),
                       getType());
}

LogicalResult RMSNormOp::verify() {
  int64_t width;
  if (failed(verifyActivation(*this, "input", getInput().getType(), width))) {
    return failure();
  }
  WeightType w = getWeight().getType();
  if (w.getShape().size() != 1 || w.getShape()[0] != width) {
    return emitOpError() << "weight " << w << " must be [" << width << "]";
  }
  if (!w.isFloat()) {
    return emitOpError() << "norm weights must be stored in a float format";
  }
  if (getEps().convertToFloat() <= 0) {
    return emitOpError() << "eps must be positive";
  }
  return success();
}

LogicalResult LinearOp::verify() {
  int64_t in;
  if (failed(verifyActivation(*this, "input", getInput().getType(), in))) {
    return failure();
  }
  if (getResults().empty()) {
    return emitOpError() << "needs at least one result";
  }
  int64_t out = 0;
  for (Value r : getResults()) {
    int64_t w;
    if (failed(verifyActivation(*this, "result", r.getType(), w)) ||
        failed(verifySameSeq(*this, getInput().getType(), r.getType()))) {
      return failure();
    }
    out += w;
  }
  WeightType w = getWeight().getType();
  std::optional<uint64_t> swiglu = getSwigluBlock();
  if (swiglu) {
    if (getResults().size() != 1 || getResidual()) {
      return emitOpError() << "swiglu_block needs one result and no residual";
    }
    if (*swiglu == 0 || *swiglu % 16 != 0 || *swiglu > 64) {
      return emitOpError() << "swiglu_block must be 16, 32, 48 or 64";
    }
    out *= 2; // a gate and an up row per result column
  }
  if (Value norm = getNorm()) {
    auto nt = cast<WeightType>(norm.getType());
    if (nt.getShape().size() != 1 || nt.getShape()[0] != in || !nt.isFloat()) {
      return emitOpError() << "norm " << nt << " must be a float [" << in
                           << "]";
    }
    if (!getNormEps() || getNormEps()->convertToFloat() <= 0) {
      return emitOpError() << "a fused norm needs a positive norm_eps";
    }
  } else if (getNormEps()) {
    return emitOpError() << "norm_eps without a norm";
  }
  if (Value r = getResidual()) {
    if (getResults().size() != 1 || r.getType() != getResults()[0].getType()) {
      return emitOpError() << "residual must have the type of the one result";
    }
  }
  if (w.getShape().size() != 2 || w.getShape()[0] != out ||
      w.getShape()[1] != in) {
    return emitOpError() << "weight " << w << " must be [" << out << ", " << in
                         << "]" << (getResults().size() > 1
                                        ? " (the results' widths add up to " +
                                              std::to_string(out) + ")"
                                        : std::string());
  }
  if (Value bias = getBias()) {
    auto bt = cast<WeightType>(bias.getType());
    if (bt.getShape().size() != 1 || bt.getShape()[0] != out || !bt.isFloat()) {
      return emitOpError() << "bias " << bt << " must be a float [" << out
                           << "]";
    }
  }
  return success();
}

LogicalResult RoPEOp::verify() {
  int64_t width;
  if (failed(verifyActivation(*this, "input", getInput().getType(), width))) {
    return failure();
  }
  int64_t heads = getNumHeads(), headDim = getHeadDim();
  if (heads <= 0 || headDim <= 0 || headDim % 2 != 0) {
    return emitOpError() << "needs positive num_heads and an even head_dim";
  }
  if (heads * headDim != width) {
    return emitOpError() << "num_heads (" << heads << ") x head_dim ("
                         << headDim << ") must equal the row width (" << width
                         << ")";
  }
  if (getTheta().convertToFloat() <= 0) {
    return emitOpError() << "theta must be positive";
  }
  return success();
}

LogicalResult AttentionOp::verify() {
  int64_t qw, kw, vw, ow;
  if (failed(verifyActivation(*this, "query", getQuery().getType(), qw)) ||
      failed(verifyActivation(*this, "key", getKey().getType(), kw)) ||
      failed(verifyActivation(*this, "value", getValue().getType(), vw)) ||
      failed(verifyActivation(*this, "result", getType(), ow)) ||
      failed(verifySameSeq(*this, getQuery().getType(), getKey().getType())) ||
      failed(verifySameSeq(*this, getQuery().getType(), getValue().getType()))) {
    return failure();
  }
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(),
          headDim = getHeadDim();
  if (heads <= 0 || kvHeads <= 0 || headDim <= 0) {
    return emitOpError() << "head counts and head_dim must be positive";
  }
  if (heads % kvHeads != 0) {
    return emitOpError() << "num_kv_heads (" << kvHeads
                         << ") must divide num_heads (" << heads << ")";
  }
  if (qw != heads * headDim || ow != qw) {
    return emitOpError() << "query and result width must be num_heads x "
                            "head_dim = "
                         << heads * headDim;
  }
  if (kw != kvHeads * headDim || vw != kw) {
    return emitOpError() << "key and value width must be num_kv_heads x "
                            "head_dim = "
                         << kvHeads * headDim;
  }
  if (std::optional<APFloat> theta = getRopeTheta()) {
    if (theta->convertToFloat() <= 0 || headDim % 2 != 0) {
      return emitOpError() << "rope_theta must be positive and head_dim even";
    }
  }
  KVCacheType cache = getCache().getType();
  if (static_cast<int64_t>(getLayer()) >= cache.getLayers()) {
    return emitOpError() << "layer " << getLayer() << " is outside the cache's "
                         << cache.getLayers() << " layers";
  }
  // One cache layer, one attention op: the layer's shape is this op's.
  if (Operation *parent = getOperation()->getParentOp()) {
    bool shared = false;
    parent->walk([&](AttentionOp other) {
      shared |= other != *this && other.getLayer() == getLayer();
    });
    if (shared) {
      return emitOpError() << "cache layer " << getLayer()
                           << " is used by another llm.attention";
    }
  }
  return success();
}

void AttentionOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // The op reads earlier positions of the cache and writes its own.
  effects.emplace_back(MemoryEffects::Read::get(), &getCacheMutable());
  effects.emplace_back(MemoryEffects::Write::get(), &getCacheMutable());
}

LogicalResult LMHeadOp::verify() {
  int64_t in, vocab;
  if (failed(verifyActivation(*this, "input", getInput().getType(), in)) ||
      failed(verifyActivation(*this, "result", getType(), vocab)) ||
      failed(verifySameSeq(*this, getInput().getType(), getType()))) {
    return failure();
  }
  WeightType w = getWeight().getType();
  if (w.getShape().size() != 2 || w.getShape()[0] != vocab ||
      w.getShape()[1] != in) {
    return emitOpError() << "weight " << w << " must be [" << vocab << ", "
                         << in << "]";
  }
  if (static_cast<bool>(getNorm()) != getNormEps().has_value()) {
    return emitOpError() << "norm and norm_eps go together";
  }
  if (Value norm = getNorm()) {
    auto g = cast<WeightType>(norm.getType());
    if (g.getShape().size() != 1 || g.getShape()[0] != in || !g.isFloat()) {
      return emitOpError() << "norm weight " << g << " must be [" << in
                           << "] in a float format";
    }
  }
  if (getTied()) {
    // A tied head must read the same global as an embedding lookup.
    auto ref = getWeight().getDefiningOp<WeightOp>();
    auto module = getOperation()->getParentOfType<ModuleOp>();
    if (!ref || !module) {
      return success(); // Nothing to compare against yet.
    }
    bool found = false;
    module.walk([&](EmbeddingOp emb) {
      if (auto w = emb.getTable().getDefiningOp<WeightOp>()) {
        found |= w.getGlobal() == ref.getGlobal();
      }
    });
    if (!found) {
      return emitOpError() << "is tied, but @" << ref.getGlobal()
                           << " is not read by any llm.embedding";
    }
  }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/llm/LLMOps.cpp.inc"
