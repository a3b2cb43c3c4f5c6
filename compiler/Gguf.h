// Reader of llama.cpp's GGUF format (v2/v3): a validated view of an mmap'ed
// file, metadata, tensor table, and dequantization of its block formats.
#ifndef LLMC_COMPILER_GGUF_H
#define LLMC_COMPILER_GGUF_H

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llmc {

/// GGUF metadata value types (the file's numbering).
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12
};

/// One metadata entry. Scalars live in `i`/`f`/`s`; arrays in the vectors
/// (integers and bools in `ints`, floats in `floats`, strings in `strings`).
struct GgufValue {
  GgufType type = GgufType::U8;
  GgufType elemType = GgufType::U8; // arrays only
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  bool isInteger() const;
  bool isFloat() const;
  bool isArray() const { return type == GgufType::Array; }
  /// Elements of an array.
  size_t size() const;
};

/// ggml tensor types llmc reads (the file's numbering).
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, Q4_K = 12, Q6_K = 14,
  BF16 = 30
};

/// The name of ggml type `t` ("Q4_1"), or "type N" for one llmc lacks.
std::string ggmlTypeName(uint32_t t);

/// One tensor of the file. `dims` is ggml's order (dims[0] is the row
/// length); `data` points into the mapped file.
struct GgufTensor {
  std::string name;
  uint32_t type;
  std::vector<int64_t> dims;
  uint64_t offset; // from the start of the data section
  llvm::ArrayRef<char> data;

  int64_t numElements() const;
  /// The shape as PyTorch writes it (outermost first): dims reversed.
  std::vector<int64_t> shape() const;
};

/// A GGUF file, checked in full when opened: magic and version, every
/// string, array and dimension inside the file, known tensor types whose
/// byte sizes match their shapes, aligned non-overlapping tensor data that
/// ends inside the file.
class GgufFile {
public:
  /// Opens and validates `path`; errors read "PATH: problem".
  static llvm::Expected<std::unique_ptr<GgufFile>> open(const std::string &path);

  uint32_t version() const { return version_; }
  const std::string &path() const { return path_; }
  const std::shared_ptr<llvm::MemoryBuffer> &buffer() const { return buffer_; }
  const std::vector<GgufTensor> &tensors() const { return tensors_; }
  const GgufTensor *tensor(llvm::StringRef name) const;

  /// The metadata entry `key`, or nullptr.
  const GgufValue *get(llvm::StringRef key) const;
  /// Typed access with errors naming the file and key: a missing key
  /// returns `fallback` (or is an error without one).
  llvm::Expected<int64_t> getInt(llvm::StringRef key,
                                 std::optional<int64_t> fallback) const;
  llvm::Expected<double> getFloat(llvm::StringRef key,
                                  std::optional<double> fallback) const;
  llvm::Expected<std::string> getString(llvm::StringRef key,
                                        std::optional<std::string> fallback) const;

private:
  std::string path_;
  uint32_t version_ = 0;
  std::shared_ptr<llvm::MemoryBuffer> buffer_;
  llvm::StringMap<GgufValue> metadata_;
  std::vector<GgufTensor> tensors_;
  llvm::StringMap<size_t> index_;
};

/// Bytes of `n` elements of ggml type `t` (n a multiple of its block), or 0
/// for a type llmc does not read.
uint64_t ggmlTypeBytes(uint32_t t, int64_t n);
/// Elements per block of `t` (1 for float types, 0 if unknown).
int64_t ggmlBlockSize(uint32_t t);

/// Dequantizes (or widens) `t`'s data to float, row-major in `shape()`
/// order. Works for every GgmlType.
void dequantize(const GgufTensor &t, float *out);

/// The Hugging Face name of llama.cpp tensor `name` ("blk.3.attn_q.weight"
/// -> "model.layers.3.self_attn.q_proj.weight"), or "" if it has none;
/// `ropeRows` says whether llama.cpp stores its rows in interleaved-RoPE
/// order (q and k).
std::string huggingFaceTensorName(llvm::StringRef name, bool &ropeRows);
/// The reverse: llama.cpp's name of a Hugging Face tensor, or "".
std::string ggufTensorName(llvm::StringRef name, bool &ropeRows);

} // namespace llmc

#endif // LLMC_COMPILER_GGUF_H
