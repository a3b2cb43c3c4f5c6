// The one place an artifact's tokenizer tables become a Tokenizer: the
// runtime's loader and the compiler's calibration both come through here.
#include "runtime/tokenizer/from_artifact.h"

namespace llmc {

bool tokenizerFromArtifact(const fb::Tokenizer &tk,
                           std::optional<Tokenizer> &out, std::string &error) {
  if (!tk.pieces() || !tk.scores() || !tk.types() ||
      tk.pieces()->size() != tk.scores()->size() ||
      tk.pieces()->size() != tk.types()->size()) {
    error = "the tokenizer tables disagree in size";
    return false;
  }
  const auto n = static_cast<int64_t>(tk.pieces()->size());
  for (int32_t id : {tk.unk_id(), tk.bos_id(), tk.eos_id()}) {
    if (id < 0 || id >= n) {
      error = "the tokenizer's special id " + std::to_string(id) +
              " is outside its " + std::to_string(n) + " pieces";
      return false;
    }
  }
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<Tokenizer::Type> types;
  for (flatbuffers::uoffset_t i = 0; i < tk.pieces()->size(); ++i) {
    pieces.push_back(tk.pieces()->Get(i)->str());
    scores.push_back(tk.scores()->Get(i));
    auto t = static_cast<uint8_t>(tk.types()->Get(i));
    if (t < 1 || t > 6) {
      error = "token " + std::to_string(i) + " has unknown type " +
              std::to_string(t);
      return false;
    }
    types.push_back(static_cast<Tokenizer::Type>(t));
  }
  Tokenizer::Options o;
  o.unkId = tk.unk_id();
  o.bosId = tk.bos_id();
  o.eosId = tk.eos_id();
  o.addBos = tk.add_bos();
  o.addDummyPrefix = tk.add_dummy_prefix();
  o.removeExtraWhitespaces = tk.remove_extra_whitespaces();
  o.byteFallback = tk.byte_fallback();
  std::vector<std::string> merges;
  switch (tk.model()) {
  case fb::TokenizerModel::SentencePiece:
    o.model = Tokenizer::Model::SentencePiece;
    break;
  case fb::TokenizerModel::ByteLevelBPE: {
    o.model = Tokenizer::Model::ByteLevelBpe;
    std::string pre = tk.pre_tokenizer() ? tk.pre_tokenizer()->str() : "";
    if (!bytelevel::parsePreTokenizer(pre, o.preTokenizer)) {
      error = "unknown byte-level pre-tokenizer '" + pre + "'";
      return false;
    }
    o.ignoreMerges = tk.ignore_merges();
    if (tk.merges()) {
      for (const auto *m : *tk.merges()) {
        merges.push_back(m->str());
      }
    }
    break;
  }
  default:
    error = "unknown tokenizer model " +
            std::to_string(static_cast<int>(tk.model()));
    return false;
  }
  out.emplace(std::move(pieces), std::move(scores), std::move(types), o,
              merges);
  return true;
}

bool tokenizerFromTables(const fb::TokenizerT &tables,
                         std::optional<Tokenizer> &out, std::string &error) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::Tokenizer::Pack(b, &tables));
  return tokenizerFromArtifact(
      *flatbuffers::GetRoot<fb::Tokenizer>(b.GetBufferPointer()), out, error);
}

} // namespace llmc
