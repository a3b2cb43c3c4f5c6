// Fuzz targets' shared helper: a tokenizer made from imported tables is
// built and run on a fixed text (its ids decoded back, piece by piece and whole), so that every
// table a parser accepts is also exercised.
#ifndef LLMC_TEST_FUZZ_FUZZTOKENIZER_H
#define LLMC_TEST_FUZZ_FUZZTOKENIZER_H

#include "runtime/tokenizer/from_artifact.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmc::fuzz {

inline void exerciseTokenizer(const fb::TokenizerT &tables, std::string_view text) {
  std::optional<Tokenizer> tok;
  std::string error;
  if (tokenizerFromTables(tables, tok, error)) {
    std::vector<int32_t> ids = tok->encode(text);
    for (int32_t id : ids) {
      (void)tok->decodePiece(id, false);
    }
    (void)tok->decode(ids);
  }
}

} // namespace llmc::fuzz

#endif // LLMC_TEST_FUZZ_FUZZTOKENIZER_H
