// The uncompressed fp16 KV cache. Its decode steps attend with the flash-decoding kernel of
// attention_decode.h, or (--kv fp16-cublas) with the baseline decode attention the paper
// compares with: scores = Q K^T and out = P V as cuBLAS batched GEMMs (fp16 in, fp32
// accumulate), a softmax kernel between them. Query heads of a GQA group are the rows of one
// GEMM, so K and V are read once per KV head, never copied per query head.
//
// Bytes per decode step and KV head: K and V, len * head_dim * 2 bytes each, read once by the
// GEMMs; scores [G, len] fp32 written and read, probabilities [G, len] fp16 written and read.
//
// Prefill steps go to the fused causal kernel of attention_prefill.cu; the chunked cuBLAS
// prefill below remains for the head_dim values that kernel does not take.
//
// The small kernels here are launched with launch_pdl (runtime/pdl.cuh) and begin with
// pdl_wait(); the cuBLAS GEMMs are launched plainly.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "runtime/attention_decode.h"
#include "runtime/attention_prefill.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_types.cuh"
#include "runtime/half.h"
#include "runtime/kv_cache_cuda.h"
#include "runtime/ops_cuda.h"
#include "runtime/pdl.cuh"
#include "runtime/rope.cuh"

namespace kvcomp {
namespace {

// k and v columns of each row -> cache[layer][seq][g][pos][c] in fp16.
__global__ void dense_append_kernel(const float* qkv, int64_t row_stride, int k_col, int v_col,
                                    const int* seq, const int* pos, int n_kv, int head_dim,
                                    int64_t tokens_cap, __half* k, __half* v) {
  pdl_wait();
  pdl_trigger();
  const int64_t row = blockIdx.x;
  const int s = seq[row], p = pos[row];
  const float* src = qkv + row * row_stride;
  for (int e = blockIdx.y * blockDim.x + threadIdx.x; e < n_kv * head_dim;
       e += gridDim.y * blockDim.x) {
    const int g = e / head_dim, c = e % head_dim;
    const int64_t dst = ((int64_t(s) * n_kv + g) * tokens_cap + p) * head_dim + c;
    k[dst] = __float2half_rn(src[k_col + e]);
    v[dst] = __float2half_rn(src[v_col + e]);
  }
}

// q rows -> fp16 [block][head][t][c]: block b holds rows row0 + b*nq .. + nq-1.
__global__ void q_gather_kernel(const float* qkv, int64_t row_stride, int q_col, int row0, int nq,
                                int n_heads, int head_dim, __half* out) {
  pdl_wait();
  pdl_trigger();
  const int b = blockIdx.y, t = blockIdx.x;
  const float* src = qkv + int64_t(row0 + b * nq + t) * row_stride + q_col;
  for (int e = blockIdx.z * blockDim.x + threadIdx.x; e < n_heads * head_dim;
       e += gridDim.z * blockDim.x) {
    const int h = e / head_dim, c = e % head_dim;
    out[((int64_t(b) * n_heads + h) * nq + t) * head_dim + c] = __float2half_rn(src[e]);
  }
}

// A decode step's RoPE, cache append and query gather in one kernel (row r = chunk r): the q
// heads are rotated into q16 [r][head][c] (fp16; skipped when q16 is null), the k heads rotated
// and appended with v; the
// rotated q and k also go back to qkv, as rope_kernel leaves them. Item e of a row: a rotation
// pair of head e / half (q heads, then k heads), or past those, a pair (c, c + half) of v.
__global__ void dense_rope_append_kernel(float* qkv, int64_t row_stride, int k_col, int v_col,
                                         const int* seq, const int* pos, int n_heads, int n_kv,
                                         int head_dim, const float* inv_freq, int64_t tokens_cap,
                                         __half* k, __half* v, __half* q16) {
  pdl_wait();
  pdl_trigger();
  const int64_t row = blockIdx.x;
  const int s = seq[row], half = head_dim / 2;
  const float p = float(pos[row]);
  float* x = qkv + row * row_stride;
  const int rotations = (n_heads + n_kv) * half, items = rotations + n_kv * half;
  for (int e = blockIdx.y * blockDim.x + threadIdx.x; e < items; e += gridDim.y * blockDim.x) {
    if (e >= rotations) {
      const int g = (e - rotations) / half, f = (e - rotations) % half;
      const int64_t dst = ((int64_t(s) * n_kv + g) * tokens_cap + int(p)) * head_dim + f;
      const float* src = x + v_col + g * head_dim + f;
      v[dst] = __float2half_rn(src[0]);
      v[dst + half] = __float2half_rn(src[half]);
      continue;
    }
    const int h = e / half, f = e % half;
    float* xh = h < n_heads ? x + h * head_dim : x + k_col + (h - n_heads) * head_dim;
    float a = xh[f], b = xh[f + half];
    rope_rotate(p, inv_freq[f], a, b);
    xh[f] = a;
    xh[f + half] = b;
    __half* dst;
    if (h < n_heads) {
      if (!q16) continue;  // the flash path reads the fp32 queries
      dst = q16 + (row * n_heads + h) * head_dim + f;
    } else {
      dst = k + ((int64_t(s) * n_kv + (h - n_heads)) * tokens_cap + int(p)) * head_dim + f;
    }
    dst[0] = __float2half_rn(a);
    dst[half] = __float2half_rn(b);
  }
}

// fp32 [block][head][t][c] -> out rows (row0 + b*nq + t), columns h*head_dim + c, type T.
template <typename T>
__global__ void o_scatter_kernel(const float* o, int row0, int nq, int n_heads, int head_dim,
                                 T* out) {
  pdl_wait();
  pdl_trigger();
  const int b = blockIdx.y, t = blockIdx.x;
  T* dst = out + int64_t(row0 + b * nq + t) * n_heads * head_dim;
  for (int e = blockIdx.z * blockDim.x + threadIdx.x; e < n_heads * head_dim;
       e += gridDim.z * blockDim.x) {
    const int h = e / head_dim, c = e % head_dim;
    dst[e] = from_f<T>(o[((int64_t(b) * n_heads + h) * nq + t) * head_dim + c]);
  }
}

// Row r of scores (ld columns) is softmaxed over its first `valid` entries, valid =
// base + t0 + (r % nq) + 1, base = bases ? bases[r / rows_per_base] : base0; the rest of the
// row (up to ld) becomes 0 so the PV GEMM may run over the padded length.
__global__ void softmax_rows_kernel(const float* scores, int ld, const int* bases, int base0,
                                    int rows_per_base, int t0, int nq, __half* probs) {
  pdl_wait();
  pdl_trigger();
  const int64_t r = blockIdx.x;
  const int base = bases ? bases[r / rows_per_base] : base0;
  const int valid = min(ld, base + t0 + int(r % nq) + 1);
  const float* s = scores + r * ld;
  __half* p = probs + r * ld;
  __shared__ float red[32];
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < valid; j += blockDim.x) mx = fmaxf(mx, s[j]);
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int w = 0; w < int(blockDim.x / 32); ++w) mx = fmaxf(mx, red[w]);
  __syncthreads();
  float sum = 0;
  for (int j = threadIdx.x; j < valid; j += blockDim.x) sum += __expf(s[j] - mx);
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = sum;
  __syncthreads();
  sum = 0;
  for (int w = 0; w < int(blockDim.x / 32); ++w) sum += red[w];
  const float inv = 1.0f / sum;
  for (int j = threadIdx.x; j < ld; j += blockDim.x)
    p[j] = __float2half_rn(j < valid ? __expf(s[j] - mx) * inv : 0.0f);
}

// Pointer arrays of the decode GEMMs for layers [0, gridDim.y): item i = chunk * n_kv + g;
// layer l's six arrays start at ptrs + l * 6 * n_items, its K/V at k, v + l * layer_stride.
__global__ void decode_ptrs_kernel(const int* chunk_seq, int n_items, int n_kv, int group,
                                   int head_dim, int ld, const __half* k, const __half* v,
                                   int64_t seq_stride, int64_t layer_stride, const __half* q,
                                   float* scores, __half* probs, float* out, const void** ptrs) {
  pdl_wait();
  pdl_trigger();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n_items) return;
  const int chunk = i / n_kv, g = i % n_kv;
  const int64_t kv =
      (int64_t(chunk_seq[chunk]) * n_kv + g) * seq_stride + blockIdx.y * layer_stride;
  ptrs += int64_t(blockIdx.y) * 6 * n_items;
  ptrs[0 * n_items + i] = k + kv;
  ptrs[1 * n_items + i] = q + int64_t(i) * group * head_dim;
  ptrs[2 * n_items + i] = scores + int64_t(i) * group * ld;
  ptrs[3 * n_items + i] = v + kv;
  ptrs[4 * n_items + i] = probs + int64_t(i) * group * ld;
  ptrs[5 * n_items + i] = out + int64_t(i) * group * head_dim;
}

void o_scatter(const CudaContext& ctx, DType act, const float* o, int row0, int nq, int blocks,
               int n_heads, int head_dim, void* out) {
  dispatch16(act, "GPU activations", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    launch_pdl(ctx, o_scatter_kernel<T>, dim3(nq, blocks, row_copy_blocks(n_heads * head_dim)),
               dim3(256), 0, o, row0, nq, n_heads, head_dim, static_cast<T*>(out));
  });
}

}  // namespace

void dense_attention_reserve(const KvShape& shape, int n_chunks, int keys, int n_layers,
                             DeviceBuffer& q16, DeviceBuffer& scores, DeviceBuffer& probs,
                             DeviceBuffer& out32, DeviceBuffer& ptrs) {
  const size_t n = n_chunks, H = shape.n_heads, hd = shape.head_dim;
  const size_t ld = (size_t(keys) + 7) / 8 * 8;  // 16-byte aligned score rows
  q16.ensure(n * H * hd * 2, "attention queries");
  scores.ensure(n * H * ld * 4, "attention scores");
  probs.ensure(n * H * ld * 2, "attention probabilities");
  out32.ensure(n * H * hd * 4, "attention output");
  ptrs.ensure(size_t(n_layers) * n * shape.n_kv_heads * 6 * sizeof(void*), "attention pointers");
}

void dense_attention_cuda(const CudaContext& ctx, const KvShape& shape, const DenseAttentionArgs& a,
                          const QkvView& x, const StepLayout& step, DType act, void* out,
                          DeviceBuffer& q16, DeviceBuffer& scores, DeviceBuffer& probs,
                          DeviceBuffer& out32, DeviceBuffer& ptrs) {
  const int H = shape.n_heads, KV = shape.n_kv_heads, hd = shape.head_dim, G = H / KV;
  const float scale = 1.0f / std::sqrt(float(hd));
  const float one = 1.0f, zero = 0.0f;
  const __half* k = static_cast<const __half*>(a.k);
  const __half* v = static_cast<const __half*>(a.v);
  if (step.decode) {
    const int n = int(step.chunks.size()), items = n * KV;
    int L = step.decode_keys;  // keys of the longest sequence (or the step's bucket); shorter
                               // sequences read zero-probability keys
    for (const auto& c : step.chunks) L = std::max(L, c.start + 1);
    L = std::min(L, a.tokens_cap);
    const int ld = (L + 7) / 8 * 8;  // 16-byte aligned score rows
    dense_attention_reserve(shape, n, L, a.n_layers, q16, scores, probs, out32, ptrs);
    if (!a.q_ready)
      launch_pdl(ctx, q_gather_kernel, dim3(1, n, row_copy_blocks(H * hd)), dim3(256), 0, x.qkv,
                 x.row_stride, x.q_col, 0, 1, H, hd, q16.as<__half>());
    if (a.layer == 0)  // every layer's pointers at once: one small kernel per step
      launch_pdl(ctx, decode_ptrs_kernel, dim3((items + 127) / 128, a.n_layers), dim3(128), 0,
                 step.chunk_seq, items, KV, G, hd, ld, k, v, a.seq_stride, a.layer_stride,
                 q16.as<__half>(), scores.as<float>(), probs.as<__half>(), out32.as<float>(),
                 ptrs.as<const void*>());
    const void** P = ptrs.as<const void*>() + size_t(a.layer) * 6 * items;
    KVCOMP_CUBLAS_CHECK(cublasGemmBatchedEx(
        ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, L, G, hd, &scale, P + 0 * items, CUDA_R_16F, hd,
        P + 1 * items, CUDA_R_16F, hd, &zero, (void* const*)(P + 2 * items), CUDA_R_32F, ld, items,
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    launch_pdl(ctx, softmax_rows_kernel, dim3(n * H), dim3(256), 0, scores.as<float>(), ld,
               step.chunk_start, 0, H, 0, 1, probs.as<__half>());
    KVCOMP_CUBLAS_CHECK(cublasGemmBatchedEx(
        ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, hd, G, L, &one, P + 3 * items, CUDA_R_16F, hd,
        P + 4 * items, CUDA_R_16F, ld, &zero, (void* const*)(P + 5 * items), CUDA_R_32F, hd, items,
        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    o_scatter(ctx, act, out32.as<float>(), 0, 1, n, H, hd, out);
    return;
  }
  // Prefill (or mixed) steps: the fused causal kernel (attention_prefill.cu) where it takes the
  // shape; else one chunk at a time through cuBLAS, queries in slices that bound the scratch.
  if (prefill_attention_supported(shape, a)) {
    prefill_attention_cuda(ctx, shape, a, x, step, act, out);
    return;
  }
  constexpr size_t kScratchBudget = size_t(512) << 20;
  for (const auto& c : step.chunks) {
    const int64_t kv_off = int64_t(c.seq) * KV * a.seq_stride;
    const int L_all = c.start + c.count;
    const int per_q = int(std::max<size_t>(1, kScratchBudget / (size_t(H) * L_all * 6)));
    for (int t0 = 0; t0 < c.count; t0 += per_q) {
      const int nq = std::min(per_q, c.count - t0);
      const int L = c.start + t0 + nq;
      q16.ensure(size_t(H) * nq * hd * 2, "attention queries");
      scores.ensure(size_t(H) * nq * L * 4, "attention scores");
      probs.ensure(size_t(H) * nq * L * 2, "attention probabilities");
      out32.ensure(size_t(H) * nq * hd * 4, "attention output");
      launch_pdl(ctx, q_gather_kernel, dim3(nq, 1, row_copy_blocks(H * hd)), dim3(256), 0, x.qkv,
                 x.row_stride, x.q_col, c.row + t0, nq, H, hd, q16.as<__half>());
      KVCOMP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, L, G * nq, hd, &scale, k + kv_off, CUDA_R_16F, hd,
          a.seq_stride, q16.as<__half>(), CUDA_R_16F, hd, int64_t(G) * nq * hd, &zero,
          scores.as<float>(), CUDA_R_32F, L, int64_t(G) * nq * L, KV, CUBLAS_COMPUTE_32F,
          CUBLAS_GEMM_DEFAULT));
      launch_pdl(ctx, softmax_rows_kernel, dim3(H * nq), dim3(256), 0, scores.as<float>(), L,
                 nullptr, c.start, 1, t0, nq, probs.as<__half>());
      KVCOMP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, hd, G * nq, L, &one, v + kv_off, CUDA_R_16F, hd,
          a.seq_stride, probs.as<__half>(), CUDA_R_16F, L, int64_t(G) * nq * L, &zero,
          out32.as<float>(), CUDA_R_32F, hd, int64_t(G) * nq * hd, KV, CUBLAS_COMPUTE_32F,
          CUBLAS_GEMM_DEFAULT));
      o_scatter(ctx, act, out32.as<float>(), c.row + t0, nq, 1, H, hd, out);
    }
  }
}

DenseKvCacheCuda::DenseKvCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                                   bool cublas)
    : KvCacheCuda(ctx, shape),
      max_tokens_(max_tokens),
      cublas_(cublas ||
              !decode_attention_supported(shape.head_dim, shape.n_heads, shape.n_kv_heads)),
      len_(shape.n_seqs, 0) {
  d_len_ = DeviceBuffer(size_t(shape.n_seqs) * 4, "lengths");
  d_len_.zero();
  // Decode scratch for a full batch at the longest context, allocated once so that decode steps
  // never allocate (they may be captured into CUDA graphs). The flash path needs only its split
  // states; the cuBLAS path its score rows (the prefill kernel needs none).
  DecodeAttentionParams p;
  p.n_heads = shape.n_heads;
  p.n_kv_heads = shape.n_kv_heads;
  p.head_dim = shape.head_dim;
  p.n_chunks = shape.n_seqs;
  decode_scratch_ =
      DeviceBuffer(decode_attention_scratch_bytes(p, max_tokens), "attention split states");
  if (cublas_)
    dense_attention_reserve(shape, shape.n_seqs, max_tokens, shape.n_layers, q16_, scores_, probs_,
                            out32_, ptrs_);
  const size_t n =
      size_t(shape.n_layers) * shape.n_seqs * shape.n_kv_heads * max_tokens * shape.head_dim;
  k_ = DeviceBuffer(n * 2, "the fp16 K cache");
  v_ = DeviceBuffer(n * 2, "the fp16 V cache");
  // Positions past a sequence's length are read (with probability 0) by the batched decode
  // GEMMs, so they must hold finite values.
  k_.zero();
  v_.zero();
}

void KvCacheCuda::rope_append(int layer, const QkvView& x, const StepLayout& step,
                              const float* inv_freq) {
  check(x.k_col == x.q_col + shape_.n_heads * shape_.head_dim,
        "rope_append: the k heads must follow the q heads");
  rope_cuda(ctx_, x.qkv + x.q_col, x.row_stride, step.pos, step.n_tokens, shape_.n_heads,
            shape_.n_kv_heads, shape_.head_dim, inv_freq);
  append(layer, x, step);
}

void DenseKvCacheCuda::append(int layer, const QkvView& x, const StepLayout& step) {
  const size_t layer_off =
      size_t(layer) * shape_.n_seqs * shape_.n_kv_heads * max_tokens_ * shape_.head_dim;
  q_ready_layer_ = -1;
  launch_pdl(ctx_, dense_append_kernel,
             dim3(step.n_tokens, row_copy_blocks(shape_.n_kv_heads * shape_.head_dim)), dim3(256),
             0, x.qkv, x.row_stride, x.k_col, x.v_col, step.seq, step.pos, shape_.n_kv_heads,
             shape_.head_dim, int64_t(max_tokens_), k_.as<__half>() + layer_off,
             v_.as<__half>() + layer_off);
}

void DenseKvCacheCuda::rope_append(int layer, const QkvView& x, const StepLayout& step,
                                   const float* inv_freq) {
  const int H = shape_.n_heads, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  if (!step.decode || x.k_col != x.q_col + H * hd || hd % 2 != 0)
    return KvCacheCuda::rope_append(layer, x, step, inv_freq);
  const size_t layer_off = size_t(layer) * shape_.n_seqs * KV * max_tokens_ * hd;
  const int items = (H + 2 * KV) * (hd / 2);
  launch_pdl(ctx_, dense_rope_append_kernel, dim3(step.n_tokens, row_copy_blocks(items)), dim3(256),
             0, x.qkv + x.q_col, x.row_stride, x.k_col - x.q_col, x.v_col - x.q_col, step.seq,
             step.pos, H, KV, hd, inv_freq, int64_t(max_tokens_), k_.as<__half>() + layer_off,
             v_.as<__half>() + layer_off, cublas_ ? q16_.as<__half>() : nullptr);
  q_ready_layer_ = cublas_ ? layer : -1;
}

void DenseKvCacheCuda::begin_step(const StepLayout& step) {
  for (const auto& c : step.chunks) len_[c.seq] = c.start + c.count;
  d_len_.upload(len_.data(), len_.size() * 4);
}

void DenseKvCacheCuda::copy_sequence(int from, int to) {
  const size_t per = size_t(shape_.n_kv_heads) * max_tokens_ * shape_.head_dim * 2;
  for (int l = 0; l < shape_.n_layers; ++l)
    for (DeviceBuffer* b : {&k_, &v_}) {
      uint8_t* layer = b->as<uint8_t>() + size_t(l) * shape_.n_seqs * per;
      KVCOMP_CUDA_CHECK(cudaMemcpyAsync(layer + size_t(to) * per, layer + size_t(from) * per,
                                        per, cudaMemcpyDeviceToDevice, ctx_.stream()));
    }
  len_[to] = len_[from];
  d_len_.upload(len_.data(), len_.size() * 4);
}

void DenseKvCacheCuda::attend(int layer, const QkvView& x, const StepLayout& step, DType act,
                              void* out) {
  const size_t layer_off =
      size_t(layer) * shape_.n_seqs * shape_.n_kv_heads * max_tokens_ * shape_.head_dim;
  if (step.decode && !cublas_) {  // flash decoding where it takes the shape, else cuBLAS
    DecodeAttentionParams p;
    p.n_heads = shape_.n_heads;
    p.n_kv_heads = shape_.n_kv_heads;
    p.head_dim = shape_.head_dim;
    p.scale = 1.0f / std::sqrt(float(shape_.head_dim));
    p.qkv = x.qkv;
    p.qkv_stride = x.row_stride;
    p.q_col = x.q_col;
    p.n_chunks = int(step.chunks.size());
    p.chunk_seq = step.chunk_seq;
    p.seq_len = d_len_.as<int>();
    p.ring_k = k_.as<uint16_t>() + layer_off;
    p.ring_v = v_.as<uint16_t>() + layer_off;
    p.cap_k = p.cap_v = max_tokens_;
    p.out = out;
    int max_len = step.decode_keys;
    for (const auto& c : step.chunks) max_len = std::max(max_len, c.start + 1);
    decode_attention_cuda(ctx_, p, std::min(max_len, max_tokens_), act, decode_scratch_.get(),
                          decode_scratch_.bytes());
    return;
  }
  DenseAttentionArgs a{k_.as<__half>() + layer_off, v_.as<__half>() + layer_off,
                       int64_t(max_tokens_) * shape_.head_dim, max_tokens_};
  a.layer = layer;
  a.n_layers = shape_.n_layers;
  a.layer_stride = int64_t(shape_.n_seqs) * shape_.n_kv_heads * max_tokens_ * shape_.head_dim;
  a.q_ready = step.decode && q_ready_layer_ == layer;
  dense_attention_cuda(ctx_, shape_, a, x, step, act, out, q16_, scores_, probs_, out32_, ptrs_);
}

bool DenseKvCacheCuda::read(int layer, int seq, std::vector<float>& k,
                            std::vector<float>& v) const {
  const int KV = shape_.n_kv_heads, hd = shape_.head_dim, len = len_.at(seq);
  std::vector<uint16_t> hk(size_t(KV) * len * hd), hv(hk.size());
  for (int g = 0; g < KV; ++g) {
    const size_t off =
        (((size_t(layer) * shape_.n_seqs + seq) * KV + g) * max_tokens_) * hd * sizeof(uint16_t);
    k_.download(hk.data() + size_t(g) * len * hd, size_t(len) * hd * 2, off);
    v_.download(hv.data() + size_t(g) * len * hd, size_t(len) * hd * 2, off);
  }
  k.resize(hk.size());
  v.resize(hv.size());
  for (int t = 0; t < len; ++t)
    for (int g = 0; g < KV; ++g)
      for (int c = 0; c < hd; ++c) {
        k[(size_t(t) * KV + g) * hd + c] = fp16_to_float(hk[(size_t(g) * len + t) * hd + c]);
        v[(size_t(t) * KV + g) * hd + c] = fp16_to_float(hv[(size_t(g) * len + t) * hd + c]);
      }
  return true;
}

int64_t DenseKvCacheCuda::reserved_bytes() const {
  size_t b = 0;
  for (const DeviceBuffer* x : std::initializer_list<const DeviceBuffer*>{
           &d_len_, &k_, &v_, &q16_, &scores_, &probs_, &out32_, &ptrs_, &decode_scratch_})
    b += x->bytes();
  return int64_t(b);
}

int64_t DenseKvCacheCuda::bytes() const {
  int64_t tokens = 0;
  for (int l : len_) tokens += l;
  return tokens * shape_.n_layers * shape_.n_kv_heads * shape_.head_dim * 2 * 2;
}

}  // namespace kvcomp
