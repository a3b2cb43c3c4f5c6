// The artifact writer and loader: round trip, and every kind of damage is a clear error.
#include "TinyModel.h"
#include "runtime/artifact/format.h"
#include "runtime/artifact/reader.h"
#include "runtime/core/synth.h"
#include "llmc/runtime.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <unistd.h>

using namespace llmc;

namespace {

std::string tempPath(const std::string &name) {
  return std::string(::testing::TempDir()) + "/" + name + "." +
         std::to_string(::getpid());
}

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeAll(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string openError(const std::string &path, bool verify = false) {
  std::string error;
  auto r = artifact::Reader::open(path, error, verify);
  EXPECT_EQ(r, nullptr);
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(error.rfind(path + ": ", 0), 0u) << error;
  return error;
}

} // namespace

TEST(Artifact, RoundTrip) {
  test::TinyModel m;
  std::string path = tempPath("rt.llmc"), error;
  ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error)) << error;
  auto r = artifact::Reader::open(path, error, /*verifyWeights=*/true);
  ASSERT_NE(r, nullptr) << error;
  EXPECT_EQ(r->root().config()->hidden_size(), 16);
  EXPECT_EQ(r->root().config()->num_layers(), 2);
  ASSERT_EQ(r->tensors().size(), m.contents.tensors.size());
  for (size_t i = 0; i < r->tensors().size(); ++i) {
    const auto &t = r->tensors()[i];
    EXPECT_EQ(t.name, m.contents.tensors[i].name);
    EXPECT_EQ(t.shape, m.contents.tensors[i].shape);
    ASSERT_EQ(t.size, m.contents.tensors[i].size);
    EXPECT_EQ(std::memcmp(t.data, m.data[i].data(), t.size), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % artifact::kSegmentAlign, 0u);
  }
  EXPECT_EQ(r->root().tokenizer()->pieces()->size(), 32u);
  std::remove(path.c_str());
}

TEST(Artifact, AppendedToAnExecutableIsFoundByItsTrailer) {
  test::TinyModel m;
  std::string path = tempPath("exe"), error;
  writeAll(path, std::string(12345, 'x')); // stands in for the program
  ASSERT_TRUE(artifact::appendArtifact(path, m.contents, error)) << error;
  auto r = artifact::Reader::open(path, error, true);
  ASSERT_NE(r, nullptr) << error;
  EXPECT_EQ(r->fileOffset(), 16384u); // page-aligned after 12345 bytes
  EXPECT_EQ(r->tensors().size(), m.contents.tensors.size());

  // Cut off: the trailer goes, and with it the artifact.
  std::string bytes = readAll(path);
  writeAll(path, bytes.substr(0, bytes.size() - 100));
  EXPECT_NE(openError(path).find("carries no appended artifact"),
            std::string::npos);
  // Trailer intact but the artifact shortened before it.
  std::string cut = bytes.substr(0, 16384 + 4096) +
                    bytes.substr(bytes.size() - sizeof(artifact::Trailer));
  writeAll(path, cut);
  EXPECT_NE(openError(path).find("outside the"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Artifact, Truncated) {
  test::TinyModel m;
  std::string path = tempPath("trunc.llmc"), error;
  ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error));
  std::string bytes = readAll(path);
  writeAll(path, bytes.substr(0, bytes.size() / 2));
  std::string e = openError(path);
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  writeAll(path, bytes.substr(0, 10));
  EXPECT_NE(openError(path).find("too short"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Artifact, BitFlipInMetadataIsDetected) {
  test::TinyModel m;
  std::string path = tempPath("flip.llmc"), error;
  ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error));
  std::string bytes = readAll(path);
  // Every bit of the header's fields and of the flatbuffer is covered.
  for (size_t at : {size_t(12), size_t(40), size_t(70), size_t(200), size_t(900)}) {
    std::string flipped = bytes;
    flipped[at] ^= 0x10;
    writeAll(path, flipped);
    std::string e = openError(path);
    EXPECT_FALSE(e.empty()) << "flip at " << at;
  }
  std::remove(path.c_str());
}

TEST(Artifact, BitFlipInWeightsIsDetectedWhenVerifying) {
  test::TinyModel m;
  std::string path = tempPath("wflip.llmc"), error;
  ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error));
  std::string bytes = readAll(path);
  bytes[bytes.size() - 7] ^= 0x01;
  writeAll(path, bytes);
  EXPECT_NE(openError(path, true).find("checksum mismatch"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Artifact, NotAnArtifact) {
  std::string path = tempPath("junk");
  writeAll(path, std::string(5000, 'j'));
  EXPECT_NE(openError(path).find("not an llmc artifact"), std::string::npos);
  std::remove(path.c_str());
  EXPECT_NE(openError(tempPath("missing")).find("cannot open"),
            std::string::npos);
}

TEST(Artifact, ForgedHeaderWithATinyFlatbufferIsRejected) {
  // Even with a valid checksum, a header whose flatbuffer is too small to
  // hold its identifier is refused before anything reads it.
  test::TinyModel m;
  std::string path = tempPath("forged.llmc"), error;
  ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error));
  std::string bytes = readAll(path);
  artifact::FileHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  h.flatbuffer_offset = h.total_size;
  h.flatbuffer_size = 0;
  h.meta_checksum = 0;
  h.meta_checksum = artifact::hash64(&h, sizeof h, artifact::hash64(nullptr, 0));
  std::memcpy(bytes.data(), &h, sizeof h);
  writeAll(path, bytes);
  EXPECT_NE(openError(path).find("header offsets are out of range"),
            std::string::npos);
  std::remove(path.c_str());
}

TEST(Artifact, NoTruncationOrByteFlipCrashesTheLoader) {
  // Every prefix of a valid artifact, and many single-byte corruptions of
  // it, either load or fail with a message: the loader never crashes and
  // never hands out a tensor outside the file.
  test::TinyModel m;
  std::string path = tempPath("fuzz.llmc"), error;
  ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error));
  const std::string good = readAll(path);
  for (size_t len = 0; len < good.size(); len += (len < 8192 ? 97 : 4093)) {
    writeAll(path, good.substr(0, len));
    std::string e;
    EXPECT_EQ(artifact::Reader::open(path, e), nullptr) << "prefix " << len;
    EXPECT_FALSE(e.empty());
  }
  std::mt19937 rng(17);
  for (int i = 0; i < 300; ++i) {
    std::string bad = good;
    // Mostly the header and flatbuffer, where structure lives.
    size_t at = i % 3 == 0 ? rng() % bad.size() : rng() % 4096;
    bad[at] = static_cast<char>(bad[at] ^ (1 + rng() % 255));
    writeAll(path, bad);
    std::string e;
    auto r = artifact::Reader::open(path, e, /*verifyWeights=*/true);
    if (r) {
      for (const auto &t : r->tensors()) {
        ASSERT_LE(t.size, r->size());
      }
    } else {
      EXPECT_FALSE(e.empty());
    }
  }
  std::remove(path.c_str());
}

/// The logits of prompt 1, 2, 3 on a CPU session of the artifact at `path`
/// (empty if it does not load); `synthetic`, if given, gets the model's
/// synthetic_weights.
static std::vector<float> firstLogits(const std::string &path,
                               int32_t *synthetic = nullptr) {
  llmc_model *model = nullptr;
  EXPECT_EQ(llmc_model_load(path.c_str(), llmc_reference_program(), 0, &model),
            LLMC_OK)
      << llmc_last_error();
  if (!model) {
    return {};
  }
  llmc_model_info info;
  llmc_model_get_info(model, &info);
  if (synthetic) {
    *synthetic = info.synthetic_weights;
  }
  llmc_session *s = nullptr;
  llmc_session_options o = {1, 0, LLMC_KV_F32, LLMC_DEVICE_CPU};
  EXPECT_EQ(llmc_session_create(model, &o, &s), LLMC_OK) << llmc_last_error();
  std::vector<float> v;
  int32_t ids[3] = {1, 2, 3};
  if (s && llmc_session_prefill(s, ids, 3, 1) == LLMC_OK) {
    int64_t rows = 0;
    const float *lg = llmc_session_logits(s, &rows);
    v.assign(lg, lg + info.vocab_size);
  }
  llmc_session_release(s);
  llmc_model_release(model);
  return v;
}

TEST(Artifact, SyntheticWeightsAreLeftOutAndFilledTheSameEveryTime) {
  // --random-weights: the segment is marked synthetic, the file carries no
  // weight bytes, tensors are bounds-checked but have no data, and a CPU
  // session fills them from runtime/core/synth.h (the same values each load).
  test::TinyModel m;
  m.contents.syntheticWeights = true;
  std::string path = tempPath("synth.llmc"), full = tempPath("full.llmc"), error;
  ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error)) << error;
  test::TinyModel real;
  ASSERT_TRUE(artifact::writeArtifactFile(full, real.contents, error)) << error;
  auto r = artifact::Reader::open(path, error, /*verifyWeights=*/true);
  ASSERT_NE(r, nullptr) << error;
  EXPECT_TRUE(r->synthetic());
  EXPECT_LT(readAll(path).size(), readAll(full).size());
  for (const auto &t : r->tensors()) {
    EXPECT_EQ(t.data, nullptr);
    EXPECT_GT(t.size, 0u);
  }
  // Two loads, the same values.
  const std::vector<float> first = firstLogits(path);
  ASSERT_FALSE(first.empty());
  for (float x : first) {
    ASSERT_TRUE(std::isfinite(x));
  }
  EXPECT_EQ(firstLogits(path), first);
  // The CPU never asks for a GPU it does not have.
  llmc_model *model = nullptr;
  ASSERT_EQ(llmc_model_load(path.c_str(), llmc_reference_program(), 0, &model),
            LLMC_OK)
      << llmc_last_error();
  llmc_session *g = nullptr;
  llmc_session_options go = {1, 0, 0, LLMC_DEVICE_CUDA};
  EXPECT_NE(llmc_session_create(model, &go, &g), LLMC_OK);
  EXPECT_NE(std::string(llmc_last_error()).find("--target cuda"), std::string::npos)
      << llmc_last_error();
  llmc_model_release(model);
  std::remove(path.c_str());
  std::remove(full.c_str());
}

TEST(Artifact, SyntheticSeedIsStoredAndChoosesTheValues) {
  // --random-weights=SEED: the seed travels in the artifact, the model says
  // its weights are synthetic, and another seed gives other values (seed 0
  // is the recipe without a seed: tensorKey(i, 0) == i).
  EXPECT_EQ(synth::tensorKey(5, 0), 5u);
  EXPECT_NE(synth::tensorKey(5, 1), synth::tensorKey(5, 0));
  std::string error;
  std::vector<std::vector<float>> logits;
  for (uint64_t seed : {0, 7, 7}) {
    test::TinyModel m;
    m.contents.syntheticWeights = true;
    m.contents.syntheticSeed = seed;
    std::string path = tempPath("seed.llmc");
    ASSERT_TRUE(artifact::writeArtifactFile(path, m.contents, error)) << error;
    auto r = artifact::Reader::open(path, error);
    ASSERT_NE(r, nullptr) << error;
    EXPECT_EQ(r->syntheticSeed(), seed);
    int32_t synthetic = 0;
    logits.push_back(firstLogits(path, &synthetic));
    EXPECT_EQ(synthetic, 1);
    std::remove(path.c_str());
  }
  EXPECT_NE(logits[0], logits[1]);
  EXPECT_EQ(logits[1], logits[2]);
  test::TinyModel real;
  std::string path = tempPath("real.llmc");
  ASSERT_TRUE(artifact::writeArtifactFile(path, real.contents, error)) << error;
  int32_t synthetic = 1;
  firstLogits(path, &synthetic);
  EXPECT_EQ(synthetic, 0);
  std::remove(path.c_str());
}
