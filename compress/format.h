// The KVComp block format: the one definition of the compressed stream, shared by the CPU
// reference codec (codec_ref.h) and the GPU encoder/decoders. CUDA-free and std-free so that .cu
// files include it as is; the helpers are constexpr (device-callable with
// --expt-relaxed-constexpr).
//
// A block holds n_tokens consecutive tokens of one KV head of one layer, [n_tokens, head_dim].
// Every section starts on a 4-byte boundary and every block's size is a multiple of 4, so blocks
// laid back to back stay aligned. All fields are little-endian (host and GPU byte order).
//
// Huffman block (mode kHuffman):
//   [BlockHeader, 24 bytes]
//   [unit lengths: n_units x uint8, in bytes; zero-padded to a multiple of 4]
//   [params: n_params x QuantParams16]  V: one per token; K channel-wise: one per channel;
//                                        K block-wise: none (its step sits in the header)
//   [payload: the units back to back; zero-padded to a multiple of 4, then kPayloadSlackBytes
//    zero bytes so a GPU thread may load one aligned 32-bit word past the last unit]
// A unit is decodable on its own: K (both kinds): one unit per token, its head_dim symbols in
// channel order; V: one unit per channel, its n_tokens symbols in token order. Within a unit the
// canonical Huffman codes are written MSB-first (the first code starts at bit 7 of the unit's
// first byte); every unit starts on a byte boundary, its last byte is zero-padded. Unit u starts
// at payload + sum(len[0..u)) (a prefix sum: one warp scan on a GPU).
//
// Raw block (mode kRaw): the fallback for data the quantizer or the unit index cannot hold.
//   [BlockHeader][fp16 values, [n_tokens, head_dim] row-major; zero-padded to a multiple of 4]
//
// Packed block (mode kPacked): reserved for a fixed-bit-width coding of the same symbols (one
// bit width per block in BlockHeader::packed_bits); decoders reject it until it is implemented.
#pragma once

#include <cstdint>

namespace kvcomp {

enum class BlockMode : uint8_t {
  kRaw = 1,      // fp16 values
  kHuffman = 2,  // quantized symbols, canonical Huffman codes
  kPacked = 3,   // reserved: quantized symbols at a fixed bit width
};

enum class BlockKind : uint8_t {
  kKBlock = 1,    // K, one (d, m0) for the whole block (header)
  kKChannel = 2,  // K, one (d, m0) per channel within the block (params section)
  kV = 3,         // V, one (d, m0) per token (params section)
};

// Why a block is raw. When several causes hold, the first in this order is recorded: non-finite
// input, then a group without a usable step, then a symbol above the alphabet, then a unit
// longer than kMaxUnitBytes. (A GPU encoder ORs per-group flags and picks the first set.)
enum class RawReason : uint8_t {
  kNone = 0,
  kNonFinite = 1,     // NaN or Inf in the block
  kStep = 2,          // the step d is 0/Inf, |x/d| > kQuantMaxRatio, or m0 overflows int16
  kSymbols = 3,       // a symbol exceeds the codebook's alphabet
  kUnitOverflow = 4,  // a unit's codes take more than kMaxUnitBytes
};

constexpr int kBlockAlign = 4;
constexpr int kPayloadSlackBytes = 4;
constexpr int kMaxUnitBytes = 255;  // unit lengths are uint8
constexpr int kMaxAlphabet = 256;   // symbols are bytes
constexpr int kMaxCodeLen = 12;     // longest Huffman code; decode tables have <= 2^12 entries
constexpr int kMaxBlockTokens = 65535;
constexpr int kMaxHeadDim = 65535;
constexpr uint32_t kMaxBlockValues = 1u << 24;  // n_tokens * head_dim; keeps sizes in uint32

struct BlockHeader {
  uint8_t mode;            // BlockMode
  uint8_t kind;            // BlockKind
  uint8_t raw_reason;      // RawReason; kNone unless mode == kRaw
  uint8_t packed_bits;     // kPacked only (reserved): bits per symbol; 0 otherwise
  uint16_t n_tokens;       // tokens in the block, >= 1 (a sequence's tail may be short)
  uint16_t head_dim;       // values per token
  float k_d;               // kKBlock Huffman: the step, an fp16 value held as fp32; else 0
  int32_t k_m0;            // kKBlock Huffman: rintf(min / k_d); else 0
  uint32_t block_bytes;    // the whole block, header included; a multiple of kBlockAlign
  uint32_t payload_bytes;  // kHuffman: sum of the unit lengths (no padding, no slack);
                           // kRaw: 2 * n_tokens * head_dim
};
static_assert(sizeof(BlockHeader) == 24, "BlockHeader is 24 bytes");

// Quantization parameters of one group stored in a block's params section.
struct QuantParams16 {
  uint16_t d;  // step, fp16 bits
  int16_t m0;  // rintf(min / d)
};
static_assert(sizeof(QuantParams16) == 4, "QuantParams16 is 4 bytes");

constexpr uint32_t round_up4(uint32_t n) {
  return (n + 3u) & ~3u;
}

constexpr bool block_kind_valid(uint8_t kind) {
  return kind >= 1 && kind <= 3;
}

// Units per block: K (both kinds) one per token, V one per channel.
constexpr uint32_t block_n_units(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return kind == BlockKind::kV ? head_dim : n_tokens;
}
// Symbols per unit.
constexpr uint32_t block_unit_symbols(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return kind == BlockKind::kV ? n_tokens : head_dim;
}
// QuantParams16 entries in the params section.
constexpr uint32_t block_n_params(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return kind == BlockKind::kV ? n_tokens : kind == BlockKind::kKChannel ? head_dim : 0u;
}

// Byte offsets of the sections of a Huffman block, from the block's start.
constexpr uint32_t block_lengths_offset() {
  return uint32_t(sizeof(BlockHeader));
}
constexpr uint32_t block_params_offset(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return block_lengths_offset() + round_up4(block_n_units(kind, n_tokens, head_dim));
}
constexpr uint32_t block_payload_offset(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return block_params_offset(kind, n_tokens, head_dim) +
         uint32_t(sizeof(QuantParams16)) * block_n_params(kind, n_tokens, head_dim);
}
// Bytes of the payload section for payload_bytes of unit data: padding and slack included.
constexpr uint32_t block_payload_section_bytes(uint32_t payload_bytes) {
  return round_up4(payload_bytes) + uint32_t(kPayloadSlackBytes);
}
constexpr uint32_t huffman_block_bytes(BlockKind kind, uint32_t n_tokens, uint32_t head_dim,
                                       uint32_t payload_bytes) {
  return block_payload_offset(kind, n_tokens, head_dim) +
         block_payload_section_bytes(payload_bytes);
}
constexpr uint32_t raw_block_values_offset() {
  return uint32_t(sizeof(BlockHeader));
}
constexpr uint32_t raw_block_bytes(uint32_t n_tokens, uint32_t head_dim) {
  return raw_block_values_offset() + round_up4(2u * n_tokens * head_dim);
}
// The largest block the encoders can produce for a shape, for reserving compressed-block memory:
// a Huffman unit holds at most min(kMaxUnitBytes, ceil(unit_symbols * kMaxCodeLen / 8)) bytes (a
// longer unit makes the block raw); a raw block holds the fp16 values.
constexpr uint32_t worst_case_block_bytes(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  const uint32_t unit_bits = block_unit_symbols(kind, n_tokens, head_dim) * uint32_t(kMaxCodeLen);
  const uint32_t unit_bytes = (unit_bits + 7u) / 8u < uint32_t(kMaxUnitBytes)
                                  ? (unit_bits + 7u) / 8u
                                  : uint32_t(kMaxUnitBytes);
  const uint32_t huffman = huffman_block_bytes(
      kind, n_tokens, head_dim, block_n_units(kind, n_tokens, head_dim) * unit_bytes);
  const uint32_t raw = raw_block_bytes(n_tokens, head_dim);
  return huffman > raw ? huffman : raw;
}

// GPU decode-table entry: one 32-bit word per table slot whose value read as a float is the
// symbol (float)s, with the code length in the 5 low mantissa bits. (float)s for s <= 255 has its
// 16 low mantissa bits zero, so `__uint_as_float(e & ~31u)` is exactly (float)s and `e & 31u` is
// the length; a kernel gets the symbol as a float for dequantization without an int->float
// conversion. An entry of 0 (length 0) marks a slot no code reaches.
constexpr uint32_t kDecodeEntryLenMask = 31u;

// Bits of (float)s for 0 <= s < 2^24 (exact), computed without a float so it is constexpr.
constexpr uint32_t small_int_float_bits(uint32_t s) {
  if (s == 0) return 0;
  int e = 0;
  while ((s >> (e + 1)) != 0) ++e;
  return (uint32_t(127 + e) << 23) | ((s ^ (1u << e)) << (23 - e));
}
constexpr uint32_t decode_entry_gpu(uint32_t symbol, uint32_t len) {
  return small_int_float_bits(symbol) | len;
}
constexpr uint32_t decode_entry_gpu_len(uint32_t entry) {
  return entry & kDecodeEntryLenMask;
}
constexpr uint32_t decode_entry_gpu_value_bits(uint32_t entry) {
  return entry & ~kDecodeEntryLenMask;
}

}  // namespace kvcomp
