// Fused decode attention over the KVComp cache (DESIGN.md item 6), for .cu files: the policy
// that puts KVComp blocks in front of the recent window's rows in runtime/attention_decode.cuh's
// kernel (warps walking tiles of tokens with an online softmax, split-K, log-sum-exp merge).
//
// Decoding. A K block's units are its tokens: lane l of a warp decodes the units of tokens
// 4l..4l+3 of a 128-token pass side by side, four independent bit streams in lockstep over the
// channels, so q[c][g] is a shared-memory broadcast and one decoded symbol feeds the G query
// heads of the group; q.k' = d * (sum_c q_c s_c + m0 sum_c q_c). A V block's units are its
// channels: lane l decodes channels NV*l .. NV*l + NV-1 (NV = head_dim / 32) in lockstep over
// the block's tokens, so w_t = p_t d_t is a broadcast; acc_c = sum_t w_t s_tc + sum_t w_t m0_t.
// Unit offsets come from one warp scan of the block's length bytes (a lane's units are
// consecutive: one 32-bit load of their lengths).
//
// The bit reader of one stream holds two words w0, w1 of the unit (MSB first), the next word
// prefetched, and a bit offset s into w0. A group of SPR codes (SPR * longest code <= 32) is
// decoded from the window win = (w0:w1) << s:
//   e = table[win >> (32 - bits)] (replicated per lane: no bank conflicts); win <<= e (the
//   funnel shift reads the low 5 bits of e, the code length); t += e.
// An entry (format.h) is the symbol as a float with the length in its low mantissa bits and
// bits 5..15 zero, so the low byte of s + sum(e) is s plus the group's bits: at most one word is
// consumed per group, replaced by the prefetched one, whose successor is loaded then (a group
// ahead of its use). Per symbol: shift, address, table load, funnel shift, add, and G FMAs with
// the entry read as a float (within 2^-18 of the symbol); per group: the window and the advance.
//
// Fixed-length codes (kvcomp-fixed: every code has B bits, the code of s is s). A unit is its
// symbols bit-packed MSB-first, so 32 symbols are exactly B words and symbol i sits at bits
// [B i, B i + B): the fast paths load the words and unpack each symbol with one shift (a funnel
// shift when it straddles two words) and one LOP3 that puts it in mantissa bits [23 - B, 23)
// under the exponent of 1.0, giving f = 1 + s 2^-B; no table, no serial dependency, no
// conversion. Sums of f become sums of s by the exact identity
//   sum_i x_i s_i = 2^B (sum_i x_i f_i - sum_i x_i),
// with f in [1, 2) so the subtraction loses nothing that matters (fp32 error ~2^-19 of a step).
// Lane-private units read straight from global memory would make every warp load touch 32 cache
// lines (the L1 then moves 4 bytes per cycle); the fast paths first copy a pass's units, which
// are contiguous, into a per-warp staging buffer with coalesced cp.async copies.
//
// Tensor cores (a build option, KVCOMP_FIXED_MMA_MIN_G: kvcomp-fixed, head_dim 128, up to G = 4
// query heads per KV head; fp32 FMAs need G per symbol). q.K and p.V run as mma.m16n8k16 with the unpacked values as the A operand:
// K: 16 tokens x 16 channels, V: 16 channels x 16 tokens, in fp16 as 1 + s 2^-B (exact for
// B <= 10); the B operand's 8 columns are each head's q (or w) rounded to fp16 and what that
// rounding left, also in fp16, so that their sum is the fp32 value within 2^-22; the identity
// above removes the 1s. The reduction dimension may be permuted freely (A and B agree), so a
// thread takes whole 32-symbol groups of a unit (K: channels 32 tig.., V: tokens 32 tig..) whose
// bit positions are constants, and pairs two symbols 16 bits apart when B divides 16 (one shift
// and one LOP3 per two symbols). The staged units' rows are padded so that the fragments' reads
// hit every bank once (mma_stride). A q or weight outside fp16's range takes the FMA path.
//
// Tensor-core tiles (KvcompMma, kvcomp-fixed at head_dim 128, KvcompAttentionTuning::mma_tiles):
// a warp takes 128 tokens whose K and V blocks are all fixed-length Huffman blocks and runs the
// whole tile on mma.m16n8k16 without staging: the MMA rows are the query heads (rows g: fp16 of
// the head's q or weights, rows 8 + g: what that rounding left; G <= 8), q.K has K as the B
// operand read straight from the block, the scores' C fragments are the weights' A fragments of
// p.V (the columns' tokens are chosen so: lane tig holds tokens 32 tig.. in the order of V's
// symbol pairs), and V is the B operand read straight from the block. The softmax runs in the
// fragments; O accumulates in a per-warp shared buffer. An item runs its tensor-core tiles
// first, folds their state into the FMA tiles' state, then runs the other tiles (window rows,
// raw blocks) with the table-lookup policy.
//
// Slow paths, for what is rare: K tokens of raw or channel-wise blocks, or a pass that mixes
// blocks and window rows, one token at a time (k_token); raw V blocks as fp16 rows.
#pragma once

#include <cuda_fp16.h>

#include <utility>

#include "compress/attention_kvcomp.h"
#include "compress/format.h"
#include "compress/format_cuda.cuh"
#include "runtime/attention_decode.cuh"

namespace kvcomp {
namespace kvcomp_attn {

using decode_attn::kFull;
using decode_attn::kSub;
using decode_attn::load_f;

__device__ __forceinline__ uint32_t bswap32(uint32_t x) {
  return __byte_perm(x, 0, 0x0123);
}

__device__ __forceinline__ uint32_t warp_sum_u32(uint32_t x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
  return x;
}

__device__ __forceinline__ BlockHeader load_header(const uint8_t* blk) {
  return *reinterpret_cast<const BlockHeader*>(blk);
}

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

// 4-byte asynchronous copy global -> shared (cp.async; L1-cached), and the wait for all of this
// thread's copies.
__device__ __forceinline__ void cp_async4(uint32_t* dst, const uint32_t* src) {
  const unsigned d = unsigned(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

// Calls f(std::integral_constant<int, i>) for i = 0..N-1: indices known at compile time, so the
// bit positions of fixed-length symbols fold into constants.
template <typename F, int... I>
__device__ __forceinline__ void static_for_impl(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
__device__ __forceinline__ void static_for(F&& f) {
  static_for_impl(f, std::make_integer_sequence<int, N>{});
}

// The bits of 1.0f in a register that the compiler cannot fold into an immediate: (x & mask) |
// one is then one LOP3 (with two immediates ptxas splits it into two).
__device__ __forceinline__ uint32_t one_bits() {
  return __shfl_sync(kFull, 0x3f800000u, 0);
}

// Symbol I of 32 B-bit symbols packed MSB-first in w[0, B) (byte-swapped words), as the float
// 1 + s 2^-B (see the file comment); one: one_bits().
template <int B, int I>
__device__ __forceinline__ float fixed_symbol(const uint32_t (&w)[B], uint32_t one) {
  constexpr int p = I * B, j = p / 32, o = p % 32;  // the field is bits [o, o + B) of w[j]...
  constexpr uint32_t mask = ((1u << B) - 1u) << (23 - B);
  uint32_t x;
  if constexpr (o + B <= 32) {
    if constexpr (o <= 9) {
      x = w[j] >> (9 - o);  // bits [32 - o - B, 32 - o) to [23 - B, 23)
    } else {
      x = w[j] << (o - 9);
    }
  } else {  // ... running into w[j + 1]: the 64 bits w[j]:w[j + 1] shifted right
    x = __funnelshift_r(w[j + 1], w[j], uint32_t(41 - o));
  }
  return __uint_as_float((x & mask) | one);
}

// Tokens (K) or channels (V) per loop body of the fixed-length FMA paths: bodies of 32 symbols x
// that many units x G FMAs stay near 400 instructions (docs/perf-log.md, seventh round).
constexpr int fixed_body(int g) {
  return g >= 4 ? 2 : 4;
}

// ---- Tensor cores for fixed-length codes (see the file comment).

// The smallest group size that the fixed-length paths run on tensor cores; 0 (the default):
// none. A build option for measurements (-DKVCOMP_FIXED_MMA_MIN_G=4): measured slower than the
// FMA paths except at 128k tokens, batch 8 (docs/perf-log.md, sixth round).
#ifndef KVCOMP_FIXED_MMA_MIN_G
#define KVCOMP_FIXED_MMA_MIN_G 0
#endif

// C += A B, mma.m16n8k16 with fp16 A (row-major fragments a) and B (b0, b1), fp32 C.
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Row stride (words) of staged units of uw words for the tensor-core paths: the smallest >= uw at
// which the 32 lanes' reads of B words at row * stride + tig * B (8 rows, 4 tigs; 16-byte loads
// when B % 4 == 0, 8-byte when B % 2 == 0) hit every bank once.
__host__ __device__ constexpr int mma_stride(int uw, int b) {
  const uint32_t ok = b == 4 ? 0x00010000u : (b == 2 || b == 6) ? 0x01000100u : 0x10101010u;
  int s = uw;
  while (!((ok >> (s & 31)) & 1u)) ++s;
  return s;
}

// B consecutive shared-memory words (aligned for the widest load that divides B), byte-swapped.
template <int B>
__device__ __forceinline__ void load_words(const uint32_t* src, uint32_t (&w)[B]) {
  if constexpr (B % 4 == 0) {
#pragma unroll
    for (int i = 0; i < B / 4; ++i) {
      const uint4 v = reinterpret_cast<const uint4*>(src)[i];
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  } else if constexpr (B % 2 == 0) {
#pragma unroll
    for (int i = 0; i < B / 2; ++i) {
      const uint2 v = reinterpret_cast<const uint2*>(src)[i];
      w[2 * i] = v.x, w[2 * i + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < B; ++i) w[i] = src[i];
  }
#pragma unroll
  for (int i = 0; i < B; ++i) w[i] = bswap32(w[i]);
}

// ws[g] = sum over t < n of w[t][g], the same in every lane: each lane sums n / 32 tokens, then
// the warp.
template <int G>
__device__ __forceinline__ void weight_sums(const float* w, int n, int lane, float (&ws)[G]) {
#pragma unroll
  for (int g = 0; g < G; ++g) ws[g] = 0.0f;
  for (int t = lane; t < n; t += 32) {
    float x[G];
    load_f(w + t * G, x);
#pragma unroll
    for (int g = 0; g < G; ++g) ws[g] += x[g];
  }
#pragma unroll
  for (int g = 0; g < G; ++g) ws[g] = decode_attn::warp_sum(ws[g]);
}

// Which two of a 32-symbol group's symbols form the fp16 pair p (0..15) of an MMA fragment: the
// low half holds symbol lo(p), the high half hi(p). When B divides 16, two symbols 16 bits apart
// in one word, so that one shift and one LOP3 place both; else neighbours.
template <int B>
struct SymbolPairs {
  static constexpr bool kSameShift = 16 % B == 0;
  static constexpr int kPerWord = 32 / B;
  __host__ __device__ static constexpr int hi(int p) {
    return kSameShift ? (p / (kPerWord / 2)) * kPerWord + p % (kPerWord / 2) : 2 * p + 1;
  }
  __host__ __device__ static constexpr int lo(int p) {
    return kSameShift ? hi(p) + kPerWord / 2 : 2 * p;
  }
};

// Symbol I of 32 B-bit symbols packed MSB-first in w[0, B) moved to bits [P, P + B) (other bits
// are garbage).
template <int B, int I, int P>
__device__ __forceinline__ uint32_t field_at(const uint32_t (&w)[B]) {
  constexpr int p = I * B, j = p / 32, o = p % 32;
  if constexpr (o + B <= 32) {
    constexpr int lsb = 32 - o - B;
    if constexpr (lsb >= P) {
      return w[j] >> (lsb - P);
    } else {
      return w[j] << (P - lsb);
    }
  } else {
    return __funnelshift_r(w[j + 1], w[j], uint32_t(64 - o - B - P));
  }
}

// fp16 pair P of a group (SymbolPairs) as the values 1 + s 2^-B (exact in fp16).
template <int B, int P>
__device__ __forceinline__ uint32_t fixed_pair(const uint32_t (&w)[B]) {
  using SP = SymbolPairs<B>;
  constexpr uint32_t f = (1u << B) - 1u, kLo = f << (10 - B), kHi = f << (26 - B);
  constexpr uint32_t kOnes = 0x3c003c00u;  // 1.0 in both halves
  if constexpr (SP::kSameShift) {
    constexpr int j = SP::hi(P) / SP::kPerWord, i = SP::hi(P) % SP::kPerWord, sh = 6 - i * B;
    uint32_t x;
    if constexpr (sh >= 0) {
      x = w[j] >> sh;
    } else {
      x = w[j] << (-sh);
    }
    return (x & (kLo | kHi)) | kOnes;
  } else {
    const uint32_t a = field_at<B, SP::lo(P), 10 - B>(w), b = field_at<B, SP::hi(P), 26 - B>(w);
    return (a & kLo) | (b & kHi) | kOnes;
  }
}

// The B operand of a group's 16 pairs: column col of the N = 8 columns holds, for head
// col % G, the fp16 value of x (part col / G == 0) or of what that value leaves (part 1), so
// that the two columns' sum is x within 2^-22; columns past 2 G and !valid give zeros.
// x: [rows][G], rows base + SymbolPairs index. false for every lane when an x is not below
// fp16's largest value (or not finite).
template <int B, int G>
__device__ __forceinline__ bool coef_frag(const float* x, int base, int col, bool valid,
                                          uint32_t (&b)[8][2]) {
  using SP = SymbolPairs<B>;
  const int head = col % G, part = col / G;
  const bool use = valid && part < 2;
  bool fits = true;
  static_for<16>([&](auto pc) {
    constexpr int pp = decltype(pc)::value;
    const float xl = x[(base + SP::lo(pp)) * G + head], xh = x[(base + SP::hi(pp)) * G + head];
    fits = fits && fabsf(xl) < 65000.0f && fabsf(xh) < 65000.0f;
    __half2 v = __floats2half2_rn(xl, xh);
    if (part == 1) {
      const float2 r = __half22float2(v);
      v = __floats2half2_rn(xl - r.x, xh - r.y);
    }
    b[pp / 2][pp % 2] = use ? *reinterpret_cast<const uint32_t*>(&v) : 0u;
  });
  return __all_sync(kFull, fits);
}

// Stores an MMA's C (rows row and row + 8, columns 2 tig, 2 tig + 1 of coef_frag's layout) as the
// sums of each head's two columns into buf [rows][G].
template <int G>
__device__ __forceinline__ void store_cols(float (&c)[4], float* buf, int row, int tig) {
  if constexpr (G == 4 || G == 2) {
#pragma unroll
    for (int i = 0; i < 4; ++i) c[i] += __shfl_xor_sync(kFull, c[i], G / 2);
    if (tig < G / 2) {
      *reinterpret_cast<float2*>(buf + row * G + 2 * tig) = make_float2(c[0], c[1]);
      *reinterpret_cast<float2*>(buf + (row + 8) * G + 2 * tig) = make_float2(c[2], c[3]);
    }
  } else {
    static_assert(G == 1, "tensor-core paths: G of 1, 2 or 4");
    if (tig == 0) buf[row] = c[0] + c[1], buf[row + 8] = c[2] + c[3];
  }
}

// Calls f(integral_constant B) for a fixed-length code of B bits that the fast paths unpack;
// false for other lengths (0: not a fixed-length code).
template <typename F>
__device__ __forceinline__ bool with_fixed_bits(int bits, F&& f) {
  switch (bits) {
    case 2:
      f(std::integral_constant<int, 2>{});
      return true;
    case 3:
      f(std::integral_constant<int, 3>{});
      return true;
    case 4:
      f(std::integral_constant<int, 4>{});
      return true;
    case 5:
      f(std::integral_constant<int, 5>{});
      return true;
    case 6:
      f(std::integral_constant<int, 6>{});
      return true;
    case 7:
      f(std::integral_constant<int, 7>{});
      return true;
    case 8:
      f(std::integral_constant<int, 8>{});
      return true;
    default:
      return false;
  }
}

// One unit's bit stream (see the file comment). words: the block's payload; last: the index of
// the payload section's last word (its slack word), past which nothing is loaded.
template <int R, int SPR>
struct Stream {
  uint32_t w0, w1, nxt;
  int wi;  // index of w0
  int s;   // bit offset into w0, 0..31

  __device__ __forceinline__ void init(const uint32_t* words, uint32_t byte_off, int last) {
    wi = int(byte_off >> 2);
    s = int(byte_off & 3u) * 8;
    w0 = bswap32(__ldg(words + wi));
    w1 = bswap32(__ldg(words + min(wi + 1, last)));
    nxt = bswap32(__ldg(words + min(wi + 2, last)));
  }
  // Decodes SPR symbols, calling f(j, value) with the table entry read as a float.
  template <typename F>
  __device__ __forceinline__ void group(const uint32_t* words, int last, const uint32_t* tab,
                                        int shift, int lane, F&& f) {
    uint32_t win = __funnelshift_l(w1, w0, uint32_t(s));
    uint32_t t = uint32_t(s);
    const uint32_t* tl = tab + (R == 1 ? 0 : lane);  // this lane's replica
#pragma unroll
    for (int j = 0; j < SPR; ++j) {
      const uint32_t e = tl[(win >> shift) * R];
      win = __funnelshift_l(0u, win, e);
      t += e;
      f(j, __uint_as_float(e));
    }
    t &= 0xffu;
    if (t >= 32u) {
      w0 = w1;
      w1 = nxt;
      ++wi;
      nxt = bswap32(__ldg(words + min(wi + 2, last)));
      t -= 32u;
    }
    s = int(t);
  }
};

// The policy of attention_decode.cuh for KVComp blocks; R: table replicas (32: one per lane),
// SPR: codes per group (4 for codes of at most 8 bits, 2 for up to 12); kFixed: full blocks of a
// fixed-length codebook (p.k_fixed_bits, p.v_fixed_bits) are unpacked, not looked up.
template <int R, int SPR, bool kFixed = false>
struct KvcompBlocks {
  using Params = KvcompAttentionParams;
  using St = Stream<R, SPR>;
  static constexpr bool kBlocks = true;
  static constexpr bool kMmaTiles = false;  // KvcompMma's
  using MmaState = decode_attn::NoMmaState;
  static constexpr bool kWrap = true;      // window rows are rings
  static constexpr int kRowsInFlight = 8;  // window V rows per lane (a rare path)
  // Words of one table (of `bits`-bit codes) in shared memory, and the shift of a lookup.
  __host__ __device__ static size_t table_words(int bits) { return (size_t(1) << bits) * R; }
  __device__ static int shift(int bits) { return 32 - bits; }
  // A tile holds whole V blocks and whole K passes.
  __host__ __device__ static int tile(const Params& p) {
    return p.block_v > kSub ? p.block_v : kSub;
  }
  __host__ __device__ static int block_v(const Params& p) { return p.block_v; }
  static size_t table_bytes(const Params& p) {  // the tables, then the staging buffers
    return 4 * (table_words(p.k_bits) + table_words(p.v_bits) +
                (kFixed ? size_t(decode_attn::kWarps) * stage_words(p) : 0));
  }
  __device__ static void load_table(const uint32_t* src, int bits, uint32_t* dst, int tid,
                                    int n_threads) {
    const int n = (1 << bits) * R;
    for (int i = tid; i < n; i += n_threads) dst[i] = __ldg(src + i / R);
  }
  __device__ static void load_tables(const Params& p, uint32_t* tabs, int tid, int n_threads) {
    load_table(p.k_table, p.k_bits, tabs, tid, n_threads);
    load_table(p.v_table, p.v_bits, tabs + table_words(p.k_bits), tid, n_threads);
  }

  // The lane's four tokens tb..tb+3, when every lane's are in Huffman kKBlock blocks: the fast
  // path; false (nothing done) otherwise.
  template <int HD, int G>
  __device__ __forceinline__ static bool k_sub(const Params& p, const uint32_t* tabs,
                                               int64_t head_off, int tb, int k_done, int lane,
                                               const float* q, const float* qsum, float* pass_buf,
                                               float (&sc)[4][G]) {
    const uint8_t* blk = nullptr;
    bool ok = tb < k_done;  // k_done is a multiple of block_k >= 16: the four tokens are in
    if (ok) {
      blk = p.k_blocks[head_off * p.max_k_blocks + tb / p.block_k];
      const uint32_t h0 = __ldg(reinterpret_cast<const uint32_t*>(blk));  // mode, kind, ...
      ok = (h0 & 0xffffu) == (uint32_t(BlockMode::kHuffman) | (uint32_t(BlockKind::kKBlock) << 8));
    }
    if (!__all_sync(kFull, ok)) return false;
    if constexpr (kFixed) {
      if (with_fixed_bits(p.k_fixed_bits, [&](auto b) {
            constexpr int B = decltype(b)::value;
            if constexpr (kMma<HD, G>) {
              if (k_fixed_mma<HD, G, B>(p, stage_of(p, tabs), blk, tb % p.block_k, lane, q,
                                        qsum, pass_buf, sc))
                return;
            }
            k_fixed4<HD, G, B>(p, stage_of(p, tabs), blk, tb % p.block_k, lane, q, qsum, sc);
          }))
        return true;
    }
    k_fast4<HD, G>(p, blk, tb % p.block_k, tabs, lane, q, qsum, sc);
    return true;
  }

  // Fixed-length fast paths. Each lane decodes its own units (K: four tokens; V: NV channels),
  // but reading them lane by lane from global memory would make every warp load touch 32
  // different cache lines. So the warp first copies the units it needs, which are contiguous in
  // memory, to its staging buffer with coalesced 4-byte cp.async copies, inserting one pad word
  // after each lane's units: a lane's stride is then odd and its shared-memory reads are
  // conflict-free.
  static constexpr int kMaxStageWords = 4096 + 32;
  __host__ __device__ static bool k_fixed_ok(const Params& p) {
    return p.k_fixed_bits >= 2 && p.k_fixed_bits <= 8;  // a pass: <= 128 * 128 * 8 / 32 words
  }
  __host__ __device__ static bool v_fixed_ok(const Params& p) {
    return p.v_fixed_bits >= 2 && p.v_fixed_bits <= 8 && p.block_v % 32 == 0 &&
           p.head_dim * p.block_v * p.v_fixed_bits / 32 + 32 <= kMaxStageWords;
  }
  // Words of one warp's staging buffer.
  __host__ __device__ static int stage_words(const Params& p) {
    int w = 0;
    if (k_fixed_ok(p)) {
      const int uw = p.head_dim * p.k_fixed_bits / 32;
      w = kSub * uw + 32;
      const int m = kSub * mma_stride(uw, p.k_fixed_bits);
      if (mma_shape(p) && m > w) w = m;
    }
    if (v_fixed_ok(p)) {
      const int v = p.head_dim * p.block_v * p.v_fixed_bits / 32 + 32;
      const int m = p.head_dim * mma_stride(p.block_v * p.v_fixed_bits / 32, p.v_fixed_bits) +
                    p.head_dim * (p.n_heads / p.n_kv_heads);  // units, then the [HD][G] sums
      if (v > w) w = v;
      if (mma_shape(p) && p.block_v <= kSub && m > w) w = m;
    }
    return (w + 3) / 4 * 4;  // each warp's buffer 16-byte aligned
  }
  // This warp's staging buffer: the buffers follow the tables in the block's shared memory.
  __device__ static uint32_t* stage_of(const Params& p, const uint32_t* tabs) {
    return const_cast<uint32_t*>(tabs) + table_words(p.k_bits) + table_words(p.v_bits) +
           (threadIdx.x / 32) * stage_words(p);
  }

  // Units u..u+3 of a kKBlock block of B-bit fixed-length codes (blk: this lane's block): the
  // scores of the lane's four tokens. A unit is UW = HD * B / 32 words, each 32-channel group of
  // it B words.
  template <int HD, int G, int B>
  __device__ __forceinline__ static void k_fixed4(const Params& p, uint32_t* stage,
                                                  const uint8_t* blk, int u, int lane,
                                                  const float* q, const float* qsum,
                                                  float (&sc)[4][G]) {
    constexpr int UW = HD * B / 32, LW = 4 * UW + 1;
    constexpr int kChan = G >= 4 ? 1 : 4;  // channels of q per shared-memory load
    const BlockHeader h = load_header(blk);
    const uint32_t* mine = reinterpret_cast<const uint32_t*>(
                               blk + block_payload_offset(BlockKind::kKBlock, h.n_tokens, HD)) +
                           u * UW;
    // The pass's units: one contiguous run per block (seg lanes' tokens).
    const int seg = min(p.block_k, kSub) / 4;
    for (int r0 = 0; r0 < 32; r0 += seg) {
      const uint32_t* src = reinterpret_cast<const uint32_t*>(
          __shfl_sync(kFull, reinterpret_cast<unsigned long long>(mine), r0));
      const int n = seg * 4 * UW;
      for (int i = lane; i < n; i += 32) {
        const int d = r0 * 4 * UW + i;
        cp_async4(stage + d + d / (4 * UW), src + i);
      }
    }
    cp_async_wait_all();
    __syncwarp();
    const uint32_t* own = stage + lane * LW;
    const uint32_t one = one_bits();
    // TJ of the lane's four tokens per loop body: bodies of 32 channels x TJ tokens x G FMAs stay
    // near 400 instructions (a body over all four tokens at G = 4 is ~1100, past what the
    // instruction cache holds: warps then wait for instructions).
    constexpr int TJ = fixed_body(G);
    float acc[4][G] = {};
#pragma unroll 1
    for (int j0 = 0; j0 < 4; j0 += TJ) {
      float a[TJ][G];
#pragma unroll
      for (int j = 0; j < TJ; ++j)
#pragma unroll
        for (int g = 0; g < G; ++g) a[j][g] = 0.0f;
#pragma unroll 1
      for (int c0 = 0; c0 < HD; c0 += 32) {
        uint32_t w[TJ][B];
#pragma unroll
        for (int j = 0; j < TJ; ++j)
#pragma unroll
          for (int k = 0; k < B; ++k) w[j][k] = bswap32(own[(j0 + j) * UW + (c0 / 32) * B + k]);
        float qv[kChan * G];
        static_for<32>([&](auto ic) {
          constexpr int i = decltype(ic)::value;
          if constexpr (i % kChan == 0) load_f(q + (c0 + i) * G, qv);
#pragma unroll
          for (int j = 0; j < TJ; ++j) {
            const float f = fixed_symbol<B, i>(w[j], one);
#pragma unroll
            for (int g = 0; g < G; ++g) a[j][g] = fmaf(qv[(i % kChan) * G + g], f, a[j][g]);
          }
        });
      }
#pragma unroll
      for (int jj = 0; jj < 4; jj += TJ)  // acc[j0..] = a, with constant indices
        if (jj == j0)
#pragma unroll
          for (int j = 0; j < TJ; ++j)
#pragma unroll
            for (int g = 0; g < G; ++g) acc[jj + j][g] = a[j][g];
    }
    __syncwarp();  // the buffer is rewritten next
    // q.k' = d (sum_c q_c s_c + m0 sum_c q_c) = d (2^B acc + (m0 - 2^B) sum_c q_c)
    constexpr float kScale = float(1 << B);
    const float off = float(h.m0) - kScale;
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int g = 0; g < G; ++g) sc[j][g] = (kScale * acc[j][g] + off * qsum[g]) * h.d;
  }

  // O += a V block of n tokens (a multiple of 32) in B-bit fixed-length codes, whose payload is
  // at `payload`, weighted by w [n][G] (bias as for v_block). Lane l's units are its channels
  // NV*l.., each n * B / 32 words.
  template <int HD, int G, int B>
  __device__ __forceinline__ static void v_fixed(uint32_t* stage, const uint32_t* payload, int n,
                                                 const float* w, const float* bias, int lane,
                                                 float (&O)[HD / 32][G]) {
    constexpr int NV = HD / 32;
    constexpr int kTok = G >= 4 ? 1 : 4;  // tokens of w per shared-memory load
    constexpr float kScale = float(1 << B);
    const int UW = n * B / 32, GW = NV * UW, LW = GW + 1;  // a lane's NV units: GW words
    // The warp's 32 GW words are contiguous; word d goes to stage + d + d / GW (a pad word after
    // each lane's units), the division as a multiply-high (exact for d < 2^32 / GW).
    const uint32_t inv = 0xffffffffu / uint32_t(GW) + 1u;
#pragma unroll 4
    for (int d = lane; d < 32 * GW; d += 32)
      cp_async4(stage + d + __umulhi(uint32_t(d), inv), payload + d);
    cp_async_wait_all();
    __syncwarp();
    const uint32_t* own = stage + lane * LW;
    float ws[G];
    weight_sums<G>(w, n, lane, ws);
    // sum_t w_t (s_tc + m0_t) = 2^B (sum_t w_t f_tc - sum_t w_t) + bias: O += 2^B a + off.
    float off[G];
#pragma unroll
    for (int g = 0; g < G; ++g) off[g] = bias[g] - kScale * ws[g];
    const uint32_t one = one_bits();
    // CJ of the lane's NV channels per loop body (near 400 instructions, as in k_fixed4).
    constexpr int CJ = fixed_body(G) < NV ? fixed_body(G) : NV;
#pragma unroll 1
    for (int j0 = 0; j0 < NV; j0 += CJ) {
      float a[CJ][G];
#pragma unroll
      for (int j = 0; j < CJ; ++j)
#pragma unroll
        for (int g = 0; g < G; ++g) a[j][g] = 0.0f;
#pragma unroll 1
      for (int t0 = 0; t0 < n; t0 += 32) {
        uint32_t x[CJ][B];
#pragma unroll
        for (int j = 0; j < CJ; ++j)
#pragma unroll
          for (int k = 0; k < B; ++k) x[j][k] = bswap32(own[(j0 + j) * UW + (t0 / 32) * B + k]);
        float wv[kTok * G];
        static_for<32>([&](auto ic) {
          constexpr int i = decltype(ic)::value;
          if constexpr (i % kTok == 0) load_f(w + (t0 + i) * G, wv);
#pragma unroll
          for (int j = 0; j < CJ; ++j) {
            const float f = fixed_symbol<B, i>(x[j], one);
#pragma unroll
            for (int g = 0; g < G; ++g) a[j][g] = fmaf(wv[(i % kTok) * G + g], f, a[j][g]);
          }
        });
      }
#pragma unroll
      for (int jj = 0; jj < NV; jj += CJ)  // O[j0..] += ..., with constant indices
        if (jj == j0)
#pragma unroll
          for (int j = 0; j < CJ; ++j)
#pragma unroll
            for (int g = 0; g < G; ++g) O[jj + j][g] = fmaf(kScale, a[j][g], O[jj + j][g] + off[g]);
    }
    __syncwarp();  // the buffer is rewritten next
  }

  // ---- Tensor-core paths of the fixed-length codes (see "Tensor cores" in the file comment).
  template <int HD, int G>
  static constexpr bool kMma =
      KVCOMP_FIXED_MMA_MIN_G > 0 && HD == 128 && G >= KVCOMP_FIXED_MMA_MIN_G && G <= 4;
  __host__ __device__ static bool mma_shape(const Params& p) {
    const int g = p.n_heads / p.n_kv_heads;
    return KVCOMP_FIXED_MMA_MIN_G > 0 && kFixed && p.head_dim == 128 &&
           g >= KVCOMP_FIXED_MMA_MIN_G && g <= 4;
  }

  // The 16 x 16 tokens (K) or channels (V) x 32-symbol-group tile of a pass: rows of a unit's
  // words, row r at stage + r * RS. For K: a pass's 128 token units, lanes' segments as in
  // k_fixed4.
  template <int HD, int G, int B>
  __device__ __forceinline__ static bool k_fixed_mma(const Params& p, uint32_t* stage,
                                                     const uint8_t* blk, int u, int lane,
                                                     const float* q, const float* qsum,
                                                     float* pass_buf, float (&sc)[4][G]) {
    constexpr int UW = HD * B / 32, RS = mma_stride(UW, B);
    const int grp = lane >> 2, tig = lane & 3;
    uint32_t bq[8][2];
    if (!coef_frag<B, G>(q, 32 * tig, grp, true, bq)) return false;  // q out of fp16's range
    const BlockHeader h = load_header(blk);
    const uint32_t* mine = reinterpret_cast<const uint32_t*>(
                               blk + block_payload_offset(BlockKind::kKBlock, h.n_tokens, HD)) +
                           u * UW;
    const int seg = min(p.block_k, kSub) / 4;
    for (int r0 = 0; r0 < 32; r0 += seg) {
      const uint32_t* src = reinterpret_cast<const uint32_t*>(
          __shfl_sync(kFull, reinterpret_cast<unsigned long long>(mine), r0));
      const int n = seg * 4 * UW;
      for (int i = lane; i < n; i += 32) {
        const int t = i / UW;
        cp_async4(stage + (4 * r0 + t) * RS + (i - t * UW), src + i);
      }
    }
    cp_async_wait_all();
    __syncwarp();
#pragma unroll 1
    for (int tt = 0; tt < kSub / 16; ++tt) {  // 16 tokens: rows grp and grp + 8 of the MMA
      uint32_t wa[B], wb[B];
      load_words<B>(stage + (16 * tt + grp) * RS + tig * B, wa);
      load_words<B>(stage + (16 * tt + grp + 8) * RS + tig * B, wb);
      float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      static_for<8>([&](auto kc) {
        constexpr int ks = decltype(kc)::value;
        const uint32_t a[4] = {fixed_pair<B, 2 * ks>(wa), fixed_pair<B, 2 * ks>(wb),
                               fixed_pair<B, 2 * ks + 1>(wa), fixed_pair<B, 2 * ks + 1>(wb)};
        mma_16816(c, a, bq[ks][0], bq[ks][1]);
      });
      store_cols<G>(c, pass_buf, 16 * tt + grp, tig);
    }
    __syncwarp();  // pass_buf written, the staging buffer free
    // q.k' = d (sum_c q_c s_c + m0 sum_c q_c) = d (2^B acc + (m0 - 2^B) sum_c q_c)
    constexpr float kScale = float(1 << B);
    const float off = float(h.m0) - kScale;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float acc[G];
      load_f(pass_buf + (4 * lane + j) * G, acc);
#pragma unroll
      for (int g = 0; g < G; ++g) sc[j][g] = (kScale * acc[g] + off * qsum[g]) * h.d;
    }
    return true;
  }

  // O += a V block of n <= 128 tokens (a multiple of 32) of B-bit fixed-length codes, as v_fixed
  // does, on tensor cores: A = the channels (16 per MMA) x tokens (thread tig: the 32-token
  // group tig), B = the weights [tokens][head hi | head lo]. false (nothing done): a weight out
  // of fp16's range.
  template <int HD, int G, int B>
  __device__ __forceinline__ static bool v_fixed_mma(uint32_t* stage, const uint32_t* payload,
                                                     int n, const float* w, const float* bias,
                                                     int lane, float (&O)[HD / 32][G]) {
    constexpr int NV = HD / 32;
    constexpr float kScale = float(1 << B);
    const int grp = lane >> 2, tig = lane & 3;
    const int groups = n / 32, gi = tig < groups ? tig : 0;  // lanes past the block read group 0
    uint32_t bw[8][2];
    if (!coef_frag<B, G>(w, 32 * gi, grp, tig < groups, bw)) return false;
    const int UW = n * B / 32, RS = mma_stride(UW, B);
    const uint32_t magic = 0xffffffffu / uint32_t(UW) + 1u;  // i / UW = umulhi(i, magic), i < 2^16
    for (int i = lane; i < HD * UW; i += 32) {
      const int c = int(__umulhi(uint32_t(i), magic));
      cp_async4(stage + c * RS + (i - c * UW), payload + i);
    }
    float ws[G];
    weight_sums<G>(w, n, lane, ws);
    cp_async_wait_all();
    __syncwarp();
    float* xch = reinterpret_cast<float*>(stage + HD * RS);  // [HD][G]: sum_t w_t f_tc
#pragma unroll 1
    for (int mt = 0; mt < HD / 16; ++mt) {  // 16 channels: rows grp and grp + 8
      uint32_t wa[B], wb[B];
      load_words<B>(stage + (16 * mt + grp) * RS + gi * B, wa);
      load_words<B>(stage + (16 * mt + grp + 8) * RS + gi * B, wb);
      float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      static_for<8>([&](auto kc) {
        constexpr int ks = decltype(kc)::value;
        const uint32_t a[4] = {fixed_pair<B, 2 * ks>(wa), fixed_pair<B, 2 * ks>(wb),
                               fixed_pair<B, 2 * ks + 1>(wa), fixed_pair<B, 2 * ks + 1>(wb)};
        mma_16816(c, a, bw[ks][0], bw[ks][1]);
      });
      store_cols<G>(c, xch, 16 * mt + grp, tig);
    }
    __syncwarp();
    // sum_t w_t (s_tc + m0_t) = 2^B (sum_t w_t f_tc - sum_t w_t) + bias
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      float x[G];
      load_f(xch + (NV * lane + j) * G, x);
#pragma unroll
      for (int g = 0; g < G; ++g) O[j][g] += kScale * (x[g] - ws[g]) + bias[g];
    }
    __syncwarp();  // the buffer is rewritten next
    return true;
  }

  // Units u..u+3 of a Huffman kKBlock block: the scores of the lane's four tokens.
  template <int HD, int G>
  __device__ static void k_fast4(const Params& p, const uint8_t* blk, int u, const uint32_t* tab,
                                 int lane, const float* q, const float* qsum, float (&sc)[4][G]) {
    const BlockHeader h = load_header(blk);
    const uint32_t* words = reinterpret_cast<const uint32_t*>(
        blk + block_payload_offset(BlockKind::kKBlock, h.n_tokens, HD));
    const int last = int(round_up4(h.payload_bytes) >> 2);
    const uint32_t* lens = reinterpret_cast<const uint32_t*>(blk + block_lengths_offset());
    const uint32_t lw = __ldg(lens + u / 4);
    const uint32_t n4 = __dp4a(lw, 0x01010101u, 0u);
    // Exclusive scan over the lanes whose tokens share the block (segments of block_k / 4 lanes,
    // the whole warp for blocks of 128 tokens or more).
    const int seg = min(p.block_k, kSub) / 4;
    uint32_t incl = n4;
    for (int o = 1; o < seg; o <<= 1) {
      const uint32_t y = __shfl_up_sync(kFull, incl, o);
      if ((lane & (seg - 1)) >= o) incl += y;
    }
    uint32_t off = incl - n4;
    const int u0 = u - 4 * (lane & (seg - 1));  // the segment's first unit
    if (u0 > 0) {  // a 256-token block's second pass: units [0, u0) come first (warp-uniform)
      uint32_t x = 0;
      for (int i = lane; i < u0 / 4; i += 32) x = __dp4a(__ldg(lens + i), 0x01010101u, x);
      off += warp_sum_u32(x);
    }
    St st[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      st[j].init(words, off, last);
      off += (lw >> (8 * j)) & 0xffu;
    }
    float acc[4][G];
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int g = 0; g < G; ++g) acc[j][g] = 0.0f;
    const int shift = KvcompBlocks::shift(p.k_bits);
#pragma unroll 1
    for (int c0 = 0; c0 < HD; c0 += SPR) {
      float qv[SPR * G];
      load_f(q + c0 * G, qv);
#pragma unroll
      for (int j = 0; j < 4; ++j)
        st[j].group(words, last, tab, shift, lane, [&](int jj, float v) {
#pragma unroll
          for (int g = 0; g < G; ++g) acc[j][g] = fmaf(qv[jj * G + g], v, acc[j][g]);
        });
    }
    const float m0 = float(h.m0);
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int g = 0; g < G; ++g) sc[j][g] = (acc[j][g] + m0 * qsum[g]) * h.d;
  }

  // Score of any one token: Huffman blocks of either K kind, raw blocks, window rows.
  template <int HD, int G>
  __device__ static void k_token(const Params& p, const uint32_t* tab, int64_t head_off, int t,
                                 int k_done, int lane, const float* q, const float* qsum,
                                 float (&dot)[G]) {
#pragma unroll
    for (int g = 0; g < G; ++g) dot[g] = 0.0f;
    const uint16_t* row;
    if (t < k_done) {
      const int b = t / p.block_k, u = t - b * p.block_k;
      const uint8_t* blk = p.k_blocks[head_off * p.max_k_blocks + b];
      const BlockHeader h = load_header(blk);
      if (h.mode == uint8_t(BlockMode::kHuffman)) {
        const BlockKind kind = BlockKind(h.kind);
        const uint32_t* words =
            reinterpret_cast<const uint32_t*>(blk + block_payload_offset(kind, h.n_tokens, HD));
        const int last = int(round_up4(h.payload_bytes) >> 2);
        St st;
        st.init(words, unit_offset(blk + block_lengths_offset(), u), last);
        const int shift = KvcompBlocks::shift(p.k_bits);
        if (kind == BlockKind::kKBlock) {
          for (int c0 = 0; c0 < HD; c0 += SPR)
            st.group(words, last, tab, shift, lane, [&](int jj, float v) {
#pragma unroll
              for (int g = 0; g < G; ++g) dot[g] = fmaf(q[(c0 + jj) * G + g], v, dot[g]);
            });
#pragma unroll
          for (int g = 0; g < G; ++g) dot[g] = (dot[g] + float(h.m0) * qsum[g]) * h.d;
        } else {  // channel-wise: a step and offset per channel
          const uint8_t* prm = blk + block_params_offset(kind, h.n_tokens, HD);
          for (int c0 = 0; c0 < HD; c0 += SPR)
            st.group(words, last, tab, shift, lane, [&](int jj, float v) {
              const GroupParams gp = block_param(kind, h.d, prm, uint32_t(c0 + jj), kVStepTableDev);
              const float x = (v + float(gp.m0)) * gp.d;
#pragma unroll
              for (int g = 0; g < G; ++g) dot[g] = fmaf(q[(c0 + jj) * G + g], x, dot[g]);
            });
        }
        return;
      }
      row = reinterpret_cast<const uint16_t*>(blk + raw_block_values_offset()) + u * HD;
    } else {
      row = p.ring_k + (head_off * p.cap_k + t % p.cap_k) * HD;
    }
    // fp16 values (raw block rows are 4-byte aligned)
    const uint32_t* r = reinterpret_cast<const uint32_t*>(row);
#pragma unroll 8
    for (int c2 = 0; c2 < HD / 2; ++c2) {
      const float2 f = decode_attn::half2_bits_to_float2(__ldg(r + c2));
#pragma unroll
      for (int g = 0; g < G; ++g) {
        dot[g] = fmaf(q[(2 * c2) * G + g], f.x, dot[g]);
        dot[g] = fmaf(q[(2 * c2 + 1) * G + g], f.y, dot[g]);
      }
    }
  }

  // Steps and offsets of the lane's four tokens tb..tb+3 (one V block, tb < v_done); a raw
  // block leaves (1, 0).
  __device__ static void v_params(const Params& p, int64_t head_off, int tb, float (&d)[4],
                                  float (&m0)[4]) {
    const uint8_t* blk = p.v_blocks[head_off * p.max_v_blocks + tb / p.block_v];
    const BlockHeader h = load_header(blk);
    if (h.mode != uint8_t(BlockMode::kHuffman)) return;
    const BlockKind kind = BlockKind(h.kind);
    const uint8_t* prm = blk + block_params_offset(kind, h.n_tokens, h.head_dim);
    const int u = tb % p.block_v;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const GroupParams gp = block_param(kind, h.d, prm, uint32_t(u + j), kVStepTableDev);
      d[j] = gp.d;
      m0[j] = float(gp.m0);
    }
  }

  // O += the V block b's values weighted by w [n_tokens][G] (bias[g] = sum_t w_tg m0_t).
  template <int HD, int G>
  __device__ __forceinline__ static void v_block(const Params& p, const uint32_t* tabs, int64_t head_off, int b,
                                 const float* w, const float* bias, int lane,
                                 float (&O)[HD / 32][G]) {
    constexpr int NV = HD / 32;
    const uint8_t* blk = p.v_blocks[head_off * p.max_v_blocks + b];
    const BlockHeader h = load_header(blk);
    if (h.mode != uint8_t(BlockMode::kHuffman)) {  // raw: fp16 [n_tokens][HD], 4-byte aligned
      const uint16_t* vals = reinterpret_cast<const uint16_t*>(blk + raw_block_values_offset());
      decode_attn::v_rows<HD, G, false, kRowsInFlight>([&](int i) { return vals + i * HD; },
                                                       h.n_tokens, w, lane, O);
      return;
    }
    const BlockKind kind = BlockKind(h.kind);
    const uint32_t* words =
        reinterpret_cast<const uint32_t*>(blk + block_payload_offset(kind, h.n_tokens, HD));
    if constexpr (kFixed) {  // blocks of whole 32-token groups: every unit is whole words
      if (v_fixed_ok(p) && h.n_tokens % 32 == 0 && h.n_tokens <= p.block_v &&
          with_fixed_bits(p.v_fixed_bits, [&](auto b) {
            constexpr int B = decltype(b)::value;
            if constexpr (kMma<HD, G>) {
              if (h.n_tokens <= kSub &&
                  v_fixed_mma<HD, G, B>(stage_of(p, tabs), words, h.n_tokens, w, bias, lane, O))
                return;
            }
            v_fixed<HD, G, B>(stage_of(p, tabs), words, h.n_tokens, w, bias, lane, O);
          }))
        return;
    }
    const int last = int(round_up4(h.payload_bytes) >> 2);
    const uint8_t* lens = blk + block_lengths_offset();
    const uint32_t lw = NV == 4 ? __ldg(reinterpret_cast<const uint32_t*>(lens) + lane)
                                : uint32_t(__ldg(reinterpret_cast<const uint16_t*>(lens) + lane));
    const uint32_t n = __dp4a(lw, 0x01010101u, 0u);
    uint32_t incl = n;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const uint32_t y = __shfl_up_sync(kFull, incl, o);
      if (lane >= o) incl += y;
    }
    uint32_t off = incl - n;
    St st[NV];
#pragma unroll
    for (int j = 0; j < NV; ++j) {
      st[j].init(words, off, last);
      off += (lw >> (8 * j)) & 0xffu;
    }
    const uint32_t* tab = tabs + table_words(p.k_bits);
    const int shift = KvcompBlocks::shift(p.v_bits);
#pragma unroll 1
    for (int t0 = 0; t0 < h.n_tokens; t0 += SPR) {
      float wv[SPR * G];
      load_f(w + t0 * G, wv);
#pragma unroll
      for (int j = 0; j < NV; ++j)
        st[j].group(words, last, tab, shift, lane, [&](int jj, float v) {
#pragma unroll
          for (int g = 0; g < G; ++g) O[j][g] = fmaf(wv[jj * G + g], v, O[j][g]);
        });
    }
#pragma unroll
    for (int j = 0; j < NV; ++j)
#pragma unroll
      for (int g = 0; g < G; ++g) O[j][g] += bias[g];
  }
};

// ---- Tensor-core tiles for kvcomp-fixed at head_dim 128 (KvcompMma; see "Tensor-core tiles" in
// the file comment).

// Symbol index of half e (0: low, 1: high) of pair pp in SymbolPairs<b>, for b known at run time.
__device__ __forceinline__ int pair_symbol(int b, int pp, int e) {
  if (b == 2 || b == 4 || b == 8) {
    const int lg = b == 2 ? 3 : b == 4 ? 2 : 1;  // log2 of half = 16 / b
    const int half = 1 << lg;
    const int hi = ((pp >> lg) << (lg + 1)) + (pp & (half - 1));
    return e ? hi : hi + half;
  }
  return 2 * pp + e;
}

// Two floats as the fp16 pair (lo, hi) and what that rounding leaves, also as an fp16 pair.
__device__ __forceinline__ void split_half2(float lo, float hi, uint32_t& big, uint32_t& small) {
  const __half2 v = __floats2half2_rn(lo, hi);
  const float2 r = __half22float2(v);
  const __half2 w = __floats2half2_rn(lo - r.x, hi - r.y);
  big = *reinterpret_cast<const uint32_t*>(&v);
  small = *reinterpret_cast<const uint32_t*>(&w);
}

// The softmax state of a warp's tensor-core tiles, in lane (grp, tig) = (lane / 4, lane % 4):
// head grp (rows grp >= G are padding), tig's share of the tokens. O lives in the warp's shared
// buffer (mma_o), so that the registers hold only what a phase needs.
struct MmaTileState {
  float m = -INFINITY;  // running max of head grp (the same in the 4 lanes of a head)
  float l = 0.0f;       // this lane's share of sum_t p_t
  float bias = 0.0f;    // this lane's share of sum_t w_t (m0_t - 2^B_V)
  bool on = false;      // the item's q fits the fp16 operands
};

template <int R, int SPR>
struct KvcompMma : KvcompBlocks<R, SPR, false> {
  using Base = KvcompBlocks<R, SPR, false>;
  using Params = KvcompAttentionParams;
  using MmaState = MmaTileState;
  static constexpr bool kMmaTiles = true;
  static constexpr int kT = 128;  // tokens of a tensor-core tile

  // Shared memory after the decode tables: kVStepTable's fractions [32], the q fragments
  // [8 k-steps][32 lanes] (uint4), then per warp its scores / weights buffer [16][32] (float2)
  // and its O [16][32] (float2).
  static constexpr int kFracWords = 32, kQfWords = 8 * 32 * 4, kWarpWords = 2 * 16 * 32 * 2;
  __host__ __device__ static int mma_offset(const Params& p) {
    return int((Base::table_words(p.k_bits) + Base::table_words(p.v_bits) + 3) / 4 * 4);
  }
  static size_t table_bytes(const Params& p) {
    return 4 * (size_t(mma_offset(p)) + kFracWords + kQfWords +
                size_t(decode_attn::kWarps) * kWarpWords);
  }
  __device__ static void load_tables(const Params& p, uint32_t* tabs, int tid, int n_threads) {
    Base::load_tables(p, tabs, tid, n_threads);
    float* frac = reinterpret_cast<float*>(tabs + mma_offset(p));
    for (int i = tid; i < 32; i += n_threads) frac[i] = kVStepTableDev.frac[i];
  }
  __device__ static const float* mma_frac(const Params& p, const uint32_t* tabs) {
    return reinterpret_cast<const float*>(tabs + mma_offset(p));
  }
  __device__ static uint4* mma_qf(const Params& p, const uint32_t* tabs) {
    return reinterpret_cast<uint4*>(const_cast<uint32_t*>(tabs) + mma_offset(p) + kFracWords);
  }
  __device__ static float2* mma_x(const Params& p, const uint32_t* tabs) {  // this warp's
    return reinterpret_cast<float2*>(const_cast<uint32_t*>(tabs) + mma_offset(p) + kFracWords +
                                     kQfWords + (threadIdx.x / 32) * kWarpWords);
  }
  __device__ static float2* mma_o(const Params& p, const uint32_t* tabs) {
    return mma_x(p, tabs) + 16 * 32;
  }
  __host__ __device__ static bool mma_params_ok(const Params& p) {
    return p.head_dim == 128 && p.k_fixed_bits >= 2 && p.k_fixed_bits <= 8 && p.v_fixed_bits >= 2 &&
           p.v_fixed_bits <= 8 && p.block_k >= 32 && p.block_v >= 32;
  }

  // At an item's start (every thread of the block; q in sq [HD][G] is written): the q fragments
  // of the K phase's A operand, rows grp (fp16 of q) and grp + 8 (what that leaves), the
  // reduction over channels permuted so that lane tig takes channels 32 tig.. in SymbolPairs
  // order; and the warp's O zeroed.
  template <int HD, int G>
  __device__ __forceinline__ static MmaTileState mma_begin(const Params& p, const uint32_t* tabs,
                                                           const float* sq, int tid) {
    MmaTileState st;
    if constexpr (HD == 128 && G <= 8) {
      if (!mma_params_ok(p)) return st;
      const int ks = tid >> 5, lane = tid & 31, grp = lane >> 2, tig = lane & 3;
      bool fits = true;
      uint32_t a[4] = {0u, 0u, 0u, 0u};
      if (grp < G) {
        with_fixed_bits(p.k_fixed_bits, [&](auto b) {
          using SP = SymbolPairs<decltype(b)::value>;
#pragma unroll
          for (int q2 = 0; q2 < 2; ++q2) {
            const int pp = 2 * ks + q2;
            const float xl = sq[(32 * tig + SP::lo(pp)) * G + grp];
            const float xh = sq[(32 * tig + SP::hi(pp)) * G + grp];
            fits = fits && fabsf(xl) < 65000.0f && fabsf(xh) < 65000.0f;
            split_half2(xl, xh, a[2 * q2], a[2 * q2 + 1]);
          }
        });
      }
      mma_qf(p, tabs)[ks * 32 + lane] = make_uint4(a[0], a[1], a[2], a[3]);
      float2* o = mma_o(p, tabs);
      for (int i = lane; i < 16 * 32; i += 32) o[i] = make_float2(0.0f, 0.0f);
      st.on = __syncthreads_and(fits) != 0;
    }
    return st;
  }

  // Whether the 128 tokens at ta are in compressed blocks that the tensor-core tile takes: K
  // kKBlock and V kV / kVCompact blocks of fixed-length codes (raw blocks take the FMA tile).
  __device__ __forceinline__ static bool mma_tile_ok(const Params& p, int64_t head_off, int ta,
                                                     int k_done, int v_done, int lane) {
    if (ta + kT > k_done || ta + kT > v_done) return false;
    bool ok = true;
    const int nk = p.block_k < kT ? kT / p.block_k : 1, nv = p.block_v < kT ? kT / p.block_v : 1;
    if (lane < nk) {
      const uint32_t h0 = __ldg(reinterpret_cast<const uint32_t*>(
          p.k_blocks[head_off * p.max_k_blocks + ta / p.block_k + lane]));
      ok = (h0 & 0xffffu) == (uint32_t(BlockMode::kHuffman) | (uint32_t(BlockKind::kKBlock) << 8));
    } else if (lane >= 16 && lane - 16 < nv) {
      const uint32_t h0 = __ldg(reinterpret_cast<const uint32_t*>(
          p.v_blocks[head_off * p.max_v_blocks + ta / p.block_v + lane - 16]));
      const uint32_t kind = (h0 >> 8) & 0xffu;
      ok = (h0 & 0xffu) == uint32_t(BlockMode::kHuffman) &&
           (kind == uint32_t(BlockKind::kV) || kind == uint32_t(BlockKind::kVCompact));
    }
    return __all_sync(kFull, ok);
  }

  // Whether a tile of the decode kernel (B::tile(p) tokens at ta) is made of tensor-core tiles
  // of 128 tokens, and when run, runs them.
  template <int HD, int G>
  __device__ __forceinline__ static bool mma_tile(const Params& p, const uint32_t* tabs,
                                                  int64_t head_off, int ta, int k_done, int v_done,
                                                  const float* qsum, int lane, MmaTileState& st,
                                                  bool run) {
    if constexpr (HD == 128 && G <= 8) {
      if (!st.on) return false;
      const int T = Base::tile(p);
      for (int t = ta; t < ta + T; t += kT)
        if (!mma_tile_ok(p, head_off, t, k_done, v_done, lane)) return false;
      if (!run) return true;
      for (int t = ta; t < ta + T; t += kT) {
        with_fixed_bits(p.k_fixed_bits, [&](auto b) {
          mma_k<G, decltype(b)::value>(p, tabs, head_off, t, qsum, lane);
        });
        __syncwarp();
        with_fixed_bits(p.v_fixed_bits, [&](auto b) {
          mma_v<G, decltype(b)::value>(p, tabs, head_off, t, lane, st);
        });
        __syncwarp();
      }
      return true;
    }
    return false;
  }

  // Scores of the tile's 128 tokens: S = Q K^T with Q the A operand (rows: heads, fp16 + rest)
  // and K the B operand (8 tokens x 16 channels per MMA) of B-bit codes unpacked to 1 + s 2^-B.
  // n-tile m's column n is token 32 (n / 2) + SymbolPairs<B_V> half (n % 2) of pair m, so that
  // the scores land where the V phase's A operand wants them (lane tig: tokens 32 tig..). The
  // scores, scaled to q.k', go to the warp's buffer x [m][lane] as (column 2 tig, 2 tig + 1).
  template <int G, int B>
  __device__ __forceinline__ static void mma_k(const Params& p, const uint32_t* tabs,
                                               int64_t head_off, int ta, const float* qsum,
                                               int lane) {
    constexpr int UW = 128 * B / 32;  // words of a token's unit
    constexpr float kScale = float(1 << B);
    const int grp = lane >> 2, tig = lane & 3;
    const uint4* qf = mma_qf(p, tabs);
    float2* x = mma_x(p, tabs);
    const int lt = ta + 32 * (grp >> 1);  // the group of the tokens this lane loads
    const uint32_t* lw = reinterpret_cast<const uint32_t*>(
                             p.k_blocks[head_off * p.max_k_blocks + lt / p.block_k] +
                             block_payload_offset(BlockKind::kKBlock, uint32_t(p.block_k), 128)) +
                         (lt % p.block_k) * UW + tig * B;
    const int ct = ta + 32 * tig;  // the group of the tokens whose scores this lane holds
    const BlockHeader h = load_header(p.k_blocks[head_off * p.max_k_blocks + ct / p.block_k]);
    const float alpha = h.d * kScale;
    const float beta = grp < G ? h.d * (float(h.m0) - kScale) * qsum[grp] : 0.0f;
    const int vb = p.v_fixed_bits;
#pragma unroll 2
    for (int m = 0; m < 16; ++m) {
      const uint32_t* src = lw + pair_symbol(vb, m, grp & 1) * UW;
      uint32_t w[B];
#pragma unroll
      for (int k = 0; k < B; ++k) w[k] = bswap32(__ldg(src + k));
      float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      static_for<8>([&](auto kc) {
        constexpr int ks = decltype(kc)::value;
        const uint4 q = qf[ks * 32 + lane];
        const uint32_t a[4] = {q.x, q.y, q.z, q.w};
        mma_16816(c, a, fixed_pair<B, 2 * ks>(w), fixed_pair<B, 2 * ks + 1>(w));
      });
      x[m * 32 + lane] =
          make_float2(fmaf(alpha, c[0] + c[2], beta), fmaf(alpha, c[1] + c[3], beta));
    }
  }

  // The lane's 32 weights w_t = p_t d_t as the V phase's A operand (pa[s]: k-step s) and their
  // bias share; prm: the params of the lane's first token (kVCompact: QuantParams8, 8-byte
  // aligned; else QuantParams16).
  template <int B, bool kCompact>
  __device__ __forceinline__ static void mma_weights(const float2* x, const uint8_t* prm,
                                                     float base, const float* frac, float mn,
                                                     int lane, MmaTileState& st,
                                                     uint32_t (&pa)[8][4]) {
    using SP = SymbolPairs<B>;
    constexpr float kScale = float(1 << B);
    static_for<16>([&](auto mc) {
      constexpr int m = decltype(mc)::value;
      const float2 sv = x[m * 32 + lane];
      const float sc[2] = {sv.x, sv.y};
      float w2[2];
      static_for<2>([&](auto ec) {
        constexpr int e = decltype(ec)::value;
        constexpr int sym = e ? SP::hi(m) : SP::lo(m);
        float d;
        int m0;
        if constexpr (kCompact) {
          const uint32_t pr = uint32_t(__ldg(reinterpret_cast<const uint16_t*>(prm) + sym));
          const uint32_t code = pr & 0xffu;
          m0 = int(int8_t(uint8_t(pr >> 8)));
          d = (base * frac[code & 31u]) * __uint_as_float((127u - (code >> 5)) << 23);
        } else {
          const uint32_t pr = __ldg(reinterpret_cast<const uint32_t*>(prm) + sym);
          d = __half2float(__ushort_as_half(uint16_t(pr & 0xffffu)));
          m0 = int(int16_t(uint16_t(pr >> 16)));
        }
        const float pe = __expf(sc[e] - mn);
        st.l += pe;
        w2[e] = pe * d;
        st.bias = fmaf(w2[e], float(m0) - kScale, st.bias);
      });
      // n-tile m = 2 s + hh: k-step s, its first (hh = 0) or second 8 columns
      split_half2(w2[0], w2[1], pa[m / 2][2 * (m % 2)], pa[m / 2][2 * (m % 2) + 1]);
    });
  }

  // The softmax update and O += P V for the tile: lane (grp, tig) holds head grp's scores of
  // tokens 32 tig + SymbolPairs<B> halves of pairs 0..15, turns them into weights w_t = p_t d_t
  // (V's token steps) as the A operand (fp16 + rest in rows grp, grp + 8; k-step s: pairs 2 s,
  // 2 s + 1), and runs the MMAs of 16 channel n-tiles (B operand: channel 8 j + grp, the lane's
  // tokens) on O in the warp's buffer. sum_t w_t (s_tc + m0_t) = 2^B sum_t w_t f_tc +
  // sum_t w_t (m0_t - 2^B): the second term is the lane's bias share.
  template <int G, int B>
  __device__ __forceinline__ static void mma_v(const Params& p, const uint32_t* tabs,
                                               int64_t head_off, int ta, int lane,
                                               MmaTileState& st) {
    const int grp = lane >> 2, tig = lane & 3;
    float2* x = mma_x(p, tabs);
    float2* o = mma_o(p, tabs);
    const float* frac = mma_frac(p, tabs);
    float mx = -INFINITY;
#pragma unroll
    for (int m = 0; m < 16; ++m) {
      const float2 v = x[m * 32 + lane];
      mx = fmaxf(mx, fmaxf(v.x, v.y));
    }
    mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, 2));
    const float mn = fmaxf(st.m, mx);
    const float a = __expf(st.m - mn);  // 0 for the first tile (m = -inf)
    st.m = mn;
    st.l *= a;
    st.bias *= a;

    const int ct = ta + 32 * tig;
    const uint8_t* blk = p.v_blocks[head_off * p.max_v_blocks + ct / p.block_v];
    const BlockHeader h = load_header(blk);
    const BlockKind kind = BlockKind(h.kind);
    const int u = ct % p.block_v;
    const uint8_t* prm = blk + block_params_offset(kind, uint32_t(p.block_v), 128);
    uint32_t pa[8][4];
    if (kind == BlockKind::kVCompact) {
      mma_weights<B, true>(x, prm + 2 * u, h.d, frac, mn, lane, st, pa);
    } else {
      mma_weights<B, false>(x, prm + 4 * u, h.d, frac, mn, lane, st, pa);
    }

    const int UWV = p.block_v * B / 32;  // words of a channel's unit
    const uint32_t* vw = reinterpret_cast<const uint32_t*>(
                             blk + block_payload_offset(kind, uint32_t(p.block_v), 128)) +
                         (u / 32) * B + grp * UWV;
#pragma unroll 2
    for (int j = 0; j < 16; ++j) {  // not unrolled further: the loads would be hoisted
      const uint32_t* src = vw + 8 * j * UWV;
      uint32_t w[B];
#pragma unroll
      for (int k = 0; k < B; ++k) w[k] = bswap32(__ldg(src + k));
      const float2 ov = o[j * 32 + lane];
      float c[4] = {ov.x * a, ov.y * a, 0.0f, 0.0f};
      static_for<8>([&](auto sc_) {
        constexpr int s = decltype(sc_)::value;
        mma_16816(c, pa[s], fixed_pair<B, 2 * s>(w), fixed_pair<B, 2 * s + 1>(w));
      });
      o[j * 32 + lane] = make_float2(c[0] + c[2], c[1] + c[3]);
    }
  }

  // At an item's end: the tensor-core tiles' state merged into the FMA tiles' (m, lsum, O) of
  // the lane (channels NV lane.., lsum summed over the lanes later), through buf [G][HD].
  template <int HD, int G>
  __device__ __forceinline__ static void mma_fold(const Params& p, const uint32_t* tabs,
                                                  MmaTileState& st, float* buf, int lane,
                                                  float (&m)[G], float (&lsum)[G],
                                                  float (&O)[HD / 32][G]) {
    if constexpr (HD == 128 && G <= 8) {
      if (!__any_sync(kFull, st.m > -INFINITY)) return;  // no tensor-core tile
      constexpr int NV = HD / 32;
      const int grp = lane >> 2, tig = lane & 3;
      float l = st.l, bias = st.bias;
      l += __shfl_xor_sync(kFull, l, 1);
      l += __shfl_xor_sync(kFull, l, 2);
      bias += __shfl_xor_sync(kFull, bias, 1);
      bias += __shfl_xor_sync(kFull, bias, 2);
      const float kScale = float(1 << p.v_fixed_bits);
      const float2* o = mma_o(p, tabs);
      __syncwarp();
      if (grp < G)
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          const float2 v = o[j * 32 + lane];
          buf[grp * HD + 8 * j + 2 * tig] = fmaf(kScale, v.x, bias);
          buf[grp * HD + 8 * j + 2 * tig + 1] = fmaf(kScale, v.y, bias);
        }
      __syncwarp();
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float mm = __shfl_sync(kFull, st.m, 4 * g), ll = __shfl_sync(kFull, l, 4 * g);
        const float M = fmaxf(m[g], mm);
        if (M == -INFINITY) continue;
        const float fa = __expf(m[g] - M), fb = __expf(mm - M);
        m[g] = M;
        lsum[g] = lsum[g] * fa + (lane == 0 ? ll * fb : 0.0f);
#pragma unroll
        for (int j = 0; j < NV; ++j) O[j][g] = O[j][g] * fa + buf[g * HD + NV * lane + j] * fb;
      }
      __syncwarp();
    }
  }
};

// Launches the kernel with policy B (KvcompBlocks<...>) for p's head_dim and group size.
template <class B>
void run_policy(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len, DType act,
                void* scratch, size_t scratch_bytes, int split_tokens) {
  decode_attn::dispatch_shape(p, "kvcomp attention", [&](auto hd, auto g) {
    constexpr int HD = decltype(hd)::value, G = decltype(g)::value;
    decode_attn::launch<HD, G, B>(ctx, p, max_len, act, scratch, scratch_bytes, split_tokens);
  });
}

// The policy with the fixed-length fast paths, instantiated in attention_kvcomp_fixed.cu (its
// own translation unit: it is the largest to compile).
// mma: KvcompMma's tensor-core tiles at head_dim 128 (else the FMA paths of KvcompBlocks).
void run_fixed(const CudaContext& ctx, const KvcompAttentionParams& p, int max_len, DType act,
               void* scratch, size_t scratch_bytes, int split_tokens, bool mma);

}  // namespace kvcomp_attn
}  // namespace kvcomp
