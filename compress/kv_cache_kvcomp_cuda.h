// The KVComp-compressed KV cache of the GPU backend; the same semantics as KvCompCacheRef
// (compress/kv_cache_kvcomp_ref.h), which is its ground truth:
// - Per layer, sequence and KV head, K tokens [0, k_done) live in compressed blocks, tokens
//   [k_done, len) raw (fp16) in a ring buffer of window + block + step tokens; V likewise.
// - commit() after every step compresses, on the GPU, every block that has left the window
//   (a prefill: many blocks at once; a decode step: at most one per head). The first commit
//   with something to compress builds the layer's codebooks from the histogram of every
//   complete block present then (GPU histogram, CPU codebook).
// - Blocks are allocated from arenas that grow by chunks as needed; running out of GPU memory
//   is an error that says how much was needed.
// - Decode steps attend with the fused kernel (kvcomp) or by decoding every block to an fp16
//   scratch and running the cuBLAS path (kvcomp-unfused); prefill pieces always take the
//   latter (several queries per sequence).
#pragma once

#include <memory>
#include <vector>

#include "compress/codec_cuda.h"
#include "compress/codec_ref.h"
#include "compress/kv_cache_kvcomp_ref.h"  // KvStats, codec_options
#include "runtime/kv_cache_cuda.h"
#include "runtime/kv_options.h"

namespace kvcomp {

class KvCompCacheCuda : public KvCacheCuda {
 public:
  // Tokens one sequence may append in one step (prefills run in pieces of at most this).
  static constexpr int kMaxStepTokens = 1024;

  KvCompCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                  const KvOptions& opts);
  void begin_step(const StepLayout& step) override;
  bool graph_safe() const override { return opts_.mode == KvMode::kKvcomp; }
  void append(int layer, const QkvView& x, const StepLayout& step) override;
  void attend(int layer, const QkvView& x, const StepLayout& step, DType act, void* out) override;
  void commit(const StepLayout& step) override;
  int64_t bytes() const override;
  bool read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override;
  int max_step_tokens() const override { return kMaxStepTokens; }

  KvStats stats() const;
  // Device memory held: rings, block index, arenas (capacity), scratch.
  int64_t allocated_bytes() const;

 private:
  struct Arena {
    BlockArenaBuffer buf;
    uint64_t used = 0;  // bytes handed out so far (read back after each encode)
  };
  int n_cb_heads() const { return codec_.codebook_per_head ? shape_.n_kv_heads : 1; }
  int cb_index(int part, int layer, int head) const {
    return (layer * 2 + part) * n_cb_heads() + (codec_.codebook_per_head ? head : 0);
  }
  void build_codebooks(int part);
  void upload_codebooks();
  // Decodes every block and copies the window of the given chunks (one layer) into the fp16
  // scratch [chunk][kv_head][cap][head_dim]; returns cap.
  int decompress(int layer, const std::vector<StepLayout::Chunk>& chunks,
                 const int* d_chunk_seq) const;
  // The current arena if it has expect_bytes free, else a new one.
  Arena& arena_for(uint64_t expect_bytes);

  KvOptions opts_;
  CodecOptions codec_;
  int max_tokens_;
  int cap_k_, cap_v_;                         // ring rows
  int max_kb_, max_vb_;                       // blocks per (layer, seq, head)
  std::vector<int> len_, done_k_, done_v_;    // [n_seqs]
  DeviceBuffer d_len_, d_done_k_, d_done_v_;  // device copies, refreshed each step
  DeviceBuffer ring_k_, ring_v_;              // [L][S][KV][cap][hd] fp16
  DeviceBuffer index_k_, index_v_;            // [L][S][KV][max_blocks] block addresses
  std::vector<Codebook> codebooks_;           // [L][K|V][cb heads]; placeholders until built
  std::vector<char> built_;                   // [2][L] (the same token counts for every layer)
  bool built_part_[2] = {false, false};
  std::unique_ptr<GpuCodebooks> gpu_codebooks_;
  std::vector<Arena> arenas_;
  DeviceBuffer jobs_, hist_, err_;
  mutable DeviceBuffer scratch_k_, scratch_v_, decode_jobs_, identity_;
  DeviceBuffer q16_, scores_, probs_, out32_, ptrs_, fused_scratch_;
  int64_t block_bytes_ = 0;  // compressed blocks held (exact, from the arenas' counters)
  uint64_t bytes_[2] = {0, 0}, blocks_[2] = {0, 0};  // K|V: bytes and blocks encoded so far
};

}  // namespace kvcomp
