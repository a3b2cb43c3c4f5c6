// Byte-level BPE pre-tokenizers, written as hand-made matchers that follow
// the leftmost-alternative semantics of the regular expressions they stand
// for (see bytelevel.h), and GPT-2's byte-to-unicode mapping.
#include "runtime/tokenizer/bytelevel.h"

#include "runtime/tokenizer/utf8.h"

#include <algorithm>

namespace llmc::bytelevel {

namespace {

struct CodeRange {
  uint32_t first, last;
};

#include "runtime/tokenizer/unicode_tables.inc"

template <size_t N>
bool inRanges(const CodeRange (&ranges)[N], uint32_t cp) {
  const CodeRange *end = ranges + N;
  const CodeRange *it = std::upper_bound(
      ranges, end, cp, [](uint32_t v, const CodeRange &r) { return v < r.first; });
  return it != ranges && cp <= (it - 1)->last;
}

enum class Cls : uint8_t { Letter, Number, Space, Other };

struct Ch {
  uint32_t cp;  // kInvalid for a byte that is not valid UTF-8
  size_t off; // byte offset in the text
  Cls cls;
};

constexpr uint32_t kInvalid = 0xFFFFFFFFu;

/// Decodes `s` into characters (an invalid byte becomes one Other char).
std::vector<Ch> decode(std::string_view s) {
  std::vector<Ch> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t len = utf8Length(s, i, &cp);
    if (len == 0) {
      out.push_back({kInvalid, i, Cls::Other});
      ++i;
      continue;
    }
    Cls cls = isLetter(cp)   ? Cls::Letter
              : isNumber(cp) ? Cls::Number
              : isSpace(cp)  ? Cls::Space
                             : Cls::Other;
    out.push_back({cp, i, cls});
    i += len;
  }
  return out;
}

/// Simple case folding of the contraction letters: ASCII, and U+017F (long
/// s), the one other code point that folds into any of s, t, r, e, v, m, l, d.
uint32_t lower(uint32_t cp) {
  if (cp == 0x17F) {
    return 's';
  }
  return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

/// Length (in chars) of a contraction at `i`: 's 't 're 've 'm 'll 'd.
size_t contraction(const std::vector<Ch> &t, size_t i, bool anyCase) {
  if (t[i].cp != '\'' || i + 1 >= t.size()) {
    return 0;
  }
  auto at = [&](size_t k) {
    if (k >= t.size()) {
      return uint32_t(0);
    }
    return anyCase ? lower(t[k].cp) : t[k].cp;
  };
  uint32_t a = at(i + 1), b = at(i + 2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') {
    return 2;
  }
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
    return 3;
  }
  return 0;
}

size_t run(const std::vector<Ch> &t, size_t i, Cls cls) {
  size_t j = i;
  while (j < t.size() && t[j].cls == cls) {
    ++j;
  }
  return j - i;
}

bool isCrLf(const Ch &c) { return c.cp == '\r' || c.cp == '\n'; }

/// `\s+(?!\S)|\s+` at a whitespace char `i`: the whole run if it ends the
/// text or the run is one char, else the run minus its last char.
size_t trailingSpace(const std::vector<Ch> &t, size_t i) {
  size_t n = run(t, i, Cls::Space);
  if (i + n == t.size() || n == 1) {
    return n;
  }
  return n - 1;
}

/// One match of the GPT-2 expression at `i` (always at least one char).
size_t matchGpt2(const std::vector<Ch> &t, size_t i) {
  if (size_t n = contraction(t, i, /*anyCase=*/false)) {
    return n;
  }
  size_t s = t[i].cp == ' ' && i + 1 < t.size() ? 1 : 0;
  for (Cls cls : {Cls::Letter, Cls::Number, Cls::Other}) {
    if (t[i].cls == cls) {
      return run(t, i, cls);
    }
    if (s && t[i + 1].cls == cls) {
      return 1 + run(t, i + 1, cls);
    }
  }
  if (t[i].cls == Cls::Space) {
    return trailingSpace(t, i);
  }
  return 1;
}

size_t matchLlama3(const std::vector<Ch> &t, size_t i) {
  if (size_t n = contraction(t, i, /*anyCase=*/true)) {
    return n;
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (t[i].cls == Cls::Letter) {
    return run(t, i, Cls::Letter);
  }
  if (t[i].cls != Cls::Number && !isCrLf(t[i]) && i + 1 < t.size() &&
      t[i + 1].cls == Cls::Letter) {
    return 1 + run(t, i + 1, Cls::Letter);
  }
  // \p{N}{1,3}
  if (t[i].cls == Cls::Number) {
    return std::min<size_t>(3, run(t, i, Cls::Number));
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t s = t[i].cp == ' ' && i + 1 < t.size() && t[i + 1].cls == Cls::Other ? 1 : 0;
  if (t[i].cls == Cls::Other || s) {
    size_t j = i + s;
    j += run(t, j, Cls::Other);
    while (j < t.size() && isCrLf(t[j])) {
      ++j;
    }
    return j - i;
  }
  // \s*[\r\n]+ : the longest whitespace prefix that ends in \r or \n.
  size_t n = run(t, i, Cls::Space);
  for (size_t k = n; k > 0; --k) {
    if (isCrLf(t[i + k - 1])) {
      return k;
    }
  }
  return trailingSpace(t, i);
}

} // namespace

const char *preTokenizerName(PreTokenizer p) {
  switch (p) {
  case PreTokenizer::Gpt2:
    return "gpt2";
  case PreTokenizer::SmolLM:
    return "smollm";
  case PreTokenizer::Llama3:
    return "llama3";
  }
  return "?";
}

bool parsePreTokenizer(std::string_view name, PreTokenizer &out) {
  for (PreTokenizer p :
       {PreTokenizer::Gpt2, PreTokenizer::SmolLM, PreTokenizer::Llama3}) {
    if (name == preTokenizerName(p)) {
      out = p;
      return true;
    }
  }
  return false;
}

bool isLetter(uint32_t cp) { return inRanges(kLetterRanges, cp); }
bool isNumber(uint32_t cp) { return inRanges(kNumberRanges, cp); }
bool isSpace(uint32_t cp) {
  // Unicode's White_Space property.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

std::vector<std::string_view> preTokenize(std::string_view text,
                                          PreTokenizer p) {
  std::vector<Ch> t = decode(text);
  std::vector<std::string_view> words;
  auto offset = [&](size_t k) {
    return k < t.size() ? t[k].off : text.size();
  };
  auto emitRange = [&](const std::vector<Ch> &chars, size_t from, size_t to) {
    // Matches within chars[from, to) (a digit-free stretch for SmolLM).
    std::vector<Ch> part(chars.begin() + from, chars.begin() + to);
    for (size_t i = 0; i < part.size();) {
      size_t n = p == PreTokenizer::Llama3 ? matchLlama3(part, i)
                                           : matchGpt2(part, i);
      size_t a = part[i].off;
      size_t b = i + n < part.size() ? part[i + n].off : offset(to);
      words.push_back(text.substr(a, b - a));
      i += n;
    }
  };
  if (p != PreTokenizer::SmolLM) {
    emitRange(t, 0, t.size());
    return words;
  }
  size_t start = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].cls == Cls::Number) {
      emitRange(t, start, i);
      words.push_back(text.substr(t[i].off, offset(i + 1) - t[i].off));
      start = i + 1;
    }
  }
  emitRange(t, start, t.size());
  return words;
}

namespace {

/// Byte b's code point in GPT-2's mapping.
struct ByteMap {
  uint32_t toCp[256];
  ByteMap() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      toCp[b] = printable ? static_cast<uint32_t>(b) : next++;
    }
  }
  int fromCp(uint32_t cp) const {
    if (cp < 256 && toCp[cp] == cp) {
      return static_cast<int>(cp);
    }
    if (cp >= 256 && cp < 256 + 68) {
      for (int b = 0; b < 256; ++b) {
        if (toCp[b] == cp) {
          return b;
        }
      }
    }
    return -1;
  }
};

const ByteMap &byteMap() {
  static const ByteMap m;
  return m;
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

} // namespace

std::string mapBytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    appendUtf8(out, byteMap().toCp[b]);
  }
  return out;
}

bool unmapBytes(std::string_view mapped, std::string &out) {
  for (const Ch &c : decode(mapped)) {
    int b = c.cp == kInvalid ? -1 : byteMap().fromCp(c.cp);
    if (b < 0) {
      return false;
    }
    out += static_cast<char>(b);
  }
  return true;
}

} // namespace llmc::bytelevel
