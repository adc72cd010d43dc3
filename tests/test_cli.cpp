// The kvcomp binary on good and bad input: every bad input exits non-zero with a message that
// names the file, tensor or option and what was expected.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/kl_divergence.h"
#include "tests/catch.h"
#include "tests/shell.h"

namespace {

Run run(const std::string& args) {
  return shell(std::string(KVCOMP_BINARY) + " " + args);
}

const std::string kFixtures = KVCOMP_TEST_FIXTURES;

void expect_error(const std::string& args, const std::string& message) {
  const Run r = run(args);
  INFO("kvcomp " << args << "\n" << r.out);
  REQUIRE(r.code != 0);
  REQUIRE(r.out.find(message) != std::string::npos);
}

}  // namespace

TEST_CASE("generate on the CPU streams readable text and reports its speed") {
  const Run r =
      run("generate --device cpu -p \"The Congress of the United States\" -n 24 "
          "--temperature 0");
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.rfind("The Congress of the United States", 0) == 0);
  REQUIRE(r.out.find("generated 24 tokens") != std::string::npos);
}

TEST_CASE("generate says when it stops at the context limit, and prints nothing on an error") {
  const Run r = run("generate --device cpu -p \"Once upon a time\" -n 40 --ctx 20 --seed 1");
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("generation stopped at the context limit of 20 tokens") != std::string::npos);
  const Run e = run("generate --device cpu -p \"Once upon a time\" -n 5 --ctx 3");
  INFO(e.out);
  REQUIRE(e.code != 0);
  REQUIRE(e.out.find("leaves no room in the context limit of 3") != std::string::npos);
  REQUIRE(e.out.find("Once upon") == std::string::npos);  // the prompt was not echoed
}

TEST_CASE("a prompt file is generated as one batch") {
  const auto d = temp_dir("cli_prompts");
  std::ofstream(d / "p.txt") << "Call me Ishmael.\n\nIt is a truth universally acknowledged\n";
  const Run r =
      run("generate --device cpu --prompt-file " + (d / "p.txt").string() + " -n 8 --seed 3");
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("Call me Ishmael.") != std::string::npos);
  REQUIRE(r.out.find("It is a truth universally acknowledged") != std::string::npos);
  REQUIRE(r.out.find("2 sequences") != std::string::npos);
}

TEST_CASE("perplexity --json prints one JSON object") {
  const Run r = run("perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                    "/heldout.txt --ctx 128 --max-windows 2 --json");
  INFO(r.out);
  REQUIRE(r.code == 0);
  for (const char* key :
       {"\"ppl\"", "\"tokens\":254", "\"windows\":2", "\"kv\":\"fp16\"", "\"seconds\""})
    REQUIRE(r.out.find(key) != std::string::npos);
}

// The JSON object a run printed last: from the last line that starts with '{' to the end, or
// (pretty-printed output) from the first such line.
nlohmann::json last_json(const std::string& out) {
  std::vector<size_t> starts;
  for (size_t at = 0; at < out.size(); at = out.find('\n', at) + 1) {
    if (out[at] == '{') starts.push_back(at);
    if (out.find('\n', at) == std::string::npos) break;
  }
  for (auto it = starts.rbegin(); it != starts.rend(); ++it) {
    const auto j = nlohmann::json::parse(out.substr(*it), nullptr, false);
    if (!j.is_discarded()) return j;
  }
  FAIL("no JSON object in the output");
  return {};
}

// The JSON of `perplexity --device cpu --json --max-windows WINDOWS` on the demo's held-out text
// with more arguments; the run must succeed.
nlohmann::json perplexity_json(const std::string& args, int windows = 1) {
  const Run r = run("perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                    "/heldout.txt --json --max-windows " + std::to_string(windows) + " " + args);
  INFO(r.out);
  REQUIRE(r.code == 0);
  return last_json(r.out);
}

TEST_CASE("perplexity --json reports the KV cache's used and reserved bytes") {
  const Run info = run("inspect --json");
  REQUIRE(info.code == 0);
  const int64_t per_token = last_json(info.out)["kv_bytes_per_token_fp16"].get<int64_t>();
  auto ppl = [](const std::string& kv) { return perplexity_json("--ctx 1024 --kv " + kv); };
  const nlohmann::json fp16 = ppl("fp16"), kvcomp = ppl("kvcomp");
  // A window of 1024 tokens feeds 1023 (the last is only a target): exactly their fp16 K/V; the
  // CPU cache holds them as fp32.
  REQUIRE(fp16["kv_bytes_used"].get<int64_t>() == 1023 * per_token);
  REQUIRE(fp16["kv_bytes_reserved"].get<int64_t>() >= 2 * 1023 * per_token);
  // The compressed cache's contents are a fraction of fp16's; it holds its blocks besides the
  // fp32 values attention reads on the CPU.
  REQUIRE(kvcomp["kv_bytes_used"].get<int64_t>() < fp16["kv_bytes_used"].get<int64_t>() / 2);
  REQUIRE(kvcomp["kv_bytes_reserved"].get<int64_t>() > 2 * 1023 * per_token);
  REQUIRE(!fp16.contains("peak_device_bytes"));  // a CPU run
}

TEST_CASE("kvcomp-fixed stores the same symbols as kvcomp in fixed-length codes") {
  auto ppl = [](const std::string& kv) { return perplexity_json("--ctx 1024 --kv " + kv); };
  const nlohmann::json huff = ppl("kvcomp"), fixed = ppl("kvcomp-fixed"), fp16 = ppl("fp16");
  // The same quantized values reach attention: the same perplexity, to the last digit.
  REQUIRE(fixed["ppl"].get<double>() == huff["ppl"].get<double>());
  REQUIRE(fixed["ppl"].get<double>() != fp16["ppl"].get<double>());
  // 5-bit K and 4-bit V codes (the default bounds) against Huffman's shorter average: larger,
  // still well below fp16.
  const int64_t f = fixed["kv_bytes_used"].get<int64_t>(), h = huff["kv_bytes_used"].get<int64_t>();
  REQUIRE(f > h);
  REQUIRE(f < fp16["kv_bytes_used"].get<int64_t>() / 2);
}

TEST_CASE("perplexity --kl-divergence compares every next-token distribution with fp16's") {
  const auto d = temp_dir("cli_kld");
  const std::string base = "perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                           "/heldout.txt --max-windows 2 --json";
  auto ppl = [](const std::string& args) { return perplexity_json("--ctx 256 " + args, 2); };
  // A mode against itself: exactly nothing changes.
  const nlohmann::json same = ppl("--kv fp16 --kl-divergence");
  REQUIRE(same["kld_mean"].get<double>() == 0.0);
  REQUIRE(same["kld_max"].get<double>() == 0.0);
  REQUIRE(same["same_top1_pct"].get<double>() == 100.0);
  REQUIRE(same["delta_ppl"].get<double>() == 0.0);
  for (const char* key : {"kld_stderr", "kld_median", "kld_p90", "kld_p99", "kld_p999",
                          "delta_ppl_stderr"})
    REQUIRE(same.contains(key));

  // kvcomp against fp16, the base run in this process and from a file; the mean recomputed
  // here from both runs' saved log-probabilities.
  const std::string f16 = (d / "fp16.logprobs").string(), kvc = (d / "kvcomp.logprobs").string();
  const nlohmann::json saved = ppl("--kv fp16 --save-logits " + f16);
  const nlohmann::json live = ppl("--kv kvcomp --kl-divergence --save-logits " + kvc);
  const nlohmann::json from_file = ppl("--kv kvcomp --kl-divergence --base-logits " + f16);
  const double mean = live["kld_mean"].get<double>();
  REQUIRE(mean > 0.0);
  REQUIRE(mean < 0.01);
  REQUIRE(from_file["kld_mean"].get<double>() == mean);
  // (the KL summary's perplexities come from the fp32-rounded log-probabilities)
  REQUIRE(live["ppl_base"].get<double>() == Approx(saved["ppl"].get<double>()).epsilon(1e-7));
  REQUIRE(live["delta_ppl"].get<double>() ==
          Approx(live["ppl"].get<double>() - saved["ppl"].get<double>()).margin(1e-5));
  const kvcomp::TokenLogProbs a = kvcomp::load_logprobs(f16), b = kvcomp::load_logprobs(kvc);
  REQUIRE(a.header.tokens == 2 * 255);
  REQUIRE(b.header.tokens == a.header.tokens);
  double sum = 0;
  int same_top1 = 0;
  for (int64_t i = 0; i < a.header.tokens; ++i) {
    const float *p = a.row(i), *q = b.row(i);
    double kl = 0, pmax = -1e30, qmax = -1e30;
    int pa = 0, qa = 0;
    for (int v = 0; v < a.header.vocab; ++v) {
      kl += std::exp(double(p[v])) * (double(p[v]) - double(q[v]));
      if (p[v] > pmax) pmax = p[v], pa = v;
      if (q[v] > qmax) qmax = q[v], qa = v;
    }
    sum += std::max(kl, 0.0);
    same_top1 += pa == qa;
  }
  REQUIRE(mean == Approx(sum / double(a.header.tokens)).epsilon(1e-9));
  REQUIRE(live["same_top1_pct"].get<double>() ==
          Approx(100.0 * same_top1 / double(a.header.tokens)).epsilon(1e-12));

  // A base made under other settings is refused before anything runs.
  expect_error(base + " --ctx 128 --kv kvcomp --kl-divergence --base-logits " + f16,
               "was made with ctx 256, this run has ctx 128");
  expect_error(base + " --ctx 256 --kv kvcomp --kl-divergence --base-logits " + d.string() + "/none",
               "--base-logits: cannot read");
  {
    std::ofstream(d / "bad.logprobs") << "not a header\n";
  }
  expect_error(base + " --ctx 256 --kv kvcomp --kl-divergence --base-logits " +
                   (d / "bad.logprobs").string(),
               "not a log-probability file");
}

TEST_CASE("a text may come from standard input") {
  const Run r = run("perplexity --device cpu --text - --ctx 64 --max-windows 1 --json < " +
                    std::string(KVCOMP_DEMO_MODEL_DIR) + "/heldout.txt");
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(last_json(r.out)["windows"] == 1);
  const Run p = run("perplexity --device cpu --text /dev/stdin --ctx 64 --max-windows 1 --json < " +
                    std::string(KVCOMP_DEMO_MODEL_DIR) + "/heldout.txt");
  INFO(p.out);
  REQUIRE(p.code == 0);
}

TEST_CASE("inspect describes a model") {
  const Run r = run("inspect --model " + kFixtures + "/tiny-tied");
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("4 query, 1 key/value") != std::string::npos);
  REQUIRE(r.out.find("llama3") != std::string::npos);
}

TEST_CASE("tokenize prints the ids of a text, with or without the special tokens") {
  const std::string dir = kFixtures + "/tokenizers/bytelevel-llama3";
  const auto cases = nlohmann::json::parse(std::ifstream(dir + "/cases.json"));
  const auto& c = cases[0];  // "Hello world"
  REQUIRE(c["text"] == "Hello world");
  Run r = run("tokenize --model " + dir + " --text 'Hello world' --json");
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(nlohmann::json::parse(r.out) == c["ids_special"]);
  r = run("tokenize --model " + dir + " --text 'Hello world' --json --no-special");
  REQUIRE(nlohmann::json::parse(r.out) == c["ids"]);
  r = run("tokenize --model " + dir + " --text 'Hello world'");
  REQUIRE(r.out.find("'<|begin_of_text|>'") != std::string::npos);
  r = run("inspect --model " + kFixtures + "/tiny-gqa");
  REQUIRE(r.out.find("tokenizer      ") != std::string::npos);
  expect_error("tokenize --model " + dir + " --text a --file b", "excludes");
  expect_error("tokenize --model " + dir, "give --text or --file");
  expect_error("tokenize --model " + kFixtures + "/tokenizers --text a", "tokenizer not found");
  const auto bad = temp_dir("tokenize_bad") / "bad.txt";
  std::ofstream(bad) << "ok\xff";
  expect_error("tokenize --model " + dir + " --file " + bad.string(), "invalid UTF-8 at byte offset 2");
}

TEST_CASE("bad input gives a clear error and a non-zero exit") {
  expect_error("generate --model /nonexistent/dir -p hi",
               "model directory not found: /nonexistent/dir");
  const auto empty = temp_dir("cli_empty");
  expect_error("generate --model " + empty.string() + " -p hi", "config.json");
  expect_error("generate --device cpu -p hi --temperature -1", "--temperature");
  expect_error("generate --device cpu -p hi --top-p 2", "--top-p");
  expect_error("generate --device cpu -p hi --ctx 100000",
               "--ctx: 100000 tokens exceed the model's max_position_embeddings");
  expect_error("generate --device quantum -p hi", "--device: unknown device 'quantum'");
  expect_error("generate --device cpu -p hi --kv zip", "--kv: unknown mode 'zip'");
  expect_error("generate --device cpu", "--prompt");
  expect_error("generate --device cpu -p \"\"", "--prompt: the prompt is empty");
  expect_error("generate --device cpu -p hi --model " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                   "/heldout.txt",
               "heldout.txt is a file, expected a model directory");
  for (const std::string& out : {std::string("/nonexistent/dir/x.logits"), empty.string()}) {
    const Run r = run("perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                      "/heldout.txt --ctx 64 --save-logits " + out);
    INFO(r.out);
    REQUIRE(r.code != 0);
    REQUIRE(r.out.find("--save-logits: ") != std::string::npos);
    REQUIRE(r.out.find("perplexity: 1/") == std::string::npos);  // refused before the run
  }
  {
    const auto bad = temp_dir("cli_config_dir");
    std::filesystem::create_directories(bad / "config.json");
    expect_error("generate --device cpu -p hi --model " + bad.string(),
                 (bad / "config.json").string() + " is a directory, expected a file");
  }
  expect_error("generate --device cpu --prompt-file /nonexistent.txt",
               "--prompt-file: file not found");
  expect_error("generate --device cpu -p \"" + std::string(300, 'x') + " word\" --ctx 16",
               "leaves no room in the context limit of 16");
  expect_error("perplexity --device cpu --text /nonexistent.txt --ctx 64",
               "--text: file not found");
  for (const char* bad : {"0", "-5", "65"})
    expect_error("perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                     "/heldout.txt --ctx 64 --prefill " + bad,
                 "--prefill: expected 1..64 tokens");
  expect_error("perplexity --device cpu --text " + empty.string() + " --ctx 64",
               "is a directory, expected a file");
  {
    std::ofstream(empty / "latin1.txt") << "caf\xe9 au lait\n";
    std::ofstream(empty / "overlong.txt") << "ab\xc0\xaf" "cd\n";
  }
  expect_error("perplexity --device cpu --text " + (empty / "latin1.txt").string() + " --ctx 64",
               "invalid UTF-8 at byte offset 3 (byte 0xe9)");
  expect_error("perplexity --device cpu --text " + (empty / "overlong.txt").string() + " --ctx 64",
               "invalid UTF-8 at byte offset 2 (byte 0xc0)");
  expect_error("generate --device cpu -p \"$(printf 'caf\\351')\"",
               "--prompt: invalid UTF-8 at byte offset 3");
  expect_error("perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                   "/heldout.txt --ctx 1",
               "--ctx: expected a window of at least 2 tokens");
  expect_error("perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                   "/heldout.txt --ctx 4096",
               "max_position_embeddings");
  expect_error("perplexity --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                   "/heldout.txt --ctx 64 --prefill 100",
               "--prefill");
  expect_error("perplexity --device cpu --ctx 64", "--text");
  expect_error("bench --ctx 12x", "--ctx");
  expect_error("bench --device cpu --fit --ctx 64 --kv fp16", "--fit: needs the GPU");
  expect_error("generate --device cpu -p hi -n 2 --seed -1",
               "--seed: expected a non-negative integer, got '-1'");
  expect_error("bench --device cpu --ctx 64 --seed -5", "--seed: expected a non-negative integer");
  expect_error("generate --device cpu -p hi --model \"\"", "--model: an empty path");
  expect_error("generate --device cpu -p hi -n 2 --ctx 0", "--ctx: Value 0 not in range 1");
  expect_error("kvstats --device cpu --text " + std::string(KVCOMP_DEMO_MODEL_DIR) +
                   "/heldout.txt --ctx 16",
               "--ctx 16: shorter than one block");
  // A truncated shard of a real checkpoint.
  const auto broken = temp_dir("cli_truncated");
  for (const auto& e : std::filesystem::directory_iterator(kFixtures + "/tiny-gqa"))
    std::filesystem::copy(e.path(), broken / e.path().filename());
  std::filesystem::resize_file(broken / "model.safetensors", 1000);
  expect_error("inspect --model " + broken.string(), "model.safetensors");
}
