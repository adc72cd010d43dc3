// The fixed-bit KV cache of the GPU backend (--kv kivi2, kivi4, int8, fp8); the same semantics
// as FixedBitCacheRef (compress/kv_cache_fixedbit_ref.h), its ground truth, and the same bytes:
// - The layout of BlockedKvCacheCuda (compress/kv_cache_blocked_cuda.h): K tokens [0, k_done)
//   in quantized blocks, the rest raw in the ring; V likewise.
// - Blocks have a fixed size (compress/fixedbit.h), so the store is preallocated for
//   max_tokens: [n_layers][n_seqs][n_kv_heads][max_blocks][block_bytes] per K|V.
// - Blocks that leave the window are quantized on the GPU (one thread block per (layer, seq,
//   head, block)): after a decode step from the rings, during a prefill piece per layer from
//   the step's scratch.
// - attend() is BlockedKvCacheCuda's: every block of the step's sequences dequantized into an
//   fp16 scratch, then the cuBLAS path (a dequantize-then-attend path, like kvcomp-unfused).
// The quantizer and dequantizer repeat the CPU reference operation for operation (fp32 with _rn
// intrinsics, no contraction), so the blocks and the dequantized values are bit-identical.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/fixedbit.h"
#include "compress/kv_cache_blocked_cuda.h"
#include "compress/kv_cache_blocked_ref.h"  // KvStats, KvPart
#include "runtime/kv_options.h"

namespace kvcomp {

class FixedBitCacheCuda : public BlockedKvCacheCuda {
 public:
  // Throws Error for a mode that is not fixed-bit, bad options, or a head_dim whose block does
  // not fit the quantize kernel's shared memory (block tokens x head_dim <= 32768).
  FixedBitCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                    const KvOptions& opts);
  int64_t bytes() const override;

  KvStats stats() const;
  // Device memory held: rings, block stores, jobs, scratch.
  int64_t reserved_bytes() const override;

  // Inspection, for tests.
  const FixedBitFormat& format(KvPart p) const { return p == KvPart::kK ? fmt_.k : fmt_.v; }
  int done(KvPart p, int seq) const { return (p == KvPart::kK ? done_k_ : done_v_).at(seq); }
  // The stored bytes of block b of one (layer, seq, KV head), copied to the host.
  std::vector<uint8_t> block(KvPart p, int layer, int seq, int head, int b) const;

 private:
  int block_tokens(int part) const { return part == 0 ? opts_.block_k : opts_.block_v; }
  int64_t block_bytes(int part) const {
    return (part == 0 ? fmt_.k : fmt_.v).block_bytes(block_tokens(part), shape_.head_dim);
  }
  void compress(int part, int layer, const std::vector<BlockRows>& blocks,
                const std::vector<BlockRows>& present) override;
  void copy_blocks(int from, int to) override;
  // Dequantizes the blocks into the scratch (BlockedKvCacheCuda::decode_blocks).
  void decode_blocks(int layer, int n_chunks, const int* d_chunk_seq, int mk, int mv,
                     int cap) const override;

  KvOptions opts_;
  FixedBitFormats fmt_;
  DeviceBuffer store_k_, store_v_;  // [L][S][KV][max_blocks][block_bytes]
  DeviceBuffer jobs_[2];            // [K|V] quantize jobs of the last commit
};

// float_to_e4m3 on the GPU over x[0, n) into ours, and CUDA's own conversion
// (__nv_cvt_float_to_fp8, E4M3, saturating) into theirs; all device pointers. For tests.
void e4m3_encode_cuda(const CudaContext& ctx, const float* x, int64_t n, uint8_t* ours,
                      uint8_t* theirs);

}  // namespace kvcomp
