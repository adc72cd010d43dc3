// Perplexity under kvcomp's protocol: ids = [BOS] + encode(whole text); consecutive
// non-overlapping windows of ctx tokens from the start (at most max_windows); each window
// evaluated from an empty cache; ppl = exp(mean NLL over the ctx-1 predicted tokens of every
// window). A window is a prefill of its first `prefill` tokens followed by one teacher-forced
// decode step per remaining token, so that every step reads the cache as generation would (the
// decode-time protocol of the compressed-cache work: a compressed cache then holds the prompt's
// blocks and grows block by block as generation would; the command line runs ctx/4 as prefill
// by default, perplexity_default_prefill).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "models/engine.h"
#include "runtime/tokenizer.h"

namespace kvcomp {

// Called for every scored token with its next-token logits [vocab], their log-sum-exp (the
// softmax's normalizer, so that log p_v = logits[v] - lse) and its target. index is the token's
// place in the run, window * (ctx - 1) + position, whatever the batch: two runs of the same text
// and windows give the same index to the same prediction.
using TokenLogitsCallback = std::function<void(int64_t index, int target, const float* logits,
                                               int vocab, double lse)>;

// log(sum_v exp(x[v])) over x[0, n), in double.
double log_sum_exp(const float* x, int n);

struct PerplexityOptions {
  int ctx = 0;          // tokens per window (required, >= 2)
  int max_windows = 0;  // 0: every full window
  int prefill = 0;      // tokens of each window run as one prefill; 0: the whole window
                        // (one prefill, no decode step)
  int batch = 1;        // windows evaluated together as one batch of sequences
  KvOptions kv;
  // When set, every step returns its logits (Engine::forward) and the NLL is computed from them
  // on the host (log-softmax in double), instead of Engine::forward_nll.
  TokenLogitsCallback on_token;
};

struct PerplexityResult {
  double ppl = 0;
  double mean_nll = 0;
  int64_t tokens = 0;  // predicted tokens scored
  int windows = 0;
  double seconds = 0;
  // The KV cache's accounting at the end of every window, summed over the windows evaluated
  // (ratios and bits per value of the sums: averages weighted by values, and every window holds
  // ctx tokens). compressed == false for a dense cache.
  KvStats kv;
  // The KV cache's bytes at the end of the window that held most (Engine::kv_bytes and
  // kv_bytes_reserved).
  int64_t kv_bytes_used = 0, kv_bytes_reserved = 0;
};

// The windows a run of ids evaluates (checks ctx and max_windows as perplexity does).
int perplexity_windows(const std::vector<int>& ids, const PerplexityOptions& opts);

// The command line's default prefill: ctx / 4, at least 1.
inline int perplexity_default_prefill(int ctx) {
  return ctx / 4 > 1 ? ctx / 4 : 1;
}

// The token stream the windows are cut from: [BOS] (when the model has one) + encode(text).
std::vector<int> perplexity_ids(const Tokenizer& tok, int bos_token_id, const std::string& text);

// progress(windows_done, windows_total) after each batch of windows.
using ProgressCallback = std::function<void(int, int)>;

PerplexityResult perplexity(Engine& engine, const std::vector<int>& ids,
                            const PerplexityOptions& opts, const ProgressCallback& progress);

}  // namespace kvcomp
