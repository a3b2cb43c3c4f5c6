// GGUF: header, metadata, tensor infos, aligned data. Every count, length and
// offset is checked against the bytes that remain before it is used.
#include "compiler/Gguf.h"

#include "compiler/Safetensors.h"
#include "runtime/kernels/kernels.h"

#include "llvm/Support/FileSystem.h"

#include <algorithm>
#include <cstring>

namespace llmc {

bool GgufValue::isInteger() const {
  switch (type) {
  case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
  case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64:
  case GgufType::Bool:
    return true;
  default:
    return false;
  }
}

bool GgufValue::isFloat() const {
  return type == GgufType::F32 || type == GgufType::F64;
}

size_t GgufValue::size() const {
  return ints.size() + floats.size() + strings.size();
}

std::string ggmlTypeName(uint32_t t) {
  switch (static_cast<GgmlType>(t)) {
  case GgmlType::F32: return "F32";
  case GgmlType::F16: return "F16";
  case GgmlType::BF16: return "BF16";
  case GgmlType::Q4_0: return "Q4_0";
  case GgmlType::Q4_1: return "Q4_1";
  case GgmlType::Q8_0: return "Q8_0";
  case GgmlType::Q4_K: return "Q4_K";
  case GgmlType::Q6_K: return "Q6_K";
  }
  // Names of the types llmc does not read, for a useful error.
  static const char *const others[] = {
      nullptr, nullptr, nullptr, nullptr, "Q4_2", "Q4_3", "Q5_0", "Q5_1",
      nullptr, "Q8_1", "Q2_K", "Q3_K", nullptr, "Q5_K", nullptr, "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
      "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M"};
  if (t < sizeof(others) / sizeof(others[0]) && others[t]) {
    return others[t];
  }
  return "unknown (" + std::to_string(t) + ")";
}

int64_t ggmlBlockSize(uint32_t t) {
  switch (static_cast<GgmlType>(t)) {
  case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    return 1;
  case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q8_0:
    return 32;
  case GgmlType::Q4_K: case GgmlType::Q6_K:
    return 256;
  }
  return 0;
}

namespace {
uint64_t blockBytes(uint32_t t) {
  switch (static_cast<GgmlType>(t)) {
  case GgmlType::F32: return 4;
  case GgmlType::F16: case GgmlType::BF16: return 2;
  case GgmlType::Q4_0: return 18;  // f16 d, 16 bytes of nibbles
  case GgmlType::Q4_1: return 20;  // f16 d, f16 m, 16 bytes of nibbles
  case GgmlType::Q8_0: return 34;  // f16 d, 32 int8
  case GgmlType::Q4_K: return 144; // f16 d, f16 dmin, 12 scale bytes, 128
  case GgmlType::Q6_K: return 210; // 128 low, 64 high, 16 scales, f16 d
  }
  return 0;
}
} // namespace

uint64_t ggmlTypeBytes(uint32_t t, int64_t n) {
  int64_t bs = ggmlBlockSize(t);
  if (bs == 0 || n % bs != 0) {
    return 0;
  }
  return static_cast<uint64_t>(n / bs) * blockBytes(t);
}

int64_t GgufTensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : dims) {
    n *= d;
  }
  return n;
}

std::vector<int64_t> GgufTensor::shape() const {
  return std::vector<int64_t>(dims.rbegin(), dims.rend());
}

namespace {

/// A cursor over the file's bytes; every read checks what remains.
class Cursor {
public:
  Cursor(const char *begin, const char *end) : begin_(begin), p_(begin), end_(end) {}
  uint64_t pos() const { return static_cast<uint64_t>(p_ - begin_); }
  uint64_t left() const { return static_cast<uint64_t>(end_ - p_); }
  template <typename T> bool read(T &v) {
    if (left() < sizeof(T)) {
      return false;
    }
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return true;
  }
  bool str(std::string &s) {
    uint64_t n;
    if (!read(n) || n > left()) {
      return false;
    }
    s.assign(p_, n);
    p_ += n;
    return true;
  }

private:
  const char *begin_, *p_, *end_;
};

uint64_t scalarBytes(GgufType t) {
  switch (t) {
  case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
  case GgufType::U16: case GgufType::I16: return 2;
  case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
  case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
  case GgufType::String: return 8; // at least its length
  default: return 0;
  }
}

/// Reads one scalar of type `t` into `v` (as an integer, float or string).
bool readScalar(Cursor &c, GgufType t, int64_t &i, double &f, std::string &s) {
  switch (t) {
  case GgufType::U8: { uint8_t v; if (!c.read(v)) return false; i = v; return true; }
  case GgufType::I8: { int8_t v; if (!c.read(v)) return false; i = v; return true; }
  case GgufType::Bool: { uint8_t v; if (!c.read(v) || v > 1) return false; i = v; return true; }
  case GgufType::U16: { uint16_t v; if (!c.read(v)) return false; i = v; return true; }
  case GgufType::I16: { int16_t v; if (!c.read(v)) return false; i = v; return true; }
  case GgufType::U32: { uint32_t v; if (!c.read(v)) return false; i = v; return true; }
  case GgufType::I32: { int32_t v; if (!c.read(v)) return false; i = v; return true; }
  case GgufType::U64: {
    uint64_t v;
    if (!c.read(v) || v > static_cast<uint64_t>(INT64_MAX)) return false;
    i = static_cast<int64_t>(v);
    return true;
  }
  case GgufType::I64: { int64_t v; if (!c.read(v)) return false; i = v; return true; }
  case GgufType::F32: { float v; if (!c.read(v)) return false; f = v; return true; }
  case GgufType::F64: { double v; if (!c.read(v)) return false; f = v; return true; }
  case GgufType::String: return c.str(s);
  default: return false;
  }
}

const char *typeWord(GgufType t) {
  static const char *const names[] = {"uint8", "int8", "uint16", "int16",
                                      "uint32", "int32", "float32", "bool",
                                      "string", "array", "uint64", "int64",
                                      "float64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

} // namespace

llvm::Expected<std::unique_ptr<GgufFile>> GgufFile::open(const std::string &path) {
  llvm::sys::fs::file_status st;
  if (std::error_code ec = llvm::sys::fs::status(path, st)) {
    return fileError(path, "cannot open: " + ec.message());
  }
  if (!llvm::sys::fs::is_regular_file(st)) {
    return fileError(path, "not a regular file");
  }
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                         /*RequiresNullTerminator=*/false);
  if (!buf) {
    return fileError(path, "cannot open: " + buf.getError().message());
  }
  auto f = std::make_unique<GgufFile>();
  f->path_ = path;
  f->buffer_ = std::move(*buf);
  const char *base = f->buffer_->getBufferStart();
  Cursor c(base, f->buffer_->getBufferEnd());
  auto truncated = [&](const llvm::Twine &what) {
    return fileError(path, "truncated GGUF: the file ends inside " + what +
                               " (at byte " + llvm::Twine(c.pos()) + ")");
  };

  char magic[4];
  if (!c.read(magic)) {
    return fileError(path, "not a GGUF file: " +
                               llvm::Twine(f->buffer_->getBufferSize()) +
                               " bytes, too short for the header");
  }
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    return fileError(path, "not a GGUF file (bad magic; expected \"GGUF\")");
  }
  uint64_t numTensors, numKv;
  if (!c.read(f->version_)) {
    return truncated("the header");
  }
  if (f->version_ != 2 && f->version_ != 3) {
    return fileError(path, "unsupported GGUF version " +
                               llvm::Twine(f->version_) +
                               " (llmc reads versions 2 and 3)");
  }
  if (!c.read(numTensors) || !c.read(numKv)) {
    return truncated("the header");
  }
  // Each entry takes at least 8 (key length) + 4 (type) bytes; each tensor
  // info at least 8 + 4 + 4 + 8: more than the file holds is a corrupt count.
  if (numKv > c.left() / 12 || numTensors > c.left() / 24) {
    return fileError(path, "corrupt GGUF header: " + llvm::Twine(numKv) +
                               " metadata entries and " +
                               llvm::Twine(numTensors) +
                               " tensors cannot fit in the file");
  }

  for (uint64_t k = 0; k < numKv; ++k) {
    std::string key;
    uint32_t type;
    if (!c.str(key)) {
      return truncated("metadata entry " + llvm::Twine(k) + "'s key");
    }
    if (!c.read(type)) {
      return truncated("metadata '" + key + "'");
    }
    GgufValue v;
    v.type = static_cast<GgufType>(type);
    if (type > static_cast<uint32_t>(GgufType::F64)) {
      return fileError(path, "metadata '" + key + "' has unknown type " +
                                 llvm::Twine(type));
    }
    if (v.type == GgufType::Array) {
      uint32_t et;
      uint64_t n;
      if (!c.read(et) || !c.read(n)) {
        return truncated("metadata '" + key + "'");
      }
      v.elemType = static_cast<GgufType>(et);
      uint64_t minBytes = scalarBytes(v.elemType);
      if (minBytes == 0) {
        return fileError(path, "metadata '" + key + "' is an array of " +
                                   (et == 9 ? llvm::Twine("arrays")
                                            : "unknown type " + llvm::Twine(et)) +
                                   ", which llmc does not read");
      }
      // Elements are held wider than in the file (an int8 as an int64, a
      // string with its header): the count is capped besides fitting.
      if (n > (uint64_t(1) << 24)) {
        return fileError(path, "metadata '" + key + "' has " + llvm::Twine(n) +
                                   " elements, more than llmc reads (2^24)");
      }
      if (n > c.left() / minBytes) {
        return truncated("metadata '" + key + "' (" + llvm::Twine(n) + " " +
                         typeWord(v.elemType) + " elements)");
      }
      for (uint64_t e = 0; e < n; ++e) {
        int64_t i = 0;
        double d = 0;
        std::string s;
        if (!readScalar(c, v.elemType, i, d, s)) {
          return fileError(path, "metadata '" + key + "': element " +
                                     llvm::Twine(e) + " is truncated or invalid");
        }
        if (v.elemType == GgufType::String) {
          v.strings.push_back(std::move(s));
        } else if (v.elemType == GgufType::F32 || v.elemType == GgufType::F64) {
          v.floats.push_back(d);
        } else {
          v.ints.push_back(i);
        }
      }
    } else if (!readScalar(c, v.type, v.i, v.f, v.s)) {
      return fileError(path, "metadata '" + key + "' (" + typeWord(v.type) +
                                 ") is truncated or invalid");
    }
    if (!f->metadata_.try_emplace(key, std::move(v)).second) {
      return fileError(path, "metadata key '" + key + "' appears twice");
    }
  }

  uint64_t alignment = 32;
  if (const GgufValue *a = f->get("general.alignment")) {
    if (!a->isInteger() || a->i < 8 || a->i > (1 << 20) ||
        (a->i & (a->i - 1)) != 0) {
      return fileError(path, "general.alignment must be a power of two "
                             "from 8 to 2^20");
    }
    alignment = static_cast<uint64_t>(a->i);
  }

  for (uint64_t k = 0; k < numTensors; ++k) {
    GgufTensor t;
    uint32_t nd;
    if (!c.str(t.name) || !c.read(nd)) {
      return truncated("tensor info " + llvm::Twine(k));
    }
    if (nd == 0 || nd > 4) {
      return fileError(path, "tensor '" + t.name + "' has " + llvm::Twine(nd) +
                                 " dimensions (GGUF allows 1 to 4)");
    }
    int64_t n = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t ne;
      if (!c.read(ne)) {
        return truncated("tensor '" + t.name + "'");
      }
      if (ne == 0 || ne > (uint64_t(1) << 40) ||
          static_cast<uint64_t>(n) > (uint64_t(1) << 46) / ne) {
        return fileError(path, "tensor '" + t.name + "' has an impossible "
                                   "dimension " + llvm::Twine(ne));
      }
      n *= static_cast<int64_t>(ne);
      t.dims.push_back(static_cast<int64_t>(ne));
    }
    if (!c.read(t.type) || !c.read(t.offset)) {
      return truncated("tensor '" + t.name + "'");
    }
    if (ggmlBlockSize(t.type) == 0) {
      return fileError(path, "tensor '" + t.name + "' has type " +
                                 ggmlTypeName(t.type) +
                                 ", which llmc does not read (F32, F16, BF16, "
                                 "Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)");
    }
    if (t.dims[0] % ggmlBlockSize(t.type) != 0) {
      return fileError(path, "tensor '" + t.name + "' (" +
                                 ggmlTypeName(t.type) + ") has rows of " +
                                 llvm::Twine(t.dims[0]) +
                                 ", not a multiple of its block of " +
                                 llvm::Twine(ggmlBlockSize(t.type)));
    }
    if (t.offset % alignment != 0) {
      return fileError(path, "tensor '" + t.name + "' offset " +
                                 llvm::Twine(t.offset) + " is not aligned to " +
                                 llvm::Twine(alignment));
    }
    if (!f->index_.try_emplace(t.name, f->tensors_.size()).second) {
      return fileError(path, "tensor '" + t.name + "' appears twice");
    }
    f->tensors_.push_back(std::move(t));
  }

  uint64_t dataStart = (c.pos() + alignment - 1) / alignment * alignment;
  uint64_t fileSize = f->buffer_->getBufferSize();
  if (dataStart > fileSize && !f->tensors_.empty()) {
    return truncated("the padding before the tensor data");
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (GgufTensor &t : f->tensors_) {
    uint64_t bytes = ggmlTypeBytes(t.type, t.numElements());
    if (t.offset > fileSize - std::min(fileSize, dataStart) ||
        bytes > fileSize - dataStart - t.offset) {
      return fileError(path, "tensor '" + t.name + "' (" + llvm::Twine(bytes) +
                                 " bytes at data offset " +
                                 llvm::Twine(t.offset) +
                                 ") runs past the end of the file (" +
                                 llvm::Twine(fileSize) + " bytes): truncated?");
    }
    t.data = llvm::ArrayRef<char>(base + dataStart + t.offset, bytes);
    ranges.push_back({t.offset, t.offset + bytes});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return fileError(path, "two tensors' data overlap at data offset " +
                                 llvm::Twine(ranges[i].first));
    }
  }
  return f;
}

const GgufTensor *GgufFile::tensor(llvm::StringRef name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue *GgufFile::get(llvm::StringRef key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

llvm::Expected<int64_t> GgufFile::getInt(llvm::StringRef key,
                                         std::optional<int64_t> fallback) const {
  const GgufValue *v = get(key);
  if (!v) {
    if (!fallback) {
      return fileError(path_, "missing metadata '" + key + "'");
    }
    return *fallback;
  }
  if (!v->isInteger() || v->type == GgufType::Bool) {
    return fileError(path_, "metadata '" + key + "' is " + typeWord(v->type) +
                                ", expected an integer");
  }
  return v->i;
}

llvm::Expected<double> GgufFile::getFloat(llvm::StringRef key,
                                          std::optional<double> fallback) const {
  const GgufValue *v = get(key);
  if (!v) {
    if (!fallback) {
      return fileError(path_, "missing metadata '" + key + "'");
    }
    return *fallback;
  }
  if (v->isFloat()) {
    return v->f;
  }
  if (v->isInteger() && v->type != GgufType::Bool) {
    return static_cast<double>(v->i);
  }
  return fileError(path_, "metadata '" + key + "' is " + typeWord(v->type) +
                              ", expected a number");
}

llvm::Expected<std::string>
GgufFile::getString(llvm::StringRef key,
                    std::optional<std::string> fallback) const {
  const GgufValue *v = get(key);
  if (!v) {
    if (!fallback) {
      return fileError(path_, "missing metadata '" + key + "'");
    }
    return *fallback;
  }
  if (v->type != GgufType::String) {
    return fileError(path_, "metadata '" + key + "' is " + typeWord(v->type) +
                                ", expected a string");
  }
  return v->s;
}

namespace {

float half(const char *p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return kernels::halfToFloat(h);
}

/// Q4_K's 6-bit scale and min of sub-block j.
void scaleMinK4(int j, const uint8_t *q, uint8_t &sc, uint8_t &m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

} // namespace

void dequantize(const GgufTensor &t, float *out) {
  const char *p = t.data.data();
  const int64_t n = t.numElements();
  switch (static_cast<GgmlType>(t.type)) {
  case GgmlType::F32:
    std::memcpy(out, p, n * 4);
    return;
  case GgmlType::F16:
    for (int64_t i = 0; i < n; ++i) {
      out[i] = half(p + 2 * i);
    }
    return;
  case GgmlType::BF16:
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = kernels::bf16ToFloat(h);
    }
    return;
  case GgmlType::Q8_0:
    for (int64_t b = 0; b < n / 32; ++b, p += 34, out += 32) {
      float d = half(p);
      for (int j = 0; j < 32; ++j) {
        out[j] = d * static_cast<float>(static_cast<int8_t>(p[2 + j]));
      }
    }
    return;
  case GgmlType::Q4_0:
  case GgmlType::Q4_1: {
    const bool hasMin = t.type == static_cast<uint32_t>(GgmlType::Q4_1);
    const int64_t bytes = hasMin ? 20 : 18;
    for (int64_t b = 0; b < n / 32; ++b, p += bytes, out += 32) {
      float d = half(p);
      const auto *qs = reinterpret_cast<const uint8_t *>(p + (hasMin ? 4 : 2));
      if (hasMin) { // x = d*q + m
        float m = half(p + 2);
        for (int j = 0; j < 16; ++j) {
          out[j] = d * static_cast<float>(qs[j] & 0xF) + m;
          out[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
        }
      } else { // x = d*(q - 8)
        for (int j = 0; j < 16; ++j) {
          out[j] = d * static_cast<float>((qs[j] & 0xF) - 8);
          out[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
        }
      }
    }
    return;
  }
  case GgmlType::Q4_K:
    for (int64_t b = 0; b < n / 256; ++b, p += 144) {
      float d = half(p), dmin = half(p + 2);
      const auto *scales = reinterpret_cast<const uint8_t *>(p + 4);
      const auto *q = reinterpret_cast<const uint8_t *>(p + 16);
      for (int chunk = 0; chunk < 4; ++chunk, q += 32) {
        uint8_t sc, m;
        scaleMinK4(2 * chunk, scales, sc, m);
        float d1 = d * sc, m1 = dmin * m;
        scaleMinK4(2 * chunk + 1, scales, sc, m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; ++l) {
          *out++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
        }
        for (int l = 0; l < 32; ++l) {
          *out++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
      }
    }
    return;
  case GgmlType::Q6_K:
    for (int64_t b = 0; b < n / 256; ++b, p += 210) {
      const auto *ql = reinterpret_cast<const uint8_t *>(p);
      const auto *qh = reinterpret_cast<const uint8_t *>(p + 128);
      const auto *sc = reinterpret_cast<const int8_t *>(p + 192);
      float d = half(p + 208);
      for (int half128 = 0; half128 < 2; ++half128) {
        for (int l = 0; l < 32; ++l) {
          int is = l / 16;
          int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
          int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
          int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
          int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
          out[l] = d * sc[is] * q1;
          out[l + 32] = d * sc[is + 2] * q2;
          out[l + 64] = d * sc[is + 4] * q3;
          out[l + 96] = d * sc[is + 6] * q4;
        }
        out += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
    }
    return;
  }
}

namespace {

/// One llama block's tensors: llama.cpp's names and Hugging Face's.
struct BlockTensor {
  const char *gguf, *hf;
  bool ropeRows;
};
const BlockTensor kBlockTensors[] = {
    {"attn_norm", "input_layernorm", false},
    {"ffn_norm", "post_attention_layernorm", false},
    {"attn_q", "self_attn.q_proj", true},
    {"attn_k", "self_attn.k_proj", true},
    {"attn_v", "self_attn.v_proj", false},
    {"attn_output", "self_attn.o_proj", false},
    {"ffn_gate", "mlp.gate_proj", false},
    {"ffn_up", "mlp.up_proj", false},
    {"ffn_down", "mlp.down_proj", false},
};
const char *const kTopTensors[][2] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

/// Renames `name` from one naming to the other: `from`/`to` pick the
/// columns (0: GGUF, 1: Hugging Face) and the block prefixes.
std::string rename(llvm::StringRef name, int from, bool &ropeRows) {
  ropeRows = false;
  for (const auto &t : kTopTensors) {
    if (name == t[from]) {
      return t[1 - from];
    }
  }
  const char *prefix[] = {"blk.", "model.layers."};
  if (!name.consume_front(prefix[from])) {
    return "";
  }
  auto [layer, rest] = name.split('.');
  unsigned n;
  if (layer.getAsInteger(10, n)) {
    return "";
  }
  for (const BlockTensor &e : kBlockTensors) {
    const char *names[] = {e.gguf, e.hf};
    llvm::StringRef suffix = rest;
    if (suffix.consume_front(names[from]) &&
        (suffix == ".weight" || suffix == ".bias")) {
      ropeRows = e.ropeRows;
      return (prefix[1 - from] + llvm::Twine(n) + "." + names[1 - from] + suffix)
          .str();
    }
  }
  return "";
}

} // namespace

std::string huggingFaceTensorName(llvm::StringRef name, bool &ropeRows) {
  return rename(name, 0, ropeRows);
}

std::string ggufTensorName(llvm::StringRef name, bool &ropeRows) {
  return rename(name, 1, ropeRows);
}

} // namespace llmc
