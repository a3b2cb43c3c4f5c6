// The C API: loading a model, binding its program, sessions, tokenization.
#include "runtime/artifact/fingerprint.h"
#include "runtime/core/model.h"
#include "runtime/core/synth.h"
#include "runtime/core/synth_fill.h"
#include "runtime/tokenizer/from_artifact.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>

namespace llmc {

// The evaluator's op kinds are the schema's.
#define LLMC_SAME_KIND(K)                                                      \
  static_assert(static_cast<int>(eval::OpKind::K) ==                          \
                static_cast<int>(fb::OpKind::K))
LLMC_SAME_KIND(Embedding);
LLMC_SAME_KIND(RMSNorm);
LLMC_SAME_KIND(Linear);
LLMC_SAME_KIND(RoPE);
LLMC_SAME_KIND(Attention);
LLMC_SAME_KIND(SiLU);
LLMC_SAME_KIND(Add);
LLMC_SAME_KIND(Mul);
LLMC_SAME_KIND(LMHead);
#undef LLMC_SAME_KIND

namespace {
thread_local std::string lastError;
thread_local std::string tokenText;

// The reference program has no compiled code; sessions recognize it by address.
const llmc_program kReferenceProgram = {LLMC_PROGRAM_ABI_VERSION,
                                        0,
                                        0,
                                        512,
                                        0,
                                        nullptr,
                                        nullptr,
                                        nullptr,
                                        0,
                                        nullptr,
                                        LLMC_TARGET_CPU};

gpu::CreateSession registeredBackend = nullptr;

/// --random-weights on the CPU: fills host copies of every tensor, once,
/// on `threads` cores (tensors taken in turn: a 7B model is 3.4 GB to fill).
llmc_status synthesizeOnHost(llmc_model &m, int threads) {
  if (!m.reader->synthetic() || !m.synthesized.empty()) {
    return LLMC_OK;
  }
  const auto &tensors = m.reader->tensors();
  try {
    for (size_t i = 0; i < tensors.size(); ++i) {
      m.synthesized.push_back(std::make_unique<PageBuffer<uint8_t>>());
      m.synthesized.back()->assign(tensors[i].size);
    }
  } catch (const std::bad_alloc &) {
    m.synthesized.clear();
    return fail(LLMC_ERROR_OUT_OF_MEMORY,
                "out of memory for the synthesized weights");
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> outOfMemory{false};
  auto work = [&] {
    try {
      for (size_t i = next++; i < tensors.size() && !outOfMemory; i = next++) {
        const artifact::TensorRef &t = tensors[i];
        synth::fillTensor(synth::tensorKey(i, m.reader->syntheticSeed()),
                          static_cast<int32_t>(t.format), t.groupSize,
                          t.asymmetric, t.shape, m.synthesized[i]->data());
      }
    } catch (const std::bad_alloc &) {
      outOfMemory = true; // a fill's row buffer
    }
  };
  std::vector<std::thread> helpers;
  for (int k = 1; k < threads; ++k) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error &) {
      break; // fewer helpers: this thread fills the rest
    }
  }
  work();
  for (std::thread &t : helpers) {
    t.join();
  }
  if (outOfMemory) {
    m.synthesized.clear();
    return fail(LLMC_ERROR_OUT_OF_MEMORY,
                "out of memory while synthesizing the weights");
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    m.weights[i] = m.synthesized[i]->data();
    if (i < m.evalWeights.size()) {
      m.evalWeights[i].data = m.weights[i];
    }
  }
  return LLMC_OK;
}

/// A session on the GPU backend this executable registered.
llmc_status createGpuSession(llmc_session &s, int64_t ctx, bool kvHalf) {
  const llmc_model &m = *s.model;
  if (m.evaluator || m.program->target != LLMC_TARGET_CUDA) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                "--device cuda needs a program compiled with --target cuda "
                "(this one runs on the CPU only)");
  }
  if (!registeredBackend) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                "this executable was built without the CUDA backend");
  }
  gpu::SessionSpec spec;
  spec.program = m.program;
  for (const artifact::TensorRef &t : m.reader->tensors()) {
    spec.tensors.push_back({t.data, t.size, static_cast<int32_t>(t.format),
                            t.groupSize, t.asymmetric ? 1 : 0, t.shape});
  }
  spec.seed = m.reader->syntheticSeed();
  spec.cache = m.cache;
  spec.ctx = ctx;
  spec.vocab = m.info.vocab_size;
  spec.maxTokens = m.info.max_tokens;
  spec.kvHalf = kvHalf;
  if (const fb::Program *p = m.reader->root().program(); p && p->ops()) {
    for (const fb::Op *o : *p->ops()) {
      if (o->kind() == fb::OpKind::Attention) {
        spec.maxHeads = std::max<int64_t>(spec.maxHeads, o->num_heads());
      }
    }
  }
  std::string error;
  s.gpu = registeredBackend(spec, error);
  if (!s.gpu) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT, error);
  }
  s.exec.gpu = s.gpu.get();
  s.exec.ctx = ctx;
  s.device = s.gpu->deviceName();
  return LLMC_OK;
}

std::string shapeText(const std::vector<int64_t> &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(s[i]);
  }
  return out + "]";
}

std::string formatText(int32_t format, int32_t group, int32_t asym) {
  static const char *names[] = {"f32",   "f16",   "bf16", "q8",   "q4",
                                "s24",   "s24q8", "s24q4", "q8x8", "q4x8",
                                "f16x16"};
  std::string s = format >= 0 && format <= LLMC_FORMAT_F16X16 ? names[format]
                                             : "format " + std::to_string(format);
  if (group > 0) {
    s += "<g" + std::to_string(group) + (asym ? ", asym>" : ">");
  }
  return s;
}

/// A compiled program declares the storage and shape of every tensor it
/// reads (weights[i]) and its cache layout; the artifact must match it.
llmc_status checkTensorsAgainstProgram(const llmc_model &m,
                                       const llmc_program &p) {
  const std::string &path = m.reader->path();
  const auto &tensors = m.reader->tensors();
  if (p.num_weights != tensors.size()) {
    return fail(LLMC_ERROR_FORMAT,
                path + ": the compiled program reads " +
                    std::to_string(p.num_weights) + " tensors, the artifact has " +
                    std::to_string(tensors.size()) +
                    " (another model, or compiled with other options)");
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const artifact::TensorRef &t = tensors[i];
    const llmc_weight_desc &d = p.weights[i];
    std::vector<int64_t> want(d.shape, d.shape + (d.rank == 1 ? 1 : 2));
    int32_t fmt = static_cast<int32_t>(t.format);
    if (fmt != d.format || t.groupSize != d.group ||
        (t.asymmetric ? 1 : 0) != d.asym || t.shape != want) {
      return fail(LLMC_ERROR_FORMAT,
                  path + ": tensor " + std::to_string(i) + " '" +
                      std::string(t.name) + "' is " +
                      formatText(fmt, t.groupSize, t.asymmetric) + " " +
                      shapeText(t.shape) + ", the compiled program reads " +
                      formatText(d.format, d.group, d.asym) + " " +
                      shapeText(want));
    }
  }
  if (p.fingerprint != m.fingerprint) {
    return fail(LLMC_ERROR_FORMAT,
                path + ": these weights do not match the compiled program "
                       "(another model, or compiled with other options)");
  }
  return LLMC_OK;
}

/// The artifact's op list as the evaluator takes it.
eval::Program programOf(const fb::Program &p) {
  eval::Program out;
  out.numValues = p.num_values();
  out.output = p.output();
  if (p.cache()) {
    for (const fb::CacheLayer *c : *p.cache()) {
      out.cache.push_back({c->kv_heads(), c->head_dim()});
    }
  }
  if (p.ops()) {
    for (const fb::Op *o : *p.ops()) {
      eval::Op op;
      op.kind = static_cast<eval::OpKind>(o->kind());
      if (o->inputs()) {
        op.inputs.assign(o->inputs()->begin(), o->inputs()->end());
      }
      if (o->results()) {
        op.results.assign(o->results()->begin(), o->results()->end());
      }
      if (o->widths()) {
        op.widths.assign(o->widths()->begin(), o->widths()->end());
      }
      op.weight = o->weight();
      op.bias = o->bias();
      op.heads = o->num_heads();
      op.kvHeads = o->num_kv_heads();
      op.headDim = o->head_dim();
      op.layer = o->layer();
      op.eps = o->eps();
      op.theta = o->theta();
      op.norm = o->norm();
      op.swigluBlock = o->swiglu_block();
      out.ops.push_back(std::move(op));
    }
  }
  return out;
}

/// Weight bytes a decode step reads: whole tensors, except one row of a
/// table that only embedding lookups read.
uint64_t bytesPerToken(const llmc_model &m, const fb::Program *p) {
  const auto &tensors = m.reader->tensors();
  if (!p || !p->ops()) {
    return m.reader->weightBytes();
  }
  std::vector<int> use(tensors.size(), 0); // 1: lookup only, 2: read whole
  for (const fb::Op *o : *p->ops()) {
    int how = o->kind() == fb::OpKind::Embedding ? 1 : 2;
    for (int32_t idx : {o->weight(), o->bias(), o->norm()}) {
      if (idx >= 0 && static_cast<size_t>(idx) < tensors.size()) {
        use[idx] = std::max(use[idx], how);
      }
    }
  }
  uint64_t bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (use[i] == 2) {
      bytes += tensors[i].size;
    } else if (use[i] == 1 && !tensors[i].shape.empty() &&
               tensors[i].shape[0] > 0) {
      bytes += tensors[i].size / static_cast<uint64_t>(tensors[i].shape[0]);
    }
  }
  return bytes;
}

} // namespace

namespace gpu {
void setGpuBackend(CreateSession create) { registeredBackend = create; }
} // namespace gpu

llmc_status fail(llmc_status status, const std::string &message) {
  lastError = message;
  return status;
}

} // namespace llmc

using namespace llmc;

extern "C" {

const char *llmc_last_error(void) { return lastError.c_str(); }

const llmc_program *llmc_reference_program(void) { return &kReferenceProgram; }

llmc_status llmc_model_load(const char *path, const llmc_program *program,
                            int verify_weights, llmc_model **out) {
  *out = nullptr;
  if (!program || program->abi_version != LLMC_PROGRAM_ABI_VERSION) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                "the program was built for another runtime ABI");
  }
  std::string error;
  auto reader = artifact::Reader::open(path, error, verify_weights != 0);
  if (!reader) {
    return fail(error.find("cannot open") != std::string::npos ? LLMC_ERROR_IO
                                                               : LLMC_ERROR_FORMAT,
                error);
  }
  auto m = std::make_unique<llmc_model>();
  const fb::Artifact &root = reader->root();
  const fb::ModelConfig &c = *root.config();
  m->info.vocab_size = c.vocab_size();
  m->info.hidden_size = c.hidden_size();
  m->info.num_layers = c.num_layers();
  m->info.max_seq_len = c.max_seq_len();
  m->info.bos_token_id = c.bos_token_id();
  m->info.eos_token_id =
      c.eos_token_ids() && c.eos_token_ids()->size() > 0 ? c.eos_token_ids()->Get(0) : -1;
  m->info.weight_bytes = reader->weightBytes();
  m->info.artifact_bytes = reader->size();
  m->info.synthetic_weights = reader->synthetic() ? 1 : 0;
  if (m->info.vocab_size <= 0 || m->info.hidden_size <= 0 ||
      m->info.num_layers <= 0 || m->info.max_seq_len <= 0) {
    return fail(LLMC_ERROR_FORMAT,
                std::string(path) + ": the artifact's model config is invalid");
  }

  std::vector<artifact::TensorSignature> sigs;
  for (const artifact::TensorRef &t : reader->tensors()) {
    m->weights.push_back(t.data);
    sigs.push_back({std::string(t.name), static_cast<int32_t>(t.format),
                    t.groupSize, t.asymmetric, t.shape});
  }
  m->fingerprint = artifact::tensorTableFingerprint(sigs);
  m->program = program;
  m->reader = std::move(reader);
  const fb::Program *stored = root.program();
  m->info.bytes_per_token = bytesPerToken(*m, stored);
  // The program as data is checked for every artifact, compiled or not: it
  // ties the config's vocabulary (which sizes the logits and bounds token
  // ids) to the embedding table and the LM head, op by op.
  if (!stored) {
    return fail(LLMC_ERROR_FORMAT,
                std::string(path) +
                    ": the artifact carries no program (written by an older "
                    "llmc; compile it again)");
  }
  eval::Evaluator ev(programOf(*stored));
  for (const artifact::TensorRef &t : m->reader->tensors()) {
    m->evalWeights.push_back({t.data, static_cast<int32_t>(t.format),
                              t.groupSize, t.asymmetric ? 1 : 0, t.shape});
  }
  std::string bad = ev.validate(m->evalWeights, m->info.vocab_size);
  if (!bad.empty()) {
    return fail(LLMC_ERROR_FORMAT,
                std::string(path) + ": the artifact's program is invalid: " + bad);
  }
  m->cache = ev.program().cache;
  if (program == &kReferenceProgram) {
    m->evaluator.emplace(std::move(ev));
    m->info.max_tokens =
        std::min<int64_t>(program->max_tokens, m->info.max_seq_len);
  } else {
    m->evalWeights.clear();
    if (llmc_status s = checkTensorsAgainstProgram(*m, *program)) {
      return s;
    }
    // The compiled code's cache layout is the one it was built with; it must
    // be the artifact's (a layer without attention has 0 heads).
    bool same = program->num_cache_layers ==
                static_cast<int64_t>(m->cache.size());
    for (size_t l = 0; same && l < m->cache.size(); ++l) {
      same = program->cache_layers[l].kv_heads == m->cache[l].kv_heads &&
             program->cache_layers[l].head_dim == m->cache[l].head_dim;
    }
    if (!same) {
      return fail(LLMC_ERROR_FORMAT,
                  std::string(path) + ": the compiled program's KV-cache "
                                      "layout differs from the artifact's");
    }
    m->info.max_tokens = program->max_tokens;
  }

  if (const fb::Tokenizer *tk = root.tokenizer()) {
    std::string problem;
    if (!llmc::tokenizerFromArtifact(*tk, m->tokenizer, problem)) {
      return fail(LLMC_ERROR_FORMAT, std::string(path) + ": " + problem);
    }
  }
  m->info.add_bos = m->tokenizer ? m->tokenizer->options().addBos : 1;
  *out = m.release();
  return LLMC_OK;
}

void llmc_model_release(llmc_model *model) { delete model; }

void llmc_model_get_info(const llmc_model *model, llmc_model_info *out) {
  *out = model->info;
}

uint64_t llmc_model_fingerprint(const llmc_model *model) {
  return model->fingerprint;
}

llmc_status llmc_tokenize(const llmc_model *model, const char *text,
                          size_t length, int add_bos, int32_t *ids,
                          int64_t capacity, int64_t *count) {
  if (!model->tokenizer) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT, "the artifact has no tokenizer");
  }
  std::vector<int32_t> v = model->tokenizer->encode(std::string_view(text, length));
  if (add_bos) {
    v.insert(v.begin(), model->info.bos_token_id);
  }
  *count = static_cast<int64_t>(v.size());
  for (int64_t i = 0; i < capacity && i < *count; ++i) {
    ids[i] = v[i];
  }
  return LLMC_OK;
}

const char *llmc_token_text(const llmc_model *model, int32_t id, int after_bos,
                            size_t *length) {
  tokenText = model->tokenizer ? model->tokenizer->decodePiece(id, after_bos != 0)
                               : std::string();
  *length = tokenText.size();
  return tokenText.c_str();
}

llmc_status llmc_session_create(llmc_model *model,
                                const llmc_session_options *options,
                                llmc_session **out) {
  *out = nullptr;
  int threads = options ? options->threads : 0;
  if (threads <= 0) {
    threads = static_cast<int>(std::thread::hardware_concurrency());
    threads = threads > 0 ? threads : 1;
  }
  int64_t ctx = options && options->context > 0 ? options->context
                                                : model->info.max_seq_len;
  if (ctx > model->info.max_seq_len) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                "context " + std::to_string(ctx) +
                    " exceeds the model's compiled maximum of " +
                    std::to_string(model->info.max_seq_len));
  }
  const int kv = options ? options->kv_cache : LLMC_KV_DEFAULT;
  if (kv != LLMC_KV_DEFAULT && kv != LLMC_KV_F16 && kv != LLMC_KV_F32) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                "unknown KV cache format " + std::to_string(kv));
  }
  const int device = options ? options->device : LLMC_DEVICE_CPU;
  if (device != LLMC_DEVICE_CPU && device != LLMC_DEVICE_CUDA) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                "unknown device " + std::to_string(device));
  }
  auto s = std::make_unique<llmc_session>();
  s->model = model;
  if (device == LLMC_DEVICE_CUDA) {
    if (llmc_status st = createGpuSession(*s, ctx, kv != LLMC_KV_F32)) {
      return st;
    }
    try {
      s->logits.assign(static_cast<size_t>(model->info.max_tokens *
                                           model->info.vocab_size));
    } catch (const std::bad_alloc &) {
      return fail(LLMC_ERROR_OUT_OF_MEMORY, "out of memory for the logits");
    }
    *out = s.release();
    return LLMC_OK;
  }
  if (llmc_status st = synthesizeOnHost(*model, threads)) {
    return st;
  }
  try {
    s->pool = std::make_unique<ThreadPool>(threads);
    s->exec.init(s->pool.get(), &kernels::bestKernels(), model->cache, ctx,
                 /*half=*/kv != LLMC_KV_F32);
    s->logits.assign(static_cast<size_t>(model->info.max_tokens *
                                         model->info.vocab_size));
  } catch (const std::bad_alloc &) {
    return fail(LLMC_ERROR_OUT_OF_MEMORY,
                "out of memory for a " + std::to_string(ctx) +
                    "-token KV cache");
  } catch (const std::exception &e) {
    // e.g. std::system_error when the OS refuses another thread
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                std::string("cannot start the session: ") + e.what());
  }
  if (!model->evaluator && model->program->arena_bytes > 0) {
    size_t bytes = (model->program->arena_bytes + 63) / 64 * 64;
    s->arena = std::aligned_alloc(64, bytes);
    if (!s->arena) {
      return fail(LLMC_ERROR_OUT_OF_MEMORY, "out of memory for the arena");
    }
  }
  *out = s.release();
  return LLMC_OK;
}

void llmc_session_release(llmc_session *session) {
  if (session) {
    std::free(session->arena);
    delete session;
  }
}

namespace {

/// llmc_session_prefill; with `argmaxOnly`, the LM head of each one-row call
/// on the CPU keeps the argmax in s->exec.argmax and writes no logits.
llmc_status runPrefill(llmc_session *s, const int32_t *tokens, int64_t n,
                       int64_t logits_rows, bool argmaxOnly) {
  const llmc_model &m = *s->model;
  if (n <= 0) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT, "prefill needs at least one token");
  }
  if (logits_rows < 1 || logits_rows > n || logits_rows > m.info.max_tokens) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT,
                "logits_rows must be in [1, min(n, " +
                    std::to_string(m.info.max_tokens) + ")]");
  }
  if (s->position + n > s->exec.ctx) {
    return fail(LLMC_ERROR_CONTEXT_FULL,
                "context full: " + std::to_string(s->position) + " + " +
                    std::to_string(n) + " tokens exceed the context of " +
                    std::to_string(s->exec.ctx));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= m.info.vocab_size) {
      return fail(LLMC_ERROR_INVALID_ARGUMENT,
                  "token id " + std::to_string(tokens[i]) +
                      " is outside the vocabulary of " +
                      std::to_string(m.info.vocab_size));
    }
  }
  // Chunks of at most max_tokens, the short one first, so the last chunk
  // holds every row whose logits are kept.
  const int64_t maxTokens = m.info.max_tokens;
  int64_t chunk = n % maxTokens == 0 ? std::min(n, maxTokens) : n % maxTokens;
  for (int64_t done = 0; done < n; done += chunk, chunk = maxTokens) {
    bool last = done + chunk == n;
    int64_t rows = last ? logits_rows : 1;
    // A GPU head finds its argmax on the device, from the logits.
    s->exec.argmaxOnly = argmaxOnly && !s->gpu;
    s->exec.argmax = -1;
    if (s->gpu) {
      std::string error;
      if (!s->gpu->forward(&s->exec, tokens + done, chunk, s->position, rows,
                           error)) {
        return fail(LLMC_ERROR_INVALID_ARGUMENT, error);
      }
      s->logitsOnHost = false;
    } else if (m.evaluator) {
      m.evaluator->forward(&s->exec, m.evalWeights, tokens + done, chunk,
                           s->position, rows, s->logits.data());
    } else {
      m.program->forward(&s->exec, m.weights.data(), s->arena, tokens + done,
                         chunk, s->position, rows, s->logits.data());
    }
    s->exec.argmaxOnly = false;
    s->position += chunk;
    // No logits were written when the head kept the argmax alone.
    s->logitsRows = s->exec.argmax >= 0 ? 0 : rows;
  }
  return LLMC_OK;
}

} // namespace

llmc_status llmc_session_prefill(llmc_session *s, const int32_t *tokens,
                                 int64_t n, int64_t logits_rows) {
  return runPrefill(s, tokens, n, logits_rows, false);
}

llmc_status llmc_session_prefill_argmax(llmc_session *s, const int32_t *tokens,
                                        int64_t n, int32_t *token) {
  if (llmc_status st = runPrefill(s, tokens, n, 1, true)) {
    return st;
  }
  if (s->exec.argmax >= 0) {
    *token = s->exec.argmax;
    return LLMC_OK;
  }
  // A GPU session: its head wrote the logits, and the argmax is found on
  // the device.
  return llmc_session_argmax(s, token);
}

llmc_status llmc_session_decode(llmc_session *session, int32_t token) {
  return llmc_session_prefill(session, &token, 1, 1);
}

const float *llmc_session_logits(const llmc_session *session, int64_t *rows) {
  *rows = session->logitsRows;
  if (session->logitsRows <= 0) {
    fail(LLMC_ERROR_INVALID_ARGUMENT,
         session->exec.argmax >= 0
             ? "no logits: the last call kept the argmax alone "
               "(llmc_session_prefill_argmax)"
             : "no logits yet: prefill first");
    return nullptr;
  }
  if (!session->logitsOnHost) {
    // The logits stay on the GPU until asked for (greedy decoding never
    // asks: llmc_session_argmax runs there).
    auto *s = const_cast<llmc_session *>(session);
    std::string error;
    if (!s->gpu->logits(s->logits.data(), s->logitsRows, error)) {
      fail(LLMC_ERROR_INVALID_ARGUMENT, error);
      return nullptr;
    }
    s->logitsOnHost = true;
  }
  return session->logits.data();
}

llmc_status llmc_session_argmax(llmc_session *s, int32_t *token) {
  if (s->logitsRows <= 0 && s->exec.argmax >= 0) {
    *token = s->exec.argmax; // llmc_session_prefill_argmax kept it
    return LLMC_OK;
  }
  if (s->logitsRows <= 0) {
    return fail(LLMC_ERROR_INVALID_ARGUMENT, "no logits yet: prefill first");
  }
  if (s->gpu && !s->logitsOnHost) {
    std::string error;
    if (!s->gpu->argmax(token, error)) {
      return fail(LLMC_ERROR_INVALID_ARGUMENT, error);
    }
    return LLMC_OK;
  }
  const int64_t vocab = s->model->info.vocab_size;
  const float *row = s->logits.data() + (s->logitsRows - 1) * vocab;
  int32_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (row[i] > row[best]) {
      best = static_cast<int32_t>(i);
    }
  }
  *token = best;
  return LLMC_OK;
}

const char *llmc_session_device(const llmc_session *session) {
  return session->device.c_str();
}

int64_t llmc_session_position(const llmc_session *session) {
  return session->position;
}

void llmc_session_reset(llmc_session *session) { session->position = 0; }

} // extern "C"
