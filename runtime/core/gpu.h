// The seam between the runtime and a GPU backend (runtime/cuda/).
//
// The runtime itself links no GPU code: an executable compiled with
// `--target cuda` links the CUDA backend, whose main() registers it with
// setGpuBackend() before the CLI runs. A session on the GPU owns a
// GpuSession; the llmc_k_* entry points that compiled code calls forward to
// it whenever the session's exec has one, so the one compiled program drives
// either device (see llmc_program.target).
#ifndef LLMC_RUNTIME_CORE_GPU_H
#define LLMC_RUNTIME_CORE_GPU_H

#include "llmc/program.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace llmc::gpu {

/// One tensor as the artifact stores it. `data` is null for synthesized
/// weights (--random-weights): the backend fills them (runtime/core/synth.h).
struct Tensor {
  const void *data = nullptr;
  uint64_t bytes = 0;
  int32_t format = 0, group = 0, asym = 0;
  std::vector<int64_t> shape;
};

/// What a GPU session is created from.
struct SessionSpec {
  const llmc_program *program = nullptr;
  std::vector<Tensor> tensors; // artifact order: the program's weights[i]
  uint64_t seed = 0;           // tensors without data: synth.h's seed
  std::vector<llmc_cache_layer> cache;
  int64_t ctx = 0;        // KV-cache positions
  int64_t vocab = 0;
  int64_t maxTokens = 0;  // most tokens one forward call takes
  int64_t maxHeads = 0;   // most query heads of an attention op
  bool kvHalf = true;     // f16 KV cache, else f32
};

class Session {
public:
  virtual ~Session() = default;

  // The kernels, as llmc_k_* declare them; pointers are device pointers.
  virtual void embedding(const void *table, int32_t format, int32_t group,
                         int32_t asym, const int32_t *ids, int64_t n,
                         int64_t dim, float *out) = 0;
  virtual void rmsNorm(const float *x, int64_t n, int64_t dim, const void *w,
                       int32_t format, float eps, float *out) = 0;
  virtual void linear(const float *x, int64_t n, int64_t in_dim, const void *w,
                      int32_t format, int32_t group, int32_t asym,
                      int64_t out_dim, const void *bias, int32_t bias_format,
                      int64_t parts, const int64_t *widths,
                      float *const *ys) = 0;
  virtual void rope(const float *x, float *y, int64_t n, int64_t heads,
                    int64_t head_dim, float theta) = 0;
  virtual void attention(int64_t layer, const float *q, const float *k,
                         const float *v, int64_t n, int64_t heads,
                         int64_t kv_heads, int64_t head_dim, float *out) = 0;
  virtual void elementwise(int32_t op, const float *a, const float *b,
                           float *y, int64_t count) = 0;

  /// Runs the program on `n` tokens at `start` (decode steps replay one
  /// captured graph); keeps the logits of the last `rows` rows on the device.
  virtual bool forward(llmc_exec *exec, const int32_t *tokens, int64_t n,
                       int64_t start, int64_t rows, std::string &error) = 0;
  /// Copies the kept logits to `out` (rows x vocab floats).
  virtual bool logits(float *out, int64_t rows, std::string &error) = 0;
  /// The argmax of the last row of logits, computed on the device.
  virtual bool argmax(int32_t *token, std::string &error) = 0;
  /// Tensor i in device memory (in the GPU layout).
  virtual const void *weight(size_t i) const = 0;
  /// A line naming the device, for --bench and errors.
  virtual std::string deviceName() const = 0;
};

using CreateSession = std::unique_ptr<Session> (*)(const SessionSpec &spec,
                                                   std::string &error);

/// Registers the backend (the CUDA executable's main() does); null clears.
void setGpuBackend(CreateSession create);

} // namespace llmc::gpu

#endif // LLMC_RUNTIME_CORE_GPU_H
