// llm-convert-weight-format: re-encodes floating-point weights (e.g. f32 → f16) and retypes their uses.
#include "passes/Passes.h"

#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/APFloat.h"

namespace llmc {
#define GEN_PASS_DEF_CONVERTWEIGHTFORMATPASS
#include "passes/Passes.h.inc"
} // namespace llmc

using namespace mlir;
using namespace llmc::llm;

namespace {

/// The raw bytes of a float global's data, or empty if unavailable.
ArrayRef<char> rawBytes(ElementsAttr data) {
  if (auto r = dyn_cast<DenseResourceElementsAttr>(data)) {
    if (AsmResourceBlob *blob = r.getRawHandle().getBlob()) {
      return blob->getData();
    }
    return {};
  }
  if (auto d = dyn_cast<DenseElementsAttr>(data)) {
    if (!d.isSplat()) {
      return d.getRawData();
    }
  }
  return {};
}

const llvm::fltSemantics &semanticsOf(StorageKind k) {
  switch (k) {
  case StorageKind::f16:
    return llvm::APFloat::IEEEhalf();
  case StorageKind::bf16:
    return llvm::APFloat::BFloat();
  default:
    return llvm::APFloat::IEEEsingle();
  }
}

Type elementTypeOf(MLIRContext *ctx, StorageKind k) {
  switch (k) {
  case StorageKind::f16:
    return Float16Type::get(ctx);
  case StorageKind::bf16:
    return BFloat16Type::get(ctx);
  default:
    return Float32Type::get(ctx);
  }
}

struct ConvertWeightFormatPass
    : llmc::impl::ConvertWeightFormatPassBase<ConvertWeightFormatPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<StorageKind> target = symbolizeStorageKind(format);
    if (!target || floatElementBytes(*target) == 0) {
      module.emitError() << "llm-convert-weight-format: format must be f16, "
                            "bf16 or f32, got '"
                         << format << "'";
      return signalPassFailure();
    }
    llvm::StringMap<WeightType> retyped;
    for (GlobalOp g : module.getOps<GlobalOp>()) {
      WeightType wt = g.getWeightType();
      if (!wt.isFloat() || wt.getKind() == *target ||
          (wt.getShape().size() == 1 && !includeNorms)) {
        continue;
      }
      FailureOr<ElementsAttr> converted = convert(g, wt, *target);
      if (failed(converted)) {
        return signalPassFailure();
      }
      WeightType newType = wt.withFormat(*target);
      g.setTypeAttr(TypeAttr::get(newType));
      g.setDataAttr(*converted);
      retyped[g.getSymName()] = newType;
    }
    module.walk([&](WeightOp ref) {
      auto it = retyped.find(ref.getGlobal());
      if (it != retyped.end()) {
        ref.getResult().setType(it->second);
      }
    });
  }

  FailureOr<ElementsAttr> convert(GlobalOp g, WeightType wt, StorageKind to) {
    MLIRContext *ctx = &getContext();
    auto outType = RankedTensorType::get(wt.getShape(), elementTypeOf(ctx, to));
    auto dense = dyn_cast<DenseElementsAttr>(g.getData());
    if (dense && dense.isSplat()) {
      APFloat v = dense.getSplatValue<APFloat>();
      bool lost;
      v.convert(semanticsOf(to), APFloat::rmNearestTiesToEven, &lost);
      return cast<ElementsAttr>(DenseElementsAttr::get(outType, v));
    }
    ArrayRef<char> in = rawBytes(g.getData());
    int64_t n = wt.getNumElements();
    int64_t inBytes = floatElementBytes(wt.getKind());
    if (static_cast<int64_t>(in.size()) != n * inBytes) {
      g.emitError() << "cannot read the data of @" << g.getSymName();
      return failure();
    }
    int64_t outBytes = floatElementBytes(to);
    auto blob = HeapAsmResourceBlob::allocate(n * outBytes, outBytes);
    MutableArrayRef<char> out = blob.getMutableData();
    const llvm::fltSemantics &from = semanticsOf(wt.getKind());
    const llvm::fltSemantics &dst = semanticsOf(to);
    for (int64_t i = 0; i < n; ++i) {
      uint64_t bits = 0;
      std::memcpy(&bits, in.data() + i * inBytes, inBytes);
      APFloat v(from, APInt(inBytes * 8, bits));
      bool lost;
      v.convert(dst, APFloat::rmNearestTiesToEven, &lost);
      uint64_t o = v.bitcastToAPInt().getZExtValue();
      std::memcpy(out.data() + i * outBytes, &o, outBytes);
    }
    std::string name = (g.getSymName() + "." + stringifyStorageKind(to)).str();
    return cast<ElementsAttr>(
        DenseResourceElementsAttr::get(outType, name, std::move(blob)));
  }
};

} // namespace
