// The sentencepiece wrapper: BOS rule, round trips (byte-fallback pieces included) and the
// streaming detokenizer, whose pieces must add up to the full decode.
#include <string>
#include <vector>

#include "models/model_files.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "tests/catch.h"

using namespace kvcomp;

TEST_CASE("encode adds BOS once and decodes back") {
  const Tokenizer tok = load_tokenizer(default_model_dir(), 1);
  REQUIRE(tok.add_bos());
  const std::string text = "Call me Ishmael. Some years ago -- never mind how long precisely";
  const auto ids = tok.encode(text);
  REQUIRE(ids.front() == 1);
  REQUIRE(std::count(ids.begin(), ids.end(), 1) == 1);
  REQUIRE(tok.decode(ids) == text);
  REQUIRE(tok.encode_raw(text) == std::vector<int>(ids.begin() + 1, ids.end()));
}

TEST_CASE("text outside the vocabulary round-trips through byte-fallback pieces") {
  const Tokenizer tok = load_tokenizer(default_model_dir(), 1);
  for (const std::string text : {"naïve café", "日本語のテキスト", "emoji \xF0\x9F\x9A\x80 rocket",
                                 "tabs\tand  double  spaces", "\xEF\xAC\x81nd (ligature)"}) {
    const auto ids = tok.encode_raw(text);
    REQUIRE(tok.decode(ids) == text);
  }
  // Multi-byte characters are spelled with byte pieces <0x..>.
  bool saw_byte_piece = false;
  for (int id : tok.encode_raw("日本語")) saw_byte_piece |= tok.piece(id).rfind("<0x", 0) == 0;
  REQUIRE(saw_byte_piece);
}

TEST_CASE("streaming detokenization emits exactly the decoded text, never half a character") {
  const Tokenizer tok = load_tokenizer(default_model_dir(), 1);
  const std::vector<int> prompt = tok.encode("The word was");
  for (const std::string gen : {" 日本語 and more", " plain words, with punctuation!",
                                " \xF0\x9F\x9A\x80\xF0\x9F\x9A\x80 x", "\n\nA new paragraph."}) {
    const auto ids = tok.encode_raw(gen);
    StreamDecoder sd(tok, prompt);
    std::string out;
    for (int id : ids) {
      const std::string piece = sd.push(id);
      // Every emitted piece is complete UTF-8 (no replacement character from a split byte run).
      REQUIRE(piece.find("\xEF\xBF\xBD") == std::string::npos);
      out += piece;
    }
    out += sd.flush();
    std::vector<int> all = prompt;
    all.insert(all.end(), ids.begin(), ids.end());
    const std::string full = tok.decode(all);
    const std::string head = tok.decode(prompt);
    REQUIRE(head + out == full);
  }
}

TEST_CASE("a missing or bad tokenizer is a clear error") {
  REQUIRE_THROWS_WITH(Tokenizer("/nonexistent/tokenizer.model", 1, true),
                      HasSubstr("tokenizer not found"));
  REQUIRE_THROWS_WITH(
      Tokenizer(std::string(KVCOMP_TEST_FIXTURES) + "/tiny-gqa/config.json", 1, true),
      HasSubstr("not a sentencepiece model"));
}
