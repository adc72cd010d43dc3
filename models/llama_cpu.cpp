#include "models/llama_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "compress/kv_cache_fixedbit_ref.h"
#include "compress/kv_cache_kvcomp_ref.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "runtime/kv_cache_ref.h"
#include "runtime/ops_ref.h"

namespace kvcomp {
namespace {

struct CpuLayer {
  std::vector<float> attn_norm;  // [hidden]
  std::vector<float> wq;         // [q_dim, hidden]
  std::vector<float> wk;         // [kv_dim, hidden]
  std::vector<float> wv;         // [kv_dim, hidden]
  std::vector<float> wo;         // [hidden, q_dim]
  std::vector<float> mlp_norm;   // [hidden]
  std::vector<float> w_gate;     // [inter, hidden]
  std::vector<float> w_up;       // [inter, hidden]
  std::vector<float> w_down;     // [hidden, inter]
};

class CpuEngine : public Engine {
 public:
  explicit CpuEngine(const ModelFiles& files) : cfg_(files.config) {
    const Checkpoint& ck = *files.checkpoint;
    auto load = [&](const std::string& name) { return tensor_to_float(ck.get(name)); };
    embed_ = load("model.embed_tokens.weight");
    norm_ = load("model.norm.weight");
    if (!cfg_.tie_word_embeddings) lm_head_ = load("lm_head.weight");
    layers_.resize(cfg_.n_layers);
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      CpuLayer& L = layers_[l];
      L.attn_norm = load(p + "input_layernorm.weight");
      L.wq = load(p + "self_attn.q_proj.weight");
      L.wk = load(p + "self_attn.k_proj.weight");
      L.wv = load(p + "self_attn.v_proj.weight");
      L.wo = load(p + "self_attn.o_proj.weight");
      L.mlp_norm = load(p + "post_attention_layernorm.weight");
      L.w_gate = load(p + "mlp.gate_proj.weight");
      L.w_up = load(p + "mlp.up_proj.weight");
      L.w_down = load(p + "mlp.down_proj.weight");
    }
    inv_freq_ = rope_inv_freq(cfg_);
  }

  const LlamaConfig& config() const override { return cfg_; }
  std::string device_name() const override {
    return "cpu (" + std::to_string(omp_get_max_threads()) + " threads)";
  }

  void start(int n_seqs, int max_tokens, const KvOptions& kv) override {
    check(n_seqs >= 1, "batch: expected at least one sequence");
    check(max_tokens >= 1, "context: expected at least one token");
    KvShape shape{cfg_.n_layers, n_seqs, cfg_.n_heads, cfg_.n_kv_heads, cfg_.head_dim};
    blocked_ = nullptr;
    switch (kv.mode) {
      case KvMode::kFp32:
        cache_ = std::make_unique<DenseKvCacheRef>(shape, false);
        break;
      case KvMode::kFp16:
      case KvMode::kFp16Cublas:  // the attention kernel is a GPU choice; the values are the same
        cache_ = std::make_unique<DenseKvCacheRef>(shape, true);
        break;
      case KvMode::kKvcomp:
      case KvMode::kKvcompUnfused:
      case KvMode::kKvcompFixed: {
        // One compressed cache for both: fused or not is a choice of GPU kernels, the values
        // attention reads are the same.
        auto c = std::make_unique<KvCompCacheRef>(shape, kv);
        blocked_ = c.get();
        cache_ = std::move(c);
        break;
      }
      case KvMode::kKivi2:
      case KvMode::kKivi4:
      case KvMode::kInt8:
      case KvMode::kFp8: {
        auto c = std::make_unique<FixedBitCacheRef>(shape, kv);
        blocked_ = c.get();
        cache_ = std::move(c);
        break;
      }
      default:
        fail("--kv ", kv_mode_name(kv.mode), ": not available on the CPU");
    }
    len_.assign(n_seqs, 0);
    max_tokens_ = max_tokens;
    q_.assign(keep_q_ ? cfg_.n_layers : 0, std::vector<std::vector<float>>(n_seqs));
  }

  void keep_queries(bool on) override { keep_q_ = on; }
  bool read_q(int layer, int seq, std::vector<float>& q) const override {
    if (!keep_q_) return false;
    check(layer >= 0 && layer < int(q_.size()) && seq >= 0 && seq < int(len_.size()),
          "read_q: layer ", layer, " or sequence ", seq, " out of range (start() first)");
    q = q_[layer][seq];
    return true;
  }

  void forward(const std::vector<SeqChunk>& chunks, bool all_logits,
               std::vector<float>& logits) override {
    std::vector<float> x;
    run_layers(chunks, x);
    const int H = cfg_.hidden_size, V = cfg_.vocab_size;
    std::vector<int> rows;
    int at = 0;
    for (const auto& c : chunks) {
      const int n = int(c.tokens.size());
      if (all_logits)
        for (int i = 0; i < n; ++i) rows.push_back(at + i);
      else
        rows.push_back(at + n - 1);
      at += n;
    }
    std::vector<float> xs(size_t(rows.size()) * H);
    for (size_t r = 0; r < rows.size(); ++r)
      std::copy_n(x.data() + size_t(rows[r]) * H, H, xs.data() + r * H);
    logits.resize(rows.size() * size_t(V));
    matmul_ref(xs.data(), head(), int(rows.size()), H, V, logits.data());
  }

  void forward_nll(const std::vector<SeqChunk>& chunks, const std::vector<int>& targets,
                   std::vector<double>& nll) override {
    std::vector<float> x;
    run_layers(chunks, x);
    const int H = cfg_.hidden_size, V = cfg_.vocab_size;
    const int64_t T = int64_t(x.size() / H);
    check(int64_t(targets.size()) == T, "forward_nll: expected one target per token");
    nll.assign(T, 0.0);
    // Logits in slices of rows, so memory stays small for large vocabularies.
    constexpr int64_t kRows = 64;
    std::vector<float> logits(size_t(kRows) * V);
    for (int64_t r0 = 0; r0 < T; r0 += kRows) {
      const int64_t nr = std::min(kRows, T - r0);
      matmul_ref(x.data() + r0 * H, head(), int(nr), H, V, logits.data());
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nr; ++i) {
        const int t = targets[r0 + i];
        if (t < 0) continue;
        check(t < V, "forward_nll: target ", t, " is outside the vocabulary");
        nll[r0 + i] = nll_ref(logits.data() + i * V, V, t);
      }
    }
  }

  int nonfinite_layer() const override { return nonfinite_layer_; }
  int length(int seq) const override {
    return len_.at(seq);
  }
  int64_t kv_bytes() const override {
    return cache_ ? cache_->bytes() : 0;
  }
  int64_t kv_bytes_reserved() const override {
    return cache_ ? cache_->reserved_bytes() : 0;
  }
  KvStats kv_stats() const override {
    if (blocked_) return blocked_->stats();
    return KvStats{};
  }

  bool read_kv(int layer, int seq, std::vector<float>& k, std::vector<float>& v) const override {
    check(cache_ != nullptr, "engine: start() must come before read_kv()");
    check(layer >= 0 && layer < cfg_.n_layers, "read_kv: layer ", layer, " outside 0..",
          cfg_.n_layers - 1);
    check(seq >= 0 && seq < int(len_.size()), "read_kv: sequence ", seq, " outside the batch of ",
          len_.size());
    return cache_->read(layer, seq, k, v);
  }

 private:
  const float* head() const {
    return cfg_.tie_word_embeddings ? embed_.data() : lm_head_.data();
  }

  // Runs every layer over all chunks' tokens; x ends as the final-normed hidden states.
  void run_layers(const std::vector<SeqChunk>& chunks, std::vector<float>& x) {
    check(cache_ != nullptr, "engine: start() must come before forward()");
    check_step(cfg_, len_, max_tokens_, chunks);
    const int H = cfg_.hidden_size, QD = cfg_.q_dim(), KD = cfg_.kv_dim();
    const int I = cfg_.intermediate_size, hd = cfg_.head_dim;
    std::vector<int> ids, pos;
    for (const auto& c : chunks)
      for (size_t i = 0; i < c.tokens.size(); ++i) {
        ids.push_back(c.tokens[i]);
        pos.push_back(len_[c.seq] + int(i));
      }
    const int T = int(ids.size());
    x.resize(size_t(T) * H);
    std::vector<float> h(size_t(T) * H), q(size_t(T) * QD), k(size_t(T) * KD), v(size_t(T) * KD);
    std::vector<float> att(size_t(T) * QD), o(size_t(T) * H);
    std::vector<float> g(size_t(T) * I), u(size_t(T) * I);
    embedding_ref(embed_.data(), ids.data(), T, H, x.data());
    nonfinite_layer_ = -1;
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const CpuLayer& L = layers_[l];
      rmsnorm_ref(x.data(), L.attn_norm.data(), T, H, cfg_.rms_norm_eps, h.data());
      matmul_ref(h.data(), L.wq.data(), T, H, QD, q.data());
      matmul_ref(h.data(), L.wk.data(), T, H, KD, k.data());
      matmul_ref(h.data(), L.wv.data(), T, H, KD, v.data());
      rope_ref(q.data(), pos.data(), T, cfg_.n_heads, hd, inv_freq_.data());
      rope_ref(k.data(), pos.data(), T, cfg_.n_kv_heads, hd, inv_freq_.data());
      int at = 0;
      for (const auto& c : chunks) {
        const int n = int(c.tokens.size());
        cache_->append(l, c.seq, k.data() + size_t(at) * KD, v.data() + size_t(at) * KD, n);
        cache_->attend(l, c.seq, q.data() + size_t(at) * QD, n, att.data() + size_t(at) * QD);
        if (keep_q_)
          q_[l][c.seq].insert(q_[l][c.seq].end(), q.begin() + int64_t(at) * QD,
                              q.begin() + int64_t(at + n) * QD);
        at += n;
      }
      matmul_ref(att.data(), L.wo.data(), T, QD, H, o.data());
      add_ref(x.data(), o.data(), int64_t(T) * H);
      rmsnorm_ref(x.data(), L.mlp_norm.data(), T, H, cfg_.rms_norm_eps, h.data());
      matmul_ref(h.data(), L.w_gate.data(), T, H, I, g.data());
      matmul_ref(h.data(), L.w_up.data(), T, H, I, u.data());
      swiglu_ref(g.data(), u.data(), int64_t(T) * I, g.data());
      matmul_ref(g.data(), L.w_down.data(), T, I, H, o.data());
      add_ref(x.data(), o.data(), int64_t(T) * H);
      // One pass over the layer's output (small against its matmuls): where a run's NaN or
      // infinity first appears, for the error that stops it.
      if (nonfinite_layer_ < 0 &&
          !std::all_of(x.begin(), x.end(), [](float v) { return std::isfinite(v); }))
        nonfinite_layer_ = l;
    }
    rmsnorm_ref(x.data(), norm_.data(), T, H, cfg_.rms_norm_eps, x.data());
    for (const auto& c : chunks) len_[c.seq] += int(c.tokens.size());
    cache_->commit();
  }

  LlamaConfig cfg_;
  int nonfinite_layer_ = -1;
  std::vector<float> embed_;    // [vocab, hidden]
  std::vector<float> norm_;     // [hidden]
  std::vector<float> lm_head_;  // [vocab, hidden]; empty when tied to embed_
  std::vector<CpuLayer> layers_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  std::unique_ptr<KvCacheRef> cache_;
  BlockedKvCacheRef* blocked_ = nullptr;  // cache_ when it is compressed (kvcomp or fixed-bit)
  std::vector<int> len_;                  // [n_seqs] tokens per sequence
  bool keep_q_ = false;
  std::vector<std::vector<std::vector<float>>> q_;  // [layer][seq] queries, keep_queries()
  int max_tokens_ = 0;
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(const ModelFiles& files) {
  return std::make_unique<CpuEngine>(files);
}

}  // namespace kvcomp
