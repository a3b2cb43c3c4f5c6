// The sampler: greedy, or temperature with top-k and top-p, from a seeded xorshift generator.
#include "llmc/runtime.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <numeric>
#include <vector>

struct llmc_sampler {
  llmc_sampler_options opts;
  uint64_t state;
  std::vector<int32_t> order;
  std::vector<float> probs;

  double uniform() {
    // xorshift64*, top 53 bits as a double in [0, 1).
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t r = state * 0x2545F4914F6CDD1Dull;
    return static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0);
  }
};

extern "C" llmc_status llmc_sampler_create(const llmc_sampler_options *options,
                                           llmc_sampler **out) {
  llmc_sampler *s = new (std::nothrow) llmc_sampler();
  if (!s) {
    return LLMC_ERROR_OUT_OF_MEMORY;
  }
  s->opts = *options;
  s->state = options->seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  if (s->state == 0) {
    s->state = 1;
  }
  *out = s;
  return LLMC_OK;
}

extern "C" void llmc_sampler_release(llmc_sampler *sampler) { delete sampler; }

extern "C" int32_t llmc_sampler_sample(llmc_sampler *s, const float *logits,
                                       int64_t vocab) {
  if (s->opts.temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) -
                                logits);
  }
  s->order.resize(static_cast<size_t>(vocab));
  std::iota(s->order.begin(), s->order.end(), 0);
  int64_t keep = vocab;
  if (s->opts.top_k > 0 && s->opts.top_k < vocab) {
    keep = s->opts.top_k;
  }
  // Highest logits first; ties by lower id, so the order is deterministic.
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  };
  std::partial_sort(s->order.begin(), s->order.begin() + keep, s->order.end(),
                    better);
  s->probs.resize(static_cast<size_t>(keep));
  float mx = logits[s->order[0]];
  double sum = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    s->probs[i] = std::exp((logits[s->order[i]] - mx) / s->opts.temperature);
    sum += s->probs[i];
  }
  if (s->opts.top_p > 0.0f && s->opts.top_p < 1.0f) {
    double cum = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cum += s->probs[i] / sum;
      if (cum >= s->opts.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = 0.0;
    for (int64_t i = 0; i < keep; ++i) {
      sum += s->probs[i];
    }
  }
  double r = s->uniform() * sum, acc = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += s->probs[i];
    if (r < acc) {
      return s->order[i];
    }
  }
  return s->order[keep - 1];
}
