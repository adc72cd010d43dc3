#include "compress/kv_ring_cuda.h"

#include <cuda_fp16.h>

#include "runtime/cuda_check.h"

namespace kvcomp {
namespace {

__global__ void ring_append_kernel(const float* qkv, int64_t row_stride, int k_col, int v_col,
                                   const int* seq, const int* pos, int n_kv, int hd, int cap_k,
                                   int cap_v, __half* ring_k, __half* ring_v) {
  const int64_t row = blockIdx.x;
  const int s = seq[row], p = pos[row];
  const float* src = qkv + row * row_stride;
  for (int e = blockIdx.y * blockDim.x + threadIdx.x; e < n_kv * hd; e += gridDim.y * blockDim.x) {
    const int g = e / hd, c = e % hd;
    const int64_t head = int64_t(s) * n_kv + g;
    ring_k[(head * cap_k + p % cap_k) * hd + c] = __float2half_rn(src[k_col + e]);
    ring_v[(head * cap_v + p % cap_v) * hd + c] = __float2half_rn(src[v_col + e]);
  }
}

// Tokens [from_k|v[s], end) of each chunk's sequence s between its rings (slot t % cap_k|v) and
// the chunk's scratch rows (row t): into the scratch, or back into the rings when kToRing. end:
// chunk_end[chunk] when given, else len[s].
template <bool kToRing>
__global__ void window_kernel(const int* chunk_seq, int n_kv, int hd, const int* len,
                              const int* chunk_end, const int* from_k, const int* from_v,
                              __half* ring_k, __half* ring_v, int cap_k, int cap_v,
                              __half* scratch_k, __half* scratch_v, int cap) {
  const int chunk = blockIdx.y, g = blockIdx.z;
  const int s = chunk_seq[chunk];
  const int64_t head = int64_t(s) * n_kv + g;
  const int64_t row0 = (int64_t(chunk) * n_kv + g) * cap;
  const int lo = min(from_k[s], from_v[s]), n = chunk_end ? chunk_end[chunk] : len[s];
  for (int64_t e = int64_t(lo) * hd + blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
       e < int64_t(n) * hd; e += int64_t(gridDim.x) * blockDim.x) {
    const int t = int(e / hd), c = int(e % hd);
    __half* rk = ring_k + (head * cap_k + t % cap_k) * hd + c;
    __half* rv = ring_v + (head * cap_v + t % cap_v) * hd + c;
    __half* sk = scratch_k + (row0 + t) * hd + c;
    __half* sv = scratch_v + (row0 + t) * hd + c;
    if constexpr (kToRing) {
      if (t >= from_k[s]) *rk = *sk;
      if (t >= from_v[s]) *rv = *sv;
    } else {
      if (t >= from_k[s]) *sk = *rk;
      if (t >= from_v[s]) *sv = *rv;
    }
  }
}

__global__ void scratch_append_kernel(const float* qkv, int64_t row_stride, int k_col, int v_col,
                                      const int* row_chunk, const int* pos, int n_kv, int hd,
                                      __half* scratch_k, __half* scratch_v, int cap) {
  const int64_t row = blockIdx.x;
  const int chunk = row_chunk[row], p = pos[row];
  const float* src = qkv + row * row_stride;
  for (int e = blockIdx.y * blockDim.x + threadIdx.x; e < n_kv * hd; e += gridDim.y * blockDim.x) {
    const int g = e / hd, c = e % hd;
    const int64_t at = ((int64_t(chunk) * n_kv + g) * cap + p) * hd + c;
    scratch_k[at] = __float2half_rn(src[k_col + e]);
    scratch_v[at] = __float2half_rn(src[v_col + e]);
  }
}

__global__ void iota_kernel(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i;
}

}  // namespace

void ring_append_cuda(const CudaContext& ctx, const QkvView& x, const StepLayout& step, int n_kv,
                      int head_dim, int cap_k, int cap_v, void* ring_k, void* ring_v) {
  if (step.n_tokens == 0) return;
  ring_append_kernel<<<dim3(step.n_tokens, row_copy_blocks(n_kv * head_dim)), 256, 0,
                       ctx.stream()>>>(x.qkv, x.row_stride, x.k_col, x.v_col, step.seq, step.pos,
                                       n_kv, head_dim, cap_k, cap_v, static_cast<__half*>(ring_k),
                                       static_cast<__half*>(ring_v));
  KVCOMP_LAUNCH_CHECK();
}

void ring_window_copy_cuda(const CudaContext& ctx, const int* chunk_seq, int n_chunks, int n_kv,
                           int head_dim, const int* len, const int* chunk_end, const int* done_k,
                           const int* done_v, const void* ring_k, const void* ring_v, int cap_k,
                           int cap_v, void* scratch_k, void* scratch_v, int cap) {
  if (n_chunks == 0) return;
  window_kernel<false><<<dim3(8, n_chunks, n_kv), 256, 0, ctx.stream()>>>(
      chunk_seq, n_kv, head_dim, len, chunk_end, done_k, done_v,
      const_cast<__half*>(static_cast<const __half*>(ring_k)),
      const_cast<__half*>(static_cast<const __half*>(ring_v)), cap_k, cap_v,
      static_cast<__half*>(scratch_k), static_cast<__half*>(scratch_v), cap);
  KVCOMP_LAUNCH_CHECK();
}

void scratch_append_cuda(const CudaContext& ctx, const QkvView& x, const StepLayout& step,
                         const int* row_chunk, int n_kv, int head_dim, void* scratch_k,
                         void* scratch_v, int cap) {
  if (step.n_tokens == 0) return;
  scratch_append_kernel<<<dim3(step.n_tokens, row_copy_blocks(n_kv * head_dim)), 256, 0,
                          ctx.stream()>>>(x.qkv, x.row_stride, x.k_col, x.v_col, row_chunk,
                                          step.pos, n_kv, head_dim, static_cast<__half*>(scratch_k),
                                          static_cast<__half*>(scratch_v), cap);
  KVCOMP_LAUNCH_CHECK();
}

void ring_from_scratch_cuda(const CudaContext& ctx, const int* chunk_seq, int n_chunks, int n_kv,
                            int head_dim, const int* len, const int* from_k, const int* from_v,
                            const void* scratch_k, const void* scratch_v, int cap, void* ring_k,
                            void* ring_v, int cap_k, int cap_v) {
  if (n_chunks == 0) return;
  window_kernel<true><<<dim3(4, n_chunks, n_kv), 256, 0, ctx.stream()>>>(
      chunk_seq, n_kv, head_dim, len, nullptr, from_k, from_v, static_cast<__half*>(ring_k),
      static_cast<__half*>(ring_v), cap_k, cap_v,
      const_cast<__half*>(static_cast<const __half*>(scratch_k)),
      const_cast<__half*>(static_cast<const __half*>(scratch_v)), cap);
  KVCOMP_LAUNCH_CHECK();
}

void iota_cuda(const CudaContext& ctx, int* out, int n) {
  if (n == 0) return;
  iota_kernel<<<(n + 255) / 256, 256, 0, ctx.stream()>>>(out, n);
  KVCOMP_LAUNCH_CHECK();
}

}  // namespace kvcomp
