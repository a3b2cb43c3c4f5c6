// Weight storage formats: the `!llm.weight` type's syntax, sizes and verifier.
#include "dialects/llm/LLMDialect.h"

#include "mlir/IR/DialectImplementation.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

#define GET_TYPEDEF_CLASSES
#include "dialects/llm/LLMTypes.cpp.inc"

namespace llmc::llm {

void LLMDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/llm/LLMTypes.cpp.inc"
      >();
}

int64_t floatElementBytes(StorageKind kind) {
  switch (kind) {
  case StorageKind::f32:
    return 4;
  case StorageKind::f16:
  case StorageKind::bf16:
    return 2;
  default:
    return 0;
  }
}

// Block layouts: q8 stores an f16 scale then G int8 values; q4 stores an f16
// scale (and an f16 zero point when asymmetric) then G/2 bytes of packed nibbles.
int64_t blockBytes(StorageKind kind, int64_t groupSize, bool asymmetric) {
  switch (kind) {
  case StorageKind::q8:
  case StorageKind::q8x8:
    return 2 + groupSize;
  case StorageKind::q4:
  case StorageKind::q4x8:
    return (asymmetric ? 4 : 2) + groupSize / 2;
  default:
    return 0;
  }
}

int64_t WeightType::getNumElements() const {
  int64_t n = 1;
  for (int64_t d : getShape()) {
    n *= d;
  }
  return n;
}

bool WeightType::isFloat() const { return floatElementBytes(getKind()) != 0; }

bool WeightType::isSparse() const {
  return getKind() == StorageKind::s24 || getKind() == StorageKind::s24q8 ||
         getKind() == StorageKind::s24q4;
}

bool WeightType::isInterleaved() const {
  return getKind() == StorageKind::q8x8 || getKind() == StorageKind::q4x8 ||
         getKind() == StorageKind::f16x16;
}

int64_t WeightType::getStorageBytes() const {
  if (isFloat()) {
    return getNumElements() * floatElementBytes(getKind());
  }
  if (getKind() == StorageKind::f16x16) {
    return getNumElements() * 2; // f16, reordered
  }
  if (isSparse()) {
    // Per 32 columns: 36, 22 or 14 bytes; rows padded
    // (runtime/kernels/quant.h, BlockS24*).
    int64_t rowLength = getShape().back();
    int64_t block = getKind() == StorageKind::s24     ? 36
                    : getKind() == StorageKind::s24q8 ? 22
                                                      : 14;
    return getNumElements() / rowLength * ((rowLength + 31) / 32) * block;
  }
  // Rows are padded to whole groups.
  int64_t rowLength = getShape().back();
  int64_t rows = getNumElements() / rowLength;
  int64_t groups = (rowLength + getGroupSize() - 1) / getGroupSize();
  return rows * groups * blockBytes(getKind(), getGroupSize(), getAsymmetric());
}

WeightType WeightType::withFormat(StorageKind kind, int64_t groupSize,
                                  bool asymmetric) const {
  return WeightType::get(getContext(), getShape(), kind, groupSize, asymmetric);
}

LogicalResult
WeightType::verify(function_ref<InFlightDiagnostic()> emitError,
                   ArrayRef<int64_t> shape, StorageKind kind, int64_t groupSize,
                   bool asymmetric) {
  if (shape.empty() || shape.size() > 2) {
    return emitError() << "weight must have rank 1 or 2, got rank "
                       << shape.size();
  }
  for (int64_t d : shape) {
    if (d <= 0) {
      return emitError() << "weight dimensions must be positive, got " << d;
    }
  }
  const bool interleaved = kind == StorageKind::q8x8 ||
                           kind == StorageKind::q4x8 ||
                           kind == StorageKind::f16x16;
  bool isBlock = kind == StorageKind::q8 || kind == StorageKind::q4 ||
                 interleaved;
  if (interleaved && shape.size() != 2) {
    return emitError() << stringifyStorageKind(kind)
                       << " (rows interleaved by 8) weights must have rank 2";
  }
  if ((kind == StorageKind::s24 || kind == StorageKind::s24q8 ||
       kind == StorageKind::s24q4) &&
      shape.size() != 2) {
    return emitError() << stringifyStorageKind(kind)
                       << " (2:4 sparse) weights must have rank 2";
  }
  if (!isBlock) {
    if (groupSize != 0 || asymmetric) {
      return emitError() << "format " << stringifyStorageKind(kind)
                         << " takes no group size or zero point";
    }
    return success();
  }
  // Kernels consume groups in sub-blocks of 32; a row that is not a
  // multiple of the group size is padded to whole groups.
  if (groupSize <= 0 || groupSize % 32 != 0) {
    return emitError() << "group size must be a positive multiple of 32, got "
                       << groupSize;
  }
  if (asymmetric && kind != StorageKind::q4) {
    return emitError() << "only q4 has an asymmetric variant";
  }
  return success();
}

// !llm.weight<172x64, f32> | !llm.weight<64x64, q4<g32, asym>>
Type WeightType::parse(AsmParser &parser) {
  SmallVector<int64_t> shape;
  std::string kindName;
  if (parser.parseLess() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseKeywordOrString(&kindName)) {
    return {};
  }
  std::optional<StorageKind> kind = symbolizeStorageKind(kindName);
  if (!kind) {
    parser.emitError(parser.getCurrentLocation(), "unknown storage format '")
        << kindName << "'";
    return {};
  }
  int64_t groupSize = 0;
  bool asymmetric = false;
  if (succeeded(parser.parseOptionalLess())) {
    std::string g;
    if (parser.parseKeywordOrString(&g)) {
      return {};
    }
    if (g.size() < 2 || g[0] != 'g' ||
        StringRef(g).drop_front().getAsInteger(10, groupSize)) {
      parser.emitError(parser.getCurrentLocation(),
                       "expected group size as 'gN', got '")
          << g << "'";
      return {};
    }
    if (succeeded(parser.parseOptionalComma())) {
      if (parser.parseKeyword("asym")) {
        return {};
      }
      asymmetric = true;
    }
    if (parser.parseGreater()) {
      return {};
    }
  }
  if (parser.parseGreater()) {
    return {};
  }
  return parser.getChecked<WeightType>(parser.getContext(), shape, *kind,
                                       groupSize, asymmetric);
}

void WeightType::print(AsmPrinter &printer) const {
  printer << "<";
  llvm::interleave(getShape(), printer.getStream(), "x");
  printer << ", " << stringifyStorageKind(getKind());
  if (getGroupSize() != 0) {
    printer << "<g" << getGroupSize();
    if (getAsymmetric()) {
      printer << ", asym";
    }
    printer << ">";
  }
  printer << ">";
}

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t layers, int64_t maxSeq) {
  if (layers <= 0 || maxSeq <= 0) {
    return emitError() << "kv_cache parameters must all be positive";
  }
  return success();
}

} // namespace llmc::llm
