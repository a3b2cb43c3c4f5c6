// The C API over the reference program: chunking, threads, limits and errors.
#include "TinyModel.h"
#include "llmc/runtime.h"
#include "runtime/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sys/mman.h>
#include <unistd.h>

using namespace llmc;

namespace {

class Session : public ::testing::Test {
protected:
  void SetUp() override {
    path = std::string(::testing::TempDir()) + "/session." +
           std::to_string(::getpid()) + ".llmc";
    std::string error;
    ASSERT_TRUE(artifact::writeArtifactFile(path, tiny.contents, error)) << error;
    ASSERT_EQ(llmc_model_load(path.c_str(), llmc_reference_program(), 1, &model),
              LLMC_OK)
        << llmc_last_error();
  }
  void TearDown() override {
    llmc_model_release(model);
    std::remove(path.c_str());
  }
  llmc_session *session(int threads, int64_t ctx = 0,
                        int kv = LLMC_KV_DEFAULT) {
    llmc_session_options o = {threads, ctx, kv};
    llmc_session *s = nullptr;
    EXPECT_EQ(llmc_session_create(model, &o, &s), LLMC_OK) << llmc_last_error();
    return s;
  }
  test::TinyModel tiny;
  std::string path;
  llmc_model *model = nullptr;
};

} // namespace

TEST_F(Session, PrefillEqualsTokenByTokenDecode) {
  const int32_t ids[] = {1, 5, 9, 17, 3, 30, 8, 12};
  const int64_t n = 8, V = 32;
  llmc_session *a = session(2), *b = session(1);
  ASSERT_EQ(llmc_session_prefill(a, ids, n, n), LLMC_OK);
  int64_t rows;
  const float *la = llmc_session_logits(a, &rows);
  ASSERT_EQ(rows, n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(llmc_session_decode(b, ids[i]), LLMC_OK);
    const float *lb = llmc_session_logits(b, &rows);
    ASSERT_EQ(rows, 1);
    for (int64_t v = 0; v < V; ++v) {
      EXPECT_NEAR(la[i * V + v], lb[v], 1e-4) << "pos " << i;
    }
  }
  EXPECT_EQ(llmc_session_position(b), n);
  llmc_session_release(a);
  llmc_session_release(b);
}

TEST_F(Session, GreedyStepsGiveTheArgmaxOfTheLogitsWithoutThem) {
  // llmc_session_prefill_argmax: the token llmc_session_argmax would pick
  // after a plain prefill, step after step; the logits are not written.
  const int32_t ids[] = {1, 5, 9, 17};
  llmc_session *plain = session(2), *greedy = session(2);
  int32_t a = 0, b = 0;
  ASSERT_EQ(llmc_session_prefill(plain, ids, 4, 1), LLMC_OK);
  ASSERT_EQ(llmc_session_argmax(plain, &a), LLMC_OK);
  ASSERT_EQ(llmc_session_prefill_argmax(greedy, ids, 4, &b), LLMC_OK)
      << llmc_last_error();
  for (int step = 0; step < 12; ++step) {
    ASSERT_EQ(a, b) << "step " << step;
    int64_t rows = -1;
    EXPECT_EQ(llmc_session_logits(greedy, &rows), nullptr);
    EXPECT_EQ(rows, 0);
    EXPECT_NE(std::string(llmc_last_error()).find("kept the argmax alone"),
              std::string::npos)
        << llmc_last_error();
    ASSERT_EQ(llmc_session_decode(plain, a), LLMC_OK);
    ASSERT_EQ(llmc_session_argmax(plain, &a), LLMC_OK);
    ASSERT_EQ(llmc_session_prefill_argmax(greedy, &b, 1, &b), LLMC_OK);
  }
  EXPECT_EQ(llmc_session_position(greedy), llmc_session_position(plain));
  // llmc_session_argmax gives the kept argmax again.
  int32_t t = -1;
  EXPECT_EQ(llmc_session_argmax(greedy, &t), LLMC_OK) << llmc_last_error();
  EXPECT_EQ(t, b);
  llmc_session_release(plain);
  llmc_session_release(greedy);
}

TEST_F(Session, ResetStartsOver) {
  const int32_t ids[] = {1, 4, 7};
  llmc_session *s = session(1);
  ASSERT_EQ(llmc_session_prefill(s, ids, 3, 1), LLMC_OK);
  int64_t rows;
  std::vector<float> first(llmc_session_logits(s, &rows),
                           llmc_session_logits(s, &rows) + 32);
  llmc_session_reset(s);
  ASSERT_EQ(llmc_session_prefill(s, ids, 3, 1), LLMC_OK);
  const float *again = llmc_session_logits(s, &rows);
  for (int v = 0; v < 32; ++v) {
    EXPECT_EQ(first[v], again[v]);
  }
  llmc_session_release(s);
}

TEST_F(Session, ErrorsAreStatusesWithMessages) {
  llmc_session *s = session(1, 4);
  const int32_t ids[] = {1, 2, 3, 4, 5};
  EXPECT_EQ(llmc_session_prefill(s, ids, 5, 1), LLMC_ERROR_CONTEXT_FULL);
  EXPECT_NE(std::string(llmc_last_error()).find("context full"), std::string::npos);
  const int32_t bad[] = {1, 99};
  EXPECT_EQ(llmc_session_prefill(s, bad, 2, 1), LLMC_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(llmc_last_error()).find("token id 99"), std::string::npos);
  EXPECT_EQ(llmc_session_prefill(s, ids, 2, 3), LLMC_ERROR_INVALID_ARGUMENT);
  llmc_session_release(s);

  llmc_session_options o = {1, 1000, LLMC_KV_DEFAULT};
  llmc_session *big = nullptr;
  EXPECT_EQ(llmc_session_create(model, &o, &big), LLMC_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(llmc_last_error()).find("exceeds"), std::string::npos);
}

TEST_F(Session, CompiledProgramForOtherWeightsIsRejected) {
  // A compiled program declares each tensor's format and shape and the
  // fingerprint of the table; the loader checks both.
  std::vector<llmc_weight_desc> descs;
  for (const artifact::WriterTensor &t : tiny.contents.tensors) {
    llmc_weight_desc d = {LLMC_FORMAT_F32, 0, 0,
                          static_cast<int32_t>(t.shape.size()), {t.shape[0], 0}};
    if (t.shape.size() == 2) {
      d.shape[1] = t.shape[1];
    }
    descs.push_back(d);
  }
  const llmc_cache_layer cache[2] = {{2, 4}, {2, 4}};
  llmc_program other = *llmc_reference_program();
  other.fingerprint = 12345;
  other.num_weights = static_cast<uint32_t>(descs.size());
  other.weights = descs.data();
  other.num_cache_layers = 2;
  other.cache_layers = cache;
  other.forward = [](llmc_exec *, const void *const *, void *, const int32_t *,
                     int64_t, int64_t, int64_t, float *) {};
  llmc_model *m = nullptr;
  EXPECT_EQ(llmc_model_load(path.c_str(), &other, 0, &m), LLMC_ERROR_FORMAT);
  EXPECT_NE(std::string(llmc_last_error()).find("do not match the compiled program"),
            std::string::npos);
  other.fingerprint = llmc_model_fingerprint(model);
  descs[3].shape[0] = 9; // tensor 3 (q_proj of layer 0) is [16, 16]
  EXPECT_EQ(llmc_model_load(path.c_str(), &other, 0, &m), LLMC_ERROR_FORMAT);
  EXPECT_NE(std::string(llmc_last_error())
                .find("tensor 3 'model.layers.0.self_attn.k_proj.weight' is f32 "
                      "[8, 16], the compiled program reads f32 [9, 16]"),
            std::string::npos)
      << llmc_last_error();
  descs[3].shape[0] = 8;
  ASSERT_EQ(llmc_model_load(path.c_str(), &other, 0, &m), LLMC_OK);
  llmc_model_release(m);
}

TEST_F(Session, F16CacheStaysCloseToF32) {
  // The default cache stores keys and values in f16: the logits move by
  // the rounding of k and v, no more.
  const int32_t ids[] = {1, 5, 9, 17, 3, 30, 8, 12, 4, 4, 22};
  const int64_t n = 11, V = 32;
  llmc_session *h = session(1, 0, LLMC_KV_F16), *f = session(1, 0, LLMC_KV_F32);
  ASSERT_EQ(llmc_session_prefill(h, ids, n, n), LLMC_OK);
  ASSERT_EQ(llmc_session_prefill(f, ids, n, n), LLMC_OK);
  int64_t rows;
  const float *lh = llmc_session_logits(h, &rows);
  const float *lf = llmc_session_logits(f, &rows);
  double worst = 0.0, scale = 0.0;
  for (int64_t i = 0; i < n * V; ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(lh[i] - lf[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(lf[i])));
  }
  EXPECT_LT(worst, 5e-3 * scale) << "largest logit " << scale;
  EXPECT_GT(worst, 0.0); // it really is another cache
  llmc_session_release(h);
  llmc_session_release(f);
  llmc_session_options bad = {1, 0, 7};
  llmc_session *s = nullptr;
  EXPECT_EQ(llmc_session_create(model, &bad, &s), LLMC_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(llmc_last_error()).find("unknown KV cache format 7"),
            std::string::npos);
}

TEST_F(Session, LogitsRowsNotAskedForStayUntouched) {
  // The logits buffer holds max_tokens rows, but a call writes only the
  // rows asked for: the pages past them must never become resident (a
  // zero-filled vector made 62.5 MiB of a TinyLlama run resident).
  llmc_session *s = session(1);
  int32_t ids[] = {1, 2, 3};
  ASSERT_EQ(llmc_session_prefill(s, ids, 3, 1), LLMC_OK);
  int64_t rows = 0;
  const float *l = llmc_session_logits(s, &rows);
  ASSERT_EQ(rows, 1);
  llmc_model_info mi;
  llmc_model_get_info(model, &mi);
  const llmc_model_info *info = &mi;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t bytes =
      static_cast<size_t>(info->max_tokens * info->vocab_size) * sizeof(float);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(l) % page, 0u);
  ASSERT_GE(bytes, 2 * page) << "the tiny model's buffer spans one page";
  std::vector<unsigned char> v((bytes + page - 1) / page);
  ASSERT_EQ(mincore(const_cast<float *>(l), bytes, v.data()), 0);
  size_t resident = 0;
  for (unsigned char c : v) {
    resident += c & 1;
  }
  const size_t rowPages = (static_cast<size_t>(info->vocab_size) * sizeof(float) + page - 1) / page;
  EXPECT_LE(resident, rowPages) << "of " << v.size() << " pages";
  llmc_session_release(s);
}

TEST_F(Session, LongRunsDoNotGrowMemory) {
  // Decode to the full context five times in one session (reset between):
  // nothing is allocated per token or per pass once the first pass ran.
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "resident memory is not a leak measure under AddressSanitizer "
                  "(freed memory waits in its quarantine); LeakSanitizer "
                  "checks leaks in this build";
#endif
  auto rssPages = [] {
    long total = 0, resident = 0;
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (f) {
      if (std::fscanf(f, "%ld %ld", &total, &resident) != 2) {
        resident = 0;
      }
      std::fclose(f);
    }
    return resident;
  };
  llmc_session *s = session(2);
  long after1 = 0;
  for (int pass = 0; pass < 5; ++pass) {
    llmc_session_reset(s);
    int32_t tok = 1;
    for (int64_t pos = 0; pos < 64; ++pos) {
      ASSERT_EQ(llmc_session_decode(s, tok), LLMC_OK) << "pass " << pass;
      int64_t rows;
      const float *l = llmc_session_logits(s, &rows);
      tok = static_cast<int32_t>(std::max_element(l, l + 32) - l);
    }
    EXPECT_EQ(llmc_session_decode(s, tok), LLMC_ERROR_CONTEXT_FULL);
    if (pass == 0) {
      after1 = rssPages();
    }
  }
  EXPECT_LE(rssPages(), after1 + 4) << "resident pages grew across passes";
  llmc_session_release(s);
}

TEST_F(Session, ByteTokenizer) {
  int64_t count = 0;
  int32_t ids[8];
  ASSERT_EQ(llmc_tokenize(model, "ABC", 3, 1, ids, 8, &count), LLMC_OK);
  ASSERT_EQ(count, 4);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 3); // <0x41> 'A'
  size_t len;
  EXPECT_EQ(std::string(llmc_token_text(model, ids[3], 0, &len)), "C");
}

TEST(Sampler, GreedyTopKTopPAndSeeds) {
  float logits[6] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f, 1.95f};
  llmc_sampler *s = nullptr;
  llmc_sampler_options greedy = {0.0f, 0, 1.0f, 0};
  ASSERT_EQ(llmc_sampler_create(&greedy, &s), LLMC_OK);
  EXPECT_EQ(llmc_sampler_sample(s, logits, 6), 1);
  llmc_sampler_release(s);

  llmc_sampler_options k1 = {1.0f, 1, 1.0f, 7};
  llmc_sampler_create(&k1, &s);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(llmc_sampler_sample(s, logits, 6), 1);
  }
  llmc_sampler_release(s);

  // top-k 3 only ever yields one of the three best.
  llmc_sampler_options k3 = {1.0f, 3, 1.0f, 7};
  llmc_sampler_create(&k3, &s);
  int counts[6] = {};
  for (int i = 0; i < 3000; ++i) {
    counts[llmc_sampler_sample(s, logits, 6)]++;
  }
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[1], counts[3]); // higher logit, more often
  llmc_sampler_release(s);

  // Same seed, same sequence; another seed, another sequence.
  auto run = [&](uint64_t seed) {
    llmc_sampler_options o = {1.5f, 0, 0.95f, seed};
    llmc_sampler *x = nullptr;
    llmc_sampler_create(&o, &x);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      out.push_back(llmc_sampler_sample(x, logits, 6));
    }
    llmc_sampler_release(x);
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));

  // A tiny top-p keeps only the best token.
  llmc_sampler_options p = {1.0f, 0, 0.01f, 3};
  llmc_sampler_create(&p, &s);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(llmc_sampler_sample(s, logits, 6), 1);
  }
  llmc_sampler_release(s);
}

TEST(Tokenizer, UserDefinedPiecesNeverMerge) {
  using T = Tokenizer::Type;
  // "\u2581<br>" is a normal piece with the best score, but a user-defined
  // "<br>" is matched whole and frozen, as SentencePiece does.
  Tokenizer tok({"<unk>", "<s>", "</s>", "\xE2\x96\x81", "<br>",
                 "\xE2\x96\x81<br>", "a"},
                {0, 0, 0, -1, 0, 10, -2},
                {T::Unknown, T::Control, T::Control, T::Normal, T::UserDefined,
                 T::Normal, T::Normal},
                Tokenizer::Options{});
  EXPECT_EQ(tok.encode(" <br>"), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(tok.encode("a<br>a"), (std::vector<int32_t>{3, 6, 4, 6}));
}

TEST(ModelLoad, ProgramMustAgreeWithTheTensors) {
  // The evaluator runs the artifact's own program: every op is checked
  // against the tensors and the config (vocabulary) before it runs, so a
  // program that disagrees is a format error, not a buffer overrun.
  std::string path = std::string(::testing::TempDir()) + "/cfg." +
                     std::to_string(::getpid()) + ".llmc";
  const char *expected[] = {
      "op 0 (embedding): needs a [16, 16] table",
      "op 5 (rope): reads value 99 before it is defined",
      "op 8 (linear): weight must be [16, 8]",
      "op 7 (attention): cache layer 0 is missing or has another shape",
      "carries no program",
  };
  for (int which = 0; which < 5; ++which) {
    test::TinyModel tiny;
    auto &ops = tiny.contents.program.ops;
    switch (which) {
    case 0:
      tiny.contents.config.vocab_size = 16; // the embedding has 32 rows
      break;
    case 1:
      ops[5].inputs[0] = 99;
      break;
    case 2:
      ops[8].inputs[0] = ops[3].results[0]; // o_proj reads k (8 wide)
      break;
    case 3:
      tiny.contents.program.cache[0].kv_heads = 1;
      break;
    default:
      ops.clear();
      break;
    }
    std::string error;
    ASSERT_TRUE(artifact::writeArtifactFile(path, tiny.contents, error)) << error;
    llmc_model *m = nullptr;
    EXPECT_EQ(llmc_model_load(path.c_str(), llmc_reference_program(), 0, &m),
              LLMC_ERROR_FORMAT);
    std::string e = llmc_last_error();
    EXPECT_NE(e.find(expected[which]), std::string::npos) << e;
  }
  std::remove(path.c_str());
}
