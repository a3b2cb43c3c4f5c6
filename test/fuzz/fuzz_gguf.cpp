// libFuzzer target: a GGUF file through the reader, the import as a
// checkpoint (config, renaming, dequantization, q/k rows) and its tokenizer.
#include "FuzzInput.h"

#include "compiler/Checkpoint.h"
#include "runtime/tokenizer/from_artifact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = llmc::fuzz::writeInput(data, size, ".gguf");
  auto ckpt = llmc::Checkpoint::open(path);
  if (!ckpt) {
    llvm::consumeError(ckpt.takeError());
    return 0;
  }
  auto tables = (*ckpt)->tokenizer();
  if (!tables) {
    llvm::consumeError(tables.takeError());
    return 0;
  }
  std::optional<llmc::Tokenizer> tok;
  std::string error;
  if (llmc::tokenizerFromTables(*tables, tok, error)) {
    for (int32_t id : tok->encode("Hello world, 123 <|im_start|> caf\xC3\xA9")) {
      (void)tok->decodePiece(id, false);
    }
  }
  return 0;
}
