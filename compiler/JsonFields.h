// Reading JSON files of outside origin: a field of an unexpected type is the file's error.
#ifndef LLMC_COMPILER_JSONFIELDS_H
#define LLMC_COMPILER_JSONFIELDS_H

#include "compiler/Safetensors.h"

#include <nlohmann/json.hpp>

namespace llmc {

/// Runs `read` (which walks a parsed JSON document with nlohmann's typed
/// accessors), turning the exception nlohmann throws for a value of an
/// unexpected type ("attention_bias": 0, "model_type": 5, null where a string
/// belongs) into "PATH: a field has an unexpected type (...)": never an abort.
template <typename Read>
auto withJsonTypeErrors(const std::string &path, Read read) -> decltype(read()) {
  try {
    return read();
  } catch (const nlohmann::json::exception &e) {
    return fileError(path, llvm::Twine("a field has an unexpected type (") +
                               e.what() + ")");
  }
}

/// `obj[key]` for a document that must not change: a null value when `obj`
/// is not an object or lacks `key` (nlohmann's const operator[] is undefined
/// behaviour then, which a hostile file must never reach).
inline const nlohmann::json &member(const nlohmann::json &obj, const char *key) {
  static const nlohmann::json null;
  if (!obj.is_object()) {
    return null;
  }
  auto it = obj.find(key);
  return it == obj.end() ? null : *it;
}

} // namespace llmc

#endif // LLMC_COMPILER_JSONFIELDS_H
