#include "models/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "runtime/error.h"

namespace kvcomp {

GenerateStats generate(Engine& engine, const Tokenizer& tok,
                       const std::vector<std::string>& prompts, const GenerateOptions& opts,
                       const TextCallback& on_text) {
  using Clock = std::chrono::steady_clock;
  const LlamaConfig& cfg = engine.config();
  check(!prompts.empty(), "generate: no prompt given");
  check(opts.n_predict >= 0, "-n: expected a number of tokens >= 0, got ", opts.n_predict);
  check(opts.ctx >= 0, "--ctx: expected a number of tokens >= 0, got ", opts.ctx);
  check(opts.ctx <= cfg.max_position_embeddings, "--ctx: ", opts.ctx,
        " tokens exceed the model's max_position_embeddings of ", cfg.max_position_embeddings);
  const int ctx = opts.ctx > 0 ? opts.ctx : cfg.max_position_embeddings;
  const int n = int(prompts.size());

  std::vector<std::vector<int>> ids(n);
  int longest = 0;
  GenerateStats stats;
  stats.n_seqs = n;
  stats.ctx = ctx;
  stats.stop.assign(n, StopReason::kTokens);
  for (int s = 0; s < n; ++s) {
    ids[s] = opts.prompts_formatted ? tok.encode_raw(prompts[s]) : tok.encode(prompts[s]);
    check(!ids[s].empty(), "prompt ", s + 1, " is empty (and the model adds no BOS token)");
    check(int(ids[s].size()) < ctx, "prompt ", s + 1, " has ", ids[s].size(),
          " tokens, which leaves no room in the context limit of ", ctx, " tokens");
    longest = std::max(longest, int(ids[s].size()));
    stats.prompt_tokens += int(ids[s].size());
  }
  const int max_tokens = std::min(ctx, longest + opts.n_predict);
  try {
    engine.start(n, max_tokens, opts.kv);
  } catch (const Error& e) {
    // More prompts than the device's memory holds: say how many fit (the largest batch whose
    // cache allocates, by bisection), before any output.
    if (n == 1 || std::string(e.what()).find("out of GPU memory") == std::string::npos) throw;
    int fits = 0, fails = n;
    while (fails - fits > 1) {
      const int mid = (fits + fails) / 2;
      try {
        engine.start(mid, max_tokens, opts.kv);
        fits = mid;
      } catch (const Error&) {
        fails = mid;
      }
    }
    fail(n, " prompts of up to ", max_tokens, " tokens each (the longest prompt + -n) do not fit ",
         "the GPU's memory with --kv ", kv_mode_name(opts.kv.mode), ": ",
         fits == 0 ? std::string("not even one does") : "at most " + std::to_string(fits) + " do",
         "; give fewer prompts or a smaller -n or --ctx (", e.what(), ")");
  }

  std::vector<Sampler> samplers;
  for (int s = 0; s < n; ++s) {
    SamplingOptions so = opts.sampling;
    so.seed = opts.sampling.seed + uint64_t(s);
    samplers.emplace_back(so);
  }
  std::vector<StreamDecoder> streams;
  for (int s = 0; s < n; ++s) streams.emplace_back(tok, ids[s]);
  const int V = cfg.vocab_size;
  auto is_eos = [&](int t) {
    return std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), t) !=
               cfg.eos_token_ids.end() ||
           std::find(opts.stop_ids.begin(), opts.stop_ids.end(), t) != opts.stop_ids.end();
  };

  std::vector<SeqChunk> step;
  for (int s = 0; s < n; ++s) step.push_back({s, ids[s]});
  std::vector<float> logits;
  std::vector<int> produced(n, 0);
  std::vector<bool> done(n, opts.n_predict == 0);
  auto t0 = Clock::now();
  bool prefill = true;
  while (!step.empty()) {
    engine.forward(step, false, logits);
    auto t1 = Clock::now();
    (prefill ? stats.prefill_seconds : stats.decode_seconds) +=
        std::chrono::duration<double>(t1 - t0).count();
    t0 = t1;
    prefill = false;
    std::vector<SeqChunk> next;
    for (size_t r = 0; r < step.size(); ++r) {
      const int s = step[r].seq;
      if (done[s]) continue;
      const float* row = logits.data() + r * size_t(V);
      if (!std::all_of(row, row + V, [](float x) { return std::isfinite(x); }))
        fail("generate: the logits of ", n == 1 ? "the sequence" : "sequence ",
             n == 1 ? "" : std::to_string(s + 1), " at position ", engine.length(s) - 1,
             " are not finite (NaN or infinity)", nonfinite_where(engine),
             ": the model's activations overflowed or its weights are damaged");
      const int t = samplers[s].sample(row, V);
      ++produced[s];
      ++stats.generated_tokens;
      const bool eos = opts.stop_at_eos && is_eos(t);
      if (!eos) {
        const std::string piece = streams[s].push(t);
        if (!piece.empty()) on_text(s, piece);
      }
      if (eos || produced[s] >= opts.n_predict || engine.length(s) >= max_tokens) {
        done[s] = true;
        stats.stop[s] = eos                             ? StopReason::kEos
                        : produced[s] >= opts.n_predict ? StopReason::kTokens
                                                        : StopReason::kContext;
        const std::string rest = streams[s].flush();
        if (!rest.empty()) on_text(s, rest);
        continue;
      }
      next.push_back({s, {t}});
    }
    step = std::move(next);
  }
  return stats;
}

}  // namespace kvcomp
