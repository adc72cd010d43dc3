// The KVComp-compressed KV cache of the GPU backend; the same semantics as KvCompCacheRef
// (compress/kv_cache_kvcomp_ref.h), which is its ground truth:
// - The layout of BlockedKvCacheCuda (compress/kv_cache_blocked_cuda.h): K tokens [0, k_done)
//   in compressed blocks, the rest raw in the ring; V likewise.
// - Blocks that leave the window are compressed on the GPU: after a decode step, at most one per
//   head of every layer; during a prefill piece, each layer's from the step's scratch. The first
//   time a layer has something to compress builds its codebooks from the histogram of every
//   complete block present then (GPU histogram, CPU codebook).
// - Blocks are allocated from arenas that grow by chunks as needed; running out of GPU memory
//   is an error that says how much was needed.
// - Decode steps attend with the fused kernel (kvcomp) or, as BlockedKvCacheCuda does, by
//   decoding every block to an fp16 scratch and running the cuBLAS path (kvcomp-unfused);
//   prefill pieces always take the latter (several queries per sequence).
#pragma once

#include <memory>
#include <vector>

#include "compress/codec_cuda.h"
#include "compress/codec_ref.h"
#include "compress/kv_cache_blocked_cuda.h"
#include "compress/kv_cache_kvcomp_ref.h"  // KvStats, codec_options
#include "runtime/kv_options.h"

namespace kvcomp {

class KvCompCacheCuda : public BlockedKvCacheCuda {
 public:
  KvCompCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                  const KvOptions& opts);
  void attend(int layer, const QkvView& x, const StepLayout& step, DType act, void* out) override;
  int64_t bytes() const override;

  KvStats stats() const;
  // Device memory held: rings, block index, arenas (capacity), codebooks, scratch.
  int64_t reserved_bytes() const override;

 protected:
  bool decode_uses_scratch() const override { return opts_.mode == KvMode::kKvcompUnfused; }

 private:
  struct Arena {
    BlockArenaBuffer buf;
    uint64_t used = 0;  // bytes handed out so far (read back after each encode)
  };
  int n_cb_heads() const { return codec_.codebook_per_head ? shape_.n_kv_heads : 1; }
  int cb_index(int part, int layer, int head) const {
    return (layer * 2 + part) * n_cb_heads() + (codec_.codebook_per_head ? head : 0);
  }
  // Encodes the blocks into the arenas; builds the codebooks of their layers first if needed.
  void compress(int part, int layer, const std::vector<BlockRows>& blocks,
                const std::vector<BlockRows>& present) override;
  void copy_blocks(int from, int to) override;
  // The codebooks of part of every layer that `present` has blocks of, from their histogram.
  void build_codebooks(int part, const std::vector<BlockRows>& present);
  EncodeJob job(int part, const BlockRows& r) const;  // without codebook and slot
  int built_layers(int part) const {
    int n = 0;
    for (int l = 0; l < shape_.n_layers; ++l) n += built_[size_t(part) * shape_.n_layers + l];
    return n;
  }
  void upload_codebooks();
  // Decodes the blocks into the scratch (BlockedKvCacheCuda::decode_blocks).
  void decode_blocks(int layer, int n_chunks, const int* d_chunk_seq, int mk, int mv,
                     int cap) const override;
  // The current arena if it has expect_bytes free, else a new one.
  Arena& arena_for(uint64_t expect_bytes);

  KvOptions opts_;
  CodecOptions codec_;
  DeviceBuffer index_k_, index_v_;   // [L][S][KV][max_blocks] block addresses
  std::vector<Codebook> codebooks_;  // [L][K|V][cb heads]; placeholders until built
  std::vector<char> built_;          // [K|V][L]: the codebooks are built (fixed codes: always)
  std::unique_ptr<GpuCodebooks> gpu_codebooks_;
  std::vector<Arena> arenas_;
  DeviceBuffer jobs_, hist_, err_, placed_;
  mutable DeviceBuffer decode_jobs_;
  DeviceBuffer fused_scratch_;
  int64_t block_bytes_ = 0;  // compressed blocks held (exact, from the arenas' counters)
};

}  // namespace kvcomp
