// Byte accounting of compressed KV: where every byte of the encoded blocks and codebooks goes,
// and the empirical entropy of the coded symbols to measure Huffman + metadata overhead against.
// Keep one CodecBytes per stream that shares a codebook alphabet (e.g. one for K, one for V):
// the entropy of a mix of alphabets means little.
#pragma once

#include <cstddef>
#include <cstdint>

#include "compress/format.h"

namespace kvcomp {

class Codebook;

struct CodecBytes {
  // Parts of the blocks; they sum to the blocks' block_bytes exactly.
  uint64_t headers = 0;       // one BlockHeader per block (raw blocks too)
  uint64_t unit_lengths = 0;  // the offset index: one byte per unit
  uint64_t params = 0;        // per-token (V: {fp16 d, int16 m0}, or {uint8 e, int8 m0} in
                              // compact blocks) / per-channel (K channel-wise) params
  uint64_t payload = 0;       // Huffman units (their final-byte padding included)
  uint64_t padding = 0;       // section alignment to 4 bytes and the payload's 4-byte slack
  uint64_t raw = 0;           // fp16 values of raw blocks
  // Codebooks, stored once per (layer, K|V) or per head: one code length byte per symbol.
  uint64_t codebooks = 0;

  uint64_t n_values = 0;  // values held by the blocks (n_tokens * head_dim each)
  uint64_t n_blocks = 0;
  uint64_t n_raw_blocks = 0;
  uint64_t n_raw_values = 0;  // values held by raw blocks
  // Huffman V blocks with compact params (kVCompact); the other Huffman V blocks hold kV params.
  uint64_t n_compact_blocks = 0;

  // Symbols of Huffman blocks (add_symbols / encode_block_ref), for the entropy.
  uint64_t hist[kMaxAlphabet] = {};

  // Parses a block's header and adds its bytes. Throws Error if the header is malformed.
  void add_block(const uint8_t* block, size_t avail);
  // The same from a header already read and checked (e.g. gathered from device memory).
  void add_header(const BlockHeader& h);
  void add_codebook(const Codebook& cb);
  void add_symbols(const uint8_t* symbols, size_t n);
  CodecBytes& operator+=(const CodecBytes& o);

  uint64_t block_bytes() const { return headers + unit_lengths + params + payload + padding + raw; }
  uint64_t total_bytes() const { return block_bytes() + codebooks; }
  // Over every value, codebooks included.
  double bits_per_value() const;
  // fp16 bytes of the same values / total_bytes().
  double ratio_to_fp16() const;
  // Empirical entropy of the Huffman-coded symbols, bits per symbol (see entropy_bits), and the
  // payload's bits per Huffman-coded value (Huffman overhead + unit byte padding).
  double entropy_bits_per_symbol() const;
  double payload_bits_per_coded_value() const;
};

}  // namespace kvcomp
