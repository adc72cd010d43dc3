// The KV cache of the GPU backend. As on the CPU, attention is a method of the cache: each
// storage scheme reads its own layout. Every pointer here is device memory unless named h_.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/safetensors.h"  // DType
#include "runtime/cuda_context.h"
#include "runtime/device_buffer.h"
#include "runtime/kv_cache_ref.h"  // KvShape

namespace kvcomp {

// Blocks of 256 threads per row for the per-token copy kernels (cache appends, query gathers,
// output scatters): enough that a decode step's single row is not one block's serial chain of
// loads. Such a kernel strides its row's elements by blockIdx.{y|z} * 256 + threadIdx.x.
inline int row_copy_blocks(int elements) {
  return std::min(8, (elements + 255) / 256);
}

// Which rows of a forward step belong to which sequence.
struct StepLayout {
  struct Chunk {
    int seq;    // sequence id
    int start;  // tokens the sequence held before this step (= position of its first token)
    int count;  // tokens of this step
    int row;    // first row of the step's [T, ...] activations
  };
  std::vector<Chunk> chunks;
  int n_tokens = 0;
  bool decode = false;  // every chunk has exactly one token
  // Decode steps: when > 0, attention runs over this many keys per sequence (at least every
  // chunk's length; the rest masked), so that consecutive steps launch identical work.
  int decode_keys = 0;
  const int* pos = nullptr;          // [n_tokens] position of each row
  const int* seq = nullptr;          // [n_tokens] sequence of each row
  const int* chunk_start = nullptr;  // [chunks] Chunk::start
  const int* chunk_seq = nullptr;    // [chunks] Chunk::seq
};

// Where this layer's q, k, v live in the fp32 [T, row_stride] projection output (after RoPE,
// except for rope_append's input).
struct QkvView {
  float* qkv;
  int64_t row_stride;
  int q_col, k_col, v_col;
};

class KvCacheCuda {
 public:
  KvCacheCuda(const CudaContext& ctx, const KvShape& shape) : ctx_(ctx), shape_(shape) {}
  virtual ~KvCacheCuda() = default;
  // Host-side state of a step (lengths), before any of its device work is enqueued.
  virtual void begin_step(const StepLayout&) {}
  // True when a decode step's device work (append, attend) may be captured into a CUDA graph:
  // no host synchronization, no allocation, launch parameters fixed by StepLayout::decode_keys.
  virtual bool graph_safe() const { return false; }
  // Appends the step's k, v rows of one layer.
  virtual void append(int layer, const QkvView& x, const StepLayout& step) = 0;
  // RoPE on the step's q and k heads of x, in place (rope_cuda: the k heads follow the q heads),
  // then append(). This default runs the two; a cache may do both in one kernel, and prepare its
  // attention's queries there, as long as x ends as rope_cuda leaves it.
  virtual void rope_append(int layer, const QkvView& x, const StepLayout& step,
                           const float* inv_freq);
  // Attention of the step's q rows over each sequence's cache (causal). out: [T, n_heads *
  // head_dim] of type `act`.
  virtual void attend(int layer, const QkvView& x, const StepLayout& step, DType act,
                      void* out) = 0;
  // After every forward step, once all layers have appended.
  virtual void commit(const StepLayout&) {}
  // Bytes the cache's contents take (what a store of exactly those values needs).
  virtual int64_t bytes() const = 0;
  // Device memory the cache holds: every buffer it owns, at its capacity (stores, rings, block
  // arenas, indexes, codebooks, scratch), allocated or grown as needed.
  virtual int64_t reserved_bytes() const = 0;
  // The cache of one layer and sequence as attention reads it, [len, n_kv_heads, head_dim]
  // fp32; false when this cache cannot be read back.
  virtual bool read(int /*layer*/, int /*seq*/, std::vector<float>& /*k*/,
                    std::vector<float>& /*v*/) const {
    return false;
  }
  // Tokens one sequence may append in one step; longer prefills run in pieces.
  virtual int max_step_tokens() const { return 1 << 30; }
  // Sequence `to` (empty) becomes a copy of sequence `from`: its length, its values, blocks
  // allocated for it as its own appends would have been (Engine::copy_sequence).
  virtual void copy_sequence(int from, int to) = 0;

 protected:
  const CudaContext& ctx_;
  KvShape shape_;
};

// Uncompressed fp16 cache, preallocated for n_seqs x max_tokens. Decode steps attend with the
// split-K flash-decoding kernel (runtime/attention_decode.h), or with `cublas` the paper's
// baseline: QK^T and PV as cuBLAS batched GEMMs and a softmax kernel between them (--kv
// fp16-cublas, and shapes flash decoding does not take). Prefill steps take the fused causal
// kernel either way.
class DenseKvCacheCuda : public KvCacheCuda {
 public:
  DenseKvCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                   bool cublas = false);
  void begin_step(const StepLayout& step) override;
  bool graph_safe() const override { return true; }
  void append(int layer, const QkvView& x, const StepLayout& step) override;
  // Decode steps: one kernel applies RoPE, appends k and v, and gathers the fp16 queries that
  // attend() then uses as they are.
  void rope_append(int layer, const QkvView& x, const StepLayout& step,
                   const float* inv_freq) override;
  void attend(int layer, const QkvView& x, const StepLayout& step, DType act, void* out) override;
  int64_t bytes() const override;
  int64_t reserved_bytes() const override;
  bool read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override;
  void copy_sequence(int from, int to) override;

  // [n_layers, n_seqs, n_kv_heads, max_tokens, head_dim] fp16
  const void* k_data() const { return k_.get(); }
  const void* v_data() const { return v_.get(); }
  int max_tokens() const { return max_tokens_; }

 private:
  int max_tokens_;
  bool cublas_;
  std::vector<int> len_;  // [n_seqs] tokens held
  DeviceBuffer d_len_;    // device copy, refreshed by begin_step
  DeviceBuffer k_, v_;
  DeviceBuffer q16_, scores_, probs_, out32_, ptrs_;  // cuBLAS attention scratch
  DeviceBuffer decode_scratch_;                       // flash decoding's split states
  int q_ready_layer_ = -1;  // the layer whose decode queries rope_append left in q16_
};

// The pieces of the baseline attention, shared by every cache that ends in an fp16 [n_kv,
// tokens, head_dim] layout per sequence (the dense cache, and decompress-then-attend paths).
struct DenseAttentionArgs {
  const void* k;       // fp16; sequence s, kv head g at k + (s * n_kv + g) * seq_stride
  const void* v;       // same layout as k
  int64_t seq_stride;  // elements between (s, g) and (s, g + 1): tokens_cap * head_dim
  int tokens_cap;      // rows per (s, g): no attention reads past it
  // Decode steps build the GEMMs' pointer arrays of layers [0, n_layers) when attending layer 0
  // (layer l's K/V at k, v + (l - layer) * layer_stride), and reuse them for the other layers:
  // a step attends layer 0 first. The defaults (one layer) rebuild them at every call.
  int layer = 0;
  int n_layers = 1;
  int64_t layer_stride = 0;
  // Decode steps: q16 already holds the step's queries (fp16 [chunk][head][head_dim]).
  bool q_ready = false;
};
// Grows the scratch dense_attention_cuda's decode steps use for n_chunks sequences attending
// over `keys` keys (a decode step's bucket), so that the step itself allocates nothing (CUDA
// graphs). Prefill steps grow theirs as they go.
void dense_attention_reserve(const KvShape& shape, int n_chunks, int keys, int n_layers,
                             DeviceBuffer& q16, DeviceBuffer& scores, DeviceBuffer& probs,
                             DeviceBuffer& out32, DeviceBuffer& ptrs);
void dense_attention_cuda(const CudaContext& ctx, const KvShape& shape, const DenseAttentionArgs& a,
                          const QkvView& x, const StepLayout& step, DType act, void* out,
                          DeviceBuffer& q16, DeviceBuffer& scores, DeviceBuffer& probs,
                          DeviceBuffer& out32, DeviceBuffer& ptrs);

}  // namespace kvcomp
