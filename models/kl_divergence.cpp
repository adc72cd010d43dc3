#include "models/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/error.h"

namespace kvcomp {

namespace {

constexpr const char* kFormat = "kvcomp-logprobs";
constexpr int kVersion = 1;

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// The p-quantile of sorted values by nearest rank.
double quantile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t k = size_t(std::ceil(p * double(sorted.size())));
  return sorted[std::min(sorted.size() - 1, k > 0 ? k - 1 : 0)];
}

}  // namespace

std::string hash_ids(const std::vector<int>& ids) {
  uint64_t h = 1469598103934665603ull;
  for (int id : ids) {
    const uint32_t u = uint32_t(id);
    for (int b = 0; b < 4; ++b) {
      h ^= (u >> (8 * b)) & 0xffu;
      h *= 1099511628211ull;
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void log_softmax(const float* logits, int vocab, double lse, float* out) {
  for (int v = 0; v < vocab; ++v) out[v] = float(double(logits[v]) - lse);
}

TokenLogProbs::TokenLogProbs(const LogProbsHeader& h)
    : header(h),
      rows(size_t(std::max<int64_t>(h.tokens, 0)) * size_t(std::max(h.vocab, 0)), 0.0f),
      have(size_t(std::max<int64_t>(h.tokens, 0)), 0) {}

void TokenLogProbs::set(int64_t i, const float* logits, double lse) {
  log_softmax(logits, header.vocab, lse, rows.data() + size_t(i) * size_t(header.vocab));
  have[size_t(i)] = 1;
}

void save_logprobs(const std::string& path, const TokenLogProbs& tp) {
  const LogProbsHeader& h = tp.header;
  check(tp.rows.size() == size_t(h.tokens) * size_t(h.vocab), "--save-logits ", path,
        ": internal error: ", tp.rows.size(), " values for ", h.tokens, " tokens x ", h.vocab);
  for (int64_t i = 0; i < h.tokens; ++i)
    check(tp.have[size_t(i)], "--save-logits ", path, ": token ", i, " was not evaluated");
  std::ofstream f(path, std::ios::binary);
  check(bool(f), "--save-logits: cannot write ", path);
  const nlohmann::json j = {{"format", kFormat},    {"version", kVersion}, {"model", h.model},
                            {"text", h.text},       {"kv", h.kv},          {"ctx", h.ctx},
                            {"prefill", h.prefill}, {"windows", h.windows}, {"tokens", h.tokens},
                            {"vocab", h.vocab},     {"ids_hash", h.ids_hash}};
  f << j.dump() << '\n';
  f.write(reinterpret_cast<const char*>(tp.rows.data()), std::streamsize(tp.rows.size() * 4));
  check(bool(f), "--save-logits: writing ", path, " failed (disk full?)");
}

TokenLogProbs load_logprobs(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  check(bool(f), "--base-logits: cannot read ", path);
  std::string line;
  std::getline(f, line);
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  check(!j.is_discarded() && j.is_object() && j.value("format", "") == kFormat, "--base-logits ",
        path, ": not a log-probability file written by --save-logits");
  check(j.value("version", 0) == kVersion, "--base-logits ", path, ": version ",
        j.value("version", 0), ", this build reads version ", kVersion);
  LogProbsHeader h;
  try {
    h.model = j.at("model").get<std::string>();
    h.text = j.at("text").get<std::string>();
    h.kv = j.at("kv").get<std::string>();
    h.ctx = j.at("ctx").get<int>();
    h.prefill = j.at("prefill").get<int>();
    h.windows = j.at("windows").get<int>();
    h.tokens = j.at("tokens").get<int64_t>();
    h.vocab = j.at("vocab").get<int>();
    h.ids_hash = j.at("ids_hash").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    fail("--base-logits ", path, ": bad header (", e.what(), ")");
  }
  check(h.tokens >= 1 && h.vocab >= 1 && h.tokens <= (int64_t(1) << 40) / h.vocab,
        "--base-logits ", path, ": header says ", h.tokens, " tokens x ", h.vocab,
        " vocabulary entries");
  TokenLogProbs tp(h);
  f.read(reinterpret_cast<char*>(tp.rows.data()), std::streamsize(tp.rows.size() * 4));
  check(f.gcount() == std::streamsize(tp.rows.size() * 4), "--base-logits ", path,
        ": truncated: ", f.gcount(), " bytes of log-probabilities, the header says ",
        tp.rows.size() * 4);
  check(f.peek() == std::char_traits<char>::eof(), "--base-logits ", path,
        ": more bytes than the header says");
  tp.have.assign(size_t(h.tokens), 1);
  return tp;
}

void check_logprobs_match(const LogProbsHeader& have, const LogProbsHeader& want,
                          const std::string& what) {
  auto same = [&](const char* field, const auto& a, const auto& b) {
    check(a == b, what, " was made with ", field, " ", a, ", this run has ", field, " ", b);
  };
  same("model", have.model, want.model);
  same("ctx", have.ctx, want.ctx);
  same("prefill", have.prefill, want.prefill);
  same("windows", have.windows, want.windows);
  same("tokens", have.tokens, want.tokens);
  same("vocab", have.vocab, want.vocab);
  check(have.ids_hash == want.ids_hash, what, " was made from other token ids (text ",
        have.text, ", hash ", have.ids_hash, "; this run: ", want.text, ", hash ", want.ids_hash,
        ")");
}

void KldAccumulator::add(int64_t index, int target, const float* logits, int vocab,
                         double lse) {
  const LogProbsHeader& h = base_.header;
  check(vocab == h.vocab && index >= 0 && index < h.tokens && base_.have[size_t(index)],
        "KL divergence: token ", index, " has no base distribution");
  lp_.resize(size_t(vocab));
  log_softmax(logits, vocab, lse, lp_.data());
  const float* b = base_.row(index);
  double kl = 0;
  for (int v = 0; v < vocab; ++v) {
    const double pb = std::exp(double(b[v]));
    if (pb > 0) kl += pb * (double(b[v]) - double(lp_[size_t(v)]));
  }
  kld_.push_back(std::max(kl, 0.0));  // >= 0 up to rounding
  nll_base_.push_back(-double(b[target]));
  nll_.push_back(-double(lp_[size_t(target)]));
  if (argmax(b, vocab) == argmax(lp_.data(), vocab)) ++same_top1_;
}

KldSummary KldAccumulator::summary() const {
  KldSummary s;
  const size_t n = kld_.size();
  s.tokens = int64_t(n);
  if (n == 0) return s;
  double sum = 0, sq = 0, nb = 0, nr = 0, d = 0, dd = 0;
  for (size_t i = 0; i < n; ++i) {
    sum += kld_[i];
    sq += kld_[i] * kld_[i];
    nb += nll_base_[i];
    nr += nll_[i];
    const double x = nll_[i] - nll_base_[i];
    d += x;
    dd += x * x;
  }
  const double N = double(n);
  s.mean = sum / N;
  s.stderr_ = n > 1 ? std::sqrt(std::max(0.0, (sq - N * s.mean * s.mean) / (N - 1)) / N) : 0;
  std::vector<double> sorted = kld_;
  std::sort(sorted.begin(), sorted.end());
  s.median = quantile(sorted, 0.5);
  s.p90 = quantile(sorted, 0.9);
  s.p99 = quantile(sorted, 0.99);
  s.p999 = quantile(sorted, 0.999);
  s.max = sorted.back();
  s.same_top1_pct = 100.0 * double(same_top1_) / N;
  s.ppl_base = std::exp(nb / N);
  s.ppl = std::exp(nr / N);
  // The paired differences of NLL: ppl = ppl_base * exp(mean d); its error by the delta method.
  const double md = d / N;
  const double se_d = n > 1 ? std::sqrt(std::max(0.0, (dd - N * md * md) / (N - 1)) / N) : 0;
  s.delta_ppl = s.ppl - s.ppl_base;
  s.delta_ppl_stderr = s.ppl * se_d;
  return s;
}

}  // namespace kvcomp
