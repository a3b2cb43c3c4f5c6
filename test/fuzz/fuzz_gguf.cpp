// libFuzzer target: a GGUF file through the reader, the import as a
// checkpoint (config, renaming, dequantization, q/k rows) and its tokenizer.
#include "FuzzInput.h"
#include "FuzzTokenizer.h"

#include "compiler/Checkpoint.h"

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
  llmc::fuzz::exerciseTokenizer(*tables, "Hello world, 123 <|im_start|> caf\xC3\xA9");
  return 0;
}
