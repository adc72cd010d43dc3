// A battery of bad inputs to every command, as a hostile new user would try them: options out of
// range or of the wrong form, files that are missing, of the wrong kind or not text, model
// directories whose config.json, index or shards are broken one field at a time, tokenizer files
// that are malformed. Each must exit non-zero (not by a signal, not by the timeout) with a
// message that names what is wrong; the test prints how many inputs it tried.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/catch.h"
#include "tests/shell.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kDemo = KVCOMP_DEMO_MODEL_DIR;
const std::string kFixtures = KVCOMP_TEST_FIXTURES;
const std::string kText = kDemo + "/heldout.txt";

struct Bad {
  std::string args;    // the command line after `kvcomp`
  std::string expect;  // a part of the message that says what is wrong
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

// A copy of the demo model in `dir` whose config.json is edit(config) (the shards and the
// tokenizer are symbolic links).
fs::path demo_with_config(const fs::path& dir, const std::function<void(json&)>& edit) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kDemo)) {
    const auto name = e.path().filename();
    if (name != "config.json") fs::create_symlink(fs::absolute(e.path()), dir / name);
  }
  json c = json::parse(slurp(fs::path(kDemo) / "config.json"));
  edit(c);
  spit(dir / "config.json", c.dump(2));
  return dir;
}

// The safetensors header of a file and its data section.
struct Safetensors {
  json header;
  std::string data;
};
Safetensors read_st(const fs::path& p) {
  const std::string b = slurp(p);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  return {json::parse(b.substr(8, n)), b.substr(8 + n)};
}
std::string st_bytes(const json& header, const std::string& data) {
  std::string h = header.dump();
  const uint64_t n = h.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + h + data;
}

// A copy of the tiny-gqa fixture in `dir` whose model.safetensors is edit(header, data).
fs::path tiny_with_shard(const fs::path& dir, const std::function<void(json&, std::string&)>& edit) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kFixtures + "/tiny-gqa"))
    if (e.path().filename() != "model.safetensors") fs::copy(e.path(), dir / e.path().filename());
  Safetensors st = read_st(fs::path(kFixtures) / "tiny-gqa" / "model.safetensors");
  edit(st.header, st.data);
  spit(dir / "model.safetensors", st_bytes(st.header, st.data));
  return dir;
}

// The first tensor of a header whose name contains `part`.
std::string tensor_named(const json& h, const std::string& part) {
  for (auto it = h.begin(); it != h.end(); ++it)
    if (it.key().find(part) != std::string::npos) return it.key();
  FAIL("no tensor named *" << part << "*");
  return "";
}

}  // namespace

TEST_CASE("a battery of bad inputs: every one a clear error, none a crash, hang or silent run") {
  const fs::path tmp = temp_dir("bad_inputs");
  std::vector<Bad> bad;
  const std::string cpu = " --device cpu";

  // ---- Options, command by command.
  const std::string gen = "generate" + cpu + " -p hi";
  for (const auto& [opt, expect] : std::vector<std::pair<std::string, std::string>>{
           {"-n -1", "-n"},
           {"-n x", "-n"},
           {"--ctx 0", "--ctx"},
           {"--ctx -4", "--ctx"},
           {"--ctx 100000", "max_position_embeddings"},
           {"--ctx 2", "leaves no room in the context limit"},
           {"--temperature -1", "--temperature"},
           {"--temperature nan", "--temperature"},
           {"--top-k -3", "--top-k"},
           {"--top-p 0", "--top-p"},
           {"--top-p 1.5", "--top-p"},
           {"--seed -1", "--seed"},
           {"--seed abc", "--seed"},
           {"--kv zip", "--kv: unknown mode 'zip'"},
           {"--kv ''", "--kv"},
           {"--kv kvcomp --eb-k 0", "--eb-k"},
           {"--kv kvcomp --eb-k -1", "--eb-k"},
           {"--kv kvcomp --eb-k 5", "--eb-k"},
           {"--kv kvcomp --eb-v 0", "--eb-v"},
           {"--kv kvcomp --block-k 48", "--block-k"},
           {"--kv kvcomp --block-k 0", "--block-k"},
           {"--kv kvcomp --block-v 1024", "--block-v"},
           {"--kv kvcomp --window-k -5", "--window-k"},
           {"--kv kvcomp --window-v 1000000", "--window-v"},
           {"--kv kvcomp --max-code-len 0", "--max-code-len"},
           {"--kv kvcomp --max-code-len 13", "--max-code-len"},
           {"--kv kivi2 --quant-group 7", "--quant-group"},
           {"--model ''", "--model: an empty path"},
           {"--model /nonexistent/dir", "model directory not found"},
           {"--model " + kText, "is a file, expected a model directory"},
           {"--chat-format bogus", "--chat-format"},
           {"--threads -2", "--threads"},
           {"--no-such-option", "no-such-option"},
       })
    bad.push_back({gen + " " + opt, expect});
  bad.push_back({"generate" + cpu, "--prompt"});
  bad.push_back({"generate --device quantum -p hi", "--device: unknown device 'quantum'"});
  bad.push_back({"generate --device '' -p hi", "--device"});
  bad.push_back({"generate" + cpu + " -p ''", "--prompt: the prompt is empty"});
  bad.push_back({"generate" + cpu + " -p \"$(printf 'caf\\351')\"", "invalid UTF-8 at byte offset 3"});
  bad.push_back({"generate" + cpu + " --prompt-file /nonexistent.txt", "--prompt-file: file not found"});
  bad.push_back({"generate" + cpu + " --prompt-file " + tmp.string(), "is a directory, expected a file"});
  bad.push_back({"generate" + cpu + " -p hi --prompt-file " + kText, "excludes"});

  const std::string ppl = "perplexity" + cpu + " --text " + kText;
  for (const auto& [opt, expect] : std::vector<std::pair<std::string, std::string>>{
           {"", "--ctx"},
           {"--ctx 1", "--ctx: expected a window of at least 2 tokens"},
           {"--ctx 0", "--ctx"},
           {"--ctx -64", "--ctx"},
           {"--ctx 4096", "max_position_embeddings"},
           {"--ctx 64 --prefill 0", "--prefill"},
           {"--ctx 64 --prefill -5", "--prefill"},
           {"--ctx 64 --prefill 65", "--prefill"},
           {"--ctx 64 --max-windows -1", "--max-windows"},
           {"--ctx 64 --kv zip", "--kv"},
           {"--ctx 64 --save-logits /nonexistent/dir/x.logits", "--save-logits"},
           {"--ctx 64 --save-logits " + tmp.string(), "--save-logits"},
           {"--ctx 64 --base-logits /nonexistent.logits --kl-divergence", "--base-logits"},
           {"--ctx 64 --base-logits " + kText + " --kl-divergence", "--base-logits"},
           {"--ctx 64 --kv kvcomp --eb-v 2", "--eb-v"},
       })
    bad.push_back({ppl + " " + opt, expect});
  bad.push_back({"perplexity" + cpu + " --ctx 64", "--text"});
  bad.push_back({"perplexity" + cpu + " --ctx 64 --text /nonexistent.txt", "--text: file not found"});
  bad.push_back({"perplexity" + cpu + " --ctx 64 --text " + tmp.string(), "is a directory"});

  for (const auto& [opt, expect] : std::vector<std::pair<std::string, std::string>>{
           {"--ctx 12x", "--ctx"},
           {"--ctx 0", "--ctx"},
           {"--ctx ,", "--ctx"},
           {"--ctx 64 --batch 0", "--batch"},
           {"--ctx 64 --batch -1", "--batch"},
           {"--ctx 64 --batch 1,,2", "--batch"},
           {"--ctx 64 --n-decode 0", "--n-decode"},
           {"--ctx 64 --warmup -1", "--warmup"},
           {"--ctx 64 --seed -5", "--seed"},
           {"--ctx 64 --kv fp16,zip", "--kv"},
           {"--ctx 64 --fit --kv fp16", "--fit: needs the GPU"},
           {"--ctx 64 --random-weights", "--random-weights needs the GPU"},
       })
    bad.push_back({"bench" + cpu + " " + opt, expect});

  const std::string kvs = "kvstats" + cpu + " --text " + kText;
  bad.push_back({kvs + " --ctx 16", "--ctx 16: shorter than one block"});
  bad.push_back({kvs + " --ctx 4096", "max_position_embeddings"});
  bad.push_back({kvs + " --ctx 256 --windows 0", "--windows"});
  bad.push_back({kvs + " --ctx 256 --eb-k 0", "--eb-k"});
  bad.push_back({"kvstats" + cpu + " --ctx 256 --text /nonexistent.txt", "--text: file not found"});

  const std::string sw = "sweep" + cpu + " --text " + kText + " --ctx 256";
  bad.push_back({sw + " --modes fp16,zip", "--modes: unknown mode 'zip'"});
  bad.push_back({sw + " --modes ''", "--modes"});
  bad.push_back({sw + " --eb 0.1,abc", "--eb"});
  bad.push_back({sw + " --eb 0", "--eb"});
  bad.push_back({sw + " --groups 0", "--groups"});
  bad.push_back({"sweep" + cpu + " --ctx 256 --text /nonexistent.txt", "--text: file not found"});

  const std::string tok_dir = kFixtures + "/tokenizers/bytelevel-llama3";
  bad.push_back({"tokenize --model " + tok_dir, "give --text or --file"});
  bad.push_back({"tokenize --model " + tok_dir + " --text a --file b", "excludes"});
  bad.push_back({"tokenize --model " + tok_dir + " --file /nonexistent.txt", "file not found"});
  bad.push_back({"tokenize --model " + tok_dir + " --file " + tmp.string(), "is a directory"});
  bad.push_back({"tokenize --model " + kFixtures + "/tokenizers --text a", "tokenizer not found"});
  bad.push_back({"tokenize --model /nonexistent --text a", "model directory not found"});
  bad.push_back({"inspect --model /nonexistent/dir", "model directory not found"});
  bad.push_back({"inspect --model " + kText, "is a file, expected a model directory"});
  bad.push_back({"inspect --model " + tmp.string(), "config.json"});
  bad.push_back({"nosuchcommand", "unknown command 'nosuchcommand'"});
  bad.push_back({"", "subcommand"});

  // ---- Texts that are not UTF-8 text.
  spit(tmp / "latin1.txt", "caf\xe9 au lait\n");
  spit(tmp / "overlong.txt", "ab\xc0\xaf" "cd\n");
  spit(tmp / "surrogate.txt", "ab\xed\xa0\x80" "cd\n");
  spit(tmp / "truncated.txt", "abc\xe2\x82");
  spit(tmp / "random.bin", std::string("\x00\x9f\xff\x13\x80\x80\xfe", 7) + "xyz");
  spit(tmp / "empty.txt", "");
  for (const char* f : {"latin1.txt", "overlong.txt", "surrogate.txt", "truncated.txt", "random.bin"}) {
    bad.push_back({"perplexity" + cpu + " --ctx 64 --text " + (tmp / f).string(), "invalid UTF-8"});
    bad.push_back({"generate" + cpu + " -n 1 --prompt-file " + (tmp / f).string(), "invalid UTF-8"});
    bad.push_back({"tokenize --model " + tok_dir + " --file " + (tmp / f).string(), "invalid UTF-8"});
  }
  bad.push_back({"perplexity" + cpu + " --ctx 64 --text " + (tmp / "empty.txt").string(), "fewer than one window"});
  bad.push_back({"generate" + cpu + " --prompt-file " + (tmp / "empty.txt").string(), "empty"});

  // ---- config.json broken one field at a time (inspect and generate read it).
  int n_cfg = 0;
  auto cfg = [&](const std::function<void(json&)>& edit, const std::string& expect) {
    const fs::path d = demo_with_config(tmp / ("cfg" + std::to_string(n_cfg++)), edit);
    bad.push_back({"inspect --model " + d.string(), expect});
    bad.push_back({"generate" + cpu + " -n 1 -p hi --model " + d.string(), expect});
  };
  cfg([](json& c) { c.erase("hidden_size"); }, "hidden_size");
  cfg([](json& c) { c["hidden_size"] = "512"; }, "hidden_size");
  cfg([](json& c) { c["hidden_size"] = -512; }, "hidden_size");
  cfg([](json& c) { c["hidden_size"] = 500; }, "expected [4096, 500] from config.json");
  cfg([](json& c) { c["num_attention_heads"] = 0; }, "num_attention_heads");
  cfg([](json& c) { c["num_attention_heads"] = 3; }, "num_attention_heads");
  cfg([](json& c) { c["num_key_value_heads"] = 3; }, "num_key_value_heads");
  cfg([](json& c) { c["num_key_value_heads"] = 0; }, "num_key_value_heads");
  cfg([](json& c) { c["num_hidden_layers"] = 0; }, "num_hidden_layers");
  cfg([](json& c) { c["num_hidden_layers"] = 5; }, "layers");
  cfg([](json& c) { c["intermediate_size"] = 1000; }, "mlp");
  cfg([](json& c) { c["vocab_size"] = 0; }, "vocab_size");
  cfg([](json& c) { c["vocab_size"] = 5000; }, "embed_tokens");
  cfg([](json& c) { c["head_dim"] = 64; }, "expected [256, 512] from config.json");
  cfg([](json& c) { c["head_dim"] = 96; }, "expected [384, 512] from config.json");
  cfg([](json& c) { c["max_position_embeddings"] = 0; }, "max_position_embeddings");
  cfg([](json& c) { c["rms_norm_eps"] = -1; }, "rms_norm_eps");
  cfg([](json& c) { c["rms_norm_eps"] = "small"; }, "rms_norm_eps");
  cfg([](json& c) { c["hidden_act"] = "relu"; }, "hidden_act");
  cfg([](json& c) { c["architectures"] = json::array({"GPT2LMHeadModel"}); }, "GPT2LMHeadModel");
  cfg([](json& c) { c["architectures"] = "LlamaForCausalLM"; }, "architectures");
  cfg([](json& c) { c["eos_token_id"] = 99999; }, "eos_token_id");
  cfg([](json& c) { c["eos_token_id"] = json::array({2, 99999}); }, "eos_token_id");
  cfg([](json& c) { c["eos_token_id"] = -3; }, "eos_token_id");
  cfg([](json& c) { c["bos_token_id"] = -1; }, "bos_token_id");
  cfg([](json& c) { c["bos_token_id"] = 4096; }, "bos_token_id");
  cfg([](json& c) { c["rope_parameters"]["rope_type"] = "yarn2"; }, "rope");
  cfg([](json& c) { c["rope_parameters"]["rope_theta"] = 0; }, "rope_theta");
  cfg([](json& c) { c["rope_parameters"]["rope_theta"] = "big"; }, "rope_theta");
  cfg([](json& c) { c["attention_bias"] = true; }, "attention_bias");
  cfg([](json& c) { c["mlp_bias"] = true; }, "mlp_bias");
  cfg([](json& c) { c["tie_word_embeddings"] = false; }, "lm_head");
  int n_dir = 0;  // every case its own directory: the runs come after all are written
  auto config_text = [&](const std::string& text, const std::string& expect) {
    const fs::path d = demo_with_config(tmp / ("cfgtext" + std::to_string(n_dir++)), [](json&) {});
    fs::remove(d / "config.json");
    spit(d / "config.json", text);
    bad.push_back({"inspect --model " + d.string(), expect});
  };
  config_text("{\"hidden_size\": 512,", "config.json");
  config_text("[1, 2, 3]", "config.json");
  config_text("", "config.json");
  config_text("\xef\xbb\xbf\xff{}", "config.json");
  {
    const fs::path d = demo_with_config(tmp / "cfgdir", [](json&) {});
    fs::remove(d / "config.json");
    fs::create_directories(d / "config.json");
    bad.push_back({"inspect --model " + d.string(), "is a directory, expected a file"});
  }
  {  // the shard index
    const json idx = json::parse(slurp(fs::path(kDemo) / "model.safetensors.index.json"));
    auto with_index = [&](const std::string& text, const std::string& expect) {
      const fs::path d = demo_with_config(tmp / ("index" + std::to_string(n_dir++)), [](json&) {});
      fs::remove(d / "model.safetensors.index.json");
      spit(d / "model.safetensors.index.json", text);
      bad.push_back({"inspect --model " + d.string(), expect});
    };
    with_index("{\"weight_map\": ", "model.safetensors.index.json");
    with_index("{}", "weight_map");
    json j = idx;
    j["weight_map"][j["weight_map"].begin().key()] = "model-00003-of-00002.safetensors";
    with_index(j.dump(), "model-00003-of-00002.safetensors");
    j = idx;
    j["weight_map"].erase(j["weight_map"].begin());
    with_index(j.dump(), "'model.embed_tokens.weight' is missing");
    j = idx;
    j["weight_map"][j["weight_map"].begin().key()] = 7;
    with_index(j.dump(), "weight_map");
    j = idx;
    j["weight_map"][j["weight_map"].begin().key()] = "../model-00001-of-00002.safetensors";
    with_index(j.dump(), "must be a plain file name");
  }

  // ---- Shards broken one way at a time (the tiny-gqa fixture; inspect reads every header and
  // scans the weights).
  int n_st = 0;
  auto shard = [&](const std::function<void(json&, std::string&)>& edit, const std::string& expect) {
    const fs::path d = tiny_with_shard(tmp / ("st" + std::to_string(n_st++)), edit);
    bad.push_back({"inspect --model " + d.string(), expect});
  };
  shard([](json& h, std::string&) { h[tensor_named(h, "q_proj")]["dtype"] = "F7"; }, "F7");
  shard([](json& h, std::string&) { h[tensor_named(h, "q_proj")]["dtype"] = "I8"; }, "q_proj");
  shard([](json& h, std::string&) { h[tensor_named(h, "q_proj")]["shape"] = {64, 63}; }, "q_proj");
  shard([](json& h, std::string&) { h[tensor_named(h, "q_proj")]["shape"] = {64}; }, "q_proj");
  shard([](json& h, std::string&) { h[tensor_named(h, "q_proj")]["shape"] = "64x64"; }, "shape");
  shard([](json& h, std::string&) { h[tensor_named(h, "q_proj")].erase("data_offsets"); }, "data_offsets");
  shard([](json& h, std::string& d) { h[tensor_named(h, "q_proj")]["data_offsets"] = {0, d.size() + 64}; }, "q_proj");
  shard([](json& h, std::string&) { h[tensor_named(h, "q_proj")]["data_offsets"] = {64, 0}; }, "q_proj");
  shard([](json& h, std::string&) {  // two tensors on the same bytes
    const std::string a = tensor_named(h, "layers.0.self_attn.q_proj"),
                      b = tensor_named(h, "layers.0.self_attn.o_proj");
    h[b]["data_offsets"] = h[a]["data_offsets"];
  }, "overlap");
  shard([](json& h, std::string&) { h.erase(tensor_named(h, "layers.1.mlp.down_proj")); }, "belong to no tensor");
  shard([](json& h, std::string&) { h.erase(tensor_named(h, "embed_tokens")); }, "belong to no tensor");
  shard([](json& h, std::string&) { h.erase(tensor_named(h, "model.norm")); }, "belong to no tensor");
  shard([](json& h, std::string& d) {  // NaN weights
    const auto off = h[tensor_named(h, "layers.0.mlp.up_proj")]["data_offsets"][0].get<size_t>();
    const uint32_t nan = 0x7fc00000u;
    for (int i = 0; i < 4; ++i) std::memcpy(&d[off + 4 * i], &nan, 4);
  }, "holds a NaN or infinity");
  shard([](json& h, std::string& d) {  // Inf weights
    const auto off = h[tensor_named(h, "lm_head")]["data_offsets"][0].get<size_t>();
    const uint32_t inf = 0x7f800000u;
    std::memcpy(&d[off], &inf, 4);
  }, "holds a NaN or infinity");
  shard([](json&, std::string& d) { d.resize(d.size() / 2); }, "model.safetensors");
  shard([](json&, std::string& d) { d += std::string(100, '\0'); }, "model.safetensors");
  auto shard_file = [&](const std::string& bytes, const std::string& expect) {
    const fs::path d = tiny_with_shard(tmp / ("stfile" + std::to_string(n_dir++)), [](json&, std::string&) {});
    spit(d / "model.safetensors", bytes);
    bad.push_back({"inspect --model " + d.string(), expect});
  };
  shard_file(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "model.safetensors");
  shard_file(std::string("\x05\0\0\0\0\0\0\0", 8) + "{[}]}", "model.safetensors");
  shard_file("abc", "model.safetensors");
  shard_file("", "model.safetensors");
  {
    const fs::path d = tiny_with_shard(tmp / "stnone", [](json&, std::string&) {});
    fs::remove(d / "model.safetensors");
    bad.push_back({"inspect --model " + d.string(), "safetensors"});
    const fs::path e = tiny_with_shard(tmp / "stdir", [](json&, std::string&) {});
    fs::remove(e / "model.safetensors");
    fs::create_directories(e / "model.safetensors");
    bad.push_back({"inspect --model " + e.string(), "not a regular file"});
  }

  // ---- Tokenizer files (a build without tokenizer.json support refuses them all alike).
#ifdef KVCOMP_HAVE_HF_TOKENIZER
  int n_tok = 0;
  auto tok = [&](const std::string& text, const std::string& expect) {
    const fs::path d = tmp / ("tok" + std::to_string(n_tok++));
    fs::create_directories(d);
    spit(d / "tokenizer.json", text);
    bad.push_back({"tokenize --text hi --model " + d.string(), expect});
  };
  const json tj = json::parse(slurp(fs::path(tok_dir) / "tokenizer.json"));
  tok("{\"model\": ", "tokenizer.json");
  tok("[]", "tokenizer.json");
  {
    json j = tj;
    j["model"]["type"] = "Unigram";
    tok(j.dump(), "Unigram");
    j = tj;
    j["pre_tokenizer"] = {{"type", "Punctuation2"}};
    tok(j.dump(), "Punctuation2");
    j = tj;
    j["normalizer"] = {{"type", "Lowercase2"}};
    tok(j.dump(), "Lowercase2");
    j = tj;
    j["decoder"] = {{"type", "CTC"}};
    tok(j.dump(), "CTC");
    j = tj;
    j["model"].erase("vocab");
    tok(j.dump(), "vocab");
    j = tj;
    j["model"]["merges"] = json::array({"a b c"});
    tok(j.dump(), "merges");
    j = tj;
    j["added_tokens"] = json::array({{{"id", "x"}, {"content", "<x>"}}});
    tok(j.dump(), "added_tokens");
  }
#endif

  // ---- Run them all.
  int crashed = 0, accepted = 0, unclear = 0;
  for (const Bad& b : bad) {
    const Run r = shell("timeout 60 " + std::string(KVCOMP_BINARY) + " " + b.args + " </dev/null");
    const bool crash = r.code == -1 || r.code == 124 || r.code >= 128;
    const bool ok = !crash && r.code != 0 && r.out.find(b.expect) != std::string::npos;
    if (!ok) {
      (crash ? crashed : r.code == 0 ? accepted : unclear) += 1;
      std::printf("kvcomp %s\n  exit %d, expected a message with '%s', got:\n%s\n", b.args.c_str(),
                  r.code, b.expect.c_str(), r.out.substr(0, 400).c_str());
    }
  }
  std::printf("bad inputs: %zu tried, %d crashed or hung, %d accepted, %d with another message\n",
              bad.size(), crashed, accepted, unclear);
  CHECK(bad.size() >= 150);
  REQUIRE(crashed + accepted + unclear == 0);
}
