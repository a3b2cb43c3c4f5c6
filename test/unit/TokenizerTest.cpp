// The runtime's tokenizer against the sentencepiece library, on real text and edge cases.
#include "compiler/TokenizerImport.h"
#include "runtime/tokenizer/tokenizer.h"

#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <fstream>

using namespace llmc;

namespace {

const std::string kShared = LLMC_SHARED_DIR;

Tokenizer fromTables(const fb::TokenizerT &t) {
  std::vector<Tokenizer::Type> types;
  for (fb::TokenType x : t.types) {
    types.push_back(static_cast<Tokenizer::Type>(x));
  }
  Tokenizer::Options o;
  o.unkId = t.unk_id;
  o.bosId = t.bos_id;
  o.eosId = t.eos_id;
  o.addDummyPrefix = t.add_dummy_prefix;
  o.removeExtraWhitespaces = t.remove_extra_whitespaces;
  o.byteFallback = t.byte_fallback;
  return Tokenizer(t.pieces, t.scores, types, o);
}

std::vector<std::string> edgeCases() {
  return {"",
          " ",
          "   ",
          "\n",
          "a",
          " leading and trailing ",
          "double  spaces   inside",
          "tabs\tand\nnewlines\r\n",
          "Unicode: é ü ß ñ 漢字 日本語 Привет",
          "emoji 🙂🚀 and symbols ∑ √ ∞",
          "bytes outside the vocabulary: \x01\x02\x7f",
          "malformed UTF-8: \xff\xfe \xc3 end",
          "<s> </s> <unk> look like control tokens",
          "Once upon a time, there was a little girl named Lily.",
          std::string(300, 'a'),
          "1234567890 3.14159 -42",
          "\xe2\x96\x81 already escaped space"};
}

class TokenizerVsSentencePiece : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    modelPath = kShared + "/models/" + GetParam() + "/tokenizer.model";
    if (!llvm::sys::fs::exists(modelPath)) {
      GTEST_SKIP() << "shared model not found: " << modelPath;
    }
    ASSERT_TRUE(sp.Load(modelPath).ok());
    auto tables = readSentencePieceModel(modelPath);
    ASSERT_TRUE(bool(tables)) << llvm::toString(tables.takeError());
    tok.emplace(fromTables(*tables));
  }
  void expectSame(const std::string &text) {
    std::vector<int> ref;
    ASSERT_TRUE(sp.Encode(text, &ref).ok());
    std::vector<int32_t> got = tok->encode(text);
    ASSERT_EQ(std::vector<int32_t>(ref.begin(), ref.end()), got)
        << "text: '" << text << "'";
  }
  std::string modelPath;
  sentencepiece::SentencePieceProcessor sp;
  std::optional<Tokenizer> tok;
};

} // namespace

TEST_P(TokenizerVsSentencePiece, EdgeCases) {
  for (const std::string &t : edgeCases()) {
    expectSame(t);
  }
}

TEST_P(TokenizerVsSentencePiece, EveryLineOfTinyStories) {
  std::ifstream in(kShared + "/data/text/tinystories_val_dev.txt");
  ASSERT_TRUE(in) << "missing tinystories_val_dev.txt";
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    expectSame(line);
    ++lines;
  }
  EXPECT_GT(lines, 1000);
}

TEST_P(TokenizerVsSentencePiece, DecodeRoundTrips) {
  for (const std::string &text :
       {std::string("Once upon a time, there was a dog."),
        std::string("Unicode: é 漢字 🙂")}) {
    std::vector<int32_t> ids = tok->encode(text);
    std::vector<int> ref(ids.begin(), ids.end());
    std::string expected;
    ASSERT_TRUE(sp.Decode(ref, &expected).ok());
    EXPECT_EQ(tok->decode(ids), expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, TokenizerVsSentencePiece,
                         ::testing::Values("stories260K", "llama2-tokenizer"),
                         [](const auto &info) {
                           std::string n = info.param;
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

TEST(TokenizerJson, Stories260KMatchesItsSentencePieceModel) {
  std::string dir = kShared + "/models/stories260K";
  if (!llvm::sys::fs::exists(dir + "/tokenizer.json")) {
    GTEST_SKIP() << "shared model not found: " << dir;
  }
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(dir + "/tokenizer.model").ok());
  auto tables = readTokenizerJson(dir + "/tokenizer.json");
  ASSERT_TRUE(bool(tables)) << llvm::toString(tables.takeError());
  Tokenizer tok = fromTables(*tables);
  std::ifstream in(kShared + "/data/text/tinystories_val_dev.txt");
  std::string line;
  int n = 0;
  while (std::getline(in, line) && n++ < 500) {
    std::vector<int> ref;
    ASSERT_TRUE(sp.Encode(line, &ref).ok());
    ASSERT_EQ(std::vector<int32_t>(ref.begin(), ref.end()), tok.encode(line))
        << line;
  }
  for (const std::string &t : edgeCases()) {
    std::vector<int> ref;
    ASSERT_TRUE(sp.Encode(t, &ref).ok());
    EXPECT_EQ(std::vector<int32_t>(ref.begin(), ref.end()), tok.encode(t)) << t;
  }
}

TEST(TokenizerImport, BadFiles) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/bad.model";
  std::ofstream(path, std::ios::binary) << "\x0a\xff\xff\xff";
  auto r = readSentencePieceModel(path);
  ASSERT_FALSE(bool(r));
  std::string e = llvm::toString(r.takeError());
  EXPECT_NE(e.find(path + ": not a SentencePiece model"), std::string::npos) << e;
  // tokenizer.json with valid JSON of unexpected types: an error naming the
  // file, not an abort.
  std::string json = dir + "/bad-types.json";
  std::ofstream(json) << R"({"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 1},
      "merges": [], "unk_token": null}, "added_tokens": [{"id": 0, "content": "<unk>"}]})";
  auto j = readTokenizerJson(json);
  ASSERT_FALSE(bool(j));
  std::string je = llvm::toString(j.takeError());
  EXPECT_NE(je.find(json + ": a field has an unexpected type"), std::string::npos) << je;
  auto missing = readTokenizer(dir + "/nowhere");
  ASSERT_FALSE(bool(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("no tokenizer.model or tokenizer.json"),
            std::string::npos);
}
