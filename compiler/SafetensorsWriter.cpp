// Serializes tensors into the safetensors layout.
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
  if (llvm::Error e = llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
        os << image;
        return llvm::Error::success();
      })) {
    return fileError(path, llvm::toString(std::move(e)));
  }
  return llvm::Error::success();
}

uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) { // inf or nan
    return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  }
  if (exp >= 31) {
    return static_cast<uint16_t>(sign | 0x7c00);
  }
  if (exp <= 0) { // subnormal or zero
    if (exp < -10) {
      return static_cast<uint16_t>(sign);
    }
    mant |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) {
      ++half;
    }
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) {
    ++half; // may carry into the exponent, which is the right rounding
  }
  return static_cast<uint16_t>(half);
}

uint16_t floatToBFloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) {
    return static_cast<uint16_t>((x >> 16) | 0x40);
  }
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

} // namespace llmc
