// The GPU engine against the CPU reference engine: logits of real checkpoints (the demo model
// and the transformers-written tiny fixtures), batching, greedy generation and perplexity.
// Label: gpu.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

#include "models/engine.h"
#include "models/generate.h"
#include "models/llama_cpu.h"
#include "models/llama_cuda.h"
#include "models/model_files.h"
#include "models/perplexity.h"
#include "runtime/ops_ref.h"
#include "runtime/sampler.h"
#include "tests/catch.h"
#include "tests/demo_text.h"
#include "tests/gpu_test_util.h"

using namespace kvcomp;
using kvcomp::test::rel_err;

namespace {

// bf16 weights and activations against fp32: logits agree to about 1e-2 relative.
constexpr double kTolLogitsBf16 = 3e-2;
// The same GPU path alone and batched: only reduction order may differ.
constexpr double kTolBatching = 2e-3;
// A greedy divergence is accepted only where the CPU's two candidates are this close.
constexpr double kNearTieLogits = 0.15;

std::vector<int> random_ids(int n, int vocab, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::vector<int> ids(n);
  for (auto& t : ids) t = int(r() % uint64_t(vocab));
  return ids;
}

const std::filesystem::path kFixtures = KVCOMP_TEST_FIXTURES;

}  // namespace

TEST_CASE("GPU logits match the CPU reference on real checkpoints", "[gpu]") {
  for (const auto& dir : {default_model_dir(), kFixtures / "tiny-gqa", kFixtures / "tiny-tied"}) {
    const ModelFiles files = open_model_files(dir);
    auto cpu = make_cpu_engine(files);
    auto gpu = make_cuda_engine(files);
    const int V = files.config.vocab_size;
    const std::vector<int> lens = {1, 7, 40, 300};
    KvOptions kv;
    kv.mode = KvMode::kFp32;
    KvOptions kv16;
    cpu->start(int(lens.size()), 512, kv);
    gpu->start(int(lens.size()), 512, kv16);
    std::vector<SeqChunk> chunks;
    for (size_t s = 0; s < lens.size(); ++s)
      chunks.push_back({int(s), random_ids(lens[s], V, 100 + s)});
    std::vector<float> lc, lg;
    cpu->forward(chunks, true, lc);
    gpu->forward(chunks, true, lg);
    REQUIRE(lc.size() == lg.size());
    const double e = rel_err(lg.data(), lc.data(), lc.size());
    std::printf("%s: prefill logits rel err %.2e\n", dir.filename().c_str(), e);
    REQUIRE(e < kTolLogitsBf16);
    // Three decode steps.
    for (int step = 0; step < 3; ++step) {
      std::vector<SeqChunk> d;
      for (size_t s = 0; s < lens.size(); ++s)
        d.push_back({int(s), random_ids(1, V, 7 * step + s)});
      cpu->forward(d, false, lc);
      gpu->forward(d, false, lg);
      const double ed = rel_err(lg.data(), lc.data(), lc.size());
      std::printf("%s: decode step %d logits rel err %.2e\n", dir.filename().c_str(), step, ed);
      REQUIRE(ed < kTolLogitsBf16);
    }
  }
}

TEST_CASE("GPU batching gives each sequence its own result", "[gpu]") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto gpu = make_cuda_engine(files);
  const int V = files.config.vocab_size;
  const std::vector<int> lens = {5, 64, 17};
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < lens.size(); ++s) {
    gpu->start(1, 256, KvOptions{});
    std::vector<float> l;
    gpu->forward({{0, random_ids(lens[s], V, s)}}, false, l);
    gpu->forward({{0, {42}}}, false, l);
    alone.push_back(l);
  }
  gpu->start(3, 256, KvOptions{});
  std::vector<SeqChunk> chunks;
  for (size_t s = 0; s < lens.size(); ++s) chunks.push_back({int(s), random_ids(lens[s], V, s)});
  std::vector<float> l;
  gpu->forward(chunks, false, l);
  gpu->forward({{0, {42}}, {1, {42}}, {2, {42}}}, false, l);
  for (size_t s = 0; s < lens.size(); ++s) {
    const double e = rel_err(l.data() + s * V, alone[s].data(), V);
    INFO("sequence " << s << " rel err " << e);
    REQUIRE(e < kTolBatching);
  }
}

TEST_CASE("greedy generation on the GPU follows the CPU reference", "[gpu]") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto cpu = make_cpu_engine(files);
  auto gpu = make_cuda_engine(files);
  const Tokenizer tok = load_tokenizer(files.dir, files.config.bos_token_id);
  const int V = files.config.vocab_size;
  for (const std::string prompt :
       {"It was the best of times, it was the", "The President said that the Congress"}) {
    const std::vector<int> ids = tok.encode(prompt);
    cpu->start(1, 256, KvOptions{});
    gpu->start(1, 256, KvOptions{});
    std::vector<float> lc, lg;
    std::vector<int> fed = ids;
    int agreed = 0;
    for (int step = 0; step < 64; ++step) {
      cpu->forward({{0, fed}}, false, lc);
      gpu->forward({{0, fed}}, false, lg);
      const int tc = argmax(lc.data(), V), tg = argmax(lg.data(), V);
      if (tc != tg) {
        const double gap = lc[tc] - lc[tg];
        std::printf("'%s': diverged after %d tokens, CPU logit gap %.4f\n", prompt.c_str(), agreed,
                    gap);
        REQUIRE(gap < kNearTieLogits);
        break;
      }
      ++agreed;
      fed = {tc};
    }
    std::printf("'%s': %d greedy tokens agree\n", prompt.c_str(), agreed);
  }
}

TEST_CASE("GPU perplexity matches the CPU perplexity", "[gpu]") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto cpu = make_cpu_engine(files);
  auto gpu = make_cuda_engine(files);
  const Tokenizer tok = load_tokenizer(files.dir, files.config.bos_token_id);
  std::vector<int> ids = {files.config.bos_token_id};
  const auto body = tok.encode_raw(std::string(
      "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
      "must be in want of a wife. However little known the feelings or views of such a man may be "
      "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
      "surrounding families, that he is considered as the rightful property of some one or other "
      "of their daughters. Call me Ishmael. Some years ago, never mind how long precisely, having "
      "little or no money in my purse, and nothing particular to interest me on shore, I thought "
      "I would sail about a little and see the watery part of the world."));
  ids.insert(ids.end(), body.begin(), body.end());
  PerplexityOptions o;
  o.ctx = 64;
  o.batch = 2;
  const auto rc = perplexity(*cpu, ids, o, nullptr);
  const auto rg = perplexity(*gpu, ids, o, nullptr);
  std::printf("perplexity cpu %.4f gpu %.4f\n", rc.ppl, rg.ppl);
  REQUIRE(rg.tokens == rc.tokens);
  REQUIRE(std::fabs(rg.ppl / rc.ppl - 1.0) < 0.01);
  // The decode-step protocol gives the single-prefill value with an fp16 cache.
  o.prefill = 16;
  const auto rd = perplexity(*gpu, ids, o, nullptr);
  std::printf("perplexity gpu prefill 16 + decode steps %.4f\n", rd.ppl);
  REQUIRE(std::fabs(rd.ppl / rg.ppl - 1.0) < 0.005);
}

TEST_CASE("the GPU KVComp cache matches the CPU one", "[gpu]") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto cpu = make_cpu_engine(files);
  auto gpu = make_cuda_engine(files);
  const std::vector<int> ids = heldout_ids(files, 120000);
  // Perplexity under the decode-step protocol: GPU (bf16 activations) vs CPU (fp32) within 0.5%;
  // fused and unfused read the same cache.
  PerplexityOptions o;
  o.ctx = 1024;
  o.prefill = 256;
  o.max_windows = 2;
  o.batch = 2;
  o.kv.mode = KvMode::kKvcomp;
  const auto rc = perplexity(*cpu, ids, o, nullptr);
  const KvStats sc = cpu->kv_stats();
  const auto rg = perplexity(*gpu, ids, o, nullptr);
  const KvStats sg = gpu->kv_stats();
  o.kv.mode = KvMode::kKvcompUnfused;
  const auto ru = perplexity(*gpu, ids, o, nullptr);
  o.kv.mode = KvMode::kFp16;
  const auto rf = perplexity(*gpu, ids, o, nullptr);
  std::printf("kvcomp perplexity: cpu %.4f gpu fused %.4f gpu unfused %.4f (gpu fp16 %.4f)\n",
              rc.ppl, rg.ppl, ru.ppl, rf.ppl);
  std::printf(
      "kvcomp last window: cpu k %.3f v %.3f bits, ratio %.2f | gpu k %.3f v %.3f bits, "
      "ratio %.2f, raw blocks %llu\n",
      sc.k_bits(), sc.v_bits(), sc.ratio(), sg.k_bits(), sg.v_bits(), sg.ratio(),
      static_cast<unsigned long long>(sg.raw_blocks()));
  REQUIRE(std::fabs(rg.ppl / rc.ppl - 1.0) < 0.005);
  REQUIRE(std::fabs(ru.ppl / rg.ppl - 1.0) < 1e-3);
  REQUIRE(std::fabs(rg.ppl / rf.ppl - 1.0) < 0.01);
  REQUIRE(sg.k.n_blocks == sc.k.n_blocks);
  REQUIRE(sg.v.n_blocks == sc.v.n_blocks);
  REQUIRE(std::fabs(sg.k_bits() / sc.k_bits() - 1.0) < 0.03);
  REQUIRE(std::fabs(sg.v_bits() / sc.v_bits() - 1.0) < 0.03);
  // Greedy generation over a compressed cache follows the CPU reference (blocks are compressed
  // after the prefill and during decoding).
  const std::vector<int> prompt(ids.begin(), ids.begin() + 400);
  KvOptions kv;
  kv.mode = KvMode::kKvcomp;
  cpu->start(1, 700, kv);
  gpu->start(1, 700, kv);
  std::vector<float> lc, lg;
  std::vector<int> fed = prompt;
  int agreed = 0;
  const int V = files.config.vocab_size;
  for (int step = 0; step < 250; ++step) {
    cpu->forward({{0, fed}}, false, lc);
    gpu->forward({{0, fed}}, false, lg);
    const int tc = argmax(lc.data(), V), tg = argmax(lg.data(), V);
    if (tc != tg) {
      const double gap = lc[tc] - lc[tg];
      std::printf("kvcomp greedy: diverged after %d tokens, CPU logit gap %.4f\n", agreed, gap);
      REQUIRE(gap < kNearTieLogits);
      break;
    }
    ++agreed;
    fed = {tc};
  }
  std::printf("kvcomp greedy: %d tokens agree\n", agreed);
}

TEST_CASE("running out of GPU memory is a clear error at any point, and the next run works",
          "[gpu]") {
  const ModelFiles files = open_model_files(default_model_dir());
  auto gpu = make_cuda_engine(files);
  const int V = files.config.vocab_size;
  const std::vector<int> ids = heldout_ids(files, 120000);
  // Two sequences: prompts of 900 and 1100 tokens, then 150 decode steps (blocks compressed in
  // the prefill pieces and while decoding).
  auto run = [&](KvMode mode, std::vector<float>& out) {
    KvOptions kv;
    kv.mode = mode;
    gpu->start(2, 1300, kv);
    std::vector<float> logits;
    gpu->forward({{0, std::vector<int>(ids.begin(), ids.begin() + 900)},
                  {1, std::vector<int>(ids.begin() + 1000, ids.begin() + 2100)}},
                 false, logits);
    for (int i = 0; i < 150; ++i)
      gpu->forward({{0, {ids[size_t(2200 + i)]}}, {1, {ids[size_t(2400 + i)]}}}, false, logits);
    out = logits;
  };
  for (KvMode mode : {KvMode::kKvcomp, KvMode::kKivi4, KvMode::kFp16}) {
    INFO(kv_mode_name(mode));
    gpu->start(1, 1, KvOptions{});  // the previous mode's cache released
    const size_t base = device_bytes_allocated();
    device_reset_peak();
    std::vector<float> want;
    run(mode, want);
    const size_t peak = device_bytes_peak();
    REQUIRE(peak > base);
    int failed = 0;
    for (double f : {0.02, 0.2, 0.5, 0.8, 0.95, 0.995}) {
      gpu->start(1, 1, KvOptions{});
      const size_t cap = device_bytes_allocated() + size_t(f * double(peak - base));
      device_set_memory_limit(cap);
      std::vector<float> got;
      std::string error;
      try {
        run(mode, got);
      } catch (const Error& e) {
        error = e.what();
      }
      device_set_memory_limit(0);
      if (!error.empty()) {
        ++failed;
        std::printf("%s, cap at %.3f of the run's memory: %s\n", kv_mode_name(mode), f,
                    error.c_str());
        REQUIRE(error.find("out of GPU memory allocating") != std::string::npos);
        REQUIRE(error.find("needed") != std::string::npos);
        // The same engine, without the cap, gives the uncapped run's logits.
        run(mode, got);
      }
      REQUIRE(got.size() == want.size());
      REQUIRE(rel_err(got, want) < 1e-5);
      REQUIRE(argmax(got.data(), V) == argmax(want.data(), V));
    }
    REQUIRE(failed >= 2);
  }
}
