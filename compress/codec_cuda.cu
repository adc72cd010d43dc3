// KVComp codec on the GPU: block encoder, symbol histogram, block decoders (codec_cuda.h).
//
// Bit-exactness with the CPU reference (compress/quantize.cpp, compress/codec_ref.cpp) comes
// from repeating its operations one for one: inputs are fp16, so fp16 -> fp32 is exact; every
// arithmetic step is an explicit round-to-nearest intrinsic (__fsub_rn, __fmul_rn, __fdiv_rn,
// __fadd_rn: never contracted into an FMA; the file is also built with --fmad=false); rintf rounds
// ties to even like the CPU's; fp32 -> fp16 is __float2half_rn, which float_to_fp16 (runtime/
// half.h) matches bit for bit. Group min/max are order-independent for finite values (a signed
// zero can differ but every later step treats +0 and -0 alike); non-finite blocks go raw first.
// Raw blocks copy the source's fp16 bits, which is what fp16_from_float_raw(fp16_to_float(h))
// gives for every h, NaN payloads included.
//
// Encode, one CTA of 256 threads per block (one thread per unit: units <= 256):
//   1. scan the rows (fp16, coalesced): non-finite flag, min/max per group
//   2. step per group (quant_group_step), raw-reason flags ORed in shared memory; for a
//      kVCompact request, each token's compact (e, m0) under the block's base step (a thread per
//      token; the kV form when one token does not allow them)
//   3. symbols into shared memory, [n_tokens][head_dim + 4] bytes (the pad keeps a thread's row
//      reads conflict-free when a thread walks a K unit)
//   4. per-unit byte lengths (bits summed in 3), CTA prefix sum -> unit offsets
//   5. block size, allocation from the arena (one atomicAdd)
//   6. the block image in shared memory (header, lengths, params, payload: a thread writes its
//      own unit's bytes, units never share a byte), then one coalesced copy of 32-bit words;
//      raw blocks are copied straight from the source.
// Bytes: the input is read twice (scan, quantize; the second read mostly hits L2) and the block
// written once.
//
// Decode, one CTA of 128 threads per block (a CTA takes a run of consecutive jobs and reloads the
// decode table only when the codebook changes): header, params ((d, m0) per group from
// block_param of format.h: kV and kVCompact alike), unit offsets (prefix sum of the lengths), a
// thread per unit decodes with the table lookup of huffman_cuda.cuh into a shared
// [n_tokens][head_dim + 2] fp16 tile (row pad: conflict-free K-unit writes), then a coalesced copy
// to the destination rows. The decode loop is bound by instructions per symbol, not bytes (a
// block of 8K values is ~3 KB compressed, 16 KB decoded): the table is widened to 8 or 12 bits
// so L is a compile-time constant and each run between refills unrolls (4 or 2 symbols); per
// symbol: a shift, a table load, the length's 64-bit shift, one params load (d, m0 as a float2,
// a broadcast), an add, a multiply, the fp16 conversion and a shared store.
#include "compress/codec_cuda.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "compress/format_cuda.cuh"
#include "compress/huffman_cuda.cuh"
#include "compress/quantize.h"
#include "runtime/cuda_check.h"
#include "runtime/error.h"

namespace kvcomp {

static_assert(offsetof(BlockHeader, mode) == 0 && offsetof(BlockHeader, kind) == 1 &&
                  offsetof(BlockHeader, raw_reason) == 2 &&
                  offsetof(BlockHeader, packed_bits) == 3 && offsetof(BlockHeader, n_tokens) == 4 &&
                  offsetof(BlockHeader, head_dim) == 6 && offsetof(BlockHeader, d) == 8 &&
                  offsetof(BlockHeader, m0) == 12 && offsetof(BlockHeader, block_bytes) == 16 &&
                  offsetof(BlockHeader, payload_bytes) == 20,
              "the kernels write BlockHeader as six little-endian 32-bit words");
static_assert(offsetof(QuantParams16, d) == 0 && offsetof(QuantParams16, m0) == 2,
              "the kernels write QuantParams16 as one 32-bit word: d | m0 << 16");
static_assert(offsetof(QuantParams8, e) == 0 && offsetof(QuantParams8, m0) == 1,
              "the kernels write QuantParams8 as one 16-bit half-word: e | m0 << 8");

namespace {

constexpr int kEncodeThreads = 256;
constexpr int kEncodeWarps = kEncodeThreads / 32;
constexpr int kDecodeThreads = 128;
constexpr int kSymRowPad = 4;   // bytes after each row of the encoder's symbol array
constexpr int kTileRowPad = 2;  // fp16 values after each row of the decoder's tile
constexpr int kMaxUnits = kCodecMaxTokens > kCodecMaxHeadDim ? kCodecMaxTokens : kCodecMaxHeadDim;
static_assert(kCodecMaxTokens == kEncodeThreads && kCodecMaxHeadDim == kEncodeThreads,
              "the encoder runs one thread per unit and per group");
static_assert(kMaxUnits <= 2 * kDecodeThreads, "the decoder scans two unit lengths per thread");

constexpr uint32_t kFp16ExpMask = 0x7c00u;
constexpr uint32_t kReasonBit(RawReason r) {
  return 1u << (uint32_t(r) - 1u);
}

constexpr size_t align16(size_t n) {
  return (n + 15u) & ~size_t(15);
}

// Shared memory the encoder needs beyond its static part: the symbol array and the block image.
// The image bound: header, lengths, params, and a payload of at most 12 bits per value plus one
// padding byte per unit, its alignment and slack.
size_t encode_dyn_smem_bytes(int max_values) {
  const size_t sym = align16(size_t(max_values) + size_t(kSymRowPad) * kCodecMaxTokens);
  const size_t image = sizeof(BlockHeader) + kMaxUnits + sizeof(QuantParams16) * kMaxUnits +
                       (size_t(max_values) * kMaxCodeLen + 7) / 8 + kMaxUnits + 3 +
                       kPayloadSlackBytes;
  return sym + align16(image);
}
__device__ __forceinline__ uint32_t encode_sym_region_bytes(int n_tokens, int head_dim) {
  return uint32_t(align16(size_t(n_tokens) * size_t(head_dim + kSymRowPad)));
}

size_t decode_dyn_smem_bytes(int max_values, int table_bits, bool tile) {
  const size_t table = align16(sizeof(uint32_t) << table_bits);
  return table + (tile ? align16(sizeof(__half) *
                                 (size_t(max_values) + size_t(kTileRowPad) * kCodecMaxTokens))
                       : 0);
}

// ---------------------------------------------------------------------------------------------
// Device helpers

__device__ __forceinline__ bool finite_positive(float x) {
  return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u && x > 0.0f;
}

// Row r of a job's block.
__device__ __forceinline__ const uint16_t* job_row(const EncodeJob& j, int r) {
  const int64_t row = j.ring_cap > 0 ? (int64_t(j.first) + r) % int64_t(j.ring_cap) : int64_t(r);
  return reinterpret_cast<const uint16_t*>(j.src) + row * j.row_stride;
}

__device__ __forceinline__ float fp16_bits_value(uint16_t b) {
  return __half2float(__ushort_as_half(b));
}
__device__ __forceinline__ uint16_t fp16_bits_of(float x) {
  return __half_as_ushort(__float2half_rn(x));
}
// fp16 bits -> fp32 like fp16_to_float (runtime/half.h): a NaN keeps its sign and payload.
__device__ __forceinline__ float fp16_bits_to_float_exact(uint16_t h) {
  if ((h & kFp16ExpMask) == kFp16ExpMask) {
    return __uint_as_float((uint32_t(h & 0x8000u) << 16) | 0x7f800000u |
                           (uint32_t(h & 0x3ffu) << 13));
  }
  return fp16_bits_value(h);
}

__device__ __forceinline__ float warp_min(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ uint32_t warp_sum(uint32_t v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Exclusive prefix sum over a CTA of kThreads threads; *total gets the sum. scratch holds
// kThreads / 32 + 1 words. Every thread must call it (it synchronizes).
template <int kThreads>
__device__ uint32_t cta_exclusive_scan(uint32_t v, uint32_t* scratch, uint32_t* total) {
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint32_t incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    const uint32_t y = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += y;
  }
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    const uint32_t w = lane < kWarps ? scratch[lane] : 0u;
    uint32_t wi = w;
    for (int o = 1; o < 32; o <<= 1) {
      const uint32_t y = __shfl_up_sync(0xffffffffu, wi, o);
      if (lane >= o) wi += y;
    }
    __syncwarp();
    if (lane < kWarps) scratch[lane] = wi - w;
    if (lane == kWarps - 1) scratch[kWarps] = wi;
  }
  __syncthreads();
  *total = scratch[kWarps];
  const uint32_t r = scratch[warp] + incl - v;
  __syncthreads();  // scratch may be reused after the return
  return r;
}

// The step of one group: quant_group_step of compress/quantize.cpp, operation for operation.
// Returns the raw reason (kNone or kStep); on kNone fills d (fp32 and fp16 bits) and m0.
__device__ RawReason group_step(float mn, float mx, float eb, bool int16_m0, float* d,
                                uint16_t* d_bits, int32_t* m0) {
  if (mx == mn) {
    const uint16_t h = fp16_bits_of(fabsf(mn));
    if (h == kFp16ExpMask) return RawReason::kStep;  // |mn| beyond fp16
    if (h == 0) {
      *d = 1.0f;
      *d_bits = 0x3c00u;  // fp16 1.0
      *m0 = 0;
    } else {
      *d = fp16_bits_value(h);
      *d_bits = h;
      *m0 = mn > 0.0f ? 1 : -1;
    }
    return RawReason::kNone;
  }
  const float range = __fsub_rn(mx, mn);
  const float t = __fmul_rn(eb, range);
  // fp16_round_down(t): nearest fp16, one ulp down if that went above t (t >= 0).
  uint16_t h = fp16_bits_of(t);
  if (h != 0 && fp16_bits_value(h) > t) --h;
  if (h == 0 || h >= kFp16ExpMask) return RawReason::kStep;
  const float dd = fp16_bits_value(h);
  const float qmn = __fdiv_rn(mn, dd);
  const float qmx = __fdiv_rn(mx, dd);
  if (!(fabsf(qmn) <= kQuantMaxRatio && fabsf(qmx) <= kQuantMaxRatio)) return RawReason::kStep;
  const int32_t m = int32_t(rintf(qmn));
  if (int16_m0 && (m < -32768 || m > 32767)) return RawReason::kStep;
  *d = dd;
  *d_bits = h;
  *m0 = m;
  return RawReason::kNone;
}

// quant_symbol(): rintf(x / d) - m0.
__device__ __forceinline__ int32_t quant_symbol_dev(float x, float d, int32_t m0) {
  return int32_t(rintf(__fdiv_rn(x, d))) - m0;
}

// Word i (0..5) of a block header.
__device__ __forceinline__ uint32_t header_word(int i, BlockMode mode, BlockKind kind,
                                                RawReason reason, uint32_t n_tokens,
                                                uint32_t head_dim, float d, int32_t m0,
                                                uint32_t block_bytes, uint32_t payload_bytes) {
  switch (i) {
    case 0:
      return uint32_t(mode) | (uint32_t(kind) << 8) | (uint32_t(reason) << 16);
    case 1:
      return n_tokens | (head_dim << 16);
    case 2:
      return __float_as_uint(d);
    case 3:
      return uint32_t(m0);
    case 4:
      return block_bytes;
    default:
      return payload_bytes;
  }
}

__device__ __forceinline__ bool encode_job_valid(const EncodeJob& j, int n_index, int max_values,
                                                 bool need_slot) {
  return j.src != nullptr && block_kind_valid(j.kind) && j.n_tokens >= 1 &&
         j.n_tokens <= kCodecMaxTokens && j.head_dim >= 1 && j.head_dim <= kCodecMaxHeadDim &&
         j.n_tokens * j.head_dim <= max_values && j.row_stride >= j.head_dim && j.ring_cap >= 0 &&
         (j.ring_cap == 0 || j.first >= 0) && finite_positive(j.eb) && j.codebook >= 0 &&
         j.codebook < n_index && (!need_slot || j.slot != nullptr);
}

// ---------------------------------------------------------------------------------------------
// Encoder and histogram

struct EncodeSmem {
  uint32_t enc[kMaxAlphabet];   // encode table of the job's codebook
  uint32_t hist[kMaxAlphabet];  // histogram kernel: this block's counts
  float gmin[kMaxUnits];        // per group (token or channel)
  float gmax[kMaxUnits];
  float pmin[kEncodeThreads];  // per thread (K channel-wise partials)
  float pmax[kEncodeThreads];
  float d[kMaxUnits];             // per group: step
  int32_t m0[kMaxUnits];          // per group: offset
  uint32_t qp[kMaxUnits];         // per group: QuantParams16 (or, compact V, QuantParams8) bits
  uint32_t unit_bits[kMaxUnits];  // per unit: bits of its codes (summed while quantizing)
  uint32_t unit_len[kMaxUnits];   // per unit: bytes
  uint32_t unit_off[kMaxUnits];
  float wmin[kEncodeWarps];
  float wmax[kEncodeWarps];
  uint32_t scan[kEncodeWarps + 1];
  uint32_t flags;       // bit r - 1: RawReason r holds for some group
  uint32_t vbase_bits;  // compact V: bits of the largest step of a non-constant token (0: none)
  uint8_t* dst;
};

// kHistogram == false: encode (codebooks, arena). kHistogram == true: count symbols (hist).
template <bool kHistogram>
__global__ void __launch_bounds__(kEncodeThreads)
    quantize_blocks_kernel(const EncodeJob* __restrict__ jobs, const GpuCodebookView* codebooks,
                           int n_codebooks, BlockArena arena, int max_values, int hist_alphabet,
                           unsigned long long* hist, int n_hist, int* hist_error) {
  extern __shared__ __align__(16) uint8_t dyn_smem[];
  __shared__ EncodeSmem s;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const EncodeJob job = jobs[blockIdx.x];

  if (!encode_job_valid(job, kHistogram ? n_hist : n_codebooks, max_values, !kHistogram)) {
    if (tid == 0) {
      int* err = kHistogram ? hist_error : arena.error;
      if (err) atomicOr(err, kCodecErrBadJob);
      if (!kHistogram && job.slot) *job.slot = nullptr;
    }
    return;
  }
  const BlockKind req = BlockKind(job.kind);  // the request: kVCompact may become kV
  const bool v_kind = block_kind_is_v(req);
  const int n = job.n_tokens, hd = job.head_dim;
  int max_symbol;
  if constexpr (kHistogram) {
    max_symbol = hist_alphabet - 1;
    for (int i = tid; i < kMaxAlphabet; i += kEncodeThreads) s.hist[i] = 0;
  } else {
    const GpuCodebookView cb = codebooks[job.codebook];
    max_symbol = cb.max_symbol;
    for (int i = tid; i <= max_symbol; i += kEncodeThreads) s.enc[i] = cb.encode[i];
    for (int i = tid; i < kMaxUnits; i += kEncodeThreads) s.unit_bits[i] = 0;
  }
  if (tid == 0) s.flags = 0, s.vbase_bits = 0;

  // 1. Scan: non-finite values, min/max per group.
  bool nonfinite = false;
  if (req == BlockKind::kKChannel) {
    // Thread (slice, c): channel c over tokens slice, slice + slices, ...
    const int slices = kEncodeThreads / hd;
    const int c = tid % hd, slice = tid / hd;
    float mn = INFINITY, mx = -INFINITY;
    if (slice < slices) {
      for (int t = slice; t < n; t += slices) {
        const uint16_t b = job_row(job, t)[c];
        nonfinite |= (b & kFp16ExpMask) == kFp16ExpMask;
        const float x = fp16_bits_value(b);
        mn = fminf(mn, x);
        mx = fmaxf(mx, x);
      }
    }
    s.pmin[tid] = mn;
    s.pmax[tid] = mx;
  } else {
    // A warp per row; K block-wise keeps one min/max over all rows.
    float mn = INFINITY, mx = -INFINITY;
    for (int t = warp; t < n; t += kEncodeWarps) {
      const uint16_t* row = job_row(job, t);
      float rmn = INFINITY, rmx = -INFINITY;
      for (int c = lane; c < hd; c += 32) {
        const uint16_t b = row[c];
        nonfinite |= (b & kFp16ExpMask) == kFp16ExpMask;
        const float x = fp16_bits_value(b);
        rmn = fminf(rmn, x);
        rmx = fmaxf(rmx, x);
      }
      if (v_kind) {
        rmn = warp_min(rmn);
        rmx = warp_max(rmx);
        if (lane == 0) {
          s.gmin[t] = rmn;
          s.gmax[t] = rmx;
        }
      }
      mn = fminf(mn, rmn);
      mx = fmaxf(mx, rmx);
    }
    if (req == BlockKind::kKBlock) {
      mn = warp_min(mn);
      mx = warp_max(mx);
      if (lane == 0) {
        s.wmin[warp] = mn;
        s.wmax[warp] = mx;
      }
    }
  }
  const bool any_nonfinite = __syncthreads_or(nonfinite) != 0;

  // 2. Steps.
  if (!any_nonfinite) {
    int group = -1;
    float mn = 0.0f, mx = 0.0f;
    if (req == BlockKind::kKBlock) {
      if (tid == 0) {
        group = 0;
        mn = s.wmin[0];
        mx = s.wmax[0];
        for (int w = 1; w < kEncodeWarps; ++w) {
          mn = fminf(mn, s.wmin[w]);
          mx = fmaxf(mx, s.wmax[w]);
        }
      }
    } else if (req == BlockKind::kKChannel) {
      if (tid < hd) {
        group = tid;
        const int slices = kEncodeThreads / hd;
        mn = s.pmin[tid];
        mx = s.pmax[tid];
        for (int sl = 1; sl < slices; ++sl) {
          mn = fminf(mn, s.pmin[sl * hd + tid]);
          mx = fmaxf(mx, s.pmax[sl * hd + tid]);
        }
      }
    } else if (tid < n) {
      group = tid;
      mn = s.gmin[tid];
      mx = s.gmax[tid];
    }
    if (group >= 0) {
      float d = 1.0f;
      uint16_t d_bits = 0x3c00u;
      int32_t m0 = 0;
      const RawReason r =
          group_step(mn, mx, job.eb, /*int16_m0=*/req != BlockKind::kKBlock, &d, &d_bits, &m0);
      if (r != RawReason::kNone) atomicOr(&s.flags, kReasonBit(r));
      s.d[group] = d;
      s.m0[group] = m0;
      s.qp[group] = uint32_t(d_bits) | (uint32_t(uint16_t(int16_t(m0))) << 16);
      // Compact V: the base step b is the largest step of a non-constant token (positive
      // floats order as their bits).
      if (req == BlockKind::kVCompact && mx != mn) atomicMax(&s.vbase_bits, __float_as_uint(d));
    }
  }
  __syncthreads();
  uint32_t reasons = any_nonfinite ? kReasonBit(RawReason::kNonFinite) : s.flags;

  // 2b. Compact V params (v_compact_params of compress/quantize.cpp): every token's (e, m0) under
  // the base b, or the kV form when one token does not allow them. Thread t: token t.
  bool compact = false;
  float vbase = 0.0f;
  if (req == BlockKind::kVCompact && reasons == 0) {  // uniform
    vbase = s.vbase_bits != 0 ? __uint_as_float(s.vbase_bits) : 1.0f;
    bool bad = false;
    float dc = 0.0f;
    int32_t mc = 0;
    uint32_t e = 0;
    if (tid < n) {
      const float mn = s.gmin[tid], mx = s.gmax[tid];
      if (mx == mn) {
        bad = s.m0[tid] != 0;  // a nonzero constant: kV keeps its fp16 value exactly
      } else {
        e = v_compact_code(vbase, s.d[tid], kVStepTableDev);
        bad = e > kVCompactMaxCode;
      }
      if (!bad) {
        dc = v_compact_step(vbase, e, kVStepTableDev);
        mc = mx == mn ? 0 : int32_t(rintf(__fdiv_rn(mn, dc)));
        bad = mc < -128 || mc > 127 || int32_t(rintf(__fdiv_rn(mx, dc))) - mc > max_symbol;
      }
    }
    compact = __syncthreads_or(bad) == 0;
    if (compact && tid < n) {
      s.d[tid] = dc;
      s.m0[tid] = mc;
      s.qp[tid] = e | (uint32_t(uint8_t(int8_t(mc))) << 8);
    }
    __syncthreads();
  }
  // The block's kind from here on.
  const BlockKind kind = compact ? BlockKind::kVCompact : block_kind_widest(req);

  // 3. Symbols (or counts), and the code bits of every unit: K units are rows (a warp sums its
  // row), V units are columns (lanes of a warp hold distinct columns: shared atomics).
  uint8_t* sym = dyn_smem;
  const int sym_stride = hd + kSymRowPad;
  if (reasons == 0) {
    bool over = false;
    for (int t = warp; t < n; t += kEncodeWarps) {
      const uint16_t* row = job_row(job, t);
      uint32_t row_bits = 0;
      for (int c = lane; c < hd; c += 32) {
        const int g = v_kind ? t : kind == BlockKind::kKChannel ? c : 0;
        const int32_t q = quant_symbol_dev(fp16_bits_value(row[c]), s.d[g], s.m0[g]);
        if (q < 0 || q > max_symbol) {
          over = true;
          continue;
        }
        if constexpr (kHistogram) {
          atomicAdd(&s.hist[q], 1u);
        } else {
          sym[t * sym_stride + c] = uint8_t(q);
          const uint32_t len = s.enc[q] & 0xffu;
          if (v_kind) {
            atomicAdd(&s.unit_bits[c], len);
          } else {
            row_bits += len;
          }
        }
      }
      if constexpr (!kHistogram) {
        if (!v_kind) {
          row_bits = warp_sum(row_bits);
          if (lane == 0) s.unit_bits[t] = row_bits;
        }
      }
    }
    if (__syncthreads_or(over)) reasons = kReasonBit(RawReason::kSymbols);
  }

  if constexpr (kHistogram) {
    if (reasons == 0) {
      unsigned long long* h = hist + size_t(job.codebook) * kMaxAlphabet;
      for (int i = tid; i < hist_alphabet; i += kEncodeThreads) {
        if (s.hist[i] != 0) atomicAdd(h + i, (unsigned long long)s.hist[i]);
      }
    }
    return;
  } else {
    // 4. Unit lengths and offsets.
    const uint32_t n_units = block_n_units(kind, uint32_t(n), uint32_t(hd));
    const uint32_t unit_syms = block_unit_symbols(kind, uint32_t(n), uint32_t(hd));
    uint32_t payload_bytes = 0;
    if (reasons == 0) {
      uint32_t len = 0;
      if (uint32_t(tid) < n_units) {
        len = (s.unit_bits[tid] + 7u) / 8u;
        s.unit_len[tid] = len;
      }
      const uint32_t off = cta_exclusive_scan<kEncodeThreads>(len, s.scan, &payload_bytes);
      if (uint32_t(tid) < n_units) s.unit_off[tid] = off;
      if (__syncthreads_or(len > uint32_t(kMaxUnitBytes))) {
        reasons = kReasonBit(RawReason::kUnitOverflow);
      }
    }

    // 5. Allocation.
    const bool raw = reasons != 0;
    const uint32_t block_bytes =
        raw ? raw_block_bytes(uint32_t(n), uint32_t(hd))
            : huffman_block_bytes(kind, uint32_t(n), uint32_t(hd), payload_bytes);
    if (tid == 0) {
      const unsigned long long old = atomicAdd(arena.used, (unsigned long long)block_bytes);
      uint8_t* dst = nullptr;
      if (old + block_bytes <= arena.capacity) {
        dst = arena.base + old;
      } else {
        atomicOr(arena.error, kCodecErrOverflow);
      }
      *job.slot = dst;
      s.dst = dst;
    }
    __syncthreads();
    uint8_t* const dst = s.dst;
    if (dst == nullptr) return;
    uint32_t* const dst32 = reinterpret_cast<uint32_t*>(dst);

    // 6. Write the block.
    if (raw) {
      const RawReason reason = RawReason(__ffs(int(reasons)));
      const uint32_t n_values = uint32_t(n) * uint32_t(hd);
      if (tid < 6) {
        dst32[tid] = header_word(tid, BlockMode::kRaw, block_kind_widest(kind), reason, uint32_t(n),
                                 uint32_t(hd), 0.0f, 0, block_bytes, 2u * n_values);
      }
      const uint32_t n_words = (n_values + 1u) / 2u;
      uint32_t* out = dst32 + raw_block_values_offset() / 4u;
      for (uint32_t w = tid; w < n_words; w += kEncodeThreads) {
        const uint32_t e0 = 2u * w, e1 = e0 + 1u;
        const uint32_t lo = job_row(job, int(e0 / uint32_t(hd)))[e0 % uint32_t(hd)];
        const uint32_t hi =
            e1 < n_values ? job_row(job, int(e1 / uint32_t(hd)))[e1 % uint32_t(hd)] : 0u;
        out[w] = lo | (hi << 16);
      }
      return;
    }

    uint8_t* img = dyn_smem + encode_sym_region_bytes(n, hd);
    uint32_t* img32 = reinterpret_cast<uint32_t*>(img);
    const uint32_t params_off = block_params_offset(kind, uint32_t(n), uint32_t(hd));
    const uint32_t payload_off = block_payload_offset(kind, uint32_t(n), uint32_t(hd));
    const uint32_t n_params = block_n_params(kind, uint32_t(n), uint32_t(hd));
    const bool k_block = kind == BlockKind::kKBlock;
    if (tid < 6) {
      img32[tid] =
          header_word(tid, BlockMode::kHuffman, kind, RawReason::kNone, uint32_t(n), uint32_t(hd),
                      k_block   ? s.d[0]
                      : compact ? vbase
                                : 0.0f,
                      k_block ? s.m0[0] : 0, block_bytes, payload_bytes);
    }
    if (uint32_t(tid) < round_up4(n_units)) {
      img[block_lengths_offset() + tid] = uint32_t(tid) < n_units ? uint8_t(s.unit_len[tid]) : 0;
    }
    if (compact) {  // two QuantParams8 per word, the section zero-padded to 4 bytes
      const uint32_t i = 2u * uint32_t(tid);
      if (i < n_params) {
        img32[params_off / 4u + tid] = s.qp[i] | (i + 1u < n_params ? s.qp[i + 1u] << 16 : 0u);
      }
    } else if (uint32_t(tid) < n_params) {
      img32[params_off / 4u + tid] = s.qp[tid];
    }
    if (uint32_t(tid) < n_units) {
      // This unit's codes MSB-first into its own bytes; the last byte zero-padded.
      uint8_t* p = img + payload_off + s.unit_off[tid];
      uint64_t acc = 0;  // only the low nb bits are pending
      int nb = 0;
      for (uint32_t i = 0; i < unit_syms; ++i) {
        const uint8_t sy = v_kind ? sym[i * sym_stride + tid] : sym[tid * sym_stride + i];
        const uint32_t e = s.enc[sy];
        const int len = int(e & 0xffu);
        acc = (acc << len) | (e >> 8);
        nb += len;
        while (nb >= 8) {
          *p++ = uint8_t(acc >> (nb - 8));
          nb -= 8;
        }
      }
      if (nb > 0) *p = uint8_t(acc << (8 - nb));
    }
    for (uint32_t i = payload_off + payload_bytes + tid; i < block_bytes; i += kEncodeThreads) {
      img[i] = 0;  // payload padding and slack
    }
    __syncthreads();
    for (uint32_t w = tid; w < block_bytes / 4u; w += kEncodeThreads) dst32[w] = img32[w];
  }
}

// ---------------------------------------------------------------------------------------------
// Decoders

enum class DecodeOut { kHalf, kFloat, kSymbols };

struct DecodeSmem {
  float2 dm[kMaxUnits];  // (d, (float)m0) of symbol i of a unit: K block-wise: the block's;
                         // K channel-wise: channel i's; V: token i's
  uint32_t unit_off[kMaxUnits];
  uint32_t scan[kDecodeThreads / 32 + 1];
};

// Decode tables are widened to 8 bits (codebooks with L <= 8) or 12 bits, so that the decode
// loop runs with L fixed at compile time (huffman_cuda.cuh).
__host__ __device__ constexpr int decode_table_bits(int max_len) {
  return max_len <= 8 ? 8 : kMaxCodeLen;
}

// Thread-per-unit decode of one unit whose symbol i goes to out[base + i * step] (fp16: the
// shared tile; fp32: the destination rows). kTableBits == 0: L taken at run time.
template <DecodeOut kOut, int kTableBits>
__device__ __forceinline__ void decode_unit(const uint8_t* unit, int count, const uint32_t* table,
                                            int table_bits, const float2* dm, void* out,
                                            int64_t base, int64_t step) {
  huffman_decode_unit<kTableBits>(unit, count, table, table_bits, [&](int i, uint32_t e) {
    const int64_t at = base + int64_t(i) * step;
    if constexpr (kOut == DecodeOut::kHalf) {
      const float2 p = dm[i];
      static_cast<__half*>(out)[at] = __float2half_rn(huffman_dequant(e, p.y, p.x));
    } else if constexpr (kOut == DecodeOut::kFloat) {
      const float2 p = dm[i];
      static_cast<float*>(out)[at] = huffman_dequant(e, p.y, p.x);
    } else {
      static_cast<float*>(out)[at] = huffman_entry_symbol(e);
    }
  });
}

// jobs [blockIdx.x * jobs_per_cta, +jobs_per_cta) in order.
template <DecodeOut kOut>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_blocks_kernel(const DecodeJob* __restrict__ jobs, int n_jobs, int jobs_per_cta,
                         const GpuCodebookView* codebooks, int n_codebooks, int max_values,
                         int table_cap_bits, int* error) {
  extern __shared__ __align__(16) uint8_t dyn_smem[];
  __shared__ DecodeSmem s;
  uint32_t* const table = reinterpret_cast<uint32_t*>(dyn_smem);
  __half* const tile =
      reinterpret_cast<__half*>(dyn_smem + align16(sizeof(uint32_t) << table_cap_bits));
  const int tid = threadIdx.x;
  int loaded = -1;  // codebook whose table is in shared memory
  const int j_begin = blockIdx.x * jobs_per_cta;
  const int j_end = min(n_jobs, j_begin + jobs_per_cta);

  for (int j = j_begin; j < j_end; ++j) {
    __syncthreads();  // the previous job is done with shared memory
    const DecodeJob job = jobs[j];
    if (job.block == nullptr || job.dst == nullptr) continue;  // a null job: nothing to do
    const uint32_t* h = reinterpret_cast<const uint32_t*>(job.block);
    const uint32_t w0 = h[0], w1 = h[1], w2 = h[2], w3 = h[3], w4 = h[4], w5 = h[5];
    const uint32_t mode = w0 & 0xffu, kind_u = (w0 >> 8) & 0xffu, reason = (w0 >> 16) & 0xffu;
    const int n = int(w1 & 0xffffu), hd = int(w1 >> 16);
    const uint32_t block_bytes = w4, payload_bytes = w5;
    const BlockKind kind = BlockKind(kind_u);
    bool ok = block_kind_valid(uint8_t(kind_u)) && n >= 1 && n <= kCodecMaxTokens && hd >= 1 &&
              hd <= kCodecMaxHeadDim && n * hd <= max_values && job.dst_row_stride >= hd;
    const bool raw = mode == uint32_t(BlockMode::kRaw);
    if (ok) {
      if (raw) {
        ok = reason >= 1 && reason <= 4 && payload_bytes == 2u * uint32_t(n * hd) &&
             block_bytes == raw_block_bytes(uint32_t(n), uint32_t(hd));
      } else {
        ok = mode == uint32_t(BlockMode::kHuffman) && reason == 0 && job.codebook >= 0 &&
             job.codebook < n_codebooks &&
             block_bytes == huffman_block_bytes(kind, uint32_t(n), uint32_t(hd), payload_bytes);
      }
    }
    if (!ok) {
      if (tid == 0 && error) atomicOr(error, kCodecErrBadBlock);
      continue;
    }

    if (raw) {
      // fp16 bits straight from the block.
      const uint32_t n_values = uint32_t(n * hd);
      const uint32_t* vals =
          reinterpret_cast<const uint32_t*>(job.block + raw_block_values_offset());
      for (uint32_t w = tid; w < (n_values + 1u) / 2u; w += kDecodeThreads) {
        const uint32_t word = vals[w];
        for (uint32_t k = 0; k < 2u; ++k) {
          const uint32_t e = 2u * w + k;
          if (e >= n_values) break;
          const uint16_t b = uint16_t(word >> (16u * k));
          const int t = int(e / uint32_t(hd)), c = int(e % uint32_t(hd));
          if constexpr (kOut == DecodeOut::kHalf) {
            static_cast<uint16_t*>(job.dst)[t * job.dst_row_stride + c] = b;
          } else {
            static_cast<float*>(job.dst)[t * job.dst_row_stride + c] = fp16_bits_to_float_exact(b);
          }
        }
      }
      continue;
    }

    const GpuCodebookView cb = codebooks[job.codebook];
    const int table_bits = decode_table_bits(cb.max_len);
    if (job.codebook != loaded) {  // widen the codebook's table to table_bits
      for (int i = tid; i < (1 << table_bits); i += kDecodeThreads) {
        table[i] = huffman_widened_entry(cb.decode, cb.max_len, table_bits, uint32_t(i));
      }
      loaded = job.codebook;
    }
    const uint32_t n_units = block_n_units(kind, uint32_t(n), uint32_t(hd));
    const uint32_t unit_syms = block_unit_symbols(kind, uint32_t(n), uint32_t(hd));
    if (kind == BlockKind::kKBlock) {
      const float2 p = make_float2(__uint_as_float(w2), float(int32_t(w3)));
      for (uint32_t i = tid; i < unit_syms; i += kDecodeThreads) s.dm[i] = p;
    } else {  // K channel-wise, V, V compact: entry i of the params section
      const uint8_t* params = job.block + block_params_offset(kind, uint32_t(n), uint32_t(hd));
      for (uint32_t i = tid; i < unit_syms; i += kDecodeThreads) {
        const GroupParams p = block_param(kind, __uint_as_float(w2), params, i, kVStepTableDev);
        s.dm[i] = make_float2(p.d, float(p.m0));
      }
    }
    // Unit offsets: two lengths per thread.
    const uint8_t* lengths = job.block + block_lengths_offset();
    const uint32_t u0 = 2u * uint32_t(tid), u1 = u0 + 1u;
    const uint32_t a = u0 < n_units ? lengths[u0] : 0u;
    const uint32_t b = u1 < n_units ? lengths[u1] : 0u;
    uint32_t total = 0;
    const uint32_t off = cta_exclusive_scan<kDecodeThreads>(a + b, s.scan, &total);
    if (u0 < n_units) s.unit_off[u0] = off;
    if (u1 < n_units) s.unit_off[u1] = off + a;
    if (total != payload_bytes) {  // uniform: the lengths disagree with the header
      if (tid == 0 && error) atomicOr(error, kCodecErrBadBlock);
      continue;
    }
    __syncthreads();

    const uint8_t* payload = job.block + block_payload_offset(kind, uint32_t(n), uint32_t(hd));
    const bool v_kind = block_kind_is_v(kind);
    const int tile_stride = hd + kTileRowPad;
    for (uint32_t u = tid; u < n_units; u += kDecodeThreads) {
      // Unit u: token u (K: symbol i is channel i) or channel u (V: symbol i is token i).
      const uint8_t* unit = payload + s.unit_off[u];
      if constexpr (kOut == DecodeOut::kHalf) {
        const int64_t base = v_kind ? int64_t(u) : int64_t(u) * tile_stride;
        const int64_t step = v_kind ? tile_stride : 1;
        if (table_bits == 8) {
          decode_unit<kOut, 8>(unit, int(unit_syms), table, 8, s.dm, tile, base, step);
        } else {
          decode_unit<kOut, kMaxCodeLen>(unit, int(unit_syms), table, kMaxCodeLen, s.dm, tile, base,
                                         step);
        }
      } else {
        const int64_t base = v_kind ? int64_t(u) : int64_t(u) * job.dst_row_stride;
        const int64_t step = v_kind ? job.dst_row_stride : 1;
        if constexpr (kOut == DecodeOut::kFloat) {
          if (table_bits == 8) {
            decode_unit<kOut, 8>(unit, int(unit_syms), table, 8, s.dm, job.dst, base, step);
          } else {
            decode_unit<kOut, kMaxCodeLen>(unit, int(unit_syms), table, kMaxCodeLen, s.dm, job.dst,
                                           base, step);
          }
        } else {  // symbols: the run-time-L loop (exercised by the tests as well)
          decode_unit<kOut, 0>(unit, int(unit_syms), table, table_bits, s.dm, job.dst, base, step);
        }
      }
    }

    if constexpr (kOut == DecodeOut::kHalf) {
      __syncthreads();
      // Coalesced copy of the tile to the destination rows, 32 bits at a time when aligned.
      const bool vec = (reinterpret_cast<uintptr_t>(job.dst) & 3u) == 0 &&
                       (job.dst_row_stride & 1) == 0 && (hd & 1) == 0;
      if (vec) {
        const int pairs = hd / 2;
        for (int e = tid; e < n * pairs; e += kDecodeThreads) {
          const int t = e / pairs, p = e % pairs;
          const uint32_t v = *reinterpret_cast<const uint32_t*>(tile + t * tile_stride + 2 * p);
          *reinterpret_cast<uint32_t*>(static_cast<__half*>(job.dst) + t * job.dst_row_stride +
                                       2 * p) = v;
        }
      } else {
        for (int e = tid; e < n * hd; e += kDecodeThreads) {
          const int t = e / hd, c = e % hd;
          static_cast<__half*>(job.dst)[t * job.dst_row_stride + c] = tile[t * tile_stride + c];
        }
      }
    }
  }
}

void check_max_values(int max_block_values, const char* who) {
  check(max_block_values >= 1 && max_block_values <= kCodecMaxTokens * kCodecMaxHeadDim, who,
        ": max_block_values = ", max_block_values, ", expected 1..",
        kCodecMaxTokens * kCodecMaxHeadDim);
}

void check_smem(const CudaContext& ctx, size_t bytes, const char* who) {
  check(bytes <= size_t(ctx.props().sharedMemPerBlockOptin), who, ": needs ", bytes,
        " bytes of shared memory per block, the GPU allows ", ctx.props().sharedMemPerBlockOptin);
}

template <DecodeOut kOut>
void launch_decode(const CudaContext& ctx, const DecodeJob* jobs, int n_jobs,
                   const GpuCodebooks& codebooks, int max_block_values, int* error,
                   const char* who) {
  check(n_jobs >= 0, who, ": n_jobs = ", n_jobs);
  if (n_jobs == 0) return;
  check(jobs != nullptr, who, ": no jobs");
  check_max_values(max_block_values, who);
  const int table_cap_bits = decode_table_bits(codebooks.max_len());
  const size_t dyn =
      decode_dyn_smem_bytes(max_block_values, table_cap_bits, kOut == DecodeOut::kHalf);
  check_smem(ctx, dyn + sizeof(DecodeSmem), who);
  auto kernel = decode_blocks_kernel<kOut>;
  KVCOMP_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(dyn)));
  // A run of consecutive jobs per CTA (the decode table is reloaded only when the codebook
  // changes), with enough CTAs to fill every SM several times over.
  const int target = std::max(1, ctx.props().multiProcessorCount * 16);
  const int per = (n_jobs + target - 1) / target;
  const int grid = (n_jobs + per - 1) / per;
  kernel<<<grid, kDecodeThreads, dyn, ctx.stream()>>>(jobs, n_jobs, per, codebooks.views(),
                                                      codebooks.size(), max_block_values,
                                                      table_cap_bits, error);
  KVCOMP_LAUNCH_CHECK();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Host side

namespace {

// The GPU encoder's table of a codebook: huffman_encode_entry per symbol.
std::vector<uint32_t> encode_table(const Codebook& cb) {
  std::vector<uint32_t> t;
  for (int sy = 0; sy < cb.alphabet_size(); ++sy)
    t.push_back(huffman_encode_entry(cb.code(sy), uint32_t(cb.length(sy))));
  return t;
}

void upload_codebooks(const std::vector<const Codebook*>& cbs, bool full_slots,
                      DeviceBuffer& tables, DeviceBuffer& views,
                      std::vector<GpuCodebookView>& host_views, int& max_len) {
  // Layout: per codebook, the encode table (padded to 4 words) then the decode table.
  std::vector<uint32_t> words;
  std::vector<size_t> enc_at, dec_at;
  max_len = 0;
  for (size_t i = 0; i < cbs.size(); ++i) {
    const Codebook& cb = *cbs[i];
    check(cb.alphabet_size() >= 1, "GPU codebook ", i, ": empty codebook");
    check(cb.max_len() >= 1 && cb.max_len() <= kMaxCodeLen, "GPU codebook ", i, ": longest code ",
          cb.max_len(), ", expected 1..", kMaxCodeLen);
    enc_at.push_back(words.size());
    const std::vector<uint32_t> e = encode_table(cb);
    words.insert(words.end(), e.begin(), e.end());
    while (words.size() % 4) words.push_back(0);
    dec_at.push_back(words.size());
    const std::vector<uint32_t> t = cb.gpu_table();
    words.insert(words.end(), t.begin(), t.end());
    if (full_slots) words.resize(dec_at.back() + (size_t(1) << kMaxCodeLen), 0);
    while (words.size() % 4) words.push_back(0);
    max_len = std::max(max_len, cb.max_len());
  }
  host_views.clear();
  if (cbs.empty()) return;
  tables = DeviceBuffer(words.size() * sizeof(uint32_t), "codebook tables");
  tables.upload(words.data(), words.size() * sizeof(uint32_t));
  const uint32_t* base = tables.as<const uint32_t>();
  for (size_t i = 0; i < cbs.size(); ++i) {
    host_views.push_back(GpuCodebookView{base + enc_at[i], base + dec_at[i], cbs[i]->max_len(),
                                         cbs[i]->max_symbol(), cbs[i]->fixed_bits()});
  }
  views = DeviceBuffer(host_views.size() * sizeof(GpuCodebookView), "codebook views");
  views.upload(host_views.data(), host_views.size() * sizeof(GpuCodebookView));
}

}  // namespace

GpuCodebooks::GpuCodebooks(const std::vector<Codebook>& cbs, bool replaceable)
    : replaceable_(replaceable) {
  std::vector<const Codebook*> p;
  for (const Codebook& c : cbs) p.push_back(&c);
  upload_codebooks(p, replaceable, tables_, views_, host_views_, max_len_);
}

GpuCodebooks::GpuCodebooks(const std::vector<const Codebook*>& cbs) {
  for (size_t i = 0; i < cbs.size(); ++i) check(cbs[i] != nullptr, "GPU codebook ", i, ": null");
  upload_codebooks(cbs, false, tables_, views_, host_views_, max_len_);
}

void GpuCodebooks::replace(int i, const Codebook& cb) {
  check(replaceable_, "GpuCodebooks::replace: the codebooks were not uploaded replaceable");
  check(i >= 0 && i < size(), "GpuCodebooks::replace: codebook ", i, " of ", size());
  GpuCodebookView& v = host_views_[size_t(i)];
  check(cb.max_symbol() == v.max_symbol && cb.max_len() >= 1 && cb.max_len() <= kMaxCodeLen,
        "GpuCodebooks::replace: codebook ", i, " has another alphabet or code lengths");
  const uint32_t* base = tables_.as<const uint32_t>();
  const std::vector<uint32_t> enc = encode_table(cb);
  const std::vector<uint32_t> dec = cb.gpu_table();
  tables_.upload(enc.data(), enc.size() * 4, size_t(v.encode - base) * 4);
  tables_.upload(dec.data(), dec.size() * 4, size_t(v.decode - base) * 4);
  v.max_len = cb.max_len();
  v.fixed_bits = cb.fixed_bits();
  views_.upload(&v, sizeof v, size_t(i) * sizeof v);
  max_len_ = 0;
  for (const auto& x : host_views_) max_len_ = std::max(max_len_, x.max_len);
}

BlockArenaState block_arena_state(const CudaContext& ctx, const BlockArena& arena) {
  BlockArenaState st;
  unsigned long long used = 0;
  KVCOMP_CUDA_CHECK(
      cudaMemcpyAsync(&used, arena.used, sizeof used, cudaMemcpyDeviceToHost, ctx.stream()));
  KVCOMP_CUDA_CHECK(cudaMemcpyAsync(&st.error, arena.error, sizeof st.error, cudaMemcpyDeviceToHost,
                                    ctx.stream()));
  KVCOMP_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  st.used = used;
  return st;
}

void block_arena_check(const CudaContext& ctx, const BlockArena& arena, const char* what) {
  const BlockArenaState st = block_arena_state(ctx, arena);
  check((st.error & kCodecErrBadJob) == 0, what,
        ": an encode job was invalid and skipped (see check_encode_job)");
  check((st.error & kCodecErrOverflow) == 0, what, ": the compressed blocks needed ",
        format_bytes(double(st.used)), " (", st.used, " bytes), only ",
        format_bytes(double(arena.capacity)), " (", arena.capacity, " bytes) were reserved");
  check(st.error == 0, what, ": codec error flags ", st.error);
}

void block_arena_reset(const CudaContext& ctx, const BlockArena& arena) {
  KVCOMP_CUDA_CHECK(cudaMemsetAsync(arena.used, 0, sizeof(unsigned long long), ctx.stream()));
  KVCOMP_CUDA_CHECK(cudaMemsetAsync(arena.error, 0, sizeof(int), ctx.stream()));
}

BlockArenaBuffer::BlockArenaBuffer(uint64_t capacity, const char* what)
    : data_(size_t(std::max<uint64_t>(capacity, 1)), what),
      state_(16, "block arena counters"),
      capacity_(capacity) {
  state_.zero();
}

BlockArena BlockArenaBuffer::view() const {
  BlockArena a;
  a.base = data_.as<uint8_t>();
  a.capacity = capacity_;
  a.used = state_.as<unsigned long long>();
  a.error = reinterpret_cast<int*>(state_.as<uint8_t>() + 8);
  return a;
}

void check_encode_job(const EncodeJob& j, int n_codebooks, int max_block_values) {
  check(j.src != nullptr, "encode job: no source");
  check(block_kind_valid(j.kind), "encode job: block kind ", int(j.kind), ", expected 1..4");
  check(j.n_tokens >= 1 && j.n_tokens <= kCodecMaxTokens, "encode job: n_tokens = ", j.n_tokens,
        ", expected 1..", kCodecMaxTokens);
  check(j.head_dim >= 1 && j.head_dim <= kCodecMaxHeadDim, "encode job: head_dim = ", j.head_dim,
        ", expected 1..", kCodecMaxHeadDim);
  check(j.n_tokens * j.head_dim <= max_block_values, "encode job: ", j.n_tokens, " x ", j.head_dim,
        " values, more than the launch's max_block_values ", max_block_values);
  check(j.row_stride >= j.head_dim, "encode job: row stride ", j.row_stride, " < head_dim ",
        j.head_dim);
  check(j.ring_cap >= 0 && (j.ring_cap == 0 || j.first >= 0), "encode job: ring of ", j.ring_cap,
        " rows starting at ", j.first, ", expected ring_cap >= 0 and first >= 0");
  check(std::isfinite(j.eb) && j.eb > 0.0f, "encode job: error bound eb = ", j.eb,
        ", expected a finite value > 0");
  check(j.codebook >= 0 && j.codebook < n_codebooks, "encode job: codebook ", j.codebook,
        ", expected 0..", n_codebooks - 1);
}

void encode_blocks_cuda(const CudaContext& ctx, const EncodeJob* jobs, int n_jobs,
                        const GpuCodebooks& codebooks, const BlockArena& arena,
                        int max_block_values) {
  const char* who = "encode_blocks_cuda";
  check(n_jobs >= 0, who, ": n_jobs = ", n_jobs);
  if (n_jobs == 0) return;
  check(jobs != nullptr, who, ": no jobs");
  check(codebooks.size() > 0, who, ": no codebooks");
  check(arena.used != nullptr && arena.error != nullptr, who,
        ": the arena has no counter or error flag");
  check(arena.base != nullptr || arena.capacity == 0, who, ": the arena has no memory");
  check_max_values(max_block_values, who);
  const size_t dyn = encode_dyn_smem_bytes(max_block_values);
  check_smem(ctx, dyn + sizeof(EncodeSmem), who);
  auto kernel = quantize_blocks_kernel<false>;
  KVCOMP_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(dyn)));
  kernel<<<n_jobs, kEncodeThreads, dyn, ctx.stream()>>>(
      jobs, codebooks.views(), codebooks.size(), arena, max_block_values, 0, nullptr, 0, nullptr);
  KVCOMP_LAUNCH_CHECK();
}

void histogram_blocks_cuda(const CudaContext& ctx, const EncodeJob* jobs, int n_jobs,
                           int alphabet_size, unsigned long long* hist, int n_hist, int* error) {
  const char* who = "histogram_blocks_cuda";
  check(n_jobs >= 0, who, ": n_jobs = ", n_jobs);
  if (n_jobs == 0) return;
  check(jobs != nullptr && hist != nullptr && error != nullptr, who,
        ": jobs, histograms and error flag are required");
  check(alphabet_size >= 1 && alphabet_size <= kMaxAlphabet, who, ": alphabet size ", alphabet_size,
        ", expected 1..", kMaxAlphabet);
  check(n_hist >= 1, who, ": n_hist = ", n_hist);
  quantize_blocks_kernel<true><<<n_jobs, kEncodeThreads, 0, ctx.stream()>>>(
      jobs, nullptr, 0, BlockArena{}, kCodecMaxTokens * kCodecMaxHeadDim, alphabet_size, hist,
      n_hist, error);
  KVCOMP_LAUNCH_CHECK();
}

void decode_blocks_cuda(const CudaContext& ctx, const DecodeJob* jobs, int n_jobs,
                        const GpuCodebooks& codebooks, int max_block_values, int* error) {
  launch_decode<DecodeOut::kHalf>(ctx, jobs, n_jobs, codebooks, max_block_values, error,
                                  "decode_blocks_cuda");
}

void decode_blocks_f32_cuda(const CudaContext& ctx, const DecodeJob* jobs, int n_jobs,
                            const GpuCodebooks& codebooks, int max_block_values, bool symbols,
                            int* error) {
  if (symbols) {
    launch_decode<DecodeOut::kSymbols>(ctx, jobs, n_jobs, codebooks, max_block_values, error,
                                       "decode_blocks_f32_cuda");
  } else {
    launch_decode<DecodeOut::kFloat>(ctx, jobs, n_jobs, codebooks, max_block_values, error,
                                     "decode_blocks_f32_cuda");
  }
}

}  // namespace kvcomp
