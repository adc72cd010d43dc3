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

#include "models/chat.h"
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

namespace {

nlohmann::json fixture(const char* name) {
  return read_json(fs::path(KVCOMP_TEST_FIXTURES) / "tokenizers" / name / "tokenizer.json");
}

HfTokenizer from(const nlohmann::json& j) { return HfTokenizer::from_json_text(j.dump(), "test.json"); }

bool contains(const std::vector<int>& ids, int id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

// tokenizers.js (the fixtures' reference) ignores single_word, so its rule is checked here as
// HF's Rust code states it: the token matches only where no word character touches it.
TEST_CASE("added tokens: single_word, lstrip and rstrip follow HF's rules") {
  nlohmann::json base = fixture("bytelevel-qwen2");
  const int id = int(base["added_tokens"].size() + base["model"]["vocab"].size()) + 10;
  nlohmann::json word = base;
  word["added_tokens"].push_back({{"id", id}, {"content", "zork"}, {"single_word", true},
                                  {"lstrip", false}, {"rstrip", false}, {"normalized", true},
                                  {"special", false}});
  const HfTokenizer plain = from(base), with_word = from(word);
  REQUIRE(with_word.encode("a zork b", false) ==
          std::vector<int>{plain.encode("a", false)[0], plain.encode(" ", false)[0], id,
                           plain.encode(" b", false)[0]});
  REQUIRE(contains(with_word.encode("zork", false), id));
  REQUIRE(contains(with_word.encode("(zork)", false), id));
  for (const char* s : {"azork", "zorks", "7zork", "_zork", "éclairzork"}) {
    INFO(s);
    REQUIRE(with_word.encode(s, false) == plain.encode(s, false));
  }

  nlohmann::json strip = base;
  strip["added_tokens"].push_back({{"id", id}, {"content", "[M]"}, {"single_word", false},
                                   {"lstrip", true}, {"rstrip", true}, {"normalized", false},
                                   {"special", true}});
  const HfTokenizer stripping = from(strip);
  // The spaces on both sides belong to the token.
  REQUIRE(stripping.encode("a \t [M]  b", false) ==
          std::vector<int>{plain.encode("a", false)[0], id, plain.encode("b", false)[0]});
}

TEST_CASE("malformed tokenizer.json files are clear errors") {
  const nlohmann::json good = fixture("bytelevel-llama3");
  REQUIRE_NOTHROW(from(good));
  REQUIRE_THROWS_WITH(HfTokenizer::from_json_text("{\"model\": ", "t.json"),
                      HasSubstr("t.json: malformed JSON"));
  REQUIRE_THROWS_WITH(HfTokenizer::from_json_text("[1, 2]", "t.json"), HasSubstr("expected a JSON object"));
  auto broken = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = good;
    edit(j);
    return j;
  };
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j.erase("model"); })), HasSubstr("has no \"model\""));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["model"]["type"] = "Unigram"; })),
                      HasSubstr("model type \"Unigram\" is not supported"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["model"].erase("vocab"); })),
                      HasSubstr("model has no \"vocab\""));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["model"]["vocab"]["x"] = -3; })),
                      HasSubstr("model.vocab[\"x\"] must be a non-negative integer id"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["model"]["merges"].push_back({"Ġ", "nosuch"}); })),
                      HasSubstr("refers to \"nosuch\", which is not in the vocabulary"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["model"]["merges"].push_back("a b c"); })),
                      HasSubstr("is not two tokens separated by one space"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["model"]["dropout"] = 0.1; })),
                      HasSubstr("dropout is set"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["normalizer"] = {{"type", "Precompiled"}}; })),
                      HasSubstr("normalizer type \"Precompiled\" is not supported"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["pre_tokenizer"]["pretokenizers"][1]["type"] = "BertPreTokenizer"; })),
                      HasSubstr("pre_tokenizer (Sequence).pretokenizers[1]: pre-tokenizer type \"BertPreTokenizer\""));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["decoder"] = {{"type", "WordPiece"}}; })),
                      HasSubstr("decoder type \"WordPiece\" is not supported"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed"; })),
                      HasSubstr("cannot compile the regex \"(unclosed\""));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways"; })),
                      HasSubstr("behavior \"Sideways\" is not one of"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["post_processor"]["processors"][1]["special_tokens"] = nlohmann::json::object(); })),
                      HasSubstr("special token \"<|begin_of_text|>\" has no ids"));
  REQUIRE_THROWS_WITH(from(broken([](auto& j) { j["added_tokens"][0]["id"] = "seven"; })),
                      HasSubstr("added_tokens[0] must have a non-negative integer \"id\""));
}

TEST_CASE("tokenizer.json rejects invalid UTF-8 and unknown ids") {
  const HfTokenizer t = from(fixture("bytelevel-llama3"));
  REQUIRE_THROWS_WITH(t.encode("ok \xC3\x28 bad", false), HasSubstr("invalid UTF-8 at byte offset 3"));
  REQUIRE_THROWS_WITH(t.encode("\xED\xA0\x80", false), HasSubstr("byte offset 0"));  // a surrogate
  REQUIRE_THROWS_WITH(t.decode({1, t.vocab_size()}), HasSubstr("is not in the vocabulary"));
}

TEST_CASE("a model directory with tokenizer.json uses it, with tokenizer_config.json's BOS rule") {
  const fs::path dir = fs::temp_directory_path() / "kvcomp_test_tokdir";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path src = fs::path(KVCOMP_TEST_FIXTURES) / "tokenizers" / "spm-legacy";
  fs::copy_file(src / "tokenizer.json", dir / "tokenizer.json");
  // A tokenizer.model beside it is not used (transformers' fast tokenizer reads tokenizer.json).
  fs::copy_file(fs::path(KVCOMP_DEMO_MODEL_DIR) / "tokenizer.model", dir / "tokenizer.model");
  {
    const Tokenizer tok = load_tokenizer(dir, 1);
    REQUIRE(tok.file().filename() == "tokenizer.json");
    REQUIRE(tok.prefix_ids() == std::vector<int>{1});  // the post-processor's <s>
    REQUIRE(tok.describe().find("adds <s> before") != std::string::npos);
  }
  auto with_config = [&](const std::string& cfg) {
    std::ofstream(dir / "tokenizer_config.json") << cfg;
    return load_tokenizer(dir, 1);
  };
  REQUIRE(with_config(R"({"add_bos_token": false})").prefix_ids().empty());
  {
    const Tokenizer tok = with_config(R"({"add_bos_token": true, "add_eos_token": true, "eos_token": "</s>"})");
    REQUIRE(tok.prefix_ids() == std::vector<int>{1});
    REQUIRE(tok.suffix_ids() == std::vector<int>{2});
    const auto ids = tok.encode("hi");
    REQUIRE(ids.front() == 1);
    REQUIRE(ids.back() == 2);
  }
  REQUIRE_THROWS_WITH(with_config(R"({"add_eos_token": true, "eos_token": "<nope>"})"),
                      HasSubstr("eos_token \"<nope>\" is not a token of"));
  REQUIRE_THROWS_WITH(with_config(R"({"add_bos_token": "yes"})"),
                      HasSubstr("add_bos_token must be true or false"));
  fs::remove(dir / "tokenizer.json");
  fs::remove(dir / "tokenizer_config.json");
  REQUIRE(load_tokenizer(dir, 1).file().filename() == "tokenizer.model");
  fs::remove(dir / "tokenizer.model");
  REQUIRE_THROWS_WITH(load_tokenizer(dir, 1), HasSubstr("expected tokenizer.json or a sentencepiece tokenizer.model"));
  fs::remove_all(dir);
}

TEST_CASE("streaming a byte-level tokenizer never emits half a character") {
  const fs::path dir = fs::path(KVCOMP_TEST_FIXTURES) / "tokenizers" / "bytelevel-llama3";
  const Tokenizer tok = load_tokenizer(dir, -1);
  const std::vector<int> prompt = tok.encode("The word was");
  bool split_character = false;
  for (const std::string gen : {" 日本語 and more", " \xF0\x9F\x9A\x80\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 x",
                                "\n\nA new paragraph.", " Ελληνικά  tabs\tend"}) {
    const auto ids = tok.encode_raw(gen);
    // Byte-level tokens split characters: some token of these texts is not UTF-8 alone.
    for (int id : ids) split_character |= tok.decode({id}).find("\xEF\xBF\xBD") != std::string::npos;
    StreamDecoder sd(tok, prompt);
    std::string out;
    for (int id : ids) {
      const std::string piece = sd.push(id);
      REQUIRE(piece.find("\xEF\xBF\xBD") == std::string::npos);
      out += piece;
    }
    out += sd.flush();
    REQUIRE(out == gen);
  }
  REQUIRE(split_character);
}

// The chat families against the real templates (Llama 3, Qwen2.5's ChatML with its default
// system message, Mistral's [INST]) rendered by HF's Jinja in the fixtures' chat.json.
TEST_CASE("chat prompts render and tokenize as the model's template does") {
  size_t checked = 0;
  for (const char* name : {"bytelevel-llama3", "bytelevel-qwen2", "spm-legacy"}) {
    const fs::path dir = fs::path(KVCOMP_TEST_FIXTURES) / "tokenizers" / name;
    INFO(name);
    const Tokenizer tok = load_tokenizer(dir, -1);
    const ChatFormat f = load_chat_format(dir, "");
    for (const auto& c : read_json(dir / "chat.json")) {
      const std::string text = render_chat(f, c["system"], c["user"]);
      CHECK(text == c["text"].get<std::string>());
      CHECK(tok.encode_raw(text) == c["ids"].get<std::vector<int>>());
      ++checked;
    }
  }
  REQUIRE(checked >= 10);
  REQUIRE(load_chat_format(fs::path(KVCOMP_TEST_FIXTURES) / "tokenizers" / "bytelevel-llama3", "").family ==
          ChatFamily::kLlama3);
  // No template: an error that names --chat-format; a named family works without one.
  const fs::path plain = fs::path(KVCOMP_TEST_FIXTURES) / "tokenizers" / "spm-metaspace";
  REQUIRE_THROWS_WITH(load_chat_format(plain, ""), HasSubstr("has no chat template"));
  REQUIRE(render_chat(load_chat_format(plain, "mistral"), "", "hi") == "<s>[INST] hi [/INST]");
  REQUIRE_THROWS_WITH(load_chat_format(plain, "vicuna"), HasSubstr("'vicuna' is not one of llama3, chatml, mistral"));
  REQUIRE_FALSE(detect_chat_family("{{ messages[0]['content'] }}").has_value());
}
