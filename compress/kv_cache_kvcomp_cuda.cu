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

// Arenas grow by 1/32 of the blocks held so far, within [8, 256] MiB (or what one launch
// needs): the unused tail of the newest arena, what the cache holds beyond its blocks, stays
// within ~3% of them once they pass 256 MiB.
constexpr uint64_t kArenaMin = uint64_t(8) << 20, kArenaMax = uint64_t(256) << 20;

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

// placed[i] = whether job i's block found room (its slot is not null).
__global__ void placed_kernel(const EncodeJob* jobs, int n, uint8_t* placed) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) placed[i] = *jobs[i].slot != nullptr;
}

// One block to copy into an arena (copy_blocks): its address, and the index entry of its copy.
struct CopyJob {
  const uint8_t* src;
  uint8_t** slot;
};

__global__ void block_sizes_kernel(const CopyJob* jobs, int n, unsigned long long* total) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    atomicAdd(total, (unsigned long long)reinterpret_cast<const BlockHeader*>(jobs[i].src)->block_bytes);
}

// One CTA per job: the block's bytes (a multiple of 4) at the arena's next free offset.
__global__ void copy_blocks_kernel(const CopyJob* jobs, BlockArena arena) {
  const CopyJob j = jobs[blockIdx.x];
  const uint32_t bytes = reinterpret_cast<const BlockHeader*>(j.src)->block_bytes;
  __shared__ unsigned long long off;
  if (threadIdx.x == 0) off = atomicAdd(arena.used, (unsigned long long)bytes);
  __syncthreads();
  if (off + bytes > arena.capacity) {
    if (threadIdx.x == 0) {
      *j.slot = nullptr;
      atomicOr(arena.error, kCodecErrOverflow);
    }
    return;
  }
  const uint32_t* src = reinterpret_cast<const uint32_t*>(j.src);
  uint32_t* dst = reinterpret_cast<uint32_t*>(arena.base + off);
  for (uint32_t i = threadIdx.x; i < bytes / 4; i += blockDim.x) dst[i] = src[i];
  if (threadIdx.x == 0) *j.slot = arena.base + off;
}

// The options, validated before BlockedKvCacheCuda uses their block and window sizes.
const KvOptions& checked(const KvOptions& opts, const KvShape& shape) {
  validate(opts);
  validate_codec_options(codec_options(opts));
  check(shape.head_dim == 64 || shape.head_dim == 128,
        "--kv kvcomp: the GPU cache supports head_dim 64 and 128, the model has ", shape.head_dim);
  check(!opts.codebook_per_head,
        "--codebook-per-head: available on the CPU (--device cpu); the GPU cache uses one "
        "codebook per layer and K|V");
  return opts;
}

}  // namespace

KvCompCacheCuda::KvCompCacheCuda(const CudaContext& ctx, const KvShape& shape, int max_tokens,
                                 const KvOptions& opts)
    : BlockedKvCacheCuda(ctx, shape, max_tokens, codec_options(checked(opts, shape)).block_k,
                         codec_options(opts).block_v, opts.window_k, opts.window_v, "kvcomp cache",
                         "KVComp"),
      opts_(opts),
      codec_(codec_options(opts)) {
  const int L = shape.n_layers, S = shape.n_seqs, KV = shape.n_kv_heads, hd = shape.head_dim;
  const size_t heads = size_t(L) * S * KV;
  index_k_ = DeviceBuffer(heads * max_kb_ * sizeof(void*), "the KVComp block index");
  index_v_ = DeviceBuffer(heads * max_vb_ * sizeof(void*), "the KVComp block index");
  index_k_.zero();
  index_v_.zero();
  err_ = DeviceBuffer(4, "codec flags");
  // Decode jobs of one layer for every sequence and block (the unfused path and prefill), so
  // that decode steps allocate nothing.
  decode_jobs_ =
      DeviceBuffer(size_t(S) * KV * (max_kb_ + max_vb_) * sizeof(DecodeJob), "decode jobs");
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
  // Placeholder codebooks (uniform) until the real ones are built from data; fixed-length codes
  // do not depend on the data and are final.
  codebooks_.reserve(size_t(L) * 2 * n_cb_heads());
  for (int l = 0; l < L; ++l)
    for (int part = 0; part < 2; ++part) {
      const int a = part == 0 ? codec_.k_alphabet() : codec_.v_alphabet();
      std::vector<uint64_t> ones(a, 1);
      for (int h = 0; h < n_cb_heads(); ++h) codebooks_.push_back(make_codebook(codec_, ones.data(), a));
    }
  built_.assign(size_t(2) * L, codec_.fixed_codes ? 1 : 0);
  upload_codebooks();
}

void KvCompCacheCuda::upload_codebooks() {
  gpu_codebooks_ = std::make_unique<GpuCodebooks>(codebooks_, /*replaceable=*/true);
}

void KvCompCacheCuda::decode_blocks(int layer, int n, const int* d_chunk_seq, int mk, int mv,
                                    int cap) const {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int n_jobs = n * KV * (mk + mv);
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

void KvCompCacheCuda::attend(int layer, const QkvView& x, const StepLayout& step, DType act,
                             void* out) {
  const int S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  const int n = int(step.chunks.size());
  if (step.decode && opts_.mode != KvMode::kKvcompUnfused) {  // fused
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
    p.k_fixed_bits = kc.fixed_bits;
    p.v_fixed_bits = vc.fixed_bits;
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
  BlockedKvCacheCuda::attend(layer, x, step, act, out);
}

KvCompCacheCuda::Arena& KvCompCacheCuda::arena_for(uint64_t expect_bytes) {
  if (arenas_.empty() || arenas_.back().buf.capacity() - arenas_.back().used < expect_bytes) {
    const uint64_t grow = std::clamp(uint64_t(block_bytes_) / 32, kArenaMin, kArenaMax);
    const uint64_t cap = std::max(grow, (expect_bytes + 255) / 256 * 256);
    Arena a;
    a.buf = BlockArenaBuffer(cap, "the compressed KV cache");
    block_arena_reset(ctx_, a.buf.view());
    arenas_.push_back(std::move(a));
  }
  return arenas_.back();
}

EncodeJob KvCompCacheCuda::job(int part, const BlockRows& r) const {
  const int hd = shape_.head_dim;
  EncodeJob j;
  j.src = r.cap > 0 ? r.src : r.src + size_t(r.first) * hd;
  j.row_stride = hd;
  j.ring_cap = r.cap;
  j.first = r.cap > 0 ? r.first % r.cap : 0;
  j.n_tokens = part == 0 ? codec_.block_k : codec_.block_v;
  j.head_dim = hd;
  j.kind = uint8_t(part == 0 ? codec_.k_kind() : codec_.v_kind());
  j.eb = part == 0 ? codec_.eb_k : codec_.eb_v;
  return j;
}

void KvCompCacheCuda::build_codebooks(int part, const std::vector<BlockRows>& present) {
  // One histogram per (layer, codebook head) of the blocks present, then the CPU codebooks.
  const int L = shape_.n_layers;
  const int alphabet = part == 0 ? codec_.k_alphabet() : codec_.v_alphabet();
  const int n_hist = L * n_cb_heads();
  std::vector<EncodeJob> jobs;
  std::vector<char> seen(size_t(L), 0);
  for (const BlockRows& r : present) {
    EncodeJob j = job(part, r);
    j.codebook = r.layer * n_cb_heads() + (codec_.codebook_per_head ? r.head : 0);
    jobs.push_back(j);
    seen[size_t(r.layer)] = 1;
  }
  hist_.ensure(size_t(n_hist) * kMaxAlphabet * 8, "codebook histograms");
  KVCOMP_CUDA_CHECK(cudaMemsetAsync(hist_.get(), 0, hist_.bytes(), ctx_.stream()));
  KVCOMP_CUDA_CHECK(cudaMemsetAsync(err_.get(), 0, 4, ctx_.stream()));
  if (!jobs.empty()) {
    jobs_.ensure(jobs.size() * sizeof(EncodeJob), "codec jobs");
    KVCOMP_CUDA_CHECK(cudaMemcpyAsync(jobs_.get(), jobs.data(), jobs.size() * sizeof(EncodeJob),
                                      cudaMemcpyHostToDevice, ctx_.stream()));
    histogram_blocks_cuda(ctx_, jobs_.as<EncodeJob>(), int(jobs.size()), alphabet,
                          hist_.as<unsigned long long>(), n_hist, err_.as<int>());
  }
  std::vector<unsigned long long> hist(size_t(n_hist) * kMaxAlphabet);
  KVCOMP_CUDA_CHECK(cudaMemcpyAsync(hist.data(), hist_.get(), hist.size() * 8,
                                    cudaMemcpyDeviceToHost, ctx_.stream()));
  ctx_.synchronize();
  for (int l = 0; l < L; ++l) {
    if (!seen[size_t(l)]) continue;
    for (int h = 0; h < n_cb_heads(); ++h) {
      std::vector<uint64_t> hh(alphabet);
      for (int a = 0; a < alphabet; ++a)
        hh[a] = hist[(size_t(l) * n_cb_heads() + h) * kMaxAlphabet + a];
      const int i = cb_index(part, l, h);
      codebooks_[size_t(i)] = make_codebook(codec_, hh.data(), alphabet);
      gpu_codebooks_->replace(i, codebooks_[size_t(i)]);
    }
    built_[size_t(part) * L + l] = 1;
  }
}

void KvCompCacheCuda::compress(int part, int layer, const std::vector<BlockRows>& blocks,
                               const std::vector<BlockRows>& present) {
  const int L = shape_.n_layers, S = shape_.n_seqs, KV = shape_.n_kv_heads, hd = shape_.head_dim;
  bool built = true;
  for (int l = 0; l < L; ++l)
    if (layer < 0 || l == layer) built &= built_[size_t(part) * L + l] != 0;
  if (!built) build_codebooks(part, present);
  const int B = part == 0 ? codec_.block_k : codec_.block_v;
  const int max_b = part == 0 ? max_kb_ : max_vb_;
  DeviceBuffer& index = part == 0 ? index_k_ : index_v_;
  const BlockKind kind = part == 0 ? codec_.k_kind() : codec_.v_kind();
  std::vector<EncodeJob> jobs;
  jobs.reserve(blocks.size());
  for (const BlockRows& r : blocks) {
    EncodeJob j = job(part, r);
    const size_t head = (size_t(r.layer) * S + r.seq) * KV + r.head;
    j.codebook = cb_index(part, r.layer, r.head);
    j.slot = index.as<uint8_t*>() + head * max_b + r.block;
    jobs.push_back(j);
  }
  // Into the newest arena while it has room; blocks that do not fit (the encoder leaves their
  // slots null) are encoded again into a new arena sized for them, so an arena's unused tail is
  // less than one block.
  const uint64_t worst_one = worst_block_bytes(kind, B, hd, gpu_codebooks_->max_len());
  Arena* a = &arena_for(worst_one);
  uint64_t launch_bytes = 0;
  for (int attempt = 0;; ++attempt) {
    jobs_.ensure(jobs.size() * sizeof(EncodeJob), "codec jobs");
    KVCOMP_CUDA_CHECK(cudaMemcpyAsync(jobs_.get(), jobs.data(), jobs.size() * sizeof(EncodeJob),
                                      cudaMemcpyHostToDevice, ctx_.stream()));
    encode_blocks_cuda(ctx_, jobs_.as<EncodeJob>(), int(jobs.size()), *gpu_codebooks_,
                       a->buf.view(), B * hd);
    const BlockArenaState st = block_arena_state(ctx_, a->buf.view());
    const uint64_t asked = st.used - a->used;
    check((st.error & ~kCodecErrOverflow) == 0 && (st.error == 0 || attempt == 0),
          "compressed KV cache: the GPU encoder reported error flags ", st.error, " (",
          asked, " bytes needed, ", a->buf.capacity() - a->used, " available)");
    if (attempt == 0) launch_bytes = asked;  // the blocks take the same bytes wherever they go
    if (st.error == 0) {
      a->used = st.used;
      break;
    }
    // The blocks left out, into a new arena: they need at most what was asked past the end of
    // this one, plus the block that straddled it.
    placed_.ensure(jobs.size(), "codec jobs");
    placed_kernel<<<int((jobs.size() + 255) / 256), 256, 0, ctx_.stream()>>>(
        jobs_.as<EncodeJob>(), int(jobs.size()), placed_.as<uint8_t>());
    KVCOMP_LAUNCH_CHECK();
    std::vector<uint8_t> placed(jobs.size());
    placed_.download(placed.data(), placed.size());
    std::vector<EncodeJob> rest;
    for (size_t i = 0; i < jobs.size(); ++i)
      if (!placed[i]) rest.push_back(jobs[i]);
    jobs.swap(rest);
    const uint64_t need = st.used - a->buf.capacity() + worst_one;
    a->used = a->buf.capacity();  // closed
    a = &arena_for(need);
  }
  block_bytes_ += int64_t(launch_bytes);
}

void KvCompCacheCuda::copy_blocks(int from, int to) {
  const int L = shape_.n_layers, S = shape_.n_seqs, KV = shape_.n_kv_heads;
  for (int part = 0; part < 2; ++part) {
    const int max_b = part == 0 ? max_kb_ : max_vb_;
    const int n_b = (part == 0 ? done_k_ : done_v_)[from] / (part == 0 ? codec_.block_k
                                                                       : codec_.block_v);
    if (n_b == 0) continue;
    DeviceBuffer& index = part == 0 ? index_k_ : index_v_;
    std::vector<CopyJob> jobs;
    std::vector<uint8_t*> row(size_t(KV) * max_b);
    for (int l = 0; l < L; ++l) {
      const size_t at = (size_t(l) * S + from) * KV * max_b;
      index.download(row.data(), row.size() * sizeof(uint8_t*), at * sizeof(uint8_t*));
      for (int g = 0; g < KV; ++g)
        for (int b = 0; b < n_b; ++b) {
          const uint8_t* src = row[size_t(g) * max_b + b];
          check(src != nullptr, "kvcomp cache: block ", b, " of layer ", l, " head ", g,
                " of sequence ", from, " is missing");
          jobs.push_back({src, index.as<uint8_t*>() + ((size_t(l) * S + to) * KV + g) * max_b + b});
        }
    }
    DeviceBuffer d_jobs(jobs.size() * sizeof(CopyJob), "block copy jobs");
    d_jobs.upload(jobs.data(), jobs.size() * sizeof(CopyJob));
    DeviceBuffer d_total(8, "block copy size");
    d_total.zero();
    const int n = int(jobs.size());
    block_sizes_kernel<<<(n + 255) / 256, 256, 0, ctx_.stream()>>>(
        d_jobs.as<CopyJob>(), n, d_total.as<unsigned long long>());
    KVCOMP_LAUNCH_CHECK();
    uint64_t total = 0;
    d_total.download(&total, 8);
    Arena& a = arena_for(total);
    copy_blocks_kernel<<<n, 256, 0, ctx_.stream()>>>(d_jobs.as<CopyJob>(), a.buf.view());
    KVCOMP_LAUNCH_CHECK();
    const BlockArenaState st = block_arena_state(ctx_, a.buf.view());
    check(st.error == 0, "kvcomp cache: copying sequence ", from, "'s blocks failed (flags ",
          st.error, ", ", st.used - a.used, " bytes needed, ", a.buf.capacity() - a.used, " free)");
    block_bytes_ += int64_t(st.used - a.used);
    a.used = st.used;
  }
}

int64_t KvCompCacheCuda::bytes() const {
  const int64_t window =
      int64_t(window_tokens()) * shape_.n_layers * shape_.n_kv_heads * shape_.head_dim * 2;
  int64_t cb = 0;
  for (int part = 0; part < 2; ++part)
    cb += int64_t(built_layers(part)) * n_cb_heads() *
          (part == 0 ? codec_.k_alphabet() : codec_.v_alphabet());
  return block_bytes_ + cb + window;
}

int64_t KvCompCacheCuda::reserved_bytes() const {
  int64_t b = BlockedKvCacheCuda::reserved_bytes();
  for (const DeviceBuffer* x : std::initializer_list<const DeviceBuffer*>{
           &index_k_, &index_v_, &jobs_, &hist_, &err_, &placed_, &decode_jobs_,
           &fused_scratch_})
    b += int64_t(x->bytes());
  if (gpu_codebooks_) b += gpu_codebooks_->reserved_bytes();
  for (const auto& a : arenas_) b += int64_t(a.buf.reserved_bytes());
  return b;
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
    cb.codebooks += uint64_t(built_layers(part)) * n_cb_heads() *
                    (part == 0 ? codec_.k_alphabet() : codec_.v_alphabet());
  }
  for (int s = 0; s < S; ++s) {
    st.window_k_values += uint64_t(len_[s] - done_k_[s]) * L * KV * hd;
    st.window_v_values += uint64_t(len_[s] - done_v_[s]) * L * KV * hd;
  }
  return st;
}

}  // namespace kvcomp
