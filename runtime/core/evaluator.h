// The evaluator: runs a program given as data (the `llm` module's @forward as a list of ops) with
// the kernels that compiled code calls. It serves llmc-run and --kl-reference in the runtime and the
// compiler's calibration (passes/ builds the op list from the IR); there is no other forward pass.
#ifndef LLMC_RUNTIME_CORE_EVALUATOR_H
#define LLMC_RUNTIME_CORE_EVALUATOR_H

#include "runtime/core/exec.h"

#include <functional>
#include <string>
#include <vector>

namespace llmc::eval {

/// The llm ops, numbered as the artifact schema's OpKind.
enum class OpKind : int8_t {
  Embedding = 0,
  RMSNorm = 1,
  Linear = 2,
  RoPE = 3,
  Attention = 4,
  SiLU = 5,
  Add = 6,
  Mul = 7,
  LMHead = 8,
};

/// One op. Activations are values: row-major f32 [n, width] tensors named by
/// id. The embedding's token ids and the position `start` of rope and
/// attention are the call's arguments (the @forward arguments the llm ops
/// read).
struct Op {
  OpKind kind = OpKind::Add;
  /// value ids (rope: x; attention: q, k, v; linear: x, then the residual
  /// when one is fused)
  std::vector<int32_t> inputs;
  std::vector<int32_t> results; // value ids; a split linear has several
  std::vector<int64_t> widths;  // per result
  int32_t weight = -1, bias = -1; // tensor indices
  int64_t heads = 0, kvHeads = 0, headDim = 0, layer = 0;
  /// rms_norm's eps (also a linear's fused norm); rope's theta (attention:
  /// > 0 when it rotates q and k itself)
  float eps = 0.0f, theta = 0.0f;
  /// Linear fusions (llmc_k_linear_fused): the RMSNorm weight applied to the
  /// input first, and the SwiGLU block (0: none).
  int32_t norm = -1;
  int64_t swigluBlock = 0;
};

struct Program {
  std::vector<Op> ops;
  int32_t numValues = 0;
  int32_t output = -1; // the logits value (the lm_head's result)
  std::vector<llmc_cache_layer> cache; // indexed by Op::layer
};

/// A tensor as the kernels take it, with its logical shape.
struct Weight {
  const void *data = nullptr;
  int32_t format = LLMC_FORMAT_F32;
  int32_t group = 0;
  int32_t asym = 0;
  std::vector<int64_t> shape;
};

/// Called with the input of op `op` (its first input, or for attention each
/// of q, k, v in turn as `operand` 0..2): `n` rows of `width` floats.
using Hook = std::function<void(size_t op, int operand, const float *x,
                                int64_t n, int64_t width)>;

class Evaluator {
public:
  explicit Evaluator(Program program);

  const Program &program() const { return program_; }

  /// Checks everything the kernels rely on: value ids defined before use,
  /// widths against weight shapes and head counts, tensor indices, cache
  /// layers. Returns "" or what is wrong ("op 12 (linear): ...").
  std::string validate(const std::vector<Weight> &weights,
                       int64_t vocab) const;

  /// The live activations of one sequence between calls of run().
  struct State {
    std::vector<std::vector<float>> values;
  };

  /// Runs ops [begin, end) on `n` tokens at positions start..start+n-1.
  /// Commit keeps the results and frees every value after its last use;
  /// Observe (calibration) leaves `state` as it was, so the same ops can run
  /// again after the weights change. The lm_head writes the last
  /// `logitsRows` rows to `logits` when given. With `cacheSlot` >= 0 every
  /// attention op uses that cache layer instead of its own (calibration
  /// needs one layer's worth of cache, not the model's).
  enum class Mode { Commit, Observe };
  void run(llmc_exec *exec, const std::vector<Weight> &weights, State &state,
           const int32_t *tokens, int64_t n, int64_t start, size_t begin,
           size_t end, Mode mode, const Hook *hook = nullptr,
           int64_t logitsRows = 0, float *logits = nullptr,
           int64_t cacheSlot = -1) const;

  /// The whole program: the logits of the last `rows` rows.
  void forward(llmc_exec *exec, const std::vector<Weight> &weights,
               const int32_t *tokens, int64_t n, int64_t start, int64_t rows,
               float *logits) const;

  /// Index of the last op that reads value `v` (ops.size() for the output).
  size_t lastUse(int32_t v) const { return lastUse_[v]; }
  /// Index of the op that defines value `v`.
  size_t definedBy(int32_t v) const { return def_[v]; }

private:
  void runOp(size_t i, llmc_exec *exec, const std::vector<Weight> &weights,
             State &state, const int32_t *tokens, int64_t n, int64_t start,
             int64_t logitsRows, float *logits, int64_t cacheSlot) const;

  Program program_;
  std::vector<size_t> def_, lastUse_;
};

} // namespace llmc::eval

#endif // LLMC_RUNTIME_CORE_EVALUATOR_H
