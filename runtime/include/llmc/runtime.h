/* The llmc runtime's public C API.
 *
 * Objects are opaque handles. Every call that can fail returns an
 * llmc_status; on failure llmc_last_error() gives a one-line message for the
 * calling thread. Ownership: whatever a create or load call returns is released by
 * the matching _release call. A model may be shared by several sessions; one
 * session must be used by one thread at a time. */
#ifndef LLMC_RUNTIME_H
#define LLMC_RUNTIME_H

#include "llmc/program.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum llmc_status {
  LLMC_OK = 0,
  LLMC_ERROR_IO = 1,               /* a file could not be read */
  LLMC_ERROR_FORMAT = 2,           /* corrupt or incompatible artifact */
  LLMC_ERROR_INVALID_ARGUMENT = 3, /* a bad token, size or option */
  LLMC_ERROR_CONTEXT_FULL = 4,     /* no room left in the KV cache */
  LLMC_ERROR_OUT_OF_MEMORY = 5
} llmc_status;

/* The message of the calling thread's last failed call. */
const char *llmc_last_error(void);

typedef struct llmc_model llmc_model;
typedef struct llmc_session llmc_session;
typedef struct llmc_sampler llmc_sampler;

typedef struct llmc_model_info {
  int64_t vocab_size;
  int64_t hidden_size;
  int64_t num_layers;
  int64_t max_seq_len;  /* the longest context the program was compiled for */
  int64_t max_tokens;   /* most tokens one forward call takes */
  int32_t bos_token_id;
  int32_t eos_token_id;
  uint64_t weight_bytes;
  /* Weight bytes one decode step reads: every tensor the program reads,
   * counting one row of a table that only embedding lookups read. */
  uint64_t bytes_per_token;
  uint64_t artifact_bytes;
  /* Whether a text prompt starts with BOS (the tokenizer's add_bos; 1 when
   * the artifact has no tokenizer). */
  int32_t add_bos;
  /* 1 when the weights are synthesized at load (compiled with
   * --random-weights): speed only, their outputs mean nothing. */
  int32_t synthetic_weights;
} llmc_model_info;

/* Loads the artifact at `path` (a file, or an executable carrying one) and
 * binds it to `program`. A program compiled for another tensor table is a
 * LLMC_ERROR_FORMAT. `verify_weights` checks every tensor's checksum. */
llmc_status llmc_model_load(const char *path, const llmc_program *program,
                            int verify_weights, llmc_model **out);
void llmc_model_release(llmc_model *model);
void llmc_model_get_info(const llmc_model *model, llmc_model_info *out);

/* Tokenizer. `llmc_tokenize` writes at most `capacity` ids and always sets
 * `*count` to the number the text needs (so a second call can size it). */
llmc_status llmc_tokenize(const llmc_model *model, const char *text,
                          size_t length, int add_bos, int32_t *ids,
                          int64_t capacity, int64_t *count);
/* The bytes of one token (see Tokenizer::decodePiece); valid until the next
 * call on this thread. */
const char *llmc_token_text(const llmc_model *model, int32_t id, int after_bos,
                            size_t *length);

/* How the KV cache stores keys and values. */
typedef enum llmc_kv_cache {
  LLMC_KV_DEFAULT = 0, /* f16 */
  LLMC_KV_F16 = 1,     /* half the bytes of f32; logits move by ~1e-3 */
  LLMC_KV_F32 = 2      /* exact: what the reference comparisons use */
} llmc_kv_cache;

/* Where a session runs. LLMC_DEVICE_CUDA needs a program compiled with
 * `--target cuda`, an executable that links the CUDA backend, and a GPU. */
typedef enum llmc_device {
  LLMC_DEVICE_CPU = 0,
  LLMC_DEVICE_CUDA = 1
} llmc_device;

typedef struct llmc_session_options {
  int threads;      /* 0: one per core */
  int64_t context;  /* 0: the model's max_seq_len */
  int kv_cache;     /* an llmc_kv_cache; 0: f16 */
  int device;       /* an llmc_device; 0: the CPU */
} llmc_session_options;

llmc_status llmc_session_create(llmc_model *model,
                                const llmc_session_options *options,
                                llmc_session **out);
void llmc_session_release(llmc_session *session);

/* Runs `n` tokens at the session's current position (appending them to the
 * cache) and keeps the logits of the last `logits_rows` of them
 * (1 <= logits_rows <= min(n, max_tokens)). */
llmc_status llmc_session_prefill(llmc_session *session, const int32_t *tokens,
                                 int64_t n, int64_t logits_rows);
/* prefill of one token. */
llmc_status llmc_session_decode(llmc_session *session, int32_t token);
/* Logits of the last call: `*rows` rows of vocab_size floats; null (and
 * `*rows` 0) before the first call and after llmc_session_prefill_argmax. */
const float *llmc_session_logits(const llmc_session *session, int64_t *rows);
/* The id of the largest logit of the last row kept (the first on ties); on a
 * GPU it is found there, and the logits are not copied back. */
llmc_status llmc_session_argmax(llmc_session *session, int32_t *token);
/* Greedy decoding: llmc_session_prefill of `n` tokens whose only output is
 * the argmax of the last row's logits (as llmc_session_argmax, which
 * returns it again until the next call). On the CPU the LM head finds it
 * block by block and never writes the logits (llmc_session_logits then has
 * no rows); on a GPU, as prefill + argmax. */
llmc_status llmc_session_prefill_argmax(llmc_session *session,
                                        const int32_t *tokens, int64_t n,
                                        int32_t *token);
/* The name of the session's device ("cpu", or the GPU's name). */
const char *llmc_session_device(const llmc_session *session);
int64_t llmc_session_position(const llmc_session *session);
/* Forgets the cache: the next prefill starts at position 0. */
void llmc_session_reset(llmc_session *session);

typedef struct llmc_sampler_options {
  float temperature; /* 0: greedy */
  int top_k;         /* 0: off */
  float top_p;       /* 1: off */
  uint64_t seed;
} llmc_sampler_options;

llmc_status llmc_sampler_create(const llmc_sampler_options *options,
                                llmc_sampler **out);
void llmc_sampler_release(llmc_sampler *sampler);
/* Picks a token from one row of logits; deterministic for a seed. */
int32_t llmc_sampler_sample(llmc_sampler *sampler, const float *logits,
                            int64_t vocab_size);

/* The reference program: the artifact's own program (the llm module's
 * @forward, stored as an op list) run by the evaluator with the same kernels
 * that compiled code calls, for any artifact (no compiled code needed). Used
 * by llmc-run and --kl-reference, and to cross-check compiled programs. */
const llmc_program *llmc_reference_program(void);

/* Fingerprint of an artifact's tensor table (names, formats, shapes), as
 * stored in llmc_program.fingerprint. */
uint64_t llmc_model_fingerprint(const llmc_model *model);

#ifdef __cplusplus
}
#endif

#endif /* LLMC_RUNTIME_H */
