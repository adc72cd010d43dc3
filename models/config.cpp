// config.json as written by transformers 4.x (rope_theta + rope_scaling) and 5.x
// (rope_parameters {rope_type, rope_theta, ...}). Every field the runtime depends on is read
// here and checked; anything that would change the model's math in a way the runtime does not
// implement (biases, other activations, other RoPE scalings, quantized weights) is rejected by
// name rather than silently ignored.
#include "models/config.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/json_kind.h"
#include "runtime/error.h"

namespace kvcomp {

namespace {

using nlohmann::json;

// Bounds that keep every derived size (q_dim, n_params, byte counts) far from overflow while
// admitting every real Llama/Mistral checkpoint (Llama-3.1-405B: hidden 16384, 126 layers).
constexpr int64_t kMaxVocab = int64_t(1) << 24;
constexpr int64_t kMaxWidth = int64_t(1) << 20;  // hidden_size, intermediate_size
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 4096;
constexpr int64_t kMaxPositions = int64_t(1) << 30;
constexpr double kPi = 3.14159265358979323846;

// Reads fields of one JSON object; `prefix` names the object in messages ("rope_scaling.").
class Fields {
 public:
  Fields(const json& obj, std::string source, std::string prefix = "")
      : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {}

  // The value of `key`, or nullptr when it is absent or null.
  const json* opt(const char* key) const {
    const auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool has(const char* key) const { return opt(key) != nullptr; }

  const json& req(const char* key) const {
    const json* v = opt(key);
    check(v != nullptr, source_, ": required field '", prefix_, key, "' is missing");
    return *v;
  }

  // An integer in [lo, hi]; integral floats (8192.0) are accepted.
  int64_t integer(const json& v, const char* key, int64_t lo, int64_t hi) const {
    int64_t x = 0;
    bool ok = false;
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      ok = u <= uint64_t(hi);
      x = ok ? int64_t(u) : 0;
    } else if (v.is_number_integer()) {
      x = v.get<int64_t>();
      ok = true;
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      ok = std::isfinite(d) && d == std::floor(d) && d >= double(lo) && d <= double(hi);
      x = ok ? int64_t(d) : 0;
    }
    check(ok && x >= lo && x <= hi, source_, ": field '", prefix_, key, "' must be an integer in [",
          lo, ", ", hi, "], got ", describe(v));
    return x;
  }
  int req_int(const char* key, int64_t lo, int64_t hi) const {
    return int(integer(req(key), key, lo, hi));
  }
  int opt_int(const char* key, int64_t lo, int64_t hi, int dflt) const {
    const json* v = opt(key);
    return v ? int(integer(*v, key, lo, hi)) : dflt;
  }

  // A finite number > 0 that fits in a float.
  double positive(const json& v, const char* key) const {
    const bool ok = v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() > 0 &&
                    v.get<double>() <= double(FLT_MAX);
    check(ok, source_, ": field '", prefix_, key, "' must be a positive number, got ", describe(v));
    return v.get<double>();
  }
  double opt_positive(const char* key, double dflt) const {
    const json* v = opt(key);
    return v ? positive(*v, key) : dflt;
  }
  double req_positive(const char* key) const { return positive(req(key), key); }

  bool opt_bool(const char* key, bool dflt) const {
    const json* v = opt(key);
    if (!v) return dflt;
    check(v->is_boolean(), source_, ": field '", prefix_, key, "' must be true or false, got ",
          describe(*v));
    return v->get<bool>();
  }

  std::string opt_string(const char* key, const std::string& dflt) const {
    const json* v = opt(key);
    if (!v) return dflt;
    check(v->is_string(), source_, ": field '", prefix_, key, "' must be a string, got ",
          describe(*v));
    return v->get<std::string>();
  }

  // Short text for a value in messages: numbers, booleans and short strings verbatim.
  static std::string describe(const json& v) {
    if (v.is_number() || v.is_boolean()) return v.dump();
    if (v.is_string() && v.get_ref<const std::string&>().size() <= 64) {
      return v.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    return json_kind(v);
  }

  const std::string& source() const { return source_; }

 private:
  const json& obj_;
  std::string source_;
  std::string prefix_;
};

constexpr const char* kLlama = "LlamaForCausalLM";
constexpr const char* kMistral = "MistralForCausalLM";

std::string parse_architecture(const Fields& f) {
  const std::string& src = f.source();
  const std::string model_type = f.opt_string("model_type", "");
  std::string arch;
  if (const json* a = f.opt("architectures")) {
    check(a->is_array(), src, ": field 'architectures' must be a list of class names, got ",
          json_kind(*a));
    std::string listed;
    for (const json& name : *a) {
      check(name.is_string(), src, ": field 'architectures' must be a list of class names");
      const std::string& s = name.get_ref<const std::string&>();
      if (arch.empty() && (s == kLlama || s == kMistral)) arch = s;
      listed += (listed.empty() ? "" : ", ") + Fields::describe(name);
    }
    check(!arch.empty(), src, ": unsupported architecture [", listed, "] (supported: ", kLlama,
          ", ", kMistral, ")");
  } else {
    check(!model_type.empty(), src, ": neither 'architectures' nor 'model_type' is given");
    if (model_type == "llama") {
      arch = kLlama;
    } else if (model_type == "mistral") {
      arch = kMistral;
    } else {
      fail(src, ": unsupported architecture: model_type '", model_type,
           "' (supported: llama, mistral)");
    }
  }
  const char* expected_type = arch == kLlama ? "llama" : "mistral";
  check(model_type.empty() || model_type == expected_type, src, ": architecture ", arch,
        " does not match model_type '", model_type, "' (expected '", expected_type, "')");
  return arch;
}

// theta from the top level or rope_parameters; the scaling rule from rope_parameters
// (transformers >= 5) or rope_scaling (older), with the type under "rope_type" or "type".
RopeConfig parse_rope(const Fields& f) {
  const std::string& src = f.source();
  RopeConfig rope;

  const char* block_name = "rope_parameters";
  const json* block = f.opt("rope_parameters");
  if (!block) {
    block_name = "rope_scaling";
    block = f.opt("rope_scaling");
  }

  double theta = f.opt_positive("rope_theta", 10000.0);
  check(f.opt_positive("partial_rotary_factor", 1.0) == 1.0, src,
        ": partial_rotary_factor != 1 (RoPE over part of the head) is not supported");
  if (!block) {
    rope.theta = float(theta);
    return rope;
  }

  check(block->is_object(), src, ": field '", block_name, "' must be an object or null, got ",
        json_kind(*block));
  const Fields b(*block, src, std::string(block_name) + ".");
  if (const json* t = b.opt("rope_theta")) {
    const double inner = b.positive(*t, "rope_theta");
    check(!f.has("rope_theta") || float(inner) == float(theta), src, ": rope_theta ", theta,
          " and ", block_name, ".rope_theta ", inner, " disagree");
    theta = inner;
  }
  rope.theta = float(theta);
  check(b.opt_positive("partial_rotary_factor", 1.0) == 1.0, src,
        ": partial_rotary_factor != 1 (RoPE over part of the head) is not supported");

  std::string type = b.opt_string("rope_type", "");
  if (type.empty()) type = b.opt_string("type", "");
  check(!type.empty(), src, ": field '", block_name, "' has no 'rope_type' (or 'type')");

  if (type == "default") {
    rope.type = RopeType::kDefault;
  } else if (type == "linear") {
    rope.type = RopeType::kLinear;
    rope.factor = float(b.req_positive("factor"));
  } else if (type == "llama3") {
    rope.type = RopeType::kLlama3;
    rope.factor = float(b.req_positive("factor"));
    rope.low_freq_factor = float(b.req_positive("low_freq_factor"));
    rope.high_freq_factor = float(b.req_positive("high_freq_factor"));
    rope.original_max_position_embeddings =
        b.req_int("original_max_position_embeddings", 1, kMaxPositions);
    check(rope.high_freq_factor > rope.low_freq_factor, src, ": ", block_name,
          ": llama3 RoPE needs high_freq_factor > low_freq_factor, got ", rope.high_freq_factor,
          " and ", rope.low_freq_factor);
  } else {
    fail(src, ": unsupported rope type '", type, "' in ", block_name,
         " (supported: default, linear, llama3)");
  }
  return rope;
}

}  // namespace

int64_t LlamaConfig::n_params() const {
  const int64_t h = hidden_size;
  const int64_t per_layer = 2 * h                                  // the two RMSNorms
                            + h * q_dim() + 2 * h * kv_dim()       // q, k, v
                            + int64_t(q_dim()) * h                 // o
                            + 3 * h * int64_t(intermediate_size);  // gate, up, down
  const int64_t embed = int64_t(vocab_size) * h;
  return embed + n_layers * per_layer + h + (tie_word_embeddings ? 0 : embed);
}

LlamaConfig parse_llama_config(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(source, ": malformed JSON: ", e.what());
  }
  check(root.is_object(), source, ": expected a JSON object, got ", json_kind(root));
  const Fields f(root, source);

  LlamaConfig c;
  c.architecture = parse_architecture(f);

  check(!f.has("quantization_config"), source,
        ": quantized checkpoints (quantization_config) are not supported");
  check(!f.opt_bool("attention_bias", false), source,
        ": attention_bias = true is not supported (q/k/v/o projections without bias only)");
  check(!f.opt_bool("mlp_bias", false), source,
        ": mlp_bias = true is not supported (MLP projections without bias only)");
  const std::string act = f.opt_string("hidden_act", "silu");
  check(act == "silu", source, ": hidden_act '", act, "' is not supported (only silu)");

  c.vocab_size = f.req_int("vocab_size", 1, kMaxVocab);
  c.hidden_size = f.req_int("hidden_size", 1, kMaxWidth);
  c.intermediate_size = f.req_int("intermediate_size", 1, kMaxWidth);
  c.n_layers = f.req_int("num_hidden_layers", 1, kMaxLayers);
  c.n_heads = f.req_int("num_attention_heads", 1, kMaxHeads);
  c.n_kv_heads = f.opt_int("num_key_value_heads", 1, kMaxHeads, c.n_heads);
  check(c.n_heads % c.n_kv_heads == 0, source, ": num_attention_heads (", c.n_heads,
        ") is not divisible by num_key_value_heads (", c.n_kv_heads, ")");
  if (f.has("head_dim")) {
    c.head_dim = f.req_int("head_dim", 1, kMaxHeadDim);
  } else {
    check(c.hidden_size % c.n_heads == 0, source, ": hidden_size (", c.hidden_size,
          ") is not divisible by num_attention_heads (", c.n_heads, ") and no head_dim is given");
    c.head_dim = c.hidden_size / c.n_heads;
    check(c.head_dim <= kMaxHeadDim, source, ": head_dim ", c.head_dim, " exceeds ", kMaxHeadDim);
  }
  check(c.head_dim % 2 == 0, source, ": head_dim (", c.head_dim, ") must be even for RoPE");

  c.max_position_embeddings = f.req_int("max_position_embeddings", 1, kMaxPositions);
  c.sliding_window = f.opt_int("sliding_window", 1, INT_MAX, 0);
  c.rms_norm_eps = float(f.opt_positive("rms_norm_eps", 1e-6));
  check(c.rms_norm_eps > 0.0f, source, ": rms_norm_eps underflows a float");
  c.rope = parse_rope(f);
  c.tie_word_embeddings = f.opt_bool("tie_word_embeddings", false);

  // Token ids: an int, a list of ints or null (none). A negative id is an error (it would silently
  // mean "none").
  auto token_ids = [&](const char* key) {
    std::vector<int> ids;
    const json* v = f.opt(key);
    if (!v) return ids;
    auto one = [&](const json& x) {
      const int64_t id = f.integer(x, key, INT_MIN, INT_MAX);
      check(id >= 0 && id < c.vocab_size, source, ": ", key, " ", id,
            " is outside the vocabulary (vocab_size ", c.vocab_size, ")",
            id < 0 ? "; write null for none" : "");
      ids.push_back(int(id));
    };
    if (v->is_array()) {
      for (const json& x : *v) one(x);
    } else {
      one(*v);
    }
    return ids;
  };
  const std::vector<int> bos = token_ids("bos_token_id");
  c.bos_token_id = bos.empty() ? -1 : bos.front();
  c.eos_token_ids = token_ids("eos_token_id");

  // transformers >= 4.56 writes "dtype", older versions "torch_dtype".
  c.torch_dtype = f.opt_string("dtype", "");
  if (c.torch_dtype.empty()) c.torch_dtype = f.opt_string("torch_dtype", "");
  return c;
}

LlamaConfig load_llama_config(const std::filesystem::path& model_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  check(fs::exists(model_dir, ec), "model directory '", model_dir.string(), "' does not exist");
  check(fs::is_directory(model_dir, ec), "model path '", model_dir.string(),
        "' is not a directory");
  const fs::path path = model_dir / "config.json";
  check(fs::exists(path, ec), "model directory '", model_dir.string(),
        "' has no config.json (expected ", path.string(), ")");
  check(fs::is_regular_file(path, ec), path.string(), " is ",
        fs::is_directory(path, ec) ? "a directory" : "not a regular file", ", expected a file");
  std::ifstream in(path, std::ios::binary);
  check(bool(in), path.string(), ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  check(!in.bad(), path.string(), ": read error");
  LlamaConfig c = parse_llama_config(text.str(), path.string());

  // generation_config.json's eos_token_id (Llama 3.1 Instruct lists three there): generation
  // stops on any id of either file.
  const fs::path gen = model_dir / "generation_config.json";
  if (fs::is_regular_file(gen, ec)) {
    std::ifstream gin(gen, std::ios::binary);
    const json g = json::parse(gin, nullptr, /*allow_exceptions=*/false);
    check(!g.is_discarded() && g.is_object(), gen.string(), ": malformed JSON (expected an object)");
    if (g.contains("eos_token_id") && !g["eos_token_id"].is_null()) {
      const json& v = g["eos_token_id"];
      const json list = v.is_array() ? v : json::array({v});
      for (const json& x : list) {
        check(x.is_number_integer(), gen.string(), ": eos_token_id must be an integer or a list of "
              "integers, not ", json_kind(x));
        const int64_t id = x.get<int64_t>();
        check(id >= 0 && id < c.vocab_size, gen.string(), ": eos_token_id ", id,
              " is outside the vocabulary (vocab_size ", c.vocab_size, ")");
        if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), int(id)) == c.eos_token_ids.end())
          c.eos_token_ids.push_back(int(id));
      }
    }
  }
  return c;
}

std::vector<float> rope_inv_freq(const LlamaConfig& cfg) {
  const int half = cfg.head_dim / 2;
  const RopeConfig& r = cfg.rope;
  std::vector<float> out(size_t(std::max(half, 0)));
  // Llama-3.1 rule (transformers' _compute_llama3_parameters): wavelengths longer than
  // old_ctx / low_freq_factor are scaled down by `factor`, shorter than old_ctx /
  // high_freq_factor kept, and the band between blended linearly in old_ctx / wavelength.
  const double old_ctx = r.original_max_position_embeddings;
  const double low_freq_wavelen = old_ctx / r.low_freq_factor;
  const double high_freq_wavelen = old_ctx / r.high_freq_factor;
  for (int i = 0; i < half; ++i) {
    const double inv = std::pow(double(r.theta), -2.0 * i / cfg.head_dim);
    double f = inv;
    switch (r.type) {
      case RopeType::kDefault:
        break;
      case RopeType::kLinear:
        f = inv / r.factor;
        break;
      case RopeType::kLlama3: {
        const double wavelen = 2.0 * kPi / inv;
        if (wavelen > low_freq_wavelen) {
          f = inv / r.factor;
        } else if (wavelen >= high_freq_wavelen) {
          const double smooth = (old_ctx / wavelen - r.low_freq_factor) /
                                (double(r.high_freq_factor) - r.low_freq_factor);
          f = (1.0 - smooth) * inv / r.factor + smooth * inv;
        }
        break;
      }
    }
    out[i] = float(f);
  }
  return out;
}

}  // namespace kvcomp
