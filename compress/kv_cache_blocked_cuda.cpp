#include "compress/kv_cache_blocked_cuda.h"

#include <algorithm>
#include <string>

#include "compress/kv_ring_cuda.h"
#include "runtime/error.h"
#include "runtime/half.h"

namespace kvcomp {

BlockedKvCacheCuda::BlockedKvCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                                       int block_k, int block_v, int window_k, int window_v,
                                       const char* name, const char* what)
    : KvCacheCuda(ctx, shape),
      max_tokens_(max_tokens),
      block_k_(block_k),
      block_v_(block_v),
      name_(name),
      what_(what) {
  const int L = shape.n_layers, S = shape.n_seqs, KV = shape.n_kv_heads, hd = shape.head_dim;
  check(L >= 1 && S >= 1 && KV >= 1 && shape.n_heads % KV == 0 && hd >= 1, name, ": bad shape: ", L,
        " layers, ", S, " sequences, ", shape.n_heads, " heads, ", KV, " KV heads, head_dim ", hd);
  cap_k_ = window_k + block_k + kMaxStepTokens;
  cap_v_ = window_v + block_v + kMaxStepTokens;
  max_kb_ = std::max(1, (max_tokens + block_k - 1) / block_k);
  max_vb_ = std::max(1, (max_tokens + block_v - 1) / block_v);
  const size_t heads = size_t(L) * S * KV;
  ring_k_ = DeviceBuffer(heads * cap_k_ * hd * 2, std::string("the ") + what + " K window");
  ring_v_ = DeviceBuffer(heads * cap_v_ * hd * 2, std::string("the ") + what + " V window");
  ring_k_.zero();
  ring_v_.zero();
  len_.assign(S, 0);
  done_k_.assign(S, 0);
  done_v_.assign(S, 0);
  d_len_ = DeviceBuffer(size_t(S) * 4, "lengths");
  d_done_k_ = DeviceBuffer(size_t(S) * 4, "lengths");
  d_done_v_ = DeviceBuffer(size_t(S) * 4, "lengths");
  d_len_.zero();
  d_done_k_.zero();
  d_done_v_.zero();
  identity_ = DeviceBuffer(size_t(S) * 4, "chunk ids");
  iota_cuda(ctx, identity_.as<int>(), S);
}

void BlockedKvCacheCuda::begin_step(const StepLayout& step) {
  for (const auto& c : step.chunks) {
    check(c.count <= kMaxStepTokens, name_, ": ", c.count,
          " tokens in one step for one sequence (at most ", kMaxStepTokens, ")");
    len_[c.seq] = c.start + c.count;
    check(len_[c.seq] <= max_tokens_, name_, ": sequence ", c.seq, " exceeds ", max_tokens_,
          " tokens");
  }
  d_len_.upload(len_.data(), len_.size() * 4);
  if (step.decode && step.decode_keys > 0 && decode_uses_scratch()) {
    // graph-captured: nothing may allocate inside
    const int n = int(step.chunks.size()), cap = (step.decode_keys + 7) / 8 * 8;
    reserve_scratch(n, cap);
    KvShape sh = shape_;
    sh.n_seqs = n;
    dense_attention_reserve(sh, n, cap, 1, q16_, scores_, probs_, out32_, ptrs_);
  }
}

void BlockedKvCacheCuda::reserve_scratch(int n, int cap) const {
  const size_t need = size_t(n) * shape_.n_kv_heads * cap * shape_.head_dim * 2;
  if (scratch_k_.bytes() >= need) return;
  scratch_k_ = DeviceBuffer();
  scratch_v_ = DeviceBuffer();
  scratch_k_ = DeviceBuffer(need, std::string("the ") + what_ + " decode scratch");
  scratch_v_ = DeviceBuffer(need, std::string("the ") + what_ + " decode scratch");
  // Rows past a sequence's length are read with probability 0: keep them finite.
  scratch_k_.zero();
  scratch_v_.zero();
}

void* BlockedKvCacheCuda::ring(int part, int layer) const {
  const size_t cap = part == 0 ? cap_k_ : cap_v_;
  const size_t off = size_t(layer) * shape_.n_seqs * shape_.n_kv_heads * cap * shape_.head_dim;
  return (part == 0 ? ring_k_ : ring_v_).as<uint16_t>() + off;
}

void BlockedKvCacheCuda::append(int layer, const QkvView& x, const StepLayout& step) {
  ring_append_cuda(ctx_, x, step, shape_.n_kv_heads, shape_.head_dim, cap_k_, cap_v_,
                   ring(0, layer), ring(1, layer));
}

void BlockedKvCacheCuda::upload_done() {
  d_done_k_.upload(done_k_.data(), done_k_.size() * 4);
  d_done_v_.upload(done_v_.data(), done_v_.size() * 4);
}

int BlockedKvCacheCuda::to_scratch(int layer, const std::vector<StepLayout::Chunk>& chunks,
                                   const int* d_chunk_seq, int keys) const {
  const int KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int n = int(chunks.size());
  int cap = 8, mk = 0, mv = 0;
  if (keys > 0) {  // every launch sized by the bucket; the kernels skip blocks past done
    cap = (keys + 7) / 8 * 8;
    mk = cap / block_k_;
    mv = cap / block_v_;
    check(scratch_k_.bytes() >= size_t(n) * KV * cap * hd * 2, name_,
          ": decode scratch not reserved for the step");
  } else {
    for (const auto& c : chunks) {
      cap = std::max(cap, len_[c.seq]);
      mk = std::max(mk, done_k_[c.seq] / block_k_);
      mv = std::max(mv, done_v_[c.seq] / block_v_);
    }
    cap = (cap + 7) / 8 * 8;
    reserve_scratch(n, cap);
  }
  if (mk > 0 || mv > 0) decode_blocks(layer, n, d_chunk_seq, mk, mv, cap);
  ring_window_copy_cuda(ctx_, d_chunk_seq, n, KV, hd, d_len_.as<int>(), d_done_k_.as<int>(),
                        d_done_v_.as<int>(), ring(0, layer), ring(1, layer), cap_k_, cap_v_,
                        scratch_k_.get(), scratch_v_.get(), cap);
  return cap;
}

void BlockedKvCacheCuda::attend(int layer, const QkvView& x, const StepLayout& step, DType act,
                                void* out) {
  const int n = int(step.chunks.size()), hd = shape_.head_dim;
  const int cap =
      to_scratch(layer, step.chunks, step.chunk_seq, step.decode ? step.decode_keys : 0);
  // The scratch holds chunk i's cache at "sequence" i.
  StepLayout local = step;
  for (int i = 0; i < n; ++i) local.chunks[i].seq = i;
  local.chunk_seq = identity_.as<int>();
  KvShape sh = shape_;
  sh.n_seqs = n;
  const DenseAttentionArgs args{scratch_k_.get(), scratch_v_.get(), int64_t(cap) * hd, cap};
  dense_attention_cuda(ctx_, sh, args, x, local, act, out, q16_, scores_, probs_, out32_, ptrs_);
}

bool BlockedKvCacheCuda::read(int layer, int seq, std::vector<float>& k,
                              std::vector<float>& v) const {
  const int KV = shape_.n_kv_heads, hd = shape_.head_dim, len = len_.at(seq);
  DeviceBuffer one(4, "sequence id");
  one.upload(&seq, 4);
  const std::vector<StepLayout::Chunk> chunks = {{seq, 0, len, 0}};
  const int cap = to_scratch(layer, chunks, one.as<int>());
  ctx_.synchronize();
  std::vector<uint16_t> hk(size_t(KV) * cap * hd), hv(hk.size());
  scratch_k_.download(hk.data(), hk.size() * 2);
  scratch_v_.download(hv.data(), hv.size() * 2);
  k.resize(size_t(len) * KV * hd);
  v.resize(k.size());
  for (int t = 0; t < len; ++t)
    for (int g = 0; g < KV; ++g)
      for (int c = 0; c < hd; ++c) {
        k[(size_t(t) * KV + g) * hd + c] = fp16_to_float(hk[(size_t(g) * cap + t) * hd + c]);
        v[(size_t(t) * KV + g) * hd + c] = fp16_to_float(hv[(size_t(g) * cap + t) * hd + c]);
      }
  return true;
}

int64_t BlockedKvCacheCuda::reserved_bytes() const {
  size_t b = 0;
  for (const DeviceBuffer* x : std::initializer_list<const DeviceBuffer*>{
           &ring_k_, &ring_v_, &scratch_k_, &scratch_v_, &d_len_, &d_done_k_, &d_done_v_,
           &identity_, &q16_, &scores_, &probs_, &out32_, &ptrs_})
    b += x->bytes();
  return int64_t(b);
}

int BlockedKvCacheCuda::window_tokens() const {
  int t = 0;
  for (size_t s = 0; s < len_.size(); ++s) t += (len_[s] - done_k_[s]) + (len_[s] - done_v_[s]);
  return t;
}

}  // namespace kvcomp
