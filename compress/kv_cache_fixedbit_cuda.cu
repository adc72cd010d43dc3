// The fixed-bit cache on the GPU (see the header for its semantics). Compiled with
// --fmad=false; the arithmetic uses explicit _rn intrinsics in the order of the CPU reference
// (compress/fixedbit.cpp), which the tests compare with bit for bit.
//
// Bytes moved per decode step and layer (dequantize-then-attend): every block is read once
// (b/8 bytes per value + scales) and written once as fp16 (2 bytes per value), then the cuBLAS
// path reads the fp16 scratch again: about 4 + b/8 bytes per cached value against fp16's 2, so
// this path shows the baselines' accuracy and memory, not a speed-up; a fused kernel would read
// b/8.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>

#include "compress/kv_cache_fixedbit_cuda.h"
#include "compress/kv_ring_cuda.h"
#include "runtime/cuda_check.h"
#include "runtime/half.h"

namespace kvcomp {
namespace {

constexpr int kQuantThreads = 128;
constexpr int kMaxQuantBlockValues = 32768;  // block tokens x head_dim: the kernel's shared codes

// The format of one part, by value for the kernels.
struct FormatArgs {
  int scheme;  // FixedBitScheme
  int bits;
  int group;
  int n_tokens;  // tokens per block
  int head_dim;
  int64_t param_bytes;
  int64_t block_bytes;
};

FormatArgs format_args(const FixedBitFormat& f, int n_tokens, int head_dim) {
  return {int(f.scheme),
          f.bits,
          f.group,
          n_tokens,
          head_dim,
          f.param_bytes(n_tokens, head_dim),
          f.block_bytes(n_tokens, head_dim)};
}

// One block to quantize: its tokens in a ring of fp16 rows, its place in the store.
struct QuantJob {
  const __half* src;  // the head's ring [cap][head_dim]
  int cap;
  int first;     // ring row of the block's first token
  uint8_t* dst;  // block_bytes
};

// ---- the CPU reference's arithmetic (compress/fixedbit.cpp), step for step ----

__device__ __forceinline__ uint16_t to_fp16(float x) {
  return __half_as_ushort(__float2half_rn(x));
}
__device__ __forceinline__ float from_fp16(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ float lower(float a, float b) {
  return b < a ? b : a;
}
__device__ __forceinline__ float upper(float a, float b) {
  return b > a ? b : a;
}

__device__ __forceinline__ uint16_t fp16_round_up_dev(float t) {
  const uint16_t h = to_fp16(t);
  return from_fp16(h) < t ? uint16_t(h + 1) : h;
}

__device__ __forceinline__ void affine_params_dev(float mn, float mx, int bits, uint16_t* scale,
                                                  uint16_t* zero) {
  const float levels = float((1 << bits) - 1);
  float step = __fdiv_rn(__fsub_rn(mx, mn), levels);
  if (step > 65504.0f) step = 65504.0f;
  *scale = fp16_round_up_dev(step);
  *zero = to_fp16(mn);
}

__device__ __forceinline__ uint32_t affine_code_dev(float x, float s, float z, int bits) {
  if (s == 0.0f) return 0;
  const float r = rintf(__fdiv_rn(__fsub_rn(x, z), s));
  const float levels = float((1 << bits) - 1);
  if (!(r > 0.0f)) return 0;
  return r > levels ? uint32_t(levels) : uint32_t(r);
}

__device__ __forceinline__ __half affine_value_dev(uint32_t q, float s, float z) {
  return __float2half_rn(__fadd_rn(__fmul_rn(float(q), s), z));
}

__device__ __forceinline__ uint8_t fp8_code_dev(float x, float s) {
  if (s == 0.0f) return 0;
  return float_to_e4m3(__fdiv_rn(x, s));
}

__device__ __forceinline__ __half fp8_value_dev(uint8_t c, float s) {
  return __float2half_rn(__fmul_rn(e4m3_to_float(c), s));
}

__device__ __forceinline__ void put_fp16(uint8_t* p, uint16_t h) {
  *reinterpret_cast<uint16_t*>(p) = h;  // little-endian, 2-byte aligned (blocks are even-sized)
}
__device__ __forceinline__ uint16_t get_fp16(const uint8_t* p) {
  return *reinterpret_cast<const uint16_t*>(p);
}

// ---- kernels ----

// One thread block per job: parameters (in the CPU's visiting order per group), codes into
// shared memory, then the packed code bytes.
__global__ void __launch_bounds__(kQuantThreads)
    quantize_blocks_kernel(const QuantJob* jobs, FormatArgs f) {
  extern __shared__ uint8_t codes[];  // [n_tokens * head_dim]
  __shared__ float red[kQuantThreads];
  const QuantJob j = jobs[blockIdx.x];
  const int n = f.n_tokens, hd = f.head_dim;
  auto at = [&](int t, int c) {
    return __half2float(j.src[int64_t((j.first + t) % j.cap) * hd + c]);
  };
  uint8_t* params = j.dst;
  if (f.scheme == int(FixedBitScheme::kChannelBlock)) {
    for (int c = threadIdx.x; c < hd; c += blockDim.x) {
      float mn = at(0, c), mx = at(0, c);
      for (int t = 1; t < n; ++t) {
        const float x = at(t, c);
        mn = lower(mn, x);
        mx = upper(mx, x);
      }
      uint16_t sh, zh;
      affine_params_dev(__fadd_rn(mn, 0.0f), __fadd_rn(mx, 0.0f), f.bits, &sh, &zh);
      put_fp16(params + 4 * c, sh);
      put_fp16(params + 4 * c + 2, zh);
      const float s = from_fp16(sh), z = from_fp16(zh);
      for (int t = 0; t < n; ++t)
        codes[t * hd + c] = uint8_t(affine_code_dev(at(t, c), s, z, f.bits));
    }
  } else if (f.scheme == int(FixedBitScheme::kTokenGroups)) {
    const int groups = hd / f.group;
    for (int i = threadIdx.x; i < n * groups; i += blockDim.x) {
      const int t = i / groups, c0 = (i % groups) * f.group;
      float mn = at(t, c0), mx = at(t, c0);
      for (int c = c0 + 1; c < c0 + f.group; ++c) {
        const float x = at(t, c);
        mn = lower(mn, x);
        mx = upper(mx, x);
      }
      uint16_t sh, zh;
      affine_params_dev(__fadd_rn(mn, 0.0f), __fadd_rn(mx, 0.0f), f.bits, &sh, &zh);
      put_fp16(params + 4 * int64_t(i), sh);
      put_fp16(params + 4 * int64_t(i) + 2, zh);
      const float s = from_fp16(sh), z = from_fp16(zh);
      for (int c = c0; c < c0 + f.group; ++c)
        codes[t * hd + c] = uint8_t(affine_code_dev(at(t, c), s, z, f.bits));
    }
  } else {
    // fp8: the block's largest magnitude (a max of non-negative values: any order gives the
    // CPU's result), then one scale.
    float amax = 0.0f;
    for (int e = threadIdx.x; e < n * hd; e += blockDim.x)
      amax = upper(amax, fabsf(at(e / hd, e % hd)));
    red[threadIdx.x] = amax;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
      if (int(threadIdx.x) < w) red[threadIdx.x] = upper(red[threadIdx.x], red[threadIdx.x + w]);
      __syncthreads();
    }
    const uint16_t sh = to_fp16(__fdiv_rn(red[0], 448.0f));
    if (threadIdx.x == 0) put_fp16(params, sh);
    const float s = from_fp16(sh);
    for (int e = threadIdx.x; e < n * hd; e += blockDim.x)
      codes[e] = fp8_code_dev(at(e / hd, e % hd), s);
  }
  __syncthreads();
  // Pack: byte i holds codes [i * per, (i + 1) * per), least significant first.
  const int per = 8 / f.bits;
  const int64_t n_bytes = int64_t(n) * hd * f.bits / 8;
  uint8_t* out = j.dst + f.param_bytes;
  for (int64_t i = threadIdx.x; i < n_bytes; i += blockDim.x) {
    uint32_t b = 0;
    for (int k = 0; k < per; ++k) b |= uint32_t(codes[i * per + k]) << (k * f.bits);
    out[i] = uint8_t(b);
  }
}

// Block b of (chunk, kv head) -> scratch rows [b * n_tokens, (b + 1) * n_tokens) as fp16; blocks
// past the sequence's count are skipped.
__global__ void dequantize_blocks_kernel(FormatArgs f, const uint8_t* store, int max_b,
                                         const int* chunk_seq, const int* done, int n_kv,
                                         __half* scratch, int cap) {
  const int b = blockIdx.x, chunk = blockIdx.y / n_kv, g = blockIdx.y % n_kv;
  const int s = chunk_seq[chunk];
  if (b >= done[s] / f.n_tokens) return;
  const int hd = f.head_dim;
  const uint8_t* blk = store + ((int64_t(s) * n_kv + g) * max_b + b) * f.block_bytes;
  const uint8_t* codes = blk + f.param_bytes;
  __half* dst = scratch + ((int64_t(chunk) * n_kv + g) * cap + int64_t(b) * f.n_tokens) * hd;
  const uint32_t mask = (1u << f.bits) - 1u;
  for (int e = threadIdx.x; e < f.n_tokens * hd; e += blockDim.x) {
    const int64_t bit = int64_t(e) * f.bits;
    const uint32_t q = (uint32_t(codes[bit >> 3]) >> (bit & 7)) & mask;
    __half v;
    if (f.scheme == int(FixedBitScheme::kChannelBlock)) {
      const int c = e % hd;
      v = affine_value_dev(q, from_fp16(get_fp16(blk + 4 * c)),
                           from_fp16(get_fp16(blk + 4 * c + 2)));
    } else if (f.scheme == int(FixedBitScheme::kTokenGroups)) {
      const int t = e / hd, c = e % hd;
      const uint8_t* p = blk + 4 * (int64_t(t) * (hd / f.group) + c / f.group);
      v = affine_value_dev(q, from_fp16(get_fp16(p)), from_fp16(get_fp16(p + 2)));
    } else {
      v = fp8_value_dev(uint8_t(q), from_fp16(get_fp16(blk)));
    }
    dst[e] = v;
  }
}

__global__ void e4m3_encode_kernel(const float* x, int64_t n, uint8_t* ours, uint8_t* theirs) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    ours[i] = float_to_e4m3(x[i]);
    theirs[i] = uint8_t(__nv_cvt_float_to_fp8(x[i], __NV_SATFINITE, __NV_E4M3));
  }
}

// The options, validated before BlockedKvCacheCuda uses their block and window sizes.
const KvOptions& checked(const KvOptions& opts) {
  validate(opts);
  return opts;
}

}  // namespace

FixedBitCacheCuda::FixedBitCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                                     const KvOptions& opts)
    : BlockedKvCacheCuda(ctx, shape, max_tokens, checked(opts).block_k, opts.block_v, opts.window_k,
                         opts.window_v, "fixed-bit cache", "fixed-bit"),
      opts_(opts) {
  const int L = shape.n_layers, S = shape.n_seqs, KV = shape.n_kv_heads, hd = shape.head_dim;
  fmt_ = fixedbit_formats(opts, hd);
  check(std::max(opts.block_k, opts.block_v) * hd <= kMaxQuantBlockValues, "--kv ",
        kv_mode_name(opts.mode), ": blocks of ", std::max(opts.block_k, opts.block_v),
        " tokens x head_dim ", hd, " exceed the GPU quantizer's ", kMaxQuantBlockValues,
        " values; use smaller --block-k/--block-v");
  const size_t heads = size_t(L) * S * KV;
  store_k_ = DeviceBuffer(heads * max_kb_ * size_t(block_bytes(0)), "the fixed-bit K blocks");
  store_v_ = DeviceBuffer(heads * max_vb_ * size_t(block_bytes(1)), "the fixed-bit V blocks");
}

void FixedBitCacheCuda::decode_blocks(int layer, int n, const int* d_chunk_seq, int mk, int mv,
                                      int cap) const {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  if (mk > 0) {
    const FormatArgs f = format_args(fmt_.k, opts_.block_k, hd);
    dequantize_blocks_kernel<<<dim3(mk, n * KV), 256, 0, ctx_.stream()>>>(
        f, store_k_.as<uint8_t>() + size_t(layer) * S * KV * max_kb_ * size_t(f.block_bytes),
        max_kb_, d_chunk_seq, d_done_k_.as<int>(), KV, scratch_k_.as<__half>(), cap);
    KVCOMP_LAUNCH_CHECK();
  }
  if (mv > 0) {
    const FormatArgs f = format_args(fmt_.v, opts_.block_v, hd);
    dequantize_blocks_kernel<<<dim3(mv, n * KV), 256, 0, ctx_.stream()>>>(
        f, store_v_.as<uint8_t>() + size_t(layer) * S * KV * max_vb_ * size_t(f.block_bytes),
        max_vb_, d_chunk_seq, d_done_v_.as<int>(), KV, scratch_v_.as<__half>(), cap);
    KVCOMP_LAUNCH_CHECK();
  }
}

void FixedBitCacheCuda::compress(int part, int /*layer*/, const std::vector<BlockRows>& blocks,
                                 const std::vector<BlockRows>& /*present*/) {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int B = block_tokens(part);
  const int max_b = part == 0 ? max_kb_ : max_vb_;
  const DeviceBuffer& store = part == 0 ? store_k_ : store_v_;
  const FormatArgs f = format_args(part == 0 ? fmt_.k : fmt_.v, B, hd);
  std::vector<QuantJob> jobs;
  jobs.reserve(blocks.size());
  for (const BlockRows& r : blocks) {
    const size_t head = (size_t(r.layer) * S + r.seq) * KV + r.head;
    QuantJob j;
    j.src = r.cap > 0 ? r.src : r.src + size_t(r.first) * hd;
    j.cap = r.cap > 0 ? r.cap : B;  // (first + t) % cap is t for t < B
    j.first = r.cap > 0 ? r.first % r.cap : 0;
    j.dst = store.as<uint8_t>() + (head * max_b + size_t(r.block)) * size_t(f.block_bytes);
    jobs.push_back(j);
  }
  if (jobs.empty()) return;
  // One job buffer per part; the copy is ordered after the previous launch that reads it.
  DeviceBuffer& d_jobs = jobs_[part];
  d_jobs.ensure(jobs.size() * sizeof(QuantJob), "quantize jobs");
  KVCOMP_CUDA_CHECK(cudaMemcpyAsync(d_jobs.get(), jobs.data(), jobs.size() * sizeof(QuantJob),
                                    cudaMemcpyHostToDevice, ctx_.stream()));
  quantize_blocks_kernel<<<int(jobs.size()), kQuantThreads, size_t(B) * hd, ctx_.stream()>>>(
      d_jobs.as<QuantJob>(), f);
  KVCOMP_LAUNCH_CHECK();
}

void FixedBitCacheCuda::copy_blocks(int from, int to) {
  for (int part = 0; part < 2; ++part) {
    const size_t per = size_t(shape_.n_kv_heads) * (part == 0 ? max_kb_ : max_vb_) *
                       size_t(block_bytes(part));
    uint8_t* store = (part == 0 ? store_k_ : store_v_).as<uint8_t>();
    for (int l = 0; l < shape_.n_layers; ++l) {
      uint8_t* layer = store + size_t(l) * shape_.n_seqs * per;
      KVCOMP_CUDA_CHECK(cudaMemcpyAsync(layer + size_t(to) * per, layer + size_t(from) * per, per,
                                        cudaMemcpyDeviceToDevice, ctx_.stream()));
    }
  }
}

KvStats FixedBitCacheCuda::stats() const {
  KvStats st;
  st.compressed = true;
  const int L = shape_.n_layers, S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  uint64_t kb = 0, vb = 0;
  for (int s = 0; s < S; ++s) {
    kb += uint64_t(done_k_[s] / opts_.block_k) * L * KV;
    vb += uint64_t(done_v_[s] / opts_.block_v) * L * KV;
    st.window_k_values += uint64_t(len_[s] - done_k_[s]) * L * KV * hd;
    st.window_v_values += uint64_t(len_[s] - done_v_[s]) * L * KV * hd;
  }
  st.k = fixedbit_block_bytes(fmt_.k, opts_.block_k, hd, kb);
  st.v = fixedbit_block_bytes(fmt_.v, opts_.block_v, hd, vb);
  return st;
}

int64_t FixedBitCacheCuda::bytes() const {
  return int64_t(stats().total_bytes());
}

int64_t FixedBitCacheCuda::reserved_bytes() const {
  return BlockedKvCacheCuda::reserved_bytes() +
         int64_t(store_k_.bytes() + store_v_.bytes() + jobs_[0].bytes() + jobs_[1].bytes());
}

std::vector<uint8_t> FixedBitCacheCuda::block(KvPart p, int layer, int seq, int head, int b) const {
  const int part = int(p);
  const int max_b = part == 0 ? max_kb_ : max_vb_;
  check(b >= 0 && b < done(p, seq) / block_tokens(part), "fixed-bit cache: block ", b,
        " of sequence ", seq, " does not exist");
  const size_t bb = size_t(block_bytes(part));
  const size_t head_index = (size_t(layer) * shape_.n_seqs + seq) * shape_.n_kv_heads + head;
  std::vector<uint8_t> out(bb);
  ctx_.synchronize();
  (part == 0 ? store_k_ : store_v_).download(out.data(), bb, (head_index * max_b + b) * bb);
  return out;
}

void e4m3_encode_cuda(const CudaContext& ctx, const float* x, int64_t n, uint8_t* ours,
                      uint8_t* theirs) {
  if (n <= 0) return;
  const int blocks = int(std::min<int64_t>((n + 255) / 256, 4096));
  e4m3_encode_kernel<<<blocks, 256, 0, ctx.stream()>>>(x, n, ours, theirs);
  KVCOMP_LAUNCH_CHECK();
}

}  // namespace kvcomp
