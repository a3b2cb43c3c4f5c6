// Tests of the safetensors reader, checkpoint loader and importer, on files each test writes.
#include "compiler/Checkpoint.h"
#include "compiler/Importer.h"
#include "compiler/SafetensorsWriter.h"
#include "TestFiles.h"
#include "dialects/llm/LLMDialect.h"
#include "runtime/kernels/kernels.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <random>

using namespace llmc;

namespace {

using test::TempDir;
using test::writeFile;

std::vector<char> f32Bytes(const std::vector<float> &v) {
  std::vector<char> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

TensorData f32Tensor(const std::string &name, std::vector<int64_t> shape,
                     float seed) {
  int64_t n = 1;
  for (int64_t d : shape) {
    n *= d;
  }
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) {
    v[i] = seed + 0.001f * static_cast<float>(i);
  }
  return {name, DType::F32, shape, f32Bytes(v)};
}

/// The error text of `e`, consuming it ("" if it is a success).
template <typename T> std::string errorOf(llvm::Expected<T> e) {
  if (e) {
    return "";
  }
  return llvm::toString(e.takeError());
}

// A tiny valid LLaMA: hidden 8, 2 heads of 4, 1 KV head, FFN 12, vocab 16.
constexpr const char *kTinyConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
  "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16,
  "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
  "tie_word_embeddings": TIED, "bos_token_id": 1, "eos_token_id": 2
})";

std::string tinyConfig(bool tied) {
  std::string c = kTinyConfig;
  c.replace(c.find("TIED"), 4, tied ? "true" : "false");
  return c;
}

std::vector<TensorData> tinyTensors(bool withHead, DType dtype = DType::F32) {
  std::vector<TensorData> t;
  t.push_back(f32Tensor("model.embed_tokens.weight", {16, 8}, 0.1f));
  for (int l = 0; l < 2; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    t.push_back(f32Tensor(p + "input_layernorm.weight", {8}, 1.0f));
    t.push_back(f32Tensor(p + "self_attn.q_proj.weight", {8, 8}, 0.2f));
    t.push_back(f32Tensor(p + "self_attn.k_proj.weight", {4, 8}, 0.3f));
    t.push_back(f32Tensor(p + "self_attn.v_proj.weight", {4, 8}, 0.4f));
    t.push_back(f32Tensor(p + "self_attn.o_proj.weight", {8, 8}, 0.5f));
    t.push_back(f32Tensor(p + "post_attention_layernorm.weight", {8}, 1.0f));
    t.push_back(f32Tensor(p + "mlp.gate_proj.weight", {12, 8}, 0.6f));
    t.push_back(f32Tensor(p + "mlp.up_proj.weight", {12, 8}, 0.7f));
    t.push_back(f32Tensor(p + "mlp.down_proj.weight", {8, 12}, 0.8f));
  }
  t.push_back(f32Tensor("model.norm.weight", {8}, 1.0f));
  if (withHead) {
    t.push_back(f32Tensor("lm_head.weight", {16, 8}, 0.9f));
  }
  if (dtype != DType::F32) {
    for (TensorData &td : t) {
      std::vector<char> out(td.bytes.size() / 2);
      for (size_t i = 0; i < td.bytes.size() / 4; ++i) {
        float f;
        std::memcpy(&f, td.bytes.data() + 4 * i, 4);
        uint16_t h = dtype == DType::F16 ? kernels::floatToHalf(f) : kernels::floatToBF16(f);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      td.bytes = std::move(out);
      td.dtype = dtype;
    }
  }
  return t;
}

//===----------------------------------------------------------------------===//
// Reading valid files
//===----------------------------------------------------------------------===//

TEST(Safetensors, ReadsEveryFloatDType) {
  TempDir dir;
  std::vector<float> values = {1.0f, -2.5f, 0.125f, 3.0f, 65504.0f, -0.0f};
  std::vector<TensorData> tensors;
  tensors.push_back({"a", DType::F32, {2, 3}, f32Bytes(values)});
  for (DType dt : {DType::F16, DType::BF16}) {
    std::vector<char> b(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      uint16_t h = dt == DType::F16 ? kernels::floatToHalf(values[i])
                                    : kernels::floatToBF16(values[i]);
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
    tensors.push_back({dt == DType::F16 ? "b" : "c", dt, {3, 2}, b});
  }
  ASSERT_FALSE(writeSafetensors(dir.file("m.safetensors"), tensors));
  auto f = SafetensorsFile::open(dir.file("m.safetensors"));
  ASSERT_TRUE(bool(f)) << llvm::toString(f.takeError());
  ASSERT_EQ((*f)->tensors().size(), 3u);

  const TensorView *a = (*f)->lookup("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::F32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(a->data.data(), values.data(), 24), 0);

  const TensorView *b = (*f)->lookup("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::F16);
  EXPECT_EQ(b->data.size(), 12u);
  uint16_t h;
  std::memcpy(&h, b->data.data() + 2, 2);
  EXPECT_EQ(h, 0xC100); // -2.5 in IEEE half
  std::memcpy(&h, b->data.data() + 8, 2);
  EXPECT_EQ(h, 0x7BFF); // 65504, the largest half

  const TensorView *c = (*f)->lookup("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, DType::BF16);
  std::memcpy(&h, c->data.data() + 2, 2);
  EXPECT_EQ(h, 0xC020); // -2.5 in bfloat16
  EXPECT_EQ((*f)->lookup("missing"), nullptr);
}

TEST(Safetensors, ReadsMetadataAndEmptyTensors) {
  TempDir dir;
  std::string json = R"({"__metadata__":{"format":"pt"},"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})";
  std::string img(8, '\0');
  img[0] = static_cast<char>(json.size());
  writeFile(dir.file("m.safetensors"), img + json);
  auto f = SafetensorsFile::open(dir.file("m.safetensors"));
  ASSERT_TRUE(bool(f)) << llvm::toString(f.takeError());
  EXPECT_EQ((*f)->metadata().lookup("format"), "pt");
  EXPECT_EQ((*f)->lookup("e")->numElements(), 0);
}

TEST(Safetensors, TensorsPointIntoTheMapping) {
  TempDir dir;
  ASSERT_FALSE(writeSafetensors(dir.file("m.safetensors"),
                                {f32Tensor("x", {1024, 64}, 0.0f)}));
  auto f = SafetensorsFile::open(dir.file("m.safetensors"));
  ASSERT_TRUE(bool(f));
  const TensorView *x = (*f)->lookup("x");
  // No copy: the view lies inside the file's buffer, which it keeps alive.
  EXPECT_GE(x->data.data(), x->file->getBufferStart());
  EXPECT_LE(x->data.data() + x->data.size(), x->file->getBufferEnd());
  EXPECT_EQ(x->file->getBufferKind(), llvm::MemoryBuffer::MemoryBuffer_MMap);
}

//===----------------------------------------------------------------------===//
// Bad files: each is a one-line error naming the file and the problem.
//===----------------------------------------------------------------------===//

class BadSafetensors : public ::testing::Test {
protected:
  std::string openError(const std::string &image) {
    std::string path = dir.file("bad.safetensors");
    writeFile(path, image);
    std::string err = errorOf(SafetensorsFile::open(path));
    EXPECT_NE(err.find(path), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    return err;
  }
  std::string withHeader(const std::string &json, size_t dataBytes = 0) {
    std::string img(8, '\0');
    uint64_t n = json.size();
    std::memcpy(img.data(), &n, 8);
    return img + json + std::string(dataBytes, '\0');
  }
  TempDir dir;
};

TEST_F(BadSafetensors, Truncated) {
  EXPECT_NE(openError("abc").find("truncated: 3 bytes"), std::string::npos);
}

TEST_F(BadSafetensors, TruncatedInTheData) {
  std::string img = serializeSafetensors({f32Tensor("x", {16}, 0.0f)});
  img.resize(img.size() - 10);
  EXPECT_NE(openError(img).find("run past the end of the data"),
            std::string::npos);
}

TEST_F(BadSafetensors, HeaderLengthBeyondFile) {
  std::string img = withHeader("{}");
  img[0] = 100;
  EXPECT_NE(openError(img).find("header length 100 runs past the end"),
            std::string::npos);
}

TEST_F(BadSafetensors, HugeHeaderLength) {
  std::string img(16, '\xff');
  EXPECT_NE(openError(img).find("runs past the end"), std::string::npos);
}

TEST_F(BadSafetensors, InvalidJson) {
  EXPECT_NE(openError(withHeader("{\"x\": [1, 2")).find("invalid header JSON"),
            std::string::npos);
}

TEST_F(BadSafetensors, HeaderNotAnObject) {
  EXPECT_NE(openError(withHeader("[1,2,3]")).find("not an object"),
            std::string::npos);
}

TEST_F(BadSafetensors, MissingFields) {
  EXPECT_NE(openError(withHeader(R"({"x":{"dtype":"F32"}})"))
                .find("tensor 'x': entry needs dtype, shape and data_offsets"),
            std::string::npos);
}

TEST_F(BadSafetensors, UnknownDType) {
  EXPECT_NE(openError(withHeader(
                          R"({"x":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}})",
                          1))
                .find("unknown dtype 'F8_E9'"),
            std::string::npos);
}

TEST_F(BadSafetensors, OffsetsOutOfRange) {
  EXPECT_NE(openError(withHeader(
                          R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                          8))
                .find("data_offsets [0, 16] run past the end of the data (8 bytes"),
            std::string::npos);
}

TEST_F(BadSafetensors, OffsetsReversed) {
  EXPECT_NE(openError(withHeader(
                          R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})",
                          8))
                .find("are reversed"),
            std::string::npos);
}

TEST_F(BadSafetensors, SizeDisagreesWithShape) {
  EXPECT_NE(openError(withHeader(
                          R"({"x":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})",
                          16))
                .find("holds 16 bytes but shape and F16 need 8"),
            std::string::npos);
}

TEST_F(BadSafetensors, NegativeShape) {
  EXPECT_NE(openError(withHeader(
                          R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                          4))
                .find("not a non-negative integer"),
            std::string::npos);
}

TEST_F(BadSafetensors, OverlappingTensors) {
  EXPECT_NE(openError(withHeader(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                 R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                 24))
                .find("tensors 'a' and 'b' overlap"),
            std::string::npos);
}

TEST_F(BadSafetensors, DuplicateTensorName) {
  EXPECT_NE(openError(withHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                 R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                 8))
                .find("the header names tensor 'a' twice"),
            std::string::npos);
}

TEST(BadSafetensorsFile, NotARegularFile) {
  // /dev/zero would be read without bound.
  std::string err = errorOf(SafetensorsFile::open("/dev/zero"));
  EXPECT_NE(err.find("/dev/zero: not a regular file"), std::string::npos) << err;
}

TEST_F(BadSafetensors, MissingFile) {
  std::string err = errorOf(SafetensorsFile::open(dir.file("nope.safetensors")));
  EXPECT_NE(err.find("nope.safetensors: cannot open"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Checkpoints: config.json, sharding, shapes
//===----------------------------------------------------------------------===//

TEST(Checkpoint, SingleFileAndItsConfig) {
  TempDir dir;
  writeFile(dir.file("config.json"), tinyConfig(true));
  ASSERT_FALSE(writeSafetensors(dir.file("model.safetensors"), tinyTensors(false)));
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  const ModelConfig &c = (*ck)->config();
  EXPECT_EQ(c.hiddenSize, 8);
  EXPECT_EQ(c.numKVHeads, 1);
  EXPECT_EQ(c.headDim, 4); // derived: hidden / heads
  EXPECT_TRUE(c.tieWordEmbeddings);
  EXPECT_NE((*ck)->lookup("model.norm.weight"), nullptr);

  // A .safetensors path with config.json beside it works too.
  auto byFile = Checkpoint::open(dir.file("model.safetensors"));
  ASSERT_TRUE(bool(byFile)) << llvm::toString(byFile.takeError());
}

TEST(Checkpoint, Sharded) {
  TempDir dir;
  writeFile(dir.file("config.json"), tinyConfig(false));
  std::vector<TensorData> all = tinyTensors(true);
  std::vector<TensorData> a(all.begin(), all.begin() + 10),
      b(all.begin() + 10, all.end());
  ASSERT_FALSE(writeSafetensors(dir.file("model-00001-of-00002.safetensors"), a));
  ASSERT_FALSE(writeSafetensors(dir.file("model-00002-of-00002.safetensors"), b));
  std::string index = R"({"metadata":{},"weight_map":{)";
  for (size_t i = 0; i < all.size(); ++i) {
    index += (i ? "," : "") + std::string("\"") + all[i].name + "\":\"" +
             (i < 10 ? "model-00001-of-00002.safetensors"
                     : "model-00002-of-00002.safetensors") +
             "\"";
  }
  index += "}}";
  writeFile(dir.file("model.safetensors.index.json"), index);
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  EXPECT_EQ((*ck)->files().size(), 2u);
  EXPECT_NE((*ck)->lookup("model.embed_tokens.weight"), nullptr);
  EXPECT_NE((*ck)->lookup("lm_head.weight"), nullptr);

  mlir::MLIRContext ctx;
  auto module = importCheckpoint(ctx, **ck);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
}

TEST(Checkpoint, MissingShard) {
  TempDir dir;
  writeFile(dir.file("config.json"), tinyConfig(true));
  writeFile(dir.file("model.safetensors.index.json"),
            R"({"weight_map":{"model.norm.weight":"model-00009.safetensors"}})");
  std::string err = errorOf(Checkpoint::open(dir.path()));
  EXPECT_NE(err.find("model.safetensors.index.json: shard "
                     "'model-00009.safetensors' (holding 'model.norm.weight') "
                     "is missing"),
            std::string::npos)
      << err;
}

TEST(Checkpoint, NoWeights) {
  TempDir dir;
  writeFile(dir.file("config.json"), tinyConfig(true));
  EXPECT_NE(errorOf(Checkpoint::open(dir.path()))
                .find("no model.safetensors or model.safetensors.index.json"),
            std::string::npos);
}

TEST(Checkpoint, UnsupportedArchitecture) {
  TempDir dir;
  writeFile(dir.file("config.json"),
            R"({"architectures":["GPT2LMHeadModel"],"model_type":"gpt2"})");
  std::string err = errorOf(Checkpoint::open(dir.path()));
  EXPECT_NE(err.find("config.json: unsupported architecture: model_type 'gpt2'"),
            std::string::npos)
      << err;
}

TEST(Checkpoint, BadConfigs) {
  struct Case {
    const char *from, *to, *message;
  } cases[] = {
      {"\"num_key_value_heads\": 1", "\"num_key_value_heads\": 3",
       "num_key_value_heads (3) does not divide num_attention_heads (2)"},
      {"\"hidden_size\": 8", "\"hidden_size\": -8",
       "field 'hidden_size' must be a positive integer"},
      {"\"vocab_size\": 16,", "",
       "missing required field 'vocab_size'"},
      {"\"rope_theta\": 10000.0", "\"rope_theta\": 10000.0, \"rope_scaling\": {\"type\": \"linear\"}",
       "rope_scaling is not supported yet"},
      {"\"hidden_size\": 8", "\"hidden_size\": 8, \"head_dim\": 3",
       "head_dim (3) x num_attention_heads (2) differs from hidden_size (8)"},
      {"\"model_type\": \"llama\",", "\"model_type\": \"llama\", \"hidden_act\": \"gelu\",",
       "unsupported hidden_act"},
      // Valid JSON of an unexpected type is an error, not an abort.
      {"\"model_type\": \"llama\",", "\"model_type\": 5,",
       "a field has an unexpected type"},
      {"\"tie_word_embeddings\": true", "\"tie_word_embeddings\": null",
       "a field has an unexpected type"},
      {"\"rope_theta\": 10000.0", "\"rope_theta\": 10000.0, \"attention_bias\": 0",
       "a field has an unexpected type"},
  };
  for (const Case &c : cases) {
    TempDir dir;
    std::string cfg = tinyConfig(true);
    size_t at = cfg.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    cfg.replace(at, strlen(c.from), c.to);
    writeFile(dir.file("config.json"), cfg);
    std::string err = errorOf(parseConfig(dir.file("config.json")));
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_NE(err.find("config.json: "), std::string::npos) << err;
  }
  TempDir dir;
  writeFile(dir.file("config.json"), "{ not json");
  EXPECT_NE(errorOf(parseConfig(dir.file("config.json"))).find("invalid JSON"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

class Import : public ::testing::Test {
protected:
  std::string importError(std::vector<TensorData> tensors, bool tied = true) {
    writeFile(dir.file("config.json"), tinyConfig(tied));
    EXPECT_FALSE(writeSafetensors(dir.file("model.safetensors"), tensors));
    auto ck = Checkpoint::open(dir.path());
    if (!ck) {
      return llvm::toString(ck.takeError());
    }
    return errorOf(importCheckpoint(ctx, **ck));
  }
  TempDir dir;
  mlir::MLIRContext ctx;
};

TEST_F(Import, EveryDTypeImports) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    EXPECT_EQ(importError(tinyTensors(false, dt)), "") << dtypeName(dt);
  }
}

TEST_F(Import, UntiedHead) {
  EXPECT_EQ(importError(tinyTensors(true), /*tied=*/false), "");
}

TEST_F(Import, UntiedWithoutHeadIsMissingTensor) {
  std::string err = importError(tinyTensors(false), /*tied=*/false);
  EXPECT_NE(err.find("model.safetensors: missing tensor 'lm_head.weight'"),
            std::string::npos)
      << err;
}

TEST_F(Import, MissingTensor) {
  auto t = tinyTensors(false);
  t.erase(t.begin() + 3); // layer 0's k_proj
  std::string err = importError(t);
  EXPECT_NE(err.find("missing tensor 'model.layers.0.self_attn.k_proj.weight'"),
            std::string::npos)
      << err;
}

TEST_F(Import, ShapeDisagreesWithConfig) {
  auto t = tinyTensors(false);
  t[2] = f32Tensor("model.layers.0.self_attn.q_proj.weight", {8, 4}, 0.0f);
  std::string err = importError(t);
  EXPECT_NE(err.find("tensor 'model.layers.0.self_attn.q_proj.weight' has 4 "
                     "columns, not hidden_size (8)"),
            std::string::npos)
      << err;
  t = tinyTensors(false);
  t[5] = f32Tensor("model.layers.0.self_attn.o_proj.weight", {8, 4}, 0.0f);
  err = importError(t);
  EXPECT_NE(err.find("tensor 'model.layers.0.self_attn.o_proj.weight' has "
                     "shape [8, 4], expected [8, 8]"),
            std::string::npos)
      << err;
}

TEST_F(Import, EachLayerHasItsOwnShapes) {
  // Layer 1 pruned to one query head and an FFN of 6, as FLaP or LLM-Pruner
  // exports leave it: the shapes come from the layer's own tensors.
  auto t = tinyTensors(false);
  t[11] = f32Tensor("model.layers.1.self_attn.q_proj.weight", {4, 8}, 0.2f);
  t[14] = f32Tensor("model.layers.1.self_attn.o_proj.weight", {8, 4}, 0.5f);
  t[16] = f32Tensor("model.layers.1.mlp.gate_proj.weight", {6, 8}, 0.6f);
  t[17] = f32Tensor("model.layers.1.mlp.up_proj.weight", {6, 8}, 0.7f);
  t[18] = f32Tensor("model.layers.1.mlp.down_proj.weight", {8, 6}, 0.8f);
  writeFile(dir.file("config.json"), tinyConfig(true));
  ASSERT_FALSE(writeSafetensors(dir.file("model.safetensors"), t));
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(static_cast<bool>(ck)) << llvm::toString(ck.takeError());
  auto m = importCheckpoint(ctx, **ck);
  ASSERT_TRUE(static_cast<bool>(m)) << llvm::toString(m.takeError());
  std::vector<int64_t> heads, widths;
  (**m).walk([&](llmc::llm::AttentionOp a) { heads.push_back(a.getNumHeads()); });
  (**m).walk([&](llmc::llm::SiLUOp s) {
    widths.push_back(mlir::cast<mlir::RankedTensorType>(s.getType()).getDimSize(1));
  });
  EXPECT_EQ(heads, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(widths, (std::vector<int64_t>{12, 6}));
}

TEST_F(Import, InconsistentLayerShapes) {
  struct Case {
    size_t index;
    const char *name;
    std::vector<int64_t> shape;
    const char *message;
  } cases[] = {
      {3, "model.layers.0.self_attn.k_proj.weight", {6, 8},
       "tensor 'model.layers.0.self_attn.k_proj.weight' has 6 rows, not a "
       "positive multiple of head_dim (4)"},
      {3, "model.layers.0.self_attn.k_proj.weight", {12, 8},
       "tensor 'model.layers.0.self_attn.k_proj.weight' gives 3 key/value "
       "heads, which do not divide the 2 query heads of q_proj"},
      {8, "model.layers.0.mlp.up_proj.weight", {6, 8},
       "tensor 'model.layers.0.mlp.up_proj.weight' has shape [6, 8], expected "
       "[12, 8]"},
      {5, "model.layers.0.self_attn.o_proj.weight", {8, 4},
       "tensor 'model.layers.0.self_attn.o_proj.weight' has shape [8, 4], "
       "expected [8, 8]"},
      {2, "model.layers.0.self_attn.q_proj.weight", {8},
       "tensor 'model.layers.0.self_attn.q_proj.weight' has rank 1, expected 2"},
  };
  for (const Case &c : cases) {
    auto t = tinyTensors(false);
    t[c.index] = f32Tensor(c.name, c.shape, 0.1f);
    std::string err = importError(t);
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_NE(err.find("model.safetensors: "), std::string::npos) << err;
  }
}

TEST_F(Import, AttentionBiasCoversOProj) {
  // Hugging Face's attention_bias puts a bias on q, k, v and o_proj.
  std::string cfg = tinyConfig(true);
  cfg.replace(cfg.find("\"model_type\""), 0, "\"attention_bias\": true, ");
  auto t = tinyTensors(false);
  for (const char *n : {"q", "k", "v"}) {
    int64_t rows = std::string(n) == "q" ? 8 : 4;
    for (int l = 0; l < 2; ++l) {
      t.push_back(f32Tensor("model.layers." + std::to_string(l) +
                                ".self_attn." + n + "_proj.bias",
                            {rows}, 0.1f));
    }
  }
  t.push_back(f32Tensor("model.layers.0.self_attn.o_proj.bias", {8}, 0.1f));
  writeFile(dir.file("config.json"), cfg);
  ASSERT_FALSE(writeSafetensors(dir.file("model.safetensors"), t));
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(static_cast<bool>(ck)) << llvm::toString(ck.takeError());
  std::string err = errorOf(importCheckpoint(ctx, **ck));
  EXPECT_NE(err.find("missing tensor 'model.layers.1.self_attn.o_proj.bias'"),
            std::string::npos)
      << err;
}

TEST_F(Import, EveryTensorIsUsedOrNamed) {
  // A third layer in a two-layer config is not dropped silently.
  auto t = tinyTensors(false);
  t.push_back(f32Tensor("model.layers.2.input_layernorm.weight", {8}, 1.0f));
  std::string err = importError(t);
  EXPECT_NE(err.find("model.safetensors: tensor 'model.layers.2.input_layernorm."
                     "weight' is not used by the model config.json describes "
                     "(num_hidden_layers 2"),
            std::string::npos)
      << err;
  // A bias the config does not announce (attention_bias is false).
  t = tinyTensors(false);
  t.push_back(f32Tensor("model.layers.0.self_attn.q_proj.bias", {8}, 0.1f));
  err = importError(t);
  EXPECT_NE(err.find("'model.layers.0.self_attn.q_proj.bias' is not used"),
            std::string::npos)
      << err;
  // A tied checkpoint may carry a copy of the embedding as lm_head, not
  // another matrix; rotary inv_freq buffers are recomputed and allowed.
  t = tinyTensors(false);
  t.push_back(f32Tensor("lm_head.weight", {16, 8}, 0.1f)); // = the embedding
  t.push_back(f32Tensor("model.layers.0.self_attn.rotary_emb.inv_freq", {2}, 1.0f));
  EXPECT_EQ(importError(t), "");
  t = tinyTensors(false);
  t.push_back(f32Tensor("lm_head.weight", {16, 8}, 0.9f));
  err = importError(t);
  EXPECT_NE(err.find("'lm_head.weight' is not used"), std::string::npos) << err;
  EXPECT_NE(err.find("tie_word_embeddings true"), std::string::npos) << err;
}

TEST_F(Import, UnsupportedDType) {
  auto t = tinyTensors(false);
  t[1].dtype = DType::I32; // input_layernorm, same byte size
  std::string err = importError(t);
  EXPECT_NE(err.find("'model.layers.0.input_layernorm.weight' has unsupported "
                     "dtype I32"),
            std::string::npos)
      << err;
}

TEST(ImportShared, Stories260K) {
  std::string dir = std::string(LLMC_SHARED_DIR) + "/models/stories260K";
  if (!llvm::sys::fs::exists(dir + "/config.json")) {
    GTEST_SKIP() << "shared/models/stories260K not found at " << dir;
  }
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  mlir::MLIRContext ctx;
  auto module = importCheckpoint(ctx, **ck);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  int globals = 0;
  (*module)->walk([&](mlir::Operation *op) {
    globals += op->getName().getStringRef() == "llm.global";
  });
  EXPECT_EQ(globals, 47);
}

TEST(ImportShared, AConfigAloneListsTheCheckpointsTensors) {
  // `llmc compile config.json --random-weights`: the config alone lists
  // every tensor the checkpoint has, with the same shapes, and no bytes; the
  // import gives the same globals, without data.
  std::string dir = std::string(LLMC_SHARED_DIR) + "/models/stories260K";
  if (!llvm::sys::fs::exists(dir + "/config.json")) {
    GTEST_SKIP() << "shared/models/stories260K not found at " << dir;
  }
  auto real = Checkpoint::open(dir);
  ASSERT_TRUE(bool(real)) << llvm::toString(real.takeError());
  // Only when asked: otherwise a config alone is an error saying so.
  EXPECT_NE(errorOf(Checkpoint::open(dir + "/config.json"))
                .find("config.json: a config alone has no weights"),
            std::string::npos);
  auto alone = Checkpoint::open(dir + "/config.json", /*allowShapesOnly=*/true);
  ASSERT_TRUE(bool(alone)) << llvm::toString(alone.takeError());
  EXPECT_TRUE((*alone)->shapesOnly());
  EXPECT_FALSE((*real)->shapesOnly());
  EXPECT_STREQ((*alone)->format(), "config");
  EXPECT_EQ((*alone)->sourceBytes(), 0u);
  std::map<std::string, std::vector<int64_t>> want, got;
  for (const TensorView *t : (*real)->tensors()) {
    want[t->name] = t->shape;
  }
  for (const TensorView *t : (*alone)->tensors()) {
    got[t->name] = t->shape;
    EXPECT_TRUE(t->shapesOnly);
    EXPECT_TRUE(t->data.empty());
  }
  EXPECT_EQ(got, want);
  // Beside its tokenizer.model, the config takes that tokenizer.
  auto tok = (*alone)->tokenizer();
  ASSERT_TRUE(bool(tok)) << llvm::toString(tok.takeError());
  auto realTok = (*real)->tokenizer();
  ASSERT_TRUE(bool(realTok)) << llvm::toString(realTok.takeError());
  EXPECT_EQ(tok->pieces, realTok->pieces);
  mlir::MLIRContext ctx;
  auto module = importCheckpoint(ctx, **alone);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  int globals = 0;
  for (auto g : (*module)->getOps<llm::GlobalOp>()) {
    ++globals;
    EXPECT_FALSE(g.getDataAttr()) << g.getSymName().str();
  }
  EXPECT_EQ(globals, 47);
}

TEST(Checkpoint, AConfigWithoutATokenizerGetsTheByteTokenizer) {
  TempDir dir;
  auto config = [&](int64_t vocab, int64_t bos) {
    writeFile(dir.file("c.json"),
              R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
                  "intermediate_size": 160, "num_hidden_layers": 1,
                  "num_attention_heads": 4, "num_key_value_heads": 2,
                  "vocab_size": )" +
                  std::to_string(vocab) + R"(, "bos_token_id": )" +
                  std::to_string(bos) + "}");
    return Checkpoint::open(dir.file("c.json"), /*allowShapesOnly=*/true);
  };
  auto ck = config(300, 1);
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  auto tok = (*ck)->tokenizer();
  ASSERT_TRUE(bool(tok)) << llvm::toString(tok.takeError());
  ASSERT_EQ(tok->pieces.size(), 300u);
  EXPECT_EQ(tok->pieces[1], "<s>");
  EXPECT_EQ(tok->pieces[3], "<0x00>");
  EXPECT_EQ(tok->pieces[258], "<0xFF>");
  EXPECT_EQ(tok->pieces[259], "\xE2\x96\x81");
  EXPECT_EQ(tok->types[299], fb::TokenType::Unused);
  // Too small a vocabulary, or other special ids: the config says so.
  auto small = config(200, 1);
  ASSERT_TRUE(bool(small)) << llvm::toString(small.takeError());
  std::string err = errorOf((*small)->tokenizer());
  EXPECT_NE(err.find("c.json: vocab_size 200 is below the 259 pieces"),
            std::string::npos)
      << err;
  auto bos = config(300, 0);
  ASSERT_TRUE(bool(bos)) << llvm::toString(bos.takeError());
  err = errorOf((*bos)->tokenizer());
  EXPECT_NE(err.find("c.json: the built-in byte tokenizer has <s> 1"),
            std::string::npos)
      << err;
  EXPECT_NE(errorOf(Checkpoint::open(dir.file("missing.json"), true)).find(
                "missing.json: no such file"),
            std::string::npos);
}

} // namespace

namespace {

TEST(SafetensorsFuzz, NoTruncationOrByteFlipCrashesTheReader) {
  TempDir dir;
  std::string path = dir.file("f.safetensors");
  std::vector<TensorData> t = tinyTensors(false);
  const std::string good = serializeSafetensors(t);
  const size_t headerEnd = 8 + static_cast<unsigned char>(good[0]) +
                           256 * static_cast<unsigned char>(good[1]);
  for (size_t len = 0; len < good.size(); len += (len < headerEnd ? 7 : 501)) {
    writeFile(path, good.substr(0, len));
    EXPECT_FALSE(bool(SafetensorsFile::open(path)) && len < good.size())
        << "prefix " << len << " was accepted";
  }
  std::mt19937 rng(5);
  for (int i = 0; i < 400; ++i) {
    std::string bad = good;
    size_t at = rng() % headerEnd;
    bad[at] = static_cast<char>(bad[at] ^ (1 + rng() % 255));
    writeFile(path, bad);
    auto f = SafetensorsFile::open(path);
    if (f) {
      for (const TensorView &v : (*f)->tensors()) {
        ASSERT_GE(v.data.data(), v.file->getBufferStart());
        ASSERT_LE(v.data.data() + v.data.size(), v.file->getBufferEnd());
      }
    } else {
      std::string e = llvm::toString(f.takeError());
      EXPECT_NE(e.find(path), std::string::npos);
    }
  }
}

} // namespace
