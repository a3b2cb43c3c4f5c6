// libFuzzer target: tokenizer.json and tokenizer.model (SentencePiece
// ModelProto) readers, then the runtime tokenizer built from what they
// return, encoding a fixed text. The first input byte picks the reader.
#include "FuzzInput.h"
#include "FuzzTokenizer.h"

#include "compiler/TokenizerImport.h"

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
  llmc::fuzz::exerciseTokenizer(*tables, "Once upon a time, 42 caf\xC3\xA9 \xF0\x9F\x98\x80!");
  return 0;
}
