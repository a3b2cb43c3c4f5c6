// The fused kernels of --fuse (llmc_k_linear_fused, llmc_k_lm_head, llmc_k_attention_rope) against the unfused
// kernels they replace, in every weight format and on every kernel table this CPU has.
#include "runtime/core/evaluator.h"
#include "runtime/core/exec.h"
#include "runtime/kernels/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace llmc;
using namespace llmc::kernels;

namespace {

std::vector<float> randomVec(size_t n, std::mt19937 &rng, float lo = -1.0f,
                             float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float &x : v) {
    x = d(rng);
  }
  return v;
}

struct Format {
  const char *name;
  int32_t format;
  int32_t group;
  bool asym;
};

const Format kFormats[] = {
    {"f32", LLMC_FORMAT_F32, 0, false},     {"f16", LLMC_FORMAT_F16, 0, false},
    {"bf16", LLMC_FORMAT_BF16, 0, false},   {"q8", LLMC_FORMAT_Q8, 32, false},
    {"q4", LLMC_FORMAT_Q4, 32, false},      {"q4a", LLMC_FORMAT_Q4, 64, true},
    {"q8x8", LLMC_FORMAT_Q8X8, 32, false},  {"q4x8", LLMC_FORMAT_Q4X8, 64, false},
    {"f16x16", LLMC_FORMAT_F16X16, 0, false}, {"s24", LLMC_FORMAT_S24, 0, false},
};

/// `rows` x `k` row-major floats stored in `f` (2:4 formats get two zeros
/// in every run of four first).
std::vector<uint8_t> store(const Format &f, std::vector<float> w, int64_t rows,
                           int64_t k) {
  std::vector<uint8_t> out;
  switch (f.format) {
  case LLMC_FORMAT_F32:
    out.resize(w.size() * 4);
    std::memcpy(out.data(), w.data(), out.size());
    return out;
  case LLMC_FORMAT_F16:
  case LLMC_FORMAT_BF16:
  case LLMC_FORMAT_F16X16: {
    std::vector<uint16_t> h(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      h[i] = f.format == LLMC_FORMAT_BF16 ? floatToBF16(w[i]) : floatToHalf(w[i]);
    }
    out.resize(h.size() * 2);
    if (f.format == LLMC_FORMAT_F16X16) {
      interleaveF16Rows(h.data(), rows, k, reinterpret_cast<uint16_t *>(out.data()));
    } else {
      std::memcpy(out.data(), h.data(), out.size());
    }
    return out;
  }
  case LLMC_FORMAT_S24: {
    const size_t rb = sparseRowBytes(f.format, k);
    out.resize(rb * rows);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < k; ++c) {
        if (c % 4 == (r + c / 4) % 4 || c % 4 == (r + c / 4 + 2) % 4) {
          w[r * k + c] = 0.0f;
        }
      }
      EXPECT_TRUE(packSparseRow(w.data() + r * k, k, f.format, out.data() + r * rb));
    }
    return out;
  }
  default: {
    const int32_t base = rowFormat(f.format);
    const size_t rb = quantRowBytes(base, k, f.group, f.asym);
    std::vector<uint8_t> rowMajor(rb * rows);
    for (int64_t r = 0; r < rows; ++r) {
      quantizeRow(w.data() + r * k, k, base, f.group, f.asym,
                  rowMajor.data() + r * rb);
    }
    if (base == f.format) {
      return rowMajor;
    }
    out.resize(rowMajor.size());
    interleaveRows(rowMajor.data(), rows, k, f.format, f.group, out.data());
    return out;
  }
  }
}

/// Every kernel table this CPU runs.
std::vector<const KernelTable *> tables() {
  std::vector<const KernelTable *> t = {&genericKernels()};
  for (const KernelTable *s : {avx2Kernels(), avx512Kernels()}) {
    if (s) {
      t.push_back(s);
    }
  }
  return t;
}

struct Exec {
  Exec(int threads, const KernelTable &k) : pool(threads) {
    e.init(&pool, &k, {{2, 8}}, 64);
  }
  ThreadPool pool;
  llmc_exec e;
};

float silu(float x) { return x / (1.0f + std::exp(-x)); }

} // namespace

// The norm in the input stage computes what llmc_k_rms_norm followed by the
// product computes, bit for bit (the same row arithmetic; q8/q4 quantize
// the same normalized floats).
TEST(FusedKernels, NormInTheInputStageEqualsNormThenLinear) {
  std::mt19937 rng(21);
  for (const KernelTable *kt : tables()) {
    for (int threads : {1, 2}) {
      Exec ex(threads, *kt);
      for (const Format &f : kFormats) {
        for (int64_t n : {1, 5, 70}) {
          const int64_t in = 100, out = 40;
          auto w = randomVec(out * in, rng);
          auto bytes = store(f, w, out, in);
          auto x = randomVec(n * in, rng, -3.0f, 3.0f);
          auto g = randomVec(in, rng, 0.5f, 1.5f);
          auto bias = randomVec(out, rng);
          std::vector<float> normed(n * in), y1(n * out), y2(n * out);
          llmc_k_rms_norm(&ex.e, x.data(), n, in, g.data(), LLMC_FORMAT_F32,
                          1e-5f, normed.data());
          llmc_k_linear(&ex.e, normed.data(), n, in, bytes.data(), f.format,
                        f.group, f.asym, out, bias.data(), LLMC_FORMAT_F32,
                        y1.data());
          float *ys[] = {y2.data()};
          const int64_t widths[] = {out};
          llmc_k_linear_fused(&ex.e, x.data(), n, in, bytes.data(), f.format,
                              f.group, f.asym, out, bias.data(),
                              LLMC_FORMAT_F32, g.data(), LLMC_FORMAT_F32,
                              1e-5f, nullptr, 0, 1, widths, ys);
          for (int64_t i = 0; i < n * out; ++i) {
            ASSERT_EQ(y1[i], y2[i]) << kt->name << " " << f.name << " n=" << n
                                    << " threads=" << threads << " at " << i;
          }
        }
      }
    }
  }
}

// The LM head with its norm: the logits of llmc_k_rms_norm then
// llmc_k_linear, bit for bit; asked for the argmax alone (one row), it
// returns the first id of the largest of those logits and writes none.
TEST(FusedKernels, LMHeadNormAndArgmaxEqualNormLinearThenScan) {
  std::mt19937 rng(27);
  for (const KernelTable *kt : tables()) {
    for (int threads : {1, 2}) {
      Exec ex(threads, *kt);
      for (const Format &f : kFormats) {
        for (int64_t n : {1, 3}) {
          for (int64_t vocab : {40, 517}) {
            const int64_t in = 96;
            auto w = randomVec(vocab * in, rng);
            auto bytes = store(f, w, vocab, in);
            auto x = randomVec(n * in, rng, -3.0f, 3.0f);
            auto g = randomVec(in, rng, 0.5f, 1.5f);
            std::vector<float> normed(n * in), y1(n * vocab), y2(n * vocab);
            llmc_k_rms_norm(&ex.e, x.data(), n, in, g.data(), LLMC_FORMAT_F32,
                            1e-5f, normed.data());
            llmc_k_linear(&ex.e, normed.data(), n, in, bytes.data(), f.format,
                          f.group, f.asym, vocab, nullptr, 0, y1.data());
            llmc_k_lm_head(&ex.e, x.data(), n, in, bytes.data(), f.format,
                           f.group, f.asym, vocab, g.data(), LLMC_FORMAT_F32,
                           1e-5f, y2.data());
            ASSERT_EQ(y1, y2) << kt->name << " " << f.name << " n=" << n;
            // The argmax of the last row, alone.
            const float *last = y1.data() + (n - 1) * vocab;
            int32_t want = 0;
            for (int64_t j = 1; j < vocab; ++j) {
              if (last[j] > last[want]) {
                want = static_cast<int32_t>(j);
              }
            }
            std::vector<float> untouched(vocab, -7.0f);
            ex.e.argmaxOnly = true;
            ex.e.argmax = -1;
            llmc_k_lm_head(&ex.e, x.data() + (n - 1) * in, 1, in, bytes.data(),
                           f.format, f.group, f.asym, vocab, g.data(),
                           LLMC_FORMAT_F32, 1e-5f, untouched.data());
            ex.e.argmaxOnly = false;
            EXPECT_EQ(ex.e.argmax, want) << kt->name << " " << f.name
                                         << " vocab=" << vocab
                                         << " threads=" << threads;
            EXPECT_EQ(untouched, std::vector<float>(vocab, -7.0f));
          }
        }
      }
    }
  }
}

// Ties go to the first id, within a thread's rows and across threads (the
// product is large enough to be split).
TEST(FusedKernels, LMHeadArgmaxTakesTheFirstOfEqualLogits) {
  Exec ex(2, genericKernels());
  const int64_t in = 32, vocab = 3000;
  std::vector<float> w(vocab * in, 0.0f);
  for (int64_t j : {2500, 1499, 1501, 1700}) {
    w[j * in] = 1.0f; // the same largest logit, on both sides of the middle
  }
  std::vector<float> x(in, 0.0f), logits(vocab);
  x[0] = 2.0f;
  ex.e.argmaxOnly = true;
  ex.e.argmax = -1;
  llmc_k_lm_head(&ex.e, x.data(), 1, in, w.data(), LLMC_FORMAT_F32, 0, 0, vocab,
                 nullptr, 0, 0.0f, logits.data());
  EXPECT_EQ(ex.e.argmax, 1499);
}

// The residual epilogue: (x · Wᵀ) + r, the add the program did after the
// product, bit for bit.
TEST(FusedKernels, ResidualEpilogueEqualsLinearThenAdd) {
  std::mt19937 rng(22);
  for (const KernelTable *kt : tables()) {
    Exec ex(2, *kt);
    for (const Format &f : kFormats) {
      for (int64_t n : {1, 3, 70}) {
        const int64_t in = 64, out = 172;
        auto bytes = store(f, randomVec(out * in, rng), out, in);
        auto x = randomVec(n * in, rng);
        auto r = randomVec(n * out, rng, -5.0f, 5.0f);
        std::vector<float> y1(n * out), y2(n * out);
        llmc_k_linear(&ex.e, x.data(), n, in, bytes.data(), f.format, f.group,
                      f.asym, out, nullptr, 0, y1.data());
        float *ys[] = {y2.data()};
        const int64_t widths[] = {out};
        llmc_k_linear_fused(&ex.e, x.data(), n, in, bytes.data(), f.format,
                            f.group, f.asym, out, nullptr, 0, nullptr, 0, 0.0f,
                            r.data(), 0, 1, widths, ys);
        for (int64_t i = 0; i < n * out; ++i) {
          ASSERT_EQ(y1[i] + r[i], y2[i]) << kt->name << " " << f.name
                                         << " n=" << n << " at " << i;
        }
      }
    }
  }
}

// SwiGLU as the epilogue: the weight's gate and up rows reordered into
// blocks (as llm-fuse-swiglu stores them), the result silu(gate) * up of
// the unfused gate and up products. Widths with a short last block, every
// block size the verifier takes, a bias, norm and SwiGLU together.
TEST(FusedKernels, SwiGLUEpilogueEqualsSiluTimesUp) {
  std::mt19937 rng(23);
  for (const KernelTable *kt : tables()) {
    for (int threads : {1, 2}) {
      Exec ex(threads, *kt);
      for (const Format &f : kFormats) {
        for (int64_t ffn : {40, 172}) {
          for (int64_t block : {16, 64}) {
            for (int64_t n : {1, 9}) {
              const int64_t in = 64;
              auto gate = randomVec(ffn * in, rng);
              auto up = randomVec(ffn * in, rng);
              std::vector<float> both(gate);
              both.insert(both.end(), up.begin(), up.end());
              std::vector<float> blocked;
              for (int64_t k = 0; k < ffn; k += block) {
                const int64_t b = std::min(block, ffn - k);
                blocked.insert(blocked.end(), gate.begin() + k * in,
                               gate.begin() + (k + b) * in);
                blocked.insert(blocked.end(), up.begin() + k * in,
                               up.begin() + (k + b) * in);
              }
              auto plain = store(f, both, 2 * ffn, in);
              auto fused = store(f, blocked, 2 * ffn, in);
              auto x = randomVec(n * in, rng, -2.0f, 2.0f);
              auto g = randomVec(in, rng, 0.5f, 1.5f);
              auto bias = randomVec(2 * ffn, rng);
              std::vector<float> blockedBias;
              for (int64_t k = 0; k < ffn; k += block) {
                const int64_t b = std::min(block, ffn - k);
                blockedBias.insert(blockedBias.end(), bias.begin() + k,
                                   bias.begin() + k + b);
                blockedBias.insert(blockedBias.end(), bias.begin() + ffn + k,
                                   bias.begin() + ffn + k + b);
              }
              std::vector<float> normed(n * in), gy(n * ffn), uy(n * ffn),
                  y(n * ffn);
              llmc_k_rms_norm(&ex.e, x.data(), n, in, g.data(),
                              LLMC_FORMAT_F32, 1e-5f, normed.data());
              float *split[] = {gy.data(), uy.data()};
              const int64_t halves[] = {ffn, ffn};
              llmc_k_linear_split(&ex.e, normed.data(), n, in, plain.data(),
                                  f.format, f.group, f.asym, 2 * ffn,
                                  bias.data(), LLMC_FORMAT_F32, 2, halves,
                                  split);
              float *ys[] = {y.data()};
              const int64_t widths[] = {ffn};
              llmc_k_linear_fused(&ex.e, x.data(), n, in, fused.data(),
                                  f.format, f.group, f.asym, 2 * ffn,
                                  blockedBias.data(), LLMC_FORMAT_F32,
                                  g.data(), LLMC_FORMAT_F32, 1e-5f, nullptr,
                                  block, 1, widths, ys);
              for (int64_t i = 0; i < n * ffn; ++i) {
                const float want = silu(gy[i]) * uy[i];
                // Rows meet other rows in the kernels' tiles than before
                // the reordering: the sums may associate differently.
                ASSERT_NEAR(want, y[i], 1e-5f * (1.0f + std::fabs(want)))
                    << kt->name << " " << f.name << " ffn=" << ffn
                    << " block=" << block << " n=" << n
                    << " threads=" << threads << " at " << i;
              }
            }
          }
        }
      }
    }
  }
}

// RoPE in the attention's input stage: the same keys enter the cache and
// the same outputs come out as rope, rope, attention. A prefill of 5, then
// two decode steps, per-layer head counts, f32 and f16 caches.
TEST(FusedKernels, AttentionWithRoPEEqualsRoPEThenAttention) {
  std::mt19937 rng(24);
  for (const KernelTable *kt : tables()) {
    for (bool half : {false, true}) {
      const int64_t heads = 4, kvHeads = 2, hd = 8, ctx = 16;
      ThreadPool pool(2);
      llmc_exec a, b;
      a.init(&pool, kt, {{kvHeads, hd}}, ctx, half);
      b.init(&pool, kt, {{kvHeads, hd}}, ctx, half);
      int64_t start = 0;
      for (int64_t n : {5, 1, 1}) {
        auto q = randomVec(n * heads * hd, rng);
        auto k = randomVec(n * kvHeads * hd, rng);
        auto v = randomVec(n * kvHeads * hd, rng);
        std::vector<float> qr(q.size()), kr(k.size()), o1(q.size()), o2(q.size());
        llmc_k_rope(&a, q.data(), qr.data(), n, heads, hd, 10000.0f, start);
        llmc_k_rope(&a, k.data(), kr.data(), n, kvHeads, hd, 10000.0f, start);
        llmc_k_attention(&a, 0, qr.data(), kr.data(), v.data(), n, start, heads,
                         kvHeads, hd, o1.data());
        llmc_k_attention_rope(&b, 0, q.data(), k.data(), v.data(), n, start,
                              heads, kvHeads, hd, 10000.0f, o2.data());
        for (size_t i = 0; i < o1.size(); ++i) {
          ASSERT_EQ(o1[i], o2[i]) << kt->name << (half ? " f16" : " f32")
                                  << " start=" << start << " at " << i;
        }
        start += n;
      }
    }
  }
}

// An artifact's op list carries the fusions too; the loader's check refuses
// what the kernels could not run (a bad SwiGLU block, a norm of another
// width, a residual of another width) with the op and the reason.
TEST(FusedKernels, TheOpListCheckRefusesBadFusions) {
  using namespace llmc::eval;
  const int64_t vocab = 8, d = 16, f = 32;
  std::vector<float> data(4096, 0.5f);
  auto weight = [&](std::vector<int64_t> shape) {
    Weight w;
    w.data = data.data();
    w.shape = std::move(shape);
    return w;
  };
  // 0: embedding table (tied LM head), 1: gate/up in SwiGLU blocks, 2: down,
  // 3: a norm of the right width, 4: one of another width.
  std::vector<Weight> weights = {weight({vocab, d}), weight({2 * f, d}),
                                 weight({d, f}), weight({d}), weight({d + 1})};
  auto program = [&](auto edit) {
    Program p;
    Op emb;
    emb.kind = OpKind::Embedding;
    emb.weight = 0;
    emb.results = {0};
    emb.widths = {d};
    Op gu;
    gu.kind = OpKind::Linear;
    gu.weight = 1;
    gu.norm = 3;
    gu.eps = 1e-5f;
    gu.swigluBlock = 16;
    gu.inputs = {0};
    gu.results = {1};
    gu.widths = {f};
    Op down;
    down.kind = OpKind::Linear;
    down.weight = 2;
    down.inputs = {1, 0}; // the residual: the embedding's rows
    down.results = {2};
    down.widths = {d};
    Op head;
    head.kind = OpKind::LMHead;
    head.weight = 0;
    head.inputs = {2};
    head.results = {3};
    head.widths = {vocab};
    p.ops = {emb, gu, down, head};
    p.numValues = 4;
    p.output = 3;
    edit(p);
    return Evaluator(p).validate(weights, vocab);
  };
  EXPECT_EQ(program([](Program &) {}), "");
  EXPECT_EQ(program([](Program &p) { p.ops[1].swigluBlock = 8; }),
            "op 1 (linear): SwiGLU needs one result, no residual and a block "
            "of 16, 32, 48 or 64 rows");
  EXPECT_EQ(program([](Program &p) { p.ops[1].norm = 4; }),
            "op 1 (linear): its fused norm needs a float [16] weight and a "
            "positive eps");
  EXPECT_EQ(program([](Program &p) { p.ops[1].eps = 0.0f; }),
            "op 1 (linear): its fused norm needs a float [16] weight and a "
            "positive eps");
  EXPECT_EQ(program([](Program &p) { p.ops[2].inputs = {1, 1}; }),
            "op 2 (linear): its residual must be one input of its result's "
            "width");
  EXPECT_EQ(program([](Program &p) { p.ops[1].swigluBlock = 0; }),
            "op 1 (linear): weight must be [32, 16]");
}
