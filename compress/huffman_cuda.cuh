// Device-side Huffman decoding of KVComp units (compress/format.h): a per-thread bit reader over
// one unit and the L-bit table lookup, shared by the codec's decode kernels and the fused
// attention kernel. Header-only, __device__ __forceinline__; include from .cu files only.
//
// Bit reader contract (HuffmanBitReader):
//   init(unit)   unit: the unit's first byte (payload base + its offset; the payload is 4-byte
//                aligned). Loads the two aligned 32-bit words that hold the unit's first bytes:
//                afterwards 40..64 bits are valid.
//   refill()     if fewer than 32 bits are valid, loads the next aligned word: afterwards
//                32..63 bits are valid. One load at most.
//   peek(L)      the next L bits (MSB-first), right-aligned: the decode-table index.
//   consume(n)   drops n bits.
//   decode(table, L)   = table[peek(L)], consuming the entry's length; returns the entry.
// A lookup needs L valid bits, so after a refill floor(32 / L) symbols may be decoded before the
// next refill (huffman_symbols_per_refill): L <= 12: 2, <= 10: 3, <= 8: 4, <= 6: 5, 5: 6,
// 4: 8, 3: 10, 2: 16, 1: 32. huffman_decode_unit follows that schedule.
//
// Memory reads: the stream of a unit is read MSB-first from aligned words (little-endian words
// byte-swapped with __byte_perm). Refilling only while a symbol of the unit remains (as
// huffman_decode_unit does) never loads past the word after the one holding the unit's last
// byte: for the block's last unit that is the payload's slack word (kPayloadSlackBytes), so
// reads stay inside the block. The reader trusts the stream: a corrupt unit can make it read
// further. Bits loaded past the unit's end (the next unit, padding) only fill the tail of a
// lookup window, which prefix-free codes ignore.
//
// Table entries (format.h, decode_entry_gpu): __uint_as_float(e & ~31u) is the symbol as a float,
// e & 31u its code length; dequantization is one add and one multiply of exact fp32 operations:
//   x' = ((float)s + (float)m0) * d   (s + m0 is an integer below 2^21: the add is exact)
// equal to dequant_value() of compress/quantize.h bit for bit (huffman_dequant, no FMA).
#pragma once

#include <cstdint>

#include "compress/format.h"

namespace kvcomp {

__host__ __device__ constexpr int huffman_symbols_per_refill(int max_len) {
  return 32 / max_len;
}

// Big-endian view of a little-endian word: its first byte in bits 31..24.
__device__ __forceinline__ uint32_t huffman_bswap32(uint32_t w) {
  return __byte_perm(w, 0u, 0x0123u);
}

__device__ __forceinline__ uint32_t huffman_entry_len(uint32_t e) {
  return e & kDecodeEntryLenMask;
}
// The entry's symbol as a float (exact).
__device__ __forceinline__ float huffman_entry_symbol(uint32_t e) {
  return __uint_as_float(e & ~kDecodeEntryLenMask);
}
// ((float)s + m0) * d with m0 = (float)m0 of the group: the reference's dequant_value.
__device__ __forceinline__ float huffman_dequant(uint32_t e, float m0, float d) {
  return __fmul_rn(__fadd_rn(huffman_entry_symbol(e), m0), d);
}

struct HuffmanBitReader {
  const uint32_t* next;  // the next aligned word to load
  uint64_t buf;          // valid bits from bit 63 down; the bits below them are zero
  int n;                 // valid bits

  __device__ __forceinline__ void init(const uint8_t* unit) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(unit);
    const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~uintptr_t(3));
    const int skip = int(a & 3u) * 8;
    const uint64_t hi = huffman_bswap32(w[0]);
    const uint64_t lo = huffman_bswap32(w[1]);
    buf = ((hi << 32) | lo) << skip;
    n = 64 - skip;
    next = w + 2;
  }
  __device__ __forceinline__ void refill() {
    if (n < 32) {
      buf |= uint64_t(huffman_bswap32(*next++)) << (32 - n);
      n += 32;
    }
  }
  __device__ __forceinline__ uint32_t peek(int max_len) const {
    return uint32_t(buf >> (64 - max_len));
  }
  __device__ __forceinline__ void consume(int bits) {
    buf <<= bits;
    n -= bits;
  }
  // table: the codebook's decode table (2^max_len entries, shared memory for speed).
  __device__ __forceinline__ uint32_t decode(const uint32_t* table, int max_len) {
    const uint32_t e = table[peek(max_len)];
    consume(int(huffman_entry_len(e)));
    return e;
  }
};

// A decode table for L bits serves any L' >= L: entry'[i] = entry[i >> (L' - L)] (the extra bits
// only select among copies). Widening every codebook's table to a fixed L' (8 when L <= 8, else 12)
// lets a kernel fix L' at compile time, as the codec's decoder does.
__device__ __forceinline__ uint32_t huffman_widened_entry(const uint32_t* table, int max_len,
                                                          int wide_len, uint32_t i) {
  return table[i >> (wide_len - max_len)];
}

// Decodes the `count` symbols of the unit at `unit`, calling f(i, entry) for i = 0..count-1 in
// order, refilling before each run of huffman_symbols_per_refill(L) symbols. kMaxLen > 0 fixes L
// at compile time (runs unroll fully; the table must have 2^kMaxLen entries, widened if need be);
// kMaxLen == 0 takes max_len at run time.
template <int kMaxLen = 0, typename F>
__device__ __forceinline__ void huffman_decode_unit(const uint8_t* unit, int count,
                                                    const uint32_t* table, int max_len, F&& f) {
  HuffmanBitReader br;
  br.init(unit);
  if constexpr (kMaxLen > 0) {
    constexpr int kPer = huffman_symbols_per_refill(kMaxLen);
    int i = 0;
    for (; i + kPer <= count; i += kPer) {
      br.refill();
#pragma unroll
      for (int k = 0; k < kPer; ++k) f(i + k, br.decode(table, kMaxLen));
    }
    if (i < count) {
      br.refill();
      for (; i < count; ++i) f(i, br.decode(table, kMaxLen));
    }
  } else {
    const int per_refill = huffman_symbols_per_refill(max_len);
    for (int i = 0; i < count;) {
      br.refill();
      const int end = min(count, i + per_refill);
      for (; i < end; ++i) f(i, br.decode(table, max_len));
    }
  }
}

}  // namespace kvcomp
