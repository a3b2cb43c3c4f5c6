// Weight data access for passes: float views of globals, re-encoding, RTN quantization, keep rules.
#include "passes/WeightData.h"
#include "passes/WeightStore.h"

#include "runtime/kernels/kernels.h"
#include "runtime/kernels/quant.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/StringSet.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/GlobPattern.h"

#include <cstring>

using namespace mlir;

namespace llmc {

namespace {

ArrayRef<char> rawBytes(ElementsAttr data) {
  if (auto r = dyn_cast_if_present<DenseResourceElementsAttr>(data)) {
    if (AsmResourceBlob *blob = r.getRawHandle().getBlob()) {
      return blob->getData();
    }
    return {};
  }
  if (auto d = dyn_cast_if_present<DenseElementsAttr>(data)) {
    return d.getRawData();
  }
  return {};
}

Type elementType(MLIRContext *ctx, llm::StorageKind k) {
  switch (k) {
  case llm::StorageKind::f16:
    return Float16Type::get(ctx);
  case llm::StorageKind::bf16:
    return BFloat16Type::get(ctx);
  default:
    return Float32Type::get(ctx);
  }
}

std::string blobName(llm::GlobalOp g, llm::WeightType t) {
  std::string s = (g.getSymName() + "." + llm::stringifyStorageKind(t.getKind())).str();
  if (t.getGroupSize()) {
    s += "g" + std::to_string(t.getGroupSize()) + (t.getAsymmetric() ? "a" : "");
  }
  return s;
}

} // namespace

void releaseWeightData(llm::GlobalOp g) {
  // The resource entry outlives the attribute that names it (attributes are
  // never freed), so its bytes would stay allocated for the whole compile:
  // at 7B that is gigabytes per rewrite. Dropping the blob runs its deleter
  // (a heap free, or one reference less on a mapped checkpoint file).
  if (auto r = dyn_cast_if_present<DenseResourceElementsAttr>(g.getDataAttr())) {
    if (auto *entry = r.getRawHandle().getResource()) {
      entry->setBlob(AsmResourceBlob());
    }
  }
}

void retypeShapesOnly(llm::GlobalOp g, llm::WeightType type) {
  assert(!hasWeightValues(g) && "a global with values is rewritten, not retyped");
  g.setTypeAttr(TypeAttr::get(type));
}

LogicalResult requireWeightValues(ModuleOp module, StringRef pass) {
  for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
    if (!hasWeightValues(g)) {
      return g.emitError()
             << pass << " needs the weights' values, and @" << g.getSymName()
             << " has none (the module has shapes only: compiled from a "
                "config with --random-weights)";
    }
  }
  return success();
}

std::optional<std::vector<float>> readFloatWeight(llm::GlobalOp g) {
  llm::WeightType t = g.getWeightType();
  if (!t.isFloat()) {
    return std::nullopt;
  }
  int64_t n = t.getNumElements();
  std::vector<float> out(static_cast<size_t>(n));
  ArrayRef<char> raw = rawBytes(g.getDataAttr());
  auto dense = dyn_cast_if_present<DenseElementsAttr>(g.getDataAttr());
  int64_t elem = llm::floatElementBytes(t.getKind());
  if (dense && dense.isSplat()) {
    float v;
    kernels::toFloat(raw.data(), static_cast<int32_t>(t.getKind()), 1, &v);
    std::fill(out.begin(), out.end(), v);
    return out;
  }
  if (static_cast<int64_t>(raw.size()) != n * elem) {
    return std::nullopt;
  }
  kernels::toFloat(raw.data(), static_cast<int32_t>(t.getKind()), n, out.data());
  return out;
}

std::optional<std::vector<float>> readDenseWeight(llm::GlobalOp g) {
  llm::WeightType t = g.getWeightType();
  if (!t.isSparse()) {
    return readFloatWeight(g);
  }
  const auto format = static_cast<int32_t>(t.getKind());
  auto bytes = readStoredBytes(g);
  if (!bytes) {
    return std::nullopt;
  }
  const int64_t cols = t.getShape().back(), rows = t.getNumElements() / cols;
  const size_t rowBytes = kernels::sparseRowBytes(format, cols);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    kernels::unpackSparseRow(reinterpret_cast<const uint8_t *>(bytes->data()) +
                                 r * rowBytes,
                             cols, format, out.data() + r * cols);
  }
  return out;
}

void writeFloatWeight(llm::GlobalOp g, llm::StorageKind kind,
                      const std::vector<float> &values) {
  writeFloatWeight(g, kind, g.getWeightType().getShape(), values);
}

void writeFloatWeight(llm::GlobalOp g, llm::StorageKind kind,
                      ArrayRef<int64_t> shape,
                      const std::vector<float> &values) {
  llm::WeightType t = llm::WeightType::get(g.getContext(), shape, kind);
  int64_t n = t.getNumElements();
  int64_t elem = llm::floatElementBytes(kind);
  AsmResourceBlob blob = allocateWeightBlob(static_cast<size_t>(n * elem));
  char *out = blob.getMutableData().data();
  for (int64_t i = 0; i < n; ++i) {
    if (kind == llm::StorageKind::f32) {
      std::memcpy(out + 4 * i, &values[i], 4);
    } else {
      uint16_t h = kind == llm::StorageKind::f16
                       ? kernels::floatToHalf(values[i])
                       : kernels::floatToBF16(values[i]);
      std::memcpy(out + 2 * i, &h, 2);
    }
  }
  auto type = RankedTensorType::get(t.getShape(), elementType(g.getContext(), kind));
  releaseWeightData(g);
  g.setTypeAttr(TypeAttr::get(t));
  g.setDataAttr(DenseResourceElementsAttr::get(type, blobName(g, t), std::move(blob)));
}

llm::GlobalOp createFloatGlobal(llm::GlobalOp after, StringRef name,
                                ArrayRef<int64_t> shape, llm::StorageKind kind,
                                const std::vector<float> &values) {
  OpBuilder b(after->getContext());
  b.setInsertionPointAfter(after);
  llm::WeightType t = llm::WeightType::get(after->getContext(), shape, kind);
  // Placeholder data of the right type, replaced at once.
  auto type = RankedTensorType::get(shape, elementType(after->getContext(), kind));
  auto g = llm::GlobalOp::create(
      b, after.getLoc(), b.getStringAttr(name), TypeAttr::get(t),
      DenseElementsAttr::get(type, b.getZeroAttr(type.getElementType())));
  writeFloatWeight(g, kind, shape, values);
  return g;
}

void eraseDeadCode(ModuleOp module) {
  auto forward = module.lookupSymbol<func::FuncOp>(kForwardFuncName);
  if (forward) {
    bool changed = true;
    while (changed) {
      changed = false;
      SmallVector<Operation *> dead;
      forward.walk([&](Operation *op) {
        if (op != forward && isOpTriviallyDead(op)) {
          dead.push_back(op);
        }
      });
      for (Operation *op : dead) {
        op->erase();
        changed = true;
      }
    }
  }
  llvm::StringSet<> used;
  module.walk([&](llm::WeightOp ref) { used.insert(ref.getGlobal()); });
  for (llm::GlobalOp g :
       llvm::make_early_inc_range(module.getOps<llm::GlobalOp>())) {
    if (!used.contains(g.getSymName())) {
      releaseWeightData(g);
      g.erase();
    }
  }
}

namespace {

/// Makes `blob` (the stored bytes of `kind`) the data of `g`.
void setQuantData(llm::GlobalOp g, llm::StorageKind kind, int64_t groupSize,
                  bool asymmetric, AsmResourceBlob blob) {
  llm::WeightType t = g.getWeightType().withFormat(kind, groupSize, asymmetric);
  auto type = RankedTensorType::get({static_cast<int64_t>(blob.getData().size())},
                                    IntegerType::get(g.getContext(), 8));
  releaseWeightData(g);
  g.setTypeAttr(TypeAttr::get(t));
  g.setDataAttr(DenseResourceElementsAttr::get(type, blobName(g, t), std::move(blob)));
}

} // namespace

void writeQuantWeight(llm::GlobalOp g, llm::StorageKind kind, int64_t groupSize,
                      bool asymmetric, std::vector<uint8_t> bytes) {
  AsmResourceBlob blob = allocateWeightBlob(bytes.size());
  std::memcpy(blob.getMutableData().data(), bytes.data(), bytes.size());
  setQuantData(g, kind, groupSize, asymmetric, std::move(blob));
}

std::optional<std::vector<char>> readStoredBytes(llm::GlobalOp g) {
  llm::WeightType t = g.getWeightType();
  ArrayRef<char> raw = rawBytes(g.getDataAttr());
  auto dense = dyn_cast_if_present<DenseElementsAttr>(g.getDataAttr());
  if (dense && dense.isSplat()) {
    if (raw.empty() || t.getStorageBytes() % static_cast<int64_t>(raw.size())) {
      return std::nullopt;
    }
    std::vector<char> out;
    out.reserve(static_cast<size_t>(t.getStorageBytes()));
    while (static_cast<int64_t>(out.size()) < t.getStorageBytes()) {
      out.insert(out.end(), raw.begin(), raw.end());
    }
    return out;
  }
  if (static_cast<int64_t>(raw.size()) != t.getStorageBytes()) {
    return std::nullopt;
  }
  return std::vector<char>(raw.begin(), raw.end());
}

ElementsAttr makeWeightData(llm::WeightType t, StringRef name,
                            ArrayRef<char> bytes) {
  AsmResourceBlob blob = allocateWeightBlob(bytes.size());
  std::memcpy(blob.getMutableData().data(), bytes.data(), bytes.size());
  ShapedType type =
      t.isFloat()
          ? RankedTensorType::get(t.getShape(),
                                  elementType(t.getContext(), t.getKind()))
          : RankedTensorType::get({static_cast<int64_t>(bytes.size())},
                                  IntegerType::get(t.getContext(), 8));
  return DenseResourceElementsAttr::get(type, name, std::move(blob));
}

void quantizeWeightRTN(llm::GlobalOp g, llm::StorageKind kind, int64_t groupSize,
                       bool asymmetric) {
  llm::WeightType t = g.getWeightType();
  if (!t.isFloat()) {
    return;
  }
  if (!hasWeightValues(g)) {
    retypeShapesOnly(g, t.withFormat(kind, groupSize, asymmetric));
    return;
  }
  const int64_t k = t.getShape().back();
  const int64_t rows = t.getNumElements() / k;
  const int32_t format = static_cast<int32_t>(kind);
  const size_t rowBytes = kernels::quantRowBytes(format, k, groupSize, asymmetric);
  // Rows come straight from the stored bytes, converted a row at a time per
  // thread: no float copy of the matrix (at 7B the embedding table alone
  // would be 500 MB of it). Only a splat is expanded first.
  ArrayRef<char> raw = rawBytes(g.getDataAttr());
  auto dense = dyn_cast_if_present<DenseElementsAttr>(g.getDataAttr());
  const int64_t elem = llm::floatElementBytes(t.getKind());
  std::optional<std::vector<float>> whole;
  if ((dense && dense.isSplat()) ||
      static_cast<int64_t>(raw.size()) != t.getNumElements() * elem) {
    whole = readFloatWeight(g);
    if (!whole) {
      return;
    }
  }
  AsmResourceBlob blob = allocateWeightBlob(rowBytes * rows);
  uint8_t *out = reinterpret_cast<uint8_t *>(blob.getMutableData().data());
  const int32_t from = static_cast<int32_t>(t.getKind());
  // Rows are independent: every core takes a share (a 7B model is 6.7e9
  // weights to round).
#pragma omp parallel
  {
    std::vector<float> row(whole ? 0 : static_cast<size_t>(k));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float *src = whole ? whole->data() + r * k : row.data();
      if (!whole) {
        kernels::toFloat(raw.data() + r * k * elem, from, k, row.data());
      }
      kernels::quantizeRow(src, k, format, groupSize, asymmetric,
                           out + r * rowBytes);
    }
  }
  setQuantData(g, kind, groupSize, asymmetric, std::move(blob));
}

void retypeWeightRefs(ModuleOp module) {
  llvm::StringMap<llm::WeightType> types;
  for (llm::GlobalOp g : module.getOps<llm::GlobalOp>()) {
    types[g.getSymName()] = g.getWeightType();
  }
  module.walk([&](llm::WeightOp ref) {
    auto it = types.find(ref.getGlobal());
    if (it != types.end()) {
      ref.getResult().setType(it->second);
    }
  });
}

std::optional<TargetFormat> parseTargetFormat(llvm::StringRef name) {
  if (name == "q4a") {
    return TargetFormat{llm::StorageKind::q4, true};
  }
  std::optional<llm::StorageKind> k = llm::symbolizeStorageKind(name);
  if (!k) {
    return std::nullopt;
  }
  return TargetFormat{*k, false};
}

std::optional<std::vector<KeepRule>>
parseKeepRules(ModuleOp module, ArrayRef<std::string> rules) {
  std::vector<KeepRule> out;
  for (const std::string &r : rules) {
    size_t eq = r.rfind('=');
    std::optional<TargetFormat> f;
    if (eq != std::string::npos) {
      f = parseTargetFormat(llvm::StringRef(r).substr(eq + 1));
    }
    if (eq == std::string::npos || eq == 0 || !f ||
        !llvm::GlobPattern::create(r.substr(0, eq))) {
      module.emitError() << "bad keep rule '" << r
                         << "': expected PATTERN=FORMAT with FORMAT one of "
                            "f32, f16, bf16, q8, q4, q4a";
      return std::nullopt;
    }
    out.push_back({r.substr(0, eq), *f});
  }
  return out;
}

const KeepRule *matchKeep(const std::vector<KeepRule> &rules,
                          llvm::StringRef name) {
  for (const KeepRule &r : rules) {
    auto glob = llvm::GlobPattern::create(r.pattern);
    if (glob && glob->match(name)) {
      return &r;
    }
  }
  return nullptr;
}

std::optional<QuantTarget> parseQuantOptions(ModuleOp module,
                                             llvm::StringRef pass,
                                             llvm::StringRef format,
                                             int64_t groupSize,
                                             ArrayRef<std::string> keep,
                                             bool allowFloat) {
  std::optional<TargetFormat> target = parseTargetFormat(format);
  if (allowFloat && !target) {
    module.emitError() << pass << ": unknown format '" << format
                       << "' (f32, f16, bf16, q8, q4, q4a)";
    return std::nullopt;
  }
  if (!allowFloat && (!target || llm::floatElementBytes(target->kind) != 0)) {
    module.emitError() << pass << ": format must be q8, q4 or q4a, got '"
                       << format << "'";
    return std::nullopt;
  }
  if (groupSize <= 0 || groupSize % 32 != 0) {
    module.emitError() << pass
                       << ": group-size must be a positive multiple of 32, got "
                       << groupSize;
    return std::nullopt;
  }
  std::optional<std::vector<KeepRule>> rules = parseKeepRules(module, keep);
  if (!rules) {
    return std::nullopt;
  }
  return QuantTarget{*target, std::move(*rules)};
}

void applyFormat(llm::GlobalOp g, const TargetFormat &f, int64_t groupSize) {
  llm::WeightType t = g.getWeightType();
  if (t.getKind() == llm::StorageKind::s24 &&
      (f.kind == llm::StorageKind::q8 || f.kind == llm::StorageKind::q4)) {
    // 2:4 rows stay 2:4: their kept values are quantized per block of 32
    // columns (16 values, one scale), whatever the group size.
    const auto to = f.kind == llm::StorageKind::q8 ? llm::StorageKind::s24q8
                                                   : llm::StorageKind::s24q4;
    auto dense = readDenseWeight(g);
    if (!dense) {
      return;
    }
    const int64_t cols = t.getShape().back(), rows = t.getNumElements() / cols;
    const size_t rowBytes = kernels::sparseRowBytes(static_cast<int32_t>(to), cols);
    std::vector<uint8_t> bytes(rowBytes * rows);
    for (int64_t r = 0; r < rows; ++r) {
      kernels::packSparseRow(dense->data() + r * cols, cols,
                             static_cast<int32_t>(to), bytes.data() + r * rowBytes);
    }
    writeQuantWeight(g, to, 0, false, std::move(bytes));
    return;
  }
  if (!t.isFloat()) {
    return; // already quantized by an earlier pass
  }
  if (llm::floatElementBytes(f.kind) != 0) {
    if (f.kind != t.getKind() && !hasWeightValues(g)) {
      retypeShapesOnly(g, llm::WeightType::get(g.getContext(), t.getShape(), f.kind));
    } else if (f.kind != t.getKind()) {
      if (auto w = readFloatWeight(g)) {
        writeFloatWeight(g, f.kind, *w);
      }
    }
    return;
  }
  quantizeWeightRTN(g, f.kind, groupSize, f.asymmetric);
}

} // namespace llmc
