// Canonical length-limited Huffman codebooks (compress/huffman.h): code lengths, Kraft,
// prefix-freeness, optimality under the limit, storage as lengths, decode tables (CPU and GPU
// entry forms).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <queue>
#include <random>
#include <vector>

#include "compress/huffman.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "tests/catch.h"

using namespace kvcomp;

namespace {

// Every property a codebook must have: lengths within 1..limit, Kraft <= 1 (== 1 when the
// alphabet has 2+ symbols), canonical order, prefix-free codes, and decode tables that agree with
// the codes.
void check_codebook(const Codebook& cb, int limit) {
  const int n = cb.alphabet_size();
  uint64_t kraft = 0;
  for (int s = 0; s < n; ++s) {
    REQUIRE(cb.length(s) >= 1);
    REQUIRE(cb.length(s) <= limit);
    REQUIRE(cb.code(s) < (1u << cb.length(s)));
    kraft += uint64_t(1) << (kMaxCodeLen - cb.length(s));
  }
  REQUIRE(kraft <= (uint64_t(1) << kMaxCodeLen));
  if (n >= 2) REQUIRE(kraft == (uint64_t(1) << kMaxCodeLen));
  REQUIRE(cb.kraft_sum_scaled() == kraft);
  // Canonical: ordering by (length, symbol) gives increasing codes (left-aligned).
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b) continue;
      const int la = cb.length(a), lb = cb.length(b);
      if (la < lb || (la == lb && a < b)) {
        REQUIRE((uint64_t(cb.code(a)) << (kMaxCodeLen - la)) <
                (uint64_t(cb.code(b)) << (kMaxCodeLen - lb)));
      }
      // Prefix-free: the shorter code is not a prefix of the longer.
      if (la <= lb) REQUIRE((cb.code(b) >> (lb - la)) != cb.code(a));
    }
  }
  // Decode tables.
  const int L = cb.max_len();
  REQUIRE(cb.table().size() == (size_t(1) << L));
  const std::vector<uint32_t> gpu = cb.gpu_table();
  REQUIRE(gpu.size() == cb.table().size());
  for (size_t i = 0; i < cb.table().size(); ++i) {
    const DecodeEntry e = cb.table()[i];
    if (e.len == 0) {
      REQUIRE(gpu[i] == 0);
      continue;
    }
    REQUIRE(int(e.symbol) < n);
    REQUIRE(e.len == cb.length(e.symbol));
    REQUIRE((i >> (L - e.len)) == cb.code(e.symbol));
    REQUIRE(decode_entry_gpu_len(gpu[i]) == e.len);
    REQUIRE(bits_to_float(decode_entry_gpu_value_bits(gpu[i])) == float(e.symbol));
  }
  // Round trip through the stored form.
  const Codebook back = Codebook::from_lengths(cb.lengths().data(), n);
  REQUIRE(back == cb);
  for (int s = 0; s < n; ++s) REQUIRE(back.code(s) == cb.code(s));
  REQUIRE(back.max_len() == cb.max_len());
  REQUIRE(cb.stored_bytes() == size_t(n));
}

uint64_t code_cost(const std::vector<uint64_t>& w, const std::vector<uint8_t>& lengths) {
  uint64_t c = 0;
  for (size_t i = 0; i < w.size(); ++i) c += w[i] * lengths[i];
  return c;
}

// Unlimited Huffman cost (sum of merged weights).
uint64_t huffman_cost(const std::vector<uint64_t>& w) {
  if (w.size() < 2) return w.empty() ? 0 : w[0];
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<uint64_t>> pq(w.begin(),
                                                                                  w.end());
  uint64_t cost = 0;
  while (pq.size() > 1) {
    const uint64_t a = pq.top();
    pq.pop();
    const uint64_t b = pq.top();
    pq.pop();
    cost += a + b;
    pq.push(a + b);
  }
  return cost;
}

// Unlimited Huffman's longest code.
int huffman_max_len(const std::vector<uint64_t>& w) {
  using Item = std::pair<uint64_t, int>;  // weight, depth of its deepest leaf
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> pq;
  for (uint64_t x : w) pq.push({x, 0});
  while (pq.size() > 1) {
    const Item a = pq.top();
    pq.pop();
    const Item b = pq.top();
    pq.pop();
    pq.push({a.first + b.first, std::max(a.second, b.second) + 1});
  }
  return pq.top().second;
}

}  // namespace

TEST_CASE("huffman: one symbol seen, the rest stay codable", "[codec][huffman]") {
  for (int n : {2, 12, 22, 102, 256}) {
    for (int max_len : {8, 12}) {
      std::vector<uint64_t> hist(size_t(n), 0);
      hist[size_t(n / 3)] = 1000000;
      const Codebook cb = Codebook::from_histogram(hist.data(), n, max_len);
      check_codebook(cb, max_len);
      // 1 bit whenever the other n - 1 symbols fit half the code space under the limit.
      if (n - 1 <= (1 << (max_len - 1))) REQUIRE(cb.length(n / 3) == 1);
      for (int s = 0; s < n; ++s) REQUIRE(cb.length(n / 3) <= cb.length(s));
    }
  }
  // A one-symbol alphabet: one 1-bit code, half the code space unused.
  const uint64_t one = 5;
  const Codebook cb = Codebook::from_histogram(&one, 1, 8);
  REQUIRE(cb.length(0) == 1);
  REQUIRE(cb.table().size() == 2);
  REQUIRE(cb.table()[0].len == 1);
  REQUIRE(cb.table()[1].len == 0);
  check_codebook(cb, 8);
}

TEST_CASE("huffman: equally likely symbols get lengths within one bit", "[codec][huffman]") {
  for (int n : {2, 3, 12, 22, 52, 102, 128, 256}) {
    std::vector<uint64_t> hist(size_t(n), 777);
    const Codebook cb = Codebook::from_histogram(hist.data(), n, 8);
    check_codebook(cb, 8);
    int lo = 99, hi = 0;
    for (int s = 0; s < n; ++s) {
      lo = std::min(lo, cb.length(s));
      hi = std::max(hi, cb.length(s));
    }
    const int l = int(std::floor(std::log2(double(n))));
    REQUIRE(lo == l);
    REQUIRE(hi <= l + 1);
    // An all-zero histogram is smoothed to the same uniform code.
    std::vector<uint64_t> zeros(size_t(n), 0);
    REQUIRE(Codebook::from_histogram(zeros.data(), n, 8) == cb);
  }
}

TEST_CASE("huffman: geometric distribution reaches the length limit", "[codec][huffman]") {
  for (int n : {12, 22, 52, 102}) {
    for (int max_len = 1; max_len <= kMaxCodeLen; ++max_len) {
      std::vector<uint64_t> hist(static_cast<size_t>(n));
      for (int s = 0; s < n; ++s) hist[size_t(s)] = uint64_t(1) << std::max(0, 60 - s);
      const Codebook cb = Codebook::from_histogram(hist.data(), n, max_len);
      const int limit = std::max(max_len, int(std::ceil(std::log2(double(n)))));
      check_codebook(cb, limit);
      // Unlimited Huffman would use n - 1 bits.
      REQUIRE(cb.max_len() == std::min(limit, n - 1));
      REQUIRE(cb.length(0) <= cb.length(n - 1));
    }
  }
}

TEST_CASE("huffman: the limit is raised to ceil(log2(alphabet))", "[codec][huffman]") {
  std::vector<uint64_t> hist(256, 1);
  const Codebook cb = Codebook::from_histogram(hist.data(), 256, 4);
  for (int s = 0; s < 256; ++s) REQUIRE(cb.length(s) == 8);
  check_codebook(cb, 8);
  std::vector<uint64_t> h22(22, 1);
  check_codebook(Codebook::from_histogram(h22.data(), 22, 1), 5);
}

TEST_CASE("huffman: package-merge is optimal under the limit", "[codec][huffman]") {
  std::mt19937_64 rng(0xC0DEB00C);
  // Brute force over every length vector on tiny alphabets.
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 2 + int(rng() % 6);  // 2..7
    const int min_l = int(std::ceil(std::log2(double(n))));
    const int limit = min_l + int(rng() % std::max(1, 5 - min_l));
    std::vector<uint64_t> w(static_cast<size_t>(n));
    for (auto& x : w) x = 1 + rng() % (trial % 2 ? 1000 : 3);
    uint64_t best = UINT64_MAX;
    std::vector<uint8_t> l(size_t(n), 1);
    for (;;) {
      uint64_t kraft = 0;
      for (uint8_t x : l) kraft += uint64_t(1) << (16 - x);
      if (kraft <= (uint64_t(1) << 16)) best = std::min(best, code_cost(w, l));
      int i = 0;
      while (i < n && l[size_t(i)] == limit) l[size_t(i++)] = 1;
      if (i == n) break;
      ++l[size_t(i)];
    }
    const std::vector<uint8_t> got = huffman_code_lengths(w.data(), n, limit);
    REQUIRE(code_cost(w, got) == best);
  }
  // Against unlimited Huffman on realistic alphabets: equal cost when Huffman fits the limit,
  // never below it otherwise.
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 2 + int(rng() % 255);
    std::vector<uint64_t> w(static_cast<size_t>(n));
    const double scale = double(1 + rng() % 20);
    for (auto& x : w) {
      x = 1 + uint64_t(std::exp2(scale * double(rng() % 1000) / 1000.0));
    }
    const int limit = 1 + int(rng() % kMaxCodeLen);
    const std::vector<uint8_t> got = huffman_code_lengths(w.data(), n, limit);
    const int eff = std::max(limit, int(std::ceil(std::log2(double(n)))));
    for (uint8_t x : got) REQUIRE(x <= eff);
    const uint64_t hc = huffman_cost(w);
    if (huffman_max_len(w) <= eff) {
      REQUIRE(code_cost(w, got) == hc);
    } else {
      REQUIRE(code_cost(w, got) >= hc);
    }
    check_codebook(Codebook::from_lengths(got.data(), n), eff);
  }
}

TEST_CASE("huffman: huge counts do not overflow", "[codec][huffman]") {
  std::vector<uint64_t> hist = {UINT64_MAX, UINT64_MAX / 3, 1, 0, uint64_t(1) << 50};
  const Codebook cb = Codebook::from_histogram(hist.data(), 5, 8);
  check_codebook(cb, 8);
  REQUIRE(cb.length(0) == 1);
}

TEST_CASE("huffman: stored lengths rebuild the codebook; bad lengths rejected",
          "[codec][huffman]") {
  std::mt19937_64 rng(1234);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 1 + int(rng() % 256);
    std::vector<uint64_t> hist(static_cast<size_t>(n));
    for (auto& x : hist) x = rng() % 5000;
    const Codebook cb = Codebook::from_histogram(hist.data(), n, 1 + int(rng() % 12));
    const std::vector<uint8_t> stored = cb.lengths();
    const Codebook back = Codebook::from_lengths(stored.data(), n);
    REQUIRE(back == cb);
    REQUIRE(back.table().size() == cb.table().size());
    for (size_t i = 0; i < cb.table().size(); ++i) {
      REQUIRE(back.table()[i].symbol == cb.table()[i].symbol);
      REQUIRE(back.table()[i].len == cb.table()[i].len);
    }
    REQUIRE(back.gpu_table() == cb.gpu_table());
  }
  const uint8_t zero_len[3] = {1, 0, 2};
  REQUIRE_THROWS_AS(Codebook::from_lengths(zero_len, 3), Error);
  const uint8_t too_long[3] = {1, 2, 13};
  REQUIRE_THROWS_AS(Codebook::from_lengths(too_long, 3), Error);
  const uint8_t over_kraft[3] = {1, 1, 2};
  REQUIRE_THROWS_WITH(Codebook::from_lengths(over_kraft, 3), HasSubstr("Kraft"));
  REQUIRE_THROWS_AS(huffman_code_lengths(nullptr, 0, 8), Error);
  const uint64_t h[2] = {1, 1};
  REQUIRE_THROWS_AS(huffman_code_lengths(h, 2, 13), Error);
  REQUIRE_THROWS_AS(huffman_code_lengths(h, 2, 0), Error);
}

TEST_CASE("huffman: GPU decode entries hold (float)symbol and the length", "[codec][huffman]") {
  for (uint32_t s = 0; s < 256; ++s) {
    REQUIRE(small_int_float_bits(s) == float_to_bits(float(s)));
    REQUIRE((small_int_float_bits(s) & 0xffffu) == 0);
    for (uint32_t len = 1; len <= uint32_t(kMaxCodeLen); ++len) {
      const uint32_t e = decode_entry_gpu(s, len);
      REQUIRE(decode_entry_gpu_len(e) == len);
      REQUIRE(bits_to_float(decode_entry_gpu_value_bits(e)) == float(s));
      REQUIRE(uint32_t(bits_to_float(e & ~31u)) == s);
      // The entry read as a float is the symbol up to a negligible error.
      REQUIRE(std::fabs(bits_to_float(e) - float(s)) <= float(s) * 1e-5f + 1e-37f);
    }
  }
  static_assert(small_int_float_bits(255) == 0x437f0000u, "constexpr entry form");
}

TEST_CASE("huffman: empirical entropy", "[codec][huffman]") {
  const uint64_t uniform[4] = {10, 10, 10, 10};
  REQUIRE(entropy_bits(uniform, 4) == Approx(80.0));
  const uint64_t single[3] = {0, 9, 0};
  REQUIRE(entropy_bits(single, 3) == 0.0);
  const uint64_t empty[2] = {0, 0};
  REQUIRE(entropy_bits(empty, 2) == 0.0);
  const uint64_t skew[2] = {3, 1};
  REQUIRE(entropy_bits(skew, 2) == Approx(3 * std::log2(4.0 / 3.0) + 2.0));
}
