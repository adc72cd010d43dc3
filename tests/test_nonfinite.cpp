// Runs that cannot go on stop with an error that says why, before any output: non-finite logits
// (named where they appeared, instead of "perplexity nan" or text sampled from garbage) and more
// prompts than the device's memory holds. The demo model on the CPU behind engines that poison
// one logit at a chosen position, or fail to allocate caches of more than a few sequences.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/engine.h"
#include "models/generate.h"
#include "models/model_files.h"
#include "models/perplexity.h"
#include "runtime/error.h"
#include "runtime/tokenizer.h"
#include "tests/catch.h"
#include "tests/shell.h"

using namespace kvcomp;


namespace {

// The CPU engine, with logit 7 of the token at position `at` of sequence 0 set to NaN.
class PoisonEngine : public Engine {
 public:
  PoisonEngine(std::unique_ptr<Engine> e, int at) : e_(std::move(e)), at_(at) {}
  const LlamaConfig& config() const override { return e_->config(); }
  std::string device_name() const override { return e_->device_name(); }
  void start(int n, int max_tokens, const KvOptions& kv) override { e_->start(n, max_tokens, kv); }
  void forward(const std::vector<SeqChunk>& chunks, bool all, std::vector<float>& logits) override {
    std::vector<int> before;
    for (const SeqChunk& c : chunks) before.push_back(e_->length(c.seq));
    e_->forward(chunks, all, logits);
    const int V = config().vocab_size;
    size_t row = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const int n = int(chunks[i].tokens.size());
      for (int j = all ? 0 : n - 1; j < n; ++j, ++row)
        if (chunks[i].seq == 0 && before[i] + j == at_)
          logits[row * V + 7] = std::numeric_limits<float>::quiet_NaN();
    }
  }
  void forward_nll(const std::vector<SeqChunk>&, const std::vector<int>&,
                   std::vector<double>&) override {
    fail("not used");
  }
  int length(int seq) const override { return e_->length(seq); }
  int64_t kv_bytes() const override { return e_->kv_bytes(); }
  int64_t kv_bytes_reserved() const override { return e_->kv_bytes_reserved(); }

 private:
  std::unique_ptr<Engine> e_;
  int at_;
};

// The CPU engine, whose start() fails as the GPU engines' do when more than `fit` sequences are
// asked for.
class SmallEngine : public PoisonEngine {
 public:
  SmallEngine(std::unique_ptr<Engine> e, int fit) : PoisonEngine(std::move(e), -1), fit_(fit) {}
  void start(int n, int max_tokens, const KvOptions& kv) override {
    if (n > fit_) fail("out of GPU memory allocating the KV cache: needed 1.00 GiB, 0.50 GiB free");
    PoisonEngine::start(n, max_tokens, kv);
  }

 private:
  int fit_;
};

}  // namespace

TEST_CASE("more prompts than fit is an error saying how many do") {
  const auto dir = default_model_dir();
  const Tokenizer tok = load_tokenizer(dir, 1);
  GenerateOptions g;
  g.n_predict = 4;
  const std::vector<std::string> prompts(11, "Call me Ishmael.");
  for (const int fit : {0, 1, 5, 10}) {
    SmallEngine engine(make_engine(dir, Device::kCpu), fit);
    int pieces = 0;
    const std::string want =
        fit == 0 ? "not even one does" : "at most " + std::to_string(fit) + " do";
    REQUIRE_THROWS_WITH(generate(engine, tok, prompts, g, [&](int, const std::string&) { ++pieces; }),
                        HasSubstr("11 prompts of up to ") && HasSubstr(want) &&
                            HasSubstr("out of GPU memory allocating the KV cache"));
    CHECK(pieces == 0);
  }
  SmallEngine engine(make_engine(dir, Device::kCpu), 11);  // all fit: generates
  int pieces = 0;
  generate(engine, tok, prompts, g, [&](int, const std::string&) { ++pieces; });
  CHECK(pieces > 0);
}

TEST_CASE("non-finite logits stop generation and perplexity with the position named") {
  const auto dir = default_model_dir();
  PoisonEngine engine(make_engine(dir, Device::kCpu), 9);
  const Tokenizer tok = load_tokenizer(dir, engine.config().bos_token_id);
  GenerateOptions g;
  g.n_predict = 20;
  const std::vector<std::string> prompt = {"It was the best of times"};
  const int prompt_len = int(tok.encode(prompt[0]).size());
  REQUIRE(prompt_len < 9);  // position 9 is a decode step
  REQUIRE_THROWS_WITH(generate(engine, tok, prompt, g, [](int, const std::string&) {}),
                      HasSubstr("generate: the logits of the sequence at position 9 are not finite"));

  // Perplexity (logits on the host: the on_token path), windows of 16 tokens with a prefill of 8:
  // position 9 of the first window is a decode step.
  const std::vector<int> ids = tok.encode(
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
      "the age of foolishness, it was the epoch of belief");
  PerplexityOptions p;
  p.ctx = 16;
  p.prefill = 8;
  p.max_windows = 1;
  p.on_token = [](int64_t, int, const float*, int, double) {};
  REQUIRE_THROWS_WITH(perplexity(engine, ids, p, nullptr),
                      HasSubstr("perplexity: the logits at token 9 of the text are not finite"));
  // and with the poisoned position inside the prefill
  p.prefill = 12;
  REQUIRE_THROWS_WITH(perplexity(engine, ids, p, nullptr),
                      HasSubstr("the logits at token 9 of the text are not finite"));
}

// A checkpoint whose weights are finite but whose activations overflow: layer 1's attention norm
// scaled by 1e30 (q.k then overflows, the softmax gives NaN). The CPU engine names the layer.
TEST_CASE("non-finite activations are traced to the layer whose output first holds them") {
  namespace fs = std::filesystem;
  const fs::path src = default_model_dir(), dir = temp_dir("nonfinite_layer");
  const std::string name = "model.layers.1.input_layernorm.weight";
  const auto index = nlohmann::json::parse(std::ifstream(src / "model.safetensors.index.json"));
  const std::string shard = index["weight_map"][name];
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().filename() != shard) fs::create_symlink(fs::absolute(e.path()), dir / e.path().filename());
  std::ifstream in(src / shard, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  REQUIRE(header[name]["dtype"] == "BF16");
  const size_t begin = 8 + n + header[name]["data_offsets"][0].get<size_t>(),
               end = 8 + n + header[name]["data_offsets"][1].get<size_t>();
  for (size_t at = begin; at < end; at += 2) {  // bf16 x 1e30, rounded to nearest
    uint16_t h;
    std::memcpy(&h, &bytes[at], 2);
    float f;
    const uint32_t bits = uint32_t(h) << 16;
    std::memcpy(&f, &bits, 4);
    f *= 1e30f;
    uint32_t out;
    std::memcpy(&out, &f, 4);
    h = uint16_t((out + 0x8000u) >> 16);
    std::memcpy(&bytes[at], &h, 2);
  }
  std::ofstream(dir / shard, std::ios::binary) << bytes;

  auto engine = make_engine(dir, Device::kCpu);  // every weight finite: it loads
  const Tokenizer tok = load_tokenizer(dir, engine->config().bos_token_id);
  GenerateOptions g;
  g.n_predict = 4;
  REQUIRE_THROWS_WITH(
      generate(*engine, tok, {"It was the best of times"}, g, [](int, const std::string&) {}),
      HasSubstr("are not finite (NaN or infinity), first in the output of layer 1 "
                "(model.layers.1)"));
  PerplexityOptions p;
  p.ctx = 16;
  p.max_windows = 1;
  const std::vector<int> ids = tok.encode(
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
      "the age of foolishness");
  REQUIRE_THROWS_WITH(perplexity(*engine, ids, p, nullptr),
                      HasSubstr("first in the output of layer 1 (model.layers.1)"));
}
