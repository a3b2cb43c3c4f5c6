// SentencePiece BPE: normalize, split into characters, merge the best-scoring
// adjacent pair until none is in the vocabulary, then fall back to bytes.
// Byte-level BPE: keep special tokens whole, pre-tokenize into words, map
// each word's bytes to GPT-2's printable code points, merge by rank.
#include "runtime/tokenizer/tokenizer.h"

#include "runtime/tokenizer/utf8.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <queue>

namespace llmc {

namespace {

const std::string kSpace = "\xE2\x96\x81"; // U+2581, SentencePiece's space
const std::string kReplacement = "\xEF\xBF\xBD"; // U+FFFD

/// A stretch of the text being merged, in a doubly linked list.
struct Symbol {
  int prev, next;
  size_t begin, len;
  bool frozen; // never merges (SentencePiece's user-defined pieces)
};

/// Joins adjacent symbols, the pair of highest priority first (ties: the
/// leftmost), until no adjacent pair has one: `priority(l, r)` is that of
/// joining sym[l] and sym[r], or nullopt. A heap of candidate pairs with
/// lazy deletion keeps this n log n in the number of symbols.
template <typename Priority>
void mergeBest(std::vector<Symbol> &sym, Priority priority) {
  struct Pair {
    float priority;
    int left, right;
    size_t len;
  };
  auto worse = [](const Pair &a, const Pair &b) {
    return a.priority != b.priority ? a.priority < b.priority : a.left > b.left;
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0 || sym[l].frozen || sym[r].frozen) {
      return;
    }
    if (std::optional<float> p = priority(l, r)) {
      agenda.push({*p, l, r, sym[l].len + sym[r].len});
    }
  };
  for (size_t i = 1; i < sym.size(); ++i) {
    consider(static_cast<int>(i) - 1, static_cast<int>(i));
  }
  while (!agenda.empty()) {
    Pair p = agenda.top();
    agenda.pop();
    Symbol &l = sym[p.left];
    Symbol &r = sym[p.right];
    // Stale entries: one side was merged away or grew since this was queued.
    if (l.len == 0 || r.len == 0 || l.next != p.right ||
        l.len + r.len != p.len) {
      continue;
    }
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) {
      sym[r.next].prev = p.left;
    }
    consider(l.prev, p.left);
    consider(p.left, l.next);
  }
}

} // namespace

Tokenizer::Tokenizer(std::vector<std::string> pieces, std::vector<float> scores,
                     std::vector<Type> types, Options options,
                     const std::vector<std::string> &merges)
    : pieces_(std::move(pieces)), scores_(std::move(scores)),
      types_(std::move(types)), opts_(options) {
  if (opts_.model == Model::ByteLevelBpe) {
    for (size_t r = 0; r < merges.size(); ++r) {
      mergeRank_.emplace(merges[r], static_cast<int32_t>(r));
    }
  }
  for (int &b : byteIds_) {
    b = -1;
  }
  for (int32_t id = 0; id < size(); ++id) {
    const std::string &p = pieces_[id];
    all_.emplace(p, id);
    switch (types_[id]) {
    case Type::Normal:
    case Type::Unused:
      mergeable_.emplace(p, id);
      break;
    case Type::UserDefined:
      mergeable_.emplace(p, id);
      userDefined_.push_back(p);
      if (opts_.model == Model::ByteLevelBpe && !p.empty()) {
        specials_.emplace_back(p, id);
      }
      break;
    case Type::Control:
      if (opts_.model == Model::ByteLevelBpe && !p.empty()) {
        specials_.emplace_back(p, id);
      }
      break;
    case Type::Byte: {
      unsigned v;
      if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%2X>", &v) == 1) {
        byteIds_[v & 0xFF] = id;
      }
      break;
    }
    default:
      break;
    }
  }
}

std::string Tokenizer::normalize(std::string_view text) const {
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  if (opts_.removeExtraWhitespaces) {
    while (i < text.size() && text[i] == ' ') {
      ++i;
    }
  }
  bool prevSpace = false;
  while (i < text.size()) {
    size_t len = utf8Length(text, i);
    if (len == 0) {
      out += kReplacement; // as SentencePiece's normalizer does
      prevSpace = false;
      ++i;
      continue;
    }
    if (text[i] == ' ') {
      if (!(opts_.removeExtraWhitespaces && prevSpace)) {
        out += kSpace;
      }
      prevSpace = true;
    } else {
      out.append(text.substr(i, len));
      prevSpace = false;
    }
    i += len;
  }
  if (opts_.removeExtraWhitespaces) {
    while (out.size() >= kSpace.size() &&
           out.compare(out.size() - kSpace.size(), kSpace.size(), kSpace) == 0) {
      out.resize(out.size() - kSpace.size());
    }
  }
  if (opts_.addDummyPrefix && !out.empty()) {
    out.insert(0, kSpace);
  }
  return out;
}

int32_t Tokenizer::lookup(std::string_view piece) const {
  auto it = all_.find(std::string(piece));
  return it == all_.end() ? -1 : it->second;
}

void Tokenizer::emit(std::string_view piece, std::vector<int32_t> &out) const {
  int32_t id = lookup(piece);
  if (id >= 0 && types_[id] != Type::Unused && types_[id] != Type::Control &&
      types_[id] != Type::Byte) {
    out.push_back(id);
    return;
  }
  if (opts_.byteFallback) {
    bool all = true;
    for (unsigned char c : piece) {
      all &= byteIds_[c] >= 0;
    }
    if (all) {
      for (unsigned char c : piece) {
        out.push_back(byteIds_[c]);
      }
      return;
    }
  }
  // Consecutive unknown pieces collapse into one <unk>, as in SentencePiece.
  if (out.empty() || out.back() != opts_.unkId) {
    out.push_back(opts_.unkId);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  return opts_.model == Model::ByteLevelBpe ? encodeByteLevel(text)
                                            : encodeSentencePiece(text);
}

std::vector<int32_t> Tokenizer::encodeByteLevel(std::string_view text) const {
  std::vector<int32_t> ids;
  auto encodePlain = [&](std::string_view part) {
    for (std::string_view word : bytelevel::preTokenize(part, opts_.preTokenizer)) {
      bpeWord(word, ids);
    }
  };
  // Special tokens are matched first, leftmost and then longest, as Hugging
  // Face's added-token splitter does.
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, int32_t> *hit = nullptr;
    for (const auto &sp : specials_) {
      if ((!hit || sp.first.size() > hit->first.size()) &&
          text.compare(i, sp.first.size(), sp.first) == 0) {
        hit = &sp;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    encodePlain(text.substr(start, i - start));
    ids.push_back(hit->second);
    i += hit->first.size();
    start = i;
  }
  encodePlain(text.substr(start));
  return ids;
}

void Tokenizer::bpeWord(std::string_view word, std::vector<int32_t> &out) const {
  std::string mapped = bytelevel::mapBytes(word);
  if (opts_.ignoreMerges) {
    auto it = mergeable_.find(mapped);
    if (it != mergeable_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols start as single mapped characters (one byte each before
  // mapping, so one to two UTF-8 bytes after).
  std::vector<Symbol> sym;
  for (size_t i = 0; i < mapped.size();) {
    size_t len = (static_cast<unsigned char>(mapped[i]) < 0x80) ? 1 : 2;
    int idx = static_cast<int>(sym.size());
    sym.push_back({idx - 1, idx + 1, i, len, false});
    i += len;
  }
  if (sym.empty()) {
    return;
  }
  sym.back().next = -1;
  // Lower rank first; ranks are exact in a float (below 2^24).
  std::string key;
  mergeBest(sym, [&](int l, int r) -> std::optional<float> {
    key.assign(mapped, sym[l].begin, sym[l].len);
    key += ' ';
    key.append(mapped, sym[r].begin, sym[r].len);
    auto it = mergeRank_.find(key);
    if (it == mergeRank_.end()) {
      return std::nullopt;
    }
    return -static_cast<float>(it->second);
  });
  for (int i = 0; i >= 0; i = sym[i].next) {
    std::string piece = mapped.substr(sym[i].begin, sym[i].len);
    auto it = mergeable_.find(piece);
    if (it != mergeable_.end()) {
      out.push_back(it->second);
      continue;
    }
    // A symbol outside the vocabulary: its characters one by one, or <unk>.
    for (size_t k = 0; k < piece.size();) {
      size_t len = (static_cast<unsigned char>(piece[k]) < 0x80) ? 1 : 2;
      auto c = mergeable_.find(piece.substr(k, len));
      out.push_back(c != mergeable_.end() ? c->second : opts_.unkId);
      k += len;
    }
  }
}

std::vector<int32_t> Tokenizer::encodeSentencePiece(std::string_view text) const {
  std::string norm = normalize(text);
  // User-defined pieces are frozen: they never merge, as in SentencePiece.
  std::vector<Symbol> sym;
  for (size_t i = 0; i < norm.size();) {
    size_t len = 0;
    for (const std::string &u : userDefined_) {
      if (u.size() > len && norm.compare(i, u.size(), u) == 0) {
        len = u.size();
      }
    }
    if (len == 0) {
      len = utf8Length(norm, i);
      if (len == 0) {
        len = 1;
      }
    }
    int idx = static_cast<int>(sym.size());
    bool frozen = false;
    for (const std::string &u : userDefined_) {
      frozen |= u.size() == len && norm.compare(i, len, u) == 0;
    }
    sym.push_back({idx - 1, idx + 1, i, len, frozen});
    i += len;
  }
  if (sym.empty()) {
    return {};
  }
  sym.back().next = -1;

  std::unordered_map<std::string, std::pair<std::string, std::string>> revMerge;
  mergeBest(sym, [&](int l, int r) -> std::optional<float> {
    std::string_view piece(norm.data() + sym[l].begin, sym[l].len + sym[r].len);
    auto it = mergeable_.find(std::string(piece));
    if (it == mergeable_.end()) {
      return std::nullopt;
    }
    if (types_[it->second] == Type::Unused) {
      revMerge[std::string(piece)] = {
          norm.substr(sym[l].begin, sym[l].len),
          norm.substr(sym[r].begin, sym[r].len)};
    }
    return scores_[it->second];
  });

  std::vector<int32_t> ids;
  std::vector<std::string> stack;
  for (int i = 0; i >= 0; i = sym[i].next) {
    // Unused pieces are split back into the pieces that formed them.
    stack.push_back(norm.substr(sym[i].begin, sym[i].len));
    while (!stack.empty()) {
      std::string piece = std::move(stack.back());
      stack.pop_back();
      auto rm = revMerge.find(piece);
      int32_t id = lookup(piece);
      if (rm != revMerge.end() && id >= 0 && types_[id] == Type::Unused) {
        stack.push_back(rm->second.second);
        stack.push_back(rm->second.first);
        continue;
      }
      emit(piece, ids);
    }
  }
  return ids;
}

std::string Tokenizer::decodePiece(int32_t id, bool afterBos) const {
  if (id < 0 || id >= size()) {
    return "";
  }
  switch (types_[id]) {
  case Type::Control:
    return "";
  case Type::Unknown:
    if (opts_.model == Model::ByteLevelBpe) {
      return "";
    }
    return " \xE2\x81\x87 "; // SentencePiece's surface for <unk>
  case Type::Byte: {
    for (int b = 0; b < 256; ++b) {
      if (byteIds_[b] == id) {
        return std::string(1, static_cast<char>(b));
      }
    }
    return "";
  }
  default:
    break;
  }
  std::string out;
  const std::string &p = pieces_[id];
  if (opts_.model == Model::ByteLevelBpe) {
    // User-defined tokens are spelled as raw text; the rest byte-mapped.
    if (types_[id] == Type::UserDefined || !bytelevel::unmapBytes(p, out)) {
      return p;
    }
    return out;
  }
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += p[i++];
    }
  }
  if (afterBos && opts_.addDummyPrefix && !out.empty() && out[0] == ' ') {
    out.erase(0, 1);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t> &ids) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    if (id == opts_.bosId || id == opts_.eosId) {
      continue;
    }
    out += decodePiece(id, first);
    first = false;
  }
  return out;
}

} // namespace llmc
