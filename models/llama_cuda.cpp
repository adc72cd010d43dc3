#include "models/llama_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "compress/kv_cache_fixedbit_cuda.h"
#include "compress/kv_cache_kvcomp_cuda.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_context.h"
#include "runtime/device_buffer.h"
#include "runtime/gemm.h"
#include "runtime/half.h"
#include "runtime/kv_cache_cuda.h"
#include "runtime/nvtx.h"
#include "runtime/ops_cuda.h"

namespace kvcomp {
namespace {

struct GpuLayer {
  DeviceBuffer attn_norm;  // [hidden]
  DeviceBuffer wqkv;       // [q_dim + 2 kv_dim, hidden]: q_proj, k_proj, v_proj rows
  DeviceBuffer wo;         // [hidden, q_dim]
  DeviceBuffer mlp_norm;   // [hidden]
  DeviceBuffer w_gate_up;  // [2 inter, hidden]: gate_proj and up_proj rows, interleaved in
                           // groups of kGateUpGroup when inter allows (interleave_gate_up)
  DeviceBuffer w_down;     // [hidden, inter]
};

// Tensor data in the activation type: copied as is when the dtype matches, else converted.
std::vector<uint16_t> to_act(const TensorInfo& t, DType act) {
  std::vector<uint16_t> out(size_t(t.numel()));
  if (t.dtype == act) {
    std::memcpy(out.data(), t.data, t.nbytes);
    return out;
  }
  const std::vector<float> f = tensor_to_float(t);
  for (size_t i = 0; i < f.size(); ++i)
    out[i] = act == DType::kBF16 ? float_to_bf16(f[i]) : float_to_fp16(f[i]);
  return out;
}

class CudaEngine : public Engine {
 public:
  // Weights from a checkpoint.
  explicit CudaEngine(const ModelFiles& files) : cfg_(files.config) {
    const Checkpoint& ck = *files.checkpoint;
    const DType emb = ck.get("model.embed_tokens.weight").dtype;
    act_ = emb == DType::kF16 ? DType::kF16 : DType::kBF16;
    auto upload = [&](const std::vector<std::string>& names, const std::string& what) {
      size_t total = 0;
      for (const auto& n : names) total += size_t(ck.get(n).numel()) * 2;
      DeviceBuffer buf(total, what);
      size_t at = 0;
      for (const auto& n : names) {
        const auto data = to_act(ck.get(n), act_);
        buf.upload(data.data(), data.size() * 2, at);
        at += data.size() * 2;
      }
      return buf;
    };
    embed_ = upload({"model.embed_tokens.weight"}, "the embeddings");
    norm_ = upload({"model.norm.weight"}, "the final norm");
    if (!cfg_.tie_word_embeddings) lm_head_ = upload({"lm_head.weight"}, "lm_head");
    layers_.resize(cfg_.n_layers);
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      GpuLayer& L = layers_[l];
      L.attn_norm = upload({p + "input_layernorm.weight"}, "layer weights");
      L.wqkv = upload({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                       p + "self_attn.v_proj.weight"},
                      "layer weights");
      L.wo = upload({p + "self_attn.o_proj.weight"}, "layer weights");
      L.mlp_norm = upload({p + "post_attention_layernorm.weight"}, "layer weights");
      if (gate_up_interleaved()) {
        const auto gate = to_act(ck.get(p + "mlp.gate_proj.weight"), act_);
        const auto up = to_act(ck.get(p + "mlp.up_proj.weight"), act_);
        std::vector<uint16_t> both(gate.size() * 2);
        interleave_gate_up(gate.data(), up.data(), cfg_.intermediate_size, cfg_.hidden_size,
                           both.data());
        L.w_gate_up = DeviceBuffer(both.size() * 2, "layer weights");
        L.w_gate_up.upload(both.data(), both.size() * 2);
      } else {
        L.w_gate_up =
            upload({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, "layer weights");
      }
      L.w_down = upload({p + "mlp.down_proj.weight"}, "layer weights");
    }
    init_common();
  }

  // Random weights of the config's shape.
  CudaEngine(const LlamaConfig& cfg, uint64_t seed) : cfg_(cfg) {
    act_ = cfg.torch_dtype == "float16" ? DType::kF16 : DType::kBF16;
    const int H = cfg_.hidden_size, QD = cfg_.q_dim(), KD = cfg_.kv_dim();
    const int I = cfg_.intermediate_size, V = cfg_.vocab_size;
    uint64_t stream = seed * 1000003ull;
    // Uniform weights with std 0.02, unit norm weights: activations stay in range.
    const float a = 0.02f * std::sqrt(3.0f);
    auto random = [&](int64_t n, const std::string& what) {
      DeviceBuffer b(size_t(n) * 2, what);
      random_fill_cuda(ctx_, act_, b.get(), n, ++stream, a);
      return b;
    };
    auto ones = [&](int64_t n, const std::string& what) {
      DeviceBuffer b(size_t(n) * 2, what);
      fill_cuda(ctx_, act_, b.get(), n, 1.0f);
      return b;
    };
    embed_ = random(int64_t(V) * H, "the embeddings");
    norm_ = ones(H, "the final norm");
    if (!cfg_.tie_word_embeddings) lm_head_ = random(int64_t(V) * H, "lm_head");
    layers_.resize(cfg_.n_layers);
    for (auto& L : layers_) {
      L.attn_norm = ones(H, "layer weights");
      L.wqkv = random(int64_t(QD + 2 * KD) * H, "layer weights");
      L.wo = random(int64_t(H) * QD, "layer weights");
      L.mlp_norm = ones(H, "layer weights");
      L.w_gate_up = random(int64_t(2) * I * H, "layer weights");
      L.w_down = random(int64_t(H) * I, "layer weights");
    }
    ctx_.synchronize();
    init_common();
  }

  ~CudaEngine() override {
    for (auto& [key, g] : graphs_)
      if (g.exec) cudaGraphExecDestroy(g.exec);
  }

  const LlamaConfig& config() const override { return cfg_; }
  std::string device_name() const override { return "cuda (" + ctx_.name() + ")"; }

  void start(int n_seqs, int max_tokens, const KvOptions& kv) override {
    check(n_seqs >= 1, "batch: expected at least one sequence");
    check(max_tokens >= 1, "context: expected at least one token");
    cache_.reset();  // free the previous cache before allocating the next
    // and the step buffers, sized again by this batch's steps (a short batch after a long one
    // does not keep the long one's activations)
    for (DeviceBuffer* b : {&step_ints_, &x_, &h_, &qkv_, &gu_, &m_}) *b = DeviceBuffer();
    KvShape shape{cfg_.n_layers, n_seqs, cfg_.n_heads, cfg_.n_kv_heads, cfg_.head_dim};
    switch (kv.mode) {
      case KvMode::kFp16:
      case KvMode::kFp16Cublas:
        cache_ = std::make_unique<DenseKvCacheCuda>(ctx_, shape, max_tokens,
                                                    kv.mode == KvMode::kFp16Cublas);
        break;
      case KvMode::kKvcomp:
      case KvMode::kKvcompUnfused:
      case KvMode::kKvcompFixed:
        cache_ = std::make_unique<KvCompCacheCuda>(ctx_, shape, max_tokens, kv);
        break;
      case KvMode::kKivi2:
      case KvMode::kKivi4:
      case KvMode::kInt8:
      case KvMode::kFp8:
        cache_ = std::make_unique<FixedBitCacheCuda>(ctx_, shape, max_tokens, kv);
        break;
      default:
        fail("--kv ", kv_mode_name(kv.mode), ": not available on the GPU");
    }
    len_.assign(n_seqs, 0);
    max_tokens_ = max_tokens;
  }

  void forward(const std::vector<SeqChunk>& chunks, bool all_logits,
               std::vector<float>& logits) override {
    check(cache_ != nullptr, "engine: start() must come before forward()");
    check_step(cfg_, len_, max_tokens_, chunks);
    const int V = cfg_.vocab_size;
    logits.clear();
    for_each_step(chunks, [&](const std::vector<SeqChunk>& part, bool last) {
      NvtxRange range(part.size() == size_t(std::count_if(
                                         part.begin(), part.end(),
                                         [](const SeqChunk& c) { return c.tokens.size() == 1; }))
                          ? "decode step"
                          : "prefill");
      const StepLayout step = prepare(part);
      std::vector<int> rows;
      int at = 0;
      for (const auto& c : part) {
        const int n = int(c.tokens.size());
        if (all_logits)
          for (int i = 0; i < n; ++i) rows.push_back(at + i);
        else if (last)
          rows.push_back(at + n - 1);
        at += n;
      }
      const size_t base = logits.size();
      logits.resize(base + rows.size() * size_t(V));
      if (rows.size() <= kLogitRows) {
        // One slice: the head joins the layers (and the graph of a decode step).
        if (!rows.empty()) rows_.upload(rows.data(), rows.size() * 4);
        run_device(step, 0, [&] {
          layers(step);
          if (!rows.empty()) head_rows(int(rows.size()));
        });
        if (!rows.empty()) {
          KVCOMP_CUDA_CHECK(cudaMemcpyAsync(logits.data() + base, logits_.get(),
                                            rows.size() * V * 4, cudaMemcpyDeviceToHost,
                                            ctx_.stream()));
        }
        ctx_.synchronize();
      } else {
        layers(step);
        for (size_t r0 = 0; r0 < rows.size(); r0 += kLogitRows) {
          const int nr = int(std::min(kLogitRows, rows.size() - r0));
          rows_.upload(rows.data() + r0, size_t(nr) * 4);
          head_rows(nr);
          KVCOMP_CUDA_CHECK(cudaMemcpyAsync(logits.data() + base + r0 * V, logits_.get(),
                                            size_t(nr) * V * 4, cudaMemcpyDeviceToHost,
                                            ctx_.stream()));
          ctx_.synchronize();
        }
      }
      finish(part, step);
    });
  }

  void forward_nll(const std::vector<SeqChunk>& chunks, const std::vector<int>& targets,
                   std::vector<double>& nll) override {
    check(cache_ != nullptr, "engine: start() must come before forward()");
    check_step(cfg_, len_, max_tokens_, chunks);
    size_t total = 0;
    for (const auto& c : chunks) total += c.tokens.size();
    check(targets.size() == total, "forward_nll: expected one target per token");
    for (int t : targets)
      check(t < cfg_.vocab_size, "forward_nll: target ", t, " is outside the vocabulary");
    nll.clear();
    size_t target_at = 0;
    for_each_step(chunks, [&](const std::vector<SeqChunk>& part, bool) {
      NvtxRange range(part.size() * 1 == size_t(std::count_if(part.begin(), part.end(),
                                                              [](const SeqChunk& c) {
                                                                return c.tokens.size() == 1;
                                                              }))
                          ? "decode step"
                          : "prefill");
      const StepLayout step = prepare(part);
      const int T = step.n_tokens;
      std::vector<int> rows(T);
      for (int i = 0; i < T; ++i) rows[i] = i;
      std::vector<float> out(kLogitRows);
      for (int r0 = 0; r0 < T; r0 += int(kLogitRows)) {
        const int nr = std::min(int(kLogitRows), T - r0);
        rows_.upload(rows.data() + r0, size_t(nr) * 4);
        targets_.upload(targets.data() + target_at + r0, size_t(nr) * 4);
        auto head = [&] {
          head_rows(nr);
          nll_cuda(ctx_, logits_.as<float>(), targets_.as<int>(), nr, cfg_.vocab_size,
                   nll_.as<float>());
        };
        if (r0 == 0 && T <= int(kLogitRows)) {
          run_device(step, 1, [&] {
            layers(step);
            head();
          });
        } else {
          if (r0 == 0) layers(step);
          head();
        }
        KVCOMP_CUDA_CHECK(cudaMemcpyAsync(out.data(), nll_.get(), size_t(nr) * 4,
                                          cudaMemcpyDeviceToHost, ctx_.stream()));
        ctx_.synchronize();
        nll.insert(nll.end(), out.begin(), out.begin() + nr);
      }
      target_at += size_t(T);
      finish(part, step);
    });
  }

  int length(int seq) const override { return len_.at(seq); }
  int64_t kv_bytes() const override { return cache_ ? cache_->bytes() : 0; }
  int64_t kv_bytes_reserved() const override { return cache_ ? cache_->reserved_bytes() : 0; }
  void copy_sequence(int from, int to) override {
    check(cache_ != nullptr, "engine: start() must come before copy_sequence()");
    const int S = int(len_.size());
    check(from >= 0 && from < S && to >= 0 && to < S && from != to, "copy_sequence: sequences ",
          from, " -> ", to, " out of range (", S, ") or the same");
    check(len_[to] == 0, "copy_sequence: sequence ", to, " is not empty");
    cache_->copy_sequence(from, to);
    len_[to] = len_[from];
  }
  KvStats kv_stats() const override {
    if (const auto* c = dynamic_cast<const KvCompCacheCuda*>(cache_.get())) return c->stats();
    if (const auto* c = dynamic_cast<const FixedBitCacheCuda*>(cache_.get())) return c->stats();
    return KvStats{};
  }
  bool read_kv(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override {
    check(cache_ != nullptr, "engine: start() must come before read_kv()");
    check(layer >= 0 && layer < cfg_.n_layers && seq >= 0 && seq < int(len_.size()),
          "read_kv: layer ", layer, " or sequence ", seq, " out of range");
    ctx_.synchronize();
    return cache_->read(layer, seq, k, v);
  }

 private:
  static constexpr size_t kLogitRows = 512;    // logits computed per slice of rows
  static constexpr int kMaxStepTokens = 4096;  // longer prefills run in pieces

  void init_common() {
    inv_freq_ = DeviceBuffer(size_t(cfg_.head_dim / 2) * 4, "RoPE frequencies");
    const auto f = rope_inv_freq(cfg_);
    inv_freq_.upload(f.data(), f.size() * 4);
    logits_ = DeviceBuffer(kLogitRows * cfg_.vocab_size * 4, "logits");
    nll_ = DeviceBuffer(kLogitRows * 4, "log-likelihoods");
    targets_ = DeviceBuffer(kLogitRows * 4, "targets");
    head_in_ = DeviceBuffer(kLogitRows * cfg_.hidden_size * 2, "final hidden states");
    rows_ = DeviceBuffer(kLogitRows * 4, "row indices");
  }

  const void* head() const { return cfg_.tie_word_embeddings ? embed_.get() : lm_head_.get(); }

  // Splits a step with more than kMaxStepTokens tokens into consecutive pieces (each chunk's
  // tokens in order), so that activation scratch stays bounded; f(part, is_last_piece).
  template <typename F>
  void for_each_step(const std::vector<SeqChunk>& chunks, F&& f) {
    size_t total = 0, longest = 0;
    for (const auto& c : chunks) {
      total += c.tokens.size();
      longest = std::max(longest, c.tokens.size());
    }
    const size_t per_seq = size_t(cache_->max_step_tokens());
    if (total <= size_t(kMaxStepTokens) && longest <= per_seq) {
      f(chunks, true);
      return;
    }
    std::vector<size_t> done(chunks.size(), 0);
    for (;;) {
      std::vector<SeqChunk> part;
      size_t budget = kMaxStepTokens;
      for (size_t i = 0; i < chunks.size() && budget > 0; ++i) {
        const size_t left = chunks[i].tokens.size() - done[i];
        if (left == 0) continue;
        const size_t take = std::min({left, budget, per_seq});
        part.push_back(
            {chunks[i].seq, std::vector<int>(chunks[i].tokens.begin() + done[i],
                                             chunks[i].tokens.begin() + done[i] + take)});
        done[i] += take;
        budget -= take;
      }
      bool last = true;
      for (size_t i = 0; i < chunks.size(); ++i) last &= done[i] == chunks[i].tokens.size();
      f(part, last);
      if (last) return;
    }
  }

  // A forward step in three parts: prepare() does every host-side thing (the step layout and
  // its upload, buffer sizes, the cache's per-step state), layers() only enqueues device work
  // (so that a decode step can be captured into a CUDA graph and replayed), finish() updates the
  // lengths and lets the cache compress what left its window.
  StepLayout prepare(const std::vector<SeqChunk>& chunks) {
    const int H = cfg_.hidden_size, QD = cfg_.q_dim(), KD = cfg_.kv_dim();
    const int I = cfg_.intermediate_size;
    const int QKV = QD + 2 * KD;
    StepLayout step;
    std::vector<int> host;  // [ids T][pos T][seq T][chunk_start C][chunk_seq C]
    int T = 0;
    for (const auto& c : chunks) {
      step.chunks.push_back({c.seq, len_[c.seq], int(c.tokens.size()), T});
      T += int(c.tokens.size());
    }
    const int C = int(chunks.size());
    host.resize(size_t(3) * T + 2 * C);
    int r = 0;
    for (const auto& c : chunks)
      for (size_t i = 0; i < c.tokens.size(); ++i, ++r) {
        host[r] = c.tokens[i];
        host[T + r] = len_[c.seq] + int(i);
        host[2 * T + r] = c.seq;
      }
    for (int i = 0; i < C; ++i) {
      host[3 * T + i] = step.chunks[i].start;
      host[3 * T + C + i] = step.chunks[i].seq;
    }
    step.n_tokens = T;
    step.decode = T == C;
    // Sized for a full batch of decode steps at least, so that decode steps of any batch reuse
    // the same buffers (and captured graphs stay valid).
    const int Tc = std::max(T, int(len_.size()));
    step_ints_.ensure(size_t(5) * Tc * 4, "step layout");
    step_ints_.upload(host.data(), host.size() * 4);
    const int* ids = step_ints_.as<int>();
    step.pos = ids + T;
    step.seq = ids + 2 * T;
    step.chunk_start = ids + 3 * T;
    step.chunk_seq = ids + 3 * T + C;
    x_.ensure(size_t(Tc) * H * 4, "activations");
    h_.ensure(size_t(Tc) * std::max(H, QD) * 2, "activations");
    qkv_.ensure(size_t(Tc) * QKV * 4, "activations");
    gu_.ensure(size_t(Tc) * 2 * I * 4, "activations");
    m_.ensure(size_t(Tc) * I * 2, "activations");
    if (step.decode && graphs_enabled_) {
      // Attention of a decode step runs over a whole bucket of keys (the cache masks the rest),
      // so one captured graph serves kGraphKeyBucket consecutive steps.
      int longest = 0;
      for (const auto& c : step.chunks) longest = std::max(longest, c.start + 1);
      step.decode_keys = std::min(
          max_tokens_, (longest + kGraphKeyBucket - 1) / kGraphKeyBucket * kGraphKeyBucket);
    }
    cache_->begin_step(step);
    return step;
  }

  // Device work of all layers; leaves the residual stream in x_. Decode-shaped steps apply SwiGLU
  // in the gate/up GEMV's blocks (when fuse_swiglu_).
  void layers(const StepLayout& step) {
    const int H = cfg_.hidden_size, QD = cfg_.q_dim(), KD = cfg_.kv_dim();
    const int I = cfg_.intermediate_size;
    const int QKV = QD + 2 * KD, T = step.n_tokens;
    const float eps = cfg_.rms_norm_eps;
    const bool fuse_swiglu = fuse_swiglu_ && gemv_applies(act_, T, H) && gate_up_interleaved();
    embedding_cuda(ctx_, act_, embed_.get(), step_ints_.as<int>(), T, H, x_.as<float>());
    const QkvView view{qkv_.as<float>(), QKV, 0, QD, QD + KD};
    for (int l = 0; l < cfg_.n_layers; ++l) {
      NvtxRange layer_range("layer");
      const GpuLayer& L = layers_[l];
      rmsnorm_cuda(ctx_, act_, x_.as<float>(), L.attn_norm.get(), nullptr, T, H, eps, h_.get());
      linear_cuda(ctx_, act_, h_.get(), L.wqkv.get(), T, H, QKV, qkv_.as<float>());
      {
        NvtxRange r("cache append");  // with RoPE on q and k (one kernel for the fp16 cache)
        cache_->rope_append(l, view, step, inv_freq_.as<float>());
      }
      {
        NvtxRange r("attention");
        cache_->attend(l, view, step, act_, h_.get());
      }
      linear_cuda(ctx_, act_, h_.get(), L.wo.get(), T, QD, H, x_.as<float>(), 1.0f);
      rmsnorm_cuda(ctx_, act_, x_.as<float>(), L.mlp_norm.get(), nullptr, T, H, eps, h_.get());
      if (fuse_swiglu) {
        gemv_swiglu_cuda(ctx_, act_, h_.get(), L.w_gate_up.get(), T, H, I, m_.get());
      } else {
        linear_cuda(ctx_, act_, h_.get(), L.w_gate_up.get(), T, H, 2 * I, gu_.as<float>());
        swiglu_cuda(ctx_, act_, gu_.as<float>(), T, I, m_.get(), gate_up_interleaved());
      }
      linear_cuda(ctx_, act_, m_.get(), L.w_down.get(), T, I, H, x_.as<float>(), 1.0f);
    }
  }

  // Whether w_gate_up is stored in interleave_gate_up's order.
  bool gate_up_interleaved() const { return cfg_.intermediate_size % kGateUpGroup == 0; }

  void finish(const std::vector<SeqChunk>& chunks, const StepLayout& step) {
    for (const auto& c : chunks) len_[c.seq] += int(c.tokens.size());
    cache_->commit(step);
  }

  // Runs f (device work only). A decode step is captured into a CUDA graph the first time its
  // key is seen and replayed afterwards, while no device buffer has been allocated or freed
  // since the capture. KVCOMP_NO_GRAPHS=1 turns this off (e.g. to see every kernel's NVTX
  // range in Nsight).
  template <typename F>
  void run_device(const StepLayout& step, int head_mode, F&& f) {
    if (!step.decode || !graphs_enabled_ || !cache_->graph_safe()) {
      f();
      return;
    }
    const uint64_t key =
        (uint64_t(step.n_tokens) << 40) | (uint64_t(step.decode_keys) << 8) | uint64_t(head_mode);
    Graph& g = graphs_[key];
    if (g.exec && g.epoch != device_alloc_epoch()) {
      cudaGraphExecDestroy(g.exec);
      g.exec = nullptr;
    }
    if (!g.exec) {
      cudaGraph_t graph = nullptr;
      KVCOMP_CUDA_CHECK(cudaStreamBeginCapture(ctx_.stream(), cudaStreamCaptureModeRelaxed));
      try {
        f();
      } catch (...) {
        cudaStreamEndCapture(ctx_.stream(), &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      KVCOMP_CUDA_CHECK(cudaStreamEndCapture(ctx_.stream(), &graph));
      const cudaError_t e = cudaGraphInstantiate(&g.exec, graph, 0);
      cudaGraphDestroy(graph);
      KVCOMP_CUDA_CHECK(e);
      g.epoch = device_alloc_epoch();
    }
    KVCOMP_CUDA_CHECK(cudaGraphLaunch(g.exec, ctx_.stream()));
  }

  // Final norm of rows_[0, n) of x_ and their logits into logits_ [n, vocab] (device work).
  void head_rows(int n) {
    rmsnorm_cuda(ctx_, act_, x_.as<float>(), norm_.get(), rows_.as<int>(), n, cfg_.hidden_size,
                 cfg_.rms_norm_eps, head_in_.get());
    linear_cuda(ctx_, act_, head_in_.get(), head(), n, cfg_.hidden_size, cfg_.vocab_size,
                logits_.as<float>());
  }

  struct Graph {
    cudaGraphExec_t exec = nullptr;
    uint64_t epoch = 0;
  };
  static constexpr int kGraphKeyBucket = 256;
  bool graphs_enabled_ = std::getenv("KVCOMP_NO_GRAPHS") == nullptr;
  // KVCOMP_NO_FUSED_SWIGLU=1: decode steps run SwiGLU as a kernel of its own.
  bool fuse_swiglu_ = std::getenv("KVCOMP_NO_FUSED_SWIGLU") == nullptr;
  std::map<uint64_t, Graph> graphs_;

  CudaContext ctx_;
  LlamaConfig cfg_;
  DType act_ = DType::kBF16;
  DeviceBuffer embed_, norm_, lm_head_;  // [vocab, hidden], [hidden], [vocab, hidden]
  std::vector<GpuLayer> layers_;
  DeviceBuffer inv_freq_;  // [head_dim / 2] fp32
  std::unique_ptr<KvCacheCuda> cache_;
  std::vector<int> len_;
  int max_tokens_ = 0;
  // Per-step scratch, grown as needed.
  DeviceBuffer step_ints_;
  DeviceBuffer x_;    // [T, hidden] fp32 residual stream
  DeviceBuffer h_;    // [T, max(hidden, q_dim)] act: normed input / attention output
  DeviceBuffer qkv_;  // [T, q_dim + 2 kv_dim] fp32
  DeviceBuffer gu_;   // [T, 2 inter] fp32
  DeviceBuffer m_;    // [T, inter] act
  DeviceBuffer logits_, nll_, targets_, head_in_, rows_;
};

}  // namespace

std::unique_ptr<Engine> make_cuda_engine(const ModelFiles& files) {
  return std::make_unique<CudaEngine>(files);
}

std::unique_ptr<Engine> make_cuda_engine_random(const LlamaConfig& cfg, uint64_t seed) {
  return std::make_unique<CudaEngine>(cfg, seed);
}

}  // namespace kvcomp
