// Token sampling on the CPU: greedy, temperature, top-k, top-p, seeded.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace kvcomp {

struct SamplingOptions {
  float temperature = 0.8f;  // <= 0: greedy
  int top_k = 40;            // <= 0: no limit
  float top_p = 0.95f;       // >= 1: no limit
  uint64_t seed = 0;
};

// Checks the ranges; throws Error naming the option.
void validate(const SamplingOptions& opts);

// argmax; ties go to the lowest id.
int argmax(const float* logits, int vocab);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opts);
  int sample(const float* logits, int vocab);

 private:
  SamplingOptions opts_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int>> cand_;  // scratch
};

}  // namespace kvcomp
