// Fixed-bit KV quantizers, CPU reference (see the header for the math and the block layout).
// Compiled with -ffp-contract=off: float(q) * s + z must stay two roundings, as on the GPU.
#include "compress/fixedbit.h"

#include <cmath>
#include <vector>

#include "runtime/error.h"
#include "runtime/half.h"

namespace kvcomp {

namespace {

constexpr float kFp16Max = 65504.0f;
constexpr float kE4m3Max = 448.0f;

// min / max that keep the first of equal values and give +0 for a zero result, so that the
// order in which a GPU reduction visits the values cannot change the fp16 zero point's bits.
float lower(float a, float b) {
  return b < a ? b : a;
}
float upper(float a, float b) {
  return b > a ? b : a;
}

void put_fp16(uint8_t* p, uint16_t h) {
  p[0] = uint8_t(h & 0xffu);
  p[1] = uint8_t(h >> 8);
}
uint16_t get_fp16(const uint8_t* p) {
  return uint16_t(p[0] | (uint16_t(p[1]) << 8));
}

void pack_codes(const std::vector<uint8_t>& codes, int bits, uint8_t* out) {
  const int64_t n_bytes = (int64_t(codes.size()) * bits + 7) / 8;
  const int per = 8 / bits;
  for (int64_t i = 0; i < n_bytes; ++i) {
    uint32_t b = 0;
    for (int j = 0; j < per && i * per + j < int64_t(codes.size()); ++j)
      b |= uint32_t(codes[size_t(i * per + j)]) << (j * bits);
    out[i] = uint8_t(b);
  }
}

}  // namespace

int64_t FixedBitFormat::n_params(int n_tokens, int head_dim) const {
  switch (scheme) {
    case FixedBitScheme::kChannelBlock:
      return 2 * int64_t(head_dim);
    case FixedBitScheme::kTokenGroups:
      return 2 * int64_t(n_tokens) * (head_dim / group);
    case FixedBitScheme::kFp8Block:
      return 1;
  }
  return 0;
}

std::string FixedBitFormat::describe(int n_tokens, int head_dim) const {
  switch (scheme) {
    case FixedBitScheme::kChannelBlock:
      return std::to_string(bits) + "-bit per channel (" + std::to_string(n_tokens) + " tok)";
    case FixedBitScheme::kTokenGroups:
      return std::to_string(bits) + "-bit per token" +
             (group == head_dim ? std::string() : " (" + std::to_string(group) + " ch)");
    case FixedBitScheme::kFp8Block:
      return "e4m3 (scale per " + std::to_string(n_tokens) + " tok)";
  }
  return "?";
}

FixedBitFormats fixedbit_formats(const KvOptions& o, int head_dim) {
  FixedBitFormats f;
  switch (o.mode) {
    case KvMode::kKivi2:
    case KvMode::kKivi4: {
      const int bits = o.mode == KvMode::kKivi2 ? 2 : 4;
      const int group = o.quant_group == 0 ? head_dim : o.quant_group;
      check(group >= 1 && head_dim % group == 0, "--quant-group: ", o.quant_group,
            " channels do not divide the model's head_dim of ", head_dim);
      f.k = {FixedBitScheme::kChannelBlock, bits, 0};
      f.v = {FixedBitScheme::kTokenGroups, bits, group};
      break;
    }
    case KvMode::kInt8:
      f.k = {FixedBitScheme::kTokenGroups, 8, head_dim};
      f.v = f.k;
      break;
    case KvMode::kFp8:
      f.k = {FixedBitScheme::kFp8Block, 8, 0};
      f.v = f.k;
      break;
    default:
      fail("--kv ", kv_mode_name(o.mode), ": not a fixed-bit mode");
  }
  return f;
}

CodecBytes fixedbit_block_bytes(const FixedBitFormat& f, int n_tokens, int head_dim,
                                uint64_t n_blocks) {
  CodecBytes b;
  b.payload = n_blocks * uint64_t(f.code_bytes(n_tokens, head_dim));
  b.params = n_blocks * uint64_t(f.param_bytes(n_tokens, head_dim));
  b.n_values = n_blocks * uint64_t(n_tokens) * uint64_t(head_dim);
  b.n_blocks = n_blocks;
  return b;
}

uint16_t fp16_round_up(float t) {
  const uint16_t h = float_to_fp16(t);
  return fp16_to_float(h) < t ? uint16_t(h + 1) : h;
}

AffineParams affine_params(float mn, float mx, int bits) {
  const float levels = float((1 << bits) - 1);
  float step = (mx - mn) / levels;
  if (step > kFp16Max) step = kFp16Max;
  return {fp16_round_up(step), float_to_fp16(mn)};
}

uint32_t affine_code(float x, float s, float z, int bits) {
  if (s == 0.0f) return 0;
  const float r = rintf((x - z) / s);
  const float levels = float((1 << bits) - 1);
  if (!(r > 0.0f)) return 0;  // negative, zero or NaN
  return r > levels ? uint32_t(levels) : uint32_t(r);
}

float affine_value(uint32_t q, float s, float z) {
  const float p = float(q) * s;
  const float x = p + z;
  return round_fp16(x);
}

uint16_t fp8_scale(float amax) {
  return float_to_fp16(amax / kE4m3Max);
}

uint8_t fp8_code(float x, float s) {
  if (s == 0.0f) return 0;
  return float_to_e4m3(x / s);
}

float fp8_value(uint8_t c, float s) {
  const float x = e4m3_to_float(c) * s;
  return round_fp16(x);
}

void fixedbit_quantize_ref(const FixedBitFormat& f, const float* x, int n_tokens, int head_dim,
                           int64_t row_stride, uint8_t* out) {
  auto at = [&](int t, int c) { return x[int64_t(t) * row_stride + c]; };
  std::vector<uint8_t> codes(size_t(n_tokens) * head_dim);
  uint8_t* params = out;
  switch (f.scheme) {
    case FixedBitScheme::kChannelBlock:
      for (int c = 0; c < head_dim; ++c) {
        float mn = at(0, c), mx = at(0, c);
        for (int t = 1; t < n_tokens; ++t) mn = lower(mn, at(t, c)), mx = upper(mx, at(t, c));
        const AffineParams p = affine_params(mn + 0.0f, mx + 0.0f, f.bits);
        put_fp16(params + 4 * c, p.scale);
        put_fp16(params + 4 * c + 2, p.zero);
        const float s = fp16_to_float(p.scale), z = fp16_to_float(p.zero);
        for (int t = 0; t < n_tokens; ++t)
          codes[size_t(t) * head_dim + c] = uint8_t(affine_code(at(t, c), s, z, f.bits));
      }
      break;
    case FixedBitScheme::kTokenGroups: {
      const int groups = head_dim / f.group;
      for (int t = 0; t < n_tokens; ++t)
        for (int g = 0; g < groups; ++g) {
          const int c0 = g * f.group;
          float mn = at(t, c0), mx = at(t, c0);
          for (int c = c0 + 1; c < c0 + f.group; ++c)
            mn = lower(mn, at(t, c)), mx = upper(mx, at(t, c));
          const AffineParams p = affine_params(mn + 0.0f, mx + 0.0f, f.bits);
          uint8_t* pp = params + 4 * (int64_t(t) * groups + g);
          put_fp16(pp, p.scale);
          put_fp16(pp + 2, p.zero);
          const float s = fp16_to_float(p.scale), z = fp16_to_float(p.zero);
          for (int c = c0; c < c0 + f.group; ++c)
            codes[size_t(t) * head_dim + c] = uint8_t(affine_code(at(t, c), s, z, f.bits));
        }
      break;
    }
    case FixedBitScheme::kFp8Block: {
      float amax = 0.0f;
      for (int t = 0; t < n_tokens; ++t)
        for (int c = 0; c < head_dim; ++c) amax = upper(amax, std::fabs(at(t, c)));
      const uint16_t sh = fp8_scale(amax);
      put_fp16(params, sh);
      const float s = fp16_to_float(sh);
      for (int t = 0; t < n_tokens; ++t)
        for (int c = 0; c < head_dim; ++c) codes[size_t(t) * head_dim + c] = fp8_code(at(t, c), s);
      break;
    }
  }
  pack_codes(codes, f.bits, out + f.param_bytes(n_tokens, head_dim));
}

void fixedbit_dequantize_ref(const FixedBitFormat& f, const uint8_t* block, int n_tokens,
                             int head_dim, float* out, int64_t row_stride) {
  const uint8_t* codes = block + f.param_bytes(n_tokens, head_dim);
  for (int t = 0; t < n_tokens; ++t)
    for (int c = 0; c < head_dim; ++c) {
      const int64_t i = int64_t(t) * head_dim + c;
      float v = 0;
      switch (f.scheme) {
        case FixedBitScheme::kChannelBlock: {
          const float s = fp16_to_float(get_fp16(block + 4 * c));
          const float z = fp16_to_float(get_fp16(block + 4 * c + 2));
          v = affine_value(fixedbit_code_at(codes, i, f.bits), s, z);
          break;
        }
        case FixedBitScheme::kTokenGroups: {
          const uint8_t* pp = block + 4 * (int64_t(t) * (head_dim / f.group) + c / f.group);
          v = affine_value(fixedbit_code_at(codes, i, f.bits), fp16_to_float(get_fp16(pp)),
                           fp16_to_float(get_fp16(pp + 2)));
          break;
        }
        case FixedBitScheme::kFp8Block:
          v = fp8_value(codes[i], fp16_to_float(get_fp16(block)));
          break;
      }
      out[int64_t(t) * row_stride + c] = v;
    }
}

}  // namespace kvcomp
