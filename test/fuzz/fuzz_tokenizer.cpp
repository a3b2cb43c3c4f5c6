// libFuzzer target: the runtime tokenizers on arbitrary bytes (prompts and
// --perplexity text). Byte-level BPE must give back every byte it was given
// (decode(encode(x)) == x) under each pre-tokenizer; SentencePiece must not
// fail on any input.
#include "test/unit/runtime/ByteLevelVocab.h"
#include "runtime/tokenizer/bytelevel.h"
#include "runtime/tokenizer/tokenizer.h"

#include <cstdlib>
#include <string>

namespace {

using llmc::Tokenizer;

Tokenizer makeByteLevel(llmc::bytelevel::PreTokenizer pre) {
  return llmc::test::byteLevelTokenizer(
      {"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "a n", "o n", "Ġ 1", "1 2",
       "Ã ©"},
      pre, Tokenizer::Type::UserDefined, /*addBos=*/true);
}

Tokenizer makeSentencePiece() {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  std::vector<Tokenizer::Type> types = {Tokenizer::Type::Unknown,
                                        Tokenizer::Type::Control,
                                        Tokenizer::Type::Control};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    pieces.push_back(buf);
    types.push_back(Tokenizer::Type::Byte);
  }
  for (const char *p : {"\xE2\x96\x81", "a", "b", "t", "h", "e", "th", "the",
                        "\xE2\x96\x81the", "<user>"}) {
    pieces.push_back(p);
    types.push_back(std::string(p) == "<user>" ? Tokenizer::Type::UserDefined
                                               : Tokenizer::Type::Normal);
  }
  std::vector<float> scores(pieces.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    scores[i] = -static_cast<float>(i);
  }
  return Tokenizer(pieces, scores, types, Tokenizer::Options{});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const Tokenizer byteLevel[] = {
      makeByteLevel(llmc::bytelevel::PreTokenizer::Gpt2),
      makeByteLevel(llmc::bytelevel::PreTokenizer::SmolLM),
      makeByteLevel(llmc::bytelevel::PreTokenizer::Llama3)};
  static const Tokenizer sentencePiece = makeSentencePiece();
  std::string_view text(reinterpret_cast<const char *>(data), size);
  for (const Tokenizer &t : byteLevel) {
    std::string back;
    for (int32_t id : t.encode(text)) {
      back += id < 2 ? t.piece(id) : t.decodePiece(id, false);
    }
    if (back != text) {
      std::abort(); // byte-level BPE lost or changed a byte
    }
  }
  (void)sentencePiece.decode(sentencePiece.encode(text));
  return 0;
}
