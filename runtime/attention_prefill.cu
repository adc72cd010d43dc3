// Fused causal prefill attention (FlashAttention-2 style) over the fp16 dense cache layout.
//
// Math, per KV head g and chunk c (positions p = c.start + i, i < c.count):
//   for every query row (token i, head h of g's group):
//     s_j = (q . k_j) / sqrt(head_dim)        for keys j = 0 .. p (causal)
//     out = sum_j softmax(s)_j v_j
// computed one key tile at a time with an online softmax: per row a running max m and sum l,
//   m' = max(m, max_j s_j);  o = o * 2^(m - m') + sum_j 2^(s_j - m') v_j;  l likewise;
// (scores are kept in the log2 domain: s * log2(e), so exp is one ex2 instruction) and
// out = o / l at the end. Nothing but the output is written to device memory.
//
// Numerics (as the cuBLAS path): q rounded to fp16; S = Q K^T with fp32 accumulation; softmax in
// fp32; P rounded to fp16 for P V, fp32 accumulation; l sums the fp32 probabilities.
//
// Work split. The rows of one KV head are the pairs (token i, head j of the group), flattened
// f = i * G + j (G = n_heads / n_kv_heads), so the query heads of a GQA group share every K/V
// tile load and a short chunk (decode-like) still fills a tile. One thread block (4 warps, 128
// threads) takes kBq = 64 consecutive rows f and walks key tiles of kBk = 64 from key 0 up to the
// last row's position; tiles past it are never loaded (causal: about half the work of a square).
// Grid: x = KV head, y = (chunk, row tile), the heaviest (last) tiles of a chunk first. A
// 2048-token chunk of a 32-head model is 32 x 32 = 1024 blocks (132 SMs x 2 resident).
// Warp w owns rows 16w .. 16w + 15 of the tile: S [16 x 64] and O [16 x head_dim] live in
// registers (mma accumulators), Q [16 x head_dim] as mma A fragments loaded once.
//
// Shared memory per block: Q tile [64][hd + 8] fp16 (only at the start), K and V tiles
// [2 stages][64][hd + 8] fp16, filled with cp.async (the next tile loads while this one is
// used). The +8 halves (16 bytes) of row skew make every ldmatrix phase conflict-free: 8 rows of
// 16 bytes at a stride of 272 (or 144) bytes land on 8 distinct 4-bank groups. hd 128: 87040
// bytes (2 blocks per SM on sm_90); hd 64: 46080 bytes.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 .f16, and ldmatrix .m8n8.x4 .b16). lane = 4 * gid +
// tig (gid = lane / 4, tig = lane % 4). A 32-bit register holds two fp16, the lower column (or
// lower k) in the lower half.
//   A (16 x 16, row major):  a[0] = (row gid,     k 2tig, 2tig+1)   a[1] = (row gid + 8, same k)
//                            a[2] = (row gid,     k 8+2tig, +1)     a[3] = (row gid + 8, same k)
//   B (16 x 8, "col"):       b[0] = (k 2tig, 2tig+1;   col gid)     b[1] = (k 8+2tig, +1; col gid)
//   C/D (16 x 8, fp32):      c[0], c[1] = (row gid, col 2tig, 2tig+1)
//                            c[2], c[3] = (row gid + 8, col 2tig, 2tig+1)
//   ldmatrix.x4: lanes 8m .. 8m+7 give the addresses of rows 0..7 of matrix m; register m of
//   every lane receives (row gid, cols 2tig, 2tig+1) of matrix m; with .trans it receives
//   (rows 2tig, 2tig+1; col gid) of the matrix as stored, i.e. row gid of its transpose.
// Hence (l = lane; each mapping checked by hand for one or two lanes):
//   Q (A operand, rows 16w.., k 16kk..): lane l addresses row l % 16, column 8 * (l / 16):
//     matrix m = l / 8 is (rows 8(m&1).., cols 8(m>>1)..) -> registers a[0..3] in order.
//     lane 0: row 0, col 0; lane 31: row 15, col 8 (matrix 3 = a[3] = rows 8..15, k 8..15). OK.
//   K (B operand of S = Q K^T: B[k = dim][n = key] = K[key][dim], i.e. the K rows as stored):
//     lane l addresses key l % 8 + 8 * (l / 16), dim 8 * ((l / 8) & 1): matrices are
//     (keys 0-7, dims 0-7) (keys 0-7, dims 8-15) (keys 8-15, dims 0-7) (keys 8-15, dims 8-15)
//     -> b[0], b[1] of key block n0 and b[0], b[1] of key block n0 + 8. Register 0 of lane 5
//     (gid 1, tig 1) is K[key 1][dims 2, 3] = B[k 2, 3][n 1]: b[0] wants (k 2tig.. = 2, 3;
//     col gid = 1). OK.
//   P (A operand of O = P V) is the S accumulator itself: the C fragments of key blocks 2kk and
//     2kk + 1 are (row gid / gid+8, keys 2tig, 2tig+1) and (.., keys 8 + 2tig, ..), which are
//     a[0], a[1] and a[2], a[3] of the A fragment for keys 16kk .. 16kk + 15. No shuffles.
//   V (B operand: B[k = key][n = dim] = V[key][dim], stored key-major, so .trans): lane l
//     addresses key l % 8 + 8 * ((l / 8) & 1), dim 8 * (l / 16): matrices (keys 0-7, dims 0-7)
//     (keys 8-15, dims 0-7) (keys 0-7, dims 8-15) (keys 8-15, dims 8-15) -> b[0], b[1] of dim
//     block d0 and b[0], b[1] of dim block d0 + 8. Register 0 of lane 5 with .trans is
//     V[keys 2, 3][dim 1] = B[k 2, 3][n 1] = b[0] of (gid 1, tig 1). OK.
//
// Bytes and flops, one chunk of n tokens after s cached ones, per KV head: 4 * hd * G * n *
// (s + n / 2) flops (hd 128, 32 heads, n = 2048: 34 GFLOP per layer); from HBM: q n * G * hd * 4
// bytes, out n * G * hd * 2, K and V (s + n) * hd * 4 once; from L2: every row tile re-reads its
// K/V prefix, (n * G / 64) * (s + n / 2) * hd * 4 bytes (2048 tokens: ~0.5 GB per layer at hd
// 128, 32 heads, well under L2 bandwidth). So it is bound by mma.sync throughput, not bytes. The
// chunked cuBLAS path moved scores [H, n, L] fp32 and probabilities fp16 through HBM: 12 bytes
// per score.
// Measured on the H200 (one layer, median of 10, causal flops): 2048 tokens, 32 heads hd 128:
// 0.186 ms, 185 TFLOP/s (32/8 heads the same); hd 64: 0.110 ms; 8192 tokens 32/8: 2.12 ms,
// 259 TFLOP/s; 32768 tokens 32/32: 31 ms, 282 TFLOP/s. The cuBLAS path in the same run (reached
// with K/V 8 bytes off 16-byte alignment, so a ballpark): 0.99 ms at 2048, 11.5 ms at 8192.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "runtime/attention_prefill.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_types.cuh"

namespace kvcomp {
namespace {

constexpr int kBq = 64;    // query rows (token, head) per block
constexpr int kBk = 64;    // keys per tile
constexpr int kWarps = 4;  // each warp owns 16 query rows
constexpr int kThreads = kWarps * 32;
constexpr int kSkew = 8;        // fp16 elements of padding per shared-memory row
constexpr int kMaxChunks = 32;  // chunk descriptors per launch (kernel parameter space)
constexpr int kMaxGridY = 65535;
static_assert(kBq == 16 * kWarps, "one m16 row block per warp");
static_assert(kBk % 16 == 0, "key tiles are whole k16 steps of P V");

struct PrefillChunk {
  int seq;    // sequence (cache slot)
  int start;  // position of the chunk's first token
  int count;  // tokens
  int row;    // first row in q and out
  int tile0;  // first blockIdx.y of the chunk
};

struct PrefillParams {
  const float* qkv;    // [T, row_stride] fp32; q of head h at columns q_col + h * head_dim
  int64_t row_stride;  // floats
  int q_col;
  const __half* k;     // sequence s, KV head g at k + (s * n_kv + g) * seq_stride: [tokens, hd]
  const __half* v;     // same layout
  int64_t seq_stride;  // elements
  void* out;           // [T, n_heads * head_dim] of the activation type
  int n_heads, n_kv, group;
  float scale_log2;  // log2(e) / sqrt(head_dim)
  int n_chunks;
  PrefillChunk chunks[kMaxChunks];
};

template <int HD>
constexpr size_t smem_bytes() {
  return size_t(kBq + 4 * kBk) * (HD + kSkew) * sizeof(__half);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronous; src_bytes 0 writes zeros and reads nothing.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

// d += a (16 x 16 fp16) * b (16 x 8 fp16), fp32 accumulators.
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> fp16x2, `lo` in the lower half (the lower column of an mma fragment).
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// 2^x; ex2.approx maps -inf to +0.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ void store2(__half* p, float a, float b) {
  *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
}
__device__ __forceinline__ void store2(__nv_bfloat16* p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}

template <int HD, typename T>
__global__ void __launch_bounds__(kThreads)
    prefill_attention_kernel(const __grid_constant__ PrefillParams p) {
  constexpr int kLd = HD + kSkew;  // shared row stride, fp16 elements
  constexpr int kDk = HD / 16;     // k16 steps of Q K^T
  constexpr int kNd = HD / 8;      // n8 blocks of O
  constexpr int kNk = kBk / 8;     // n8 blocks of S
  extern __shared__ __align__(16) unsigned char smem[];
  __half* s_q = reinterpret_cast<__half*>(smem);  // [kBq][kLd]
  __half* s_k = s_q + kBq * kLd;                  // [2][kBk][kLd]
  __half* s_v = s_k + 2 * kBk * kLd;              // [2][kBk][kLd]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int gid = lane / 4, tig = lane % 4;
  const int kvh = blockIdx.x;

  // This block's chunk and row tile.
  const int y = blockIdx.y;
  int ci = 0;
  while (ci + 1 < p.n_chunks && p.chunks[ci + 1].tile0 <= y) ++ci;
  const PrefillChunk ch = p.chunks[ci];
  const int G = p.group;
  const int rows = ch.count * G;  // flattened (token, head) rows of this KV head
  const int n_tiles = (rows + kBq - 1) / kBq;
  const int f0 = (n_tiles - 1 - (y - ch.tile0)) * kBq;  // the last tiles have the most keys
  const int q_lo = ch.start + f0 / G;                   // position of the first row
  const int kv_len = ch.start + (min(f0 + kBq, rows) - 1) / G + 1;  // keys any row reads
  const int n_kt = (kv_len + kBk - 1) / kBk;

  const int64_t kv_off = (int64_t(ch.seq) * p.n_kv + kvh) * p.seq_stride;
  const __half* kg = p.k + kv_off;
  const __half* vg = p.v + kv_off;

  // Key tile kt -> stage; keys at or past kv_len become zeros (never read from global memory:
  // they may lie past tokens_cap, and a NaN there would survive a zero probability).
  auto load_kv = [&](int kt, int stage) {
    constexpr int kPerRow = HD / 8;  // 16-byte pieces per key
    static_assert(kBk * kPerRow % kThreads == 0, "whole rounds of cp.async");
    __half* dk = s_k + stage * kBk * kLd;
    __half* dv = s_v + stage * kBk * kLd;
#pragma unroll
    for (int i = 0; i < kBk * kPerRow / kThreads; ++i) {
      const int e = tid + i * kThreads;
      const int r = e / kPerRow, c = (e % kPerRow) * 8;
      const int key = kt * kBk + r;
      const bool ok = key < kv_len;
      const int64_t src = ok ? int64_t(key) * HD + c : 0;
      cp_async16(smem_u32(dk + r * kLd + c), kg + src, ok ? 16 : 0);
      cp_async16(smem_u32(dv + r * kLd + c), vg + src, ok ? 16 : 0);
    }
  };
  load_kv(0, 0);
  cp_async_commit();

  // Q tile -> fp16 shared. Rows past the chunk repeat its last row (computed, never stored), so
  // every row has at least key 0 and no row's softmax is empty.
  static_assert(kBq * HD % kThreads == 0, "whole rounds of the Q load");
  for (int i = 0; i < kBq * HD / kThreads; ++i) {
    const int e = tid + i * kThreads;
    const int r = e / HD, d = e % HD;
    const int f = min(f0 + r, rows - 1);
    const int tok = f / G, head = kvh * G + f % G;
    const float q = p.qkv[int64_t(ch.row + tok) * p.row_stride + p.q_col + head * HD + d];
    s_q[r * kLd + d] = __float2half_rn(q);
  }
  __syncthreads();
  uint32_t qa[kDk][4];
#pragma unroll
  for (int kk = 0; kk < kDk; ++kk)
    ldmatrix_x4(qa[kk], smem_u32(s_q + (warp * 16 + lane % 16) * kLd + kk * 16 + (lane / 16) * 8));

  // Positions of this thread's two rows (gid and gid + 8 of the warp's 16).
  int qpos[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int f = min(f0 + warp * 16 + gid + 8 * h, rows - 1);
    qpos[h] = ch.start + f / G;
  }

  float o[kNd][4];
#pragma unroll
  for (int i = 0; i < kNd; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY};  // running max, log2 domain
  float l[2] = {0.0f, 0.0f};            // running sum of this thread's columns

  for (int kt = 0; kt < n_kt; ++kt) {
    if (kt + 1 < n_kt) load_kv(kt + 1, (kt + 1) & 1);
    cp_async_commit();  // possibly empty: keeps "all but the newest group" = tile kt
    cp_async_wait<1>();
    __syncthreads();
    const __half* k_s = s_k + (kt & 1) * kBk * kLd;
    const __half* v_s = s_v + (kt & 1) * kBk * kLd;

    // S = Q K^T for 16 rows x kBk keys.
    float s[kNk][4];
#pragma unroll
    for (int i = 0; i < kNk; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kDk; ++kk) {
#pragma unroll
      for (int np = 0; np < kBk / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, smem_u32(k_s + (np * 16 + lane % 8 + (lane / 16) * 8) * kLd + kk * 16 +
                                ((lane / 8) & 1) * 8));
        mma_16816(s[2 * np], qa[kk], b[0], b[1]);
        mma_16816(s[2 * np + 1], qa[kk], b[2], b[3]);
      }
    }

    // Scale, causal mask (only tiles that reach past the first row's position), online softmax.
    const bool masked = kt * kBk + kBk - 1 > q_lo;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kNk; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = kt * kBk + nt * 8 + 2 * tig + (e & 1);
        float x = s[nt][e] * p.scale_log2;
        if (masked && key > qpos[e / 2]) x = -INFINITY;
        s[nt][e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
    }
    float m_use[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      // The four lanes of a quad (same gid) hold the row's 64 columns between them.
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float m_new = fmaxf(m[h], mx[h]);
      m_use[h] = m_new == -INFINITY ? 0.0f : m_new;  // a row with no key yet stays at zero
      const float alpha = exp2_approx(m[h] - m_use[h]);
      m[h] = m_new;
      l[h] *= alpha;
#pragma unroll
      for (int i = 0; i < kNd; ++i) {
        o[i][2 * h] *= alpha;
        o[i][2 * h + 1] *= alpha;
      }
    }
#pragma unroll
    for (int nt = 0; nt < kNk; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pr = exp2_approx(s[nt][e] - m_use[e / 2]);
        s[nt][e] = pr;
        l[e / 2] += pr;
      }
    }

    // O += P V: the S accumulators of key blocks 2kk, 2kk + 1 are the A fragment of keys 16kk..
#pragma unroll
    for (int kk = 0; kk < kBk / 16; ++kk) {
      const uint32_t a[4] = {pack_half2(s[2 * kk][0], s[2 * kk][1]),
                             pack_half2(s[2 * kk][2], s[2 * kk][3]),
                             pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < HD / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, smem_u32(v_s + (kk * 16 + lane % 8 + ((lane / 8) & 1) * 8) * kLd +
                                      dp * 16 + (lane / 16) * 8));
        mma_16816(o[2 * dp], a, b[0], b[1]);
        mma_16816(o[2 * dp + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // the next iteration's prefetch overwrites this stage
  }

  // out = o / l, rows of the chunk only.
  T* out = static_cast<T*>(p.out);
  const int64_t out_stride = int64_t(p.n_heads) * HD;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float sum = l[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = 1.0f / sum;  // > 0: every row has key 0
    const int f = f0 + warp * 16 + gid + 8 * h;
    if (f >= rows) continue;
    const int tok = f / G, head = kvh * G + f % G;
    T* dst = out + int64_t(ch.row + tok) * out_stride + head * HD + 2 * tig;
#pragma unroll
    for (int i = 0; i < kNd; ++i) store2(dst + i * 8, o[i][2 * h] * inv, o[i][2 * h + 1] * inv);
  }
}

template <int HD, typename T>
void launch(const CudaContext& ctx, const PrefillParams& p, int n_kv, int grid_y) {
  auto kernel = prefill_attention_kernel<HD, T>;
  constexpr size_t smem = smem_bytes<HD>();
  // The shared-memory limit is raised at the first launch on each device.
  static std::array<bool, 64> raised{};
  const int d = ctx.device();
  if (d >= int(raised.size()) || !raised[d]) {
    KVCOMP_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    if (d < int(raised.size())) raised[d] = true;
  }
  kernel<<<dim3(n_kv, grid_y), kThreads, smem, ctx.stream()>>>(p);
  KVCOMP_LAUNCH_CHECK();
}

template <int HD>
void launch_act(const CudaContext& ctx, DType act, const PrefillParams& p, int n_kv, int grid_y) {
  dispatch16(act, "GPU activations", [&](auto* tag) {
    launch<HD, std::remove_pointer_t<decltype(tag)>>(ctx, p, n_kv, grid_y);
  });
}

}  // namespace

bool prefill_attention_supported(const KvShape& shape, const DenseAttentionArgs& a) {
  const bool hd_ok = shape.head_dim == 64 || shape.head_dim == 128;
  const bool aligned = reinterpret_cast<uintptr_t>(a.k) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(a.v) % 16 == 0 && a.seq_stride % 8 == 0;
  return hd_ok && aligned && shape.n_kv_heads > 0 && shape.n_heads % shape.n_kv_heads == 0;
}

void prefill_attention_cuda(const CudaContext& ctx, const KvShape& shape,
                            const DenseAttentionArgs& a, const QkvView& x, const StepLayout& step,
                            DType act, void* out) {
  check(prefill_attention_supported(shape, a), "prefill attention: head_dim ", shape.head_dim,
        " or the cache layout is not supported (head_dim 64 or 128, 16-byte aligned K/V)");
  const int hd = shape.head_dim, G = shape.n_heads / shape.n_kv_heads;
  PrefillParams p{};
  p.qkv = x.qkv;
  p.row_stride = x.row_stride;
  p.q_col = x.q_col;
  p.k = static_cast<const __half*>(a.k);
  p.v = static_cast<const __half*>(a.v);
  p.seq_stride = a.seq_stride;
  p.out = out;
  p.n_heads = shape.n_heads;
  p.n_kv = shape.n_kv_heads;
  p.group = G;
  p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(hd)));  // log2(e) / sqrt(hd)
  auto flush = [&](int grid_y) {
    if (p.n_chunks == 0) return;
    if (hd == 64)
      launch_act<64>(ctx, act, p, shape.n_kv_heads, grid_y);
    else
      launch_act<128>(ctx, act, p, shape.n_kv_heads, grid_y);
    p.n_chunks = 0;
  };
  int grid_y = 0;
  for (const auto& c : step.chunks) {
    if (c.count <= 0) continue;
    check(c.start >= 0 && c.start + c.count <= a.tokens_cap, "prefill attention: sequence ", c.seq,
          " positions ", c.start, "..", c.start + c.count - 1, " past the cache's ", a.tokens_cap,
          " tokens");
    const int64_t tiles = (int64_t(c.count) * G + kBq - 1) / kBq;
    check(tiles <= kMaxGridY, "prefill attention: a chunk of ", c.count, " tokens is too long");
    if (p.n_chunks == kMaxChunks || grid_y + tiles > kMaxGridY) {
      flush(grid_y);
      grid_y = 0;
    }
    p.chunks[p.n_chunks++] = PrefillChunk{c.seq, c.start, c.count, c.row, grid_y};
    grid_y += int(tiles);
  }
  flush(grid_y);
}

}  // namespace kvcomp
