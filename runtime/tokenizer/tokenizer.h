// SentencePiece-BPE tokenizer over the tables stored in an artifact (no library needed).
#ifndef LLMC_RUNTIME_TOKENIZER_TOKENIZER_H
#define LLMC_RUNTIME_TOKENIZER_TOKENIZER_H

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmc {

class Tokenizer {
public:
  enum class Type : uint8_t {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6
  };

  struct Options {
    int32_t unkId = 0, bosId = 1, eosId = 2;
    bool addDummyPrefix = true;
    bool removeExtraWhitespaces = true;
    bool byteFallback = true;
  };

  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores,
            std::vector<Type> types, Options options);

  /// Ids of `text` as SentencePiece encodes it (no BOS/EOS).
  std::vector<int32_t> encode(std::string_view text) const;

  /// The bytes token `id` stands for. `afterBos` strips the dummy-prefix
  /// space a sequence's first piece carries. Control tokens decode to "".
  std::string decodePiece(int32_t id, bool afterBos) const;
  /// The text of a whole id sequence (BOS/EOS dropped).
  std::string decode(const std::vector<int32_t> &ids) const;

  int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string &piece(int32_t id) const { return pieces_[id]; }
  const Options &options() const { return opts_; }

private:
  std::string normalize(std::string_view text) const;
  int32_t lookup(std::string_view piece) const;
  void emit(std::string_view piece, std::vector<int32_t> &out) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<Type> types_;
  Options opts_;
  // Pieces BPE may produce (normal, user-defined, unused).
  std::unordered_map<std::string, int32_t> mergeable_;
  // Every piece, for id lookup of final symbols.
  std::unordered_map<std::string, int32_t> all_;
  std::vector<std::string> userDefined_;
  int32_t byteIds_[256];
};

} // namespace llmc

#endif // LLMC_RUNTIME_TOKENIZER_TOKENIZER_H
