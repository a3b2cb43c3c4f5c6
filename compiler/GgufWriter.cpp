// GGUF v3 serialization: header, key/value metadata, tensor infos, then the
// tensor data, each tensor aligned to 32 bytes.
#include "compiler/WriteOutput.h"
#include "compiler/GgufWriter.h"

#include "compiler/Safetensors.h"
#include "runtime/kernels/kernels.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>

namespace llmc {

namespace {
constexpr uint64_t kAlignment = 32;

template <typename T> void put(std::string &out, T v) {
  out.append(reinterpret_cast<const char *>(&v), sizeof(T));
}
void putString(std::string &out, const std::string &s) {
  put<uint64_t>(out, s.size());
  out += s;
}
void putKey(std::string &out, const std::string &key, GgufType t) {
  putString(out, key);
  put<uint32_t>(out, static_cast<uint32_t>(t));
}
} // namespace

void GgufWriter::addString(const std::string &key, const std::string &v) {
  putKey(kv_, key, GgufType::String);
  putString(kv_, v);
  ++numKv_;
}
void GgufWriter::addU32(const std::string &key, uint32_t v) {
  putKey(kv_, key, GgufType::U32);
  put(kv_, v);
  ++numKv_;
}
void GgufWriter::addF32(const std::string &key, float v) {
  putKey(kv_, key, GgufType::F32);
  put(kv_, v);
  ++numKv_;
}
void GgufWriter::addBool(const std::string &key, bool v) {
  putKey(kv_, key, GgufType::Bool);
  put<uint8_t>(kv_, v ? 1 : 0);
  ++numKv_;
}
void GgufWriter::addStrings(const std::string &key,
                            const std::vector<std::string> &v) {
  putKey(kv_, key, GgufType::Array);
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufType::String));
  put<uint64_t>(kv_, v.size());
  for (const std::string &s : v) {
    putString(kv_, s);
  }
  ++numKv_;
}
void GgufWriter::addF32s(const std::string &key, const std::vector<float> &v) {
  putKey(kv_, key, GgufType::Array);
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufType::F32));
  put<uint64_t>(kv_, v.size());
  for (float f : v) {
    put(kv_, f);
  }
  ++numKv_;
}
void GgufWriter::addI32s(const std::string &key, const std::vector<int32_t> &v) {
  putKey(kv_, key, GgufType::Array);
  put<uint32_t>(kv_, static_cast<uint32_t>(GgufType::I32));
  put<uint64_t>(kv_, v.size());
  for (int32_t i : v) {
    put(kv_, i);
  }
  ++numKv_;
}

void GgufWriter::addTensor(const std::string &name, GgmlType type,
                           std::vector<int64_t> shape,
                           std::function<void(std::string &)> produce) {
  tensors_.push_back({name, type, std::move(shape), std::move(produce)});
}

llvm::Error GgufWriter::write(const std::string &path) const {
  std::string head = "GGUF";
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, numKv_);
  head += kv_;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const Tensor &t : tensors_) {
    putString(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.shape.size()));
    int64_t n = 1;
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) {
      put<uint64_t>(head, static_cast<uint64_t>(*it));
      n *= *it;
    }
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    uint64_t bytes = ggmlTypeBytes(static_cast<uint32_t>(t.type), n);
    sizes.push_back(bytes);
    offset += (bytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  head.append((kAlignment - head.size() % kAlignment) % kAlignment, '\0');
  llvm::Error e = llmc::writeOutput(path, [&](llvm::raw_ostream &os) -> llvm::Error {
    os << head;
    std::string data;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      data.clear();
      tensors_[i].produce(data);
      if (data.size() != sizes[i]) {
        return llvm::createStringError(
            "tensor '" + tensors_[i].name + "' produced " +
            std::to_string(data.size()) + " bytes, expected " +
            std::to_string(sizes[i]));
      }
      data.append((kAlignment - data.size() % kAlignment) % kAlignment, '\0');
      os << data;
    }
    return llvm::Error::success();
  });
  if (e) {
    return fileError(path, llvm::toString(std::move(e)));
  }
  return llvm::Error::success();
}

void quantizeQ8_0(const float *x, int64_t n, std::string &out) {
  for (int64_t b = 0; b < n; b += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) {
      amax = std::max(amax, std::fabs(x[b + j]));
    }
    float d = amax / 127.0f;
    float id = d ? 1.0f / d : 0.0f;
    put<uint16_t>(out, kernels::floatToHalf(d));
    for (int j = 0; j < 32; ++j) {
      out.push_back(static_cast<char>(
          static_cast<int8_t>(std::lround(x[b + j] * id))));
    }
  }
}

} // namespace llmc
