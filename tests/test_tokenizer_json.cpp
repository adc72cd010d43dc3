// tokenizer.json against Hugging Face's reference: every directory under
// fixtures/tokenizers (and those named in KVCOMP_TOKENIZER_CASES, colon-separated, such as the
// full-size tokenizers tools/check_tokenizers.sh downloads) holds a tokenizer.json and a
// cases.json made by tools/tokenizer_reference.mjs: texts with the ids and the decoded text of
// the reference. Every id must match; decode must give the reference's text.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "runtime/tokenizer_json.h"
#include "tests/catch.h"

using namespace kvcomp;
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

std::vector<fs::path> case_dirs() {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(fs::path(KVCOMP_TEST_FIXTURES) / "tokenizers"))
    if (fs::exists(e.path() / "cases.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  if (const char* extra = std::getenv("KVCOMP_TOKENIZER_CASES")) {
    std::stringstream ss(extra);
    for (std::string d; std::getline(ss, d, ':');)
      if (!d.empty()) dirs.emplace_back(d);
  }
  return dirs;
}

std::string show(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return "[" + s + "]";
}

}  // namespace

TEST_CASE("tokenizer.json encodes and decodes as the reference does") {
  REQUIRE(hf_tokenizer_supported());
  const auto dirs = case_dirs();
  REQUIRE(!dirs.empty());
  for (const fs::path& dir : dirs) {
    INFO("tokenizer " << dir.string());
    const Tokenizer tok = load_tokenizer(dir, -1);
    const nlohmann::json cases = read_json(dir / "cases.json");
    REQUIRE(cases.size() > 0);
    size_t ids_ok = 0, special_ok = 0, decode_ok = 0, round_trips = 0;
    for (const auto& c : cases) {
      const std::string text = c["text"];
      const std::vector<int> want = c["ids"], want_special = c["ids_special"];
      const std::vector<int> got = tok.encode_raw(text), got_special = tok.encode(text);
      if (got != want) UNSCOPED_INFO("text " << nlohmann::json(text).dump() << ": ids " << show(got) << ", reference " << show(want));
      if (got_special != want_special) UNSCOPED_INFO("text " << nlohmann::json(text).dump() << ": with special tokens " << show(got_special) << ", reference " << show(want_special));
      const std::string decoded = tok.decode(want);
      if (decoded != c["decoded"].get<std::string>()) UNSCOPED_INFO("ids " << show(want) << ": decoded " << nlohmann::json(decoded).dump() << ", reference " << c["decoded"].dump());
      ids_ok += got == want;
      special_ok += got_special == want_special;
      decode_ok += decoded == c["decoded"].get<std::string>();
      round_trips += c["decoded"].get<std::string>() == text;
    }
    CAPTURE(cases.size(), ids_ok, special_ok, decode_ok, round_trips);
    CHECK(ids_ok == cases.size());
    CHECK(special_ok == cases.size());
    CHECK(decode_ok == cases.size());
  }
}
