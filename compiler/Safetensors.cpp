// Parses and validates safetensors files; tensors stay in the mmap'ed buffer.
#include "compiler/Safetensors.h"

#include "llvm/Support/FileSystem.h"

#include <set>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace llmc {

namespace {

// A header larger than this is not a checkpoint header but a corrupt length.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

bool parseDType(const std::string &s, DType &out) {
  static const std::pair<const char *, DType> table[] = {
      {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16},
      {"BF16", DType::BF16}, {"I64", DType::I64}, {"I32", DType::I32},
      {"I16", DType::I16}, {"I8", DType::I8}, {"U8", DType::U8},
      {"BOOL", DType::BOOL}};
  for (const auto &[name, t] : table) {
    if (s == name) {
      out = t;
      return true;
    }
  }
  return false;
}

} // namespace

llvm::Error fileError(const std::string &path, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 path + ": " + message.str());
}

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::BF16:
  case DType::I16:
    return 2;
  case DType::I8:
  case DType::U8:
  case DType::BOOL:
    return 1;
  }
  return 0;
}

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F64: return "F64";
  case DType::F32: return "F32";
  case DType::F16: return "F16";
  case DType::BF16: return "BF16";
  case DType::I64: return "I64";
  case DType::I32: return "I32";
  case DType::I16: return "I16";
  case DType::I8: return "I8";
  case DType::U8: return "U8";
  case DType::BOOL: return "BOOL";
  }
  return "?";
}

int64_t TensorView::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    n *= d;
  }
  return n;
}

llvm::Expected<std::unique_ptr<SafetensorsFile>>
SafetensorsFile::open(const std::string &path) {
  // A device or FIFO (/dev/zero as model.safetensors) would be read
  // without bound: only regular files are weights.
  llvm::sys::fs::file_status st;
  if (!llvm::sys::fs::status(path, st) && llvm::sys::fs::exists(st) &&
      !llvm::sys::fs::is_regular_file(st)) {
    return fileError(path, "not a regular file");
  }
  auto bufOrErr = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                              /*RequiresNullTerminator=*/false);
  if (!bufOrErr) {
    return fileError(path, "cannot open: " + bufOrErr.getError().message());
  }
  auto file = std::make_unique<SafetensorsFile>();
  file->path_ = path;
  file->buffer_ = std::shared_ptr<llvm::MemoryBuffer>(std::move(*bufOrErr));
  const char *base = file->buffer_->getBufferStart();
  const uint64_t fileSize = file->buffer_->getBufferSize();

  if (fileSize < 8) {
    return fileError(path, "truncated: " + llvm::Twine(fileSize) +
                               " bytes, too short for the 8-byte header length");
  }
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i) {
    headerLen = (headerLen << 8) | static_cast<unsigned char>(base[i]);
  }
  if (headerLen > fileSize - 8) {
    return fileError(path, "header length " + llvm::Twine(headerLen) +
                               " runs past the end of the file (" +
                               llvm::Twine(fileSize) + " bytes)");
  }
  if (headerLen > kMaxHeaderBytes) {
    return fileError(path, "header length " + llvm::Twine(headerLen) +
                               " is implausibly large");
  }
  const uint64_t dataStart = 8 + headerLen;
  const uint64_t dataSize = fileSize - dataStart;

  // JSON keeps the last of two equal keys; a header naming a tensor twice
  // is ambiguous, so the parser's callback records the top-level keys.
  std::string duplicate;
  std::set<std::string> names;
  nlohmann::json::parser_callback_t keys =
      [&](int depth, nlohmann::json::parse_event_t event,
          nlohmann::json &parsed) {
        if (depth == 1 && event == nlohmann::json::parse_event_t::key &&
            parsed.is_string() &&
            !names.insert(parsed.get<std::string>()).second &&
            duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        return true;
      };
  nlohmann::json header = nlohmann::json::parse(
      base + 8, base + 8 + headerLen, keys, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return fileError(path, "invalid header JSON");
  }
  if (!duplicate.empty()) {
    return fileError(path, "the header names tensor '" + duplicate + "' twice");
  }
  if (!header.is_object()) {
    return fileError(path, "header JSON is not an object");
  }

  struct Range {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &name = it.key();
    const nlohmann::json &entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return fileError(path, "__metadata__ is not an object");
      }
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (m.value().is_string()) {
          file->metadata_[m.key()] = m.value().get<std::string>();
        }
      }
      continue;
    }
    auto bad = [&](const llvm::Twine &why) {
      return fileError(path, "tensor '" + name + "': " + why);
    };
    if (!entry.is_object() || !entry.contains("dtype") ||
        !entry.contains("shape") || !entry.contains("data_offsets")) {
      return bad("entry needs dtype, shape and data_offsets");
    }
    const auto &jd = entry["dtype"];
    const auto &js = entry["shape"];
    const auto &jo = entry["data_offsets"];
    if (!jd.is_string()) {
      return bad("dtype is not a string");
    }
    TensorView t;
    t.name = name;
    t.path = path;
    t.file = file->buffer_;
    if (!parseDType(jd.get<std::string>(), t.dtype)) {
      return bad("unknown dtype '" + jd.get<std::string>() + "'");
    }
    if (!js.is_array()) {
      return bad("shape is not an array");
    }
    uint64_t numel = 1;
    for (const auto &d : js) {
      if (!d.is_number_unsigned()) {
        return bad("shape holds a value that is not a non-negative integer");
      }
      uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > (uint64_t(1) << 62) / v) {
        return bad("shape is too large");
      }
      numel *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() ||
        !jo[1].is_number_unsigned()) {
      return bad("data_offsets must be two non-negative integers");
    }
    uint64_t begin = jo[0].get<uint64_t>(), end = jo[1].get<uint64_t>();
    if (begin > end) {
      return bad("data_offsets [" + llvm::Twine(begin) + ", " +
                 llvm::Twine(end) + "] are reversed");
    }
    if (end > dataSize) {
      return bad("data_offsets [" + llvm::Twine(begin) + ", " +
                 llvm::Twine(end) + "] run past the end of the data (" +
                 llvm::Twine(dataSize) + " bytes; file truncated?)");
    }
    if (end - begin != numel * dtypeSize(t.dtype)) {
      return bad("holds " + llvm::Twine(end - begin) + " bytes but shape and " +
                 dtypeName(t.dtype) + " need " +
                 llvm::Twine(numel * dtypeSize(t.dtype)));
    }
    t.data = llvm::ArrayRef<char>(base + dataStart + begin, end - begin);
    ranges.push_back({begin, end, file->tensors_.size()});
    file->tensors_.push_back(std::move(t));
  }

  std::sort(ranges.begin(), ranges.end(),
            [](const Range &a, const Range &b) { return a.begin < b.begin; });
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      return fileError(path, "tensors '" +
                                 file->tensors_[ranges[i - 1].tensor].name +
                                 "' and '" +
                                 file->tensors_[ranges[i].tensor].name +
                                 "' overlap");
    }
  }
  for (size_t i = 0; i < file->tensors_.size(); ++i) {
    file->index_[file->tensors_[i].name] = i;
  }
  return file;
}

const TensorView *SafetensorsFile::lookup(llvm::StringRef name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

} // namespace llmc
