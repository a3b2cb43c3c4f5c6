// UTF-8 decoding shared by the tokenizers.
#ifndef LLMC_RUNTIME_TOKENIZER_UTF8_H
#define LLMC_RUNTIME_TOKENIZER_UTF8_H

#include <cstdint>
#include <string_view>

namespace llmc {

/// Length of the valid UTF-8 character at s[i] (its code point in `*cp`),
/// or 0 if the bytes there are malformed: truncated, overlong, a surrogate,
/// or past U+10FFFF.
inline size_t utf8Length(std::string_view s, size_t i, uint32_t *cp = nullptr) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t v;
  if (c < 0x80) {
    if (cp) {
      *cp = c;
    }
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) {
    return 0;
  }
  for (size_t k = 1; k < len; ++k) {
    unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) {
      return 0;
    }
    v = (v << 6) | (d & 0x3F);
  }
  if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) ||
      (len == 4 && v < 0x10000) || v > 0x10FFFF ||
      (v >= 0xD800 && v <= 0xDFFF)) {
    return 0;
  }
  if (cp) {
    *cp = v;
  }
  return len;
}

} // namespace llmc

#endif // LLMC_RUNTIME_TOKENIZER_UTF8_H
