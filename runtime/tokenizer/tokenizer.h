// The tokenizers of an artifact's tables (no library needed): SentencePiece
// BPE (LLaMA-1/2) and GPT-2 style byte-level BPE (SmolLM, Llama-3, ...).
#ifndef LLMC_RUNTIME_TOKENIZER_TOKENIZER_H
#define LLMC_RUNTIME_TOKENIZER_TOKENIZER_H

#include "runtime/tokenizer/bytelevel.h"

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

  enum class Model : uint8_t { SentencePiece = 0, ByteLevelBpe = 1 };

  struct Options {
    Model model = Model::SentencePiece;
    int32_t unkId = 0, bosId = 1, eosId = 2;
    /// Whether a prompt starts with BOS (GGUF's add_bos_token).
    bool addBos = true;
    // SentencePiece only.
    bool addDummyPrefix = true;
    bool removeExtraWhitespaces = true;
    bool byteFallback = true;
    // Byte-level BPE only.
    bytelevel::PreTokenizer preTokenizer = bytelevel::PreTokenizer::Gpt2;
    /// A word that is itself in the vocabulary is not merged (Llama-3).
    bool ignoreMerges = false;
  };

  /// `merges` ("left right", best first) are used by byte-level BPE only;
  /// SentencePiece ranks merges by `scores`.
  Tokenizer(std::vector<std::string> pieces, std::vector<float> scores,
            std::vector<Type> types, Options options,
            const std::vector<std::string> &merges = {});

  /// Ids of `text` (no BOS/EOS) as the model's reference tokenizer encodes
  /// it. Byte-level BPE keeps control and user-defined tokens whole.
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
  std::vector<int32_t> encodeSentencePiece(std::string_view text) const;
  std::vector<int32_t> encodeByteLevel(std::string_view text) const;
  void bpeWord(std::string_view word, std::vector<int32_t> &out) const;
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
  // Byte-level BPE: merge ranks keyed "left right", and the pieces kept
  // whole (control and user-defined), longest first.
  std::unordered_map<std::string, int32_t> mergeRank_;
  std::vector<std::pair<std::string, int32_t>> specials_;
};

} // namespace llmc

#endif // LLMC_RUNTIME_TOKENIZER_TOKENIZER_H
