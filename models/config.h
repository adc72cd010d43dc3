// Hugging Face config.json for LlamaForCausalLM / MistralForCausalLM, in every form real
// checkpoints use. Anything the runtime cannot run faithfully is rejected here, by name.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kvcomp {

enum class RopeType { kDefault, kLinear, kLlama3 };

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  float theta = 10000.0f;
  float factor = 1.0f;                          // linear and llama3
  float low_freq_factor = 1.0f;                 // llama3
  float high_freq_factor = 4.0f;                // llama3
  int original_max_position_embeddings = 8192;  // llama3
};

struct LlamaConfig {
  std::string architecture;  // "LlamaForCausalLM" or "MistralForCausalLM"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // == n_heads without grouped-query attention
  int head_dim = 0;    // explicit, or hidden_size / n_heads
  int max_position_embeddings = 0;
  int sliding_window = 0;  // Mistral; 0 = none. Contexts longer than it are rejected.
  float rms_norm_eps = 1e-6f;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  int bos_token_id = -1;           // -1: none
  std::vector<int> eos_token_ids;  // may be empty
  std::string torch_dtype;         // as written in the config ("bfloat16", ...), may be empty

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int group_size() const { return n_heads / n_kv_heads; }
  // Parameters of the model as loaded (embedding counted once when tied).
  int64_t n_params() const;
  // Bytes of K and V per token over all layers at 2 bytes per value.
  int64_t kv_bytes_per_token_fp16() const { return int64_t(2) * n_layers * kv_dim() * 2; }
};

// Parses config.json text; `source` names the file in error messages.
LlamaConfig parse_llama_config(const std::string& json_text, const std::string& source);
// Reads DIR/config.json.
LlamaConfig load_llama_config(const std::filesystem::path& model_dir);

// RoPE inverse frequencies [head_dim / 2] with the configured scaling rule applied
// (linear: divided by factor; llama3: Llama-3.1's wavelength-dependent rule).
std::vector<float> rope_inv_freq(const LlamaConfig& cfg);

}  // namespace kvcomp
