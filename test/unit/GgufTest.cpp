// Tests of the GGUF reader and writer: known-answer dequantization of every
// block format, metadata types, and the checks that reject damaged files.
#include "compiler/Gguf.h"
#include "compiler/GgufWriter.h"
#include "TestFiles.h"
#include "runtime/kernels/kernels.h"

#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

using namespace llmc;

namespace {

using test::TempDir;
const auto readAll = test::readFile;
const auto writeAll = test::writeFile;

std::string half(float f) {
  uint16_t h = kernels::floatToHalf(f);
  return std::string(reinterpret_cast<const char *>(&h), 2);
}

/// Opens `bytes` as a GGUF tensor of `type` and `cols` elements, dequantized.
std::vector<float> dequantizeBlock(GgmlType type, int64_t cols,
                                   const std::string &bytes) {
  TempDir dir;
  GgufWriter w;
  w.addTensor("t", type, {1, cols}, [&](std::string &out) { out += bytes; });
  std::string path = dir.file("t.gguf");
  EXPECT_FALSE(static_cast<bool>(w.write(path)));
  auto f = GgufFile::open(path);
  EXPECT_TRUE(static_cast<bool>(f)) << (f ? "" : llvm::toString(f.takeError()));
  if (!f) {
    return {};
  }
  std::vector<float> out(static_cast<size_t>(cols));
  dequantize(*(*f)->tensor("t"), out.data());
  return out;
}

TEST(GgufDequantize, Q8_0) {
  std::string b = half(0.5f);
  for (int j = 0; j < 32; ++j) {
    b.push_back(static_cast<char>(j - 16));
  }
  std::vector<float> x = dequantizeBlock(GgmlType::Q8_0, 32, b);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(x[j], 0.5f * (j - 16)) << j;
  }
}

TEST(GgufDequantize, Q4_0AndQ4_1) {
  // Byte j holds element j (low nibble) and element j + 16 (high nibble).
  std::string nibbles;
  for (int j = 0; j < 16; ++j) {
    nibbles.push_back(static_cast<char>(j | ((15 - j) << 4)));
  }
  std::vector<float> x = dequantizeBlock(GgmlType::Q4_0, 32, half(2.0f) + nibbles);
  std::vector<float> y =
      dequantizeBlock(GgmlType::Q4_1, 32, half(2.0f) + half(-1.0f) + nibbles);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(x[j], 2.0f * (j - 8));
    EXPECT_EQ(x[j + 16], 2.0f * (15 - j - 8));
    EXPECT_EQ(y[j], 2.0f * j - 1.0f);
    EXPECT_EQ(y[j + 16], 2.0f * (15 - j) - 1.0f);
  }
}

TEST(GgufDequantize, Q4_K) {
  // d = 1, dmin = 0.5; sub-block s has 6-bit scale s+1 and min s (the
  // packing of scales 4..7 splits their bits over three bytes).
  uint8_t sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = static_cast<uint8_t>(s + 1 + (s >= 4 ? 40 : 0));
    mn[s] = static_cast<uint8_t>(s + (s >= 4 ? 20 : 0));
  }
  uint8_t scales[12] = {};
  for (int s = 0; s < 4; ++s) {
    scales[s] = static_cast<uint8_t>((sc[s] & 63) | ((sc[s + 4] >> 4) << 6));
    scales[s + 4] = static_cast<uint8_t>((mn[s] & 63) | ((mn[s + 4] >> 4) << 6));
    scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 15) | ((mn[s + 4] & 15) << 4));
  }
  std::string b = half(1.0f) + half(0.5f) +
                  std::string(reinterpret_cast<const char *>(scales), 12);
  // 128 bytes: for each 64-element chunk, 32 bytes of (low: q, high: q').
  for (int chunk = 0; chunk < 4; ++chunk) {
    for (int l = 0; l < 32; ++l) {
      b.push_back(static_cast<char>((l % 16) | (((l + chunk) % 16) << 4)));
    }
  }
  std::vector<float> x = dequantizeBlock(GgmlType::Q4_K, 256, b);
  for (int chunk = 0; chunk < 4; ++chunk) {
    for (int l = 0; l < 32; ++l) {
      int s0 = 2 * chunk, s1 = 2 * chunk + 1;
      EXPECT_EQ(x[chunk * 64 + l], 1.0f * sc[s0] * (l % 16) - 0.5f * mn[s0]);
      EXPECT_EQ(x[chunk * 64 + 32 + l],
                1.0f * sc[s1] * ((l + chunk) % 16) - 0.5f * mn[s1]);
    }
  }
}

TEST(GgufDequantize, Q6_K) {
  // Element e of each 128-half: l = e % 32, quarter k = e / 32; its 6-bit
  // value is (low nibble | 2 high bits << 4) - 32, times d * scale[e / 16].
  uint8_t ql[128] = {}, qh[64] = {};
  int8_t scales[16];
  int q[256];
  for (int e = 0; e < 256; ++e) {
    q[e] = (e * 7) % 64;
  }
  for (int s = 0; s < 16; ++s) {
    scales[s] = static_cast<int8_t>(s - 8);
  }
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      int v[4];
      for (int k = 0; k < 4; ++k) {
        v[k] = q[h * 128 + k * 32 + l];
      }
      ql[h * 64 + l] = static_cast<uint8_t>((v[0] & 15) | ((v[2] & 15) << 4));
      ql[h * 64 + l + 32] = static_cast<uint8_t>((v[1] & 15) | ((v[3] & 15) << 4));
      qh[h * 32 + l] = static_cast<uint8_t>((v[0] >> 4) | ((v[1] >> 4) << 2) |
                                            ((v[2] >> 4) << 4) | ((v[3] >> 4) << 6));
    }
  }
  std::string b(reinterpret_cast<const char *>(ql), 128);
  b.append(reinterpret_cast<const char *>(qh), 64);
  b.append(reinterpret_cast<const char *>(scales), 16);
  b += half(0.25f);
  std::vector<float> x = dequantizeBlock(GgmlType::Q6_K, 256, b);
  for (int e = 0; e < 256; ++e) {
    EXPECT_EQ(x[e], 0.25f * scales[e / 16] * (q[e] - 32)) << e;
  }
}

TEST(GgufDequantize, Floats) {
  std::string f16 = half(1.5f) + half(-2.0f);
  uint16_t bf = kernels::floatToBF16(3.0f);
  std::string bf16(reinterpret_cast<const char *>(&bf), 2);
  EXPECT_EQ(dequantizeBlock(GgmlType::F16, 2, f16), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(dequantizeBlock(GgmlType::BF16, 1, bf16), (std::vector<float>{3.0f}));
}

TEST(GgufQ8_0, QuantizeMatchesTheFormat) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) {
    x[i] = 0.01f * (i - 20);
  }
  std::string q;
  quantizeQ8_0(x.data(), 64, q);
  ASSERT_EQ(q.size(), 68u);
  std::vector<float> y = dequantizeBlock(GgmlType::Q8_0, 64, q);
  for (int i = 0; i < 64; ++i) {
    EXPECT_NEAR(y[i], x[i], 0.44f / 127 / 2 * 1.01f) << i;
  }
}

TEST(GgufFile, MetadataAndShapesRoundTrip) {
  TempDir dir;
  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addU32("llama.block_count", 7);
  w.addF32("llama.rope.freq_base", 500000.0f);
  w.addBool("flag", true);
  w.addStrings("names", {"a", "", "ccc"});
  w.addI32s("ints", {1, -2, 3});
  w.addF32s("floats", {0.5f});
  std::vector<float> data(6, 1.0f);
  w.addTensor("m", GgmlType::F32, {2, 3}, [&](std::string &out) {
    out.append(reinterpret_cast<const char *>(data.data()), 24);
  });
  w.addTensor("v", GgmlType::F16, {5}, [&](std::string &out) {
    for (int i = 0; i < 5; ++i) {
      out += half(1.0f);
    }
  });
  std::string path = dir.file("m.gguf");
  ASSERT_FALSE(static_cast<bool>(w.write(path)));
  auto f = GgufFile::open(path);
  ASSERT_TRUE(static_cast<bool>(f)) << llvm::toString(f.takeError());
  const GgufFile &g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(*g.getString("general.architecture", std::nullopt), "llama");
  EXPECT_EQ(*g.getInt("llama.block_count", std::nullopt), 7);
  EXPECT_EQ(*g.getFloat("llama.rope.freq_base", std::nullopt), 500000.0);
  EXPECT_EQ(*g.getInt("missing", 42), 42);
  EXPECT_EQ(g.get("flag")->i, 1);
  EXPECT_EQ(g.get("names")->strings, (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(g.get("ints")->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(g.get("floats")->floats, (std::vector<double>{0.5}));
  // Type errors name the key.
  auto wrong = g.getInt("general.architecture", std::nullopt);
  ASSERT_FALSE(static_cast<bool>(wrong));
  EXPECT_NE(llvm::toString(wrong.takeError())
                .find("metadata 'general.architecture' is string, expected an integer"),
            std::string::npos);
  ASSERT_EQ(g.tensors().size(), 2u);
  EXPECT_EQ(g.tensor("m")->shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g.tensor("m")->dims, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(g.tensor("v")->data.size(), 10u);
  // Tensor data start 32-byte aligned in the file (the buffer's own address
  // depends on how LLVM read the file, mmap or heap copy).
  EXPECT_EQ((g.tensor("v")->data.data() - g.buffer()->getBufferStart()) % 32, 0);
}

/// A valid file's bytes, with a 32-element Q8_0 tensor "t".
std::string validFile(const TempDir &dir) {
  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addTensor("t", GgmlType::Q8_0, {1, 32}, [](std::string &out) {
    out += half(1.0f) + std::string(32, '\1');
  });
  EXPECT_FALSE(static_cast<bool>(w.write(dir.file("ok.gguf"))));
  return readAll(dir.file("ok.gguf"));
}

std::string openError(const TempDir &dir, const std::string &bytes) {
  writeAll(dir.file("bad.gguf"), bytes);
  auto f = GgufFile::open(dir.file("bad.gguf"));
  if (f) {
    return "(opened)";
  }
  return llvm::toString(f.takeError());
}

TEST(GgufFile, RejectsDamage) {
  TempDir dir;
  const std::string ok = validFile(dir);
  // Every prefix that cuts the header or the tensor's 34 bytes is an error,
  // never a crash (the last 30 bytes are alignment padding, not needed).
  ASSERT_EQ(ok.size() % 32, 0u);
  EXPECT_EQ(openError(dir, ok.substr(0, ok.size() - 30)), "(opened)");
  for (size_t n = 0; n < ok.size() - 30; ++n) {
    std::string e = openError(dir, ok.substr(0, n));
    EXPECT_NE(e, "(opened)") << n;
    EXPECT_EQ(e.find(dir.file("bad.gguf") + ": "), 0u) << e;
  }
  // The key length field of the first entry, far too large.
  std::string big = ok;
  uint64_t huge = 1ull << 60;
  std::memcpy(&big[24], &huge, 8);
  EXPECT_NE(openError(dir, big).find("truncated GGUF"), std::string::npos);
  // A metadata type past float64.
  std::string badType = ok;
  size_t typePos = 24 + 8 + std::strlen("general.architecture");
  badType[typePos] = 13;
  EXPECT_NE(openError(dir, badType).find("has unknown type 13"), std::string::npos);
  // A tensor with 0 and with 5 dimensions.
  size_t nameAt = ok.find("t", ok.find("llama") + 5);
  size_t ndimPos = nameAt + 1;
  std::string dims0 = ok, dims5 = ok;
  dims0[ndimPos] = 0;
  dims5[ndimPos] = 5;
  EXPECT_NE(openError(dir, dims0).find("has 0 dimensions"), std::string::npos);
  EXPECT_NE(openError(dir, dims5).find("has 5 dimensions"), std::string::npos);
  // A row length that is not a multiple of the block.
  std::string rows = ok;
  rows[ndimPos + 4] = 33;
  EXPECT_NE(openError(dir, rows).find("not a multiple of its block of 32"),
            std::string::npos);
  // A misaligned offset.
  std::string offset = ok;
  offset[ndimPos + 4 + 16 + 4] = 3;
  EXPECT_NE(openError(dir, offset).find("is not aligned to 32"), std::string::npos);
}

TEST(GgufFile, RejectsDuplicatesAndOverlaps) {
  TempDir dir;
  GgufWriter w;
  w.addU32("k", 1);
  w.addU32("k", 2);
  ASSERT_FALSE(static_cast<bool>(w.write(dir.file("dup.gguf"))));
  auto f = GgufFile::open(dir.file("dup.gguf"));
  ASSERT_FALSE(static_cast<bool>(f));
  EXPECT_NE(llvm::toString(f.takeError()).find("metadata key 'k' appears twice"),
            std::string::npos);

  GgufWriter t;
  for (int i = 0; i < 2; ++i) {
    t.addTensor("x", GgmlType::F32, {8}, [](std::string &out) {
      out += std::string(32, '\0');
    });
  }
  ASSERT_FALSE(static_cast<bool>(t.write(dir.file("dupt.gguf"))));
  auto g = GgufFile::open(dir.file("dupt.gguf"));
  ASSERT_FALSE(static_cast<bool>(g));
  EXPECT_NE(llvm::toString(g.takeError()).find("tensor 'x' appears twice"),
            std::string::npos);

  // Two tensors pointing at the same bytes: patch the second offset to 0.
  GgufWriter o;
  o.addTensor("a", GgmlType::F32, {8}, [](std::string &out) { out += std::string(32, '\0'); });
  o.addTensor("b", GgmlType::F32, {8}, [](std::string &out) { out += std::string(32, '\0'); });
  ASSERT_FALSE(static_cast<bool>(o.write(dir.file("o.gguf"))));
  std::string bytes = readAll(dir.file("o.gguf"));
  size_t bInfo = bytes.find('b', 24 + 8); // the second tensor's name
  uint64_t zero = 0;
  std::memcpy(&bytes[bInfo + 1 + 4 + 8 + 4], &zero, 8);
  EXPECT_NE(openError(dir, bytes).find("two tensors' data overlap"), std::string::npos);
}

} // namespace
