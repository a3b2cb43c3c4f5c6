// libFuzzer target: tokenizer.json and tokenizer.model (SentencePiece
// ModelProto) readers, then the runtime tokenizer built from what they
// return, encoding a fixed text. The first input byte picks the reader.
#include "FuzzInput.h"

#include "compiler/TokenizerImport.h"
#include "runtime/tokenizer/from_artifact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const bool json = data[0] & 1;
  std::string path = llmc::fuzz::writeInput(data + 1, size - 1,
                                            json ? "-tokenizer.json"
                                                 : "-tokenizer.model");
  auto tables = json ? llmc::readTokenizerJson(path)
                     : llmc::readSentencePieceModel(path);
  if (!tables) {
    llvm::consumeError(tables.takeError());
    return 0;
  }
  std::optional<llmc::Tokenizer> tok;
  std::string error;
  if (llmc::tokenizerFromTables(*tables, tok, error)) {
    std::vector<int32_t> ids = tok->encode("Once upon a time, 42 caf\xC3\xA9 \xF0\x9F\x98\x80!");
    (void)tok->decode(ids);
  }
  return 0;
}
