// The kvcomp binary on good and bad input: every bad input exits non-zero with a message that
// names the file, tensor or option and what was expected.
#include <filesystem>
#include <fstream>
#include <string>

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

TEST_CASE("inspect describes a model") {
  const Run r = run("inspect --model " + kFixtures + "/tiny-tied");
  INFO(r.out);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("4 query, 1 key/value") != std::string::npos);
  REQUIRE(r.out.find("llama3") != std::string::npos);
}

TEST_CASE("bad input gives a clear error and a non-zero exit") {
  expect_error("generate --model /nonexistent/dir -p hi",
               "model directory not found: /nonexistent/dir");
  const auto empty = temp_dir("cli_empty");
  expect_error("generate --model " + empty.string() + " -p hi", "config.json");
  expect_error("generate --device cpu -p hi --temperature -1", "--temperature");
  expect_error("generate --device cpu -p hi --top-p 2", "--top-p");
  expect_error("generate --device quantum -p hi", "--device: unknown device 'quantum'");
  expect_error("generate --device cpu -p hi --kv zip", "--kv: unknown mode 'zip'");
  expect_error("generate --device cpu", "--prompt");
  expect_error("generate --device cpu --prompt-file /nonexistent.txt",
               "--prompt-file: file not found");
  expect_error("generate --device cpu -p \"" + std::string(300, 'x') + " word\" --ctx 16",
               "leaves no room in the context limit of 16");
  expect_error("perplexity --device cpu --text /nonexistent.txt --ctx 64",
               "--text: file not found");
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
  // A truncated shard of a real checkpoint.
  const auto broken = temp_dir("cli_truncated");
  for (const auto& e : std::filesystem::directory_iterator(kFixtures + "/tiny-gqa"))
    std::filesystem::copy(e.path(), broken / e.path().filename());
  std::filesystem::resize_file(broken / "model.safetensors", 1000);
  expect_error("inspect --model " + broken.string(), "model.safetensors");
}
