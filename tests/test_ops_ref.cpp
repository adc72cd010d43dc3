// The CPU twins against direct, independent formulas (double precision, no shared code).
#include <cmath>
#include <random>
#include <vector>

#include "runtime/ops_ref.h"
#include "tests/catch.h"

using namespace kvcomp;

namespace {
std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
}  // namespace

TEST_CASE("matmul_ref equals a double-precision product over odd sizes") {
  for (auto [n, in, out] : {std::tuple{1, 1, 1}, {3, 7, 5}, {9, 33, 17}, {27, 64, 130}}) {
    const auto x = randn(size_t(n) * in, 1), w = randn(size_t(out) * in, 2);
    std::vector<float> y(size_t(n) * out, NAN);
    matmul_ref(x.data(), w.data(), n, in, out, y.data());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < out; ++j) {
        double s = 0;
        for (int k = 0; k < in; ++k) s += double(x[i * in + k]) * w[j * in + k];
        REQUIRE(y[i * out + j] == Approx(s).margin(1e-4).epsilon(1e-5));
      }
  }
}

TEST_CASE("rmsnorm_ref normalizes by the root mean square") {
  const int n = 3, dim = 37;
  const auto x = randn(n * dim, 3), w = randn(dim, 4);
  std::vector<float> out(n * dim, NAN);
  rmsnorm_ref(x.data(), w.data(), n, dim, 1e-5f, out.data());
  for (int i = 0; i < n; ++i) {
    double ms = 0;
    for (int j = 0; j < dim; ++j) ms += double(x[i * dim + j]) * x[i * dim + j];
    const double r = 1.0 / std::sqrt(ms / dim + 1e-5);
    for (int j = 0; j < dim; ++j) REQUIRE(out[i * dim + j] == Approx(x[i * dim + j] * r * w[j]));
  }
}

TEST_CASE("rope_ref rotates channel pairs (i, i + d/2) by position * inv_freq") {
  const int n = 4, heads = 3, hd = 16;
  auto x = randn(n * heads * hd, 5);
  const auto x0 = x;
  std::vector<float> inv(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv[i] = float(std::pow(10000.0, -2.0 * i / hd));
  const std::vector<int> pos = {0, 1, 17, 4095};
  rope_ref(x.data(), pos.data(), n, heads, hd, inv.data());
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        // Hugging Face forms the angle in fp32; so does the reference.
        const double a = double(float(pos[t]) * inv[i]);
        const float* in = x0.data() + (t * heads + h) * hd;
        const float* o = x.data() + (t * heads + h) * hd;
        REQUIRE(o[i] == Approx(in[i] * std::cos(a) - in[i + hd / 2] * std::sin(a)).margin(2e-5));
        REQUIRE(o[i + hd / 2] ==
                Approx(in[i + hd / 2] * std::cos(a) + in[i] * std::sin(a)).margin(2e-5));
      }
}

TEST_CASE("swiglu_ref is silu(gate) * up") {
  const auto g = randn(101, 6, 3.0f), u = randn(101, 7);
  std::vector<float> out(101);
  swiglu_ref(g.data(), u.data(), 101, out.data());
  for (int i = 0; i < 101; ++i)
    REQUIRE(out[i] == Approx(g[i] / (1.0 + std::exp(-double(g[i]))) * u[i]).epsilon(1e-5));
}

TEST_CASE("attention_ref is causal softmax attention with grouped KV heads") {
  for (auto [heads, kv_heads] : {std::pair{4, 4}, {4, 2}, {8, 1}}) {
    const int hd = 8, n_k = 13, n_q = 5;
    const auto q = randn(n_q * heads * hd, 8), k = randn(n_k * kv_heads * hd, 9),
               v = randn(n_k * kv_heads * hd, 10);
    std::vector<int> pos(n_q);
    for (int i = 0; i < n_q; ++i) pos[i] = n_k - n_q + i;
    std::vector<float> out(n_q * heads * hd, NAN);
    attention_ref(q.data(), pos.data(), n_q, k.data(), v.data(), n_k, kv_heads * hd, heads,
                  kv_heads, hd, out.data());
    for (int i = 0; i < n_q; ++i)
      for (int h = 0; h < heads; ++h) {
        const int g = h / (heads / kv_heads);
        std::vector<double> s(pos[i] + 1);
        double mx = -1e300, sum = 0;
        for (int t = 0; t <= pos[i]; ++t) {
          double d = 0;
          for (int c = 0; c < hd; ++c)
            d += double(q[(i * heads + h) * hd + c]) * k[(t * kv_heads + g) * hd + c];
          s[t] = d / std::sqrt(double(hd));
          mx = std::max(mx, s[t]);
        }
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int c = 0; c < hd; ++c) {
          double o = 0;
          for (int t = 0; t <= pos[i]; ++t) o += s[t] / sum * v[(t * kv_heads + g) * hd + c];
          REQUIRE(out[(i * heads + h) * hd + c] == Approx(o).margin(1e-5));
        }
      }
  }
}

TEST_CASE("nll_ref is -log softmax") {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, -1.0f};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(-1.0);
  REQUIRE(nll_ref(logits.data(), 4, 2) == Approx(-std::log(std::exp(3.0) / z)));
  REQUIRE(nll_ref(logits.data(), 4, 3) == Approx(-std::log(std::exp(-1.0) / z)));
}
