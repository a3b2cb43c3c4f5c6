// Byte-level BPE helpers: GPT-2's byte-to-unicode mapping and the
// pre-tokenizers (GPT-2, SmolLM, Llama-3) written by hand over Unicode tables.
#ifndef LLMC_RUNTIME_TOKENIZER_BYTELEVEL_H
#define LLMC_RUNTIME_TOKENIZER_BYTELEVEL_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmc::bytelevel {

/// How text is cut into words before BPE.
enum class PreTokenizer : uint8_t {
  /// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Gpt2 = 0,
  /// Every \p{N} on its own, then Gpt2 (HF: Digits(individual) + ByteLevel).
  SmolLM = 1,
  /// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  ///  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  Llama3 = 2,
};

/// The name used in artifacts and errors ("gpt2", "smollm", "llama3").
const char *preTokenizerName(PreTokenizer p);
/// Parses a name; false if unknown.
bool parsePreTokenizer(std::string_view name, PreTokenizer &out);

/// Unicode classes the pre-tokenizers use.
bool isLetter(uint32_t cp);
bool isNumber(uint32_t cp);
bool isSpace(uint32_t cp);

/// Cuts `text` into words; each word is a byte range of `text`. Bytes that
/// are not valid UTF-8 count as one symbol each of no class (punctuation).
std::vector<std::string_view> preTokenize(std::string_view text,
                                          PreTokenizer p);

/// GPT-2's reversible mapping of the 256 byte values onto printable code
/// points: `mapBytes` turns raw bytes into the UTF-8 of the mapped code
/// points (vocabulary spelling), `unmapBytes` the reverse (false if a code
/// point is not one of the 256).
std::string mapBytes(std::string_view bytes);
bool unmapBytes(std::string_view mapped, std::string &out);

} // namespace llmc::bytelevel

#endif // LLMC_RUNTIME_TOKENIZER_BYTELEVEL_H
