// A LLaMA checkpoint on disk: a Hugging Face directory (config.json and
// sharded safetensors) or a GGUF file, seen through Hugging Face names.
#ifndef LLMC_COMPILER_CHECKPOINT_H
#define LLMC_COMPILER_CHECKPOINT_H

#include "compiler/Safetensors.h"
#include "runtime/schema/artifact_generated.h"

#include <optional>

namespace llmc {

/// The hyper-parameters of a LlamaForCausalLM, read from config.json.
struct ModelConfig {
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t vocabSize = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-6;
  double ropeTheta = 10000.0;
  bool tieWordEmbeddings = false;
  bool attentionBias = false; // q, k, v and o_proj have biases
  bool mlpBias = false;       // gate, up and down_proj have biases
  int64_t bosTokenId = 1;
  std::vector<int64_t> eosTokenIds{2};
  std::string torchDtype;
};

/// Whether `path` names a config file (*.json, not a directory): a
/// checkpoint of shapes only.
bool isConfigPath(llvm::StringRef path);

/// Parses and checks config.json; errors read "PATH: problem".
llvm::Expected<ModelConfig> parseConfig(const std::string &path);

class GgufFile;

/// A checkpoint directory (or one .safetensors file with config.json beside
/// it), or a GGUF file: the config and every tensor under its Hugging Face
/// name (GGUF tensors renamed, dequantized and q/k rows un-permuted).
class Checkpoint {
public:
  /// `path` is a directory holding config.json and model.safetensors (or
  /// model.safetensors.index.json and its shards), a .safetensors file, a
  /// .gguf file, or a config (.json) alone: then every tensor a
  /// LlamaForCausalLM of that config has is listed with its shape and the
  /// config's torch_dtype but no bytes (shapesOnly(); --random-weights).
  /// A config alone is opened only when `allowShapesOnly` (a --random-weights
  /// compile); otherwise it is an error saying so.
  static llvm::Expected<std::unique_ptr<Checkpoint>>
  open(const std::string &path, bool allowShapesOnly = false);
  ~Checkpoint();

  const ModelConfig &config() const { return config_; }
  /// The directory holding the checkpoint (a GGUF file's own directory).
  const std::string &directory() const { return dir_; }
  /// "safetensors", "gguf" or "config" (shapes only).
  const char *format() const {
    return gguf_ ? "gguf" : shapesOnly_ ? "config" : "safetensors";
  }
  /// Opened from a config alone: the tensors have shapes but no bytes.
  bool shapesOnly() const { return shapesOnly_; }
  /// Every file the checkpoint was read from (config, index, shards,
  /// tokenizer; or the one GGUF file).
  std::vector<std::string> sourcePaths() const;
  /// Bytes of tensor data in the source files.
  uint64_t sourceBytes() const;
  /// Every tensor, in file order.
  const std::vector<const TensorView *> &tensors() const { return order_; }
  /// The tokenizer: tokenizer.model or tokenizer.json beside config.json,
  /// or a GGUF file's tokenizer metadata; a config alone without either
  /// gets a byte tokenizer of the config's vocabulary (<unk>, <s>, </s>, the
  /// 256 byte pieces, the rest unused), enough to run prompts at its shapes.
  llvm::Expected<fb::TokenizerT> tokenizer() const;
  /// The tensor named `name` in whichever shard holds it, or nullptr.
  const TensorView *lookup(llvm::StringRef name) const;
  /// All tensor files, in the order they were opened.
  const std::vector<std::unique_ptr<SafetensorsFile>> &files() const {
    return files_;
  }

  /// Finds `name` and checks its rank and dtype; errors name the file and
  /// tensor.
  llvm::Expected<const TensorView *> requireRank(llvm::StringRef name,
                                                 size_t rank) const;

  /// Finds `name` and checks its shape; errors name the file and tensor.
  llvm::Expected<const TensorView *>
  require(llvm::StringRef name, llvm::ArrayRef<int64_t> shape) const;

private:
  static llvm::Error openGguf(Checkpoint &ckpt, const std::string &path);
  static llvm::Error openShapesOnly(Checkpoint &ckpt, const std::string &path);

  ModelConfig config_;
  std::string dir_;
  std::string configPath_;
  bool shapesOnly_ = false;
  std::string indexPath_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  llvm::StringMap<const TensorView *> tensors_;
  std::vector<const TensorView *> order_;
  // GGUF: the file, and the tensors made from it (renamed, converted); a
  // config alone: its tensors' shapes.
  std::unique_ptr<GgufFile> gguf_;
  std::vector<std::unique_ptr<TensorView>> owned_;
};

} // namespace llmc

#endif // LLMC_COMPILER_CHECKPOINT_H
