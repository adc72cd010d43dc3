// Canonical, length-limited Huffman codebooks over a byte alphabet [0, alphabet_size).
//
// Code lengths come from package-merge (optimal under the length limit) on the histogram with
// every count raised to at least 1, so every symbol of the alphabet stays codable even if the
// histogram never saw it. Codes are canonical: sorted by (length, symbol), each code is the
// previous one plus 1, shifted left when the length grows. A codebook is therefore stored as its
// code lengths, one byte per symbol, and rebuilt from them bit-identically.
//
// Decoding is one table lookup per symbol: the table has 2^max_len entries indexed by the next
// max_len bits of the stream (MSB-first); the entry gives the symbol and its code length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "compress/format.h"

namespace kvcomp {

// CPU form of a decode-table entry. len == 0: no code reaches this slot (incomplete code).
struct DecodeEntry {
  uint8_t symbol;
  uint8_t len;
};

// Code lengths for hist[alphabet_size] with every length <= max_len: package-merge on
// max(count, 1). The limit is raised to ceil(log2(alphabet_size)) when it is lower. Counts above
// 2^40 are scaled down (all by the same shift) so sums cannot overflow. Kraft sum == 1 for
// alphabet_size >= 2; a one-symbol alphabet gets length 1. Deterministic: ties are broken by
// symbol. Throws Error on alphabet_size outside 1..256 or max_len outside 1..kMaxCodeLen.
std::vector<uint8_t> huffman_code_lengths(const uint64_t* hist, int alphabet_size, int max_len);

class Codebook {
 public:
  Codebook() = default;
  // Builds the code for a histogram (see huffman_code_lengths).
  static Codebook from_histogram(const uint64_t* hist, int alphabet_size, int max_len);
  // Rebuilds a codebook from its stored code lengths; throws Error when a length is outside
  // 1..kMaxCodeLen or the lengths violate Kraft's inequality.
  static Codebook from_lengths(const uint8_t* lengths, int alphabet_size);
  // The fixed-length code of an alphabet: every symbol gets ceil(log2(alphabet_size)) bits (1
  // for a one- or two-symbol alphabet), so symbol s's code is s itself and a unit is its symbols
  // bit-packed MSB-first, each at a position known in advance (no serial dependency).
  static Codebook fixed_length(int alphabet_size);

  int alphabet_size() const { return int(lengths_.size()); }
  int max_symbol() const { return alphabet_size() - 1; }
  int max_len() const { return max_len_; }  // longest code; the decode table has 2^max_len slots
  int length(int symbol) const { return lengths_[size_t(symbol)]; }
  // The common code length when every symbol's code has the same length (a fixed-length code,
  // which decoders may unpack without table lookups), else 0.
  int fixed_bits() const { return fixed_bits_; }
  uint32_t code(int symbol) const { return codes_[size_t(symbol)]; }  // right-aligned
  const std::vector<uint8_t>& lengths() const { return lengths_; }    // [alphabet_size]
  const std::vector<DecodeEntry>& table() const { return table_; }    // [2^max_len]
  // The same table in the GPU entry form of format.h (decode_entry_gpu). [2^max_len]
  std::vector<uint32_t> gpu_table() const;
  // Bytes a stored codebook takes: one code length per symbol.
  size_t stored_bytes() const { return lengths_.size(); }
  // Sum of 2^-len over the alphabet, scaled by 2^kMaxCodeLen (complete code: 2^kMaxCodeLen).
  uint32_t kraft_sum_scaled() const;

  bool operator==(const Codebook& o) const { return lengths_ == o.lengths_; }

 private:
  std::vector<uint8_t> lengths_;
  std::vector<uint32_t> codes_;
  std::vector<DecodeEntry> table_;
  int max_len_ = 0;
  int fixed_bits_ = 0;
};

// Empirical entropy of a histogram: sum over symbols of -count * log2(count / total), in bits
// (0 for an empty histogram). The bound a per-symbol code of this histogram cannot beat.
double entropy_bits(const uint64_t* hist, int alphabet_size);

}  // namespace kvcomp
