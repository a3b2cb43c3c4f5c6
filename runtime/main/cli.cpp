// Generation, perplexity and benchmarking from the command line, over the C API.
#include "runtime/main/cli.h"

#include "llmc/runtime.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace llmc {

namespace {

struct Options {
  std::string prompt;
  bool promptGiven = false;
  std::vector<int32_t> promptIds; // --prompt-ids: the prompt as token ids
  int64_t steps = 256;
  float temperature = 0.0f;
  int topK = 0;
  float topP = 1.0f;
  uint64_t seed = 0;
  int threads = 0;
  int64_t ctx = 0;
  int kvCache = LLMC_KV_DEFAULT;
  std::string weights;
  std::string perplexityFile;
  std::string tokenizeFile;
  int64_t pplTokens = 0;
  bool pplBos = false;
  std::string klReference;
  bool bench = false;
  int64_t benchPrefill = 128;
  int64_t benchDecode = 128;
  int benchReps = 5;
  bool json = false;
  bool verifyWeights = false;
  bool printIds = false;
  bool printLogits = false;
  int device = -1; // --device; -1: the program's target
};

const char *kUsage =
    "usage: %s [options]\n"
    "\n"
    "Generation (default: greedy from BOS, 256 tokens, stops at EOS):\n"
    "  -p, --prompt TEXT     prompt to continue\n"
    "  -f, --prompt-file F   the prompt is the bytes of file F (newlines kept;\n"
    "                        for chat templates)\n"
    "  -n, --steps N         tokens to generate (default 256)\n"
    "  --temp T              sampling temperature; 0 is greedy (default 0)\n"
    "  --top-k K             keep the K most likely tokens (default 0: off)\n"
    "  --top-p P             nucleus sampling threshold (default 1: off)\n"
    "  --seed S              sampler seed (default 0)\n"
    "  --ids                 print token ids instead of text\n"
    "  --prompt-ids I,J,...  the prompt as token ids (no BOS added), for\n"
    "                        models without a tokenizer\n"
    "\n"
    "Quality:\n"
    "  --perplexity FILE     perplexity of FILE: the whole file is tokenized\n"
    "                        (no BOS) and cut into non-overlapping windows of\n"
    "                        --ctx tokens; tokens 1..ctx-1 of each are scored\n"
    "  --ppl-tokens N        use only the first N tokens of FILE (default all)\n"
    "  --ppl-bos             windows of BOS + ctx-1 tokens, all ctx-1 scored\n"
    "  --kl-reference FILE   with --perplexity: also the KL divergence from the\n"
    "                        model in artifact FILE (run by the reference\n"
    "                        evaluator) and the top-1 agreement with it\n"
    "  --logits              with -p: print the logits of every prompt position\n"
    "  --tokenize FILE       print the token ids of each line of FILE (no BOS),\n"
    "                        one line of ids per line; nothing is run\n"
    "\n"
    "Speed:\n"
    "  --bench               time prefill and decode; print tokens/s, peak memory\n"
    "  --bench-prefill N     prompt tokens for --bench (default 128)\n"
    "  --bench-decode N      generated tokens for --bench (default 128)\n"
    "  --bench-reps N        repetitions; the median is reported (default 5)\n"
    "  --json                print the --bench or --perplexity result as JSON\n"
    "\n"
    "Runtime:\n"
    "  --threads N           worker threads (default: one per core)\n"
    "  --device cpu|cuda     where to run (default: cuda for a program compiled\n"
    "                        with --target cuda, else cpu)\n"
    "  --kv-cache f16|f32    KV cache element type (default f16: half the\n"
    "                        memory; f32 is exact)\n"
    "  --ctx N               context length (default: the compiled maximum)\n"
    "  --weights FILE        read the weights artifact from FILE\n"
    "  --verify-weights      check every tensor's checksum when loading\n"
    "  -h, --help            this help\n";

int usageError(const char *argv0, const std::string &message) {
  std::fprintf(stderr, "%s: error: %s\n", argv0, message.c_str());
  std::fprintf(stderr, "run '%s --help' for the options\n", argv0);
  return 2;
}

bool parseInt(const char *s, int64_t &out) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno || !end || *end || end == s) {
    return false;
  }
  out = v;
  return true;
}

bool parseFloat(const char *s, float &out) {
  char *end = nullptr;
  errno = 0;
  out = std::strtof(s, &end);
  return !errno && end && !*end && end != s && std::isfinite(out);
}

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Peak resident memory of this process image. VmHWM belongs to the address
/// space, which execve replaces; getrusage's ru_maxrss would carry over the
/// peak of whatever process exec'ed us (a Python harness, say).
double peakRssMiB() {
  if (std::FILE *f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      long kb;
      if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
        std::fclose(f);
        return static_cast<double>(kb) / 1024.0;
      }
    }
    std::fclose(f);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

int apiError(const char *argv0) {
  std::fprintf(stderr, "%s: error: %s\n", argv0, llmc_last_error());
  return 1;
}

/// The ids of `text`; false (with llmc_last_error set) if the artifact has
/// no tokenizer.
bool tokenize(llmc_model *model, const std::string &text, bool bos,
              std::vector<int32_t> &ids) {
  int64_t count = 0;
  if (llmc_tokenize(model, text.data(), text.size(), bos, nullptr, 0, &count)) {
    return false;
  }
  ids.resize(static_cast<size_t>(count));
  return llmc_tokenize(model, text.data(), text.size(), bos, ids.data(), count,
                       &count) == LLMC_OK;
}

/// log p(target | row) in double precision.
double logProb(const float *row, int64_t vocab, int32_t target) {
  float mx = *std::max_element(row, row + vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    sum += std::exp(static_cast<double>(row[i]) - mx);
  }
  return static_cast<double>(row[target]) - mx - std::log(sum);
}

/// Log-softmax of one row, in double precision.
void logSoftmax(const float *row, int64_t vocab, std::vector<double> &out) {
  out.resize(static_cast<size_t>(vocab));
  float mx = *std::max_element(row, row + vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    sum += std::exp(static_cast<double>(row[i]) - mx);
  }
  double lse = mx + std::log(sum);
  for (int64_t i = 0; i < vocab; ++i) {
    out[i] = static_cast<double>(row[i]) - lse;
  }
}

/// `s` as a JSON string's contents: quotes, backslashes and control
/// characters escaped (a file name may hold any of them).
std::string jsonEscape(const std::string &s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

/// Set by the first SIGINT (Ctrl-C): the generation, perplexity and bench
/// loops stop at the next token or window, finish their output and exit
/// 130; a second SIGINT ends the process at once.
volatile std::sig_atomic_t interrupted = 0;

extern "C" void onInterrupt(int) {
  interrupted = 1;
  std::signal(SIGINT, SIG_DFL);
}

int interruptedExit(const char *argv0, const std::string &what) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: interrupted%s\n", argv0, what.c_str());
  return 130;
}

/// Output that could not be written (a full disk, a closed pipe,
/// /dev/full) is a failure, not a silent exit 0.
int finishOutput(const char *argv0, int rc) {
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "%s: error: cannot write the output: %s\n", argv0,
                 std::strerror(errno));
    return rc ? rc : 1;
  }
  return rc;
}

int runTokenize(const char *argv0, llmc_model *model, const std::string &file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return usageError(argv0, file + ": cannot read: " + std::strerror(errno));
  }
  std::string line;
  std::vector<int32_t> ids;
  while (std::getline(in, line)) {
    if (!tokenize(model, line, false, ids)) {
      return apiError(argv0);
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      std::printf(i ? " %d" : "%d", ids[i]);
    }
    std::printf("\n");
  }
  return 0;
}

int runPerplexity(const char *argv0, llmc_model *model, llmc_session *session,
                  const llmc_model_info &info, const Options &o, int64_t ctx) {
  // The reference model for KL divergence and top-1 agreement.
  llmc_model *refModel = nullptr;
  llmc_session *refSession = nullptr;
  if (!o.klReference.empty()) {
    if (llmc_model_load(o.klReference.c_str(), llmc_reference_program(), 0,
                        &refModel)) {
      return apiError(argv0);
    }
    llmc_model_info ri;
    llmc_model_get_info(refModel, &ri);
    if (ri.synthetic_weights) {
      llmc_model_release(refModel);
      return usageError(argv0, "--kl-reference " + o.klReference +
                                   ": its weights are random (compiled with "
                                   "--random-weights)");
    }
    // The reference is the uncompressed model with an exact (f32) cache.
    llmc_session_options so = {o.threads, ctx, LLMC_KV_F32};
    if (ri.vocab_size != info.vocab_size ||
        llmc_session_create(refModel, &so, &refSession)) {
      std::string why = ri.vocab_size != info.vocab_size
                            ? o.klReference + ": its vocabulary differs"
                            : std::string(llmc_last_error());
      llmc_model_release(refModel);
      return usageError(argv0, why);
    }
  }
  struct Release {
    llmc_model *m;
    llmc_session *s;
    ~Release() {
      llmc_session_release(s);
      llmc_model_release(m);
    }
  } release{refModel, refSession};
  double kl = 0.0;
  int64_t agree = 0;
  std::vector<double> lp, lq;
  // Both models score the same chunks: the smaller of their per-call limits.
  int64_t maxChunk = info.max_tokens;
  if (refModel) {
    llmc_model_info ri;
    llmc_model_get_info(refModel, &ri);
    maxChunk = std::min(maxChunk, ri.max_tokens);
  }
  std::ifstream in(o.perplexityFile, std::ios::binary);
  if (!in) {
    return usageError(argv0, o.perplexityFile + ": cannot read: " +
                                 std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<int32_t> ids;
  if (!tokenize(model, ss.str(), false, ids)) {
    return apiError(argv0);
  }
  const int64_t fileTokens = static_cast<int64_t>(ids.size());
  int64_t usable = o.pplTokens > 0 ? std::min(o.pplTokens, fileTokens) : fileTokens;
  const int64_t textPerWindow = o.pplBos ? ctx - 1 : ctx;
  const int64_t windows = usable / textPerWindow;
  if (windows == 0) {
    return usageError(argv0, o.perplexityFile + ": " + std::to_string(usable) +
                                 " tokens is less than one window of " +
                                 std::to_string(textPerWindow));
  }
  double nll = 0.0;
  int64_t scored = 0;
  std::vector<int32_t> window(static_cast<size_t>(ctx));
  double t0 = now();
  for (int64_t w = 0; w < windows; ++w) {
    if (interrupted) {
      return interruptedExit(argv0, " after " + std::to_string(w) + " of " +
                                        std::to_string(windows) + " windows");
    }
    window.clear();
    if (o.pplBos) {
      window.push_back(info.bos_token_id);
    }
    window.insert(window.end(), ids.begin() + w * textPerWindow,
                  ids.begin() + (w + 1) * textPerWindow);
    llmc_session_reset(session);
    const int64_t len = static_cast<int64_t>(window.size());
    for (int64_t b = 0; b < len - 1; b += maxChunk) {
      int64_t chunk = std::min(maxChunk, len - 1 - b);
      if (llmc_session_prefill(session, window.data() + b, chunk, chunk)) {
        return apiError(argv0);
      }
      int64_t rows;
      const float *lg = llmc_session_logits(session, &rows);
      if (!lg) {
        return apiError(argv0);
      }
      const float *ref = nullptr;
      if (refSession) {
        if (b == 0) {
          llmc_session_reset(refSession);
        }
        if (llmc_session_prefill(refSession, window.data() + b, chunk, chunk)) {
          return apiError(argv0);
        }
        ref = llmc_session_logits(refSession, &rows);
      }
      for (int64_t r = 0; r < chunk; ++r) {
        const float *row = lg + r * info.vocab_size;
        nll -= logProb(row, info.vocab_size, window[b + r + 1]);
        ++scored;
        if (ref) {
          const float *rrow = ref + r * info.vocab_size;
          logSoftmax(rrow, info.vocab_size, lp);
          logSoftmax(row, info.vocab_size, lq);
          for (int64_t v = 0; v < info.vocab_size; ++v) {
            kl += std::exp(lp[v]) * (lp[v] - lq[v]);
          }
          agree += std::max_element(rrow, rrow + info.vocab_size) - rrow ==
                   std::max_element(row, row + info.vocab_size) - row;
        }
      }
    }
    if (!o.json && isatty(2)) {
      std::fprintf(stderr, "\rperplexity: window %lld/%lld",
                   static_cast<long long>(w + 1),
                   static_cast<long long>(windows));
    }
  }
  double seconds = now() - t0;
  if (!o.json && isatty(2)) {
    std::fprintf(stderr, "\n");
  }
  double mean = nll / static_cast<double>(scored);
  if (o.json) {
    std::printf("{\"file\": \"%s\", \"file_tokens\": %lld, \"ctx\": %lld, "
                "\"bos\": %s, \"windows\": %lld, \"tokens_used\": %lld, "
                "\"scored\": %lld, \"mean_nll\": %.6f, \"ppl\": %.6f, "
                "\"seconds\": %.3f",
                jsonEscape(o.perplexityFile).c_str(),
                static_cast<long long>(fileTokens),
                static_cast<long long>(ctx), o.pplBos ? "true" : "false",
                static_cast<long long>(windows),
                static_cast<long long>(windows * textPerWindow),
                static_cast<long long>(scored), mean, std::exp(mean), seconds);
    if (refSession) {
      std::printf(", \"kl\": %.6f, \"top1\": %.6f", kl / scored,
                  static_cast<double>(agree) / scored);
    }
    std::printf("}\n");
  } else {
    std::printf("perplexity of %s\n", o.perplexityFile.c_str());
    std::printf("  protocol: whole file tokenized (%lld tokens), first %lld used "
                "as %lld non-overlapping windows of %lld, %s\n",
                static_cast<long long>(fileTokens),
                static_cast<long long>(windows * textPerWindow),
                static_cast<long long>(windows), static_cast<long long>(ctx),
                o.pplBos ? "each BOS + ctx-1 text tokens, all text tokens scored"
                         : "no BOS, tokens 1..ctx-1 of each window scored");
    std::printf("  scored tokens: %lld, mean NLL: %.6f nats\n",
                static_cast<long long>(scored), mean);
    std::printf("  perplexity: %.4f\n", std::exp(mean));
    if (refSession) {
      std::printf("  vs %s: KL divergence %.6f nats/token, top-1 agreement "
                  "%.2f%%\n",
                  o.klReference.c_str(), kl / scored,
                  100.0 * static_cast<double>(agree) / scored);
    }
    std::printf("  time: %.2f s (%.1f tokens/s)\n", seconds,
                static_cast<double>(windows * textPerWindow) / seconds);
  }
  return 0;
}

int runBench(const char *argv0, llmc_session *session,
             const llmc_model_info &info, const Options &o, int64_t ctx) {
  // Each against the context first: their sum could overflow.
  if (o.benchPrefill < 1 || o.benchDecode < 0 || o.benchPrefill > ctx ||
      o.benchDecode > ctx || o.benchPrefill + o.benchDecode > ctx) {
    return usageError(argv0, "--bench-prefill + --bench-decode must fit in the "
                             "context of " + std::to_string(ctx));
  }
  // Deterministic pseudo-random prompt ids (not BOS/EOS).
  std::vector<int32_t> prompt(static_cast<size_t>(o.benchPrefill));
  uint64_t x = 88172645463325252ull;
  for (int32_t &t : prompt) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t = static_cast<int32_t>(3 + x % static_cast<uint64_t>(info.vocab_size - 3));
  }
  std::vector<double> pre, dec;
  for (int r = 0; r < o.benchReps; ++r) {
    if (interrupted) {
      return interruptedExit(argv0, " after " + std::to_string(r) +
                                        " bench repetitions");
    }
    llmc_session_reset(session);
    double t0 = now();
    // Greedy steps, as generation takes them: the argmax alone (on a GPU
    // it waits for the device, so each step's time is whole).
    int32_t next = 3;
    if (llmc_session_prefill_argmax(session, prompt.data(), o.benchPrefill,
                                    &next)) {
      return apiError(argv0);
    }
    double t1 = now();
    for (int64_t i = 0; i < o.benchDecode; ++i) {
      if (llmc_session_prefill_argmax(session, &next, 1, &next)) {
        return apiError(argv0);
      }
    }
    double t2 = now();
    pre.push_back(static_cast<double>(o.benchPrefill) / (t1 - t0));
    if (o.benchDecode > 0) {
      dec.push_back(static_cast<double>(o.benchDecode) / (t2 - t1));
    }
  }
  auto median = [](std::vector<double> v) {
    if (v.empty()) {
      return 0.0;
    }
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  double p = median(pre), d = median(dec);
  double gb = static_cast<double>(info.bytes_per_token) / 1e9;
  if (o.json) {
    std::printf("{\"prefill_tokens\": %lld, \"decode_tokens\": %lld, "
                "\"reps\": %d, \"threads\": %d, \"prefill_tok_s\": %.3f, "
                "\"decode_tok_s\": %.3f, \"weight_bytes\": %llu, "
                "\"bytes_per_token\": %llu, \"decode_gb_s\": %.3f, "
                "\"peak_rss_mib\": %.1f, \"device\": \"%s\"}\n",
                static_cast<long long>(o.benchPrefill),
                static_cast<long long>(o.benchDecode), o.benchReps,
                o.threads > 0 ? o.threads
                              : static_cast<int>(std::thread::hardware_concurrency()),
                p, d, static_cast<unsigned long long>(info.weight_bytes),
                static_cast<unsigned long long>(info.bytes_per_token), d * gb,
                peakRssMiB(), llmc_session_device(session));
  } else {
    std::printf("bench: %d reps, median, on %s\n", o.benchReps,
                llmc_session_device(session));
    std::printf("  prefill %4lld tokens: %10.1f tokens/s\n",
                static_cast<long long>(o.benchPrefill), p);
    std::printf("  decode  %4lld tokens: %10.1f tokens/s (%.2f GB/s of weights read)\n",
                static_cast<long long>(o.benchDecode), d, d * gb);
    std::printf("  weights: %.1f MiB, %.1f MiB read per token, peak resident "
                "memory: %.1f MiB\n",
                static_cast<double>(info.weight_bytes) / (1024.0 * 1024.0),
                static_cast<double>(info.bytes_per_token) / (1024.0 * 1024.0),
                peakRssMiB());
  }
  return 0;
}

int runGenerate(const char *argv0, llmc_model *model, llmc_session *session,
                const llmc_model_info &info, const Options &o, int64_t ctx) {
  // --prompt-ids are taken as given (no BOS added); the session checks
  // each against the vocabulary.
  // A text prompt starts with BOS when the tokenizer says so; one that
  // tokenizes to nothing starts with BOS anyway (generation needs a first
  // token).
  std::vector<int32_t> ids = o.promptIds;
  bool bos = o.promptIds.empty() && info.add_bos;
  if (o.promptIds.empty() && !tokenize(model, o.prompt, bos, ids)) {
    return apiError(argv0);
  }
  if (ids.empty()) {
    ids.push_back(info.bos_token_id);
    bos = true;
  }
  if (static_cast<int64_t>(ids.size()) > ctx) {
    return usageError(argv0, "the prompt is " + std::to_string(ids.size()) +
                                 " tokens, longer than the context of " +
                                 std::to_string(ctx));
  }
  llmc_sampler_options so = {o.temperature, o.topK, o.topP, o.seed};
  llmc_sampler *sampler = nullptr;
  llmc_sampler_create(&so, &sampler);
  const int64_t n = static_cast<int64_t>(ids.size());
  int64_t rows = o.printLogits ? std::min(n, info.max_tokens) : 1;
  // Greedy decoding asks each step for the argmax alone: the CPU's LM head
  // finds it without writing the logits.
  const bool greedy = o.temperature <= 0.0f && !o.printLogits;
  int32_t greedyNext = 0;
  double t0 = now();
  if (greedy ? llmc_session_prefill_argmax(session, ids.data(), n, &greedyNext)
             : llmc_session_prefill(session, ids.data(), n, rows)) {
    llmc_sampler_release(sampler);
    return apiError(argv0);
  }
  double t1 = now();
  int64_t got = 0;
  const float *lg = nullptr;
  if (o.printLogits) {
    lg = llmc_session_logits(session, &got);
    if (!lg) {
      llmc_sampler_release(sampler);
      return apiError(argv0);
    }
    for (int64_t r = 0; r < got; ++r) {
      for (int64_t v = 0; v < info.vocab_size; ++v) {
        std::printf(v ? " %.6f" : "%.6f", lg[r * info.vocab_size + v]);
      }
      std::printf("\n");
    }
    llmc_sampler_release(sampler);
    return 0;
  }
  // Echo the prompt, then stream each new token as it is sampled.
  bool afterBos = true;
  for (int64_t i = bos ? 1 : 0; i < n; ++i) {
    size_t len;
    const char *s = llmc_token_text(model, ids[i], afterBos, &len);
    if (o.printIds) {
      std::printf("%d ", ids[i]);
    } else {
      std::fwrite(s, 1, len, stdout);
    }
    afterBos = false;
  }
  std::fflush(stdout);
  int64_t generated = 0;
  int64_t limit = std::min(o.steps, ctx - n);
  for (; generated < limit && !interrupted; ++generated) {
    int32_t next;
    if (greedy) {
      next = greedyNext;
    } else {
      lg = llmc_session_logits(session, &got);
      if (!lg) {
        llmc_sampler_release(sampler);
        return apiError(argv0);
      }
      next = llmc_sampler_sample(sampler, lg + (got - 1) * info.vocab_size,
                                 info.vocab_size);
    }
    if (next == info.eos_token_id) {
      break;
    }
    size_t len;
    const char *s = llmc_token_text(model, next, afterBos, &len);
    afterBos = false;
    if (o.printIds) {
      std::printf("%d ", next);
    } else {
      std::fwrite(s, 1, len, stdout);
    }
    std::fflush(stdout);
    if (generated + 1 < limit &&
        (greedy ? llmc_session_prefill_argmax(session, &next, 1, &greedyNext)
                : llmc_session_decode(session, next))) {
      llmc_sampler_release(sampler);
      return apiError(argv0);
    }
  }
  double t2 = now();
  std::printf("\n");
  std::fflush(stdout);
  if (interrupted) {
    llmc_sampler_release(sampler);
    return interruptedExit(argv0, " after " + std::to_string(generated) +
                                      " generated tokens");
  }
  std::fprintf(stderr,
               "prompt: %lld tokens, %.1f tokens/s; generated: %lld tokens, "
               "%.1f tokens/s; peak memory %.1f MiB\n",
               static_cast<long long>(n), static_cast<double>(n) / (t1 - t0),
               static_cast<long long>(generated),
               generated ? static_cast<double>(generated) / (t2 - t1) : 0.0,
               peakRssMiB());
  llmc_sampler_release(sampler);
  return 0;
}

} // namespace

int runCli(int argc, char **argv, const llmc_program *program, bool embedded) {
  const char *argv0 = argv[0];
  std::signal(SIGINT, onInterrupt);
  // Output past a file-size limit is a write error, reported at the end.
  std::signal(SIGXFSZ, SIG_IGN);
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *&out) {
      if (i + 1 >= argc) {
        return false;
      }
      out = argv[++i];
      return true;
    };
    const char *v = nullptr;
    int64_t iv;
    if (a == "-h" || a == "--help") {
      std::printf(kUsage, argv0);
      return 0;
    } else if (a == "-p" || a == "--prompt") {
      if (!value(v)) return usageError(argv0, a + " needs a value");
      o.prompt = v;
      o.promptGiven = true;
    } else if (a == "-f" || a == "--prompt-file") {
      if (!value(v)) return usageError(argv0, a + " needs a file");
      std::ifstream in(v, std::ios::binary);
      if (!in) {
        return usageError(argv0, std::string(v) + ": cannot read: " +
                                     std::strerror(errno));
      }
      o.prompt.assign(std::istreambuf_iterator<char>(in),
                      std::istreambuf_iterator<char>());
      o.promptGiven = true;
    } else if (a == "-n" || a == "--steps") {
      if (!value(v) || !parseInt(v, o.steps) || o.steps < 0)
        return usageError(argv0, a + " needs a non-negative integer");
    } else if (a == "--temp") {
      if (!value(v) || !parseFloat(v, o.temperature) || o.temperature < 0)
        return usageError(argv0, "--temp needs a number >= 0");
    } else if (a == "--top-k") {
      if (!value(v) || !parseInt(v, iv) || iv < 0 || iv > INT32_MAX)
        return usageError(argv0, "--top-k needs an integer in [0, 2147483647]");
      o.topK = static_cast<int>(iv);
    } else if (a == "--top-p") {
      if (!value(v) || !parseFloat(v, o.topP) || o.topP <= 0 || o.topP > 1)
        return usageError(argv0, "--top-p needs a number in (0, 1]");
    } else if (a == "--seed") {
      if (!value(v) || !parseInt(v, iv))
        return usageError(argv0, "--seed needs an integer");
      o.seed = static_cast<uint64_t>(iv);
    } else if (a == "--threads") {
      if (!value(v) || !parseInt(v, iv) || iv < 1 || iv > 1024)
        return usageError(argv0, "--threads needs an integer in [1, 1024]");
      o.threads = static_cast<int>(iv);
    } else if (a == "--ctx") {
      if (!value(v) || !parseInt(v, o.ctx) || o.ctx < 2)
        return usageError(argv0, "--ctx needs an integer >= 2");
    } else if (a == "--kv-cache") {
      if (!value(v) || (std::strcmp(v, "f16") != 0 && std::strcmp(v, "f32") != 0))
        return usageError(argv0, "--kv-cache needs f16 or f32");
      o.kvCache = std::strcmp(v, "f32") == 0 ? LLMC_KV_F32 : LLMC_KV_F16;
    } else if (a == "--device") {
      if (!value(v) || (std::strcmp(v, "cpu") != 0 && std::strcmp(v, "cuda") != 0))
        return usageError(argv0, "--device needs cpu or cuda");
      o.device = std::strcmp(v, "cuda") == 0 ? LLMC_DEVICE_CUDA : LLMC_DEVICE_CPU;
    } else if (a == "--weights") {
      if (!value(v)) return usageError(argv0, "--weights needs a file");
      o.weights = v;
    } else if (a == "--perplexity") {
      if (!value(v)) return usageError(argv0, "--perplexity needs a file");
      o.perplexityFile = v;
    } else if (a == "--ppl-tokens") {
      if (!value(v) || !parseInt(v, o.pplTokens) || o.pplTokens < 1)
        return usageError(argv0, "--ppl-tokens needs a positive integer");
    } else if (a == "--ppl-bos") {
      o.pplBos = true;
    } else if (a == "--kl-reference") {
      if (!value(v)) return usageError(argv0, "--kl-reference needs a file");
      o.klReference = v;
    } else if (a == "--bench") {
      o.bench = true;
    } else if (a == "--bench-prefill") {
      if (!value(v) || !parseInt(v, o.benchPrefill) || o.benchPrefill < 1)
        return usageError(argv0, "--bench-prefill needs a positive integer");
    } else if (a == "--bench-decode") {
      if (!value(v) || !parseInt(v, o.benchDecode) || o.benchDecode < 0)
        return usageError(argv0, "--bench-decode needs an integer >= 0");
    } else if (a == "--bench-reps") {
      if (!value(v) || !parseInt(v, iv) || iv < 1 || iv > 1000)
        return usageError(argv0, "--bench-reps needs an integer in [1, 1000]");
      o.benchReps = static_cast<int>(iv);
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--verify-weights") {
      o.verifyWeights = true;
    } else if (a == "--ids") {
      o.printIds = true;
    } else if (a == "--prompt-ids") {
      if (!value(v)) return usageError(argv0, "--prompt-ids needs ids");
      std::string item;
      std::stringstream ss(v);
      while (std::getline(ss, item, ',')) {
        int64_t id;
        if (!parseInt(item.c_str(), id) || id < 0 || id > INT32_MAX)
          return usageError(argv0, "--prompt-ids needs comma-separated token "
                                   "ids, got '" + item + "'");
        o.promptIds.push_back(static_cast<int32_t>(id));
      }
      if (o.promptIds.empty())
        return usageError(argv0, "--prompt-ids needs at least one id");
      o.promptGiven = true;
    } else if (a == "--logits") {
      o.printLogits = true;
    } else if (a == "--tokenize") {
      if (!value(v)) return usageError(argv0, "--tokenize needs a file");
      o.tokenizeFile = v;
    } else {
      return usageError(argv0, "unknown option '" + a + "'");
    }
  }
  // More workers than cores only wait on each other (64 threads on 2 cores
  // decode a thousand times slower): use the cores there are, and say so.
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores > 0 && o.threads > cores) {
    std::fprintf(stderr,
                 "%s: warning: --threads %d is more than the %d cores here; "
                 "using %d\n",
                 argv0, o.threads, cores, cores);
    o.threads = cores;
  }
  if (o.bench + !o.perplexityFile.empty() + !o.tokenizeFile.empty() > 1) {
    return usageError(argv0, "--bench, --perplexity and --tokenize are "
                             "separate runs");
  }
  if (!o.klReference.empty() && o.perplexityFile.empty()) {
    return usageError(argv0, "--kl-reference goes with --perplexity");
  }
  if (o.printLogits && !o.promptGiven) {
    return usageError(argv0, "--logits needs a prompt (-p or --prompt-ids)");
  }

  std::string path = o.weights;
  if (path.empty()) {
    if (!embedded) {
      return usageError(argv0, "--weights FILE is required");
    }
    path = "/proc/self/exe";
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
      path.assign(buf, static_cast<size_t>(n));
    }
    // Compiled with --weights FILE: the artifact lives beside the executable.
    if (program->default_weights && *program->default_weights) {
      std::string w = program->default_weights;
      if (w[0] != '/') {
        size_t slash = path.rfind('/');
        w = (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) +
            "/" + w;
      }
      path = w;
    }
  }
  llmc_model *model = nullptr;
  if (llmc_model_load(path.c_str(), program, o.verifyWeights, &model)) {
    return apiError(argv0);
  }
  llmc_model_info info;
  llmc_model_get_info(model, &info);
  if (!o.perplexityFile.empty() && info.synthetic_weights) {
    llmc_model_release(model);
    return usageError(argv0, "--perplexity: this model's weights are random "
                             "(compiled with --random-weights), so its "
                             "perplexity measures nothing; --bench measures "
                             "its speed");
  }
  if (!o.tokenizeFile.empty()) {
    int rc = runTokenize(argv0, model, o.tokenizeFile);
    llmc_model_release(model);
    return finishOutput(argv0, rc);
  }
  // A program compiled with --target cuda runs on the GPU unless told not to.
  int device = o.device >= 0 ? o.device
                             : (program->target == LLMC_TARGET_CUDA
                                    ? LLMC_DEVICE_CUDA
                                    : LLMC_DEVICE_CPU);
  llmc_session_options so = {o.threads, o.ctx, o.kvCache, device};
  llmc_session *session = nullptr;
  if (llmc_session_create(model, &so, &session)) {
    int rc = apiError(argv0);
    llmc_model_release(model);
    return rc;
  }
  int64_t ctx = o.ctx > 0 ? o.ctx : info.max_seq_len;
  int rc;
  if (!o.perplexityFile.empty()) {
    rc = runPerplexity(argv0, model, session, info, o, ctx);
  } else if (o.bench) {
    rc = runBench(argv0, session, info, o, ctx);
  } else {
    rc = runGenerate(argv0, model, session, info, o, ctx);
  }
  llmc_session_release(session);
  llmc_model_release(model);
  return finishOutput(argv0, rc);
}

} // namespace llmc
