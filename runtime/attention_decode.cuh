// The decode attention kernel of attention_decode.h, as a template over where the keys and values
// of a token live: fp16 rows always (the dense cache; the compressed caches' recent window), and
// compressed blocks before them when the policy `B` has them (compress/attention_kvcomp.cu). For
// .cu files.
//
// Work. A thread block of kWarps warps owns one item at a time, (chunk, KV head, split of
// `split` tokens); the grid is persistent. Each warp walks its own tiles of T tokens of the split
// (tile w, w + kWarps, ...) with no block-wide barrier, keeping an online softmax (m, l) and
// the output O for all G query heads of the group:
//   K phase, 128 tokens per pass: lane l scores tokens 4l..4l+3 (four independent streams per
//     lane; q[c][g] is a shared-memory broadcast because the lanes walk the channels in
//     lockstep); scores go to the warp's tile buffer [T][G].
//   softmax: the tile's max per head (warp reduction), rescaling of (l, O), then the weights
//     w_t = p_t (times the token's dequantization step for compressed V) back into the buffer.
//   V phase: lane l accumulates channels NV*l .. NV*l+NV-1 over the tile's tokens (again in
//     lockstep, so w_t is a broadcast).
// At the item's end the warps merge (m, l, O) in shared memory and write one partial state per
// (query head, split); merge_kernel combines the splits.
//
// Bytes: every K and V row is read once per step (16-byte loads for K: lane l reads its four
// rows; 4 or 8 bytes per lane for V: a warp reads 128 or 256 contiguous bytes per token); 8 K
// loads of 16 bytes are in flight per lane.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <map>
#include <type_traits>

#include "runtime/attention_decode.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_types.cuh"

namespace kvcomp {
namespace decode_attn {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kSub = 128;  // tokens of one K pass: four per lane
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
  return x;
}

// N consecutive floats of shared memory (16-byte aligned when N % 4 == 0, 8 when N % 2 == 0).
template <int N>
__device__ __forceinline__ void load_f(const float* p, float (&v)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N / 4; ++i) {
      const float4 x = reinterpret_cast<const float4*>(p)[i];
      v[4 * i] = x.x, v[4 * i + 1] = x.y, v[4 * i + 2] = x.z, v[4 * i + 3] = x.w;
    }
  } else if constexpr (N % 2 == 0) {
#pragma unroll
    for (int i = 0; i < N / 2; ++i) {
      const float2 x = reinterpret_cast<const float2*>(p)[i];
      v[2 * i] = x.x, v[2 * i + 1] = x.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = p[i];
  }
}

__device__ __forceinline__ float2 half2_bits_to_float2(uint32_t w) {
  return __half22float2(*reinterpret_cast<const __half2*>(&w));
}

// Shared memory of a block, in floats: q [HD][G] (pre-scaled), qsum [G], the warps' (m, l)
// [kWarps][G] for the merge, then per warp its tile buffer [T][G] and its V biases
// [T / 16][G] (one per V block of the tile); a policy's tables follow (table_offset()).
struct Smem {
  int q, qsum, mrg_m, mrg_l, warps, per_warp, end;
  __host__ __device__ Smem(int hd, int g, int t) {
    q = 0;
    qsum = q + hd * g;
    mrg_m = qsum + 4 * ((g + 3) / 4);
    mrg_l = mrg_m + kWarps * g;
    warps = 4 * ((mrg_l + kWarps * g + 3) / 4);
    per_warp = 4 * ((t * g + (t / 16) * g + 3) / 4);
    end = warps + kWarps * per_warp;
  }
  __host__ __device__ size_t bytes() const { return size_t(end) * 4; }
};

// The policy for caches that are fp16 rows only (the dense cache): no blocks, no tables, rows
// indexed by position (cap holds every token).
struct NoMmaState {};
struct NoBlocks {
  using Params = DecodeAttentionParams;
  static constexpr bool kBlocks = false;
  static constexpr bool kMmaTiles = false;  // see compress/attention_kvcomp.cuh (KvcompMma)
  using MmaState = NoMmaState;
  static constexpr bool kWrap = false;      // row = position
  static constexpr int kRowsInFlight = 16;  // V rows per lane
  __host__ __device__ static int tile(const Params&) { return kSub; }
  __host__ __device__ static int block_v(const Params&) { return kSub; }
  static size_t table_bytes(const Params&) { return 0; }
};

// Scores of the lane's four tokens tb..tb+3 from fp16 rows (rows past len - 1 read row len - 1;
// the caller masks them). head_rows: the (sequence, KV head)'s rows.
template <int HD, int G, bool kWrap>
__device__ __forceinline__ void k_rows4(const uint16_t* head_rows, int cap, int tb, int len,
                                        const float* q, float (&sc)[4][G]) {
  const uint4* r[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    int t = min(tb + j, len - 1);
    if (kWrap) t %= cap;
    r[j] = reinterpret_cast<const uint4*>(head_rows + int64_t(t) * HD);
  }
  float acc[4][G];
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int g = 0; g < G; ++g) acc[j][g] = 0.0f;
#pragma unroll 2
  for (int c8 = 0; c8 < HD / 8; ++c8) {
    uint4 v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = __ldg(r[j] + c8);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float qa[G], qb[G];
      load_f(q + (c8 * 8 + 2 * k) * G, qa);
      load_f(q + (c8 * 8 + 2 * k + 1) * G, qb);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint32_t w = k == 0 ? v[j].x : k == 1 ? v[j].y : k == 2 ? v[j].z : v[j].w;
        const float2 f = half2_bits_to_float2(w);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          acc[j][g] = fmaf(qa[g], f.x, acc[j][g]);
          acc[j][g] = fmaf(qb[g], f.y, acc[j][g]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int g = 0; g < G; ++g) sc[j][g] = acc[j][g];
}

// O[j][g] += sum over rows i < n of w[i][g] * row_i[NV * lane + j] (fp16 rows; row(i) gives row
// i's address). kAligned8: the rows are 8-byte aligned (one 8-byte load per lane for NV = 4).
template <int HD, int G, bool kAligned8, int U, typename RowFn>
__device__ __forceinline__ void v_rows(RowFn&& row, int n, const float* w, int lane,
                                       float (&O)[HD / 32][G]) {
  constexpr int NV = HD / 32;  // U: rows in flight per lane
  for (int i0 = 0; i0 < n; i0 += U) {
    uint32_t x[U][NV / 2];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (i0 + u < n) {
        const uint16_t* r = row(i0 + u) + NV * lane;
        if constexpr (NV == 4 && kAligned8) {
          const uint2 y = __ldg(reinterpret_cast<const uint2*>(r));
          x[u][0] = y.x, x[u][1] = y.y;
        } else {
#pragma unroll
          for (int k = 0; k < NV / 2; ++k)
            x[u][k] = __ldg(reinterpret_cast<const uint32_t*>(r) + k);
        }
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (i0 + u < n) {
        float wv[G];
        load_f(w + (i0 + u) * G, wv);
#pragma unroll
        for (int k = 0; k < NV / 2; ++k) {
          const float2 f = half2_bits_to_float2(x[u][k]);
#pragma unroll
          for (int g = 0; g < G; ++g) {
            O[2 * k][g] = fmaf(wv[g], f.x, O[2 * k][g]);
            O[2 * k + 1][g] = fmaf(wv[g], f.y, O[2 * k + 1][g]);
          }
        }
      }
    }
  }
}

// One warp's tile [ta, ta + T): scores, softmax update, weights, values.
template <int HD, int G, class B>
__device__ __forceinline__ void tile(const typename B::Params& p, const uint32_t* tabs,
                                     int64_t head_off, int ta, int len, int k_done, int v_done,
                                     const float* q, const float* qsum, float* wbuf, float* bbuf,
                                     int lane, float (&m)[G], float (&lsum)[G],
                                     float (&O)[HD / 32][G]) {
  constexpr int NV = HD / 32;
  const int T = B::tile(p), BV = B::block_v(p);
  const uint16_t* rows_k = p.ring_k + head_off * p.cap_k * HD;
  const uint16_t* rows_v = p.ring_v + head_off * p.cap_v * HD;

  // ---- K: scores of the tile's tokens into wbuf [T][G].
  float mx[G];
#pragma unroll
  for (int g = 0; g < G; ++g) mx[g] = -INFINITY;
  for (int sub = 0; sub * kSub < T; ++sub) {
    const int tl = sub * kSub + 4 * lane;  // the lane's first token, tile-relative
    const int tb = ta + tl;
    float sc[4][G];
    bool done = false;
    if constexpr (B::kBlocks)
      done = B::template k_sub<HD, G>(p, tabs, head_off, tb, k_done, lane, q, qsum,
                                      wbuf + sub * kSub * G, sc);
    if (!done) {
      if (__all_sync(kFull, tb >= k_done)) {
        k_rows4<HD, G, B::kWrap>(rows_k, p.cap_k, tb, len, q, sc);
      } else if constexpr (B::kBlocks) {
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int g = 0; g < G; ++g) sc[j][g] = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (tb + j < len)
            B::template k_token<HD, G>(p, tabs, head_off, tb + j, k_done, lane, q, qsum, sc[j]);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float s = tb + j < len ? sc[j][g] : -INFINITY;
        wbuf[(tl + j) * G + g] = s;
        mx[g] = fmaxf(mx[g], s);
      }
  }

  // ---- softmax: rescale the running state to the new max.
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float mn = fmaxf(m[g], warp_max(mx[g]));  // finite: the tile has a token
    const float a = __expf(m[g] - mn);              // 0 for the first tile (m = -inf)
    m[g] = mn;
    lsum[g] *= a;
#pragma unroll
    for (int j = 0; j < NV; ++j) O[j][g] *= a;
  }

  // ---- weights w = p * d (d: the token's V step when its V block is compressed, else 1) and the
  // V blocks' offset terms sum_t w_t m0_t into bbuf [T / BV][G].
  const int nvb = T / BV;
  if constexpr (B::kBlocks) {
    for (int i = lane; i < nvb * G; i += 32) bbuf[i] = 0.0f;
    __syncwarp();
  }
  for (int sub = 0; sub * kSub < T; ++sub) {
    const int tl = sub * kSub + 4 * lane;
    const int tb = ta + tl;
    float d[4] = {1.0f, 1.0f, 1.0f, 1.0f}, m0[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if constexpr (B::kBlocks)
      if (tb < v_done) B::v_params(p, head_off, tb, d, m0);
    float wm[G];
#pragma unroll
    for (int g = 0; g < G; ++g) wm[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float* x = wbuf + (tl + j) * G + g;
        const float pr = __expf(*x - m[g]);  // 0 past len (score -inf)
        lsum[g] += pr;
        const float w = pr * d[j];
        *x = w;
        wm[g] = fmaf(w, m0[j], wm[g]);
      }
    if constexpr (B::kBlocks) {
      if (__any_sync(kFull, tb < v_done)) {
        const int seg = min(BV, kSub) / 4;  // lanes per V block in this pass
#pragma unroll
        for (int g = 0; g < G; ++g)
          for (int o = seg / 2; o > 0; o >>= 1) wm[g] += __shfl_xor_sync(kFull, wm[g], o);
        if ((lane & (seg - 1)) == 0) {
          float* b = bbuf + (tl / BV) * G;
#pragma unroll
          for (int g = 0; g < G; ++g) b[g] += wm[g];
        }
      }
    }
  }
  __syncwarp();

  // ---- V: O += sum_t w_t v_t, block by block.
  for (int vb = 0; vb < nvb; ++vb) {
    const int t0 = ta + vb * BV;
    if (t0 >= len) break;
    const float* w = wbuf + vb * BV * G;
    bool done = false;
    if constexpr (B::kBlocks) {
      if (t0 < v_done) {
        B::template v_block<HD, G>(p, tabs, head_off, t0 / BV, w, bbuf + vb * G, lane, O);
        done = true;
      }
    }
    if (!done) {
      const int cap = p.cap_v;
      v_rows<HD, G, true, B::kRowsInFlight>(
          [&](int i) {
            const int t = B::kWrap ? (t0 + i) % cap : t0 + i;
            return rows_v + int64_t(t) * HD;
          },
          min(BV, len - t0), w, lane, O);
    }
  }
  __syncwarp();  // the buffer is rewritten by the next tile
}

template <int HD, int G, class B>
__global__ void __launch_bounds__(kThreads, 2)
    decode_kernel(const typename B::Params p, int split, int max_splits, float* part_ml,
                  float* part_acc) {
  constexpr int NV = HD / 32;
  extern __shared__ __align__(16) float smem[];
  const int T = B::tile(p);
  const Smem L(HD, G, T);
  float* sq = smem + L.q;  // [HD][G]
  float* sqsum = smem + L.qsum;
  float* mm = smem + L.mrg_m;  // [kWarps][G]
  float* ml = smem + L.mrg_l;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  float* wbuf = smem + L.warps + warp * L.per_warp;  // [T][G]
  float* bbuf = wbuf + T * G;                        // [T / 16][G]
  uint32_t* tabs = reinterpret_cast<uint32_t*>(smem + L.end);
  if constexpr (B::kBlocks) B::load_tables(p, tabs, tid, kThreads);

  const int KV = p.n_kv_heads;
  const int n_items = p.n_chunks * KV * max_splits;
  for (int item = blockIdx.x; item < n_items; item += gridDim.x) {
    const int s_idx = item % max_splits;
    const int kvh = (item / max_splits) % KV;
    const int chunk = item / (max_splits * KV);
    const int seq = p.chunk_seq[chunk];
    const int len = p.seq_len[seq];
    const int t_begin = s_idx * split;
    if (t_begin >= len) continue;  // uniform over the block
    const int t_end = min(len, t_begin + split);

    __syncthreads();  // tables written; the previous item's shared data no longer read
    const float* qrow = p.qkv + int64_t(chunk) * p.qkv_stride + p.q_col + int64_t(kvh) * G * HD;
    for (int i = tid; i < G * HD; i += kThreads) sq[(i % HD) * G + i / HD] = qrow[i] * p.scale;
    __syncthreads();
    if (warp < G) {
      float s = 0;
      for (int c = lane; c < HD; c += 32) s += sq[c * G + warp];
      s = warp_sum(s);
      if (lane == 0) sqsum[warp] = s;
    }
    __syncthreads();
    typename B::MmaState ms;  // a policy's tensor-core tiles: their own softmax state
    if constexpr (B::kMmaTiles) ms = B::template mma_begin<HD, G>(p, tabs, sq, tid);

    const int64_t head_off = int64_t(seq) * KV + kvh;
    int k_done = 0, v_done = 0;
    if constexpr (B::kBlocks) k_done = p.seq_k_done[seq], v_done = p.seq_v_done[seq];
    // A policy's tensor-core tiles first, with their own state, then the other tiles.
    if constexpr (B::kMmaTiles)
      for (int ta = t_begin + warp * T; ta < t_end; ta += kWarps * T)
        B::template mma_tile<HD, G>(p, tabs, head_off, ta, k_done, v_done, sqsum, lane, ms, true);
    float m[G], lsum[G], O[NV][G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      m[g] = -INFINITY;
      lsum[g] = 0.0f;
#pragma unroll
      for (int j = 0; j < NV; ++j) O[j][g] = 0.0f;
    }
    if constexpr (B::kMmaTiles) B::template mma_fold<HD, G>(p, tabs, ms, wbuf, lane, m, lsum, O);
    for (int ta = t_begin + warp * T; ta < t_end; ta += kWarps * T) {
      if constexpr (B::kMmaTiles)
        if (B::template mma_tile<HD, G>(p, tabs, head_off, ta, k_done, v_done, sqsum, lane, ms,
                                        false))
          continue;  // done above
      tile<HD, G, B>(p, tabs, head_off, ta, len, k_done, v_done, sq, sqsum, wbuf, bbuf, lane, m,
                     lsum, O);
    }

      // ---- merge the warps: (m, l) first, then O scaled to the block's max.
#pragma unroll
    for (int g = 0; g < G; ++g) lsum[g] = warp_sum(lsum[g]);
    if (lane == 0)
#pragma unroll
      for (int g = 0; g < G; ++g) mm[warp * G + g] = m[g], ml[warp * G + g] = lsum[g];
    __syncthreads();
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float M = -INFINITY;
      for (int w = 0; w < kWarps; ++w) M = fmaxf(M, mm[w * G + g]);
      const float f = __expf(m[g] - M);  // 0 for a warp without tiles
#pragma unroll
      for (int j = 0; j < NV; ++j) wbuf[g * HD + NV * lane + j] = O[j][g] * f;
    }
    __syncthreads();
    const int64_t part = (int64_t(chunk) * KV + kvh) * max_splits + s_idx;
    for (int i = tid; i < G * HD; i += kThreads) {
      float s = 0;
      for (int w = 0; w < kWarps; ++w) s += smem[L.warps + w * L.per_warp + i];
      part_acc[part * G * HD + i] = s;
    }
    if (tid < G) {
      float M = -INFINITY, S = 0;
      for (int w = 0; w < kWarps; ++w) M = fmaxf(M, mm[w * G + tid]);
      for (int w = 0; w < kWarps; ++w) S += ml[w * G + tid] * __expf(mm[w * G + tid] - M);
      part_ml[(part * G + tid) * 2 + 0] = M;
      part_ml[(part * G + tid) * 2 + 1] = S;
    }
  }
}

// One block per (chunk, query head): log-sum-exp merge of the splits into the output.
template <typename T>
__global__ void merge_kernel(DecodeAttentionParams p, int split, int max_splits,
                             const float* part_ml, const float* part_acc, T* out) {
  const int chunk = blockIdx.x / p.n_heads, h = blockIdx.x % p.n_heads;
  const int G = p.n_heads / p.n_kv_heads, kvh = h / G, g = h % G, HD = p.head_dim;
  const int len = p.seq_len[p.chunk_seq[chunk]];
  const int ns = (len + split - 1) / split;
  const int64_t base = (int64_t(chunk) * p.n_kv_heads + kvh) * max_splits;
  float M = -INFINITY;
  for (int s = 0; s < ns; ++s) M = fmaxf(M, part_ml[((base + s) * G + g) * 2]);
  float L = 0;
  for (int s = 0; s < ns; ++s)
    L += part_ml[((base + s) * G + g) * 2 + 1] * __expf(part_ml[((base + s) * G + g) * 2] - M);
  const float inv = 1.0f / L;
  for (int c = threadIdx.x; c < HD; c += blockDim.x) {
    float o = 0;
    for (int s = 0; s < ns; ++s)
      o += part_acc[((base + s) * G + g) * HD + c] * __expf(part_ml[((base + s) * G + g) * 2] - M);
    out[int64_t(chunk) * p.n_heads * HD + h * HD + c] = from_f<T>(o * inv);
  }
}

// The smallest split: one tile of kSub tokens per warp.
constexpr int kMinSplit = kWarps * kSub;

inline size_t scratch_for(const DecodeAttentionParams& p, int max_splits) {
  const int G = p.n_heads / p.n_kv_heads;
  const size_t parts = size_t(p.n_chunks) * p.n_kv_heads * max_splits * G;
  return parts * 2 * sizeof(float) + parts * p.head_dim * sizeof(float);
}

// Launches decode_kernel<HD, G, B> and the merge. The split: enough items to give every resident
// block about two, each warp at least one tile; split_tokens > 0 forces it (rounded up to
// kWarps tiles).
template <int HD, int G, class B>
void launch(const CudaContext& ctx, const typename B::Params& p, int max_len, DType act,
            void* scratch, size_t scratch_bytes, int split_tokens) {
  const int T = B::tile(p);
  const size_t smem = Smem(HD, G, T).bytes() + B::table_bytes(p);
  auto kernel = decode_kernel<HD, G, B>;
  // Occupancy by shared-memory size; the kernel's dynamic limit raised to the largest size seen.
  static std::map<size_t, int> per_sm_of;
  static size_t limit = 0;
  if (smem > limit) {
    KVCOMP_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    limit = smem;
  }
  int& per_sm = per_sm_of[smem];
  if (per_sm == 0) {
    KVCOMP_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
    check(per_sm > 0, "decode attention: ", smem, " bytes of shared memory per block do not fit");
  }
  const int granule = kWarps * T;
  const int tiles = (max_len + T - 1) / T;
  const int units = p.n_chunks * p.n_kv_heads;
  const int capacity = per_sm * ctx.props().multiProcessorCount;
  int split;
  if (split_tokens > 0) {
    split = (split_tokens + granule - 1) / granule * granule;
  } else {
    const int most = (tiles + kWarps - 1) / kWarps;
    const int n_splits = std::clamp((2 * capacity + units - 1) / units, 1, most);
    const int per_warp = (tiles + kWarps * n_splits - 1) / (kWarps * n_splits);
    split = per_warp * granule;
  }
  const int max_splits = (max_len + split - 1) / split;
  const size_t need = scratch_for(p, max_splits);
  check(scratch_bytes >= need, "decode attention: scratch of ", scratch_bytes, " bytes, need ",
        need);
  float* ml = static_cast<float*>(scratch);
  float* acc = ml + size_t(p.n_chunks) * p.n_kv_heads * max_splits * G * 2;
  const int items = p.n_chunks * p.n_kv_heads * max_splits;
  kernel<<<std::min(items, capacity), kThreads, smem, ctx.stream()>>>(p, split, max_splits, ml,
                                                                      acc);
  KVCOMP_LAUNCH_CHECK();
  const DecodeAttentionParams& base = p;
  dispatch16(act, "decode attention: the output", [&](auto* tag) {
    using O = std::remove_pointer_t<decltype(tag)>;
    merge_kernel<O><<<p.n_chunks * p.n_heads, HD, 0, ctx.stream()>>>(base, split, max_splits, ml,
                                                                     acc, static_cast<O*>(p.out));
  });
  KVCOMP_LAUNCH_CHECK();
}

// Calls f(HD, G) with the runtime head_dim and group size as std::integral_constant values;
// anything else is an error naming `what`.
template <typename F>
void dispatch_shape(const DecodeAttentionParams& p, const char* what, F&& f) {
  check(p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0, what, ": ", p.n_heads,
        " query heads are not a multiple of ", p.n_kv_heads, " KV heads");
  const int G = p.n_heads / p.n_kv_heads;
  auto by_group = [&](auto hd) {
    switch (G) {
      case 1:
        return f(hd, std::integral_constant<int, 1>{});
      case 2:
        return f(hd, std::integral_constant<int, 2>{});
      case 4:
        return f(hd, std::integral_constant<int, 4>{});
      case 8:
        return f(hd, std::integral_constant<int, 8>{});
      default:
        fail(what, ": query heads per KV head must be 1, 2, 4 or 8, got ", G);
    }
  };
  if (p.head_dim == 128) return by_group(std::integral_constant<int, 128>{});
  if (p.head_dim == 64) return by_group(std::integral_constant<int, 64>{});
  fail(what, ": head_dim must be 64 or 128, got ", p.head_dim);
}

}  // namespace decode_attn
}  // namespace kvcomp
