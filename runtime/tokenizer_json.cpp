#include "runtime/tokenizer_json.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "runtime/error.h"
#include "runtime/json_kind.h"
#include "runtime/utf8.h"

#ifdef KVCOMP_HAVE_HF_TOKENIZER
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>
#endif

namespace kvcomp {

#ifndef KVCOMP_HAVE_HF_TOKENIZER

bool hf_tokenizer_supported() { return false; }
struct HfPipeline {};
HfTokenizer::HfTokenizer() = default;
HfTokenizer::HfTokenizer(HfTokenizer&&) noexcept = default;
HfTokenizer& HfTokenizer::operator=(HfTokenizer&&) noexcept = default;
HfTokenizer::~HfTokenizer() = default;
HfTokenizer HfTokenizer::from_json_text(const std::string&, const std::string& name) {
  fail(name, ": this kvcomp was built without tokenizer.json support (it needs libpcre2-dev and "
       "libutf8proc-dev at build time; install them and rebuild)");
}
HfTokenizer HfTokenizer::load(const std::filesystem::path& file) {
  return from_json_text("", file.string());
}
std::vector<int> HfTokenizer::encode(std::string_view, bool) const { return {}; }
std::string HfTokenizer::decode(const std::vector<int>&) const { return {}; }
const std::string& HfTokenizer::token(int id) const { return id_to_token_.at(size_t(id)); }
std::optional<int> HfTokenizer::token_id(const std::string&) const { return std::nullopt; }

#else

using nlohmann::json;

bool hf_tokenizer_supported() { return true; }

namespace {

// ---- JSON access with errors that name the file and the field --------------------------------

struct Ctx {
  std::string file;
};

const json& field(const Ctx& c, const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key))
    fail(c.file, ": ", where, " has no \"", key, "\"");
  return j[key];
}

std::string str_field(const Ctx& c, const json& j, const char* key, const std::string& where) {
  const json& v = field(c, j, key, where);
  check(v.is_string(), c.file, ": ", where, ".", key, " must be a string, not ", json_kind(v));
  return v.get<std::string>();
}

bool opt_bool(const Ctx& c, const json& j, const char* key, bool dflt, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  check(j[key].is_boolean(), c.file, ": ", where, ".", key, " must be true or false, not ",
        json_kind(j[key]));
  return j[key].get<bool>();
}

// A string field that must hold exactly one character (Metaspace's replacement, Strip's content).
uint32_t char_field(const Ctx& c, const json& j, const char* key, const std::string& where) {
  const std::string s = str_field(c, j, key, where);
  uint32_t cp = 0;
  check(!s.empty() && first_invalid_utf8(s) < 0 && size_t(utf8_decode(s, 0, cp)) == s.size(),
        c.file, ": ", where, ".", key, " must be one character, not \"", s, "\"");
  return cp;
}

std::string type_of(const Ctx& c, const json& j, const std::string& where) {
  check(j.is_object(), c.file, ": ", where, " must be an object, not ", json_kind(j));
  return str_field(c, j, "type", where);
}

// ---- Regexes: Oniguruma syntax as HF writes it, run by PCRE2 ----------------------------------

// HF compiles patterns with Oniguruma, whose \s and \S are Unicode White_Space and whose \h is
// a hex digit; PCRE2's differ, so those escapes are rewritten. Everything else the patterns of
// the supported tokenizers use (\p{L}, \p{N}, (?i:...), lookahead, {m,n}) means the same.
std::string onig_to_pcre2(const std::string& p) {
  std::string out;
  int in_class = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char ch = p[i];
    if (ch == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 's') {
        out += "\\p{White_Space}";
      } else if (e == 'S') {
        out += "\\P{White_Space}";
      } else if (e == 'h') {
        out += in_class ? "0-9A-Fa-f" : "[0-9A-Fa-f]";
      } else if (e == 'H' && !in_class) {
        out += "[^0-9A-Fa-f]";
      } else {
        out += '\\';
        out += e;
      }
      continue;
    }
    if (ch == '[') ++in_class;
    if (ch == ']' && in_class > 0) --in_class;
    out += ch;
  }
  return out;
}

class Regex {
 public:
  Regex(const std::string& onig, const std::string& what) {
    const std::string pat = onig_to_pcre2(onig);
    int err = 0;
    PCRE2_SIZE at = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                          PCRE2_UTF | PCRE2_UCP, &err, &at, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail(what, ": cannot compile the regex \"", onig, "\" (", reinterpret_cast<char*>(msg),
           " at offset ", at, ")");
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if it fails
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code_); }

  // Calls f(start, end) for each non-overlapping match of s (valid UTF-8), left to right.
  template <typename F>
  void for_each_match(std::string_view s, F&& f) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a resource limit: no further matches
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t b = ov[0], e = ov[1];
      if (e == b) {  // an empty match: step over one character
        if (b >= s.size()) break;
        pos = b + size_t(utf8_length(static_cast<unsigned char>(s[b])));
        continue;
      }
      f(b, e);
      pos = e;
    }
    pcre2_match_data_free(md);
  }

 private:
  pcre2_code* code_ = nullptr;
};

// A pattern of Split / Replace: {"String": "..."} or {"Regex": "..."}.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex;

  template <typename F>
  void for_each_match(std::string_view s, F&& f) const {
    if (regex) return regex->for_each_match(s, f);
    if (literal.empty()) return;
    for (size_t at = s.find(literal); at != std::string_view::npos;
         at = s.find(literal, at + literal.size()))
      f(at, at + literal.size());
  }
};

Pattern parse_pattern(const Ctx& c, const json& j, const std::string& where) {
  check(j.is_object(), c.file, ": ", where, ".pattern must be an object, not ", json_kind(j));
  Pattern p;
  if (j.contains("String") && j["String"].is_string()) {
    p.literal = j["String"].get<std::string>();
  } else if (j.contains("Regex") && j["Regex"].is_string()) {
    p.regex = std::make_unique<Regex>(j["Regex"].get<std::string>(), c.file + ": " + where);
  } else {
    fail(c.file, ": ", where, ".pattern must be {\"String\": ...} or {\"Regex\": ...}");
  }
  return p;
}

// ---- Unicode character classes (utf8proc) -----------------------------------------------------

bool is_whitespace(uint32_t cp) {  // Rust's char::is_whitespace: the White_Space property
  return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}

bool is_numeric(uint32_t cp) {  // Rust's char::is_numeric: general categories Nd, Nl, No
  const auto cat = utf8proc_category(utf8proc_int32_t(cp));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_punctuation(uint32_t cp) {  // HF's is_punc: ASCII punctuation or a P* category
  if (cp < 0x80 && std::ispunct(int(cp))) return true;
  const auto cat = utf8proc_category(utf8proc_int32_t(cp));
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_word_char(uint32_t cp) {  // regex \w in HF's single_word check: alphanumeric or '_'
  const auto cat = utf8proc_category(utf8proc_int32_t(cp));
  return cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// ---- Pieces of text as they move through the pipeline ----------------------------------------

struct Piece {
  std::string text;
  bool at_origin = false;  // starts at byte 0 of the input (Metaspace's prepend_scheme "first")
};

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const Ctx& c, const json& j, const std::string& where) {
  const std::string b = str_field(c, j, "behavior", where);
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  fail(c.file, ": ", where, ".behavior \"", b,
       "\" is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

// Splits p by the ranges of `matches` (sorted, disjoint) as HF's NormalizedString::split does,
// appending the non-empty pieces to out.
void split_piece(const Piece& p, std::vector<std::pair<size_t, size_t>> matches, bool invert,
                 Behavior behavior, std::vector<Piece>& out) {
  struct Span {
    size_t b, e;
    bool match;
  };
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) spans.push_back({prev, b, false});
    spans.push_back({b, e, true});
    prev = e;
  }
  if (prev < p.text.size()) spans.push_back({prev, p.text.size(), false});
  if (invert)
    for (Span& s : spans) s.match = !s.match;

  std::vector<Span> kept;  // spans to emit ("match" now means: drop)
  switch (behavior) {
    case Behavior::kIsolated:
      for (Span s : spans) kept.push_back({s.b, s.e, false});
      break;
    case Behavior::kRemoved:
      kept = spans;
      break;
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match && !previous_match && !kept.empty())
          kept.back().e = s.e;
        else
          kept.push_back({s.b, s.e, false});
        previous_match = s.match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !kept.empty())
          kept.back().b = it->b;
        else
          kept.push_back({it->b, it->e, false});
        previous_match = it->match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match == previous_match && !kept.empty())
          kept.back().e = s.e;
        else
          kept.push_back({s.b, s.e, false});
        previous_match = s.match;
      }
      break;
    }
  }
  for (const Span& s : kept) {
    if (s.match || s.e == s.b) continue;
    out.push_back({p.text.substr(s.b, s.e - s.b), p.at_origin && s.b == 0});
  }
}

// Ranges of the single characters of s for which pred holds.
template <typename Pred>
std::vector<std::pair<size_t, size_t>> char_matches(std::string_view s, Pred pred) {
  std::vector<std::pair<size_t, size_t>> m;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const int n = utf8_decode(s, i, cp);
    if (pred(cp)) m.emplace_back(i, i + size_t(n));
    i += size_t(n);
  }
  return m;
}

std::vector<std::pair<size_t, size_t>> pattern_matches(const Pattern& pat, std::string_view s) {
  std::vector<std::pair<size_t, size_t>> m;
  pat.for_each_match(s, [&](size_t b, size_t e) { m.emplace_back(b, e); });
  return m;
}

std::string replace_all(const Pattern& pat, const std::string& s, const std::string& with) {
  std::string out;
  size_t prev = 0;
  pat.for_each_match(s, [&](size_t b, size_t e) {
    out.append(s, prev, b - prev);
    out += with;
    prev = e;
  });
  out.append(s, prev, std::string::npos);
  return out;
}

// ---- Normalizers -------------------------------------------------------------------------------

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual void apply(std::string& s) const = 0;
};

struct UnicodeForm : Normalizer {
  utf8proc_option_t options;
  explicit UnicodeForm(utf8proc_option_t o) : options(o) {}
  void apply(std::string& s) const override {
    if (std::all_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; }))
      return;  // ASCII is in every normal form
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                utf8proc_ssize_t(s.size()), &out,
                                utf8proc_option_t(options | UTF8PROC_STABLE));
    check(n >= 0, "tokenizer: Unicode normalization failed (", utf8proc_errmsg(n), ")");
    s.assign(reinterpret_cast<const char*>(out), size_t(n));
    std::free(out);
  }
};

struct Lowercase : Normalizer {
  void apply(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      uint32_t cp;
      i += size_t(utf8_decode(s, i, cp));
      utf8_append(out, uint32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
    }
    s = std::move(out);
  }
};

struct Prepend : Normalizer {
  std::string prefix;
  void apply(std::string& s) const override {
    if (!s.empty()) s.insert(0, prefix);
  }
};

struct Replace : Normalizer {
  Pattern pattern;
  std::string content;
  void apply(std::string& s) const override { s = replace_all(pattern, s, content); }
};

struct StripWhitespace : Normalizer {
  bool left = true, right = true;
  void apply(std::string& s) const override {
    size_t b = 0, e = s.size();
    while (left && b < e) {
      uint32_t cp;
      const int n = utf8_decode(s, b, cp);
      if (!is_whitespace(cp)) break;
      b += size_t(n);
    }
    while (right && e > b) {
      size_t k = e - 1;
      while (k > b && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80) --k;
      uint32_t cp;
      utf8_decode(s, k, cp);
      if (!is_whitespace(cp)) break;
      e = k;
    }
    s = s.substr(b, e - b);
  }
};

struct StripAccents : Normalizer {  // drops nonspacing marks (Mn)
  void apply(std::string& s) const override {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      uint32_t cp;
      const int n = utf8_decode(s, i, cp);
      if (utf8proc_category(utf8proc_int32_t(cp)) != UTF8PROC_CATEGORY_MN) out.append(s, i, size_t(n));
      i += size_t(n);
    }
    s = std::move(out);
  }
};

struct NormalizerSequence : Normalizer {
  std::vector<std::unique_ptr<Normalizer>> stages;
  void apply(std::string& s) const override {
    for (const auto& n : stages) n->apply(s);
  }
};

std::unique_ptr<Normalizer> parse_normalizer(const Ctx& c, const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(c, j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "NFC") return std::make_unique<UnicodeForm>(UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeForm>(UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return std::make_unique<UnicodeForm>(utf8proc_option_t(UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  if (type == "NFKD") return std::make_unique<UnicodeForm>(utf8proc_option_t(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Prepend") {
    auto n = std::make_unique<Prepend>();
    n->prefix = str_field(c, j, "prepend", w);
    return n;
  }
  if (type == "Replace") {
    auto n = std::make_unique<Replace>();
    n->pattern = parse_pattern(c, field(c, j, "pattern", w), w);
    n->content = str_field(c, j, "content", w);
    return n;
  }
  if (type == "Strip") {
    auto n = std::make_unique<StripWhitespace>();
    n->left = opt_bool(c, j, "strip_left", true, w);
    n->right = opt_bool(c, j, "strip_right", true, w);
    return n;
  }
  if (type == "Sequence") {
    auto n = std::make_unique<NormalizerSequence>();
    const json& list = field(c, j, "normalizers", w);
    check(list.is_array(), c.file, ": ", w, ".normalizers must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      auto s = parse_normalizer(c, list[i], w + ".normalizers[" + std::to_string(i) + "]");
      if (s) n->stages.push_back(std::move(s));
    }
    return n;
  }
  fail(c.file, ": ", where, ": normalizer type \"", type,
       "\" is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Prepend, "
       "Replace, Strip, Sequence)");
}

// ---- Pre-tokenizers ----------------------------------------------------------------------------

// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the others for
// U+0100 onwards, so that every byte is a visible character.
struct ByteTable {
  std::string byte_char[256];        // UTF-8 of the character standing for each byte
  std::vector<int16_t> char_byte;    // code point -> byte, -1 for characters outside the table
  ByteTable() : char_byte(512, -1) {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
      const uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + n++);
      utf8_append(byte_char[b], cp);
      char_byte[cp] = int16_t(b);
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  // Splits each piece of `in` into `out`.
  virtual void apply(std::vector<Piece>& pieces) const = 0;
};

struct SplitPre : PreTokenizer {
  Pattern pattern;
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) split_piece(p, pattern_matches(pattern, p.text), invert, behavior, out);
    pieces = std::move(out);
  }
};

struct ByteLevelPre : PreTokenizer {
  bool add_prefix_space = false;
  std::unique_ptr<Regex> regex;  // GPT-2's pattern when use_regex
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> split;
    for (Piece& p : pieces) {
      if (add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, " ");
      if (regex) {
        std::vector<std::pair<size_t, size_t>> m;
        regex->for_each_match(p.text, [&](size_t b, size_t e) { m.emplace_back(b, e); });
        split_piece(p, m, false, Behavior::kIsolated, split);
      } else if (!p.text.empty()) {
        split.push_back(std::move(p));
      }
    }
    const ByteTable& t = byte_table();
    for (Piece& p : split) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char b : p.text) mapped += t.byte_char[b];
      p.text = std::move(mapped);
    }
    pieces = std::move(split);
  }
};

enum class PrependScheme { kAlways, kFirst, kNever };

struct MetaspacePre : PreTokenizer {
  std::string replacement;  // UTF-8 of the replacement character
  PrependScheme scheme = PrependScheme::kAlways;
  bool split = true;
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    Pattern rep;
    rep.literal = replacement;
    Pattern space;
    space.literal = " ";
    for (Piece& p : pieces) {
      p.text = replace_all(space, p.text, replacement);
      const bool starts = p.text.compare(0, replacement.size(), replacement) == 0;
      if (!starts && (scheme == PrependScheme::kAlways || (scheme == PrependScheme::kFirst && p.at_origin)))
        p.text.insert(0, replacement);
      if (split)
        split_piece(p, pattern_matches(rep, p.text), false, Behavior::kMergedWithNext, out);
      else if (!p.text.empty())
        out.push_back(std::move(p));
    }
    pieces = std::move(out);
  }
};

struct DigitsPre : PreTokenizer {
  bool individual = false;
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces)
      split_piece(p, char_matches(p.text, is_numeric), false,
                  individual ? Behavior::kIsolated : Behavior::kContiguous, out);
    pieces = std::move(out);
  }
};

struct PunctuationPre : PreTokenizer {
  Behavior behavior = Behavior::kIsolated;
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) split_piece(p, char_matches(p.text, is_punctuation), false, behavior, out);
    pieces = std::move(out);
  }
};

struct WhitespaceSplitPre : PreTokenizer {
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces)
      split_piece(p, char_matches(p.text, is_whitespace), false, Behavior::kRemoved, out);
    pieces = std::move(out);
  }
};

struct WhitespacePre : PreTokenizer {  // \w+|[^\w\s]+, the rest removed
  Regex regex{"\\w+|[^\\w\\s]+", "Whitespace pre-tokenizer"};
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) {
      std::vector<std::pair<size_t, size_t>> m;
      regex.for_each_match(p.text, [&](size_t b, size_t e) { m.emplace_back(b, e); });
      split_piece(p, m, true, Behavior::kRemoved, out);
    }
    pieces = std::move(out);
  }
};

struct PreTokenizerSequence : PreTokenizer {
  std::vector<std::unique_ptr<PreTokenizer>> stages;
  void apply(std::vector<Piece>& pieces) const override {
    for (const auto& s : stages) s->apply(pieces);
  }
};

PrependScheme parse_prepend_scheme(const Ctx& c, const json& j, const std::string& w) {
  PrependScheme scheme = PrependScheme::kAlways;
  if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
    const std::string s = str_field(c, j, "prepend_scheme", w);
    if (s == "always") scheme = PrependScheme::kAlways;
    else if (s == "first") scheme = PrependScheme::kFirst;
    else if (s == "never") scheme = PrependScheme::kNever;
    else fail(c.file, ": ", w, ".prepend_scheme \"", s, "\" is not one of always, first, never");
  }
  if (!opt_bool(c, j, "add_prefix_space", true, w)) scheme = PrependScheme::kNever;  // older files
  return scheme;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Ctx& c, const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(c, j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "Split") {
    auto p = std::make_unique<SplitPre>();
    p->pattern = parse_pattern(c, field(c, j, "pattern", w), w);
    p->behavior = parse_behavior(c, j, w);
    p->invert = opt_bool(c, j, "invert", false, w);
    return p;
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPre>();
    p->add_prefix_space = opt_bool(c, j, "add_prefix_space", true, w);
    if (opt_bool(c, j, "use_regex", true, w)) p->regex = std::make_unique<Regex>(kGpt2Pattern, w);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePre>();
    utf8_append(p->replacement, char_field(c, j, "replacement", w));
    p->scheme = parse_prepend_scheme(c, j, w);
    p->split = opt_bool(c, j, "split", true, w);
    return p;
  }
  if (type == "Digits") {
    auto p = std::make_unique<DigitsPre>();
    p->individual = opt_bool(c, j, "individual_digits", false, w);
    return p;
  }
  if (type == "Punctuation") {
    auto p = std::make_unique<PunctuationPre>();
    if (j.contains("behavior")) p->behavior = parse_behavior(c, j, w);
    return p;
  }
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPre>();
  if (type == "Whitespace") return std::make_unique<WhitespacePre>();
  if (type == "Sequence") {
    auto p = std::make_unique<PreTokenizerSequence>();
    const json& list = field(c, j, "pretokenizers", w);
    check(list.is_array(), c.file, ": ", w, ".pretokenizers must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      auto s = parse_pre_tokenizer(c, list[i], w + ".pretokenizers[" + std::to_string(i) + "]");
      if (s) p->stages.push_back(std::move(s));
    }
    return p;
  }
  fail(c.file, ": ", where, ": pre-tokenizer type \"", type,
       "\" is not supported (supported: Split, ByteLevel, Metaspace, Digits, Punctuation, "
       "Whitespace, WhitespaceSplit, Sequence)");
}

// ---- Decoders ----------------------------------------------------------------------------------

struct Decoder {
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>& tokens) const = 0;
};

struct ByteLevelDecoder : Decoder {
  void apply(std::vector<std::string>& tokens) const override {
    const ByteTable& t = byte_table();
    std::string bytes;
    for (const std::string& tok : tokens) {
      // A token whose characters are all in the table becomes its bytes; any other (an added
      // token spelled in plain text) stays as it is.
      std::string mapped;
      bool all = true;
      for (size_t i = 0; i < tok.size() && all;) {
        uint32_t cp;
        i += size_t(utf8_decode(tok, i, cp));
        if (cp < t.char_byte.size() && t.char_byte[cp] >= 0)
          mapped += char(t.char_byte[cp]);
        else
          all = false;
      }
      bytes += all ? mapped : tok;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

struct ReplaceDecoder : Decoder {
  Pattern pattern;
  std::string content;
  void apply(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = replace_all(pattern, t, content);
  }
};

struct ByteFallbackDecoder : Decoder {
  void apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (first_invalid_utf8(bytes) < 0) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < bytes.size(); ++i) out.push_back("\xEF\xBF\xBD");
      }
      bytes.clear();
    };
    for (std::string& t : tokens) {
      const auto hex = [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; };
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) && hex(t[4])) {
        bytes += char(std::stoi(t.substr(3, 2), nullptr, 16));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

struct FuseDecoder : Decoder {
  void apply(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, all);
  }
};

struct StripDecoder : Decoder {
  uint32_t content = ' ';
  size_t start = 0, stop = 0;
  void apply(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<uint32_t> cps;
      for (size_t i = 0; i < t.size();) {
        uint32_t cp;
        i += size_t(utf8_decode(t, i, cp));
        cps.push_back(cp);
      }
      size_t b = 0, e = cps.size();
      for (size_t i = 0; i < start && i < cps.size() && cps[i] == content; ++i) b = i + 1;
      for (size_t i = 0; i < stop && i < cps.size(); ++i) {
        const size_t k = cps.size() - i - 1;
        if (cps[k] != content) break;
        e = k;
      }
      std::string s;
      for (size_t i = b; i < e; ++i) utf8_append(s, cps[i]);
      t = std::move(s);
    }
  }
};

struct MetaspaceDecoder : Decoder {
  uint32_t replacement = 0x2581;
  PrependScheme scheme = PrependScheme::kAlways;
  void apply(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      std::string s;
      for (size_t i = 0; i < t.size();) {
        uint32_t cp;
        const int n = utf8_decode(t, i, cp);
        if (cp == replacement) {
          if (!(k == 0 && scheme != PrependScheme::kNever)) s += ' ';
        } else {
          s.append(t, i, size_t(n));
        }
        i += size_t(n);
      }
      tokens[k] = std::move(s);
    }
  }
};

struct DecoderSequence : Decoder {
  std::vector<std::unique_ptr<Decoder>> stages;
  void apply(std::vector<std::string>& tokens) const override {
    for (const auto& s : stages) s->apply(tokens);
  }
};

std::unique_ptr<Decoder> parse_decoder(const Ctx& c, const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(c, j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    auto d = std::make_unique<ReplaceDecoder>();
    d->pattern = parse_pattern(c, field(c, j, "pattern", w), w);
    d->content = str_field(c, j, "content", w);
    return d;
  }
  if (type == "Strip") {
    auto d = std::make_unique<StripDecoder>();
    d->content = char_field(c, j, "content", w);
    const json& b = field(c, j, "start", w);
    const json& e = field(c, j, "stop", w);
    check(b.is_number_unsigned() && e.is_number_unsigned(), c.file, ": ", w,
          ".start and .stop must be non-negative integers");
    d->start = b.get<size_t>();
    d->stop = e.get<size_t>();
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDecoder>();
    d->replacement = char_field(c, j, "replacement", w);
    d->scheme = parse_prepend_scheme(c, j, w);
    return d;
  }
  if (type == "Sequence") {
    auto d = std::make_unique<DecoderSequence>();
    const json& list = field(c, j, "decoders", w);
    check(list.is_array(), c.file, ": ", w, ".decoders must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      auto s = parse_decoder(c, list[i], w + ".decoders[" + std::to_string(i) + "]");
      if (s) d->stages.push_back(std::move(s));
    }
    return d;
  }
  fail(c.file, ": ", where, ": decoder type \"", type,
       "\" is not supported (supported: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, "
       "Sequence)");
}

// ---- The BPE model -----------------------------------------------------------------------------

struct MergeHash {
  size_t operator()(uint64_t k) const { return size_t(k * 0x9e3779b97f4a7c15ull >> 17); }
};

struct Bpe {
  std::unordered_map<std::string, int> vocab;
  std::unordered_map<uint64_t, std::pair<int, int>, MergeHash> merges;  // (a,b) -> (rank, id)
  std::vector<int> char_id;  // id of each single character below U+10000 (-1: none); a fast path
  int unk_id = -1;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  std::string prefix, suffix;  // continuing_subword_prefix, end_of_word_suffix
  int byte_ids[256];           // <0xXX> tokens for byte fallback (-1: absent)

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int>> cache;
  static constexpr size_t kCacheEntries = 1 << 16;
  static constexpr size_t kCacheWordBytes = 64;

  std::optional<int> find(const std::string& s) const {
    const auto it = vocab.find(s);
    if (it == vocab.end()) return std::nullopt;
    return it->second;
  }

  // Ids of one word, as HF's BPE::merge_word + Word::merge_all compute them.
  void tokenize(const std::string& word, std::vector<int>& out) const {
    if (ignore_merges) {
      if (const auto id = find(word)) return out.push_back(*id);
    }
    if (word.size() <= kCacheWordBytes) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto it = cache.find(word);
      if (it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int> ids = merge_word(word);
    if (word.size() <= kCacheWordBytes) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (cache.size() >= kCacheEntries) cache.clear();
      cache.emplace(word, ids);
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }

  std::vector<int> merge_word(const std::string& w) const {
    std::vector<int> sym;  // symbol ids in order
    std::optional<int> pending_unk;
    const bool plain = prefix.empty() && suffix.empty();
    for (size_t i = 0; i < w.size();) {
      uint32_t cp;
      const size_t n = size_t(utf8_decode(w, i, cp));
      const bool first = i == 0, last = i + n == w.size();
      std::optional<int> id;
      if (plain && cp < char_id.size()) {
        if (char_id[cp] >= 0) id = char_id[cp];
      } else {
        std::string s = w.substr(i, n);
        if (!first) s = prefix + s;
        if (last) s += suffix;
        id = find(s);
      }
      if (id) {
        if (pending_unk) sym.push_back(*pending_unk), pending_unk.reset();
        sym.push_back(*id);
      } else {
        bool done = false;
        if (byte_fallback) {
          bool all = true;
          for (size_t k = 0; k < n; ++k) all &= byte_ids[static_cast<unsigned char>(w[i + k])] >= 0;
          if (all) {
            for (size_t k = 0; k < n; ++k) sym.push_back(byte_ids[static_cast<unsigned char>(w[i + k])]);
            done = true;
          }
        }
        if (!done && unk_id >= 0) {
          if (pending_unk && !fuse_unk) sym.push_back(*pending_unk);
          pending_unk = unk_id;
        }
        // No unk token and no byte fallback: the character is dropped, as HF does.
      }
      i += n;
    }
    if (pending_unk) sym.push_back(*pending_unk);
    merge_all(sym);
    return sym;
  }

  void merge_all(std::vector<int>& sym) const {
    const int n = int(sym.size());
    if (n < 2) return;
    const size_t count = sym.size();
    std::vector<int> prev(count), next(count);
    std::vector<char> alive(count, 1);
    for (int i = 0; i < n; ++i) prev[size_t(i)] = i - 1, next[size_t(i)] = i + 1 < n ? i + 1 : -1;
    struct Cand {
      int rank, pos, id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
    auto lookup = [&](int a, int b) -> const std::pair<int, int>* {
      const auto it = merges.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
      return it == merges.end() ? nullptr : &it->second;
    };
    for (int i = 0; i + 1 < n; ++i)
      if (const auto* m = lookup(sym[size_t(i)], sym[size_t(i + 1)])) q.push({m->first, i, m->second});
    while (!q.empty()) {
      const Cand top = q.top();
      q.pop();
      const size_t p = size_t(top.pos);
      if (!alive[p] || next[p] < 0) continue;
      const size_t r = size_t(next[p]);
      const auto* m = lookup(sym[p], sym[r]);
      if (!m || m->second != top.id) continue;  // a stale candidate
      sym[p] = top.id;
      alive[r] = 0;
      next[p] = next[r];
      if (next[r] >= 0) prev[size_t(next[r])] = int(p);
      if (prev[p] >= 0)
        if (const auto* mp = lookup(sym[size_t(prev[p])], sym[p])) q.push({mp->first, prev[p], mp->second});
      if (next[p] >= 0)
        if (const auto* mn = lookup(sym[p], sym[size_t(next[p])])) q.push({mn->first, int(p), mn->second});
    }
    size_t k = 0;
    for (size_t i = 0; i < size_t(n); ++i)
      if (alive[i]) sym[k++] = sym[i];
    sym.resize(k);
  }
};

// ---- Added tokens ------------------------------------------------------------------------------

struct AddedToken {
  int id;
  std::string content;  // normalized for the normalized set
  bool single_word, lstrip, rstrip, normalized, special;
};

// Leftmost-longest matching of a set of strings, as HF's added vocabulary does it.
struct TokenMatcher {
  std::vector<const AddedToken*> by_first[256];  // longest first
  bool empty() const {
    for (const auto& v : by_first)
      if (!v.empty()) return false;
    return true;
  }
  void add(const AddedToken* t) {
    if (t->content.empty()) return;
    auto& v = by_first[static_cast<unsigned char>(t->content[0])];
    v.push_back(t);
    std::stable_sort(v.begin(), v.end(), [](const AddedToken* a, const AddedToken* b) {
      return a->content.size() > b->content.size();
    });
  }
  // Splits s into (token or -1, piece) as HF's find_matches does.
  std::vector<std::pair<int, std::pair<size_t, size_t>>> split(std::string_view s) const {
    std::vector<std::pair<int, std::pair<size_t, size_t>>> out;
    size_t start_offset = 0;
    for (size_t i = 0; i < s.size();) {
      const AddedToken* hit = nullptr;
      for (const AddedToken* t : by_first[static_cast<unsigned char>(s[i])])
        if (s.compare(i, t->content.size(), t->content) == 0) {
          hit = t;
          break;
        }
      if (!hit) {
        ++i;
        continue;
      }
      size_t start = i, stop = i + hit->content.size();
      i = stop;
      if (hit->single_word) {
        const bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
        const bool stop_space = stop == s.size() || !starts_with_word(s.substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (hit->lstrip) {
        size_t b = start;
        while (b > 0) {
          size_t k = b - 1;
          while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80) --k;
          uint32_t cp;
          utf8_decode(s, k, cp);
          if (!is_whitespace(cp)) break;
          b = k;
        }
        start = std::max(b, start_offset);
      }
      if (hit->rstrip) {
        while (stop < s.size()) {
          uint32_t cp;
          const int n = utf8_decode(s, stop, cp);
          if (!is_whitespace(cp)) break;
          stop += size_t(n);
        }
        i = std::max(i, stop);
      }
      if (start_offset < start) out.push_back({-1, {start_offset, start}});
      out.push_back({hit->id, {start, stop}});
      start_offset = stop;
    }
    if (start_offset != s.size()) out.push_back({-1, {start_offset, s.size()}});
    return out;
  }
  static bool ends_with_word(std::string_view s) {
    size_t k = s.size() - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xc0) == 0x80) --k;
    uint32_t cp;
    utf8_decode(s, k, cp);
    return is_word_char(cp);
  }
  static bool starts_with_word(std::string_view s) {
    uint32_t cp;
    utf8_decode(s, 0, cp);
    return is_word_char(cp);
  }
};

}  // namespace

struct HfPipeline {
  std::string file;
  std::vector<AddedToken> added;
  TokenMatcher raw_matcher, normalized_matcher;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  Bpe bpe;
  std::unique_ptr<Decoder> decoder;
};

namespace {

// Prefix and suffix ids of the post-processor for a single sequence.
void parse_post_processor(const Ctx& c, const json& j, const std::string& where,
                          std::vector<int>& prefix, std::vector<int>& suffix) {
  if (j.is_null()) return;
  const std::string type = type_of(c, j, where);
  const std::string w = where + " (" + type + ")";
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    const json& list = field(c, j, "processors", w);
    check(list.is_array(), c.file, ": ", w, ".processors must be an array");
    for (size_t i = 0; i < list.size(); ++i)
      parse_post_processor(c, list[i], w + ".processors[" + std::to_string(i) + "]", prefix, suffix);
    return;
  }
  if (type == "TemplateProcessing") {
    const json& single = field(c, j, "single", w);
    const json& specials = field(c, j, "special_tokens", w);
    check(single.is_array(), c.file, ": ", w, ".single must be an array");
    bool seen_sequence = false;
    for (const json& item : single) {
      if (item.contains("Sequence")) {
        check(!seen_sequence, c.file, ": ", w, ".single names the sequence twice");
        seen_sequence = true;
        continue;
      }
      check(item.contains("SpecialToken") && item["SpecialToken"].contains("id") &&
                item["SpecialToken"]["id"].is_string(),
            c.file, ": ", w, ".single: each item must be {\"Sequence\": ...} or {\"SpecialToken\": {\"id\": ...}}");
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      check(specials.is_object() && specials.contains(name) && specials[name].contains("ids") &&
                specials[name]["ids"].is_array(),
            c.file, ": ", w, ": special token \"", name, "\" has no ids in special_tokens");
      for (const json& id : specials[name]["ids"]) {
        check(id.is_number_unsigned(), c.file, ": ", w, ": special token \"", name,
              "\" has an id that is not a non-negative integer");
        (seen_sequence ? suffix : prefix).push_back(id.get<int>());
      }
    }
    check(seen_sequence, c.file, ": ", w, ".single does not contain the sequence ($A)");
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const json& cls = field(c, j, "cls", w);
    const json& sep = field(c, j, "sep", w);
    check(cls.is_array() && cls.size() == 2 && cls[1].is_number_unsigned() && sep.is_array() &&
              sep.size() == 2 && sep[1].is_number_unsigned(),
          c.file, ": ", w, ".cls and .sep must be [token, id]");
    prefix.push_back(cls[1].get<int>());
    suffix.insert(suffix.begin(), sep[1].get<int>());
    return;
  }
  fail(c.file, ": ", where, ": post-processor type \"", type,
       "\" is not supported (supported: TemplateProcessing, ByteLevel, RobertaProcessing, "
       "BertProcessing, Sequence)");
}

}  // namespace

HfTokenizer::HfTokenizer() : p_(std::make_unique<HfPipeline>()) {}
HfTokenizer::HfTokenizer(HfTokenizer&&) noexcept = default;
HfTokenizer& HfTokenizer::operator=(HfTokenizer&&) noexcept = default;
HfTokenizer::~HfTokenizer() = default;

HfTokenizer HfTokenizer::load(const std::filesystem::path& file) {
  check(std::filesystem::exists(file), file.string(), ": not found");
  check(std::filesystem::is_regular_file(file), file.string(), ": not a regular file");
  std::ifstream in(file, std::ios::binary);
  check(bool(in), file.string(), ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), file.string());
}

HfTokenizer HfTokenizer::from_json_text(const std::string& text, const std::string& name) {
  const Ctx c{name};
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded(), name, ": malformed JSON (not a tokenizer.json)");
  check(j.is_object(), name, ": expected a JSON object, found ", json_kind(j));

  HfTokenizer t;
  HfPipeline& p = *t.p_;
  p.file = name;

  // The model.
  const json& model = field(c, j, "model", "the tokenizer");
  check(model.is_object(), name, ": model must be an object, not ", json_kind(model));
  const std::string type = model.contains("type") && model["type"].is_string()
                               ? model["type"].get<std::string>()
                               : (model.contains("merges") ? "BPE" : "");
  check(type == "BPE", name, ": model type \"", type,
        "\" is not supported (only BPE, the model of Llama-family tokenizers)");
  Bpe& bpe = p.bpe;
  const json& vocab = field(c, model, "vocab", "model");
  check(vocab.is_object() && !vocab.empty(), name, ": model.vocab must be a non-empty object of token: id");
  int max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    check(it.value().is_number_unsigned(), name, ": model.vocab[\"", it.key(),
          "\"] must be a non-negative integer id, not ", json_kind(it.value()));
    const int64_t id = it.value().get<int64_t>();
    check(id < (int64_t(1) << 24), name, ": model.vocab[\"", it.key(), "\"] = ", id, " is too large");
    bpe.vocab.emplace(it.key(), int(id));
    max_id = std::max(max_id, int(id));
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    check(model["dropout"].is_number(), name, ": model.dropout must be a number or null");
    check(model["dropout"].get<double>() == 0.0, name,
          ": model.dropout is set (BPE dropout randomizes tokenization; it is for training only)");
  }
  auto opt_string = [&](const char* key) -> std::optional<std::string> {
    if (!model.contains(key) || model[key].is_null()) return std::nullopt;
    check(model[key].is_string(), name, ": model.", key, " must be a string or null");
    return model[key].get<std::string>();
  };
  if (const auto unk = opt_string("unk_token")) {
    const auto it = bpe.vocab.find(*unk);
    check(it != bpe.vocab.end(), name, ": model.unk_token \"", *unk, "\" is not in the vocabulary");
    bpe.unk_id = it->second;
  }
  bpe.prefix = opt_string("continuing_subword_prefix").value_or("");
  bpe.suffix = opt_string("end_of_word_suffix").value_or("");
  bpe.fuse_unk = opt_bool(c, model, "fuse_unk", false, "model");
  bpe.byte_fallback = opt_bool(c, model, "byte_fallback", false, "model");
  bpe.ignore_merges = opt_bool(c, model, "ignore_merges", false, "model");
  for (int b = 0; b < 256; ++b) {
    char code[8];
    std::snprintf(code, sizeof code, "<0x%02X>", b);
    const auto it = bpe.vocab.find(code);
    bpe.byte_ids[b] = it == bpe.vocab.end() ? -1 : it->second;
  }
  bpe.char_id.assign(0x10000, -1);
  for (const auto& [tok, id] : bpe.vocab) {
    uint32_t cp;
    if (!tok.empty() && first_invalid_utf8(tok) < 0 && size_t(utf8_decode(tok, 0, cp)) == tok.size() &&
        cp < bpe.char_id.size())
      bpe.char_id[cp] = id;
  }

  const json& merges = field(c, model, "merges", "model");
  check(merges.is_array(), name, ": model.merges must be an array");
  bpe.merges.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    std::string a, b;
    if (m.is_string()) {  // "a b" (older files)
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      check(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, name,
            ": model.merges[", r, "] = \"", s, "\" is not two tokens separated by one space");
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>(), b = m[1].get<std::string>();
    } else {
      fail(name, ": model.merges[", r, "] must be \"a b\" or [\"a\", \"b\"], not ", json_kind(m));
    }
    const auto ia = bpe.vocab.find(a), ib = bpe.vocab.find(b);
    // The merged token: a, then b without its continuing-subword prefix (HF strips its length).
    const auto iab = bpe.vocab.find(a + b.substr(std::min(bpe.prefix.size(), b.size())));
    check(ia != bpe.vocab.end(), name, ": model.merges[", r, "] refers to \"", a,
          "\", which is not in the vocabulary");
    check(ib != bpe.vocab.end(), name, ": model.merges[", r, "] refers to \"", b,
          "\", which is not in the vocabulary");
    check(iab != bpe.vocab.end(), name, ": model.merges[", r, "] makes \"", a, b,
          "\", which is not in the vocabulary");
    bpe.merges.emplace((uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second),
                       std::make_pair(int(r), iab->second));
  }

  // Stages.
  p.normalizer = parse_normalizer(c, j.value("normalizer", json()), "normalizer");
  p.pre_tokenizer = parse_pre_tokenizer(c, j.value("pre_tokenizer", json()), "pre_tokenizer");
  p.decoder = parse_decoder(c, j.value("decoder", json()), "decoder");
  parse_post_processor(c, j.value("post_processor", json()), "post_processor", t.prefix_, t.suffix_);

  // Added tokens: they take their ids even where the model's vocabulary has others.
  t.token_to_id_ = bpe.vocab;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    const json& list = j["added_tokens"];
    check(list.is_array(), name, ": added_tokens must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string w = "added_tokens[" + std::to_string(i) + "]";
      const json& a = list[i];
      check(a.is_object() && a.contains("id") && a["id"].is_number_unsigned(), name, ": ", w,
            " must have a non-negative integer \"id\"");
      AddedToken at;
      at.id = a["id"].get<int>();
      check(at.id < (1 << 24), name, ": ", w, ".id is too large");
      at.content = str_field(c, a, "content", w);
      check(!at.content.empty(), name, ": ", w, ".content is empty");
      at.special = opt_bool(c, a, "special", false, w);
      at.single_word = opt_bool(c, a, "single_word", false, w);
      at.lstrip = opt_bool(c, a, "lstrip", false, w);
      at.rstrip = opt_bool(c, a, "rstrip", false, w);
      at.normalized = opt_bool(c, a, "normalized", !at.special, w);
      t.token_to_id_[at.content] = at.id;
      max_id = std::max(max_id, at.id);
      p.added.push_back(at);
    }
  }
  t.id_to_token_.assign(size_t(max_id + 1), std::string());
  for (const auto& [tok, id] : bpe.vocab) t.id_to_token_[size_t(id)] = tok;
  for (const AddedToken& a : p.added) t.id_to_token_[size_t(a.id)] = a.content;
  for (AddedToken& a : p.added) {
    if (a.normalized && p.normalizer) p.normalizer->apply(a.content);
  }
  for (const AddedToken& a : p.added) (a.normalized ? p.normalized_matcher : p.raw_matcher).add(&a);

  for (int id : t.prefix_)
    check(id < t.vocab_size(), name, ": post_processor adds id ", id, ", outside the vocabulary of ", t.vocab_size());
  for (int id : t.suffix_)
    check(id < t.vocab_size(), name, ": post_processor adds id ", id, ", outside the vocabulary of ", t.vocab_size());

  std::ostringstream sum;
  const bool byte_level = bpe.char_id[0x120] >= 0 && !bpe.byte_fallback;  // "Ġ", GPT-2's space
  sum << "BPE (" << (byte_level ? "byte-level" : bpe.byte_fallback ? "byte fallback" : "characters")
      << "), " << t.vocab_size() << " tokens, " << bpe.merges.size() << " merges, " << p.added.size()
      << " added tokens";
  t.summary_ = sum.str();
  return t;
}

std::vector<int> HfTokenizer::encode(std::string_view text, bool add_special) const {
  const int64_t bad = first_invalid_utf8(text);
  if (bad >= 0) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02x", unsigned(static_cast<unsigned char>(text[size_t(bad)])));
    fail("tokenizer: invalid UTF-8 at byte offset ", bad, " (byte ", byte, "); the text must be UTF-8");
  }
  const HfPipeline& p = *p_;
  std::vector<int> ids;
  if (add_special) ids = prefix_;

  // 1. Added tokens that match the raw text; 2. the normalizer on the rest; 3. added tokens
  // that match normalized text; 4. the pre-tokenizer and the model on each remaining piece.
  struct Part {
    int token;  // -1: text
    Piece piece;
  };
  std::vector<Part> parts;
  if (text.empty()) return add_special ? std::vector<int>(prefix_.begin(), prefix_.end()) : ids;
  for (const auto& [tok, range] : p.raw_matcher.split(text)) {
    Piece piece{std::string(text.substr(range.first, range.second - range.first)), range.first == 0};
    if (tok >= 0) {
      parts.push_back({tok, {}});
      continue;
    }
    if (p.normalizer) p.normalizer->apply(piece.text);
    if (piece.text.empty()) continue;
    for (const auto& [tok2, r2] : p.normalized_matcher.split(piece.text)) {
      if (tok2 >= 0) {
        parts.push_back({tok2, {}});
      } else {
        parts.push_back({-1, {piece.text.substr(r2.first, r2.second - r2.first), piece.at_origin && r2.first == 0}});
      }
    }
  }
  for (Part& part : parts) {
    if (part.token >= 0) {
      ids.push_back(part.token);
      continue;
    }
    std::vector<Piece> words{std::move(part.piece)};
    if (p.pre_tokenizer) p.pre_tokenizer->apply(words);
    for (const Piece& w : words)
      if (!w.text.empty()) p.bpe.tokenize(w.text, ids);
  }
  if (add_special) ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    check(id >= 0 && id < vocab_size() && !id_to_token_[size_t(id)].empty(), "tokenizer: id ", id,
          " is not in the vocabulary of ", p_->file);
    tokens.push_back(id_to_token_[size_t(id)]);
  }
  if (!p_->decoder) {
    std::string s;
    for (size_t i = 0; i < tokens.size(); ++i) s += (i ? " " : "") + tokens[i];
    return s;
  }
  p_->decoder->apply(tokens);
  std::string s;
  for (const std::string& t : tokens) s += t;
  return s;
}

const std::string& HfTokenizer::token(int id) const {
  check(id >= 0 && id < vocab_size(), "tokenizer: id ", id, " is outside the vocabulary of ", vocab_size());
  return id_to_token_[size_t(id)];
}

std::optional<int> HfTokenizer::token_id(const std::string& token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

#endif  // KVCOMP_HAVE_HF_TOKENIZER

}  // namespace kvcomp
