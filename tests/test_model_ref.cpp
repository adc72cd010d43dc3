// The CPU reference forward against transformers: logits and perplexities saved by
// tools/make_fixtures.py for two tiny random checkpoints (GQA/untied/fp32/single file and
// MQA/tied/bf16/sharded/llama3 RoPE) and for the demo model.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "models/llama_cpu.h"
#include "models/model_files.h"
#include "models/perplexity.h"
#include "runtime/tokenizer.h"
#include "tests/catch.h"
#include "tests/demo_text.h"

using namespace kvcomp;
using nlohmann::json;

namespace {

const std::filesystem::path kFixtures = KVCOMP_TEST_FIXTURES;

// fp32 against fp32 with another summation order: logits agree to ~1e-5 of their scale.
constexpr double kTolLogitsFp32 = 1e-4;
// Perplexity under the same protocol: within 0.1%.
constexpr double kTolPpl = 1e-3;

json load_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  REQUIRE(in.good());
  return json::parse(in);
}

double max_abs_diff(const float* a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

double max_abs(const std::vector<double>& b) {
  double m = 0;
  for (double x : b) m = std::max(m, std::fabs(x));
  return m;
}

}  // namespace

TEST_CASE("CPU logits and perplexity match transformers on the tiny fixtures") {
  for (const char* name : {"tiny-gqa", "tiny-tied"}) {
    const json ref = load_json(kFixtures / name / "reference.json");
    const ModelFiles files = open_model_files(kFixtures / name);
    auto engine = make_cpu_engine(files);
    const int V = files.config.vocab_size;
    KvOptions kv;
    kv.mode = KvMode::kFp32;
    for (const auto& seq : ref["sequences"]) {
      const std::vector<int> ids = seq["ids"].get<std::vector<int>>();
      engine->start(1, int(ids.size()), kv);
      std::vector<float> logits;
      engine->forward({{0, ids}}, true, logits);
      REQUIRE(logits.size() == ids.size() * size_t(V));
      for (size_t t = 0; t < ids.size(); ++t) {
        const std::vector<double> want = seq["logits"][t].get<std::vector<double>>();
        const double err = max_abs_diff(logits.data() + t * V, want) / max_abs(want);
        INFO(name << " sequence of " << ids.size() << " position " << t << " rel err " << err);
        REQUIRE(err < kTolLogitsFp32);
      }
    }
    // Perplexity of the fixed sequence: [BOS] + sequence, windows of ctx.
    const json& p = ref["perplexity"];
    std::vector<int> ids = {files.config.bos_token_id};
    for (int t : p["sequence"].get<std::vector<int>>()) ids.push_back(t);
    PerplexityOptions o;
    o.ctx = p["ctx"].get<int>();
    o.kv = kv;
    const auto r = perplexity(*engine, ids, o, nullptr);
    std::printf("%s: ppl %.6f (transformers %.6f)\n", name, r.ppl, p["ppl"].get<double>());
    REQUIRE(r.windows == p["windows"].get<int>());
    REQUIRE(r.tokens == p["predicted_tokens"].get<int64_t>());
    REQUIRE(std::fabs(r.ppl / p["ppl"].get<double>() - 1.0) < kTolPpl);
  }
}

TEST_CASE("CPU forward of the demo model matches transformers") {
  const json ref = load_json(kFixtures / "demo_reference.json");
  const ModelFiles files = open_model_files(default_model_dir());
  const Tokenizer tok = load_tokenizer(files.dir, files.config.bos_token_id);
  auto engine = make_cpu_engine(files);
  const int V = files.config.vocab_size;
  KvOptions kv;
  kv.mode = KvMode::kFp32;
  for (const auto& pr : ref["prompts"]) {
    const std::vector<int> ids = tok.encode(pr["text"].get<std::string>());
    REQUIRE(ids == pr["ids"].get<std::vector<int>>());
    engine->start(1, int(ids.size()), kv);
    std::vector<float> logits;
    engine->forward({{0, ids}}, true, logits);
    const std::vector<double> last = pr["last_logits"].get<std::vector<double>>();
    const double err = max_abs_diff(logits.data() + (ids.size() - 1) * V, last) / max_abs(last);
    INFO(pr["text"].get<std::string>() << ": last-position rel err " << err);
    REQUIRE(err < kTolLogitsFp32);
    const auto lp = pr["next_token_logprobs"].get<std::vector<double>>();
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      const float* l = logits.data() + t * V;
      double mx = -1e30, s = 0;
      for (int j = 0; j < V; ++j) mx = std::max(mx, double(l[j]));
      for (int j = 0; j < V; ++j) s += std::exp(double(l[j]) - mx);
      REQUIRE(double(l[ids[t + 1]]) - mx - std::log(s) == Approx(lp[t]).margin(1e-3));
    }
  }
  // Held-out perplexity under the protocol, against transformers' fp32 value.
  const std::vector<int> ids = heldout_ids(files);
  const json& h = ref["heldout"];
  REQUIRE(int64_t(ids.size()) == h["ids_count"].get<int64_t>());
  const auto head = h["ids_head"].get<std::vector<int>>();
  REQUIRE(std::vector<int>(ids.begin(), ids.begin() + head.size()) == head);
  const auto tail = h["ids_tail"].get<std::vector<int>>();
  REQUIRE(std::vector<int>(ids.end() - tail.size(), ids.end()) == tail);
  for (const auto& run : h["runs"]) {
    const int windows = run["windows"].get<int>();
    if (windows > 8) continue;  // the all-windows value is checked on the GPU
    PerplexityOptions o;
    o.ctx = run["ctx"].get<int>();
    o.max_windows = windows;
    o.kv = kv;
    const auto r = perplexity(*engine, ids, o, nullptr);
    std::printf("demo ctx %d, %d windows: ppl %.5f (transformers %.5f)\n", o.ctx, windows, r.ppl,
                run["ppl"].get<double>());
    REQUIRE(r.tokens == run["predicted_tokens"].get<int64_t>());
    REQUIRE(std::fabs(r.ppl / run["ppl"].get<double>() - 1.0) < kTolPpl);
  }
}

TEST_CASE("an fp16 cache and decode-step perplexity stay close to the fp32 single prefill") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto engine = make_cpu_engine(files);
  const std::vector<int> ids = heldout_ids(files, 200000);
  PerplexityOptions o;
  o.ctx = 256;
  o.max_windows = 4;
  o.batch = 4;
  o.kv.mode = KvMode::kFp32;
  const double p32 = perplexity(*engine, ids, o, nullptr).ppl;
  o.kv.mode = KvMode::kFp16;
  const double p16 = perplexity(*engine, ids, o, nullptr).ppl;
  o.prefill = 64;
  const double p16d = perplexity(*engine, ids, o, nullptr).ppl;
  std::printf("demo ctx 256: fp32 %.5f, fp16 %.5f, fp16 prefill 64 + decode %.5f\n", p32, p16,
              p16d);
  REQUIRE(std::fabs(p16 / p32 - 1) < 1e-3);
  REQUIRE(std::fabs(p16d / p16 - 1) < 1e-4);  // same math in another order
}
