#include "compress/huffman.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/error.h"

namespace kvcomp {

namespace {

int ceil_log2(int n) {
  int l = 0;
  while ((1 << l) < n) ++l;
  return l;
}

}  // namespace

std::vector<uint8_t> huffman_code_lengths(const uint64_t* hist, int alphabet_size, int max_len) {
  check(alphabet_size >= 1 && alphabet_size <= kMaxAlphabet, "Huffman alphabet size ",
        alphabet_size, ": expected 1..", kMaxAlphabet);
  check(max_len >= 1 && max_len <= kMaxCodeLen, "Huffman max code length ", max_len,
        ": expected 1..", kMaxCodeLen);
  const int n = alphabet_size;
  if (n == 1) return {1};
  const int limit = std::max(max_len, ceil_log2(n));

  // Smoothed weights, scaled so that any package (at most 2^limit leaves' worth) fits 64 bits.
  uint64_t max_count = 1;
  for (int i = 0; i < n; ++i) max_count = std::max(max_count, hist[i]);
  int shift = 0;
  while ((max_count >> shift) > (uint64_t(1) << 40)) ++shift;
  std::vector<uint64_t> w(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) w[size_t(i)] = std::max<uint64_t>(hist[i] >> shift, 1);

  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return w[size_t(a)] < w[size_t(b)]; });

  // Package-merge (coin collector): nodes 0..n-1 are the leaves in weight order (a = symbol);
  // later nodes are packages of two nodes of the previous list (a, b = node ids).
  struct Node {
    uint64_t weight;
    int a;
    int b;  // -1 for a leaf
  };
  std::vector<Node> nodes;
  nodes.reserve(size_t(n) * size_t(limit + 1));
  for (int i = 0; i < n; ++i) nodes.push_back({w[size_t(order[size_t(i)])], order[size_t(i)], -1});

  std::vector<int> list(static_cast<size_t>(n));
  std::iota(list.begin(), list.end(), 0);
  for (int level = 1; level < limit; ++level) {
    std::vector<int> packages;
    for (size_t i = 0; i + 1 < list.size(); i += 2) {
      const int a = list[i], b = list[i + 1];
      packages.push_back(int(nodes.size()));
      nodes.push_back({nodes[size_t(a)].weight + nodes[size_t(b)].weight, a, b});
    }
    // Merge the leaves with the packages by weight; a leaf goes first on a tie.
    std::vector<int> merged;
    merged.reserve(size_t(n) + packages.size());
    size_t li = 0, pi = 0;
    while (li < size_t(n) || pi < packages.size()) {
      if (pi == packages.size() ||
          (li < size_t(n) && nodes[li].weight <= nodes[size_t(packages[pi])].weight)) {
        merged.push_back(int(li++));
      } else {
        merged.push_back(packages[pi++]);
      }
    }
    list.swap(merged);
  }

  // The 2n - 2 lightest items of the last list: a symbol's code length is the number of times
  // its leaf occurs in them.
  std::vector<uint8_t> lengths(static_cast<size_t>(n), 0);
  std::vector<int> stack;
  const size_t take = size_t(2 * n - 2);
  check(list.size() >= take, "huffman_code_lengths: internal error (list too short)");
  for (size_t i = 0; i < take; ++i) {
    stack.push_back(list[i]);
    while (!stack.empty()) {
      const Node& nd = nodes[size_t(stack.back())];
      stack.pop_back();
      if (nd.b < 0) {
        ++lengths[size_t(nd.a)];
      } else {
        stack.push_back(nd.a);
        stack.push_back(nd.b);
      }
    }
  }
  return lengths;
}

Codebook Codebook::from_histogram(const uint64_t* hist, int alphabet_size, int max_len) {
  const std::vector<uint8_t> lengths = huffman_code_lengths(hist, alphabet_size, max_len);
  return from_lengths(lengths.data(), alphabet_size);
}

Codebook Codebook::from_lengths(const uint8_t* lengths, int alphabet_size) {
  check(alphabet_size >= 1 && alphabet_size <= kMaxAlphabet, "codebook alphabet size ",
        alphabet_size, ": expected 1..", kMaxAlphabet);
  Codebook cb;
  cb.lengths_.assign(lengths, lengths + alphabet_size);
  uint32_t kraft = 0;
  for (int s = 0; s < alphabet_size; ++s) {
    const int l = lengths[s];
    check(l >= 1 && l <= kMaxCodeLen, "codebook: symbol ", s, " has code length ", l,
          ", expected 1..", kMaxCodeLen);
    kraft += 1u << (kMaxCodeLen - l);
    cb.max_len_ = std::max(cb.max_len_, l);
  }
  check(kraft <= (1u << kMaxCodeLen), "codebook: code lengths violate Kraft's inequality (sum ",
        double(kraft) / double(1u << kMaxCodeLen), " > 1)");
  cb.fixed_bits_ = cb.max_len_;
  for (int s = 0; s < alphabet_size; ++s) {
    if (lengths[s] != cb.max_len_) cb.fixed_bits_ = 0;
  }

  // Canonical codes: by (length, symbol).
  std::vector<int> order(static_cast<size_t>(alphabet_size));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return lengths[a] < lengths[b]; });
  cb.codes_.assign(size_t(alphabet_size), 0);
  uint32_t code = 0;
  int prev_len = lengths[order[0]];
  for (int s : order) {
    code <<= (lengths[s] - prev_len);
    prev_len = lengths[s];
    cb.codes_[size_t(s)] = code++;
  }

  cb.table_.assign(size_t(1) << cb.max_len_, DecodeEntry{0, 0});
  for (int s = 0; s < alphabet_size; ++s) {
    const int shift = cb.max_len_ - lengths[s];
    const size_t first = size_t(cb.codes_[size_t(s)]) << shift;
    for (size_t i = 0; i < (size_t(1) << shift); ++i) {
      cb.table_[first + i] = DecodeEntry{uint8_t(s), lengths[s]};
    }
  }
  return cb;
}

Codebook Codebook::fixed_length(int alphabet_size) {
  check(alphabet_size >= 1 && alphabet_size <= kMaxAlphabet, "codebook alphabet size ",
        alphabet_size, ": expected 1..", kMaxAlphabet);
  int bits = 1;
  while ((1 << bits) < alphabet_size) ++bits;
  const std::vector<uint8_t> lengths(static_cast<size_t>(alphabet_size), uint8_t(bits));
  return from_lengths(lengths.data(), alphabet_size);
}

std::vector<uint32_t> Codebook::gpu_table() const {
  std::vector<uint32_t> t(table_.size());
  for (size_t i = 0; i < table_.size(); ++i) {
    t[i] = table_[i].len == 0 ? 0u : decode_entry_gpu(table_[i].symbol, table_[i].len);
  }
  return t;
}

uint32_t Codebook::kraft_sum_scaled() const {
  uint32_t k = 0;
  for (uint8_t l : lengths_) k += 1u << (kMaxCodeLen - l);
  return k;
}

double entropy_bits(const uint64_t* hist, int alphabet_size) {
  double total = 0.0;
  for (int s = 0; s < alphabet_size; ++s) total += double(hist[s]);
  if (total == 0.0) return 0.0;
  double bits = 0.0;
  for (int s = 0; s < alphabet_size; ++s) {
    if (hist[s] > 0) bits += double(hist[s]) * std::log2(total / double(hist[s]));
  }
  return bits;
}

}  // namespace kvcomp
