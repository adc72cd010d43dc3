#include "models/llama_tensors.h"

#include "runtime/error.h"

namespace kvcomp {

std::vector<TensorSpec> llama_tensor_specs(const LlamaConfig& cfg) {
  const int64_t vocab = cfg.vocab_size, hidden = cfg.hidden_size, inter = cfg.intermediate_size;
  const int64_t q_dim = cfg.q_dim(), kv_dim = cfg.kv_dim();
  std::vector<TensorSpec> specs;
  specs.reserve(size_t(cfg.n_layers) * 9 + 3);
  specs.push_back({"model.embed_tokens.weight", {vocab, hidden}});
  for (int l = 0; l < cfg.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", {hidden}});
    specs.push_back({p + "self_attn.q_proj.weight", {q_dim, hidden}});
    specs.push_back({p + "self_attn.k_proj.weight", {kv_dim, hidden}});
    specs.push_back({p + "self_attn.v_proj.weight", {kv_dim, hidden}});
    specs.push_back({p + "self_attn.o_proj.weight", {hidden, q_dim}});
    specs.push_back({p + "post_attention_layernorm.weight", {hidden}});
    specs.push_back({p + "mlp.gate_proj.weight", {inter, hidden}});
    specs.push_back({p + "mlp.up_proj.weight", {inter, hidden}});
    specs.push_back({p + "mlp.down_proj.weight", {hidden, inter}});
  }
  specs.push_back({"model.norm.weight", {hidden}});
  if (!cfg.tie_word_embeddings) specs.push_back({"lm_head.weight", {vocab, hidden}});
  return specs;
}

void check_llama_tensors(const LlamaConfig& cfg, const Checkpoint& ckpt) {
  const std::string dir = ckpt.dir().string();
  const std::vector<TensorSpec> specs = llama_tensor_specs(cfg);

  // Report the first missing tensor and how many others are missing: a wholesale naming
  // mismatch (another model family, a quantized export) then reads as such.
  const TensorSpec* first_missing = nullptr;
  size_t n_missing = 0;
  for (const TensorSpec& s : specs) {
    if (ckpt.find(s.name)) continue;
    if (!first_missing) first_missing = &s;
    ++n_missing;
  }
  if (first_missing) {
    std::string more;
    if (n_missing > 1) more = " (and " + std::to_string(n_missing - 1) + " more missing)";
    std::string hint;
    if (first_missing->name == "lm_head.weight") {
      hint = "; config.json has tie_word_embeddings = false, so an lm_head is expected";
    }
    fail("model directory '", dir, "': tensor '", first_missing->name, "' is missing (expected ",
         shape_string(first_missing->shape), " from config.json)", more, hint);
  }

  for (const TensorSpec& s : specs) {
    const TensorInfo& t = *ckpt.find(s.name);
    check(t.shape == s.shape, "model directory '", dir, "': tensor '", s.name, "' in ", t.file,
          " has shape ", shape_string(t.shape), ", expected ", shape_string(s.shape),
          " from config.json");
    // The reader admits only dtypes the runtime converts; this guards against that set growing.
    check(t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16,
          "model directory '", dir, "': tensor '", s.name, "' has unsupported dtype ",
          dtype_name(t.dtype), " (supported: F32, F16, BF16)");
  }
}

}  // namespace kvcomp
