// Kernels against plain double-precision references, and every SIMD variant against its generic twin.
#include "runtime/core/exec.h"
#include "runtime/kernels/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sys/mman.h>
#include <unistd.h>
#include <string>
#include <vector>

using namespace llmc;
using namespace llmc::kernels;

namespace {

std::vector<float> randomVec(size_t n, std::mt19937 &rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float &x : v) {
    x = d(rng);
  }
  return v;
}

std::vector<uint16_t> toHalf(const std::vector<float> &v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = floatToHalf(v[i]);
  }
  return h;
}

std::vector<uint16_t> toBF16(const std::vector<float> &v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = floatToBF16(v[i]);
  }
  return h;
}

/// Sizes that exercise every tail of 8-wide loops.
const int64_t kOddSizes[] = {1, 3, 7, 8, 9, 15, 17, 31, 33, 64, 100, 257};

struct Exec {
  explicit Exec(int threads, const KernelTable &k = bestKernels())
      : pool(threads) {
    e.init(&pool, &k, {{2, 8}, {2, 8}}, 32);
  }
  ThreadPool pool;
  llmc_exec e;
};

} // namespace

TEST(Half, RoundTripsAndRounds) {
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f,
                  5.9604645e-08f, 0.333251953125f}) {
    EXPECT_EQ(halfToFloat(floatToHalf(f)), f) << f;
  }
  EXPECT_EQ(floatToHalf(1e6f), 0x7c00);          // overflow to +inf
  EXPECT_EQ(floatToHalf(1.0f + 1.0f / 4096), 0x3c00); // ties to even
  EXPECT_TRUE(std::isnan(halfToFloat(0x7e00)));
}

// toFloat converts f16 with F16C where the CPU has it: every one of the
// 65536 halves must come out as the portable halfToFloat gives it (NaNs as
// NaNs; F16C quiets a signalling one).
TEST(Half, ToFloatMatchesHalfToFloatOnEveryHalf) {
  std::vector<uint16_t> all(65536 + 5);
  for (size_t i = 0; i < all.size(); ++i) {
    all[i] = static_cast<uint16_t>(i * 7919u); // odd length: a scalar tail
  }
  for (uint32_t i = 0; i < 65536; ++i) {
    all[i] = static_cast<uint16_t>(i);
  }
  std::vector<float> got(all.size());
  toFloat(all.data(), LLMC_FORMAT_F16, static_cast<int64_t>(all.size()),
          got.data());
  for (size_t i = 0; i < all.size(); ++i) {
    float want = halfToFloat(all[i]);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got[i])) << "half 0x" << std::hex << all[i];
    } else {
      uint32_t a, b;
      std::memcpy(&a, &want, 4);
      std::memcpy(&b, &got[i], 4);
      ASSERT_EQ(a, b) << "half 0x" << std::hex << all[i];
    }
  }
}

/// Each SIMD table by name, or nullptr (with the reason) on a CPU without it.
const KernelTable *simdTable(const std::string &isa, std::string &why) {
  if (isa == "avx2") {
    why = "this CPU has no AVX2/FMA/F16C";
    return avx2Kernels();
  }
  why = "this CPU has no AVX-512 F/BW/VL with VNNI";
  return avx512Kernels();
}

class SimdTest : public ::testing::TestWithParam<std::string> {
protected:
  const KernelTable *table() {
    std::string why;
    const KernelTable *t = simdTable(GetParam(), why);
    if (!t) {
      reason = why;
    }
    return t;
  }
  std::string reason;
};

INSTANTIATE_TEST_SUITE_P(Isa, SimdTest, ::testing::Values("avx2", "avx512"),
                         [](const auto &info) { return info.param; });

TEST_P(SimdTest, FloatKernelsMatchGeneric) {
  const KernelTable *simd = table();
  if (!simd) {
    GTEST_SKIP() << reason;
  }
  const KernelTable &gen = genericKernels();
  std::mt19937 rng(42);
  for (int64_t k : kOddSizes) {
    for (int r = 1; r <= 2; ++r) {
      for (int m = 1; m <= 4; ++m) {
        const int64_t ldx = k + 3, ldw = k + 5; // rows not contiguous
        auto w = randomVec(ldw * r, rng);
        auto x = randomVec(ldx * m, rng);
        auto wh = toHalf(w);
        auto wb = toBF16(w);
        float a[8], b[8];
        auto expectSame = [&](const char *what) {
          for (int i = 0; i < r; ++i) {
            for (int t = 0; t < m; ++t) {
              EXPECT_NEAR(a[i * 4 + t], b[i * 4 + t], 1e-5f * k)
                  << what << " k=" << k << " r=" << r << " m=" << m;
            }
          }
        };
        gen.dotF32(w.data(), ldw, r, x.data(), ldx, m, k, a);
        simd->dotF32(w.data(), ldw, r, x.data(), ldx, m, k, b);
        expectSame("f32");
        gen.dotF16(wh.data(), ldw, r, x.data(), ldx, m, k, a);
        simd->dotF16(wh.data(), ldw, r, x.data(), ldx, m, k, b);
        expectSame("f16");
        gen.dotBF16(wb.data(), ldw, r, x.data(), ldx, m, k, a);
        simd->dotBF16(wb.data(), ldw, r, x.data(), ldx, m, k, b);
        expectSame("bf16");
      }
    }
    auto x = randomVec(k, rng), y = randomVec(k, rng);
    EXPECT_NEAR(gen.dot(x.data(), y.data(), k), simd->dot(x.data(), y.data(), k),
                1e-5f * k);
    auto y1 = y, y2 = y;
    gen.axpy(0.37f, x.data(), y1.data(), k);
    simd->axpy(0.37f, x.data(), y2.data(), k);
    for (int64_t i = 0; i < k; ++i) {
      EXPECT_NEAR(y1[i], y2[i], 1e-6f);
    }
    auto xh = toHalf(x);
    y1 = y, y2 = y;
    gen.axpyF16(-1.3f, xh.data(), y1.data(), k);
    simd->axpyF16(-1.3f, xh.data(), y2.data(), k);
    for (int64_t i = 0; i < k; ++i) {
      EXPECT_NEAR(y1[i], y2[i], 1e-6f) << "axpyF16 k=" << k;
    }
  }
}

/// A 2:4 row: two of every run of 4 (positions chosen at random) set to
/// zero; a partial last run keeps at most two values too.
std::vector<float> sparse24(size_t rows, int64_t k, std::mt19937 &rng) {
  auto w = randomVec(rows * k, rng);
  for (size_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < k; c0 += 4) {
      int keep0 = static_cast<int>(rng() % 4), keep1 = static_cast<int>(rng() % 4);
      for (int i = 0; i < 4 && c0 + i < k; ++i) {
        if (i != keep0 && i != keep1) {
          w[r * k + c0 + i] = 0.0f;
        }
      }
    }
  }
  return w;
}

const int32_t kSparseFormats[] = {LLMC_FORMAT_S24, LLMC_FORMAT_S24Q8,
                                   LLMC_FORMAT_S24Q4};

TEST(Sparse24, PacksAndUnpacksAndRefusesThreeOfFour) {
  std::mt19937 rng(3);
  for (int32_t format : kSparseFormats) {
    for (int64_t k : {4, 8, 28, 32, 36, 64, 100, 172}) {
      auto w = sparse24(1, k, rng);
      std::vector<uint8_t> row(sparseRowBytes(format, k));
      ASSERT_TRUE(packSparseRow(w.data(), k, format, row.data())) << k;
      std::vector<float> back(k, 1.0f);
      unpackSparseRow(row.data(), k, format, back.data());
      for (int64_t c = 0; c < k; ++c) {
        if (format == LLMC_FORMAT_S24) {
          // f16 values: exact after the f16 rounding.
          EXPECT_EQ(back[c], halfToFloat(floatToHalf(w[c]))) << k << " " << c;
        } else {
          // Zeros stay zero; kept values are within half a step of the
          // block's scale for q8 (max|v| / 127), a whole step for q4
          // (max|v| / 8: the extreme maps to -8, so +max clips to 7).
          if (w[c] == 0.0f) {
            EXPECT_EQ(back[c], 0.0f);
          }
          EXPECT_NEAR(back[c], w[c], format == LLMC_FORMAT_S24Q8 ? 0.005 : 0.13)
              << "format " << format << " k=" << k << " c=" << c;
        }
      }
    }
  }
  EXPECT_EQ(sparseRowBytes(LLMC_FORMAT_S24, 32), 36u);
  EXPECT_EQ(sparseRowBytes(LLMC_FORMAT_S24, 33), 72u);
  EXPECT_EQ(sparseRowBytes(LLMC_FORMAT_S24Q8, 64), 44u);
  EXPECT_EQ(sparseRowBytes(LLMC_FORMAT_S24Q4, 64), 28u);
  float three[8] = {1, 2, 3, 0, 1, 0, 0, 0};
  std::vector<uint8_t> row(sparseRowBytes(LLMC_FORMAT_S24, 8));
  EXPECT_FALSE(packSparseRow(three, 8, LLMC_FORMAT_S24, row.data()));
}

TEST_P(SimdTest, Sparse24MatchesGeneric) {
  const KernelTable *simd = table();
  if (!simd) {
    GTEST_SKIP() << reason;
  }
  std::mt19937 rng(11);
  for (int32_t format : kSparseFormats) {
    for (int64_t k : {4, 12, 28, 32, 36, 60, 64, 100, 172, 260}) {
      for (int r = 1; r <= 2; ++r) {
        for (int m = 1; m <= 4; ++m) {
          auto w = sparse24(r, k, rng);
          const size_t ldw = sparseRowBytes(format, k);
          std::vector<uint8_t> packed(ldw * r);
          std::vector<float> stored(r * k);
          for (int i = 0; i < r; ++i) {
            ASSERT_TRUE(packSparseRow(w.data() + i * k, k, format,
                                      packed.data() + i * ldw));
            unpackSparseRow(packed.data() + i * ldw, k, format,
                            stored.data() + i * k);
          }
          const int64_t ldx = k + 3;
          auto x = randomVec(ldx * m, rng);
          float a[8], b[8];
          genericKernels().dotSparse(packed.data(), ldw, format, r, x.data(),
                                     ldx, m, k, a);
          simd->dotSparse(packed.data(), ldw, format, r, x.data(), ldx, m, k, b);
          for (int i = 0; i < r; ++i) {
            for (int t = 0; t < m; ++t) {
              // The generic kernel against a double reference over the
              // stored values, the SIMD one against the generic.
              double ref = 0;
              for (int64_t c = 0; c < k; ++c) {
                ref += double(stored[i * k + c]) * x[t * ldx + c];
              }
              EXPECT_NEAR(a[i * 4 + t], ref, 1e-5 * k) << "k=" << k;
              EXPECT_NEAR(a[i * 4 + t], b[i * 4 + t], 1e-5f * k)
                  << "format " << format << " k=" << k << " r=" << r
                  << " m=" << m;
            }
          }
        }
      }
    }
  }
}

class LinearTest : public ::testing::TestWithParam<int> {};

TEST_P(LinearTest, MatchesDoubleReference) {
  const int threads = GetParam();
  std::mt19937 rng(7);
  for (const KernelTable *kt :
       {&genericKernels(), avx2Kernels(), avx512Kernels()}) {
    if (!kt) {
      continue;
    }
    Exec ex(threads, *kt);
    for (int64_t n : {1, 3, 5, 70}) {
      for (auto [in, out] : {std::pair<int64_t, int64_t>{17, 9}, {64, 33}, {40, 1}}) {
        auto x = randomVec(n * in, rng);
        auto w = randomVec(out * in, rng);
        auto bias = randomVec(out, rng);
        auto wh = toHalf(w);
        auto wb = toBF16(w);
        for (int fmt : {LLMC_FORMAT_F32, LLMC_FORMAT_F16, LLMC_FORMAT_BF16}) {
          const void *wp = fmt == LLMC_FORMAT_F32   ? static_cast<const void *>(w.data())
                           : fmt == LLMC_FORMAT_F16 ? static_cast<const void *>(wh.data())
                                                    : static_cast<const void *>(wb.data());
          std::vector<float> y(n * out);
          llmc_k_linear(&ex.e, x.data(), n, in, wp, fmt, 0, 0, out,
                        bias.data(), LLMC_FORMAT_F32, y.data());
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t j = 0; j < out; ++j) {
              double ref = bias[j];
              for (int64_t i = 0; i < in; ++i) {
                float wv = fmt == LLMC_FORMAT_F32   ? w[j * in + i]
                           : fmt == LLMC_FORMAT_F16 ? halfToFloat(wh[j * in + i])
                                                    : bf16ToFloat(wb[j * in + i]);
                ref += static_cast<double>(wv) * x[t * in + i];
              }
              ASSERT_NEAR(y[t * out + j], ref, 1e-4)
                  << kt->name << " fmt=" << fmt << " n=" << n << " t=" << t
                  << " j=" << j;
            }
          }
        }
      }
    }
  }
}

TEST_P(LinearTest, Sparse24MatchesDoubleReference) {
  const int threads = GetParam();
  std::mt19937 rng(9);
  for (const KernelTable *kt :
       {&genericKernels(), avx2Kernels(), avx512Kernels()}) {
    if (!kt) {
      continue;
    }
    Exec ex(threads, *kt);
    for (int64_t n : {1, 5, 70}) {
      for (auto [in, out] : {std::pair<int64_t, int64_t>{20, 9}, {64, 33}, {172, 7}}) {
        auto x = randomVec(n * in, rng);
        auto w = sparse24(out, in, rng);
        auto bias = randomVec(out, rng);
        for (int32_t format : kSparseFormats) {
          const size_t rowBytes = sparseRowBytes(format, in);
          std::vector<uint8_t> packed(rowBytes * out);
          std::vector<float> stored(out * in);
          for (int64_t j = 0; j < out; ++j) {
            ASSERT_TRUE(packSparseRow(w.data() + j * in, in, format,
                                      packed.data() + j * rowBytes));
            unpackSparseRow(packed.data() + j * rowBytes, in, format,
                            stored.data() + j * in);
          }
          std::vector<float> y(n * out);
          llmc_k_linear(&ex.e, x.data(), n, in, packed.data(), format, 0, 0,
                        out, bias.data(), LLMC_FORMAT_F32, y.data());
          for (int64_t t = 0; t < n; ++t) {
            for (int64_t j = 0; j < out; ++j) {
              double ref = bias[j];
              for (int64_t i = 0; i < in; ++i) {
                ref += double(stored[j * in + i]) * x[t * in + i];
              }
              ASSERT_NEAR(y[t * out + j], ref, 1e-4)
                  << kt->name << " format " << format << " n=" << n
                  << " in=" << in << " t=" << t << " j=" << j;
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, LinearTest, ::testing::Values(1, 2, 3));

TEST(Kernels, SplitLinearWritesEachPartWhole) {
  // A fused projection's outputs go to separate tensors, bit for bit what
  // the unsplit product holds in those columns, for float and block formats.
  std::mt19937 rng(5);
  Exec ex(2);
  const int64_t in = 70, widths[3] = {9, 4, 20}, out = 33;
  for (int64_t n : {1, 6}) {
    auto x = randomVec(n * in, rng);
    auto w = randomVec(out * in, rng);
    auto bias = randomVec(out, rng);
    std::vector<uint8_t> q(quantRowBytes(LLMC_FORMAT_Q4, in, 32, false) * out);
    for (int64_t r = 0; r < out; ++r) {
      quantizeRow(w.data() + r * in, in, LLMC_FORMAT_Q4, 32, false,
                  q.data() + r * quantRowBytes(LLMC_FORMAT_Q4, in, 32, false));
    }
    for (int fmt : {LLMC_FORMAT_F32, LLMC_FORMAT_Q4}) {
      const void *wp = fmt == LLMC_FORMAT_F32 ? static_cast<const void *>(w.data())
                                              : static_cast<const void *>(q.data());
      int32_t group = fmt == LLMC_FORMAT_F32 ? 0 : 32;
      std::vector<float> whole(n * out);
      llmc_k_linear(&ex.e, x.data(), n, in, wp, fmt, group, 0, out, bias.data(),
                    LLMC_FORMAT_F32, whole.data());
      std::vector<float> a(n * widths[0]), b(n * widths[1]), c(n * widths[2]);
      float *ys[3] = {a.data(), b.data(), c.data()};
      llmc_k_linear_split(&ex.e, x.data(), n, in, wp, fmt, group, 0, out,
                          bias.data(), LLMC_FORMAT_F32, 3, widths, ys);
      for (int64_t t = 0; t < n; ++t) {
        int64_t col = 0;
        for (int p = 0; p < 3; ++p) {
          for (int64_t j = 0; j < widths[p]; ++j, ++col) {
            ASSERT_EQ(ys[p][t * widths[p] + j], whole[t * out + col])
                << "fmt " << fmt << " part " << p << " row " << t;
          }
        }
      }
    }
  }
}

TEST(Kernels, RmsNormEmbeddingRope) {
  std::mt19937 rng(3);
  Exec ex(1);
  const int64_t n = 3, dim = 24;
  auto x = randomVec(n * dim, rng);
  auto w = randomVec(dim, rng);
  std::vector<float> y(n * dim);
  llmc_k_rms_norm(&ex.e, x.data(), n, dim, w.data(), LLMC_FORMAT_F32, 1e-5f,
                  y.data());
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < dim; ++j) {
      ss += double(x[i * dim + j]) * x[i * dim + j];
    }
    double s = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int64_t j = 0; j < dim; ++j) {
      EXPECT_NEAR(y[i * dim + j], w[j] * x[i * dim + j] * s, 1e-5);
    }
  }

  auto table = randomVec(10 * dim, rng);
  auto th = toHalf(table);
  int32_t ids[3] = {7, 0, 9};
  llmc_k_embedding(&ex.e, th.data(), LLMC_FORMAT_F16, 0, 0, ids, 3, dim,
                   y.data());
  for (int i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < dim; ++j) {
      EXPECT_EQ(y[i * dim + j], halfToFloat(th[ids[i] * dim + j]));
    }
  }

  // RoPE: pairs (j, j + hd/2) rotated by (start + i) * theta^(-2j/hd).
  const int64_t heads = 3, hd = 8, start = 5;
  auto q = randomVec(n * heads * hd, rng);
  std::vector<float> r(q.size());
  llmc_k_rope(&ex.e, q.data(), r.data(), n, heads, hd, 10000.0f, start);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t j = 0; j < hd / 2; ++j) {
        double ang = (start + i) * std::pow(10000.0, -2.0 * j / hd);
        const float *qv = &q[(i * heads + h) * hd];
        const float *rv = &r[(i * heads + h) * hd];
        EXPECT_NEAR(rv[j], qv[j] * std::cos(ang) - qv[j + hd / 2] * std::sin(ang), 1e-5);
        EXPECT_NEAR(rv[j + hd / 2], qv[j + hd / 2] * std::cos(ang) + qv[j] * std::sin(ang), 1e-5);
      }
    }
  }
}

TEST(Kernels, AttentionIsCausalGqaOverTheCache) {
  std::mt19937 rng(11);
  const int64_t heads = 4, kvh = 2, hd = 8, ctx = 32;
  for (int run = 0; run < 4; ++run) {
    const int threads = 1 + run % 2;
    const bool half = run >= 2; // the f16 cache: k and v rounded once
    ThreadPool pool(threads);
    llmc_exec e;
    // Layer 0 has another shape, so layer 1 sits at an offset of its own.
    e.init(&pool, &bestKernels(), {{1, 4}, {kvh, hd}}, ctx, half);
    // Two calls: a prefill of 5 and a decode of 1, on layer 1.
    std::vector<float> allK, allV, allQ;
    std::vector<float> out;
    int64_t pos = 0;
    for (int64_t n : {5, 1}) {
      auto q = randomVec(n * heads * hd, rng);
      auto k = randomVec(n * kvh * hd, rng);
      auto v = randomVec(n * kvh * hd, rng);
      allK.insert(allK.end(), k.begin(), k.end());
      allV.insert(allV.end(), v.begin(), v.end());
      out.assign(n * heads * hd, 0.0f);
      llmc_k_attention(&e, 1, q.data(), k.data(), v.data(), n, pos, heads, kvh,
                       hd, out.data());
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t h = 0; h < heads; ++h) {
          int64_t g = h / (heads / kvh);
          std::vector<double> s;
          double mx = -1e30;
          for (int64_t t = 0; t <= pos + i; ++t) {
            double d = 0;
            for (int64_t c = 0; c < hd; ++c) {
              d += double(q[(i * heads + h) * hd + c]) * allK[(t * kvh + g) * hd + c];
            }
            s.push_back(d / std::sqrt(double(hd)));
            mx = std::max(mx, s.back());
          }
          double sum = 0;
          for (double &x : s) {
            x = std::exp(x - mx);
            sum += x;
          }
          for (int64_t c = 0; c < hd; ++c) {
            double ref = 0;
            for (size_t t = 0; t < s.size(); ++t) {
              ref += s[t] / sum * allV[(t * kvh + g) * hd + c];
            }
            ASSERT_NEAR(out[(i * heads + h) * hd + c], ref, half ? 5e-3 : 1e-5)
                << "threads=" << threads << " half=" << half << " n=" << n
                << " i=" << i;
          }
        }
      }
      pos += n;
    }
  }
}

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 3, 100}) {
      std::vector<int> hits(n, 0);
      pool.parallelFor(n, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
          hits[i]++;
        }
      });
      for (int h : hits) {
        EXPECT_EQ(h, 1);
      }
    }
  }
}

TEST(Kernels, KvCachePagesAreTouchedOnlyWhereWritten) {
  // A cache for 4096 positions of 2 layers x 8 heads x 64: 16 MiB each for
  // keys and values. One token at position 0 writes one row per head.
  ThreadPool pool(1);
  llmc_exec e;
  e.init(&pool, &bestKernels(), {{8, 64}, {8, 64}}, 4096);
  auto resident = [](float *p, size_t n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t bytes = n * sizeof(float), pages = (bytes + page - 1) / page;
    std::vector<unsigned char> v(pages);
    EXPECT_EQ(mincore(p, bytes, v.data()), 0);
    size_t count = 0;
    for (unsigned char c : v) {
      count += c & 1;
    }
    return count;
  };
  EXPECT_EQ(resident(e.kCache.data(), e.kCache.size()), 0u);
  PageBuffer<float> zeroed;
  zeroed.assign(5000);
  for (size_t i = 0; i < zeroed.size(); ++i) {
    ASSERT_EQ(zeroed.data()[i], 0.0f);
  }
  std::mt19937 rng(1);
  auto q = randomVec(8 * 64, rng), k = randomVec(8 * 64, rng),
       v = randomVec(8 * 64, rng);
  std::vector<float> out(8 * 64);
  llmc_k_attention(&e, 1, q.data(), k.data(), v.data(), 1, 0, 8, 8, 64,
                   out.data());
  // Eight heads' rows at position 0 of layer 1: at most one page each.
  EXPECT_LE(resident(e.kCache.data(), e.kCache.size()), 8u);
  EXPECT_LE(resident(e.vCache.data(), e.vCache.size()), 8u);
}

TEST(F16X16, LayoutRoundTrips) {
  std::mt19937 rng(21);
  for (int64_t rows : {1, 15, 16, 17, 40}) {
    const int64_t k = 37;
    auto h = toHalf(randomVec(rows * k, rng));
    std::vector<uint16_t> g(h.size()), row(k);
    interleaveF16Rows(h.data(), rows, k, g.data());
    for (int64_t r = 0; r < rows; ++r) {
      f16x16Row(g.data(), rows, k, r, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), h.data() + r * k, k * 2))
          << "rows=" << rows << " r=" << r;
      if (r < rows / 16 * 16) {
        // Column c of the group is 16 consecutive values.
        EXPECT_EQ(g[(r / 16) * 16 * k + 5 * 16 + r % 16], h[r * k + 5]);
      }
    }
  }
}

TEST_P(SimdTest, F16X16MatchesGeneric) {
  const KernelTable *simd = table();
  if (!simd) {
    GTEST_SKIP() << reason;
  }
  const KernelTable &gen = genericKernels();
  std::mt19937 rng(22);
  for (int64_t k : kOddSizes) {
    auto g = toHalf(randomVec(16 * k, rng));
    const int64_t ldx = k + 3;
    // Every remainder of AVX2's 6-token and AVX-512's 8-token tiles, and
    // the whole token block that prefill passes.
    auto x = randomVec(ldx * 64, rng);
    for (int m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 17, 64}) {
      std::vector<float> a(16 * m), b(16 * m);
      gen.dotF16X16(g.data(), k, x.data(), ldx, m, a.data());
      simd->dotF16X16(g.data(), k, x.data(), ldx, m, b.data());
      for (int i = 0; i < 16 * m; ++i) {
        EXPECT_NEAR(a[i], b[i], 1e-5f * k) << "k=" << k << " m=" << m << " at " << i;
      }
    }
  }
}

TEST_P(SimdTest, F16X16StreamsMatchGeneric) {
  const KernelTable *simd = table();
  if (!simd) {
    GTEST_SKIP() << reason;
  }
  const KernelTable &gen = genericKernels();
  std::mt19937 rng(24);
  for (int64_t k : kOddSizes) {
    // kMaxStreams groups, each in its own buffer.
    std::vector<std::vector<uint16_t>> groups;
    const uint16_t *ws[kMaxStreams];
    for (int g = 0; g < kMaxStreams; ++g) {
      groups.push_back(toHalf(randomVec(16 * k, rng)));
      ws[g] = groups.back().data();
    }
    auto x = randomVec(k, rng);
    for (int s = 1; s <= kMaxStreams; ++s) {
      float v[kMaxStreams * 16];
      simd->dotF16X16Streams(ws, s, k, x.data(), v);
      for (int g = 0; g < s; ++g) {
        float want[16];
        gen.dotF16X16(ws[g], k, x.data(), k, 1, want);
        for (int i = 0; i < 16; ++i) {
          EXPECT_NEAR(want[i], v[g * 16 + i], 1e-5f * k)
              << "k=" << k << " streams=" << s << " group " << g << " row " << i;
        }
      }
    }
  }
}

TEST_P(LinearTest, F16X16EqualsRowMajorF16) {
  const int threads = GetParam();
  std::mt19937 rng(23);
  for (const KernelTable *kt :
       {&genericKernels(), avx2Kernels(), avx512Kernels()}) {
    if (!kt) {
      continue;
    }
    Exec ex(threads, *kt);
    // 16-row groups, then a tail of 9 row-major rows; decode and a prefill
    // past one token block.
    // 2409 rows (150 groups and 9): decode chunks of several groups, read
    // as streams.
    for (int64_t n : {1, 9, 70}) {
      for (auto [in, out] : {std::pair<int64_t, int64_t>{33, 16}, {64, 57}, {48, 2409}}) {
        if (out > 57 && n > 1) {
          continue;
        }
        auto x = randomVec(n * in, rng);
        auto h = toHalf(randomVec(out * in, rng));
        auto bias = randomVec(out, rng);
        std::vector<uint16_t> g(h.size());
        interleaveF16Rows(h.data(), out, in, g.data());
        std::vector<float> y1(n * out), y2(n * out);
        llmc_k_linear(&ex.e, x.data(), n, in, h.data(), LLMC_FORMAT_F16, 0, 0,
                      out, bias.data(), LLMC_FORMAT_F32, y1.data());
        llmc_k_linear(&ex.e, x.data(), n, in, g.data(), LLMC_FORMAT_F16X16, 0,
                      0, out, bias.data(), LLMC_FORMAT_F32, y2.data());
        for (int64_t i = 0; i < n * out; ++i) {
          ASSERT_NEAR(y1[i], y2[i], 1e-4) << kt->name << " n=" << n
                                          << " out=" << out << " at " << i;
        }
      }
    }
  }
}
