// Block formats: quantization error bounds, dequantization, and every quantized dot (generic and AVX2).
#include "runtime/core/exec.h"
#include "runtime/kernels/kernels.h"
#include "runtime/kernels/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace llmc;
using namespace llmc::kernels;

namespace {

struct Format {
  int32_t format;
  int64_t group;
  bool asym;
  const char *name;
};

const Format kFormats[] = {{LLMC_FORMAT_Q8, 32, false, "q8g32"},
                           {LLMC_FORMAT_Q8, 128, false, "q8g128"},
                           {LLMC_FORMAT_Q4, 32, false, "q4g32"},
                           {LLMC_FORMAT_Q4, 128, false, "q4g128"},
                           {LLMC_FORMAT_Q4, 32, true, "q4g32a"},
                           {LLMC_FORMAT_Q4, 64, true, "q4g64a"}};

// Row lengths with padded last groups, like stories260K's 172.
const int64_t kLengths[] = {32, 64, 100, 172, 256, 300};

std::vector<float> randomVec(size_t n, std::mt19937 &rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float &x : v) {
    x = d(rng);
  }
  return v;
}

} // namespace

TEST(Quant, RoundTripErrorIsWithinAStep) {
  std::mt19937 rng(1);
  for (const Format &f : kFormats) {
    for (int64_t k : kLengths) {
      auto x = randomVec(k, rng);
      std::vector<uint8_t> q(quantRowBytes(f.format, k, f.group, f.asym));
      quantizeRow(x.data(), k, f.format, f.group, f.asym, q.data());
      std::vector<float> y(k);
      dequantizeRow(q.data(), k, f.format, f.group, f.asym, y.data());
      for (int64_t g0 = 0; g0 < k; g0 += f.group) {
        int64_t len = std::min(f.group, k - g0);
        float lo = x[g0], hi = x[g0], amax = 0;
        for (int64_t i = 0; i < len; ++i) {
          lo = std::min(lo, x[g0 + i]);
          hi = std::max(hi, x[g0 + i]);
          amax = std::max(amax, std::fabs(x[g0 + i]));
        }
        float step = f.format == LLMC_FORMAT_Q8 ? amax / 127
                     : f.asym                   ? (hi - lo) / 15
                                                : amax / 8;
        // Half a step, plus the f16 rounding of the scale (and of the min).
        // Symmetric q4 maps the extreme to -8, so values of the other sign
        // beyond 7 steps clamp: a full step there.
        float bound = (f.format == LLMC_FORMAT_Q4 && !f.asym ? 1.0f : 0.5f) * step +
                      4e-3f * amax + 1e-6f;
        for (int64_t i = 0; i < len; ++i) {
          ASSERT_LE(std::fabs(x[g0 + i] - y[g0 + i]), bound)
              << f.name << " k=" << k << " i=" << g0 + i;
        }
      }
    }
  }
}

TEST(Quant, BlockSizesMatchTheStructs) {
  EXPECT_EQ(quantBlockBytes(LLMC_FORMAT_Q8, 32, false), sizeof(BlockQ8G32));
  EXPECT_EQ(quantBlockBytes(LLMC_FORMAT_Q4, 32, false), sizeof(BlockQ4G32));
  EXPECT_EQ(quantBlockBytes(LLMC_FORMAT_Q4, 32, true), sizeof(BlockQ4AsymG32));
  EXPECT_EQ(quantRowBytes(LLMC_FORMAT_Q4, 172, 32, false), 6u * 18u);
  EXPECT_EQ(quantRowBytes(LLMC_FORMAT_Q8, 2048, 128, false), 16u * 130u);
}

// quantizeRow writes its blocks directly; it must be exactly groupParams,
// quantCode (the per-element definition GPTQ and AWQ also use) and
// packGroup, on every format and on rows with a padded last group, with
// ties, zeros and all-equal groups in the data.
TEST(Quant, QuantizeRowIsTheElementwiseDefinition) {
  std::mt19937 rng(11);
  for (const Format &f : kFormats) {
    for (int64_t k : kLengths) {
      for (int trial = 0; trial < 4; ++trial) {
        std::vector<float> x = randomVec(static_cast<size_t>(k), rng);
        if (trial == 1) {
          for (float &v : x) {
            v = std::round(v * 4.0f) / 4.0f; // many exact ties
          }
        } else if (trial == 2) {
          std::fill(x.begin(), x.begin() + std::min<int64_t>(k, 40), 0.0f);
        } else if (trial == 3) {
          std::fill(x.begin(), x.end(), -1.5f);
        }
        const size_t blockBytes = quantBlockBytes(f.format, f.group, f.asym);
        std::vector<uint8_t> want(quantRowBytes(f.format, k, f.group, f.asym));
        std::vector<int> codes(static_cast<size_t>(f.group));
        for (int64_t g0 = 0; g0 < k; g0 += f.group) {
          int64_t len = std::min(f.group, k - g0);
          GroupParams p = groupParams(x.data() + g0, len, f.format, f.asym);
          for (int64_t i = 0; i < f.group; ++i) {
            codes[i] = i < len ? quantCode(x[g0 + i], p, f.format, f.asym)
                               : paddingCode(f.format, f.asym);
          }
          packGroup(codes.data(), f.group, p, f.format, f.asym,
                    want.data() + (g0 / f.group) * blockBytes);
        }
        std::vector<uint8_t> got(want.size(), 0xAB);
        quantizeRow(x.data(), k, f.format, f.group, f.asym, got.data());
        EXPECT_EQ(got, want) << f.name << " k=" << k << " trial " << trial;
      }
    }
  }
}

TEST(Quant, ActivationsRoundTrip) {
  std::mt19937 rng(2);
  auto x = randomVec(100, rng);
  std::vector<ActBlock> a(4);
  quantizeActivations(x.data(), 100, 4, a.data());
  for (int64_t i = 0; i < 128; ++i) {
    float v = a[i / 32].d * a[i / 32].q[i % 32];
    if (i < 100) {
      EXPECT_NEAR(v, x[i], a[i / 32].d * 0.5f + 1e-6f);
    } else {
      EXPECT_EQ(a[i / 32].q[i % 32], 0); // padding
    }
  }
  for (const ActBlock &b : a) {
    int s = 0;
    for (int8_t q : b.q) {
      s += q;
    }
    EXPECT_FLOAT_EQ(b.sum, b.d * s);
  }
}

/// Every quantized dot equals the float dot of the dequantized weight row and
/// the dequantized activations (the integer math is exact).
TEST(Quant, DotsMatchDequantizedMath) {
  std::mt19937 rng(3);
  std::vector<const KernelTable *> tables = {&genericKernels()};
  for (const KernelTable *t : {avx2Kernels(), avx512Kernels()}) {
    if (t) {
      tables.push_back(t);
    }
  }
  for (const KernelTable *kt : tables) {
    for (const Format &f : kFormats) {
      for (int64_t k : kLengths) {
        const int64_t nb = (k + f.group - 1) / f.group * f.group / 32;
        auto w = randomVec(k, rng);
        std::vector<uint8_t> q(quantRowBytes(f.format, k, f.group, f.asym));
        quantizeRow(w.data(), k, f.format, f.group, f.asym, q.data());
        std::vector<float> wd(k);
        dequantizeRow(q.data(), k, f.format, f.group, f.asym, wd.data());
        for (int m = 1; m <= 4; ++m) {
          std::vector<ActBlock> a(nb * m);
          std::vector<double> ref(m, 0.0);
          for (int t = 0; t < m; ++t) {
            auto x = randomVec(k, rng);
            quantizeActivations(x.data(), k, nb, a.data() + t * nb);
            for (int64_t i = 0; i < k; ++i) {
              const ActBlock &b = a[t * nb + i / 32];
              ref[t] += double(wd[i]) * b.d * b.q[i % 32];
            }
          }
          float out[8];
          auto dot = f.format == LLMC_FORMAT_Q8 ? kt->dotQ8
                     : f.asym                   ? kt->dotQ4Asym
                                                : kt->dotQ4;
          // The same row twice: a 2-row tile gives both rows the same dots.
          std::vector<uint8_t> two(q);
          two.insert(two.end(), q.begin(), q.end());
          dot(two.data(), q.size(), 2, a.data(), nb, m, f.group, out);
          for (int i = 0; i < 2; ++i) {
            for (int t = 0; t < m; ++t) {
              ASSERT_NEAR(out[i * 4 + t], ref[t], 1e-3 * (1 + std::fabs(ref[t])))
                  << kt->name << " " << f.name << " k=" << k << " m=" << m;
            }
          }
        }
      }
    }
  }
}

class QuantSimd : public ::testing::TestWithParam<std::string> {
protected:
  /// The parameter's table, or nullptr with `why` set when the CPU lacks it.
  const KernelTable *table(std::string &why) const {
    const bool avx2 = GetParam() == "avx2";
    why = avx2 ? "this CPU has no AVX2/FMA/F16C"
               : "this CPU has no AVX-512 F/BW/VL with VNNI";
    return avx2 ? avx2Kernels() : avx512Kernels();
  }
};

INSTANTIATE_TEST_SUITE_P(Isa, QuantSimd, ::testing::Values("avx2", "avx512"),
                         [](const auto &info) { return info.param; });

TEST_P(QuantSimd, MatchesGeneric) {
  std::string why;
  const KernelTable *simd = table(why);
  if (!simd) {
    GTEST_SKIP() << why;
  }
  const KernelTable &gen = genericKernels();
  std::mt19937 rng(4);
  for (const Format &f : kFormats) {
    for (int64_t k : kLengths) {
      const int64_t nb = (k + f.group - 1) / f.group * f.group / 32;
      auto w = randomVec(k, rng);
      std::vector<uint8_t> q(quantRowBytes(f.format, k, f.group, f.asym));
      quantizeRow(w.data(), k, f.format, f.group, f.asym, q.data());
      std::vector<ActBlock> a(nb * 3);
      for (int t = 0; t < 3; ++t) {
        auto x = randomVec(k, rng);
        quantizeActivations(x.data(), k, nb, a.data() + t * nb);
      }
      // Two different rows, so a tile that mixed up its rows would show.
      auto w2 = randomVec(k, rng);
      std::vector<uint8_t> q2(q.size());
      quantizeRow(w2.data(), k, f.format, f.group, f.asym, q2.data());
      std::vector<uint8_t> rows(q);
      rows.insert(rows.end(), q2.begin(), q2.end());
      auto pick = [&](const KernelTable &t) {
        return f.format == LLMC_FORMAT_Q8 ? t.dotQ8 : f.asym ? t.dotQ4Asym : t.dotQ4;
      };
      for (int r = 1; r <= 2; ++r) {
        float g[8], v[8];
        pick(gen)(rows.data(), q.size(), r, a.data(), nb, 3, f.group, g);
        pick(*simd)(rows.data(), q.size(), r, a.data(), nb, 3, f.group, v);
        for (int i = 0; i < r; ++i) {
          for (int t = 0; t < 3; ++t) {
            EXPECT_NEAR(g[i * 4 + t], v[i * 4 + t], 1e-4 * (1 + std::fabs(g[i * 4 + t])))
                << f.name << " k=" << k << " r=" << r;
          }
        }
      }
    }
  }
}

TEST(Quant, LinearAndEmbeddingOnQuantizedWeights) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  llmc_exec e;
  e.init(&pool, &bestKernels(), {{1, 4}}, 8);
  const int64_t n = 6, in = 172, out = 40;
  for (const Format &f : kFormats) {
    auto x = randomVec(n * in, rng);
    auto w = randomVec(out * in, rng);
    const size_t rb = quantRowBytes(f.format, in, f.group, f.asym);
    std::vector<uint8_t> q(rb * out);
    std::vector<float> wd(out * in);
    for (int64_t j = 0; j < out; ++j) {
      quantizeRow(&w[j * in], in, f.format, f.group, f.asym, &q[j * rb]);
      dequantizeRow(&q[j * rb], in, f.format, f.group, f.asym, &wd[j * in]);
    }
    std::vector<float> y(n * out);
    llmc_k_linear(&e, x.data(), n, in, q.data(), f.format,
                  static_cast<int32_t>(f.group), f.asym, out, nullptr, 0, y.data());
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < out; ++j) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < in; ++i) {
          ref += double(wd[j * in + i]) * x[t * in + i];
          mag += std::fabs(double(wd[j * in + i]) * x[t * in + i]);
        }
        // Activations are int8 per 32: about 0.4% of the summed magnitude.
        ASSERT_NEAR(y[t * out + j], ref, 1e-2 * mag) << f.name;
      }
    }
    int32_t ids[2] = {3, 39};
    std::vector<float> rows(2 * in);
    llmc_k_embedding(&e, q.data(), f.format, static_cast<int32_t>(f.group),
                     f.asym, ids, 2, in, rows.data());
    for (int r = 0; r < 2; ++r) {
      for (int64_t i = 0; i < in; ++i) {
        ASSERT_EQ(rows[r * in + i], wd[ids[r] * in + i]) << f.name;
      }
    }
  }
}

namespace {

/// `rows` random rows quantized to q8 / q4 (symmetric), row by row.
std::vector<uint8_t> quantRows(int32_t format, int64_t rows, int64_t k,
                               int64_t group, std::mt19937 &rng) {
  const size_t rb = quantRowBytes(format, k, group, false);
  std::vector<uint8_t> q(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    auto w = randomVec(k, rng);
    quantizeRow(w.data(), k, format, group, false, q.data() + r * rb);
  }
  return q;
}

const Format kInterleaved[] = {{LLMC_FORMAT_Q8X8, 32, false, "q8x8g32"},
                               {LLMC_FORMAT_Q8X8, 128, false, "q8x8g128"},
                               {LLMC_FORMAT_Q4X8, 32, false, "q4x8g32"},
                               {LLMC_FORMAT_Q4X8, 64, false, "q4x8g64"},
                               {LLMC_FORMAT_Q4X8, 128, false, "q4x8g128"}};

} // namespace

TEST(Quant, InterleavedLayoutRoundTripsAndMatchesTheStructs) {
  std::mt19937 rng(11);
  for (const Format &f : kInterleaved) {
    for (int64_t rows : {1, 7, 8, 9, 16, 21}) {
      const int64_t k = 100; // padded last group
      const int32_t base = rowFormat(f.format);
      auto q = quantRows(base, rows, k, f.group, rng);
      std::vector<uint8_t> x8(q.size());
      interleaveRows(q.data(), rows, k, f.format, f.group, x8.data());
      EXPECT_EQ(q.size(), quantRowBytes(f.format, k, f.group, false) * rows);
      const size_t rb = quantRowBytes(base, k, f.group, false);
      std::vector<uint8_t> row(rb);
      for (int64_t r = 0; r < rows; ++r) {
        deinterleaveRow(x8.data(), rows, k, f.format, f.group, r, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), q.data() + r * rb, rb))
            << f.name << " rows=" << rows << " r=" << r;
      }
      if (rows >= 8 && f.group == 32) {
        // The first 32 columns of rows 0..7: one BlockQ8X8G32/BlockQ4X8G32.
        for (int i = 0; i < 8; ++i) {
          uint16_t d;
          std::memcpy(&d, q.data() + i * rb, 2);
          if (base == LLMC_FORMAT_Q8) {
            const auto *b = reinterpret_cast<const BlockQ8X8G32 *>(x8.data());
            EXPECT_EQ(b->d[i], d);
            for (int h = 0; h < 4; ++h) {
              EXPECT_EQ(0, std::memcmp(b->q[h][i], q.data() + i * rb + 2 + 8 * h, 8));
            }
          } else {
            const auto *b = reinterpret_cast<const BlockQ4X8G32 *>(x8.data());
            EXPECT_EQ(b->d[i], d);
            for (int h = 0; h < 2; ++h) {
              EXPECT_EQ(0, std::memcmp(b->qs[h][i], q.data() + i * rb + 2 + 8 * h, 8));
            }
          }
        }
      }
    }
  }
}

TEST_P(QuantSimd, InterleavedMatchesGeneric) {
  std::string why;
  const KernelTable *simd = table(why);
  if (!simd) {
    GTEST_SKIP() << why;
  }
  const KernelTable &gen = genericKernels();
  std::mt19937 rng(12);
  for (const Format &f : kInterleaved) {
    for (int64_t k : kLengths) {
      const int64_t nb = (k + f.group - 1) / f.group * f.group / 32;
      auto q = quantRows(rowFormat(f.format), 8, k, f.group, rng);
      std::vector<uint8_t> x8(q.size());
      interleaveRows(q.data(), 8, k, f.format, f.group, x8.data());
      std::vector<ActBlock> a(nb * kX8Tokens);
      for (int t = 0; t < kX8Tokens; ++t) {
        auto x = randomVec(k, rng);
        quantizeActivations(x.data(), k, nb, a.data() + t * nb);
      }
      auto pick = [&](const KernelTable &t) {
        return f.format == LLMC_FORMAT_Q8X8 ? t.dotQ8X8 : t.dotQ4X8;
      };
      for (int m = 1; m <= kX8Tokens; ++m) {
        float g[8 * kX8Tokens], v[8 * kX8Tokens], rowwise[8];
        pick(gen)(x8.data(), a.data(), nb, m, f.group, g);
        pick(*simd)(x8.data(), a.data(), nb, m, f.group, v);
        const size_t rb = q.size() / 8;
        for (int i = 0; i < 8; ++i) {
          // The row-by-row generic kernel on the same row: the same sums.
          // (The row kernel takes at most 4 tokens a call.)
          for (int t0 = 0; t0 < m; t0 += 4) {
            const int mr = std::min(4, m - t0);
            (rowFormat(f.format) == LLMC_FORMAT_Q8 ? gen.dotQ8 : gen.dotQ4)(
                q.data() + i * rb, rb, 1, a.data() + t0 * nb, nb, mr, f.group,
                rowwise + t0);
          }
          for (int t = 0; t < m; ++t) {
            const float want = g[i * kX8Tokens + t];
            EXPECT_NEAR(want, rowwise[t], 1e-4 * (1 + std::fabs(want)))
                << f.name << " k=" << k << " row " << i << " m=" << m;
            EXPECT_NEAR(want, v[i * kX8Tokens + t], 1e-4 * (1 + std::fabs(want)))
                << f.name << " k=" << k << " row " << i << " m=" << m;
          }
        }
      }
    }
  }
}

TEST_P(QuantSimd, InterleavedStreamsMatchOneGroupAtATime) {
  std::string why;
  const KernelTable *simd = table(why);
  if (!simd) {
    GTEST_SKIP() << why;
  }
  const KernelTable &gen = genericKernels();
  std::mt19937 rng(14);
  for (const Format &f : kInterleaved) {
    for (int64_t k : kLengths) {
      const int64_t nb = (k + f.group - 1) / f.group * f.group / 32;
      std::vector<ActBlock> a(nb);
      auto x = randomVec(k, rng);
      quantizeActivations(x.data(), k, nb, a.data());
      // kMaxStreams groups, each in its own buffer (the kernel gets
      // pointers to groups far apart).
      std::vector<std::vector<uint8_t>> groups;
      const uint8_t *ws[kMaxStreams];
      for (int g = 0; g < kMaxStreams; ++g) {
        auto q = quantRows(rowFormat(f.format), 8, k, f.group, rng);
        groups.emplace_back(q.size());
        interleaveRows(q.data(), 8, k, f.format, f.group, groups.back().data());
        ws[g] = groups.back().data();
      }
      auto single = f.format == LLMC_FORMAT_Q8X8 ? gen.dotQ8X8 : gen.dotQ4X8;
      auto streams = f.format == LLMC_FORMAT_Q8X8 ? simd->dotQ8X8Streams
                                                  : simd->dotQ4X8Streams;
      for (int s = 1; s <= kMaxStreams; ++s) {
        float v[kMaxStreams * 8];
        streams(ws, s, a.data(), nb, f.group, v);
        for (int g = 0; g < s; ++g) {
          float want[8 * kX8Tokens];
          single(ws[g], a.data(), nb, 1, f.group, want);
          for (int i = 0; i < 8; ++i) {
            const float w = want[i * kX8Tokens];
            EXPECT_NEAR(w, v[g * 8 + i], 1e-4 * (1 + std::fabs(w)))
                << f.name << " k=" << k << " streams=" << s << " group " << g
                << " row " << i;
          }
        }
      }
    }
  }
}

TEST(Quant, LinearOnInterleavedWeightsEqualsRowByRow) {
  std::mt19937 rng(13);
  for (const KernelTable *kt : {&genericKernels(), avx2Kernels(), avx512Kernels()}) {
    if (!kt) {
      continue;
    }
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      llmc_exec e;
      e.init(&pool, kt, {{1, 4}}, 8);
      for (const Format &f : kInterleaved) {
        // 8 rows per group, then a tail of 5 row-by-row rows; 1 and 70
        // tokens (decode, and prefill past one token block).
        // 1205 rows: decode chunks of several groups, read as streams.
        for (int64_t out : {8, 29, 64, 172, 1205}) {
          for (int64_t n : {1, 16, 70}) {
           for (int64_t in : {64, 172}) {
            if (out > 172 && n > 1) {
              continue;
            }
            const int32_t base = rowFormat(f.format);
            auto q = quantRows(base, out, in, f.group, rng);
            // Bytes past the matrix are garbage: a kernel must not read
            // them (in an artifact they are the next tensor).
            std::vector<uint8_t> x8(q.size() + 4096, 0xA5);
            interleaveRows(q.data(), out, in, f.format, f.group, x8.data());
            std::vector<uint8_t> qPad(q);
            qPad.resize(q.size() + 4096, 0x5A);
            auto x = randomVec(n * in, rng);
            auto bias = randomVec(out, rng);
            std::vector<float> y1(n * out), y2(n * out);
            llmc_k_linear(&e, x.data(), n, in, qPad.data(), base,
                          static_cast<int32_t>(f.group), 0, out, bias.data(),
                          LLMC_FORMAT_F32, y1.data());
            llmc_k_linear(&e, x.data(), n, in, x8.data(), f.format,
                          static_cast<int32_t>(f.group), 0, out, bias.data(),
                          LLMC_FORMAT_F32, y2.data());
            for (int64_t i = 0; i < n * out; ++i) {
              ASSERT_NEAR(y1[i], y2[i], 1e-4 * (1 + std::fabs(y1[i])))
                  << kt->name << " " << f.name << " out=" << out << " n=" << n
                  << " in=" << in << " threads=" << threads << " at " << i;
            }
           }
          }
        }
      }
    }
  }
}
