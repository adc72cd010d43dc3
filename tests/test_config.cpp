// config.json parsing: the forms real Llama/Mistral checkpoints ship (configs below are those of
// the named models, trimmed of fields the runtime ignores only where noted), the derived values,
// the RoPE frequency rules, and every rejection with the message that names what is wrong.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "models/config.h"
#include "runtime/error.h"
#include "runtime/units.h"
#include "tests/catch.h"

using namespace kvcomp;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("kvcomp_test_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

LlamaConfig parse(const std::string& json) {
  return parse_llama_config(json, "test/config.json");
}

const char* kLlama2_7B = R"({
  "_name_or_path": "meta-llama/Llama-2-7b-hf",
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 11008,
  "max_position_embeddings": 4096,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 32,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "transformers_version": "4.31.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

const char* kLlama3_8B = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 8192,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

// Llama-3.1-8B-Instruct (eos is a list there).
const char* kLlama31_8B = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

const char* kMistral7B_v01 = R"({
  "architectures": ["MistralForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0",
  "use_cache": true,
  "vocab_size": 32000
})";

const char* kTinyLlama = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0",
  "use_cache": true,
  "vocab_size": 32000
})";

const char* kSmolLM2_135M = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 0,
  "eos_token_id": 0,
  "hidden_act": "silu",
  "hidden_size": 576,
  "initializer_range": 0.041666666666666664,
  "intermediate_size": 1536,
  "is_llama_config": true,
  "max_position_embeddings": 8192,
  "model_type": "llama",
  "num_attention_heads": 9,
  "num_hidden_layers": 30,
  "num_key_value_heads": 3,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_interleaved": false,
  "rope_scaling": null,
  "rope_theta": 100000,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1",
  "use_cache": true,
  "vocab_size": 49152
})";

// Llama-3.2-1B as transformers 5 writes it: rope_parameters, dtype, explicit head_dim.
const char* kLlama32_1B_tf5 = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "dtype": "bfloat16",
  "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pad_token_id": null,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_parameters": {
    "factor": 32.0,
    "high_freq_factor": 4.0,
    "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rope_type": "llama3"
  },
  "tie_word_embeddings": true,
  "transformers_version": "5.0.0",
  "use_cache": true,
  "vocab_size": 128256
})";

// A small valid config (4 heads, no GQA unless `extra` adds it) to extend with fields.
std::string small_config(const std::string& extra) {
  return R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 256,
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4, "max_position_embeddings": 512,
  "rms_norm_eps": 1e-6)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

// Relative error of a float against a double reference.
double rel_err(float got, double want) {
  return std::fabs(double(got) - want) / std::fabs(want);
}

}  // namespace

TEST_CASE("Llama-2-7B config", "[config]") {
  const LlamaConfig c = parse(kLlama2_7B);
  CHECK(c.architecture == "LlamaForCausalLM");
  CHECK(c.vocab_size == 32000);
  CHECK(c.hidden_size == 4096);
  CHECK(c.intermediate_size == 11008);
  CHECK(c.n_layers == 32);
  CHECK(c.n_heads == 32);
  CHECK(c.n_kv_heads == 32);
  CHECK(c.head_dim == 128);
  CHECK(c.group_size() == 1);
  CHECK(c.max_position_embeddings == 4096);
  CHECK(c.sliding_window == 0);
  CHECK(c.rms_norm_eps == 1e-5f);
  CHECK(c.rope.type == RopeType::kDefault);
  CHECK(c.rope.theta == 10000.0f);  // default: rope_theta absent
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.bos_token_id == 1);
  CHECK(c.eos_token_ids == std::vector<int>{2});
  CHECK(c.torch_dtype == "float16");
  CHECK(c.n_params() == 6738415616LL);  // published parameter count
  CHECK(c.kv_bytes_per_token_fp16() == 2LL * 32 * 4096 * 2);
}

TEST_CASE("Llama-3-8B config (GQA 8 kv heads, theta 5e5)", "[config]") {
  const LlamaConfig c = parse(kLlama3_8B);
  CHECK(c.n_heads == 32);
  CHECK(c.n_kv_heads == 8);
  CHECK(c.group_size() == 4);
  CHECK(c.head_dim == 128);
  CHECK(c.q_dim() == 4096);
  CHECK(c.kv_dim() == 1024);
  CHECK(c.rope.theta == 500000.0f);
  CHECK(c.rope.type == RopeType::kDefault);
  CHECK(c.bos_token_id == 128000);
  CHECK(c.eos_token_ids == std::vector<int>{128001});
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.n_params() == 8030261248LL);
}

TEST_CASE("Llama-3.1-8B config (llama3 rope, eos list)", "[config]") {
  const LlamaConfig c = parse(kLlama31_8B);
  CHECK(c.max_position_embeddings == 131072);
  CHECK(c.rope.type == RopeType::kLlama3);
  CHECK(c.rope.theta == 500000.0f);
  CHECK(c.rope.factor == 8.0f);
  CHECK(c.rope.low_freq_factor == 1.0f);
  CHECK(c.rope.high_freq_factor == 4.0f);
  CHECK(c.rope.original_max_position_embeddings == 8192);
  CHECK(c.eos_token_ids == std::vector<int>{128001, 128008, 128009});
  CHECK(c.n_params() == 8030261248LL);
}

TEST_CASE("Mistral-7B-v0.1 config (sliding window)", "[config]") {
  const LlamaConfig c = parse(kMistral7B_v01);
  CHECK(c.architecture == "MistralForCausalLM");
  CHECK(c.sliding_window == 4096);
  CHECK(c.max_position_embeddings == 32768);
  CHECK(c.n_kv_heads == 8);
  CHECK(c.rope.theta == 10000.0f);
  CHECK(c.n_params() == 7241732096LL);

  // Mistral-7B-v0.2 and later write null.
  std::string v02 = kMistral7B_v01;
  v02.replace(v02.find("\"sliding_window\": 4096"), 22, "\"sliding_window\": null");
  CHECK(parse(v02).sliding_window == 0);
}

TEST_CASE("TinyLlama-1.1B config (4 kv heads for 32 query heads)", "[config]") {
  const LlamaConfig c = parse(kTinyLlama);
  CHECK(c.n_layers == 22);
  CHECK(c.n_heads == 32);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.group_size() == 8);
  CHECK(c.head_dim == 64);
  CHECK(c.kv_dim() == 256);
  CHECK(c.n_params() == 1100048384LL);
}

TEST_CASE("SmolLM2-135M config (tied embeddings, 9 heads, integer theta)", "[config]") {
  const LlamaConfig c = parse(kSmolLM2_135M);
  CHECK(c.tie_word_embeddings);
  CHECK(c.n_heads == 9);
  CHECK(c.n_kv_heads == 3);
  CHECK(c.head_dim == 64);
  CHECK(c.rope.theta == 100000.0f);
  CHECK(c.bos_token_id == 0);
  CHECK(c.eos_token_ids == std::vector<int>{0});
  CHECK(c.n_params() == 134515008LL);  // embedding counted once
}

TEST_CASE("transformers-5 config (rope_parameters, dtype)", "[config]") {
  const LlamaConfig c = parse(kLlama32_1B_tf5);
  CHECK(c.head_dim == 64);
  CHECK(c.n_kv_heads == 8);
  CHECK(c.rope.type == RopeType::kLlama3);
  CHECK(c.rope.theta == 500000.0f);
  CHECK(c.rope.factor == 32.0f);
  CHECK(c.rope.original_max_position_embeddings == 8192);
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.tie_word_embeddings);
  CHECK(c.n_params() == 1235814400LL);  // Llama-3.2-1B

  // Default rope type with the theta inside rope_parameters only.
  const LlamaConfig d = parse(
      small_config(R"("rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0})"));
  CHECK(d.rope.type == RopeType::kDefault);
  CHECK(d.rope.theta == 1000000.0f);
}

TEST_CASE("config field variants", "[config]") {
  SECTION("num_key_value_heads absent or null: no GQA") {
    std::string j = kLlama2_7B;
    j.erase(j.find("\"num_key_value_heads\": 32,"), 26);
    CHECK(parse(j).n_kv_heads == 32);
    CHECK(parse(small_config("\"num_key_value_heads\": null")).n_kv_heads == 4);
    CHECK(parse(small_config("\"num_key_value_heads\": 2")).group_size() == 2);
  }
  SECTION("head_dim explicit, null or derived") {
    CHECK(parse(small_config("")).head_dim == 16);
    CHECK(parse(small_config("\"head_dim\": null")).head_dim == 16);
    const LlamaConfig c = parse(small_config("\"head_dim\": 32"));
    CHECK(c.head_dim == 32);
    CHECK(c.q_dim() == 128);  // need not equal hidden_size
    CHECK(c.kv_dim() == 128);
  }
  SECTION("rope_scaling with 'type' instead of 'rope_type'; linear") {
    const LlamaConfig c =
        parse(small_config(R"("rope_scaling": {"type": "linear", "factor": 8.0})"));
    CHECK(c.rope.type == RopeType::kLinear);
    CHECK(c.rope.factor == 8.0f);
    CHECK(parse(small_config(R"("rope_scaling": {"type": "default"})")).rope.type ==
          RopeType::kDefault);
  }
  SECTION("model_type alone identifies the architecture") {
    const LlamaConfig c = parse(R"({"model_type": "mistral", "vocab_size": 256,
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
      "num_attention_heads": 4, "max_position_embeddings": 512})");
    CHECK(c.architecture == "MistralForCausalLM");
    CHECK(c.rms_norm_eps == 1e-6f);  // default
  }
  SECTION("bos/eos null, eos empty list, torch_dtype absent") {
    const LlamaConfig c = parse(small_config(R"("bos_token_id": null, "eos_token_id": [])"));
    CHECK(c.bos_token_id == -1);
    CHECK(c.eos_token_ids.empty());
    CHECK(c.torch_dtype.empty());
    CHECK_FALSE(c.tie_word_embeddings);
  }
  SECTION("integral floats are accepted where integers are expected") {
    CHECK(parse(small_config("\"sliding_window\": 128.0")).sliding_window == 128);
  }
}

TEST_CASE("rope_inv_freq: default and linear", "[config][rope]") {
  const LlamaConfig c = parse(kLlama2_7B);
  const std::vector<float> f = rope_inv_freq(c);
  REQUIRE(f.size() == 64);
  CHECK(f[0] == 1.0f);
  for (int i = 0; i < 64; ++i) {
    const double want = 1.0 / std::pow(10000.0, 2.0 * i / 128.0);
    INFO("i = " << i);
    CHECK(rel_err(f[i], want) < 1e-6);
  }
  LlamaConfig lin = c;
  lin.rope.type = RopeType::kLinear;
  lin.rope.factor = 8.0f;
  CHECK(rel_err(rope_inv_freq(lin)[10], 0.029642171320770693) < 1e-6);

  // SmolLM2: head_dim 64, theta 1e5.
  CHECK(rel_err(rope_inv_freq(parse(kSmolLM2_135M))[5], 0.16548170999431813) < 1e-6);
}

TEST_CASE("rope_inv_freq: Llama-3.1 rule", "[config][rope]") {
  const LlamaConfig c = parse(kLlama31_8B);
  const std::vector<float> f = rope_inv_freq(c);
  REQUIRE(f.size() == 64);

  // Values computed outside this project (Python, double precision) from Meta's reference
  // apply_scaling(): high frequencies (i <= 28) unchanged, i = 29..34 blended, i >= 35 / 8.
  const struct {
    int i;
    double want;
  } kRef[] = {
      {0, 1.0},
      {1, 0.8146172338565447},
      {20, 0.016560440080994446},
      {28, 0.0032114459947525913},
      {29, 0.002166570763503359},
      {30, 0.0013718935677611381},
      {32, 0.0005248461609929547},
      {34, 0.00017850781276799638},
      {35, 9.556212353964683e-05},
      {63, 3.068925988914511e-07},
  };
  for (const auto& r : kRef) {
    INFO("i = " << r.i << ": got " << f[r.i] << ", want " << r.want);
    CHECK(rel_err(f[r.i], r.want) < 1e-6);
  }

  // Every index against the rule written out independently: wavelength bands in tokens.
  for (int i = 0; i < 64; ++i) {
    const double base = std::pow(500000.0, -2.0 * i / 128.0);
    const double period = 2 * 3.14159265358979323846 / base;  // tokens per rotation
    double want;
    if (period < 8192.0 / 4.0) {
      want = base;
    } else if (period > 8192.0 / 1.0) {
      want = base / 8.0;
    } else {
      const double s = (8192.0 / period - 1.0) / (4.0 - 1.0);
      want = base * (s + (1.0 - s) / 8.0);
    }
    INFO("i = " << i);
    CHECK(rel_err(f[i], want) < 1e-6);
  }
}

TEST_CASE("config rejections name the file and the problem", "[config][errors]") {
  SECTION("malformed JSON") {
    REQUIRE_THROWS_WITH(parse("{\"vocab_size\": 32000,"),
                        HasSubstr("test/config.json: malformed JSON"));
    REQUIRE_THROWS_AS(parse("[1, 2]"), Error);
  }
  SECTION("missing required field") {
    std::string j = kLlama2_7B;
    j.erase(j.find("\"hidden_size\": 4096,"), 20);
    REQUIRE_THROWS_WITH(parse(j), HasSubstr("test/config.json"));
    REQUIRE_THROWS_WITH(parse(j), HasSubstr("'hidden_size' is missing"));
  }
  SECTION("unsupported architecture") {
    std::string j = kLlama2_7B;
    j.replace(j.find("LlamaForCausalLM"), 16, "Qwen2ForCausalLM");
    REQUIRE_THROWS_WITH(parse(j), HasSubstr("unsupported architecture"));
    REQUIRE_THROWS_WITH(parse(j), HasSubstr("Qwen2ForCausalLM"));
    REQUIRE_THROWS_WITH(parse(R"({"model_type": "gemma"})"), HasSubstr("model_type 'gemma'"));
  }
  SECTION("architecture and model_type disagree") {
    std::string j = kLlama2_7B;
    j.replace(j.find("\"model_type\": \"llama\""), 21, "\"model_type\": \"mistral\"");
    REQUIRE_THROWS_WITH(parse(j), HasSubstr("does not match model_type 'mistral'"));
  }
  SECTION("attention_bias / mlp_bias") {
    REQUIRE_THROWS_WITH(parse(small_config("\"attention_bias\": true")),
                        HasSubstr("attention_bias"));
    REQUIRE_THROWS_WITH(parse(small_config("\"mlp_bias\": true")), HasSubstr("mlp_bias"));
  }
  SECTION("token ids outside the vocabulary") {
    REQUIRE_THROWS_WITH(parse(small_config("\"eos_token_id\": 256")),
                        HasSubstr("eos_token_id 256 is outside the vocabulary (vocab_size 256)"));
    REQUIRE_THROWS_WITH(parse(small_config("\"eos_token_id\": [2, 1000]")),
                        HasSubstr("eos_token_id 1000 is outside the vocabulary"));
    REQUIRE_THROWS_WITH(parse(small_config("\"bos_token_id\": 300")),
                        HasSubstr("bos_token_id 300 is outside the vocabulary"));
    REQUIRE_THROWS_WITH(parse(small_config("\"bos_token_id\": -1")),
                        HasSubstr("bos_token_id -1 is outside the vocabulary (vocab_size 256); "
                                  "write null for none"));
    REQUIRE_THROWS_WITH(parse(small_config("\"eos_token_id\": [2, -5]")),
                        HasSubstr("eos_token_id -5 is outside the vocabulary"));
    const LlamaConfig c = parse(small_config("\"bos_token_id\": 1, \"eos_token_id\": [2, 255]"));
    REQUIRE(c.eos_token_ids == std::vector<int>{2, 255});
  }
  SECTION("hidden_act") {
    REQUIRE_THROWS_WITH(parse(small_config("\"hidden_act\": \"gelu\"")),
                        HasSubstr("hidden_act 'gelu' is not supported"));
  }
  SECTION("unsupported rope type") {
    for (const char* t : {"dynamic", "yarn", "longrope"}) {
      INFO(t);
      const std::string rs =
          std::string(R"("rope_scaling": {"rope_type": ")") + t + R"(", "factor": 2.0})";
      REQUIRE_THROWS_WITH(parse(small_config(rs)),
                          HasSubstr(std::string("unsupported rope type '") + t + "'"));
    }
    REQUIRE_THROWS_WITH(
        parse(small_config(R"("rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4})")),
        HasSubstr("unsupported rope type 'yarn' in rope_parameters"));
  }
  SECTION("incomplete llama3 scaling") {
    REQUIRE_THROWS_WITH(
        parse(small_config(R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0})")),
        HasSubstr("'rope_scaling.low_freq_factor' is missing"));
  }
  SECTION("heads not divisible by kv heads") {
    REQUIRE_THROWS_WITH(parse(small_config("\"num_key_value_heads\": 3")),
                        HasSubstr("num_attention_heads (4) is not divisible by "
                                  "num_key_value_heads (3)"));
  }
  SECTION("hidden_size not divisible by heads without head_dim") {
    std::string j = kSmolLM2_135M;
    j.replace(j.find("\"hidden_size\": 576"), 18, "\"hidden_size\": 577");
    REQUIRE_THROWS_WITH(parse(j), HasSubstr("hidden_size (577) is not divisible"));
  }
  SECTION("wrong types and ranges") {
    REQUIRE_THROWS_WITH(parse(small_config("\"tie_word_embeddings\": \"yes\"")),
                        HasSubstr("'tie_word_embeddings' must be true or false"));
    REQUIRE_THROWS_WITH(parse(small_config("\"sliding_window\": -1")),
                        HasSubstr("'sliding_window' must be an integer"));
    REQUIRE_THROWS_WITH(parse(small_config("\"head_dim\": 15")), HasSubstr("must be even"));
    REQUIRE_THROWS_WITH(parse(small_config("\"rms_norm_eps\": 0")),
                        HasSubstr("'rms_norm_eps' must be a positive number"));
    REQUIRE_THROWS_WITH(parse(small_config("\"rope_theta\": \"10000\"")),
                        HasSubstr("'rope_theta' must be a positive number"));
  }
  SECTION("quantized checkpoint") {
    REQUIRE_THROWS_WITH(parse(small_config(R"("quantization_config": {"bits": 4})")),
                        HasSubstr("quantization_config"));
  }
}

TEST_CASE("load_llama_config reads DIR/config.json", "[config][files]") {
  TempDir tmp;
  SECTION("missing directory") {
    const fs::path missing = tmp.path / "no-such-model";
    REQUIRE_THROWS_WITH(load_llama_config(missing), HasSubstr(missing.string()));
    REQUIRE_THROWS_WITH(load_llama_config(missing), HasSubstr("does not exist"));
  }
  SECTION("missing config.json") {
    REQUIRE_THROWS_WITH(load_llama_config(tmp.path), HasSubstr("has no config.json"));
  }
  SECTION("malformed config.json names the file") {
    write_file(tmp.path / "config.json", "{\"architectures\": [\"LlamaForCausalLM\"");
    REQUIRE_THROWS_WITH(load_llama_config(tmp.path),
                        HasSubstr((tmp.path / "config.json").string() + ": malformed JSON"));
  }
  SECTION("valid") {
    write_file(tmp.path / "config.json", kTinyLlama);
    CHECK(load_llama_config(tmp.path).n_kv_heads == 4);
  }
  SECTION("generation_config.json adds its eos ids") {
    write_file(tmp.path / "config.json", kTinyLlama);
    const std::vector<int> base = load_llama_config(tmp.path).eos_token_ids;
    REQUIRE(base.size() == 1);
    write_file(tmp.path / "generation_config.json", "{\"eos_token_id\": [" + std::to_string(base[0]) + ", 7, 9]}");
    CHECK(load_llama_config(tmp.path).eos_token_ids == std::vector<int>{base[0], 7, 9});
    write_file(tmp.path / "generation_config.json", "{\"eos_token_id\": 11}");
    CHECK(load_llama_config(tmp.path).eos_token_ids == std::vector<int>{base[0], 11});
    write_file(tmp.path / "generation_config.json", "{\"eos_token_id\": [3, 99999999]}");
    REQUIRE_THROWS_WITH(load_llama_config(tmp.path),
                        HasSubstr("generation_config.json: eos_token_id 99999999 is outside the vocabulary"));
    write_file(tmp.path / "generation_config.json", "{\"eos_token_id\": \"</s>\"}");
    REQUIRE_THROWS_WITH(load_llama_config(tmp.path), HasSubstr("must be an integer or a list"));
    write_file(tmp.path / "generation_config.json", "{");
    REQUIRE_THROWS_WITH(load_llama_config(tmp.path), HasSubstr("generation_config.json: malformed JSON"));
  }
}

TEST_CASE("sizes parse with binary suffixes, and anything else is an error naming the option") {
  REQUIRE(parse_bytes("1048576", "X") == 1048576u);
  REQUIRE(parse_bytes("512M", "X") == 512ull << 20);
  REQUIRE(parse_bytes("20G", "X") == 20ull << 30);
  REQUIRE(parse_bytes("1.5GiB", "X") == 3ull << 29);
  REQUIRE(parse_bytes("64k", "X") == 65536u);
  for (const char* bad : {"", "G", "-1G", "12Q", "1e30T", "abc"}) {
    INFO(bad);
    try {
      parse_bytes(bad, "KVCOMP_GPU_MEMORY_LIMIT");
      FAIL("accepted");
    } catch (const Error& e) {
      REQUIRE(std::string(e.what()).find("KVCOMP_GPU_MEMORY_LIMIT") != std::string::npos);
    }
  }
}
