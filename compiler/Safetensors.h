// Reader of the safetensors format: a validated, zero-copy view of an mmap'ed file.
#ifndef LLMC_COMPILER_SAFETENSORS_H
#define LLMC_COMPILER_SAFETENSORS_H

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llmc {

/// Element types a safetensors header may name.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

/// Bytes per element of `t`.
size_t dtypeSize(DType t);
/// The header's spelling of `t` ("F32", ...).
const char *dtypeName(DType t);

/// One tensor of a file. `data` points into the mapped file, which the
/// `file` handle keeps alive.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  llvm::ArrayRef<char> data;
  std::shared_ptr<llvm::MemoryBuffer> file;
  std::string path;
  /// No bytes: a tensor of a config compiled alone (--random-weights), whose
  /// values the executable synthesizes.
  bool shapesOnly = false;

  int64_t numElements() const;
};

/// A safetensors file, checked in full when opened: the header parses as
/// JSON, every tensor has a known dtype and a shape whose byte size matches
/// its offsets, every range lies inside the file, and no two ranges overlap.
class SafetensorsFile {
public:
  /// Opens and validates `path`; errors read "PATH: problem".
  static llvm::Expected<std::unique_ptr<SafetensorsFile>>
  open(const std::string &path);

  /// The tensor named `name`, or nullptr.
  const TensorView *lookup(llvm::StringRef name) const;
  const std::vector<TensorView> &tensors() const { return tensors_; }
  const std::string &path() const { return path_; }
  /// The optional "__metadata__" string map.
  const llvm::StringMap<std::string> &metadata() const { return metadata_; }

private:
  std::string path_;
  std::shared_ptr<llvm::MemoryBuffer> buffer_;
  std::vector<TensorView> tensors_;
  llvm::StringMap<size_t> index_;
  llvm::StringMap<std::string> metadata_;
};

/// Builds an llvm::Error whose message is "PATH: MESSAGE".
llvm::Error fileError(const std::string &path, const llvm::Twine &message);

} // namespace llmc

#endif // LLMC_COMPILER_SAFETENSORS_H
