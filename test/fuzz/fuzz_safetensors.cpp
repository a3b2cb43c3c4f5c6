// libFuzzer target: the safetensors reader (header JSON, dtypes, offsets).
#include "FuzzInput.h"

#include "compiler/Safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = llmc::fuzz::writeInput(data, size, ".safetensors");
  auto f = llmc::SafetensorsFile::open(path);
  if (!f) {
    llvm::consumeError(f.takeError());
    return 0;
  }
  uint64_t sum = 0;
  for (const llmc::TensorView &t : (*f)->tensors()) {
    for (char c : t.data) { // every range must be readable
      sum += static_cast<unsigned char>(c);
    }
  }
  return sum == 1 ? 0 : 0;
}
