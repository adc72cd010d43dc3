#include <cmath>
#include <map>
#include <vector>

#include "runtime/error.h"
#include "runtime/sampler.h"
#include "tests/catch.h"

using namespace kvcomp;

TEST_CASE("greedy sampling is argmax, ties to the lowest id") {
  const std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f};
  Sampler s({0.0f, 0, 1.0f, 1});
  REQUIRE(s.sample(l.data(), 4) == 1);
  REQUIRE(argmax(l.data(), 4) == 1);
}

TEST_CASE("top-k 1 and a tiny top-p reduce to greedy") {
  const std::vector<float> l = {0.1f, 0.3f, 3.0f, 0.2f};
  Sampler k1({1.0f, 1, 1.0f, 7});
  Sampler p0({1.0f, 0, 0.01f, 7});
  for (int i = 0; i < 50; ++i) {
    REQUIRE(k1.sample(l.data(), 4) == 2);
    REQUIRE(p0.sample(l.data(), 4) == 2);
  }
}

TEST_CASE("temperature sampling follows softmax(logits / T); seeds reproduce") {
  const std::vector<float> l = {0.0f, 1.0f, 2.0f};
  const float T = 1.5f;
  Sampler s({T, 0, 1.0f, 42});
  std::map<int, int> count;
  const int n = 20000;
  std::vector<int> first;
  for (int i = 0; i < n; ++i) {
    const int t = s.sample(l.data(), 3);
    ++count[t];
    if (i < 20) first.push_back(t);
  }
  double z = 0;
  for (float x : l) z += std::exp(x / T);
  for (int j = 0; j < 3; ++j)
    REQUIRE(count[j] / double(n) == Approx(std::exp(l[j] / T) / z).margin(0.015));
  Sampler again({T, 0, 1.0f, 42});
  for (int i = 0; i < 20; ++i) REQUIRE(again.sample(l.data(), 3) == first[i]);
}

TEST_CASE("top-p keeps the smallest set reaching the mass") {
  // Probabilities ~ 0.665, 0.245, 0.09: top-p 0.8 keeps ids 2 and 1 only.
  const std::vector<float> l = {0.0f, 1.0f, 2.0f};
  Sampler s({1.0f, 0, 0.8f, 3});
  for (int i = 0; i < 2000; ++i) REQUIRE(s.sample(l.data(), 3) != 0);
}

TEST_CASE("invalid sampling options are rejected by name") {
  REQUIRE_THROWS_WITH(validate({-1.0f, 0, 1.0f, 0}), HasSubstr("--temperature"));
  REQUIRE_THROWS_WITH(validate({1.0f, -3, 1.0f, 0}), HasSubstr("--top-k"));
  REQUIRE_THROWS_WITH(validate({1.0f, 0, 0.0f, 0}), HasSubstr("--top-p"));
  REQUIRE_THROWS_WITH(validate({1.0f, 0, 1.5f, 0}), HasSubstr("--top-p"));
}
