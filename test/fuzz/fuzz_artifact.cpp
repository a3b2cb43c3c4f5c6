// libFuzzer target: the artifact loader (header, checksum, flatbuffer
// verification, segments, tensor table, program, tokenizer tables), as an
// executable's --weights file; loaded models tokenize a fixed text.
#include "FuzzInput.h"

#include "llmc/runtime.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = llmc::fuzz::writeInput(data, size, ".llmc");
  llmc_model *model = nullptr;
  if (llmc_model_load(path.c_str(), llmc_reference_program(), 1, &model) != LLMC_OK) {
    return 0;
  }
  int32_t ids[64];
  int64_t count = 0;
  const char text[] = "Once upon a time";
  llmc_tokenize(model, text, sizeof text - 1, 1, ids, 64, &count);
  llmc_model_release(model);
  return 0;
}
