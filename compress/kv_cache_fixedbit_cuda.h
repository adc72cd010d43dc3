// The fixed-bit KV cache of the GPU backend (--kv kivi2, kivi4, int8, fp8); the same semantics
// as FixedBitCacheRef (compress/kv_cache_fixedbit_ref.h), its ground truth, and the same bytes:
// - Per layer, sequence and KV head, K tokens [0, k_done) live in quantized blocks, tokens
//   [k_done, len) raw (fp16) in a ring buffer of window + block + step tokens, as in
//   KvCompCacheCuda; V likewise.
// - Blocks have a fixed size (compress/fixedbit.h), so the store is preallocated for
//   max_tokens: [n_layers][n_seqs][n_kv_heads][max_blocks][block_bytes] per K|V.
// - commit() after every step quantizes, on the GPU, every block that has left the window (one
//   thread block per (layer, seq, head, block)).
// - attend() dequantizes every block of the step's sequences into an fp16 scratch
//   [chunk][kv_head][cap][head_dim], copies the window next to it, and runs the cuBLAS path
//   (dense_attention_cuda): a dequantize-then-attend path, like kvcomp-unfused.
// The quantizer and dequantizer repeat the CPU reference operation for operation (fp32 with _rn
// intrinsics, no contraction), so the blocks and the dequantized values are bit-identical.
#pragma once

#include <cstdint>
#include <vector>

#include "compress/fixedbit.h"
#include "compress/kv_cache_blocked_ref.h"  // KvStats, KvPart
#include "runtime/kv_cache_cuda.h"
#include "runtime/kv_options.h"

namespace kvcomp {

class FixedBitCacheCuda : public KvCacheCuda {
 public:
  // Tokens one sequence may append in one step (prefills run in pieces of at most this).
  static constexpr int kMaxStepTokens = 1024;

  // Throws Error for a mode that is not fixed-bit, bad options, or a head_dim whose block does
  // not fit the quantize kernel's shared memory (block tokens x head_dim <= 32768).
  FixedBitCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                    const KvOptions& opts);
  // Not graph-safe (graph_safe() false): attend sizes its launches from the host-side lengths.
  void begin_step(const StepLayout& step) override;
  void append(int layer, const QkvView& x, const StepLayout& step) override;
  void attend(int layer, const QkvView& x, const StepLayout& step, DType act, void* out) override;
  void commit(const StepLayout& step) override;
  int64_t bytes() const override;
  bool read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override;
  int max_step_tokens() const override { return kMaxStepTokens; }

  KvStats stats() const;
  // Device memory held: rings, block stores, scratch.
  int64_t allocated_bytes() const;

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
  // Dequantizes every block and copies the window of the given chunks (one layer) into the
  // fp16 scratch [chunk][kv_head][cap][head_dim]; returns cap.
  int dequantize(int layer, const std::vector<StepLayout::Chunk>& chunks,
                 const int* d_chunk_seq) const;

  KvOptions opts_;
  FixedBitFormats fmt_;
  int max_tokens_;
  int cap_k_, cap_v_;                         // ring rows
  int max_kb_, max_vb_;                       // blocks per (layer, seq, head)
  std::vector<int> len_, done_k_, done_v_;    // [n_seqs]
  DeviceBuffer d_len_, d_done_k_, d_done_v_;  // device copies, refreshed each step
  DeviceBuffer ring_k_, ring_v_;              // [L][S][KV][cap][hd] fp16
  DeviceBuffer store_k_, store_v_;            // [L][S][KV][max_blocks][block_bytes]
  DeviceBuffer jobs_[2];                      // [K|V] quantize jobs of the last commit
  mutable DeviceBuffer scratch_k_, scratch_v_, identity_;
  DeviceBuffer q16_, scores_, probs_, out32_, ptrs_;
};

// float_to_e4m3 on the GPU over x[0, n) into ours, and CUDA's own conversion
// (__nv_cvt_float_to_fp8, E4M3, saturating) into theirs; all device pointers. For tests.
void e4m3_encode_cuda(const CudaContext& ctx, const float* x, int64_t n, uint8_t* ours,
                      uint8_t* theirs);

}  // namespace kvcomp
