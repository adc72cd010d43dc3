// fp16 and bf16 <-> fp32 on the CPU, bit-exact with the GPU's round-to-nearest-even conversions.
#pragma once

#include <cstdint>
#include <cstring>

namespace kvcomp {

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_to_float(uint16_t h) {
  return bits_to_float(uint32_t(h) << 16);
}

inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24.
    float f = float(mant) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));
  return bits_to_float(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t float_to_fp16(float f) {
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);   // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: Inf
  if (a < 0x38800000u) {
    // Result is subnormal or zero: round a * 2^24 to an integer, ties to even.
    const float v = bits_to_float(a) * 16777216.0f;  // exact scaling by a power of two
    uint32_t i = uint32_t(v);
    const float frac = v - float(i);
    if (frac > 0.5f || (frac == 0.5f && (i & 1u))) ++i;
    return uint16_t(sign | i);
  }
  // Normal: rebias exponent, round 23-bit mantissa to 10 bits, ties to even.
  uint32_t r = a - 0x38000000u;  // exponent - 112
  r += 0xfffu + ((r >> 13) & 1u);
  return uint16_t(sign | (r >> 13));
}

inline float round_fp16(float f) {
  return fp16_to_float(float_to_fp16(f));
}
inline float round_bf16(float f) {
  return bf16_to_float(float_to_bf16(f));
}

}  // namespace kvcomp
