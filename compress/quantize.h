// Error-bounded quantization of KV blocks (CPU reference; the GPU encoder repeats these steps
// operation for operation, so every step is one IEEE fp32 operation: true division, rintf (ties to
// even), no fused multiply-add, fp16 conversions bit-exact with the GPU's).
//
// For a group of values with range [mn, mx] and relative bound eb:
//   t  = eb * (mx - mn)                       (fp32)
//   d  = the largest fp16 value <= t          (round to nearest fp16, one ulp down if that went
//                                              above t; = __float2half_rd(t) for t > 0)
//   m0 = (int)rintf(mn / d)
//   s  = (int)rintf(x / d) - m0               (0 <= s; s <= S(eb), see quant_max_symbol)
//   x' = (float)(s + m0) * d
// so |x - x'| <= d/2 + fp32 rounding (|x| * 2^-23 at most) and d <= eb * (mx - mn).
// A constant group (mx == mn) gets d = fp16(|mn|) (nearest), m0 = sign(mn), all symbols 0, so
// x' = mn rounded to fp16; mn == 0 (or |mn| below the smallest fp16) gets d = 1, m0 = 0, x' = 0.
// A group is not quantizable (RawReason::kStep) when d is 0 or Inf, when |mn/d| or |mx/d| exceeds
// kQuantMaxRatio (then (float)(s + m0) would no longer be exact and the fp32 error of x/d would
// matter), or when m0 must fit int16 and does not. Inputs that come from an fp16 or bf16 cache
// never hit the ratio limit for eb >= 2^-9: their range is at least one ulp >= 2^-11 |x|.
//
// V blocks asked for in compact form (BlockKind::kVCompact) then replace each token's (d, m0) by
// the compact (d_t, m0_t) of format.h (d_t <= d, so the bound above still holds with d_t), or
// keep the kV form when one token does not allow it; steps in the same order on the GPU.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "compress/format.h"

namespace kvcomp {

// |x / d| limit of a quantizable group: 2^20, so |s + m0| <= 2^20 + 1 is exact in fp32 and the
// division's rounding error is at most 2^-4 of a step.
constexpr float kQuantMaxRatio = 1048576.0f;

// S(eb): the largest symbol a quantizable group with a normal fp16 step can produce.
// With d rounded down, t < d * (1 + 2^-10) (fp16 normal: ulp <= 2^-10 d); t >= eb * (mx - mn) *
// (1 - 2^-24)^2 (two fp32 roundings), so (mx - mn) / d < (1 + 2^-10)(1 + 2^-22) / eb. The two
// quotients mn/d and mx/d each carry an fp32 error <= 2^-4 (|x/d| <= 2^20) and the two rints
// add at most 1 to the difference: s_max <= floor((1 + 2^-10)(1 + 2^-22) / eb + 1 + 2^-3).
// eb 0.01 -> 101, 0.02 -> 51, 0.05 -> 21, 0.1 -> 11, 0.2 -> 6, 0.5 -> 3.
// A subnormal-fp16 step can exceed it; such a group's block goes raw (RawReason::kSymbols).
// Throws Error when eb is not finite and positive or S(eb) > 255.
int quant_max_symbol(float eb);
// The alphabet bound of blocks of a kind requested from the encoder: S(eb) above, except for
// kVCompact, whose token steps can be up to 2^(1/32) (1 + 2^-21) smaller than the kV ones:
// floor((1 + 2^-10)(1 + 2^-22)(1 + 2^-21) 2^(1/32) / eb + 1 + 2^-3), capped at 255 (a token
// whose symbols would exceed the cap keeps its block in the kV form). eb 0.01 -> 103,
// 0.02 -> 52, 0.05 -> 21, 0.1 -> 11, 0.2 -> 6. Throws as quant_max_symbol(eb).
int quant_max_symbol(float eb, BlockKind kind);

// The step and offset of one group.
struct QuantStep {
  float d = 1.0f;  // an fp16 value, > 0
  int32_t m0 = 0;
};

// The largest fp16 value <= t (t >= 0, not NaN), as fp16 bits; t >= 65520 gives 65504.
uint16_t fp16_round_down(float t);

// fp32 -> fp16 bits for raw blocks: round to nearest even like float_to_fp16 (runtime/half.h),
// but a NaN keeps its sign and the top 10 bits of its payload (quiet bit set when they are all
// zero), so an fp16 NaN survives fp16 -> fp32 -> raw block unchanged.
uint16_t fp16_from_float_raw(float x);

// Step for a group with range [mn, mx] (finite, mn <= mx). Returns kNone and fills *step, or
// kStep when the group is not quantizable. int16_m0: m0 must fit int16 (params stored as
// QuantParams16).
RawReason quant_group_step(float mn, float mx, float eb, bool int16_m0, QuantStep* step);

inline int32_t quant_symbol(float x, const QuantStep& st) {
  return int32_t(rintf(x / st.d)) - st.m0;
}
inline float dequant_value(int32_t s, const QuantStep& st) {
  return float(s + st.m0) * st.d;
}

// One block of one KV head in quantized form: what a block holds, before Huffman coding.
struct QuantBlock {
  BlockKind kind = BlockKind::kKBlock;  // the block's kind (kV or kVCompact for V; kV when raw)
  int n_tokens = 0;
  int head_dim = 0;
  RawReason raw_reason = RawReason::kNone;  // != kNone: stored raw
  QuantStep k_step;                         // kKBlock
  float v_base = 0.0f;                      // kVCompact: the base step b (an fp16 value)
  std::vector<QuantParams16> params;        // [n_tokens] (kV) or [head_dim] (kKChannel)
  std::vector<QuantParams8> params8;        // [n_tokens] (kVCompact)
  std::vector<uint8_t> symbols;             // [n_tokens, head_dim]; empty when raw
  std::vector<uint16_t> raw_values;         // [n_tokens, head_dim] fp16 bits; only when raw

  bool raw() const { return raw_reason != RawReason::kNone; }
  // The step of the group that holds value (token, channel).
  QuantStep step_of(int token, int channel) const;
};

// Quantizes x [n_tokens, head_dim] (row t at x + t * row_stride) of kind `kind` with bound eb.
// kind is the request: kVCompact gives a kVCompact block when every token allows it, else kV
// (format.h). Symbols above max_symbol (the codebook's alphabet) make the block raw (kSymbols); a
// raw block holds the fp16 values of x. Throws Error on bad sizes or eb.
QuantBlock quantize_block(BlockKind kind, const float* x, int n_tokens, int head_dim,
                          size_t row_stride, float eb, int max_symbol);

// Writes the reconstruction [n_tokens, head_dim] (row t at out + t * out_stride): dequantized
// symbols, or the fp16 values of a raw block.
void dequantize_block(const QuantBlock& q, float* out, size_t out_stride);

// Adds the symbols of a Huffman (non-raw) block to hist[alphabet_size]; raw blocks add nothing.
// Throws Error if a symbol is outside the alphabet.
void histogram_add(const QuantBlock& q, uint64_t* hist, int alphabet_size);

}  // namespace kvcomp
