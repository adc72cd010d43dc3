// Fixed-bit KV quantization: the baselines kvcomp is compared with (--kv kivi2, kivi4, int8,
// fp8). CUDA-free: the CPU cache uses these functions; the GPU cache
// (compress/kv_cache_fixedbit_cuda.cu) repeats them operation for operation (IEEE fp32, one
// rounding per operation, no fused multiply-add, round-to-nearest-even fp16) and is tested
// bit-exact against them.
//
// A block holds n_tokens x head_dim values of one (layer, sequence, KV head), in one of three
// schemes; every scale and zero point is an fp16 value and quantization uses the stored (fp16)
// scale and zero, so dequantizing the block's bytes gives exactly what the quantizer meant.
//
// - Asymmetric b-bit (kChannelBlock, kTokenGroups), b in {2, 4, 8}, L = 2^b - 1. For a group of
//   values with range [mn, mx]:
//     z = fp16(mn)                          (nearest even; = mn for the cache's fp16 inputs)
//     s = fp16_up(min((mx - mn) / L, 65504)) (fp32 subtraction and division, then the smallest
//                                             fp16 >= it: L * s covers the range even when s
//                                             is an fp16 subnormal)
//     q = clamp(rint((x - z) / s), 0, L)    (q = 0 when s == 0)
//     x' = fp16(float(q) * s + z)           (fp32 product and sum, then nearest even)
//   so |x - x'| <= s/2 (+ the fp32 and fp16 roundings of x') for x in [mn, mx]. KIVI stores
//   its scale rounded to nearest; rounding up costs at most 2^-10 of a step and keeps the bound.
//   kChannelBlock (KIVI's K): one group per channel across the block's tokens (block_k).
//   kTokenGroups (KIVI's V, int8): one group per token per `group` consecutive channels.
// - fp8 e4m3 (kFp8Block): one scale per block, s = fp16(max|x| / 448); code = e4m3(x / s) (round
//   to nearest even, saturating at +-448); x' = fp16(e4m3_to_float(code) * s). s == 0 (an
//   all-zero block, or max|x| < 2^-25 * 448): codes 0, x' = 0.
//
// Block layout (the same bytes on the CPU and the GPU): the fp16 parameters, then the codes.
//   kChannelBlock: params [head_dim] x {scale, zero}; kTokenGroups: [n_tokens][groups] x {scale,
//   zero}; kFp8Block: [1] scale. Codes: row-major [n_tokens][head_dim], b bits each, code i in
//   byte i*b/8 at bit (i*b)%8 (least significant first); e4m3 codes are one byte each.
// Byte accounting: codes -> CodecBytes::payload, parameters -> CodecBytes::params; nothing else
// (no headers, index or codebooks), so bits per value = b + 32 / (values per scale/zero pair), or
// for fp8 8 + 16 / (values per block).
//
// Non-finite inputs are not special-cased (these formats have no raw fallback): a block with a
// NaN or Inf may dequantize to non-finite values.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "compress/accounting.h"
#include "runtime/kv_options.h"

#ifdef __CUDACC__
#define KVCOMP_FB_HD __host__ __device__
#else
#define KVCOMP_FB_HD
#endif

namespace kvcomp {

enum class FixedBitScheme : uint8_t {
  kChannelBlock = 0,  // asymmetric b bits, one (scale, zero) per channel per block
  kTokenGroups = 1,   // asymmetric b bits, one (scale, zero) per token per group of channels
  kFp8Block = 2,      // e4m3, one scale per block
};

// How one part (K or V) of a fixed-bit cache is stored.
struct FixedBitFormat {
  FixedBitScheme scheme = FixedBitScheme::kTokenGroups;
  int bits = 8;   // code bits: 2, 4 or 8 (8 for kFp8Block)
  int group = 0;  // kTokenGroups: channels per group (divides head_dim)

  // fp16 parameters of a block of n_tokens x head_dim values.
  int64_t n_params(int n_tokens, int head_dim) const;
  int64_t param_bytes(int n_tokens, int head_dim) const { return 2 * n_params(n_tokens, head_dim); }
  int64_t code_bytes(int n_tokens, int head_dim) const {
    return (int64_t(n_tokens) * head_dim * bits + 7) / 8;
  }
  int64_t block_bytes(int n_tokens, int head_dim) const {
    return param_bytes(n_tokens, head_dim) + code_bytes(n_tokens, head_dim);
  }
  // "2-bit per channel (64 tok)", "2-bit per token (32 ch)", "e4m3 (scale per 64 tok)".
  std::string describe(int n_tokens, int head_dim) const;
};

struct FixedBitFormats {
  FixedBitFormat k, v;
};

// The K and V formats of a fixed-bit --kv mode for a model with this head_dim:
//   kivi2/kivi4: K kChannelBlock (one group per channel per block_k tokens), V kTokenGroups with
//                quant_group channels (0: head_dim);
//   int8:        K and V kTokenGroups of head_dim channels (per token and KV head), 8 bits;
//   fp8:         K and V kFp8Block (one scale per block_k / block_v tokens and KV head).
// Throws Error for another mode, or when quant_group does not divide head_dim.
FixedBitFormats fixedbit_formats(const KvOptions& o, int head_dim);

// Accounting of n_blocks blocks of n_tokens x head_dim values: payload (codes) and params.
CodecBytes fixedbit_block_bytes(const FixedBitFormat& f, int n_tokens, int head_dim,
                                uint64_t n_blocks);

// ---- fp8 e4m3 (OCP E4M3FN: bias 7, no infinities, 0x7f / 0xff NaN, largest finite 448) ----

namespace fb_detail {
KVCOMP_FB_HD inline uint32_t bits_of(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
KVCOMP_FB_HD inline float float_of(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
}  // namespace fb_detail

// fp32 -> e4m3, round to nearest even; finite values beyond 448 and +-Inf saturate to +-448;
// NaN -> 0x7f with the sign. Every step is exact integer or power-of-two arithmetic, so the CPU
// and the GPU agree bit for bit; on every non-NaN fp32 input it equals CUDA's
// __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) (checked exhaustively on the host, and
// on the GPU by tests/test_fixedbit_gpu.cpp).
KVCOMP_FB_HD inline uint8_t float_to_e4m3(float x) {
  const uint32_t u = fb_detail::bits_of(x);
  const uint8_t sign = uint8_t((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint8_t(sign | 0x7fu);   // NaN
  if (a >= 0x43e00000u) return uint8_t(sign | 0x7eu);  // >= 448 (and Inf): 448
  if (a < 0x3c800000u) {
    // Below 2^-6: subnormal codes m * 2^-9, m = 0..8 (8 is the smallest normal, code 0x08).
    // a * 512 is exact; rint rounds ties to even.
    const float m = rintf(fb_detail::float_of(a) * 512.0f);
    return uint8_t(sign | uint32_t(m));
  }
  // Normal: rebias the exponent (127 -> 7) and round the 23-bit mantissa to 3 bits, ties to
  // even; a carry into the exponent is the correct rounding. a < 448 rounds to at most 448.
  uint32_t r = a - (uint32_t(120) << 23);
  r += 0x7ffffu + ((r >> 20) & 1u);
  return uint8_t(sign | (r >> 20));
}

KVCOMP_FB_HD inline float e4m3_to_float(uint8_t c) {
  const uint32_t sign = uint32_t(c & 0x80u) << 24;
  const uint32_t e = (c >> 3) & 0xfu, m = c & 7u;
  if (e == 15 && m == 7) return fb_detail::float_of(sign | 0x7fc00000u);  // NaN
  if (e == 0) return fb_detail::float_of(sign | fb_detail::bits_of(float(m) * 0.001953125f));
  return fb_detail::float_of(sign | ((e + 120) << 23) | (m << 20));
}

// ---- the quantizers (CPU reference) ----

// Scale and zero of an asymmetric group (fp16 bits), from its range.
struct AffineParams {
  uint16_t scale = 0;
  uint16_t zero = 0;
};
AffineParams affine_params(float mn, float mx, int bits);
// The smallest fp16 value >= t (0 <= t <= 65504), as bits.
uint16_t fp16_round_up(float t);
// q = clamp(rint((x - z) / s), 0, 2^bits - 1); s, z: the fp16 parameters as fp32.
uint32_t affine_code(float x, float s, float z, int bits);
// fp16(float(q) * s + z), returned as fp32.
float affine_value(uint32_t q, float s, float z);
// The fp8 block scale (fp16 bits) of a block whose largest magnitude is amax.
uint16_t fp8_scale(float amax);
// e4m3(x / s) (0 when s == 0), and fp16(e4m3_to_float(c) * s).
uint8_t fp8_code(float x, float s);
float fp8_value(uint8_t c, float s);

// Quantizes one block: x holds n_tokens rows of head_dim values, row_stride floats apart; out
// receives f.block_bytes(n_tokens, head_dim) bytes.
void fixedbit_quantize_ref(const FixedBitFormat& f, const float* x, int n_tokens, int head_dim,
                           int64_t row_stride, uint8_t* out);
// Dequantizes one block into out (rows row_stride floats apart): fp16 values as fp32.
void fixedbit_dequantize_ref(const FixedBitFormat& f, const uint8_t* block, int n_tokens,
                             int head_dim, float* out, int64_t row_stride);

// Code i of a packed code array of b-bit codes.
inline uint32_t fixedbit_code_at(const uint8_t* codes, int64_t i, int bits) {
  const int64_t bit = i * bits;
  return (uint32_t(codes[bit >> 3]) >> (bit & 7)) & ((1u << bits) - 1u);
}

}  // namespace kvcomp
