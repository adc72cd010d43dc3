// KL divergence of a run's next-token distributions from a base run's (llama.cpp's
// `llama-perplexity --kl-divergence`): per scored token, KL(base || run) over the vocabulary,
// whether the most likely token is the same, and both NLLs; summarized as mean with its standard
// error, median, 90/99/99.9th percentiles and max, the share of unchanged top-1 tokens, and the
// perplexity change with its standard error (from the paired per-token NLL differences).
//
// The base's log-probabilities are kept (in memory, or in a file written by --save-logits and
// read by --base-logits): fp32 [tokens][vocab], row i the token at index i of the run
// (perplexity.h: window * (ctx - 1) + position). The file starts with one JSON line (format,
// model, text, ctx, prefill, windows, tokens, vocab, kv mode, a hash of the token ids), then the
// rows, little-endian.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/perplexity.h"  // log_sum_exp, TokenLogitsCallback's index

namespace kvcomp {

// What identifies the predictions of a run: a base is usable for a run only when all but kv and
// text (informational) match.
struct LogProbsHeader {
  std::string model, text, kv;
  int ctx = 0, prefill = 0, windows = 0, vocab = 0;
  int64_t tokens = 0;
  std::string ids_hash;  // FNV-1a 64 of the token ids the windows are cut from, hex
};

// FNV-1a 64 of ids, as 16 hex digits.
std::string hash_ids(const std::vector<int>& ids);

struct TokenLogProbs {
  LogProbsHeader header;
  std::vector<float> rows;  // [tokens][vocab] log-softmax of the logits, rounded to fp32
  std::vector<uint8_t> have;  // [tokens] 1 once row i is filled
  const float* row(int64_t i) const { return rows.data() + size_t(i) * size_t(header.vocab); }
  // Empty rows for h.tokens x h.vocab.
  explicit TokenLogProbs(const LogProbsHeader& h = {});
  // Row i from a token's logits and their log-sum-exp (TokenLogitsCallback's arguments).
  void set(int64_t i, const float* logits, double lse);
};

// logits - lse (the log-softmax, lse = log_sum_exp(logits)) in double, rounded to fp32.
void log_softmax(const float* logits, int vocab, double lse, float* out);

// Writes tp to path; throws Error naming the file when it cannot.
void save_logprobs(const std::string& path, const TokenLogProbs& tp);
// Reads a file written by save_logprobs; throws Error naming the file and what is wrong (not
// such a file, truncated, sizes inconsistent).
TokenLogProbs load_logprobs(const std::string& path);
// Throws Error naming `what` (the file or "the base run") and the first field of have that
// differs from want (model, ctx, prefill, windows, tokens, vocab, ids).
void check_logprobs_match(const LogProbsHeader& have, const LogProbsHeader& want,
                          const std::string& what);

struct KldSummary {
  int64_t tokens = 0;
  double mean = 0, stderr_ = 0, median = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  double same_top1_pct = 0;
  double ppl_base = 0, ppl = 0, delta_ppl = 0, delta_ppl_stderr = 0;
};

// Accumulates one run against a base.
class KldAccumulator {
 public:
  explicit KldAccumulator(const TokenLogProbs& base) : base_(base) {}
  // Token `index` of the run: its target, logits and their log-sum-exp.
  void add(int64_t index, int target, const float* logits, int vocab, double lse);
  KldSummary summary() const;

 private:
  const TokenLogProbs& base_;
  std::vector<float> lp_;  // scratch [vocab]
  std::vector<double> kld_, nll_base_, nll_;
  int64_t same_top1_ = 0;
};

}  // namespace kvcomp
