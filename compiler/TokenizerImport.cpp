// SentencePiece ModelProto (protobuf wire format) and HF tokenizer.json readers.
#include "compiler/TokenizerImport.h"

#include "compiler/Safetensors.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include "compiler/JsonFields.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <map>

namespace llmc {

namespace {

/// A protobuf wire-format reader over a byte range; enough for ModelProto.
class Wire {
public:
  Wire(const char *p, const char *end) : p_(p), end_(end) {}
  bool done() const { return p_ >= end_; }
  bool varint(uint64_t &v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) {
        return false;
      }
      uint8_t c = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (c < 0x80) {
        return true;
      }
    }
    return false;
  }
  /// Reads one field: its number, wire type, and payload (varint value,
  /// or the byte range of a length-delimited / fixed field).
  bool field(uint32_t &number, uint32_t &type, uint64_t &value,
             const char *&data, uint64_t &size) {
    uint64_t key;
    if (!varint(key)) {
      return false;
    }
    number = static_cast<uint32_t>(key >> 3);
    type = static_cast<uint32_t>(key & 7);
    switch (type) {
    case 0:
      return varint(value);
    case 1:
    case 5:
      size = type == 1 ? 8 : 4;
      if (static_cast<uint64_t>(end_ - p_) < size) {
        return false;
      }
      data = p_;
      p_ += size;
      return true;
    case 2:
      if (!varint(size) || static_cast<uint64_t>(end_ - p_) < size) {
        return false;
      }
      data = p_;
      p_ += size;
      return true;
    default:
      return false;
    }
  }

private:
  const char *p_, *end_;
};

} // namespace

llvm::Expected<fb::TokenizerT> readSentencePieceModel(const std::string &path) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                         /*RequiresNullTerminator=*/false);
  if (!buf) {
    return fileError(path, "cannot open: " + buf.getError().message());
  }
  fb::TokenizerT tok;
  tok.unk_id = -1;
  tok.bos_id = -1;
  tok.eos_id = -1;
  // Defaults of NormalizerSpec and TrainerSpec when a field is absent.
  tok.add_dummy_prefix = true;
  tok.remove_extra_whitespaces = true;
  tok.byte_fallback = false;
  bool escapeWhitespaces = true;
  uint64_t modelType = 1; // UNIGRAM
  std::string normalizerName;

  auto corrupt = [&](const char *what) {
    return fileError(path, std::string("not a SentencePiece model (") + what +
                               ")");
  };
  Wire top((*buf)->getBufferStart(), (*buf)->getBufferEnd());
  while (!top.done()) {
    uint32_t num, type;
    uint64_t value = 0, size = 0;
    const char *data = nullptr;
    if (!top.field(num, type, value, data, size)) {
      return corrupt("truncated or malformed protobuf");
    }
    if (type != 2) {
      continue;
    }
    Wire sub(data, data + size);
    if (num == 1) { // SentencePiece piece
      std::string piece;
      float score = 0.0f;
      uint64_t ptype = 1; // NORMAL
      while (!sub.done()) {
        uint32_t n2, t2;
        uint64_t v2 = 0, s2 = 0;
        const char *d2 = nullptr;
        if (!sub.field(n2, t2, v2, d2, s2)) {
          return corrupt("malformed piece");
        }
        if (n2 == 1 && t2 == 2) {
          piece.assign(d2, s2);
        } else if (n2 == 2 && t2 == 5) {
          std::memcpy(&score, d2, 4);
        } else if (n2 == 3 && t2 == 0) {
          ptype = v2;
        }
      }
      if (ptype < 1 || ptype > 6) {
        return corrupt("unknown piece type");
      }
      int32_t id = static_cast<int32_t>(tok.pieces.size());
      auto t = static_cast<fb::TokenType>(ptype);
      if (t == fb::TokenType::Unknown && tok.unk_id < 0) {
        tok.unk_id = id;
      }
      if (t == fb::TokenType::Control && piece == "<s>") {
        tok.bos_id = id;
      }
      if (t == fb::TokenType::Control && piece == "</s>") {
        tok.eos_id = id;
      }
      tok.pieces.push_back(std::move(piece));
      tok.scores.push_back(score);
      tok.types.push_back(t);
    } else if (num == 2 || num == 3) { // TrainerSpec, NormalizerSpec
      while (!sub.done()) {
        uint32_t n2, t2;
        uint64_t v2 = 0, s2 = 0;
        const char *d2 = nullptr;
        if (!sub.field(n2, t2, v2, d2, s2)) {
          return corrupt("malformed spec");
        }
        if (num == 2 && n2 == 3 && t2 == 0) {
          modelType = v2;
        } else if (num == 2 && n2 == 35 && t2 == 0) {
          tok.byte_fallback = v2 != 0;
        } else if (num == 3 && n2 == 1 && t2 == 2) {
          normalizerName.assign(d2, s2);
        } else if (num == 3 && n2 == 2 && t2 == 2 && s2 != 0) {
          return fileError(path, "SentencePiece normalization rules "
                                 "(precompiled_charsmap) are not supported");
        } else if (num == 3 && n2 == 3 && t2 == 0) {
          tok.add_dummy_prefix = v2 != 0;
        } else if (num == 3 && n2 == 4 && t2 == 0) {
          tok.remove_extra_whitespaces = v2 != 0;
        } else if (num == 3 && n2 == 5 && t2 == 0) {
          escapeWhitespaces = v2 != 0;
        }
      }
    }
  }
  if (tok.pieces.empty()) {
    return corrupt("no pieces");
  }
  if (modelType != 2) {
    return fileError(path, "only SentencePiece BPE models are supported "
                           "(model_type " +
                               std::to_string(modelType) + ")");
  }
  if (!escapeWhitespaces) {
    return fileError(path, "escape_whitespaces=false is not supported");
  }
  if (tok.unk_id < 0) {
    tok.unk_id = 0;
  }
  return tok;
}

namespace {
llvm::Expected<fb::TokenizerT> readTokenizerJsonFields(const std::string &path);

// Llama-3's split expression, as its tokenizer.json spells it.
const char *const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

/// Which of the hand-written pre-tokenizers `pre` (the tokenizer.json
/// "pre_tokenizer" object) is, or "" if none.
std::string byteLevelPreTokenizer(const nlohmann::json &pre) {
  auto isByteLevel = [](const nlohmann::json &p, bool regex) {
    return p.is_object() && p.value("type", "") == "ByteLevel" &&
           !p.value("add_prefix_space", false) &&
           p.value("use_regex", true) == regex;
  };
  if (isByteLevel(pre, true)) {
    return "gpt2";
  }
  if (!pre.is_object() || pre.value("type", "") != "Sequence" ||
      !member(pre, "pretokenizers").is_array() || member(pre, "pretokenizers").size() != 2) {
    return "";
  }
  const nlohmann::json &a = member(pre, "pretokenizers")[0];
  const nlohmann::json &b = member(pre, "pretokenizers")[1];
  if (a.is_object() && a.value("type", "") == "Digits" &&
      a.value("individual_digits", false) && isByteLevel(b, true)) {
    return "smollm";
  }
  if (a.is_object() && a.value("type", "") == "Split" &&
      member(a, "pattern").is_object() &&
      member(a, "pattern").value("Regex", "") == kLlama3Pattern &&
      a.value("behavior", "") == "Isolated" && !a.value("invert", false) &&
      isByteLevel(b, false)) {
    return "llama3";
  }
  return "";
}

/// A byte-level BPE tokenizer.json (GPT-2 style): vocabulary, merges,
/// added tokens, and a pre-tokenizer llmc implements.
llvm::Expected<fb::TokenizerT> readByteLevelJson(const std::string &path,
                                                 const nlohmann::json &j) {
  const nlohmann::json &model = member(j, "model");
  if (!member(j, "normalizer").is_null()) {
    return fileError(path, "byte-level BPE with a normalizer is not supported");
  }
  std::string pre = byteLevelPreTokenizer(member(j, "pre_tokenizer"));
  if (pre.empty()) {
    std::string dump = member(j, "pre_tokenizer").dump();
    if (dump.size() > 120) {
      dump = dump.substr(0, 117) + "...";
    }
    return fileError(path, "unsupported pre_tokenizer " + dump +
                               " (llmc implements GPT-2's ByteLevel, SmolLM's "
                               "Digits + ByteLevel and Llama-3's Split)");
  }
  // Ids: the model's vocabulary, then added tokens (which may extend it).
  std::map<int64_t, std::string> byId;
  const nlohmann::json &vocab = member(model, "vocab");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0) {
      return fileError(path, "vocab id of '" + it.key() + "' is not an integer");
    }
    if (!byId.emplace(it.value().get<int64_t>(), it.key()).second) {
      return fileError(path, "vocab id " + std::to_string(it.value().get<int64_t>()) +
                                 " is used twice");
    }
  }
  std::map<int64_t, bool> added; // id -> special
  if (member(j, "added_tokens").is_array()) {
    for (const auto &a : member(j, "added_tokens")) {
      if (!a.is_object() || !member(a, "id").is_number_integer() ||
          !member(a, "content").is_string() || member(a, "id").get<int64_t>() < 0) {
        return fileError(path, "malformed added_tokens entry");
      }
      int64_t id = member(a, "id").get<int64_t>();
      std::string content = member(a, "content").get<std::string>();
      auto [it, inserted] = byId.emplace(id, content);
      if (!inserted && it->second != content) {
        return fileError(path, "added token " + std::to_string(id) + " '" +
                                   content + "' differs from vocab entry '" +
                                   it->second + "'");
      }
      added[id] = a.value("special", false);
    }
  }
  size_t n = byId.empty() ? 0 : static_cast<size_t>(byId.rbegin()->first) + 1;
  if (n == 0 || n != byId.size()) {
    return fileError(path, "token ids are not 0.." + std::to_string(byId.size()) +
                               " without gaps");
  }
  fb::TokenizerT tok;
  tok.model = fb::TokenizerModel::ByteLevelBPE;
  tok.pre_tokenizer = pre;
  tok.pieces.resize(n);
  tok.scores.assign(n, 0.0f);
  tok.types.assign(n, fb::TokenType::Normal);
  for (auto &[id, piece] : byId) {
    tok.pieces[id] = piece;
  }
  for (auto [id, special] : added) {
    tok.types[id] = special ? fb::TokenType::Control : fb::TokenType::UserDefined;
  }
  for (const auto &m : member(model, "merges")) {
    if (m.is_string() && m.get<std::string>().find(' ') != std::string::npos) {
      tok.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      tok.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      return fileError(path, "malformed merges entry " + m.dump());
    }
  }
  tok.ignore_merges = model.value("ignore_merges", false);
  // BOS/EOS come from config.json (see Checkpoint::tokenizer); a template
  // post-processor is what adds BOS.
  tok.add_bos = member(j, "post_processor").dump().find("TemplateProcessing") !=
                std::string::npos;
  tok.unk_id = 0;
  tok.bos_id = 0;
  tok.eos_id = 0;
  tok.add_dummy_prefix = false;
  tok.remove_extra_whitespaces = false;
  tok.byte_fallback = false;
  return tok;
}
} // namespace

llvm::Expected<fb::TokenizerT> readTokenizerJson(const std::string &path) {
  return withJsonTypeErrors(path, [&] { return readTokenizerJsonFields(path); });
}

namespace {
llvm::Expected<fb::TokenizerT> readTokenizerJsonFields(const std::string &path) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf) {
    return fileError(path, "cannot open: " + buf.getError().message());
  }
  nlohmann::json j = nlohmann::json::parse((*buf)->getBufferStart(),
                                           (*buf)->getBufferEnd(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fileError(path, "invalid JSON");
  }
  const nlohmann::json &model = member(j, "model");
  if (!model.is_object() || model.value("type", "") != "BPE" ||
      !member(model, "vocab").is_object() || !member(model, "merges").is_array()) {
    return fileError(path, "only BPE tokenizer.json models are supported");
  }
  if (member(j, "decoder").is_object() && member(j, "decoder").value("type", "") == "ByteLevel") {
    return readByteLevelJson(path, j);
  }
  const nlohmann::json &vocab = member(model, "vocab");
  size_t n = vocab.size();
  fb::TokenizerT tok;
  tok.pieces.assign(n, "");
  tok.scores.assign(n, 0.0f);
  tok.types.assign(n, fb::TokenType::Normal);
  std::vector<bool> seen(n, false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return fileError(path, "vocab id of '" + it.key() + "' is not an integer");
    }
    int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(n) || seen[id]) {
      return fileError(path, "vocab ids are not a permutation of 0.." +
                                 std::to_string(n - 1));
    }
    seen[id] = true;
    tok.pieces[id] = it.key();
    const std::string &p = it.key();
    if (p.size() == 6 && p.rfind("<0x", 0) == 0 && p.back() == '>') {
      tok.types[id] = fb::TokenType::Byte;
    }
  }
  // A piece made by merge number r gets score -r, so SentencePiece's
  // "best score first" picks the same merge as HF's "lowest rank first".
  std::map<std::string, float> best;
  int64_t rank = 0;
  for (const auto &m : member(model, "merges")) {
    std::string merged;
    if (m.is_string()) {
      std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) {
        return fileError(path, "malformed merge '" + s + "'");
      }
      merged = s.substr(0, sp) + s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      merged = m[0].get<std::string>() + m[1].get<std::string>();
    } else {
      return fileError(path, "malformed merges entry");
    }
    best.emplace(merged, -static_cast<float>(rank++));
  }
  for (size_t id = 0; id < n; ++id) {
    auto it = best.find(tok.pieces[id]);
    if (it != best.end()) {
      tok.scores[id] = it->second;
    }
  }
  tok.unk_id = 0;
  tok.bos_id = 1;
  tok.eos_id = 2;
  if (member(j, "added_tokens").is_array()) {
    for (const auto &a : member(j, "added_tokens")) {
      int64_t id = a.value("id", int64_t(-1));
      if (id < 0 || id >= static_cast<int64_t>(n)) {
        continue;
      }
      std::string content = a.value("content", "");
      if (content == model.value("unk_token", "<unk>")) {
        tok.types[id] = fb::TokenType::Unknown;
        tok.unk_id = static_cast<int32_t>(id);
      } else if (a.value("special", false)) {
        tok.types[id] = fb::TokenType::Control;
        if (content == "<s>") {
          tok.bos_id = static_cast<int32_t>(id);
        } else if (content == "</s>") {
          tok.eos_id = static_cast<int32_t>(id);
        }
      } else {
        tok.types[id] = fb::TokenType::UserDefined;
      }
    }
  }
  tok.byte_fallback = model.value("byte_fallback", false);
  // LLaMA's tokenizer.json: Prepend("▁") + Replace(" ", "▁"), no stripping.
  tok.add_dummy_prefix = member(j, "normalizer").dump().find("Prepend") != std::string::npos ||
                         member(j, "pre_tokenizer").dump().find("\"prepend_scheme\":\"always\"") !=
                             std::string::npos;
  // Stripped ends and collapsed runs of spaces (" {2,}" -> " ") are
  // SentencePiece's remove_extra_whitespaces.
  tok.remove_extra_whitespaces =
      member(j, "normalizer").dump().find(" {2,}") != std::string::npos;
  return tok;
}
} // namespace

llvm::Expected<fb::TokenizerT> readTokenizer(const std::string &dir) {
  llvm::SmallString<256> model(dir), json(dir);
  llvm::sys::path::append(model, "tokenizer.model");
  llvm::sys::path::append(json, "tokenizer.json");
  if (llvm::sys::fs::exists(model)) {
    return readSentencePieceModel(std::string(model));
  }
  if (llvm::sys::fs::exists(json)) {
    return readTokenizerJson(std::string(json));
  }
  return fileError(dir, "no tokenizer.model or tokenizer.json");
}

namespace {
void putVarint(std::string &out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void putBytes(std::string &out, int field, const std::string &bytes) {
  putVarint(out, static_cast<uint64_t>(field) << 3 | 2);
  putVarint(out, bytes.size());
  out += bytes;
}
void putInt(std::string &out, int field, uint64_t v) {
  putVarint(out, static_cast<uint64_t>(field) << 3);
  putVarint(out, v);
}
} // namespace

std::string writeSentencePieceModel(const fb::TokenizerT &tok) {
  std::string model;
  for (size_t i = 0; i < tok.pieces.size(); ++i) {
    std::string sp;
    putBytes(sp, 1, tok.pieces[i]);
    float score = i < tok.scores.size() ? tok.scores[i] : 0.0f;
    uint32_t bits;
    std::memcpy(&bits, &score, 4);
    putVarint(sp, 2 << 3 | 5); // fixed32
    for (int b = 0; b < 4; ++b) {
      sp.push_back(static_cast<char>(bits >> (8 * b)));
    }
    putInt(sp, 3, static_cast<uint64_t>(tok.types[i]));
    putBytes(model, 1, sp);
  }
  std::string trainer;
  putInt(trainer, 3, 2);                        // model_type: BPE
  putInt(trainer, 4, tok.pieces.size());        // vocab_size
  putInt(trainer, 35, tok.byte_fallback ? 1 : 0);
  putInt(trainer, 40, static_cast<uint64_t>(tok.unk_id));
  putInt(trainer, 41, static_cast<uint64_t>(tok.bos_id));
  putInt(trainer, 42, static_cast<uint64_t>(tok.eos_id));
  putBytes(model, 2, trainer);
  std::string normalizer;
  putBytes(normalizer, 1, "identity");
  putInt(normalizer, 3, tok.add_dummy_prefix ? 1 : 0);
  putInt(normalizer, 4, tok.remove_extra_whitespaces ? 1 : 0);
  putInt(normalizer, 5, 1); // escape_whitespaces
  putBytes(model, 3, normalizer);
  return model;
}

llvm::Expected<std::string> writeByteLevelJson(const fb::TokenizerT &tok) {
  using ojson = nlohmann::ordered_json;
  ojson byteLevel = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                     {"trim_offsets", true}, {"use_regex", true}};
  ojson pre;
  if (tok.pre_tokenizer == "gpt2") {
    pre = byteLevel;
  } else if (tok.pre_tokenizer == "smollm") {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Digits"}, {"individual_digits", true}}, byteLevel}}};
  } else if (tok.pre_tokenizer == "llama3") {
    ojson noRegex = byteLevel;
    noRegex["use_regex"] = false;
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"},
              {"pattern", {{"Regex", kLlama3Pattern}}},
              {"behavior", "Isolated"},
              {"invert", false}},
             noRegex}}};
  } else {
    return llvm::createStringError("no tokenizer.json form of pre-tokenizer '" +
                                   tok.pre_tokenizer + "'");
  }
  ojson added = ojson::array();
  ojson vocab = ojson::object();
  for (size_t i = 0; i < tok.pieces.size(); ++i) {
    vocab[tok.pieces[i]] = i;
    if (tok.types[i] == fb::TokenType::Control ||
        tok.types[i] == fb::TokenType::UserDefined) {
      added.push_back({{"id", i},
                       {"content", tok.pieces[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", tok.types[i] == fb::TokenType::Control}});
    }
  }
  if (vocab.size() != tok.pieces.size()) {
    return llvm::createStringError("the vocabulary spells two tokens alike");
  }
  ojson j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre},
      {"post_processor",
       {{"type", "ByteLevel"}, {"add_prefix_space", false},
        {"trim_offsets", false}, {"use_regex", false}}},
      {"decoder",
       {{"type", "ByteLevel"}, {"add_prefix_space", false},
        {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
        {"fuse_unk", false}, {"byte_fallback", false},
        {"ignore_merges", tok.ignore_merges}, {"vocab", vocab},
        {"merges", tok.merges}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace llmc
