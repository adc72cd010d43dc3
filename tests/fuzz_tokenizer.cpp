// libFuzzer target for tokenizer.json: the parser of the file and the encoder of texts. The
// first byte picks which: 0 parses the rest as a tokenizer.json (any input parses or throws
// kvcomp::Error, and whatever parses encodes and decodes without crashing); otherwise the rest
// is a text for the fixture tokenizers, which must encode valid UTF-8 (a byte-level tokenizer
// without a normalizer gives the text back exactly) and reject anything else with an Error.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "runtime/error.h"
#include "runtime/tokenizer_json.h"
#include "runtime/utf8.h"

namespace {
const kvcomp::HfTokenizer& fixture(const char* name) {
  static std::map<std::string, kvcomp::HfTokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, kvcomp::HfTokenizer::load(std::filesystem::path(KVCOMP_TEST_FIXTURES) /
                                                      "tokenizers" / name / "tokenizer.json"))
             .first;
  return it->second;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 0) {
    try {
      const kvcomp::HfTokenizer t = kvcomp::HfTokenizer::from_json_text(text, "fuzz/tokenizer.json");
      for (const char* s : {"Hello world", " 12345 don't\n\n\t", "日本語 🚀 e\xCC\x81"}) {
        const std::vector<int> ids = t.encode(s, true);
        for (int id : ids)
          if (id < 0 || id >= t.vocab_size()) __builtin_trap();
        try {
          (void)t.decode(ids);
        } catch (const kvcomp::Error&) {  // ids without a token string (holes in the vocabulary)
        }
      }
    } catch (const kvcomp::Error&) {
    }
    return 0;
  }
  const bool valid = kvcomp::first_invalid_utf8(text) < 0;
  for (const char* name : {"bytelevel-llama3", "bytelevel-qwen2", "spm-metaspace"}) {
    const kvcomp::HfTokenizer& t = fixture(name);
    std::vector<int> ids;
    try {
      ids = t.encode(text, false);
    } catch (const kvcomp::Error&) {
      if (valid) __builtin_trap();  // valid UTF-8 always encodes
      continue;
    }
    if (!valid) __builtin_trap();  // invalid UTF-8 never does
    const std::string back = t.decode(ids);
    if (std::string(name) == "bytelevel-llama3" && back != text) __builtin_trap();
  }
  return 0;
}
