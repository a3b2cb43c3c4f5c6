// The structures behind llmc_model and llmc_session.
#ifndef LLMC_RUNTIME_CORE_MODEL_H
#define LLMC_RUNTIME_CORE_MODEL_H

#include "llmc/runtime.h"
#include "runtime/artifact/reader.h"
#include "runtime/core/exec.h"
#include "runtime/core/evaluator.h"
#include "runtime/core/pages.h"
#include "runtime/tokenizer/tokenizer.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct llmc_model {
  std::unique_ptr<llmc::artifact::Reader> reader;
  const llmc_program *program = nullptr;
  bool reference = false;
  std::vector<const void *> weights; // tensor i's data, artifact order
  std::optional<llmc::Tokenizer> tokenizer;
  llmc_model_info info{};
  uint64_t fingerprint = 0;
  std::vector<llmc_cache_layer> cache; // the program's KV-cache layout
  // The reference program: the artifact's op list and its view of the tensors.
  std::optional<llmc::eval::Evaluator> evaluator;
  std::vector<llmc::eval::Weight> evalWeights;
  // --random-weights: host copies filled on the first CPU session, page
  // aligned as the artifact's tensors are aligned (a 16-byte aligned heap
  // block makes every 64-byte vector load of a decode straddle two lines).
  std::vector<std::unique_ptr<llmc::PageBuffer<uint8_t>>> synthesized;
};

struct llmc_session {
  llmc_model *model = nullptr;
  std::unique_ptr<llmc::ThreadPool> pool;
  llmc_exec exec;
  void *arena = nullptr;
  int64_t position = 0;
  // max_tokens rows of logits, touched only where written: a call asks
  // for the last row or few, so the other rows (62.5 MiB at 512 x 32000)
  // never become resident.
  llmc::PageBuffer<float> logits;
  int64_t logitsRows = 0;
  // On a GPU: the backend's session, and whether `logits` holds a copy of
  // the device's logits yet (they are copied back only when asked for).
  std::unique_ptr<llmc::gpu::Session> gpu;
  bool logitsOnHost = true;
  std::string device = "cpu";
};

namespace llmc {

/// Sets the calling thread's last error and returns `status`.
llmc_status fail(llmc_status status, const std::string &message);


} // namespace llmc

#endif // LLMC_RUNTIME_CORE_MODEL_H
