// A Hugging Face LLaMA checkpoint on disk: its config.json and its (sharded) safetensors.
#ifndef LLMC_COMPILER_CHECKPOINT_H
#define LLMC_COMPILER_CHECKPOINT_H

#include "compiler/Safetensors.h"

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

/// Parses and checks config.json; errors read "PATH: problem".
llvm::Expected<ModelConfig> parseConfig(const std::string &path);

/// A checkpoint directory (or one .safetensors file with config.json beside
/// it): the config and every tensor of every shard.
class Checkpoint {
public:
  /// `path` is a directory holding config.json and model.safetensors (or
  /// model.safetensors.index.json and its shards), or a .safetensors file.
  static llvm::Expected<std::unique_ptr<Checkpoint>> open(const std::string &path);

  const ModelConfig &config() const { return config_; }
  const std::string &directory() const { return dir_; }
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
  ModelConfig config_;
  std::string dir_;
  std::string indexPath_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  llvm::StringMap<const TensorView *> tensors_;
};

} // namespace llmc

#endif // LLMC_COMPILER_CHECKPOINT_H
