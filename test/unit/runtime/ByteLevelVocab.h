// A small byte-level BPE vocabulary for tests and the tokenizer fuzz target:
// two specials, the 256 byte symbols (ids 2..257), then one piece per merge.
#ifndef LLMC_TEST_UNIT_RUNTIME_BYTELEVELVOCAB_H
#define LLMC_TEST_UNIT_RUNTIME_BYTELEVELVOCAB_H

#include "runtime/tokenizer/bytelevel.h"
#include "runtime/tokenizer/tokenizer.h"

#include <string>
#include <vector>

namespace llmc::test {

/// "<|end|>" is a control token; "<|user|>" has type `user` (Control, or
/// UserDefined to keep it whole inside text). `merges` are "a b" pairs.
inline Tokenizer byteLevelTokenizer(const std::vector<std::string> &merges,
                                    bytelevel::PreTokenizer pre,
                                    Tokenizer::Type user, bool addBos) {
  std::vector<std::string> pieces = {"<|end|>", "<|user|>"};
  std::vector<Tokenizer::Type> types = {Tokenizer::Type::Control, user};
  for (int b = 0; b < 256; ++b) {
    pieces.push_back(bytelevel::mapBytes(std::string(1, static_cast<char>(b))));
    types.push_back(Tokenizer::Type::Normal);
  }
  for (const std::string &m : merges) {
    size_t sp = m.find(' ');
    pieces.push_back(m.substr(0, sp) + m.substr(sp + 1));
    types.push_back(Tokenizer::Type::Normal);
  }
  Tokenizer::Options o;
  o.model = Tokenizer::Model::ByteLevelBpe;
  o.preTokenizer = pre;
  o.addBos = addBos;
  std::vector<float> scores(pieces.size(), 0.0f);
  return Tokenizer(pieces, scores, types, o, merges);
}

} // namespace llmc::test

#endif // LLMC_TEST_UNIT_RUNTIME_BYTELEVELVOCAB_H
