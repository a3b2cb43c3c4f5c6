// `llmc export`: a checkpoint (Hugging Face directory or GGUF) written back
// out as a Hugging Face checkpoint or as a GGUF file.
#ifndef LLMC_COMPILER_EXPORT_H
#define LLMC_COMPILER_EXPORT_H

#include "compiler/Checkpoint.h"
#include "compiler/Gguf.h"
#include "compiler/SafetensorsWriter.h"

namespace llmc {

/// Writes `dir`/config.json, model.safetensors (each tensor in its source
/// dtype: GGUF block formats as the f32 they import to) and the tokenizer
/// (tokenizer.model for SentencePiece, tokenizer.json for byte-level BPE).
/// The numpy reference of ../shared/tools and Hugging Face load the result.
llvm::Error exportSafetensors(const Checkpoint &ckpt, const std::string &dir);

/// Writes a compiled module's weights (`tensors`, Hugging Face names, float
/// dtypes) as a checkpoint directory like exportSafetensors: per-layer
/// shapes stay as they are (the numpy reference reads them from the
/// tensors); a removed attention or MLP becomes one zero head or channel.
llvm::Error exportModuleSafetensors(const ModelConfig &config,
                                    std::vector<TensorData> tensors,
                                    const fb::TokenizerT &tokenizer,
                                    const std::string &dir);

/// Writes a GGUF v3 file as llama.cpp's converter lays it out (llama
/// metadata and tokenizer, q/k rows in its interleaved-RoPE order): 1-D
/// tensors in F32, matrices in `matrixType` (F32, F16 or Q8_0).
llvm::Error exportGguf(const Checkpoint &ckpt, const std::string &path,
                       GgmlType matrixType);

} // namespace llmc

#endif // LLMC_COMPILER_EXPORT_H
