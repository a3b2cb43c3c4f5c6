// Serializes tensors into the safetensors layout.
#include "compiler/WriteOutput.h"
#include "compiler/SafetensorsWriter.h"

#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <cstring>

namespace llmc {

std::string serializeSafetensorsHeader(const std::vector<TensorData> &tensors,
                                       const std::vector<uint64_t> &sizes) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorData &t = tensors[i];
    header[t.name] = {{"dtype", dtypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + sizes[i]}}};
    offset += sizes[i];
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out;
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  return out + json;
}

std::string serializeSafetensors(const std::vector<TensorData> &tensors) {
  std::vector<uint64_t> sizes;
  for (const TensorData &t : tensors) {
    sizes.push_back(t.bytes.size());
  }
  std::string out = serializeSafetensorsHeader(tensors, sizes);
  for (const TensorData &t : tensors) {
    out.append(t.bytes.data(), t.bytes.size());
  }
  return out;
}

llvm::Error writeSafetensors(const std::string &path,
                             const std::vector<TensorData> &tensors) {
  std::string image = serializeSafetensors(tensors);
  if (llvm::Error e = llmc::writeOutput(path, [&](llvm::raw_ostream &os) {
        os << image;
        return llvm::Error::success();
      })) {
    return fileError(path, llvm::toString(std::move(e)));
  }
  return llvm::Error::success();
}

} // namespace llmc
