// What the two compressed caches of the GPU backend share (KvCompCacheCuda, FixedBitCacheCuda),
// as BlockedKvCacheRef does on the CPU:
// - Per layer, sequence and KV head, K tokens [0, k_done) live in blocks of block_k tokens (the
//   derived cache's format), tokens [k_done, len) raw (fp16) in a ring buffer of window + block
//   tokens (compress/kv_ring_cuda.h), what the window needs between two decode steps; V
//   likewise.
// - The host keeps the lengths (len, k_done, v_done per sequence) with device copies refreshed
//   by begin_step (len) and commit() (done).
// - Decode steps (one token per sequence) append to the rings; commit() then compresses, for
//   every layer at once, each block that has left the window.
// - Every other step (a prefill piece, several tokens per sequence) is staged: per layer,
//   append() decodes the blocks of the step's sequences into an fp16 scratch
//   [chunk][kv_head][cap][head_dim], copies the ring's window next to them and writes the
//   step's tokens after it; attend() runs the cuBLAS/prefill path over the scratch, then
//   compresses this layer's blocks that leave the window straight from the scratch and puts
//   what stays raw back into the ring. The ring never holds a whole prefill piece, and the
//   scratch (one layer of the step's sequences) is released after the step unless decode steps
//   use it too.
// - Decode steps of derived caches without a fused kernel attend through the same scratch;
//   begin_step sizes it from the step's key bucket (StepLayout::decode_keys) beforehand, so they
//   may be captured into CUDA graphs. read() reads the scratch back.
#pragma once

#include <cuda_fp16.h>

#include <functional>
#include <utility>
#include <vector>

#include "runtime/device_buffer.h"
#include "runtime/kv_cache_cuda.h"

namespace kvcomp {

class BlockedKvCacheCuda : public KvCacheCuda {
 public:
  void begin_step(const StepLayout& step) override;
  bool graph_safe() const override { return true; }
  void append(int layer, const QkvView& x, const StepLayout& step) override;
  void attend(int layer, const QkvView& x, const StepLayout& step, DType act, void* out) override;
  void commit(const StepLayout& step) override;
  bool read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override;
  // The rings and lengths; the derived cache copies its blocks (copy_blocks).
  void copy_sequence(int from, int to) override;

 protected:
  // name: the cache in error messages ("kvcomp cache"); what: its buffers in allocation errors
  // ("KVComp"). Allocates the rings and the device lengths.
  BlockedKvCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens, int block_k,
                     int block_v, int window_k, int window_v, const char* name, const char* what);

  // The fp16 rows of one block of (layer, seq, KV head): row r at
  // src + ((first + r) % cap) * head_dim, or src + (first + r) * head_dim when cap == 0.
  struct BlockRows {
    int layer, seq, head, block;  // block: its index in the (layer, seq, head) store
    const __half* src;
    int cap, first;
  };
  // Compresses `blocks` of K (part 0) or V (part 1) into the store and fills their index
  // entries. `present`: every complete block in [done, len) of the layers concerned (layer, or
  // all when layer < 0), the data a cache may build codebooks from the first time.
  virtual void compress(int part, int layer, const std::vector<BlockRows>& blocks,
                        const std::vector<BlockRows>& present) = 0;
  // Sequence `to` receives copies of sequence `from`'s blocks (of every layer and head).
  virtual void copy_blocks(int from, int to) = 0;
  // Fills scratch_k_ / scratch_v_ rows [0, k_done) / [0, v_done) of each chunk's sequence
  // (chunk i at [i][kv_head][cap][head_dim]) from its blocks of `layer`; mk, mv: the most K and
  // V blocks of any chunk.
  virtual void decode_blocks(int layer, int n_chunks, const int* d_chunk_seq, int mk, int mv,
                             int cap) const = 0;
  // Blocks and window of the given chunks (one layer) into the scratch; returns cap. keys > 0
  // (a decode step's bucket, at least every chunk's length): the launches are sized from it
  // alone, and the scratch must already hold it (begin_step).
  // d_chunk_end: per chunk, where the window copy ends (default: the sequence's length).
  int to_scratch(int layer, const std::vector<StepLayout::Chunk>& chunks, const int* d_chunk_seq,
                 int keys = 0, const int* d_chunk_end = nullptr) const;
  // Scratch rows of n chunks x cap tokens (grown, never shrunk while in use).
  void reserve_scratch(int n, int cap) const;
  // Whether decode steps attend through the scratch (false: a fused kernel reads the blocks).
  virtual bool decode_uses_scratch() const { return true; }
  // The rings, the lengths, the scratch: device memory held besides the blocks (the derived
  // reserved_bytes() adds its own).
  int64_t reserved_bytes() const override;
  // This layer's ring of K or V (part 0 | 1), [n_seqs][n_kv][cap][head_dim] fp16.
  void* ring(int part, int layer) const;
  int window_tokens() const;  // tokens in the rings of every sequence, K and V together

  int max_tokens_;
  int block_k_, block_v_;
  int window_k_, window_v_;
  int cap_k_, cap_v_;                         // ring rows
  int max_kb_, max_vb_;                       // blocks per (layer, seq, head)
  std::vector<int> len_, done_k_, done_v_;    // [n_seqs]
  DeviceBuffer d_len_, d_done_k_, d_done_v_;  // device copies
  DeviceBuffer ring_k_, ring_v_;              // [L][S][KV][cap][hd] fp16
  mutable DeviceBuffer scratch_k_, scratch_v_;

 private:
  // A staged step's last layer-independent state: where each part's done goes after the step.
  struct Staged {
    bool on = false;
    int cap = 0;                       // scratch rows per (chunk, head)
    std::vector<int> done_k, done_v;   // [n_seqs] after the step
    std::vector<int> chunk_of;         // [n_seqs] the step's chunk of each sequence, or -1
  };
  void upload_done();
  // Where done_k|v (part 0|1) of seq goes once every block that has left the window at its
  // current length is compressed.
  int done_after(int part, int seq) const;
  // The rows of (layer, seq, KV head) for BlockRows: (src, cap).
  using RowsAt = std::function<std::pair<const __half*, int>(int, int, int)>;
  // Compresses the blocks [done, next[s]) of part of layers [l0, l1), rows from rows_at.
  void compress_range(int part, int l0, int l1, const std::vector<int>& next,
                      const RowsAt& rows_at);
  // Compresses this layer's blocks that leave the window during the staged step, from the
  // scratch, then writes the rows that stay raw back into the ring.
  void flush_layer(int layer, const StepLayout& step);

  const char* name_;
  const char* what_;
  Staged staged_;
  DeviceBuffer d_row_chunk_;                  // [T] a staged step's chunk of each row
  DeviceBuffer d_next_done_k_, d_next_done_v_;  // Staged::done_k|v on the device
  mutable DeviceBuffer identity_;
  DeviceBuffer q16_, scores_, probs_, out32_, ptrs_;  // dense attention scratch
};

}  // namespace kvcomp
