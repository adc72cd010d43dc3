#include "models/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "runtime/error.h"

namespace kvcomp {

std::vector<int> perplexity_ids(const Tokenizer& tok, int bos_token_id, const std::string& text) {
  std::vector<int> ids;
  if (bos_token_id >= 0) ids.push_back(bos_token_id);
  const auto body = tok.encode_raw(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

int perplexity_windows(const std::vector<int>& ids, const PerplexityOptions& opts) {
  const int N = opts.ctx;
  check(N >= 2, "--ctx: expected a window of at least 2 tokens, got ", N);
  check(opts.max_windows >= 0, "--max-windows: expected a number >= 0, got ", opts.max_windows);
  int windows = int(ids.size() / size_t(N));
  check(windows >= 1, "the text has ", ids.size(), " tokens (with BOS), fewer than one window of ",
        N, " tokens");
  if (opts.max_windows > 0) windows = std::min(windows, opts.max_windows);
  return windows;
}

double log_sum_exp(const float* x, int n) {
  double m = x[0];
  for (int v = 1; v < n; ++v) m = std::max(m, double(x[v]));
  double s = 0;
  for (int v = 0; v < n; ++v) s += std::exp(double(x[v]) - m);
  return m + std::log(s);
}

PerplexityResult perplexity(Engine& engine, const std::vector<int>& ids,
                            const PerplexityOptions& opts, const ProgressCallback& progress) {
  const int N = opts.ctx;
  check(N >= 2, "--ctx: expected a window of at least 2 tokens, got ", N);
  check(N <= engine.config().max_position_embeddings, "--ctx: ", N,
        " tokens exceed the model's max_position_embeddings of ",
        engine.config().max_position_embeddings);
  check(opts.batch >= 1, "--batch: expected a number >= 1, got ", opts.batch);
  const int P = opts.prefill > 0 ? opts.prefill : N;
  check(P >= 1 && P <= N, "--prefill: expected 1..", N, " tokens, got ", opts.prefill);
  const int windows = perplexity_windows(ids, opts);
  const int V = engine.config().vocab_size;
  std::vector<float> logits;
  // One step: NLL per token from the engine, or from the logits when they are wanted; tokens
  // with target -1 are not scored. index(i): the i-th token's place in the run.
  auto step = [&](const std::vector<SeqChunk>& chunks, const std::vector<int>& targets,
                  bool all, const std::function<int64_t(size_t)>& index,
                  std::vector<double>& nll) {
    if (!opts.on_token) {
      engine.forward_nll(chunks, targets, nll);
    } else {
      engine.forward(chunks, all, logits);
      nll.assign(targets.size(), 0.0);
      for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i] < 0) continue;
        const float* row = logits.data() + i * size_t(V);
        const double lse = log_sum_exp(row, V);
        nll[i] = lse - double(row[targets[i]]);
        opts.on_token(index(i), targets[i], row, V, lse);
      }
    }
    // NaN or infinity in the logits would make the result "nan" (or a silent wrong number).
    for (size_t i = 0; i < targets.size(); ++i)
      if (targets[i] >= 0 && !std::isfinite(nll[i]))
        fail("perplexity: the logits at token ", index(i), " of the text are not finite (NaN or ",
             "infinity)", nonfinite_where(engine),
             ": the model's activations overflowed or its weights are damaged");
  };

  const auto t0 = std::chrono::steady_clock::now();
  double nll_sum = 0;
  int64_t scored = 0;
  KvStats kv;
  int64_t kv_used = 0, kv_reserved = 0;
  for (int w0 = 0; w0 < windows; w0 += opts.batch) {
    const int nb = std::min(opts.batch, windows - w0);
    engine.start(nb, N, opts.kv);
    auto window = [&](int b) { return ids.begin() + int64_t(w0 + b) * N; };
    // Prefill: positions 0..P-1, each predicting the next token (the last window token is
    // never a prediction).
    std::vector<SeqChunk> chunks;
    std::vector<int> targets;
    for (int b = 0; b < nb; ++b) {
      chunks.push_back({b, std::vector<int>(window(b), window(b) + P)});
      for (int i = 0; i < P; ++i) targets.push_back(i + 1 < N ? *(window(b) + i + 1) : -1);
    }
    std::vector<double> nll;
    step(chunks, targets, true,
         [&](size_t i) { return int64_t(w0 + int(i) / P) * (N - 1) + int64_t(i) % P; }, nll);
    for (size_t i = 0; i < nll.size(); ++i)
      if (targets[i] >= 0) nll_sum += nll[i], ++scored;
    // Teacher-forced decode steps for positions P..N-2.
    for (int pos = P; pos < N - 1; ++pos) {
      chunks.clear();
      targets.clear();
      for (int b = 0; b < nb; ++b) {
        chunks.push_back({b, {*(window(b) + pos)}});
        targets.push_back(*(window(b) + pos + 1));
      }
      step(chunks, targets, false, [&](size_t b) { return int64_t(w0 + int(b)) * (N - 1) + pos; },
           nll);
      for (double x : nll) nll_sum += x, ++scored;
    }
    kv += engine.kv_stats();
    kv_used = std::max(kv_used, engine.kv_bytes());
    kv_reserved = std::max(kv_reserved, engine.kv_bytes_reserved());
    if (progress) progress(w0 + nb, windows);
  }
  PerplexityResult r;
  r.windows = windows;
  r.tokens = scored;
  r.kv = kv;
  r.kv_bytes_used = kv_used;
  r.kv_bytes_reserved = kv_reserved;
  r.mean_nll = nll_sum / double(scored);
  r.ppl = std::exp(r.mean_nll);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace kvcomp
