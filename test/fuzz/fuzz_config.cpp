// libFuzzer target: config.json parsing and checking.
#include "FuzzInput.h"

#include "compiler/Checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = llmc::fuzz::writeInput(data, size, "-config.json");
  auto c = llmc::parseConfig(path);
  if (!c) {
    llvm::consumeError(c.takeError());
  }
  return 0;
}
