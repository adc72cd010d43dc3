// The 16-bit activation types on the device: conversions from and to float, and the dispatch of
// a DType to its C++ type. For .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "models/safetensors.h"  // DType
#include "runtime/error.h"

namespace kvcomp {

__device__ __forceinline__ float to_f(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float to_f(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Calls f with a null pointer of the C++ type of t (kF16: __half, kBF16: __nv_bfloat16); any
// other type is an error naming `what`.
template <typename F>
void dispatch16(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::kF16:
      f(static_cast<__half*>(nullptr));
      return;
    case DType::kBF16:
      f(static_cast<__nv_bfloat16*>(nullptr));
      return;
    default:
      fail(what, " must be F16 or BF16, got ", dtype_name(t));
  }
}

}  // namespace kvcomp
