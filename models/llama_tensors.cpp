#include "models/llama_tensors.h"

#include <algorithm>
#include <set>

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

  // A NaN or infinity in a weight poisons every token after it (the output would be silent
  // garbage): rejected at load, with its position. One pass over the weights, the tensors shared
  // among the host's cores.
  std::vector<int64_t> bad(specs.size(), -1);
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < specs.size(); ++i) bad[i] = first_nonfinite(*ckpt.find(specs[i].name));
  for (size_t i = 0; i < specs.size(); ++i) {
    if (bad[i] < 0) continue;
    const TensorInfo& t = *ckpt.find(specs[i].name);
    const int64_t cols = t.shape.size() == 2 ? t.shape[1] : 0;
    std::string at = "element " + std::to_string(bad[i]);
    if (cols > 0)
      at += " (row " + std::to_string(bad[i] / cols) + ", column " + std::to_string(bad[i] % cols) +
            ")";
    fail("model directory '", dir, "': tensor '", specs[i].name, "' in ", t.file,
         " holds a NaN or infinity at ", at, "; the checkpoint is damaged");
  }
}

std::vector<std::string> unused_llama_tensors(const LlamaConfig& cfg, const Checkpoint& ckpt) {
  std::set<std::string> used;
  for (const TensorSpec& s : llama_tensor_specs(cfg)) used.insert(s.name);
  const std::string inv_freq = ".self_attn.rotary_emb.inv_freq";
  std::vector<std::string> out;
  for (const auto& [name, t] : ckpt.tensors()) {
    const bool rope = name.size() > inv_freq.size() &&
                      name.compare(name.size() - inv_freq.size(), inv_freq.size(), inv_freq) == 0;
    if (!used.count(name) && !rope) out.push_back(name);
  }
  return out;  // the index is a std::map: sorted
}

std::string unused_tensors_warning(const std::string& dir, const std::vector<std::string>& unused) {
  if (unused.empty()) return "";
  std::string s = "model directory '" + dir + "': " + std::to_string(unused.size()) +
                  (unused.size() == 1 ? " tensor is" : " tensors are") +
                  " not used by the model config.json describes (";
  const size_t shown = std::min<size_t>(unused.size(), 3);
  for (size_t i = 0; i < shown; ++i) s += (i ? ", '" : "'") + unused[i] + "'";
  if (unused.size() > shown) s += " and " + std::to_string(unused.size() - shown) + " more";
  return s + "); check num_hidden_layers and tie_word_embeddings";
}

}  // namespace kvcomp
