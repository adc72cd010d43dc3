// What the two compressed caches of the GPU backend share (KvCompCacheCuda, FixedBitCacheCuda),
// as BlockedKvCacheRef does on the CPU:
// - Per layer, sequence and KV head, K tokens [0, k_done) live in blocks of block_k tokens (the
//   derived cache's format), tokens [k_done, len) raw (fp16) in a ring buffer of window + block
//   + step tokens (compress/kv_ring_cuda.h); V likewise.
// - The host keeps the lengths (len, k_done, v_done per sequence) with device copies refreshed
//   by begin_step (len) and by the derived commit() (upload_done).
// - attend() decodes every block of the step's sequences into an fp16 scratch
//   [chunk][kv_head][cap][head_dim] (the derived decode_blocks), copies the window next to them
//   and runs the cuBLAS path (dense_attention_cuda); read() reads the same scratch back. Decode
//   steps size every launch from the step's key bucket (StepLayout::decode_keys) and begin_step
//   grows the scratch beforehand, so they may be captured into CUDA graphs.
#pragma once

#include <vector>

#include "runtime/device_buffer.h"
#include "runtime/kv_cache_cuda.h"

namespace kvcomp {

class BlockedKvCacheCuda : public KvCacheCuda {
 public:
  // Tokens one sequence may append in one step (prefills run in pieces of at most this).
  static constexpr int kMaxStepTokens = 1024;

  void begin_step(const StepLayout& step) override;
  bool graph_safe() const override { return true; }
  void append(int layer, const QkvView& x, const StepLayout& step) override;
  void attend(int layer, const QkvView& x, const StepLayout& step, DType act, void* out) override;
  bool read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override;
  int max_step_tokens() const override { return kMaxStepTokens; }

 protected:
  // name: the cache in error messages ("kvcomp cache"); what: its buffers in allocation errors
  // ("KVComp"). Allocates the rings and the device lengths.
  BlockedKvCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens, int block_k,
                     int block_v, int window_k, int window_v, const char* name, const char* what);

  // Fills scratch_k_ / scratch_v_ rows [0, k_done) / [0, v_done) of each chunk's sequence
  // (chunk i at [i][kv_head][cap][head_dim]) from its blocks of `layer`; mk, mv: the most K and
  // V blocks of any chunk.
  virtual void decode_blocks(int layer, int n_chunks, const int* d_chunk_seq, int mk, int mv,
                             int cap) const = 0;
  // Blocks and window of the given chunks (one layer) into the scratch; returns cap. keys > 0
  // (a decode step's bucket, at least every chunk's length): the launches are sized from it
  // alone, and the scratch must already hold it (begin_step).
  int to_scratch(int layer, const std::vector<StepLayout::Chunk>& chunks, const int* d_chunk_seq,
                 int keys = 0) const;
  // Scratch rows of n chunks x cap tokens (grown, never shrunk).
  void reserve_scratch(int n, int cap) const;
  // Whether decode steps attend through the scratch (false: a fused kernel reads the blocks).
  virtual bool decode_uses_scratch() const { return true; }
  // After the derived commit() has advanced done_k_ / done_v_.
  void upload_done();
  // The rings, the lengths, the scratch: device memory held besides the blocks (the derived
  // reserved_bytes() adds its own).
  int64_t reserved_bytes() const override;
  // This layer's ring of K or V (part 0 | 1), [n_seqs][n_kv][cap][head_dim] fp16.
  void* ring(int part, int layer) const;
  int window_tokens() const;  // tokens in the rings of every sequence, K and V together

  int max_tokens_;
  int block_k_, block_v_;
  int cap_k_, cap_v_;                         // ring rows
  int max_kb_, max_vb_;                       // blocks per (layer, seq, head)
  std::vector<int> len_, done_k_, done_v_;    // [n_seqs]
  DeviceBuffer d_len_, d_done_k_, d_done_v_;  // device copies
  DeviceBuffer ring_k_, ring_v_;              // [L][S][KV][cap][hd] fp16
  mutable DeviceBuffer scratch_k_, scratch_v_;

 private:
  const char* name_;
  const char* what_;
  mutable DeviceBuffer identity_;
  DeviceBuffer q16_, scores_, probs_, out32_, ptrs_;  // dense attention scratch
};

}  // namespace kvcomp
