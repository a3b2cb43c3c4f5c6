/* The ABI between a compiled model program and the llmc runtime.
 *
 * llmc emits an object file that defines `llmc_compiled_program` (an
 * llmc_program) and whose forward function calls the llmc_k_* kernels below.
 * The runtime binds the program to an artifact whose tensor table has the
 * same fingerprint. Everything here is plain C. */
#ifndef LLMC_PROGRAM_H
#define LLMC_PROGRAM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLMC_PROGRAM_ABI_VERSION 5

/* Storage formats. The artifact schema's StorageFormat and the llm
 * dialect's StorageKind are tied to these numbers by static_asserts
 * (runtime/artifact/reader.cpp, dialects/llm/StorageFormat.cpp). */
enum {
  LLMC_FORMAT_F32 = 0,
  LLMC_FORMAT_F16 = 1,
  LLMC_FORMAT_BF16 = 2,
  LLMC_FORMAT_Q8 = 3,
  LLMC_FORMAT_Q4 = 4,
  /* 2:4 sparse: of every 4 consecutive weights of a row 2 are kept, as f16
   * values with their 2-bit positions (runtime/kernels/quant.h, BlockS24). */
  LLMC_FORMAT_S24 = 5,
  /* The same positions with the 16 kept values of each 32 columns quantized
   * to int8 / int4 under one f16 scale (BlockS24Q8, BlockS24Q4). */
  LLMC_FORMAT_S24Q8 = 6,
  LLMC_FORMAT_S24Q4 = 7,
  /* Symmetric q8 / q4 with the rows interleaved in groups of 8 for the CPU
   * kernels: per group of weights, the 8 rows' scales, then their codes
   * (runtime/kernels/quant.h, BlockQ8X8G32 / BlockQ4X8G32). Same bytes as
   * q8 / q4; rows past the last multiple of 8 stay row by row. */
  LLMC_FORMAT_Q8X8 = 8,
  LLMC_FORMAT_Q4X8 = 9,
  /* f16 with the rows in groups of 16 stored column-major: element (r, c)
   * of group g at [c][r % 16] (runtime/kernels/quant.h). Same bytes as
   * f16; rows past the last multiple of 16 stay row-major. */
  LLMC_FORMAT_F16X16 = 10
};

/* Per-call state the kernels need: thread pool, KV cache, scratch. Owned by
 * an llmc_session; opaque to compiled code. */
typedef struct llmc_exec llmc_exec;

/* Runs the model on `n` tokens at positions start..start+n-1, appending
 * their keys and values to the cache, and writes the logits of the last
 * `logits_rows` rows (row-major, vocab floats each) to `logits`.
 * `weights[i]` is the data of tensor i of the artifact; `arena` holds
 * `arena_bytes` bytes, 64-byte aligned. n <= max_tokens. */
typedef void (*llmc_forward_fn)(llmc_exec *exec, const void *const *weights,
                                void *arena, const int32_t *tokens, int64_t n,
                                int64_t start, int64_t logits_rows,
                                float *logits);

/* What the program expects of weight i: its storage and shape (rank 1 or
 * 2; shape[1] is 0 for rank 1). */
typedef struct llmc_weight_desc {
  int32_t format; /* LLMC_FORMAT_* */
  int32_t group;  /* block formats: elements per group; else 0 */
  int32_t asym;   /* q4: 1 when a group has a zero point */
  int32_t rank;
  int64_t shape[2];
} llmc_weight_desc;

/* One layer of the KV cache as the program's attention ops use it: the
 * runtime allocates `kv_heads` x context x `head_dim` floats each for keys
 * and values. Layers may differ (pruned models). */
typedef struct llmc_cache_layer {
  int64_t kv_heads;
  int64_t head_dim;
} llmc_cache_layer;

/* Where a program's activations may live. A CPU program computes its
 * elementwise ops inline, so its arena must be host memory. A program
 * compiled with `--target cuda` calls llmc_k_elementwise for them too, so
 * every touch of an activation is a kernel call and the runtime may place
 * the arena, the weights and the cache on a GPU (or run it on the CPU). */
enum { LLMC_TARGET_CPU = 0, LLMC_TARGET_CUDA = 1 };

typedef struct llmc_program {
  uint32_t abi_version;   /* LLMC_PROGRAM_ABI_VERSION */
  uint32_t num_weights;   /* tensors the program reads, in artifact order */
  uint64_t arena_bytes;   /* activation memory, planned at compile time */
  int64_t max_tokens;     /* most tokens one forward call may take */
  uint64_t fingerprint;   /* llmc_tensor_table_fingerprint of the artifact */
  llmc_forward_fn forward;
  /* Weights file to open when the executable carries none (compiled with
   * --weights): relative paths are relative to the executable's folder.
   * May be null. */
  const char *default_weights;
  const llmc_weight_desc *weights; /* num_weights entries */
  int64_t num_cache_layers;
  const llmc_cache_layer *cache_layers; /* num_cache_layers entries */
  int64_t target; /* LLMC_TARGET_* */
} llmc_program;

/* Kernels called by compiled code. Each takes row-major f32 activations. */

/* A weight's storage: `format` is an LLMC_FORMAT_*; block formats (q8, q4)
 * also have a `group` size (a multiple of 32) and q4 may be `asym`metric.
 * Float formats pass group 0 and asym 0. */

/* out[i] = table[ids[i]] converted to f32; table is [vocab, dim]. */
void llmc_k_embedding(llmc_exec *exec, const void *table, int32_t format,
                      int32_t group, int32_t asym, const int32_t *ids,
                      int64_t n, int64_t dim, float *out);

/* out = w * x / sqrt(mean(x^2) + eps), per row of `dim`. */
void llmc_k_rms_norm(llmc_exec *exec, const float *x, int64_t n, int64_t dim,
                     const void *w, int32_t format, float eps, float *out);

/* y[n, out_dim] = x[n, in_dim] . W[out_dim, in_dim]^T (+ bias). `bias` may be
 * null. */
void llmc_k_linear(llmc_exec *exec, const float *x, int64_t n, int64_t in_dim,
                   const void *w, int32_t format, int32_t group, int32_t asym,
                   int64_t out_dim, const void *bias, int32_t bias_format,
                   float *y);

/* The same product with the output rows split into `parts` results: output
 * columns [o_p, o_p + widths[p]) of y go to ys[p] (row-major, widths[p]
 * floats a row), where o_p is the sum of the widths before p. The widths add
 * up to out_dim. A fused q/k/v or gate/up projection writes each consumer's
 * tensor directly. */
void llmc_k_linear_split(llmc_exec *exec, const float *x, int64_t n,
                         int64_t in_dim, const void *w, int32_t format,
                         int32_t group, int32_t asym, int64_t out_dim,
                         const void *bias, int32_t bias_format, int64_t parts,
                         const int64_t *widths, float *const *ys);

/* llmc_k_linear_split with the fusions of `llmc compile --fuse` (CPU):
 * - `norm` (may be null): the input rows are RMS-normalized first, as
 *   llmc_k_rms_norm(x, norm, eps) would, in the kernel's input stage (for
 *   q8/q4 weights: normalized and quantized to int8 row by row, never
 *   written as f32 activations);
 * - `residual` (may be null; one result only): [n, out_dim] floats added to
 *   the product (after the bias);
 * - `swiglu_block` > 0 (one result of out_dim / 2 columns): the weight's
 *   rows come in blocks of `swiglu_block` gate rows followed by the same
 *   number of up rows (the last block shorter, b gate then b up rows), and
 *   result column c of block k (c = k * swiglu_block + i) is
 *   silu(gate row) * (up row), as silu(x) = x / (1 + exp(-x)).
 * `parts`, `widths` and `ys` are those of llmc_k_linear_split. */
void llmc_k_linear_fused(llmc_exec *exec, const float *x, int64_t n,
                         int64_t in_dim, const void *w, int32_t format,
                         int32_t group, int32_t asym, int64_t out_dim,
                         const void *bias, int32_t bias_format,
                         const void *norm, int32_t norm_format, float eps,
                         const float *residual, int64_t swiglu_block,
                         int64_t parts, const int64_t *widths,
                         float *const *ys);

/* The LM head: the `n` rows of x (RMS-normalized first with `norm`, as
 * llmc_k_rms_norm would, when it is not null: llm-fuse-lm-head) times the
 * [vocab, in_dim] weight into `logits` [n, vocab]. When the session asked
 * for the argmax alone (llmc_session_prefill_argmax) and n is 1, the CPU
 * keeps the largest logit's id (the first on ties) block by block and does
 * not write `logits`. */
void llmc_k_lm_head(llmc_exec *exec, const float *x, int64_t n, int64_t in_dim,
                    const void *w, int32_t format, int32_t group, int32_t asym,
                    int64_t vocab, const void *norm, int32_t norm_format,
                    float eps, float *logits);

/* Rotary embedding (rotate_half pairs j, j + head_dim/2), row i at position
 * start + i. `x` and `y` may alias. */
void llmc_k_rope(llmc_exec *exec, const float *x, float *y, int64_t n,
                 int64_t heads, int64_t head_dim, float theta, int64_t start);

/* Appends k/v rows to layer `layer` of the cache at start..start+n-1, then
 * writes causal GQA attention of each q row into `out`. `kv_heads` and
 * `head_dim` are those of the program's cache_layers[layer]. */
void llmc_k_attention(llmc_exec *exec, int64_t layer, const float *q,
                      const float *k, const float *v, int64_t n, int64_t start,
                      int64_t heads, int64_t kv_heads, int64_t head_dim,
                      float *out);

/* llmc_k_attention with RoPE fused into its input: q and k are the
 * projections before rotation; each key row is rotated (as llmc_k_rope
 * with `theta`) on its way into the cache and each query row before its
 * scores, so neither is written back rotated. */
void llmc_k_attention_rope(llmc_exec *exec, int64_t layer, const float *q,
                           const float *k, const float *v, int64_t n,
                           int64_t start, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, float theta, float *out);

/* Elementwise ops over `count` floats (`b` unused for SiLU). SWIGLU is
 * silu(a) * b, the fusion of a SiLU whose one use is a multiply. Called by
 * programs compiled for LLMC_TARGET_CUDA; CPU programs generate these loops. */
enum {
  LLMC_EW_SILU = 0,
  LLMC_EW_MUL = 1,
  LLMC_EW_ADD = 2,
  LLMC_EW_SWIGLU = 3
};
void llmc_k_elementwise(llmc_exec *exec, int32_t op, const float *a,
                        const float *b, float *y, int64_t count);

#ifdef __cplusplus
}
#endif

#endif /* LLMC_PROGRAM_H */
