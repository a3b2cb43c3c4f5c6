// Builds a Tokenizer from an artifact's Tokenizer table, checking it.
#ifndef LLMC_RUNTIME_TOKENIZER_FROM_ARTIFACT_H
#define LLMC_RUNTIME_TOKENIZER_FROM_ARTIFACT_H

#include "runtime/schema/artifact_generated.h"
#include "runtime/tokenizer/tokenizer.h"

#include <optional>
#include <string>

namespace llmc {

/// Fills `out` from `table`; on inconsistent tables returns false with a
/// message ("the tokenizer tables disagree in size", ...) in `error`.
bool tokenizerFromArtifact(const fb::Tokenizer &table,
                           std::optional<Tokenizer> &out, std::string &error);

/// The same for the object form the compiler builds (packs it first).
bool tokenizerFromTables(const fb::TokenizerT &tables,
                         std::optional<Tokenizer> &out, std::string &error);

} // namespace llmc

#endif // LLMC_RUNTIME_TOKENIZER_FROM_ARTIFACT_H
