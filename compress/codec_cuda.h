// KVComp codec on the GPU: codebooks in device memory, an arena that compressed blocks are
// allocated from, and three kernels over lists of jobs (one CTA per block):
//   encode_blocks_cuda     fp16 rows -> compressed blocks, byte-identical to encode_block_ref
//   histogram_blocks_cuda  fp16 rows -> symbol counts, equal to quantize_block + histogram_add
//   decode_blocks_cuda     compressed blocks -> fp16 rows (the unfused attention path), equal to
//                          decode_block_ref rounded to fp16 (raw blocks: their fp16 bits)
// plus decode_blocks_f32_cuda (fp32 values or symbols, for tests). The bit reader and table
// lookup the decoders use live in compress/huffman_cuda.cuh for the fused attention kernel.
//
// Jobs live in device memory (the caller writes them, e.g. with cudaMemcpyAsync or a kernel) so
// that one launch covers one append (one block per KV head) or a whole prefill (every block of
// every head). check_encode_job / check_decode_job validate a host copy; the kernels also skip an
// invalid job and raise a flag instead of reading or writing out of bounds.
//
// Supported shapes: 1..kCodecMaxTokens tokens per block (the options use 16..256), head_dim
// 1..kCodecMaxHeadDim (64 and 128 in practice). A launch sizes its shared memory for
// max_block_values = the largest n_tokens * head_dim of its jobs.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "compress/format.h"
#include "compress/huffman.h"
#include "runtime/cuda_context.h"
#include "runtime/device_buffer.h"

namespace kvcomp {

constexpr int kCodecMaxTokens = 256;   // tokens per block on the GPU (units per K block)
constexpr int kCodecMaxHeadDim = 256;  // channels per token on the GPU (units per V block)

// Encode-table entry of the GPU encoder: (code << 8) | length, code right-aligned.
constexpr uint32_t huffman_encode_entry(uint32_t code, uint32_t len) {
  return (code << 8) | len;
}

// ---------------------------------------------------------------------------------------------
// Codebooks

// A codebook as kernels see it. POD; pointers are device memory owned by GpuCodebooks.
struct GpuCodebookView {
  const uint32_t* encode;  // [max_symbol + 1] huffman_encode_entry(code, length)
  const uint32_t* decode;  // [1 << max_len] Codebook::gpu_table() entries (format.h)
  int max_len;             // L: the longest code, 1..kMaxCodeLen; the decode table has 2^L slots
  int max_symbol;          // alphabet size - 1; larger symbols make a block raw (kSymbols)
  int fixed_bits;          // Codebook::fixed_bits(): the length of every code, or 0
};

// Owns the device copies of a list of codebooks (e.g. per layer K, V [, per head]); kernels
// address them by index. Uploads synchronously.
class GpuCodebooks {
 public:
  GpuCodebooks() = default;
  // replaceable: every decode table gets room for 2^kMaxCodeLen entries, so that replace() can
  // swap a codebook in place (the device addresses stay, and CUDA graphs that hold them too).
  explicit GpuCodebooks(const std::vector<Codebook>& cbs, bool replaceable = false);
  explicit GpuCodebooks(const std::vector<const Codebook*>& cbs);
  // Codebook i becomes cb (the same alphabet); synchronous.
  void replace(int i, const Codebook& cb);

  int size() const { return int(host_views_.size()); }
  const GpuCodebookView* views() const { return views_.as<const GpuCodebookView>(); }  // device
  const GpuCodebookView& view(int i) const { return host_views_[size_t(i)]; }          // host copy
  int max_len() const { return max_len_; }  // largest L over the codebooks (0 when empty)
  int64_t reserved_bytes() const { return int64_t(tables_.bytes() + views_.bytes()); }

 private:
  DeviceBuffer tables_;  // per codebook: encode table, then decode table
  DeviceBuffer views_;   // [size()] GpuCodebookView
  std::vector<GpuCodebookView> host_views_;
  int max_len_ = 0;
  bool replaceable_ = false;
};

// ---------------------------------------------------------------------------------------------
// Arena of compressed blocks

// Error flags a launch ORs into *error.
constexpr int kCodecErrOverflow = 1;  // the arena was too small: some slots hold nullptr
constexpr int kCodecErrBadJob = 2;    // a job failed validation and was skipped
constexpr int kCodecErrBadBlock = 4;  // a decode job's block header is malformed; skipped

// Where encoders put blocks. POD; every pointer is device memory. Each block takes
// atomicAdd(used, block_bytes) bytes at base + old value; block_bytes is a multiple of 4 and
// base is 256-byte aligned, so blocks stay 4-byte aligned as long as *used starts at a multiple
// of 4. A block that does not fit (old + block_bytes > capacity) is not written: its slot gets
// nullptr and *error |= kCodecErrOverflow. *used keeps counting past the capacity, so after the
// launch it is the memory the blocks needed.
struct BlockArena {
  uint8_t* base = nullptr;
  uint64_t capacity = 0;               // bytes
  unsigned long long* used = nullptr;  // bytes handed out (and asked for past capacity)
  int* error = nullptr;                // kCodecErr* flags
};

// The counter and flags of an arena, read back (synchronizes the context's stream).
struct BlockArenaState {
  uint64_t used = 0;
  int error = 0;
};
BlockArenaState block_arena_state(const CudaContext& ctx, const BlockArena& arena);
// Throws Error when the flags are set: on overflow it says how many bytes the compressed blocks
// needed against the capacity; `what` names the cache (e.g. "compressed KV cache, layer 3").
void block_arena_check(const CudaContext& ctx, const BlockArena& arena, const char* what);
// Sets *used = 0 and *error = 0 on the context's stream.
void block_arena_reset(const CudaContext& ctx, const BlockArena& arena);

// An arena that owns its memory (tests, benchmarks; the KV cache may keep its own).
class BlockArenaBuffer {
 public:
  BlockArenaBuffer() = default;
  BlockArenaBuffer(uint64_t capacity, const char* what);
  BlockArena view() const;
  uint64_t capacity() const { return capacity_; }
  int64_t reserved_bytes() const { return int64_t(data_.bytes() + state_.bytes()); }

 private:
  DeviceBuffer data_;   // capacity bytes
  DeviceBuffer state_;  // used counter (8 bytes), error flags (4 bytes)
  uint64_t capacity_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Jobs

// One block to encode (or to count symbols of). Row r (0 <= r < n_tokens) of the block is
//   src + r * row_stride                                    when ring_cap == 0
//   src + ((first + r) % ring_cap) * row_stride             when ring_cap > 0 (a ring buffer)
// and holds head_dim fp16 values. Values are read as fp16 -> fp32 exactly.
struct EncodeJob {
  const __half* src = nullptr;
  int64_t row_stride = 0;    // elements, >= head_dim
  int32_t ring_cap = 0;      // rows of the ring buffer, 0: no ring
  int32_t first = 0;         // ring row of the block's first token (ring_cap > 0), >= 0
  int32_t n_tokens = 0;      // 1..kCodecMaxTokens
  int32_t head_dim = 0;      // 1..kCodecMaxHeadDim
  uint8_t kind = 0;          // BlockKind requested (kVCompact: compact V params, else kV)
  float eb = 0.0f;           // relative error bound, finite > 0
  int32_t codebook = 0;      // encode: index into the codebooks; histogram: histogram index
  uint8_t** slot = nullptr;  // encode: receives the block's address (nullptr if it did not fit)
};

// One block to decode into rows dst + t * dst_row_stride (t < n_tokens) of head_dim values:
// __half for decode_blocks_cuda, float for decode_blocks_f32_cuda. A job with a null block or dst
// is skipped silently (a placeholder in a fixed-size job list).
struct DecodeJob {
  const uint8_t* block = nullptr;  // 4-byte aligned
  int32_t codebook = 0;            // index into the codebooks (Huffman blocks)
  void* dst = nullptr;
  int64_t dst_row_stride = 0;  // elements, >= head_dim
};

// Host-side validation of a job (host copy), throwing Error naming the field; the kernels skip
// invalid jobs with kCodecErrBadJob. n_codebooks: codebooks (encode) or histograms (histogram).
void check_encode_job(const EncodeJob& job, int n_codebooks, int max_block_values);

// ---------------------------------------------------------------------------------------------
// Launchers. All run on ctx's stream and do not synchronize; jobs and outputs are device memory.

// Encodes jobs[0, n_jobs) into blocks allocated from the arena; *job.slot receives each block's
// address. max_block_values >= n_tokens * head_dim of every job (sizes shared memory; larger
// jobs are skipped as bad). Blocks are byte-identical to encode_block_ref on the same values
// with codebook codebooks[job.codebook].
void encode_blocks_cuda(const CudaContext& ctx, const EncodeJob* jobs, int n_jobs,
                        const GpuCodebooks& codebooks, const BlockArena& arena,
                        int max_block_values);

// Quantizes each job's block with symbols bounded by alphabet_size - 1 and, when the block is
// not raw, adds its symbols to hist[job.codebook * kMaxAlphabet + s]: the counts
// quantize_block(..., alphabet_size - 1) + histogram_add give. hist: [n_hist, kMaxAlphabet]
// (zero it first; counts accumulate across launches). error: device int, kCodecErrBadJob.
void histogram_blocks_cuda(const CudaContext& ctx, const EncodeJob* jobs, int n_jobs,
                           int alphabet_size, unsigned long long* hist, int n_hist, int* error);

// Decodes jobs[0, n_jobs) to fp16 rows: Huffman blocks give __float2half_rn((s + m0) * d) of the
// fp32 product decode_block_ref computes, raw blocks their stored fp16 bits. max_block_values as
// for encoding. error: device int or nullptr; malformed headers set kCodecErrBadBlock (the
// decoder trusts the payload: blocks come from the encoders).
void decode_blocks_cuda(const CudaContext& ctx, const DecodeJob* jobs, int n_jobs,
                        const GpuCodebooks& codebooks, int max_block_values, int* error);

// Decodes to fp32 rows: the dequantized values (raw blocks: fp16 -> fp32, NaN payloads kept)
// or, with symbols = true, the symbols as floats (raw blocks: their values, as above).
void decode_blocks_f32_cuda(const CudaContext& ctx, const DecodeJob* jobs, int n_jobs,
                            const GpuCodebooks& codebooks, int max_block_values, bool symbols,
                            int* error);

}  // namespace kvcomp
