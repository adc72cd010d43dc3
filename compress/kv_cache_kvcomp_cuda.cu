// The KVComp cache on the GPU (see the header for its semantics).
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "compress/attention_kvcomp.h"
#include "compress/kv_cache_kvcomp_cuda.h"
#include "compress/kv_ring_cuda.h"
#include "runtime/cuda_check.h"
#include "runtime/half.h"

namespace kvcomp {
namespace {

constexpr uint64_t kArenaChunk = uint64_t(256) << 20;  // arenas grow by at least this

// The most bytes one block can take: raw, or Huffman with every code at the longest length.
uint64_t worst_block_bytes(BlockKind request, int n_tokens, int head_dim, int max_code_len) {
  const BlockKind kind = block_kind_widest(request);  // a kVCompact request may write kV
  const uint32_t units = block_n_units(kind, uint32_t(n_tokens), uint32_t(head_dim));
  const uint32_t payload = std::min<uint32_t>(
      units * uint32_t(kMaxUnitBytes),
      units * ((block_unit_symbols(kind, uint32_t(n_tokens), uint32_t(head_dim)) *
                    uint32_t(max_code_len) +
                7) /
               8));
  return std::max<uint64_t>(
      raw_block_bytes(uint32_t(n_tokens), uint32_t(head_dim)),
      huffman_block_bytes(kind, uint32_t(n_tokens), uint32_t(head_dim), payload));
}

// Decode jobs of one layer: job ((chunk * n_kv + g) * per + b) decodes K block b (b < mk) or V
// block b - mk into the scratch; blocks past a sequence's count get a null job (skipped).
__global__ void decode_jobs_kernel(const int* chunk_seq, int n_chunks, int n_kv, int hd, int mk,
                                   int mv, const uint8_t* const* index_k,
                                   const uint8_t* const* index_v, int max_kb, int max_vb,
                                   const int* done_k, const int* done_v, int block_k, int block_v,
                                   int cb_k, int cb_v, __half* scratch_k, __half* scratch_v,
                                   int cap, DecodeJob* jobs) {
  const int per = mk + mv;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n_chunks * n_kv * per) return;
  const int b = i % per, g = (i / per) % n_kv, chunk = i / (per * n_kv);
  const int s = chunk_seq[chunk];
  const int64_t head = int64_t(s) * n_kv + g;
  const int64_t dst_head = (int64_t(chunk) * n_kv + g) * cap;
  DecodeJob j;
  j.dst_row_stride = hd;
  if (b < mk) {
    j.block = b < done_k[s] / block_k ? index_k[head * max_kb + b] : nullptr;
    j.codebook = cb_k;
    j.dst = scratch_k + (dst_head + int64_t(b) * block_k) * hd;
  } else {
    const int bv = b - mk;
    j.block = bv < done_v[s] / block_v ? index_v[head * max_vb + bv] : nullptr;
    j.codebook = cb_v;
    j.dst = scratch_v + (dst_head + int64_t(bv) * block_v) * hd;
  }
  jobs[i] = j;
}

// Headers of the blocks listed in index[0, n) (nullptr: skipped) into out[n].
__global__ void gather_headers_kernel(const uint8_t* const* index, int64_t n, BlockHeader* out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const uint8_t* b = index[i];
  BlockHeader h{};
  if (b) h = *reinterpret_cast<const BlockHeader*>(b);
  out[i] = h;
}

}  // namespace

KvCompCacheCuda::KvCompCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                                 const KvOptions& opts)
    : KvCacheCuda(ctx, shape), opts_(opts), codec_(codec_options(opts)), max_tokens_(max_tokens) {
  validate(opts);
  validate_codec_options(codec_);
  check(shape.head_dim == 64 || shape.head_dim == 128,
        "--kv kvcomp: the GPU cache supports head_dim 64 and 128, the model has ", shape.head_dim);
  check(!opts.codebook_per_head,
        "--codebook-per-head: available on the CPU (--device cpu); the GPU cache uses one "
        "codebook per layer and K|V");
  const int L = shape.n_layers, S = shape.n_seqs, KV = shape.n_kv_heads, hd = shape.head_dim;
  cap_k_ = opts.window_k + codec_.block_k + kMaxStepTokens;
  cap_v_ = opts.window_v + codec_.block_v + kMaxStepTokens;
  max_kb_ = std::max(1, (max_tokens + codec_.block_k - 1) / codec_.block_k);
  max_vb_ = std::max(1, (max_tokens + codec_.block_v - 1) / codec_.block_v);
  const size_t heads = size_t(L) * S * KV;
  ring_k_ = DeviceBuffer(heads * cap_k_ * hd * 2, "the KVComp K window");
  ring_v_ = DeviceBuffer(heads * cap_v_ * hd * 2, "the KVComp V window");
  ring_k_.zero();
  ring_v_.zero();
  index_k_ = DeviceBuffer(heads * max_kb_ * sizeof(void*), "the KVComp block index");
  index_v_ = DeviceBuffer(heads * max_vb_ * sizeof(void*), "the KVComp block index");
  index_k_.zero();
  index_v_.zero();
  len_.assign(S, 0);
  done_k_.assign(S, 0);
  done_v_.assign(S, 0);
  d_len_ = DeviceBuffer(size_t(S) * 4, "lengths");
  d_done_k_ = DeviceBuffer(size_t(S) * 4, "lengths");
  d_done_v_ = DeviceBuffer(size_t(S) * 4, "lengths");
  d_len_.zero();
  d_done_k_.zero();
  d_done_v_.zero();
  err_ = DeviceBuffer(4, "codec flags");
  {
    // The fused kernel's split states for a full batch at the longest context, allocated once so
    // that decode steps never allocate (they may be captured into CUDA graphs).
    KvcompAttentionParams p;
    p.n_heads = shape.n_heads;
    p.n_kv_heads = KV;
    p.head_dim = hd;
    p.n_chunks = S;
    fused_scratch_ =
        DeviceBuffer(kvcomp_attention_scratch_bytes(p, max_tokens), "attention scratch");
  }
  // Placeholder codebooks (uniform) until the real ones are built from data.
  codebooks_.reserve(size_t(L) * 2 * n_cb_heads());
  for (int l = 0; l < L; ++l)
    for (int part = 0; part < 2; ++part) {
      const int a = part == 0 ? codec_.k_alphabet() : codec_.v_alphabet();
      std::vector<uint64_t> ones(a, 1);
      for (int h = 0; h < n_cb_heads(); ++h)
        codebooks_.push_back(Codebook::from_histogram(ones.data(), a, codec_.max_code_len));
    }
  upload_codebooks();
}

void KvCompCacheCuda::upload_codebooks() {
  gpu_codebooks_ = std::make_unique<GpuCodebooks>(codebooks_);
}

void KvCompCacheCuda::begin_step(const StepLayout& step) {
  for (const auto& c : step.chunks) {
    check(c.count <= kMaxStepTokens, "kvcomp cache: ", c.count,
          " tokens in one step for one sequence (at most ", kMaxStepTokens, ")");
    len_[c.seq] = c.start + c.count;
    check(len_[c.seq] <= max_tokens_, "kvcomp cache: sequence ", c.seq, " exceeds ", max_tokens_,
          " tokens");
  }
  d_len_.upload(len_.data(), len_.size() * 4);
}

void KvCompCacheCuda::append(int layer, const QkvView& x, const StepLayout& step) {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const size_t lk = size_t(layer) * S * KV * cap_k_ * hd, lv = size_t(layer) * S * KV * cap_v_ * hd;
  ring_append_cuda(ctx_, x, step, KV, hd, cap_k_, cap_v_, ring_k_.as<__half>() + lk,
                   ring_v_.as<__half>() + lv);
}

int KvCompCacheCuda::decompress(int layer, const std::vector<StepLayout::Chunk>& chunks,
                                const int* d_chunk_seq) const {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int n = int(chunks.size());
  int cap = 8, mk = 0, mv = 0;
  for (const auto& c : chunks) {
    cap = std::max(cap, len_[c.seq]);
    mk = std::max(mk, done_k_[c.seq] / codec_.block_k);
    mv = std::max(mv, done_v_[c.seq] / codec_.block_v);
  }
  cap = (cap + 7) / 8 * 8;
  const size_t need = size_t(n) * KV * cap * hd * 2;
  if (scratch_k_.bytes() < need) {
    scratch_k_ = DeviceBuffer();
    scratch_v_ = DeviceBuffer();
    scratch_k_ = DeviceBuffer(need, "the KVComp decode scratch");
    scratch_v_ = DeviceBuffer(need, "the KVComp decode scratch");
    // Rows past a sequence's length are read with probability 0: keep them finite.
    scratch_k_.zero();
    scratch_v_.zero();
  }
  const int n_jobs = n * KV * (mk + mv);
  if (n_jobs > 0) {
    decode_jobs_.ensure(size_t(n_jobs) * sizeof(DecodeJob), "decode jobs");
    decode_jobs_kernel<<<(n_jobs + 255) / 256, 256, 0, ctx_.stream()>>>(
        d_chunk_seq, n, KV, hd, mk, mv,
        index_k_.as<const uint8_t*>() + size_t(layer) * S * KV * max_kb_,
        index_v_.as<const uint8_t*>() + size_t(layer) * S * KV * max_vb_, max_kb_, max_vb_,
        d_done_k_.as<int>(), d_done_v_.as<int>(), codec_.block_k, codec_.block_v,
        cb_index(0, layer, 0), cb_index(1, layer, 0), scratch_k_.as<__half>(),
        scratch_v_.as<__half>(), cap, decode_jobs_.as<DecodeJob>());
    KVCOMP_LAUNCH_CHECK();
    decode_blocks_cuda(ctx_, decode_jobs_.as<DecodeJob>(), n_jobs, *gpu_codebooks_,
                       std::max(codec_.block_k, codec_.block_v) * hd, nullptr);
  }
  const size_t lk = size_t(layer) * S * KV * cap_k_ * hd, lv = size_t(layer) * S * KV * cap_v_ * hd;
  ring_window_copy_cuda(ctx_, d_chunk_seq, n, KV, hd, d_len_.as<int>(), d_done_k_.as<int>(),
                        d_done_v_.as<int>(), ring_k_.as<__half>() + lk, ring_v_.as<__half>() + lv,
                        cap_k_, cap_v_, scratch_k_.get(), scratch_v_.get(), cap);
  return cap;
}

void KvCompCacheCuda::attend(int layer, const QkvView& x, const StepLayout& step, DType act,
                             void* out) {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int n = int(step.chunks.size());
  if (step.decode && opts_.mode == KvMode::kKvcomp) {
    KvcompAttentionParams p;
    p.n_heads = shape_.n_heads;
    p.n_kv_heads = KV;
    p.head_dim = hd;
    p.scale = 1.0f / std::sqrt(float(hd));
    p.qkv = x.qkv;
    p.qkv_stride = x.row_stride;
    p.q_col = x.q_col;
    p.n_chunks = n;
    p.chunk_seq = step.chunk_seq;
    p.seq_len = d_len_.as<int>();
    p.seq_k_done = d_done_k_.as<int>();
    p.seq_v_done = d_done_v_.as<int>();
    p.ring_k = ring_k_.as<uint16_t>() + size_t(layer) * S * KV * cap_k_ * hd;
    p.ring_v = ring_v_.as<uint16_t>() + size_t(layer) * S * KV * cap_v_ * hd;
    p.cap_k = cap_k_;
    p.cap_v = cap_v_;
    p.k_blocks = index_k_.as<const uint8_t*>() + size_t(layer) * S * KV * max_kb_;
    p.v_blocks = index_v_.as<const uint8_t*>() + size_t(layer) * S * KV * max_vb_;
    p.max_k_blocks = max_kb_;
    p.max_v_blocks = max_vb_;
    p.block_k = codec_.block_k;
    p.block_v = codec_.block_v;
    const GpuCodebookView& kc = gpu_codebooks_->view(cb_index(0, layer, 0));
    const GpuCodebookView& vc = gpu_codebooks_->view(cb_index(1, layer, 0));
    p.k_table = kc.decode;
    p.v_table = vc.decode;
    p.k_bits = kc.max_len;
    p.v_bits = vc.max_len;
    p.out = out;
    int max_len = step.decode_keys;
    for (const auto& c : step.chunks) max_len = std::max(max_len, len_[c.seq]);
    max_len = std::min(max_len, max_tokens_);
    const size_t need = kvcomp_attention_scratch_bytes(p, max_len);
    fused_scratch_.ensure(need, "attention scratch");  // sized for the worst in the constructor
    kvcomp_attention_cuda(ctx_, p, max_len, act, fused_scratch_.get(), fused_scratch_.bytes());
    return;
  }
  // Decode every block to fp16, then the cuBLAS path over [chunk][kv head][cap][hd].
  const int cap = decompress(layer, step.chunks, step.chunk_seq);
  if (identity_.bytes() < size_t(n) * 4) {
    identity_ = DeviceBuffer(size_t(std::max(n, 64)) * 4, "chunk ids");
    iota_cuda(ctx_, identity_.as<int>(), std::max(n, 64));
  }
  StepLayout local = step;
  for (int i = 0; i < n; ++i) local.chunks[i].seq = i;
  local.chunk_seq = identity_.as<int>();
  KvShape sh = shape_;
  sh.n_seqs = n;
  const DenseAttentionArgs args{scratch_k_.get(), scratch_v_.get(), int64_t(cap) * hd, cap};
  dense_attention_cuda(ctx_, sh, args, x, local, act, out, q16_, scores_, probs_, out32_, ptrs_);
}

KvCompCacheCuda::Arena& KvCompCacheCuda::arena_for(uint64_t expect_bytes) {
  if (arenas_.empty() || arenas_.back().buf.capacity() - arenas_.back().used < expect_bytes) {
    const uint64_t cap = std::max(kArenaChunk, (expect_bytes + 255) / 256 * 256);
    Arena a;
    a.buf = BlockArenaBuffer(cap, "the compressed KV cache");
    block_arena_reset(ctx_, a.buf.view());
    arenas_.push_back(std::move(a));
  }
  return arenas_.back();
}

void KvCompCacheCuda::build_codebooks(int part) {
  // Histogram of every complete block from done up to len, of every sequence, head and layer.
  const int L = shape_.n_layers, S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int B = part == 0 ? codec_.block_k : codec_.block_v;
  const int cap = part == 0 ? cap_k_ : cap_v_;
  const auto& done = part == 0 ? done_k_ : done_v_;
  const DeviceBuffer& ring = part == 0 ? ring_k_ : ring_v_;
  const int alphabet = part == 0 ? codec_.k_alphabet() : codec_.v_alphabet();
  const int n_hist = L * n_cb_heads();
  std::vector<EncodeJob> jobs;
  for (int l = 0; l < L; ++l)
    for (int s = 0; s < S; ++s)
      for (int h = 0; h < KV; ++h)
        for (int t = done[s]; t + B <= len_[s]; t += B) {
          EncodeJob j;
          j.src = ring.as<__half>() + ((size_t(l) * S + s) * KV + h) * cap * hd;
          j.row_stride = hd;
          j.ring_cap = cap;
          j.first = t % cap;
          j.n_tokens = B;
          j.head_dim = hd;
          j.kind = uint8_t(part == 0 ? codec_.k_kind() : codec_.v_kind());
          j.eb = part == 0 ? codec_.eb_k : codec_.eb_v;
          j.codebook = l * n_cb_heads() + (codec_.codebook_per_head ? h : 0);
          jobs.push_back(j);
        }
  hist_.ensure(size_t(n_hist) * kMaxAlphabet * 8, "codebook histograms");
  KVCOMP_CUDA_CHECK(cudaMemsetAsync(hist_.get(), 0, hist_.bytes(), ctx_.stream()));
  KVCOMP_CUDA_CHECK(cudaMemsetAsync(err_.get(), 0, 4, ctx_.stream()));
  if (!jobs.empty()) {
    jobs_.ensure(jobs.size() * sizeof(EncodeJob), "codec jobs");
    jobs_.upload(jobs.data(), jobs.size() * sizeof(EncodeJob));
    histogram_blocks_cuda(ctx_, jobs_.as<EncodeJob>(), int(jobs.size()), alphabet,
                          hist_.as<unsigned long long>(), n_hist, err_.as<int>());
  }
  std::vector<unsigned long long> hist(size_t(n_hist) * kMaxAlphabet);
  KVCOMP_CUDA_CHECK(cudaMemcpyAsync(hist.data(), hist_.get(), hist.size() * 8,
                                    cudaMemcpyDeviceToHost, ctx_.stream()));
  ctx_.synchronize();
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < n_cb_heads(); ++h) {
      std::vector<uint64_t> hh(alphabet);
      for (int a = 0; a < alphabet; ++a)
        hh[a] = hist[(size_t(l) * n_cb_heads() + h) * kMaxAlphabet + a];
      codebooks_[cb_index(part, l, h)] =
          Codebook::from_histogram(hh.data(), alphabet, codec_.max_code_len);
    }
  built_part_[part] = true;
  upload_codebooks();
}

void KvCompCacheCuda::commit(const StepLayout& step) {
  (void)step;
  const int L = shape_.n_layers, S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  for (int part = 0; part < 2; ++part) {
    const int B = part == 0 ? codec_.block_k : codec_.block_v;
    const int W = part == 0 ? opts_.window_k : opts_.window_v;
    auto& done = part == 0 ? done_k_ : done_v_;
    bool due = false;
    for (int s = 0; s < S; ++s) due |= len_[s] - done[s] >= W + B;
    if (!due) continue;
    if (!built_part_[part]) build_codebooks(part);
    const int cap = part == 0 ? cap_k_ : cap_v_;
    const int max_b = part == 0 ? max_kb_ : max_vb_;
    const DeviceBuffer& ring = part == 0 ? ring_k_ : ring_v_;
    DeviceBuffer& index = part == 0 ? index_k_ : index_v_;
    const BlockKind kind = part == 0 ? codec_.k_kind() : codec_.v_kind();
    std::vector<EncodeJob> jobs;
    for (int s = 0; s < S; ++s)
      for (; len_[s] - done[s] >= W + B; done[s] += B)
        for (int l = 0; l < L; ++l)
          for (int h = 0; h < KV; ++h) {
            const size_t head = (size_t(l) * S + s) * KV + h;
            EncodeJob j;
            j.src = ring.as<__half>() + head * cap * hd;
            j.row_stride = hd;
            j.ring_cap = cap;
            j.first = done[s] % cap;
            j.n_tokens = B;
            j.head_dim = hd;
            j.kind = uint8_t(kind);
            j.eb = part == 0 ? codec_.eb_k : codec_.eb_v;
            j.codebook = cb_index(part, l, h);
            j.slot = index.as<uint8_t*>() + head * max_b + done[s] / B;
            jobs.push_back(j);
          }
    // Room for the blocks: the bytes per block seen so far with a margin (the first time, the
    // worst case). If they still do not fit, the launch says how many bytes it needed; the
    // blocks are then encoded again into a new arena of that size.
    const uint64_t worst =
        uint64_t(jobs.size()) * worst_block_bytes(kind, B, hd, gpu_codebooks_->max_len());
    const uint64_t expect =
        blocks_[part] > 0
            ? std::min(worst, uint64_t(jobs.size()) * (bytes_[part] / blocks_[part] * 5 / 4 + 64))
            : worst;
    jobs_.ensure(jobs.size() * sizeof(EncodeJob), "codec jobs");
    jobs_.upload(jobs.data(), jobs.size() * sizeof(EncodeJob));
    for (int attempt = 0;; ++attempt) {
      Arena& a = arena_for(attempt == 0 ? expect : worst);
      encode_blocks_cuda(ctx_, jobs_.as<EncodeJob>(), int(jobs.size()), *gpu_codebooks_,
                         a.buf.view(), B * hd);
      const BlockArenaState st = block_arena_state(ctx_, a.buf.view());
      if (st.error == kCodecErrOverflow && attempt == 0) {
        a.used = a.buf.capacity();  // closed: the next arena takes every block of this launch
        continue;
      }
      check(st.error == 0, "compressed KV cache: the GPU encoder reported error flags ", st.error,
            " (", st.used, " bytes needed, ", a.buf.capacity(), " available)");
      bytes_[part] += st.used - a.used;
      blocks_[part] += jobs.size();
      block_bytes_ += int64_t(st.used - a.used);
      a.used = st.used;
      break;
    }
  }
  d_done_k_.upload(done_k_.data(), done_k_.size() * 4);
  d_done_v_.upload(done_v_.data(), done_v_.size() * 4);
}

int64_t KvCompCacheCuda::bytes() const {
  int64_t window = 0;
  for (int s = 0; s < shape_.n_seqs; ++s) window += (len_[s] - done_k_[s]) + (len_[s] - done_v_[s]);
  window *= int64_t(shape_.n_layers) * shape_.n_kv_heads * shape_.head_dim * 2;
  int64_t cb = 0;
  for (int part = 0; part < 2; ++part)
    if (built_part_[part])
      cb += int64_t(shape_.n_layers) * n_cb_heads() *
            (part == 0 ? codec_.k_alphabet() : codec_.v_alphabet());
  return block_bytes_ + cb + window;
}

int64_t KvCompCacheCuda::allocated_bytes() const {
  int64_t b = int64_t(ring_k_.bytes() + ring_v_.bytes() + index_k_.bytes() + index_v_.bytes());
  for (const auto& a : arenas_) b += int64_t(a.buf.capacity());
  return b + int64_t(scratch_k_.bytes() + scratch_v_.bytes());
}

KvStats KvCompCacheCuda::stats() const {
  KvStats st;
  st.compressed = true;
  const int L = shape_.n_layers, S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  for (int part = 0; part < 2; ++part) {
    const DeviceBuffer& index = part == 0 ? index_k_ : index_v_;
    const int64_t n = int64_t(L) * S * KV * (part == 0 ? max_kb_ : max_vb_);
    DeviceBuffer hdrs(size_t(n) * sizeof(BlockHeader), "block headers");
    gather_headers_kernel<<<int((n + 255) / 256), 256, 0, ctx_.stream()>>>(
        index.as<const uint8_t*>(), n, hdrs.as<BlockHeader>());
    KVCOMP_LAUNCH_CHECK();
    std::vector<BlockHeader> h(static_cast<size_t>(n));
    hdrs.download(h.data(), h.size() * sizeof(BlockHeader));
    CodecBytes& cb = part == 0 ? st.k : st.v;
    for (const auto& x : h)
      if (x.mode != 0) cb.add_header(x);
    if (built_part_[part])
      cb.codebooks +=
          uint64_t(L) * n_cb_heads() * (part == 0 ? codec_.k_alphabet() : codec_.v_alphabet());
  }
  for (int s = 0; s < S; ++s) {
    st.window_k_values += uint64_t(len_[s] - done_k_[s]) * L * KV * hd;
    st.window_v_values += uint64_t(len_[s] - done_v_[s]) * L * KV * hd;
  }
  return st;
}

bool KvCompCacheCuda::read(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const {
  const int KV = shape_.n_kv_heads, hd = shape_.head_dim, len = len_.at(seq);
  DeviceBuffer one(4, "sequence id");
  one.upload(&seq, 4);
  std::vector<StepLayout::Chunk> chunks = {{seq, 0, len, 0}};
  const int cap = decompress(layer, chunks, one.as<int>());
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

}  // namespace kvcomp
