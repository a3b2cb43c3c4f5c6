// The C API: loading a model, binding its program, sessions, tokenization.
#include "runtime/artifact/fingerprint.h"
#include "runtime/core/model.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

namespace llmc {

namespace {
thread_local std::string lastError;
thread_local std::string tokenText;

// The reference program has no compiled code; sessions recognize it by address.
const llmc_program kReferenceProgram = {LLMC_PROGRAM_ABI_VERSION, 0, 0, 512, 0,
                                        nullptr, nullptr};

std::string shapeText(const std::vector<int64_t> &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    out += (i ? ", " : "") + std::to_string(s[i]);
  }
  return out + "]";
}

/// Every buffer the runtime sizes (KV cache, logits, token checks) comes
/// from the artifact's config, and the compiled code's constants from the
/// tensor table it was fingerprinted against: the two must agree, tensor by
/// tensor, and the reference program reads the tensors by these names.
llmc_status checkTensorsAgainstConfig(const llmc_model &m) {
  const int64_t D = m.info.hidden_size, F = m.intermediateSize,
                Q = m.numHeads * m.headDim, K = m.numKvHeads * m.headDim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> need = {
      {"model.embed_tokens.weight", {m.info.vocab_size, D}},
      {"model.norm.weight", {D}}};
  if (!m.tied) {
    need.push_back({"lm_head.weight", {m.info.vocab_size, D}});
  }
  for (int64_t l = 0; l < m.info.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    need.push_back({p + "input_layernorm.weight", {D}});
    need.push_back({p + "post_attention_layernorm.weight", {D}});
    need.push_back({p + "self_attn.q_proj.weight", {Q, D}});
    need.push_back({p + "self_attn.k_proj.weight", {K, D}});
    need.push_back({p + "self_attn.v_proj.weight", {K, D}});
    need.push_back({p + "self_attn.o_proj.weight", {D, Q}});
    need.push_back({p + "mlp.gate_proj.weight", {F, D}});
    need.push_back({p + "mlp.up_proj.weight", {F, D}});
    need.push_back({p + "mlp.down_proj.weight", {D, F}});
  }
  const std::string extra =
      "model.layers." + std::to_string(m.info.num_layers) + ".input_layernorm.weight";
  if (m.reader->find(extra)) {
    return fail(LLMC_ERROR_FORMAT, m.reader->path() + ": the config says " +
                                       std::to_string(m.info.num_layers) +
                                       " layers but the artifact has more");
  }
  for (const auto &[name, shape] : need) {
    const artifact::TensorRef *t = m.reader->find(name);
    if (!t) {
      return fail(LLMC_ERROR_FORMAT,
                  m.reader->path() + ": missing tensor '" + name + "'");
    }
    if (t->shape != shape) {
      return fail(LLMC_ERROR_FORMAT, m.reader->path() + ": tensor '" + name +
                                         "' has shape " + shapeText(t->shape) +
                                         ", expected " + shapeText(shape));
    }
    bool isFloat = t->format == fb::StorageFormat::F32 ||
                   t->format == fb::StorageFormat::F16 ||
                   t->format == fb::StorageFormat::BF16;
    if (!isFloat && shape.size() == 1) {
      return fail(LLMC_ERROR_FORMAT, m.reader->path() + ": norm weight '" +
                                         name + "' must be stored as a float");
    }
  }
  return LLMC_OK;
}

RefWeight refWeight(const llmc_model &m, const std::string &name) {
  const artifact::TensorRef *t = m.reader->find(name);
  return {t->data, static_cast<int32_t>(t->format), t->groupSize,
          t->asymmetric ? 1 : 0};
}

/// The reference evaluator's view of an artifact, by Hugging Face names.
RefModel referenceModelOf(const llmc_model &m) {
  RefModel r;
  r.hidden = m.info.hidden_size;
  r.ffn = m.intermediateSize;
  r.heads = m.numHeads;
  r.kvHeads = m.numKvHeads;
  r.headDim = m.headDim;
  r.vocab = m.info.vocab_size;
  r.eps = m.rmsNormEps;
  r.theta = m.ropeTheta;
  r.embed = refWeight(m, "model.embed_tokens.weight");
  r.finalNorm = refWeight(m, "model.norm.weight");
  r.lmHead = m.tied ? r.embed : refWeight(m, "lm_head.weight");
  for (int64_t l = 0; l < m.info.num_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    RefLayer L;
    L.inputNorm = refWeight(m, p + "input_layernorm.weight");
    L.postNorm = refWeight(m, p + "post_attention_layernorm.weight");
    L.q = refWeight(m, p + "self_attn.q_proj.weight");
    L.k = refWeight(m, p + "self_attn.k_proj.weight");
    L.v = refWeight(m, p + "self_attn.v_proj.weight");
    L.o = refWeight(m, p + "self_attn.o_proj.weight");
    L.gate = refWeight(m, p + "mlp.gate_proj.weight");
    L.up = refWeight(m, p + "mlp.up_proj.weight");
    L.down = refWeight(m, p + "mlp.down_proj.weight");
    r.layers.push_back(L);
  }
  return r;
}

} // namespace

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
  m->intermediateSize = c.intermediate_size();
  m->numHeads = c.num_heads();
  m->numKvHeads = c.num_kv_heads();
  m->headDim = c.head_dim();
  m->rmsNormEps = static_cast<float>(c.rms_norm_eps());
  m->ropeTheta = static_cast<float>(c.rope_theta());
  m->tied = c.tie_word_embeddings();
  if (m->info.vocab_size <= 0 || m->info.hidden_size <= 0 ||
      m->info.num_layers <= 0 || m->info.max_seq_len <= 0 ||
      m->numHeads <= 0 || m->numKvHeads <= 0 || m->headDim <= 0 ||
      m->numHeads % m->numKvHeads != 0) {
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
  for (const artifact::TensorRef &t : m->reader->tensors()) {
    if (!(t.name == "model.embed_tokens.weight" && !m->tied)) {
      m->info.bytes_per_token += t.size;
    }
  }
  m->reference = program == &kReferenceProgram;
  if (llmc_status s = checkTensorsAgainstConfig(*m)) {
    return s;
  }
  if (m->reference) {
    m->ref = referenceModelOf(*m);
  } else if (program->fingerprint != m->fingerprint ||
             program->num_weights != m->weights.size()) {
    return fail(LLMC_ERROR_FORMAT,
                std::string(path) +
                    ": these weights do not match the compiled program (another "
                    "model, or compiled with other options)");
  }
  m->info.max_tokens = m->reference
                           ? std::min<int64_t>(program->max_tokens, m->info.max_seq_len)
                           : program->max_tokens;

  if (const fb::Tokenizer *tk = root.tokenizer()) {
    if (!tk->pieces() || !tk->scores() || !tk->types() ||
        tk->pieces()->size() != tk->scores()->size() ||
        tk->pieces()->size() != tk->types()->size()) {
      return fail(LLMC_ERROR_FORMAT,
                  std::string(path) + ": the tokenizer tables disagree in size");
    }
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::vector<Tokenizer::Type> types;
    for (flatbuffers::uoffset_t i = 0; i < tk->pieces()->size(); ++i) {
      pieces.push_back(tk->pieces()->Get(i)->str());
      scores.push_back(tk->scores()->Get(i));
      types.push_back(static_cast<Tokenizer::Type>(tk->types()->Get(i)));
    }
    Tokenizer::Options o;
    o.unkId = tk->unk_id();
    o.bosId = tk->bos_id();
    o.eosId = tk->eos_id();
    o.addDummyPrefix = tk->add_dummy_prefix();
    o.removeExtraWhitespaces = tk->remove_extra_whitespaces();
    o.byteFallback = tk->byte_fallback();
    m->tokenizer.emplace(std::move(pieces), std::move(scores),
                         std::move(types), o);
  }
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
  auto s = std::make_unique<llmc_session>();
  s->model = model;
  try {
    s->pool = std::make_unique<ThreadPool>(threads);
    s->exec.init(s->pool.get(), &kernels::bestKernels(), model->info.num_layers,
                 model->numKvHeads, model->headDim, ctx);
    s->logits.resize(static_cast<size_t>(model->info.max_tokens *
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
  if (!model->reference && model->program->arena_bytes > 0) {
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

llmc_status llmc_session_prefill(llmc_session *s, const int32_t *tokens,
                                 int64_t n, int64_t logits_rows) {
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
    if (m.reference) {
      referenceForward(m.ref, &s->exec, tokens + done, chunk, s->position,
                       rows, s->logits.data());
    } else {
      m.program->forward(&s->exec, m.weights.data(), s->arena, tokens + done,
                         chunk, s->position, rows, s->logits.data());
    }
    s->position += chunk;
    s->logitsRows = rows;
  }
  return LLMC_OK;
}

llmc_status llmc_session_decode(llmc_session *session, int32_t token) {
  return llmc_session_prefill(session, &token, 1, 1);
}

const float *llmc_session_logits(const llmc_session *session, int64_t *rows) {
  *rows = session->logitsRows;
  return session->logits.data();
}

int64_t llmc_session_position(const llmc_session *session) {
  return session->position;
}

void llmc_session_reset(llmc_session *session) { session->position = 0; }

} // extern "C"
