// One RoPE rotation (rotate_half convention) of the pair (a, b) = (x[f], x[f + head_dim/2]) of a
// head at position p: shared by rope_kernel and the fp16 cache's fused decode append, so that
// both give the same bits.
#pragma once

namespace kvcomp {

__device__ __forceinline__ void rope_rotate(float p, float inv_freq_f, float& a, float& b) {
  const float angle = p * inv_freq_f;  // fp32 product, as the CPU twin and HF do
  float s, c;
  sincosf(angle, &s, &c);
  const float ra = a * c - b * s, rb = b * c + a * s;
  a = ra;
  b = rb;
}

}  // namespace kvcomp
