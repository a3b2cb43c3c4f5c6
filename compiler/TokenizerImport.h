// Reads a checkpoint's tokenizer (tokenizer.model or tokenizer.json) into the artifact's tables.
#ifndef LLMC_COMPILER_TOKENIZERIMPORT_H
#define LLMC_COMPILER_TOKENIZERIMPORT_H

#include "runtime/schema/artifact_generated.h"

#include "llvm/Support/Error.h"

#include <string>

namespace llmc {

/// Parses a SentencePiece model file (the ModelProto protobuf): pieces,
/// scores, types, and the normalizer and trainer flags the encoder needs.
/// Only BPE models are accepted.
llvm::Expected<fb::TokenizerT> readSentencePieceModel(const std::string &path);

/// Parses a Hugging Face tokenizer.json whose model is SentencePiece-style
/// BPE (byte fallback, "▁" for spaces): merge ranks become piece scores.
llvm::Expected<fb::TokenizerT> readTokenizerJson(const std::string &path);

class GgufFile;

/// The tokenizer of a GGUF file's metadata: tokenizer.ggml.model "llama"
/// (SentencePiece tables) or "gpt2" (byte-level BPE with merges and the
/// pre-tokenizer named by tokenizer.ggml.pre).
llvm::Expected<fb::TokenizerT> readGgufTokenizer(const GgufFile &file);

/// tokenizer.model in `dir` if present, else tokenizer.json; an error if
/// neither exists.
llvm::Expected<fb::TokenizerT> readTokenizer(const std::string &dir);

/// A SentencePiece ModelProto (BPE) holding `tok`'s pieces, scores, types
/// and normalizer flags: what `readSentencePieceModel` reads back, and what
/// the sentencepiece library loads.
std::string writeSentencePieceModel(const fb::TokenizerT &tok);

/// A Hugging Face tokenizer.json for a byte-level BPE `tok` (vocabulary,
/// merges, control/user-defined tokens as added tokens, its pre-tokenizer),
/// loadable by the `tokenizers` package and by `readTokenizerJson`.
llvm::Expected<std::string> writeByteLevelJson(const fb::TokenizerT &tok);

} // namespace llmc

#endif // LLMC_COMPILER_TOKENIZERIMPORT_H
