// The byte-level BPE pieces of the runtime tokenizer: pre-tokenizers (each
// against hand-worked splits of its regular expression), the byte mapping,
// and merges by rank with special tokens kept whole.
#include "ByteLevelVocab.h"
#include "runtime/tokenizer/bytelevel.h"
#include "runtime/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

namespace llmc {
namespace {

using bytelevel::PreTokenizer;

std::vector<std::string> split(std::string_view text, PreTokenizer p) {
  std::vector<std::string> out;
  for (std::string_view w : bytelevel::preTokenize(text, p)) {
    out.emplace_back(w);
  }
  return out;
}

using V = std::vector<std::string>;

TEST(ByteLevelPreTokenizer, Gpt2Words) {
  EXPECT_EQ(split("Hello world", PreTokenizer::Gpt2), (V{"Hello", " world"}));
  // A run of spaces gives all but the last to itself; the last joins the word.
  EXPECT_EQ(split("a   b", PreTokenizer::Gpt2), (V{"a", "  ", " b"}));
  // Trailing whitespace is one piece.
  EXPECT_EQ(split("a  ", PreTokenizer::Gpt2), (V{"a", "  "}));
  // A newline before a word stands alone (' ?' is a literal space).
  EXPECT_EQ(split("a\nb", PreTokenizer::Gpt2), (V{"a", "\n", "b"}));
  EXPECT_EQ(split("a\n\n b", PreTokenizer::Gpt2), (V{"a", "\n\n", " b"}));
}

TEST(ByteLevelPreTokenizer, Gpt2ContractionsNumbersPunctuation) {
  EXPECT_EQ(split("don't it's we'll", PreTokenizer::Gpt2),
            (V{"don", "'t", " it", "'s", " we", "'ll"}));
  // Case-sensitive in GPT-2: "'T" is punctuation then a letter.
  EXPECT_EQ(split("DON'T", PreTokenizer::Gpt2), (V{"DON", "'", "T"}));
  EXPECT_EQ(split("x 12345 y", PreTokenizer::Gpt2), (V{"x", " 12345", " y"}));
  EXPECT_EQ(split("a... ?!b", PreTokenizer::Gpt2), (V{"a", "...", " ?!", "b"}));
  // Letters of any script are \p{L}; ² is \p{N}.
  EXPECT_EQ(split("café x²", PreTokenizer::Gpt2), (V{"café", " x", "²"}));
}

TEST(ByteLevelPreTokenizer, SmolLMIsolatesEveryDigit) {
  EXPECT_EQ(split("abc123 x", PreTokenizer::SmolLM),
            (V{"abc", "1", "2", "3", " x"}));
  EXPECT_EQ(split("v 2.0", PreTokenizer::SmolLM), (V{"v", " ", "2", ".", "0"}));
  // Non-ASCII numerics too (Hugging Face's Digits uses char::is_numeric).
  EXPECT_EQ(split("x²", PreTokenizer::SmolLM), (V{"x", "²"}));
}

TEST(ByteLevelPreTokenizer, Llama3) {
  // Numbers in runs of at most three; contractions in any case.
  EXPECT_EQ(split("1234567", PreTokenizer::Llama3), (V{"123", "456", "7"}));
  EXPECT_EQ(split("DON'T", PreTokenizer::Llama3), (V{"DON", "'T"}));
  // (?i:) folds U+017F (long s) to s, as Hugging Face's regex engine does.
  EXPECT_EQ(split("'\xC5\xBF" "aES", PreTokenizer::Llama3),
            (V{"'\xC5\xBF", "aES"}));
  // One non-letter, non-newline char may lead a word.
  EXPECT_EQ(split("(hello) world", PreTokenizer::Llama3),
            (V{"(hello", ")", " world"}));
  // Punctuation takes trailing newlines; whitespace up to the last newline.
  EXPECT_EQ(split("a.\n\nb", PreTokenizer::Llama3), (V{"a", ".\n\n", "b"}));
  EXPECT_EQ(split("a \n  b", PreTokenizer::Llama3), (V{"a", " \n", " ", " b"}));
}

TEST(ByteLevelPreTokenizer, InvalidUtf8IsKeptByteForByte) {
  std::string text = "a\xff\xfe b";
  std::string joined;
  for (const std::string &w : split(text, PreTokenizer::Gpt2)) {
    joined += w;
  }
  EXPECT_EQ(joined, text);
  // Every byte of the input is in exactly one word, whatever the input.
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
  }
  for (PreTokenizer p :
       {PreTokenizer::Gpt2, PreTokenizer::SmolLM, PreTokenizer::Llama3}) {
    std::string back;
    for (const std::string &w : split(all, p)) {
      EXPECT_FALSE(w.empty());
      back += w;
    }
    EXPECT_EQ(back, all) << bytelevel::preTokenizerName(p);
  }
}

TEST(ByteLevelMapping, RoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
  }
  std::string mapped = bytelevel::mapBytes(all);
  EXPECT_EQ(bytelevel::mapBytes(" "), "\xC4\xA0");   // Ġ
  EXPECT_EQ(bytelevel::mapBytes("\n"), "\xC4\x8A");  // Ċ
  EXPECT_EQ(bytelevel::mapBytes("A"), "A");
  std::string back;
  ASSERT_TRUE(bytelevel::unmapBytes(mapped, back));
  EXPECT_EQ(back, all);
  std::string bad;
  EXPECT_FALSE(bytelevel::unmapBytes("\xE4\xB8\xAD", bad)); // not a byte symbol
}

/// A vocabulary of the 256 byte symbols, two specials, and merges.
Tokenizer makeTokenizer(const std::vector<std::string> &merges) {
  return test::byteLevelTokenizer(merges, PreTokenizer::Gpt2,
                                  Tokenizer::Type::Control, /*addBos=*/false);
}

int32_t byteId(char c) { return 2 + static_cast<unsigned char>(c); }

TEST(ByteLevelBpe, MergesByRankNotByPosition) {
  // "a b" ranks before "b c": "abc" -> "ab" + "c", never "a" + "bc".
  Tokenizer t = makeTokenizer({"a b", "b c"});
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{258, byteId('c')}));
  Tokenizer u = makeTokenizer({"b c", "a b"});
  EXPECT_EQ(u.encode("abc"), (std::vector<int32_t>{byteId('a'), 258}));
  // Merges build on merges; a space is the symbol Ġ.
  Tokenizer v = makeTokenizer({"Ġ a", "Ġa b"});
  EXPECT_EQ(v.encode(" ab"), (std::vector<int32_t>{259}));
  EXPECT_EQ(v.decode({259}), " ab");
}

TEST(ByteLevelBpe, SpecialTokensStayWholeAndDecodeToNothing) {
  Tokenizer t = makeTokenizer({});
  EXPECT_EQ(t.encode("x<|user|>y<|end|>"),
            (std::vector<int32_t>{byteId('x'), 1, byteId('y'), 0}));
  EXPECT_EQ(t.decodePiece(1, false), "");
  // Every byte sequence encodes and decodes back.
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
  }
  std::string back;
  for (int32_t id : t.encode(all)) {
    back += t.decodePiece(id, false);
  }
  EXPECT_EQ(back, all);
}

TEST(ByteLevelBpe, LongWordsStayLinearithmic) {
  // A megabyte without spaces is one word: the merge queue must not be
  // quadratic (this finishes in well under a second).
  Tokenizer t = makeTokenizer({"a a", "aa aa"});
  std::vector<int32_t> ids = t.encode(std::string(1 << 20, 'a'));
  EXPECT_EQ(ids.size(), size_t(1) << 18);
}

} // namespace
} // namespace llmc
