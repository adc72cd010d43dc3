#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

namespace kvcomp {

void validate(const SamplingOptions& o) {
  check(std::isfinite(o.temperature) && o.temperature >= 0.0f,
        "--temperature: expected a number >= 0, got ", o.temperature);
  check(o.top_k >= 0, "--top-k: expected an integer >= 0, got ", o.top_k);
  check(std::isfinite(o.top_p) && o.top_p > 0.0f && o.top_p <= 1.0f,
        "--top-p: expected a number in (0, 1], got ", o.top_p);
}

int argmax(const float* logits, int vocab) {
  int best = 0;
  for (int j = 1; j < vocab; ++j)
    if (logits[j] > logits[best]) best = j;
  return best;
}

Sampler::Sampler(const SamplingOptions& opts) : opts_(opts), rng_(opts.seed) {
  validate(opts);
}

int Sampler::sample(const float* logits, int vocab) {
  if (opts_.temperature <= 0.0f) return argmax(logits, vocab);
  cand_.resize(vocab);
  for (int j = 0; j < vocab; ++j) cand_[j] = {logits[j], j};
  auto by_logit = [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t n = cand_.size();
  if (opts_.top_k > 0 && size_t(opts_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + opts_.top_k, cand_.end(), by_logit);
    n = opts_.top_k;
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax over the candidates at the given temperature, in descending order.
  const float mx = cand_[0].first;
  std::vector<double> p(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    p[i] = std::exp(double(cand_[i].first - mx) / opts_.temperature);
    sum += p[i];
  }
  // Nucleus: the smallest prefix whose probability reaches top_p.
  if (opts_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += p[i] / sum;
      if (cum >= opts_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
    sum = 0;
    for (size_t i = 0; i < n; ++i) sum += p[i];
  }
  // A uniform double in [0, 1) from 53 random bits: the same on every platform.
  const double u = double(rng_() >> 11) * (1.0 / 9007199254740992.0) * sum;
  double cum = 0;
  for (size_t i = 0; i < n; ++i) {
    cum += p[i];
    if (u < cum) return cand_[i].second;
  }
  return cand_[n - 1].second;
}

}  // namespace kvcomp
