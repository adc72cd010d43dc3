#include "compress/kv_cache_blocked_cuda.h"

#include <algorithm>
#include <string>

#include "compress/kv_ring_cuda.h"
#include "runtime/cuda_check.h"
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
      window_k_(window_k),
      window_v_(window_v),
      name_(name),
      what_(what) {
  const int L = shape.n_layers, S = shape.n_seqs, KV = shape.n_kv_heads, hd = shape.head_dim;
  check(L >= 1 && S >= 1 && KV >= 1 && shape.n_heads % KV == 0 && hd >= 1, name, ": bad shape: ", L,
        " layers, ", S, " sequences, ", shape.n_heads, " heads, ", KV, " KV heads, head_dim ", hd);
  // After a commit a sequence holds fewer than window + block raw tokens; a decode step adds one.
  cap_k_ = window_k + block_k;
  cap_v_ = window_v + block_v;
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
  const int S = shape_.n_seqs;
  for (const auto& c : step.chunks) {
    len_[c.seq] = c.start + c.count;
    check(len_[c.seq] <= max_tokens_, name_, ": sequence ", c.seq, " exceeds ", max_tokens_,
          " tokens");
  }
  d_len_.upload(len_.data(), len_.size() * 4);
  staged_.on = !step.decode;
  if (staged_.on) {
    staged_.done_k = done_k_;
    staged_.done_v = done_v_;
    staged_.chunk_of.assign(S, -1);
    std::vector<int> row_chunk(size_t(step.n_tokens));
    int cap = 8;
    for (size_t i = 0; i < step.chunks.size(); ++i) {
      const auto& c = step.chunks[i];
      check(staged_.chunk_of[c.seq] < 0, name_, ": sequence ", c.seq, " twice in one step");
      staged_.chunk_of[c.seq] = int(i);
      cap = std::max(cap, len_[c.seq]);
      for (int r = c.row; r < c.row + c.count; ++r) row_chunk[size_t(r)] = int(i);
      staged_.done_k[c.seq] = done_after(0, c.seq);
      staged_.done_v[c.seq] = done_after(1, c.seq);
    }
    staged_.cap = (cap + 7) / 8 * 8;
    reserve_scratch(int(step.chunks.size()), staged_.cap);
    d_row_chunk_.ensure(row_chunk.size() * 4, "step layout");
    d_row_chunk_.upload(row_chunk.data(), row_chunk.size() * 4);
    d_next_done_k_.ensure(size_t(S) * 4, "lengths");
    d_next_done_v_.ensure(size_t(S) * 4, "lengths");
    d_next_done_k_.upload(staged_.done_k.data(), size_t(S) * 4);
    d_next_done_v_.upload(staged_.done_v.data(), size_t(S) * 4);
  } else if (step.decode_keys > 0 && decode_uses_scratch()) {
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
  scratch_k_ = DeviceBuffer(need, std::string("the ") + what_ + " attention scratch");
  scratch_v_ = DeviceBuffer(need, std::string("the ") + what_ + " attention scratch");
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
  if (!staged_.on) {
    ring_append_cuda(ctx_, x, step, shape_.n_kv_heads, shape_.head_dim, cap_k_, cap_v_,
                     ring(0, layer), ring(1, layer));
    return;
  }
  // The blocks and the window (the tokens held before the step), then the step's rows after them.
  to_scratch(layer, step.chunks, step.chunk_seq, 0, step.chunk_start);
  scratch_append_cuda(ctx_, x, step, d_row_chunk_.as<int>(), shape_.n_kv_heads, shape_.head_dim,
                      scratch_k_.get(), scratch_v_.get(), staged_.cap);
}

void BlockedKvCacheCuda::upload_done() {
  d_done_k_.upload(done_k_.data(), done_k_.size() * 4);
  d_done_v_.upload(done_v_.data(), done_v_.size() * 4);
}

int BlockedKvCacheCuda::to_scratch(int layer, const std::vector<StepLayout::Chunk>& chunks,
                                   const int* d_chunk_seq, int keys, const int* d_chunk_end) const {
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
  ring_window_copy_cuda(ctx_, d_chunk_seq, n, KV, hd, d_len_.as<int>(), d_chunk_end,
                        d_done_k_.as<int>(),
                        d_done_v_.as<int>(), ring(0, layer), ring(1, layer), cap_k_, cap_v_,
                        scratch_k_.get(), scratch_v_.get(), cap);
  return cap;
}

void BlockedKvCacheCuda::attend(int layer, const QkvView& x, const StepLayout& step, DType act,
                                void* out) {
  const int n = int(step.chunks.size()), hd = shape_.head_dim;
  const int cap = staged_.on ? staged_.cap
                             : to_scratch(layer, step.chunks, step.chunk_seq, step.decode_keys);
  // The scratch holds chunk i's cache at "sequence" i.
  StepLayout local = step;
  for (int i = 0; i < n; ++i) local.chunks[i].seq = i;
  local.chunk_seq = identity_.as<int>();
  KvShape sh = shape_;
  sh.n_seqs = n;
  const DenseAttentionArgs args{scratch_k_.get(), scratch_v_.get(), int64_t(cap) * hd, cap};
  dense_attention_cuda(ctx_, sh, args, x, local, act, out, q16_, scores_, probs_, out32_, ptrs_);
  if (staged_.on) flush_layer(layer, step);
}

int BlockedKvCacheCuda::done_after(int part, int seq) const {
  const int B = part == 0 ? block_k_ : block_v_, W = part == 0 ? window_k_ : window_v_;
  const int done = (part == 0 ? done_k_ : done_v_)[size_t(seq)];
  return len_[size_t(seq)] - done >= W + B ? done + (len_[size_t(seq)] - done - W) / B * B : done;
}

void BlockedKvCacheCuda::compress_range(int part, int l0, int l1, const std::vector<int>& next,
                                        const RowsAt& rows_at) {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads;
  const int B = part == 0 ? block_k_ : block_v_;
  const std::vector<int>& done = part == 0 ? done_k_ : done_v_;
  std::vector<BlockRows> blocks, present;
  for (int l = l0; l < l1; ++l)
    for (int s = 0; s < S; ++s)
      for (int g = 0; g < KV; ++g) {
        const auto [src, cap] = rows_at(l, s, g);
        for (int t = done[s]; t < next[s]; t += B) blocks.push_back({l, s, g, t / B, src, cap, t});
        for (int t = done[s]; t + B <= len_[s]; t += B)
          present.push_back({l, s, g, t / B, src, cap, t});
      }
  if (!blocks.empty()) compress(part, l1 - l0 == 1 ? l0 : -1, blocks, present);
}

void BlockedKvCacheCuda::flush_layer(int layer, const StepLayout& step) {
  const int KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int cap = staged_.cap;
  for (int part = 0; part < 2; ++part) {
    // The step's sequences from the scratch (rows at their positions), the others from the ring.
    const int rcap = part == 0 ? cap_k_ : cap_v_;
    const __half* scratch = (part == 0 ? scratch_k_ : scratch_v_).as<__half>();
    const __half* rng = static_cast<const __half*>(ring(part, layer));
    compress_range(part, layer, layer + 1, part == 0 ? staged_.done_k : staged_.done_v,
                   [&](int, int s, int g) -> std::pair<const __half*, int> {
                     const int i = staged_.chunk_of[size_t(s)];
                     if (i >= 0) return {scratch + (size_t(i) * KV + g) * cap * hd, 0};
                     return {rng + (size_t(s) * KV + g) * rcap * hd, rcap};
                   });
  }
  // What stays raw, back into the ring (the step's tokens and the window before them).
  ring_from_scratch_cuda(ctx_, step.chunk_seq, int(step.chunks.size()), KV, hd, d_len_.as<int>(),
                         d_next_done_k_.as<int>(), d_next_done_v_.as<int>(), scratch_k_.get(),
                         scratch_v_.get(), cap, ring(0, layer), ring(1, layer), cap_k_, cap_v_);
}

void BlockedKvCacheCuda::commit(const StepLayout& step) {
  (void)step;
  if (staged_.on) {
    done_k_ = staged_.done_k;
    done_v_ = staged_.done_v;
    staged_.on = false;
    upload_done();
    if (!decode_uses_scratch()) {  // only prefill pieces need it: give it back
      scratch_k_ = DeviceBuffer();
      scratch_v_ = DeviceBuffer();
    }
    return;
  }
  // A decode step: the blocks that left the window, of every layer, from the rings.
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  for (int part = 0; part < 2; ++part) {
    std::vector<int> next(static_cast<size_t>(S));
    for (int s = 0; s < S; ++s) next[size_t(s)] = done_after(part, s);
    const int rcap = part == 0 ? cap_k_ : cap_v_;
    compress_range(part, 0, shape_.n_layers, next,
                   [&](int l, int s, int g) -> std::pair<const __half*, int> {
                     return {static_cast<const __half*>(ring(part, l)) +
                                 (size_t(s) * KV + g) * rcap * hd,
                             rcap};
                   });
    (part == 0 ? done_k_ : done_v_) = next;
  }
  upload_done();
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

void BlockedKvCacheCuda::copy_sequence(int from, int to) {
  const int KV = shape_.n_kv_heads, hd = shape_.head_dim;
  copy_blocks(from, to);
  for (int part = 0; part < 2; ++part) {
    const size_t per = size_t(KV) * (part == 0 ? cap_k_ : cap_v_) * hd * 2;
    for (int l = 0; l < shape_.n_layers; ++l) {
      uint8_t* r = static_cast<uint8_t*>(ring(part, l));
      KVCOMP_CUDA_CHECK(cudaMemcpyAsync(r + size_t(to) * per, r + size_t(from) * per, per,
                                        cudaMemcpyDeviceToDevice, ctx_.stream()));
    }
  }
  len_[to] = len_[from];
  done_k_[to] = done_k_[from];
  done_v_[to] = done_v_[from];
  d_len_.upload(len_.data(), len_.size() * 4);
  upload_done();
}

int64_t BlockedKvCacheCuda::reserved_bytes() const {
  size_t b = 0;
  for (const DeviceBuffer* x : std::initializer_list<const DeviceBuffer*>{
           &ring_k_, &ring_v_, &scratch_k_, &scratch_v_, &d_len_, &d_done_k_, &d_done_v_,
           &d_row_chunk_, &d_next_done_k_, &d_next_done_v_, &identity_, &q16_, &scores_, &probs_,
           &out32_, &ptrs_})
    b += x->bytes();
  return int64_t(b);
}

int BlockedKvCacheCuda::window_tokens() const {
  int t = 0;
  for (size_t s = 0; s < len_.size(); ++s) t += (len_[s] - done_k_[s]) + (len_[s] - done_v_[s]);
  return t;
}

}  // namespace kvcomp
