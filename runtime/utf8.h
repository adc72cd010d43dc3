// UTF-8 helpers shared by the tokenizers and the command line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kvcomp {

// The byte offset of the first byte that does not start a valid UTF-8 sequence (overlong forms,
// surrogates and code points past U+10FFFF included), or -1.
int64_t first_invalid_utf8(std::string_view s);

// Decodes the character at s[i] of valid UTF-8; returns its length in bytes.
inline int utf8_decode(std::string_view s, size_t i, uint32_t& cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  const int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
  cp = c & (0x7f >> len);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
  return len;
}

// Length in bytes of the character that starts with lead byte c (valid UTF-8).
inline int utf8_length(unsigned char c) {
  return c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
}

inline void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

// `s` with every invalid sequence replaced by U+FFFD, as Rust's String::from_utf8_lossy does
// (one U+FFFD per maximal invalid prefix).
std::string utf8_lossy(std::string_view s);

}  // namespace kvcomp
