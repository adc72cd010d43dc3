// The tensors a Llama checkpoint must hold, derived from its config, and the check that a
// checkpoint holds exactly those (by name, shape and dtype) before anything is loaded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/config.h"
#include "models/safetensors.h"

namespace kvcomp {

struct TensorSpec {
  std::string name;            // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // HF layout: Linear weights are [out_features, in_features]
};

// embed_tokens [vocab, hidden]; per layer: input_layernorm [hidden], q_proj [q_dim, hidden],
// k_proj/v_proj [kv_dim, hidden], o_proj [hidden, q_dim], post_attention_layernorm [hidden],
// gate_proj/up_proj [inter, hidden], down_proj [hidden, inter]; model.norm [hidden];
// lm_head [vocab, hidden] unless the embeddings are tied.
std::vector<TensorSpec> llama_tensor_specs(const LlamaConfig& cfg);

// Throws Error naming the directory, the tensor and what was expected when a tensor is
// missing, has the wrong shape or an unsupported dtype.
void check_llama_tensors(const LlamaConfig& cfg, const Checkpoint& ckpt);

// The checkpoint's tensors that config.json's model does not use (sorted), for a warning such as
// Hugging Face's "weights not used": extra layers, an lm_head beside tied embeddings, another
// family's tensors. RoPE's stored inverse frequencies (self_attn.rotary_emb.inv_freq, written by
// older exports and recomputed from the config) are not counted.
std::vector<std::string> unused_llama_tensors(const LlamaConfig& cfg, const Checkpoint& ckpt);

// One line naming them (the first few and how many more), or "" when every tensor is used.
std::string unused_tensors_warning(const std::string& dir, const std::vector<std::string>& unused);

}  // namespace kvcomp
