// libFuzzer target for the parsers that read untrusted model files: the safetensors header,
// model.safetensors.index.json and config.json. The contract under test: any input either parses or throws kvcomp::Error;
// nothing else escapes (another exception type aborts the run), and nothing reads out of bounds
// or overflows (ASan/UBSan abort the run).
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/config.h"
#include "models/llama_tensors.h"
#include "models/safetensors.h"
#include "runtime/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  // The input as a header at its usual place (after the 8-byte length), in files whose data
  // sections are empty, small and large, so that offsets land both in and out of range.
  const size_t data_offset = 8 + size;
  for (size_t data_size : {size_t(0), size_t(4096), size_t(1) << 40}) {
    try {
      const auto tensors = kvcomp::parse_safetensors_header(
          text, nullptr, data_offset, data_offset + data_size, "fuzz.safetensors");
      for (const auto& [name, t] : tensors) {
        // Accepted entries are consistent: in range and sized by their shape.
        if (t.data != nullptr || t.nbytes > data_size ||
            uint64_t(t.numel()) * kvcomp::dtype_size(t.dtype) != t.nbytes) {
          __builtin_trap();
        }
      }
    } catch (const kvcomp::Error&) {
    }
  }

  try {
    // The sharded checkpoint's index: every accepted shard name is a plain file name.
    for (const auto& [tensor, shard] : kvcomp::parse_weight_map(text, "fuzz/index.json"))
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        __builtin_trap();
  } catch (const kvcomp::Error&) {
  }

  try {
    const kvcomp::LlamaConfig cfg = kvcomp::parse_llama_config(text, "fuzz/config.json");
    // Whatever parses must be usable: derived sizes, RoPE tables and tensor specs.
    (void)cfg.n_params();
    (void)cfg.kv_bytes_per_token_fp16();
    if (cfg.n_heads % cfg.n_kv_heads != 0 || cfg.head_dim % 2 != 0) __builtin_trap();
    const std::vector<float> inv_freq = kvcomp::rope_inv_freq(cfg);
    if (inv_freq.size() != size_t(cfg.head_dim / 2)) __builtin_trap();
    if (cfg.n_layers <= 64) (void)kvcomp::llama_tensor_specs(cfg);
  } catch (const kvcomp::Error&) {
  }
  return 0;
}
