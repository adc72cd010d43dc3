// The previous fused kernel (v2 of docs/perf-log.md), kept for the A/B measurement of the new one.
// Fused decode attention over the KVComp cache (DESIGN.md item 6).
//
// Work item = (chunk, KV head, split of S tokens). A thread block owns one item at a time (a
// persistent grid walks the items) and serves all G query heads of the KV head from one decode:
//   K phase: one thread per token. Its K unit (head_dim symbols) is Huffman-decoded with a table
//     lookup per symbol; the threads of a warp walk the channels in lockstep, so q[c] is a
//     shared-memory broadcast, and the dot products of all G heads accumulate in registers.
//     K blocks have one step d and offset m0, so q.k' = d * (sum_c q_c s_c + m0 sum_c q_c).
//   softmax of the split's scores: max m and sum l per head (merged across splits later).
//   V phase: one thread per channel. Its V unit (the block's symbols of that channel) is decoded
//     the same way; tokens advance in lockstep, so w_t = p_t d_t is a broadcast, and
//     acc_c = sum_t w_t s_tc + sum_t w_t m0_t.
//   The uncompressed recent window (ring buffers) is read in the same pass.
// A second small kernel merges the splits' (m, l, acc) by log-sum-exp into the output.
//
// Bytes: each compressed block is read once per step (units by one thread each, through L1),
// the window once; nothing decoded is written back. Instructions per decoded symbol: window
// extract, table load, mask, 64-bit shift, length update, one FMA per query head of the group.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "compress/attention_kvcomp.h"
#include "compress/format.h"
#include "compress/format_cuda.cuh"
#include "runtime/cuda_check.h"
#include "runtime/cuda_types.cuh"

namespace kvcomp {
namespace v2 {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint32_t bswap32(uint32_t x) {
  return __byte_perm(x, 0, 0x0123);
}

// A unit's bits, MSB first, through a 64-bit window. After refill() at least 32 bits are
// buffered; group() then decodes SPR codes (SPR * max_code_len <= 32) from the window's top 32
// bits with 32-bit shifts only, and advances the window once per group.
struct BitReader {
  uint64_t buf;
  int nbits;
  const uint32_t* words;
  int wi;

  __device__ __forceinline__ void init(const uint32_t* payload_words, uint32_t byte_off) {
    words = payload_words;
    wi = int(byte_off >> 2);
    const uint32_t sh = (byte_off & 3u) * 8u;
    const uint64_t hi = bswap32(__ldg(words + wi));
    const uint64_t lo = bswap32(__ldg(words + wi + 1));
    buf = ((hi << 32) | lo) << sh;
    nbits = 64 - int(sh);
    wi += 2;
  }
  // Only while symbols remain, so that at most one word past the unit is read (the payload
  // section's slack covers it).
  __device__ __forceinline__ void refill() {
    if (nbits < 32) {
      buf |= uint64_t(bswap32(__ldg(words + wi))) << (32 - nbits);
      ++wi;
      nbits += 32;
    }
  }
  // Decodes SPR symbols, calling f(j, value). The value is the table entry read as a float: the
  // symbol with the code length in its 5 low mantissa bits, within 2^-18 relative of the symbol
  // (the length bits are not masked off: one instruction less per symbol).
  template <int R, int SPR, typename F>
  __device__ __forceinline__ void group(const uint32_t* table, int shift, int lane, F&& f) {
    uint32_t w = uint32_t(buf >> 32);
    int used = 0;
#pragma unroll
    for (int j = 0; j < SPR; ++j) {
      const uint32_t idx = w >> shift;
      const uint32_t e = R == 1 ? table[idx] : table[idx * R + lane];
      const int len = int(e & kDecodeEntryLenMask);
      w <<= len;
      used += len;
      f(j, __uint_as_float(e));
    }
    buf <<= used;
    nbits -= used;
  }
};

// Bytes of units [0, u) of a block: the sum of the first u length bytes (4 at a time).
__device__ __forceinline__ uint32_t unit_offset(const uint8_t* lengths, int u) {
  const uint32_t* w = reinterpret_cast<const uint32_t*>(lengths);
  uint32_t sum = 0;
  const int full = u >> 2;
  for (int i = 0; i < full; ++i) sum = __dp4a(__ldg(w + i), 0x01010101u, sum);
  const int rem = u & 3;
  if (rem) sum = __dp4a(__ldg(w + full) & ((1u << (8 * rem)) - 1u), 0x01010101u, sum);
  return sum;
}

__device__ __forceinline__ float h2f(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}

template <int HD, int G, int R, int SPR>
struct Fused {
  static constexpr int kSub = kThreads / HD;  // threads per channel in the V phase

  struct Smem {
    float q[HD * G];  // [c][g], pre-scaled by 1/sqrt(head_dim)
    float qsum[G];
    float m[G], l[G];
  };

  static size_t table_words(int bits) { return (size_t(1) << bits) * R; }
  // sc: [G][split] scores, then probabilities, then V weights; wm: [G][split] weight * m0, then
  // the reduction buffer; bias: [split / block_v][G].
  static size_t smem_bytes(int split, int k_bits, int v_bits, int block_v) {
    return sizeof(Smem) + sizeof(float) * size_t(G) * split * 2 +
           sizeof(float) * std::max<size_t>(0, size_t(split / block_v) * G) +
           4 * (table_words(k_bits) + table_words(v_bits));
  }
};

// A K unit on the fast path: a Huffman block with one step for the block.
struct KUnit {
  const uint32_t* words;
  uint32_t off;
  float d, m0;
};

template <int HD, int G, int R, int SPR>
__device__ __forceinline__ void decode_k2(const KUnit& a, const KUnit& b, const float* q,
                                          const uint32_t* tab, int shift, int lane, float* da,
                                          float* db) {
  BitReader ra, rb;
  ra.init(a.words, a.off);
  rb.init(b.words, b.off);
#pragma unroll
  for (int c0 = 0; c0 < HD; c0 += SPR) {
    ra.refill();
    rb.refill();
    ra.template group<R, SPR>(tab, shift, lane, [&](int j, float s) {
#pragma unroll
      for (int g = 0; g < G; ++g) da[g] = fmaf(q[(c0 + j) * G + g], s, da[g]);
    });
    rb.template group<R, SPR>(tab, shift, lane, [&](int j, float s) {
#pragma unroll
      for (int g = 0; g < G; ++g) db[g] = fmaf(q[(c0 + j) * G + g], s, db[g]);
    });
  }
}

// Score of any K token (every block kind, raw blocks, the window), one at a time.
template <int HD, int G, int R, int SPR>
__device__ void k_scores_one(const KvcompAttentionParams& p, int64_t head_off, int t, int k_done,
                             const float* q, const float* qsum, const uint32_t* tab, int lane,
                             float* dot) {
  const int shift = 32 - p.k_bits;
#pragma unroll
  for (int g = 0; g < G; ++g) dot[g] = 0.0f;
  if (t < k_done) {
    const int b = t / p.block_k, u = t - b * p.block_k;
    const uint8_t* blk = p.k_blocks[head_off * p.max_k_blocks + b];
    const BlockHeader h = *reinterpret_cast<const BlockHeader*>(blk);
    if (h.mode == uint8_t(BlockMode::kHuffman)) {
      const BlockKind kind = BlockKind(h.kind);
      BitReader br;
      br.init(reinterpret_cast<const uint32_t*>(blk + block_payload_offset(kind, h.n_tokens, HD)),
              unit_offset(blk + block_lengths_offset(), u));
      if (kind == BlockKind::kKBlock) {
#pragma unroll
        for (int c0 = 0; c0 < HD; c0 += SPR) {
          br.refill();
          br.template group<R, SPR>(tab, shift, lane, [&](int j, float s) {
#pragma unroll
            for (int g = 0; g < G; ++g) dot[g] = fmaf(q[(c0 + j) * G + g], s, dot[g]);
          });
        }
#pragma unroll
        for (int g = 0; g < G; ++g) dot[g] = (dot[g] + float(h.m0) * qsum[g]) * h.d;
      } else {  // K channel-wise: a step and offset per channel
        const QuantParams16* qp =
            reinterpret_cast<const QuantParams16*>(blk + block_params_offset(kind, h.n_tokens, HD));
        for (int c0 = 0; c0 < HD; c0 += SPR) {
          br.refill();
          br.template group<R, SPR>(tab, shift, lane, [&](int j, float s) {
            const QuantParams16 prm = qp[c0 + j];
            const float x = (s + float(prm.m0)) * h2f(prm.d);
#pragma unroll
            for (int g = 0; g < G; ++g) dot[g] = fmaf(q[(c0 + j) * G + g], x, dot[g]);
          });
        }
      }
    } else {  // raw fallback block: fp16 values [n_tokens][HD]
      const uint16_t* row =
          reinterpret_cast<const uint16_t*>(blk + raw_block_values_offset()) + u * HD;
      for (int c = 0; c < HD; ++c) {
        const float x = h2f(row[c]);
#pragma unroll
        for (int g = 0; g < G; ++g) dot[g] = fmaf(q[c * G + g], x, dot[g]);
      }
    }
  } else {  // recent window
    const uint4* row =
        reinterpret_cast<const uint4*>(p.ring_k + (head_off * p.cap_k + t % p.cap_k) * HD);
#pragma unroll 4
    for (int c8 = 0; c8 < HD / 8; ++c8) {
      const uint4 v = __ldg(row + c8);
      const uint32_t w4[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w4[k]));
        const int c = c8 * 8 + 2 * k;
#pragma unroll
        for (int g = 0; g < G; ++g) {
          dot[g] = fmaf(q[c * G + g], f.x, dot[g]);
          dot[g] = fmaf(q[(c + 1) * G + g], f.y, dot[g]);
        }
      }
    }
  }
}

// The fast-path description of token t's K unit, if it has one.
template <int HD>
__device__ __forceinline__ bool k_fast(const KvcompAttentionParams& p, int64_t head_off, int t,
                                       int k_done, KUnit& k) {
  if (t >= k_done) return false;
  const int b = t / p.block_k, u = t - b * p.block_k;
  const uint8_t* blk = p.k_blocks[head_off * p.max_k_blocks + b];
  const BlockHeader h = *reinterpret_cast<const BlockHeader*>(blk);
  if (h.mode != uint8_t(BlockMode::kHuffman) || h.kind != uint8_t(BlockKind::kKBlock)) return false;
  k.words = reinterpret_cast<const uint32_t*>(
      blk + block_payload_offset(BlockKind::kKBlock, h.n_tokens, HD));
  k.off = unit_offset(blk + block_lengths_offset(), u);
  k.d = h.d;
  k.m0 = float(h.m0);
  return true;
}

// One channel of one V block into acc (Huffman: sum_t w_t s_t + bias; raw: sum_t w_t x_t).
template <int HD, int G, int R, int SPR>
__device__ __forceinline__ void v_unit(const uint8_t* blk, int c, const float* w, int split,
                                       const float* bias, const uint32_t* tab, int shift, int lane,
                                       float* acc) {
  const BlockHeader h = *reinterpret_cast<const BlockHeader*>(blk);
  if (h.mode == uint8_t(BlockMode::kHuffman)) {
    BitReader br;
    br.init(reinterpret_cast<const uint32_t*>(
                blk + block_payload_offset(BlockKind(h.kind), h.n_tokens, HD)),
            unit_offset(blk + block_lengths_offset(), c));
    for (int tt = 0; tt < h.n_tokens; tt += SPR) {
      br.refill();
      br.template group<R, SPR>(tab, shift, lane, [&](int j, float s) {
#pragma unroll
        for (int g = 0; g < G; ++g) acc[g] = fmaf(w[g * split + tt + j], s, acc[g]);
      });
    }
#pragma unroll
    for (int g = 0; g < G; ++g) acc[g] += bias[g];
  } else {
    const uint16_t* vals = reinterpret_cast<const uint16_t*>(blk + raw_block_values_offset());
    for (int tt = 0; tt < h.n_tokens; ++tt) {
      const float x = h2f(vals[tt * HD + c]);
#pragma unroll
      for (int g = 0; g < G; ++g) acc[g] = fmaf(w[g * split + tt], x, acc[g]);
    }
  }
}

template <int HD, int G, int R, int SPR>
__global__ void __launch_bounds__(kThreads, R == 32 ? 2 : 4)
    fused_attention_kernel(KvcompAttentionParams p, int split, int max_splits, float* part_ml,
                           float* part_acc) {
  using F = Fused<HD, G, R, SPR>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  auto& S = *reinterpret_cast<typename F::Smem*>(smem_raw);
  float* sc = reinterpret_cast<float*>(smem_raw + sizeof(typename F::Smem));  // [G][split]
  float* wm = sc + size_t(G) * split;                                         // [G][split]
  float* bias = wm + size_t(G) * split;  // [split / block_v][G]
  uint32_t* ktab = reinterpret_cast<uint32_t*>(bias + size_t(split / p.block_v) * G);
  uint32_t* vtab = ktab + (size_t(1) << p.k_bits) * R;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int KV = p.n_kv_heads;
  const int n_items = p.n_chunks * KV * max_splits;
  const int kshift = 32 - p.k_bits, vshift = 32 - p.v_bits;
  int loaded_head = -1;

  for (int item = blockIdx.x; item < n_items; item += gridDim.x) {
    const int s_idx = item % max_splits;
    const int kvh = (item / max_splits) % KV;
    const int chunk = item / (max_splits * KV);
    const int seq = p.chunk_seq[chunk];
    const int len = p.seq_len[seq];
    const int t0 = s_idx * split;
    if (t0 >= len) continue;  // uniform over the block
    const int t1 = min(len, t0 + split);
    const int n = t1 - t0;
    const int k_done = p.seq_k_done[seq], v_done = p.seq_v_done[seq];

    __syncthreads();  // the previous item's shared data is no longer read
    // Decode tables (reloaded only when the codebook changes).
    const int head_key = 0;
    if (head_key != loaded_head) {
      const uint32_t* kt = p.k_table;
      const uint32_t* vt = p.v_table;
      const int nk = (1 << p.k_bits) * R, nv = (1 << p.v_bits) * R;
      for (int i = tid; i < nk; i += kThreads) ktab[i] = __ldg(kt + i / R);
      for (int i = tid; i < nv; i += kThreads) vtab[i] = __ldg(vt + i / R);
      loaded_head = head_key;
    }
    // Queries of the group, pre-scaled.
    const float* qrow = p.qkv + int64_t(chunk) * p.qkv_stride + p.q_col + int64_t(kvh) * G * HD;
    for (int i = tid; i < G * HD; i += kThreads) {
      const int g = i / HD, c = i % HD;
      S.q[c * G + g] = qrow[i] * p.scale;
    }
    __syncthreads();
    if (tid < G) {
      float s = 0;
      for (int c = 0; c < HD; ++c) s += S.q[c * G + tid];
      S.qsum[tid] = s;
    }
    __syncthreads();

    // ---- K phase: scores of the split's tokens; two tokens per thread decoded side by side.
    const int64_t head_off = int64_t(seq) * KV + kvh;
    for (int tl = tid; tl < n; tl += 2 * kThreads) {
      const int ta = t0 + tl, tb = ta + kThreads;
      const bool has_b = tl + kThreads < n;
      KUnit ua, ub;
      float da[G], db[G];
      if (has_b && k_fast<HD>(p, head_off, ta, k_done, ua) &&
          k_fast<HD>(p, head_off, tb, k_done, ub)) {
#pragma unroll
        for (int g = 0; g < G; ++g) da[g] = db[g] = 0.0f;
        decode_k2<HD, G, R, SPR>(ua, ub, S.q, ktab, kshift, lane, da, db);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          da[g] = (da[g] + ua.m0 * S.qsum[g]) * ua.d;
          db[g] = (db[g] + ub.m0 * S.qsum[g]) * ub.d;
        }
      } else {
        k_scores_one<HD, G, R, SPR>(p, head_off, ta, k_done, S.q, S.qsum, ktab, lane, da);
        if (has_b)
          k_scores_one<HD, G, R, SPR>(p, head_off, tb, k_done, S.q, S.qsum, ktab, lane, db);
      }
#pragma unroll
      for (int g = 0; g < G; ++g) {
        sc[g * split + tl] = da[g];
        if (has_b) sc[g * split + tl + kThreads] = db[g];
      }
    }
    __syncthreads();

    // ---- softmax state of the split, per query head: one warp per head.
    for (int g = warp; g < G; g += kThreads / 32) {
      float mx = -INFINITY;
      for (int i = lane; i < n; i += 32) mx = fmaxf(mx, sc[g * split + i]);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      float sum = 0;
      for (int i = lane; i < n; i += 32) {
        const float e = __expf(sc[g * split + i] - mx);
        sc[g * split + i] = e;
        sum += e;
      }
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      if (lane == 0) S.m[g] = mx, S.l[g] = sum;
    }
    __syncthreads();

    // ---- V weights of the compressed tokens: w = p * d (Huffman) or p (raw), and w * m0.
    // (d, m0) of a token: v_token_params (format.h), for kV and kVCompact blocks alike.
    const int BV = p.block_v;
    const int nvc = max(0, min(t1, v_done) - t0);  // compressed V tokens of the split
    for (int tl = tid; tl < nvc; tl += kThreads) {
      const int t = t0 + tl;
      const uint8_t* blk = p.v_blocks[head_off * p.max_v_blocks + t / BV];
      const BlockHeader h = *reinterpret_cast<const BlockHeader*>(blk);
      float d = 1.0f, m0 = 0.0f;
      if (h.mode == uint8_t(BlockMode::kHuffman)) {
        const GroupParams prm = v_token_params(h, blk, uint32_t(t % BV), kVStepTableDev);
        d = prm.d;
        m0 = float(prm.m0);
      }
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float w = sc[g * split + tl] * d;
        sc[g * split + tl] = w;
        wm[g * split + tl] = w * m0;
      }
    }
    __syncthreads();
    const int nvb = nvc / BV;  // whole blocks: split and v_done are multiples of BV
    for (int pr = warp; pr < nvb * G; pr += kThreads / 32) {
      const int jb = pr / G, g = pr % G;
      float s = 0;
      for (int tt = lane; tt < BV; tt += 32) s += wm[g * split + jb * BV + tt];
      for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      if (lane == 0) bias[jb * G + g] = s;
    }
    __syncthreads();

    // ---- V phase: thread (sub, c) decodes channel c of blocks sub, sub + kSub, ... two at a
    // time; every lane of a warp is at the same token, so w is a broadcast.
    const int sub = tid / HD, c = tid % HD;
    float acc[G], acc2[G];
#pragma unroll
    for (int g = 0; g < G; ++g) acc[g] = acc2[g] = 0.0f;
    int jb = sub;
    for (; jb + F::kSub < nvb; jb += 2 * F::kSub) {
      const int t_a = t0 + jb * BV, t_b = t_a + F::kSub * BV;
      const uint8_t* ba = p.v_blocks[head_off * p.max_v_blocks + t_a / BV];
      const uint8_t* bb = p.v_blocks[head_off * p.max_v_blocks + t_b / BV];
      const BlockHeader ha = *reinterpret_cast<const BlockHeader*>(ba);
      const BlockHeader hb = *reinterpret_cast<const BlockHeader*>(bb);
      if (ha.mode == uint8_t(BlockMode::kHuffman) && hb.mode == uint8_t(BlockMode::kHuffman)) {
        BitReader ra, rb;
        ra.init(reinterpret_cast<const uint32_t*>(
                    ba + block_payload_offset(BlockKind(ha.kind), ha.n_tokens, HD)),
                unit_offset(ba + block_lengths_offset(), c));
        rb.init(reinterpret_cast<const uint32_t*>(
                    bb + block_payload_offset(BlockKind(hb.kind), hb.n_tokens, HD)),
                unit_offset(bb + block_lengths_offset(), c));
        const float* wa = sc + jb * BV;
        const float* wb = sc + (jb + F::kSub) * BV;
        for (int tt = 0; tt < BV; tt += SPR) {
          ra.refill();
          rb.refill();
          ra.template group<R, SPR>(vtab, vshift, lane, [&](int j, float s) {
#pragma unroll
            for (int g = 0; g < G; ++g) acc[g] = fmaf(wa[g * split + tt + j], s, acc[g]);
          });
          rb.template group<R, SPR>(vtab, vshift, lane, [&](int j, float s) {
#pragma unroll
            for (int g = 0; g < G; ++g) acc2[g] = fmaf(wb[g * split + tt + j], s, acc2[g]);
          });
        }
#pragma unroll
        for (int g = 0; g < G; ++g) {
          acc[g] += bias[jb * G + g];
          acc2[g] += bias[(jb + F::kSub) * G + g];
        }
      } else {
        v_unit<HD, G, R, SPR>(ba, c, sc + jb * BV, split, bias + jb * G, vtab, vshift, lane, acc);
        v_unit<HD, G, R, SPR>(bb, c, sc + (jb + F::kSub) * BV, split, bias + (jb + F::kSub) * G,
                              vtab, vshift, lane, acc2);
      }
    }
    if (jb < nvb) {
      const uint8_t* blk = p.v_blocks[head_off * p.max_v_blocks + (t0 + jb * BV) / BV];
      v_unit<HD, G, R, SPR>(blk, c, sc + jb * BV, split, bias + jb * G, vtab, vshift, lane, acc);
    }
    // Recent V tokens of the split, spread over the sub-groups.
    for (int t = max(t0, v_done) + sub; t < t1; t += F::kSub) {
      const float x = h2f(p.ring_v[(head_off * p.cap_v + t % p.cap_v) * HD + c]);
#pragma unroll
      for (int g = 0; g < G; ++g) acc2[g] = fmaf(sc[g * split + (t - t0)], x, acc2[g]);
    }
    // Sum the sub-groups and write the split's partial state.
    float* red = wm;  // [kSub][G][HD] (wm is no longer read)
    __syncthreads();
#pragma unroll
    for (int g = 0; g < G; ++g) red[(sub * G + g) * HD + c] = acc[g] + acc2[g];
    __syncthreads();
    const int64_t part = (int64_t(chunk) * KV + kvh) * max_splits + s_idx;
    for (int i = tid; i < G * HD; i += kThreads) {
      float s = 0;
#pragma unroll
      for (int sb = 0; sb < F::kSub; ++sb) s += red[sb * G * HD + i];
      part_acc[part * G * HD + i] = s;
    }
    if (tid < G) {
      part_ml[(part * G + tid) * 2 + 0] = S.m[tid];
      part_ml[(part * G + tid) * 2 + 1] = S.l[tid];
    }
  }
}

// One block per (chunk, query head): log-sum-exp merge of the splits.
template <typename T>
__global__ void merge_kernel(KvcompAttentionParams p, int split, int max_splits,
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

int pick_split(const KvcompAttentionParams& p, int max_len, int sms, int group) {
  // Enough items to fill the GPU a few times over; scores of a split stay in shared memory.
  const int64_t work = int64_t(max_len) * p.n_kv_heads * p.n_chunks;
  int64_t s = work / (int64_t(sms) * 4);
  s = (s + 255) / 256 * 256;
  const int cap = std::max(256, 4096 / group);
  return int(std::clamp<int64_t>(s, 256, cap));
}

template <int HD, int G, int R, int SPR>
void launch(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len, int split,
            float* part_ml, float* part_acc) {
  using F = Fused<HD, G, R, SPR>;
  const int max_splits = (max_len + split - 1) / split;
  const size_t smem = F::smem_bytes(split, p.k_bits, p.v_bits, p.block_v);
  auto kernel = fused_attention_kernel<HD, G, R, SPR>;
  KVCOMP_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0;
  KVCOMP_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  check(per_sm > 0, "kvcomp attention: ", smem, " bytes of shared memory per block do not fit");
  const int items = p.n_chunks * p.n_kv_heads * max_splits;
  const int grid = std::min(items, per_sm * ctx.props().multiProcessorCount);
  kernel<<<grid, kThreads, smem, ctx.stream()>>>(p, split, max_splits, part_ml, part_acc);
  KVCOMP_LAUNCH_CHECK();
}

template <int HD, int G>
void launch_tables(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len, int split,
                   int replicas, float* ml, float* acc) {
  const int bits = std::max(p.k_bits, p.v_bits);
  if (bits <= 8 && replicas == 32) return launch<HD, G, 32, 4>(ctx, p, max_len, split, ml, acc);
  if (bits <= 8) return launch<HD, G, 1, 4>(ctx, p, max_len, split, ml, acc);
  return launch<HD, G, 1, 2>(ctx, p, max_len, split, ml, acc);
}

template <int HD>
void launch_group(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len, int split,
                  int replicas, float* ml, float* acc) {
  switch (p.n_heads / p.n_kv_heads) {
    case 1:
      return launch_tables<HD, 1>(ctx, p, max_len, split, replicas, ml, acc);
    case 2:
      return launch_tables<HD, 2>(ctx, p, max_len, split, replicas, ml, acc);
    case 4:
      return launch_tables<HD, 4>(ctx, p, max_len, split, replicas, ml, acc);
    case 8:
      return launch_tables<HD, 8>(ctx, p, max_len, split, replicas, ml, acc);
    default:
      fail("kvcomp attention: query heads per KV head must be 1, 2, 4 or 8, got ",
           p.n_heads / p.n_kv_heads);
  }
}

size_t scratch_for(const KvcompAttentionParams& p, int max_splits) {
  const int G = p.n_heads / p.n_kv_heads;
  const size_t parts = size_t(p.n_chunks) * p.n_kv_heads * max_splits * G;
  return parts * 2 * sizeof(float) + parts * p.head_dim * sizeof(float);
}

}  // namespace

}  // namespace v2

size_t kvcomp_attention_v2_scratch_bytes(const KvcompAttentionParams& p, int max_len) {
  using namespace v2;
  return scratch_for(p, (max_len + 255) / 256);  // the smallest split bounds every choice
}

void kvcomp_attention_v2_cuda(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len,
                              DType act, void* scratch, size_t scratch_bytes, int replicas) {
  using namespace v2;
  if (p.n_chunks == 0 || max_len == 0) return;
  check(p.head_dim == 64 || p.head_dim == 128, "kvcomp attention: head_dim must be 64 or 128, got ",
        p.head_dim);
  check(p.k_bits >= 1 && p.k_bits <= kMaxCodeLen && p.v_bits >= 1 && p.v_bits <= kMaxCodeLen,
        "kvcomp attention: decode tables of 1..12 bits expected");
  const int G = p.n_heads / p.n_kv_heads;
  int split = pick_split(p, max_len, ctx.props().multiProcessorCount, G);
  const int lcm_block = std::max(p.block_k, p.block_v);  // both are powers of two
  split = (split + lcm_block - 1) / lcm_block * lcm_block;
  const int max_splits = (max_len + split - 1) / split;
  const size_t need = scratch_for(p, max_splits);
  check(scratch_bytes >= need, "kvcomp attention: scratch of ", scratch_bytes, " bytes, need ",
        need);
  float* ml = static_cast<float*>(scratch);
  float* acc = ml + size_t(p.n_chunks) * p.n_kv_heads * max_splits * G * 2;
  if (p.head_dim == 128)
    launch_group<128>(ctx, p, max_len, split, replicas, ml, acc);
  else
    launch_group<64>(ctx, p, max_len, split, replicas, ml, acc);
  const int threads = p.head_dim;
  dispatch16(act, "kvcomp attention: the output", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    merge_kernel<T><<<p.n_chunks * p.n_heads, threads, 0, ctx.stream()>>>(
        p, split, max_splits, ml, acc, static_cast<T*>(p.out));
  });
  KVCOMP_LAUNCH_CHECK();
}

}  // namespace kvcomp
