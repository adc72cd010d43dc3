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
//   [params, by kind:
//      kKBlock:    none (the block's step and offset sit in the header)
//      kKChannel:  head_dim x QuantParams16 {fp16 d, int16 m0}, one per channel
//      kV:         n_tokens x QuantParams16, one per token
//      kVCompact:  n_tokens x QuantParams8 {uint8 e, int8 m0}, one per token, interleaved:
//                  token t's pair is the 16-bit word at byte 2t (a token's two bytes are
//                  adjacent: a warp's 32 tokens read 64 contiguous bytes); zero-padded to a
//                  multiple of 4]
//   [payload: the units back to back; zero-padded to a multiple of 4, then kPayloadSlackBytes
//    zero bytes so a GPU thread may load one aligned 32-bit word past the last unit]
// A unit is decodable on its own: K (both kinds): one unit per token, its head_dim symbols in
// channel order; V (both kinds): one unit per channel, its n_tokens symbols in token order.
// Within a unit the canonical Huffman codes are written MSB-first (the first code starts at bit 7
// of the unit's first byte); every unit starts on a byte boundary, its last byte is zero-padded.
// Unit u starts at payload + sum(len[0..u)) (a prefix sum: one warp scan on a GPU).
//
// Compact V parameters (kind kVCompact): 16 bits per token instead of 32. Token t's step is
//   d_t = v_compact_step(b, e_t) = (b * kVStepTable.frac[e_t % 32]) * 2^-(e_t / 32)
// where b = BlockHeader::d (the block's base step, fp32) and frac[j] = 2^(-j/32) rounded to fp32:
// one rounded fp32 multiply, then an exact scaling by a power of two (b >= 2^-24 and e_t <= 255
// keep d_t a normal fp32), so the CPU and the GPU compute the same d_t (no exp2f, whose last bit
// differs between them). x' = (s + m0_t) * d_t as for every kind. The encoder, asked for
// kVCompact, computes each token's step d as for kV (quantize.h), then
//   b    = the largest d over the block's non-constant tokens (an fp16 value; 1 if none),
//   e_t  = the smallest code with v_compact_step(b, e_t) <= d (v_compact_code): the step only
//          shrinks, so |x - x'| <= d_t / 2 <= d / 2 still holds,
//   m0_t = rintf(min_t / d_t);
// a constant token whose value rounds to fp16 zero gets (e, m0) = (0, 0). It writes a kV block
// instead when some token needs e_t > 255 (steps spread over more than 8 octaves), m0_t outside
// int8, a symbol above the codebook's alphabet with d_t, or is constant with a nonzero value (kV
// stores that value's fp16 exactly). A symbol can reach 2^(1/32) / eb: quant_max_symbol(eb,
// kVCompact) is the alphabet that leaves room for it.
//
// Raw block (mode kRaw): the fallback for data the quantizer or the unit index cannot hold.
//   [BlockHeader][fp16 values, [n_tokens, head_dim] row-major; zero-padded to a multiple of 4]
// A raw V block records kind kV (never kVCompact: it has no params).
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
  kKChannel = 2,  // K, one (d, m0) per channel within the block (params: QuantParams16)
  kV = 3,         // V, one (d, m0) per token (params: QuantParams16)
  kVCompact = 4,  // V, one (e, m0) per token (params: QuantParams8), d from the header's base.
                  // As an encoder request (EncodeJob::kind, encode_block_ref's kind): "V, compact
                  // when every token allows it", which writes kV blocks otherwise.
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
  float d;                 // kKBlock Huffman: the step, an fp16 value held as fp32;
                           // kVCompact: the base step b of the token steps (an fp16 value);
                           // else 0
  int32_t m0;              // kKBlock Huffman: rintf(min / d); else 0
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

// Compact parameters of one V token (kVCompact): step v_compact_step(b, e), offset m0.
struct QuantParams8 {
  uint8_t e;  // step code: d = b * 2^(-e/32) (v_compact_step)
  int8_t m0;  // rintf(min / d)
};
static_assert(sizeof(QuantParams8) == 2, "QuantParams8 is 2 bytes");

// 2^(-j/32) for j = 0..31, each the fp32 value nearest to it (exact hex literals): the fractional
// octave steps of v_compact_step. Kernels read a __constant__ copy (format_cuda.cuh).
struct VStepTable {
  float frac[32];
};
constexpr VStepTable kVStepTable = {{
    0x1.000000p+0f, 0x1.f50766p-1f, 0x1.ea4afap-1f, 0x1.dfc974p-1f,  // j = 0..3
    0x1.d5818ep-1f, 0x1.cb720ep-1f, 0x1.c199bep-1f, 0x1.b7f770p-1f,  // 4..7
    0x1.ae89fap-1f, 0x1.a5503cp-1f, 0x1.9c4918p-1f, 0x1.93737cp-1f,  // 8..11
    0x1.8ace54p-1f, 0x1.82589ap-1f, 0x1.7a1148p-1f, 0x1.71f75ep-1f,  // 12..15
    0x1.6a09e6p-1f, 0x1.6247ecp-1f, 0x1.5ab07ep-1f, 0x1.5342b6p-1f,  // 16..19
    0x1.4bfdaep-1f, 0x1.44e086p-1f, 0x1.3dea64p-1f, 0x1.371a74p-1f,  // 20..23
    0x1.306fe0p-1f, 0x1.29e9e0p-1f, 0x1.2387a6p-1f, 0x1.1d4874p-1f,  // 24..27
    0x1.172b84p-1f, 0x1.11301ep-1f, 0x1.0b5586p-1f, 0x1.059b0ep-1f,  // 28..31
}};
constexpr uint32_t kVCompactMaxCode = 255;  // e is a byte: 8 octaves below the base step

// The step of compact code e under base step b (b a positive normal-or-subnormal fp16 value, e
// <= 255): (b * frac[e % 32]) rounded to fp32, then times 2^-(e / 32), exact (the result is a
// normal fp32). Two fp32 multiplies and no add, so no FMA can be contracted; the same bits on
// every IEEE host and on the GPU. tab: kVStepTable (host) or its device copy.
constexpr float v_compact_step(float b, uint32_t e, const VStepTable& tab) {
  return (b * tab.frac[e & 31u]) * (float(1u << (7u - (e >> 5))) * 0x1p-7f);
}

// The smallest code e whose step v_compact_step(b, e) is <= d (d > 0): the largest compact step
// that does not exceed d. kVCompactMaxCode + 1 when even code 255 is above d. v_compact_step is
// non-increasing in e, so a binary search over the 256 codes finds it (8 steps).
constexpr uint32_t v_compact_code(float b, float d, const VStepTable& tab) {
  if (v_compact_step(b, kVCompactMaxCode, tab) > d) return kVCompactMaxCode + 1u;
  uint32_t lo = 0, hi = kVCompactMaxCode;  // v_compact_step(b, hi) <= d
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2u;
    if (v_compact_step(b, mid, tab) <= d) {
      hi = mid;
    } else {
      lo = mid + 1u;
    }
  }
  return lo;
}

// The value of finite fp16 bits h, exactly, with integer and exact fp32 operations only (no fp16
// hardware, no bit cast), so it is constexpr and the same on the host and the GPU.
constexpr float fp16_finite_value(uint16_t h) {
  const uint32_t ex = (uint32_t(h) >> 10) & 31u, man = uint32_t(h) & 1023u;
  const float mag = ex == 0 ? float(man) * 0x1p-24f                               // subnormal
                            : float(man | 1024u) * (float(1u << ex) * 0x1p-25f);  // normal
  return (h & 0x8000u) ? -mag : mag;
}

constexpr uint32_t round_up4(uint32_t n) {
  return (n + 3u) & ~3u;
}

constexpr bool block_kind_valid(uint8_t kind) {
  return kind >= 1 && kind <= 4;
}
constexpr bool block_kind_is_v(BlockKind kind) {
  return kind == BlockKind::kV || kind == BlockKind::kVCompact;
}
// The kind whose block is the largest that an encoder asked for `kind` may write (kVCompact
// requests may fall back to kV): what memory for a block must be sized for.
constexpr BlockKind block_kind_widest(BlockKind kind) {
  return kind == BlockKind::kVCompact ? BlockKind::kV : kind;
}

// Units per block: K (both kinds) one per token, V (both kinds) one per channel.
constexpr uint32_t block_n_units(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return block_kind_is_v(kind) ? head_dim : n_tokens;
}
// Symbols per unit.
constexpr uint32_t block_unit_symbols(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return block_kind_is_v(kind) ? n_tokens : head_dim;
}
// Entries of the params section: QuantParams16 (kKChannel, kV) or QuantParams8 (kVCompact).
constexpr uint32_t block_n_params(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return block_kind_is_v(kind) ? n_tokens : kind == BlockKind::kKChannel ? head_dim : 0u;
}
// Bytes of one params entry.
constexpr uint32_t block_param_bytes(BlockKind kind) {
  return kind == BlockKind::kVCompact ? uint32_t(sizeof(QuantParams8))
                                      : uint32_t(sizeof(QuantParams16));
}
// Bytes of the params entries (without the section's padding to 4).
constexpr uint32_t block_params_bytes(BlockKind kind, uint32_t n_tokens, uint32_t head_dim) {
  return block_param_bytes(kind) * block_n_params(kind, n_tokens, head_dim);
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
         round_up4(block_params_bytes(kind, n_tokens, head_dim));
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

// The step and offset of one quantization group, as the decoders use them.
struct GroupParams {
  float d;
  int32_t m0;
};

// Entry i of the params section at `params` of a kKChannel, kV or kVCompact block: channel i's
// (kKChannel) or token i's (V) step and offset. header_d: BlockHeader::d (kVCompact's base step);
// tab: kVStepTable, or its device copy in a kernel. Byte reads (no alignment or aliasing
// assumptions), so the CPU decoder, the GPU decoder and the fused attention kernel share it.
constexpr GroupParams block_param(BlockKind kind, float header_d, const uint8_t* params, uint32_t i,
                                  const VStepTable& tab) {
  if (kind == BlockKind::kVCompact) {
    const uint8_t* p = params + 2u * i;
    return GroupParams{v_compact_step(header_d, p[0], tab), int32_t(int8_t(p[1]))};
  }
  const uint8_t* p = params + 4u * i;
  return GroupParams{fp16_finite_value(uint16_t(p[0] | (uint32_t(p[1]) << 8))),
                     int32_t(int16_t(uint16_t(p[2] | (uint32_t(p[3]) << 8))))};
}

// Token t's step and offset in the Huffman V block (kind kV or kVCompact) that starts at
// `block`, whose header is h.
constexpr GroupParams v_token_params(const BlockHeader& h, const uint8_t* block, uint32_t t,
                                     const VStepTable& tab) {
  const BlockKind kind = BlockKind(h.kind);
  return block_param(kind, h.d, block + block_params_offset(kind, h.n_tokens, h.head_dim), t, tab);
}

constexpr uint32_t raw_block_values_offset() {
  return uint32_t(sizeof(BlockHeader));
}
constexpr uint32_t raw_block_bytes(uint32_t n_tokens, uint32_t head_dim) {
  return raw_block_values_offset() + round_up4(2u * n_tokens * head_dim);
}
// The largest block the encoders can produce for a shape, for reserving compressed-block memory:
// a Huffman unit holds at most min(kMaxUnitBytes, ceil(unit_symbols * kMaxCodeLen / 8)) bytes (a
// longer unit makes the block raw); a raw block holds the fp16 values. `request` is the kind
// the encoder is asked for (kVCompact is sized as kV, its fallback).
constexpr uint32_t worst_case_block_bytes(BlockKind request, uint32_t n_tokens, uint32_t head_dim) {
  const BlockKind kind = block_kind_widest(request);
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
