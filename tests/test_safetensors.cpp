// safetensors reading (single file and sharded), dtype conversion, the header checks that keep a
// damaged or hostile file from being read out of bounds, and the Llama tensor-set check. Test
// checkpoints are written to a temp directory by the small writer below.
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <limits>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/config.h"
#include "models/llama_tensors.h"
#include "models/safetensors.h"
#include "runtime/error.h"
#include "runtime/half.h"
#include "tests/catch.h"

using namespace kvcomp;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / ("kvcomp_test_safetensors_" + std::to_string(::getpid()) +
                                        "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// One tensor to write: dtype as the file spells it and the raw little-endian bytes.
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<uint8_t> u16_bytes(const std::vector<uint16_t>& v) {
  std::vector<uint8_t> b(v.size() * 2);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}
std::vector<uint8_t> f16_bytes(const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float x : v) h.push_back(float_to_fp16(x));
  return u16_bytes(h);
}
std::vector<uint8_t> bf16_bytes(const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float x : v) h.push_back(float_to_bf16(x));
  return u16_bytes(h);
}

RawTensor f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  return {name, "F32", std::move(shape), f32_bytes(v)};
}

// A tensor of the given shape whose values are a simple function of the name's length and index.
RawTensor filled(const std::string& name, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(i % 7) * 0.25f - float(name.size() % 3);
  return {name, "BF16", std::move(shape), bf16_bytes(v)};
}

// Writes a file the way the safetensors library does: tensors packed in order, header padded
// with spaces to a multiple of 8 bytes.
void write_safetensors(const fs::path& p, const std::vector<RawTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {}) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<uint8_t> data;
  for (const RawTensor& t : tensors) {
    const size_t begin = data.size();
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::ofstream out(p, std::ios::binary);
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.put(char((n >> (8 * i)) & 0xff));
  out << h;
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

// A file with a hand-written header (and a header length that may lie).
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes,
               uint64_t header_len_field) {
  std::ofstream out(p, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(char((header_len_field >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
}
void write_raw(const fs::path& p, const std::string& header, size_t data_bytes) {
  write_raw(p, header, data_bytes, header.size());
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A tiny GQA config: vocab 16, hidden 8, 2 layers, 2 heads of dim 4, 1 kv head, inter 12.
LlamaConfig tiny_config(bool tied) {
  return parse_llama_config(std::string(R"({"architectures": ["LlamaForCausalLM"],
    "vocab_size": 16, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
    "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64,
    "tie_word_embeddings": )") + (tied ? "true" : "false") +
                                "}",
                            "tiny/config.json");
}

std::vector<RawTensor> tensors_for(const LlamaConfig& cfg) {
  std::vector<RawTensor> out;
  for (const TensorSpec& s : llama_tensor_specs(cfg)) out.push_back(filled(s.name, s.shape));
  return out;
}

}  // namespace

TEST_CASE("dtype names and sizes", "[safetensors]") {
  CHECK(std::string(dtype_name(DType::kF32)) == "F32");
  CHECK(std::string(dtype_name(DType::kF16)) == "F16");
  CHECK(std::string(dtype_name(DType::kBF16)) == "BF16");
  CHECK(dtype_size(DType::kF32) == 4);
  CHECK(dtype_size(DType::kF16) == 2);
  CHECK(dtype_size(DType::kBF16) == 2);
}

TEST_CASE("single-file checkpoint: F32, F16, BF16 and metadata", "[safetensors]") {
  TempDir tmp;
  const std::vector<float> a = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -65504.0f};
  // Values exactly representable in fp16 and bf16 come back unchanged; others are rounded the
  // way the writer rounded them.
  const std::vector<float> h = {0.5f, -1.0f, 2048.0f, 6.103515625e-05f, 5.960464477539063e-08f};
  const std::vector<float> b = {1.0f, -3.0f, 0.15625f, 3.0e38f};
  // An F16 tensor of odd length first, so the F32 one after it starts at an unaligned offset.
  write_safetensors(tmp.path / "model.safetensors",
                    {{"h", "F16", {5}, f16_bytes(h)},
                     f32("a", {2, 3}, a),
                     {"b", "BF16", {2, 2}, bf16_bytes(b)},
                     {"empty", "F32", {0, 4}, {}}},
                    {{"format", "pt"}});

  const SafetensorsFile file(tmp.path / "model.safetensors");
  CHECK(file.metadata().at("format") == "pt");
  REQUIRE(file.tensors().size() == 4);
  const TensorInfo& ta = file.tensors().at("a");
  CHECK(ta.dtype == DType::kF32);
  CHECK(ta.shape == std::vector<int64_t>{2, 3});
  CHECK(ta.numel() == 6);
  CHECK(ta.nbytes == 24);
  CHECK(ta.file == (tmp.path / "model.safetensors").string());
  CHECK(reinterpret_cast<uintptr_t>(ta.data) % 4 != 0);  // unaligned on purpose
  CHECK(tensor_to_float(ta) == a);

  const TensorInfo& th = file.tensors().at("h");
  CHECK(th.dtype == DType::kF16);
  CHECK(tensor_to_float(th) == h);

  const TensorInfo& tb = file.tensors().at("b");
  CHECK(tb.dtype == DType::kBF16);
  const std::vector<float> got_b = tensor_to_float(tb);
  REQUIRE(got_b.size() == 4);
  CHECK(got_b[0] == 1.0f);
  CHECK(got_b[1] == -3.0f);
  CHECK(got_b[2] == 0.15625f);
  CHECK(got_b[3] == round_bf16(3.0e38f));

  const TensorInfo& te = file.tensors().at("empty");
  CHECK(te.numel() == 0);
  CHECK(tensor_to_float(te).empty());

  const Checkpoint ckpt(tmp.path);
  CHECK(ckpt.tensors().size() == 4);
  REQUIRE(ckpt.find("a") != nullptr);
  CHECK(tensor_to_float(ckpt.get("a")) == a);
  CHECK(ckpt.find("nope") == nullptr);
  REQUIRE_THROWS_WITH(ckpt.get("nope"), HasSubstr("no tensor 'nope'"));
  REQUIRE_THROWS_WITH(ckpt.get("nope"), HasSubstr(tmp.path.string()));
}

TEST_CASE("sharded checkpoint through model.safetensors.index.json", "[safetensors]") {
  TempDir tmp;
  const std::vector<float> x = {1, 2, 3, 4};
  const std::vector<float> y = {-1, -2};
  write_safetensors(tmp.path / "model-00001-of-00002.safetensors",
                    {f32("x", {2, 2}, x), f32("unlisted", {1}, {9})});
  write_safetensors(tmp.path / "model-00002-of-00002.safetensors",
                    {{"y", "F16", {2}, f16_bytes(y)}});
  const json index = {
      {"metadata", {{"total_size", 20}}},
      {"weight_map",
       {{"x", "model-00001-of-00002.safetensors"}, {"y", "model-00002-of-00002.safetensors"}}}};
  write_text(tmp.path / "model.safetensors.index.json", index.dump(2));

  SECTION("all mapped tensors are found") {
    const Checkpoint ckpt(tmp.path);
    CHECK(ckpt.tensors().size() == 2);  // the weight_map is the list of tensors
    CHECK(tensor_to_float(ckpt.get("x")) == x);
    CHECK(tensor_to_float(ckpt.get("y")) == y);
    CHECK(ckpt.get("y").file == (tmp.path / "model-00002-of-00002.safetensors").string());
    CHECK(ckpt.dir() == tmp.path);
  }
  SECTION("missing shard") {
    fs::remove(tmp.path / "model-00002-of-00002.safetensors");
    REQUIRE_THROWS_WITH(Checkpoint(tmp.path),
                        HasSubstr("shard 'model-00002-of-00002.safetensors' listed in the "
                                  "weight_map is missing"));
  }
  SECTION("tensor mapped to a shard that does not hold it") {
    json bad = index;
    bad["weight_map"]["z"] = "model-00001-of-00002.safetensors";
    write_text(tmp.path / "model.safetensors.index.json", bad.dump());
    REQUIRE_THROWS_WITH(Checkpoint(tmp.path),
                        HasSubstr("tensor 'z' is mapped to shard "
                                  "'model-00001-of-00002.safetensors', which does not contain it"));
  }
  SECTION("malformed index") {
    write_text(tmp.path / "model.safetensors.index.json", "{\"weight_map\": ");
    REQUIRE_THROWS_WITH(Checkpoint(tmp.path), HasSubstr("model.safetensors.index.json"));
    write_text(tmp.path / "model.safetensors.index.json", "{\"metadata\": {}}");
    REQUIRE_THROWS_WITH(Checkpoint(tmp.path), HasSubstr("no 'weight_map'"));
  }
  SECTION("shard names must stay inside the model directory") {
    write_text(tmp.path / "model.safetensors.index.json",
               R"({"weight_map": {"x": "../model-00001-of-00002.safetensors"}})");
    REQUIRE_THROWS_WITH(Checkpoint(tmp.path), HasSubstr("must be a plain file name"));
  }
}

TEST_CASE("model directory errors", "[safetensors][errors]") {
  TempDir tmp;
  SECTION("missing directory") {
    const fs::path missing = tmp.path / "no-such-model";
    REQUIRE_THROWS_WITH(Checkpoint(missing),
                        HasSubstr("model directory '" + missing.string() + "' does not exist"));
  }
  SECTION("directory without weights") {
    write_text(tmp.path / "config.json", "{}");
    REQUIRE_THROWS_WITH(Checkpoint(tmp.path), HasSubstr("holds neither model.safetensors nor "
                                                        "model.safetensors.index.json"));
    write_text(tmp.path / "pytorch_model.bin", "");
    REQUIRE_THROWS_WITH(Checkpoint(tmp.path), HasSubstr("convert them to safetensors"));
  }
}

TEST_CASE("damaged safetensors files are rejected with the file named", "[safetensors][errors]") {
  TempDir tmp;
  const fs::path p = tmp.path / "model.safetensors";
  const std::string ps = p.string();

  SECTION("truncated inside the data section") {
    write_safetensors(p, {f32("w", {4, 4}, std::vector<float>(16, 1.0f))});
    fs::resize_file(p, fs::file_size(p) - 10);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr(ps));
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("tensor 'w'"));
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("truncated"));
  }
  SECTION("truncated inside the length field") {
    write_text(p, "abc");
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr(ps + ": truncated: 3 bytes"));
    write_text(p, "");
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr(ps + ": truncated: 0 bytes"));
  }
  SECTION("header length beyond the file") {
    write_raw(p, "{}", 0, 1000);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr(ps + ": header length 1000 extends beyond the file (10 bytes)"));
    write_raw(p, "{}", 0, ~uint64_t(0));
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("extends beyond the file"));
  }
  SECTION("data offsets beyond the file") {
    write_raw(p, R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}})", 24);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr("tensor 'w': data_offsets [16, 32] extend beyond the data "
                                  "section (24 bytes)"));
  }
  SECTION("tensors sharing bytes") {
    // the same range twice, and one range inside another; adjacent and empty ones are fine
    write_raw(p,
              R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
              R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
              16);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr(ps + ": tensors 'a' (data_offsets [0, 16]) and 'b' ([0, 16]) "
                                       "overlap"));
    write_raw(p,
              R"({"big": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},)"
              R"( "in": {"dtype": "F16", "shape": [2], "data_offsets": [12, 16]}})",
              32);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr("tensors 'big' (data_offsets [0, 32]) and 'in' ([12, 16]) overlap"));
    write_raw(p,
              R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},)"
              R"( "y": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
              R"( "z": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})",
              16);
    REQUIRE(SafetensorsFile(p).tensors().size() == 3);
  }
  SECTION("bytes that belong to no tensor") {
    // a gap between two tensors, one before the first, and bytes after the last
    write_raw(p,
              R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
              R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
              20);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr(ps + ": data section bytes [8, 12) belong to no tensor (before "
                                       "'b'); safetensors files have no holes"));
    write_raw(p, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("bytes [0, 4) belong to no tensor"));
    write_raw(p, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 16);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr("bytes [8, 16) after the last tensor belong to no tensor"));
  }
  SECTION("unsupported dtype") {
    write_raw(p, R"({"q": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}})", 4);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr(ps + ": tensor 'q': unsupported dtype I8 (supported: F32, "
                                       "F16, BF16)"));
    write_raw(p, R"({"q": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}})", 4);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("unsupported dtype F8_E4M3"));
  }
  SECTION("size does not match shape") {
    write_raw(p, R"({"w": {"dtype": "F16", "shape": [3], "data_offsets": [0, 8]}})", 8);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("span 8 bytes but shape [3] of F16 needs 6"));
  }
  SECTION("begin after end") {
    write_raw(p, R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 8);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("begin > end"));
  }
  SECTION("negative, fractional or overflowing shapes") {
    write_raw(p, R"({"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 0]}})", 0);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("non-negative integers"));
    write_raw(p, R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}})", 0);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("non-negative integers"));
    // 2^32 * 2^32 * 4 bytes wraps to 0 in 64 bits: must not be mistaken for an empty tensor.
    write_raw(
        p, R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})",
        0);
    REQUIRE_THROWS_WITH(
        SafetensorsFile(p),
        HasSubstr("span 0 bytes but shape [4294967296, 4294967296] of F32 needs more"));
  }
  SECTION("header that is not a JSON object") {
    write_raw(p, "{\"w\": ", 0);
    REQUIRE_THROWS_WITH(SafetensorsFile(p),
                        HasSubstr(ps + ": safetensors header is not valid JSON"));
    write_raw(p, "[1, 2]", 0);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("must be a JSON object"));
    write_raw(p, R"({"w": {"dtype": "F32", "shape": [1]}})", 4);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("tensor 'w': no 'data_offsets'"));
    write_raw(p, R"({"__metadata__": {"format": 1}})", 0);
    REQUIRE_THROWS_WITH(SafetensorsFile(p), HasSubstr("'__metadata__' entry 'format'"));
  }
}

TEST_CASE("parse_weight_map reads the index of a sharded checkpoint", "[safetensors][errors]") {
  const auto wm = parse_weight_map(R"({"metadata": {}, "weight_map": {"a": "s1", "b": "s2", "c": "s1"}})",
                                   "i.json");
  CHECK(wm.size() == 3);
  CHECK(wm.at("c") == "s1");
  REQUIRE_THROWS_WITH(parse_weight_map("{", "i.json"), HasSubstr("i.json: not valid JSON"));
  REQUIRE_THROWS_WITH(parse_weight_map("[]", "i.json"), HasSubstr("must be a JSON object"));
  REQUIRE_THROWS_WITH(parse_weight_map("{}", "i.json"), HasSubstr("no 'weight_map'"));
  REQUIRE_THROWS_WITH(parse_weight_map(R"({"weight_map": {}})", "i.json"),
                      HasSubstr("'weight_map' lists no tensors"));
  REQUIRE_THROWS_WITH(parse_weight_map(R"({"weight_map": {"a": 3}})", "i.json"),
                      HasSubstr("entry for tensor 'a' must be a file name"));
  for (const char* bad : {"../x.safetensors", "/etc/passwd", "d/x", "..", ".", ""})
    REQUIRE_THROWS_WITH(
        parse_weight_map(std::string(R"({"weight_map": {"a": ")") + bad + "\"}}", "i.json"),
        HasSubstr("must be a plain file name in the model directory"));
}

TEST_CASE("parse_safetensors_header without data", "[safetensors]") {
  const std::string h =
      R"({"__metadata__": {"format": "pt"}, "w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}})";
  const auto t = parse_safetensors_header(h, nullptr, 8 + h.size(), 8 + h.size() + 12, "hdr");
  REQUIRE(t.size() == 1);
  CHECK(t.at("w").data == nullptr);
  CHECK(t.at("w").nbytes == 12);
  REQUIRE_THROWS_WITH(parse_safetensors_header(h, nullptr, 8 + h.size(), 8 + h.size() + 11, "hdr"),
                      HasSubstr("hdr: tensor 'w': data_offsets [0, 12] extend beyond"));
  REQUIRE_THROWS_WITH(parse_safetensors_header(h, nullptr, 100, 50, "hdr"),
                      HasSubstr("hdr: header ends at byte 100"));
}

TEST_CASE("llama tensor specs", "[safetensors][llama]") {
  const LlamaConfig c = tiny_config(false);
  const std::vector<TensorSpec> specs = llama_tensor_specs(c);
  REQUIRE(specs.size() == 2 * 9 + 3);
  CHECK(specs.front().name == "model.embed_tokens.weight");
  CHECK(specs.front().shape == std::vector<int64_t>{16, 8});
  auto shape_of = [&](const std::string& name) {
    for (const TensorSpec& s : specs) {
      if (s.name == name) return s.shape;
    }
    return std::vector<int64_t>{-1};  // absent
  };
  CHECK(shape_of("model.layers.1.self_attn.q_proj.weight") == std::vector<int64_t>{8, 8});
  CHECK(shape_of("model.layers.1.self_attn.k_proj.weight") == std::vector<int64_t>{4, 8});
  CHECK(shape_of("model.layers.0.self_attn.v_proj.weight") == std::vector<int64_t>{4, 8});
  CHECK(shape_of("model.layers.0.self_attn.o_proj.weight") == std::vector<int64_t>{8, 8});
  CHECK(shape_of("model.layers.0.mlp.gate_proj.weight") == std::vector<int64_t>{12, 8});
  CHECK(shape_of("model.layers.0.mlp.up_proj.weight") == std::vector<int64_t>{12, 8});
  CHECK(shape_of("model.layers.0.mlp.down_proj.weight") == std::vector<int64_t>{8, 12});
  CHECK(shape_of("model.layers.1.input_layernorm.weight") == std::vector<int64_t>{8});
  CHECK(shape_of("model.layers.1.post_attention_layernorm.weight") == std::vector<int64_t>{8});
  CHECK(shape_of("model.norm.weight") == std::vector<int64_t>{8});
  CHECK(specs.back().name == "lm_head.weight");
  CHECK(llama_tensor_specs(tiny_config(true)).size() == 2 * 9 + 2);
}

TEST_CASE("first_nonfinite finds the first NaN or infinity of every dtype", "[safetensors]") {
  auto info = [](DType dt, const void* p, size_t nbytes) {
    TensorInfo t;
    t.dtype = dt;
    t.data = static_cast<const uint8_t*>(p);
    t.nbytes = nbytes;
    return t;
  };
  for (const int64_t n : {int64_t(1), int64_t(7), int64_t(5000), int64_t(20011)}) {
    // fp32: the largest finite value does not count, +-inf and NaN do, wherever they are
    std::vector<float> f(size_t(n), std::numeric_limits<float>::max());
    CHECK(first_nonfinite(info(DType::kF32, f.data(), f.size() * 4)) == -1);
    for (const int64_t at : {int64_t(0), n / 2, n - 1}) {
      std::vector<float> g = f;
      g[size_t(at)] = at % 2 ? -std::numeric_limits<float>::infinity()
                             : std::numeric_limits<float>::quiet_NaN();
      CHECK(first_nonfinite(info(DType::kF32, g.data(), g.size() * 4)) == at);
    }
    // fp16 (0x7bff the largest finite, 0x7c00 inf, 0xfe00 NaN) and bf16 (0x7f7f, 0xff80, 0x7fc1)
    std::vector<uint16_t> h(size_t(n), 0x7bff), b(size_t(n), 0x7f7f);
    CHECK(first_nonfinite(info(DType::kF16, h.data(), h.size() * 2)) == -1);
    CHECK(first_nonfinite(info(DType::kBF16, b.data(), b.size() * 2)) == -1);
    h[size_t(n - 1)] = 0x7c00, b[size_t(n - 1)] = 0xff80;
    CHECK(first_nonfinite(info(DType::kF16, h.data(), h.size() * 2)) == n - 1);
    CHECK(first_nonfinite(info(DType::kBF16, b.data(), b.size() * 2)) == n - 1);
    h[size_t(n / 3)] = 0xfe00, b[size_t(n / 3)] = 0x7fc1;
    CHECK(first_nonfinite(info(DType::kF16, h.data(), h.size() * 2)) == n / 3);
    CHECK(first_nonfinite(info(DType::kBF16, b.data(), b.size() * 2)) == n / 3);
  }
}

TEST_CASE("check_llama_tensors", "[safetensors][llama]") {
  TempDir tmp;
  const fs::path file = tmp.path / "model.safetensors";

  SECTION("complete checkpoint, extra tensors ignored") {
    const LlamaConfig c = tiny_config(false);
    std::vector<RawTensor> t = tensors_for(c);
    t.push_back(f32("model.layers.0.self_attn.rotary_emb.inv_freq", {2}, {1.0f, 0.01f}));
    write_safetensors(file, t);
    const Checkpoint ckpt(tmp.path);
    CHECK_NOTHROW(check_llama_tensors(c, ckpt));
    const std::vector<float> w = tensor_to_float(ckpt.get("model.layers.1.mlp.down_proj.weight"));
    CHECK(w.size() == 96);
  }
  SECTION("tensors the config does not use are named") {
    LlamaConfig c = tiny_config(false);
    std::vector<RawTensor> t = tensors_for(c);  // 2 layers
    t.push_back(f32("model.layers.0.self_attn.rotary_emb.inv_freq", {2}, {1.0f, 0.01f}));
    write_safetensors(file, t);
    CHECK(unused_llama_tensors(c, Checkpoint(tmp.path)).empty());  // inv_freq is not counted
    c.n_layers = 1;  // a config with fewer layers than the checkpoint
    c.tie_word_embeddings = true;
    const std::vector<std::string> u = unused_llama_tensors(c, Checkpoint(tmp.path));
    REQUIRE(u.size() == 10);  // layer 1's nine tensors and the lm_head
    CHECK(u.front() == "lm_head.weight");
    CHECK(u.back() == "model.layers.1.self_attn.v_proj.weight");
    CHECK(unused_tensors_warning("d", u) ==
          "model directory 'd': 10 tensors are not used by the model config.json describes "
          "('lm_head.weight', 'model.layers.1.input_layernorm.weight', "
          "'model.layers.1.mlp.down_proj.weight' and 7 more); check num_hidden_layers and "
          "tie_word_embeddings");
    CHECK(unused_tensors_warning("d", {}).empty());
  }
  SECTION("non-finite weights are rejected with their position") {
    const LlamaConfig c = tiny_config(false);
    std::vector<RawTensor> t = tensors_for(c);
    for (RawTensor& r : t)
      if (r.name == "model.layers.1.mlp.up_proj.weight") {
        REQUIRE(r.dtype == "BF16");
        r.bytes[2 * 21] = 0xc0, r.bytes[2 * 21 + 1] = 0x7f;  // NaN at row 2, column 5 of [12, 8]
      }
    write_safetensors(file, t);
    REQUIRE_THROWS_WITH(check_llama_tensors(c, Checkpoint(tmp.path)),
                        HasSubstr("tensor 'model.layers.1.mlp.up_proj.weight' in " +
                                  file.string() + " holds a NaN or infinity at element 21 (row "
                                                  "2, column 5)"));
  }
  SECTION("tied: no lm_head needed") {
    const LlamaConfig c = tiny_config(true);
    write_safetensors(file, tensors_for(c));
    CHECK_NOTHROW(check_llama_tensors(c, Checkpoint(tmp.path)));
    // An untied config over the same files wants the lm_head and says why.
    REQUIRE_THROWS_WITH(check_llama_tensors(tiny_config(false), Checkpoint(tmp.path)),
                        HasSubstr("tensor 'lm_head.weight' is missing"));
    REQUIRE_THROWS_WITH(check_llama_tensors(tiny_config(false), Checkpoint(tmp.path)),
                        HasSubstr("tie_word_embeddings = false"));
  }
  SECTION("missing tensor") {
    const LlamaConfig c = tiny_config(false);
    std::vector<RawTensor> t = tensors_for(c);
    t.erase(t.begin() + 3);  // layer 0 k_proj
    write_safetensors(file, t);
    REQUIRE_THROWS_WITH(check_llama_tensors(c, Checkpoint(tmp.path)),
                        HasSubstr("model directory '" + tmp.path.string() +
                                  "': tensor 'model.layers.0.self_attn.k_proj.weight' is missing "
                                  "(expected [4, 8] from config.json)"));
  }
  SECTION("wrong shape") {
    const LlamaConfig c = tiny_config(false);
    std::vector<RawTensor> t = tensors_for(c);
    for (RawTensor& r : t) {
      if (r.name == "model.layers.1.self_attn.v_proj.weight") r = filled(r.name, {8, 8});
    }
    write_safetensors(file, t);
    REQUIRE_THROWS_WITH(check_llama_tensors(c, Checkpoint(tmp.path)),
                        HasSubstr("tensor 'model.layers.1.self_attn.v_proj.weight' in " +
                                  file.string() + " has shape [8, 8], expected [4, 8]"));
  }
  SECTION("sharded, Mistral names are Llama names") {
    LlamaConfig c = tiny_config(false);
    c.architecture = "MistralForCausalLM";
    const std::vector<RawTensor> t = tensors_for(c);
    const size_t half = t.size() / 2;
    write_safetensors(tmp.path / "a.safetensors", {t.begin(), t.begin() + half});
    write_safetensors(tmp.path / "b.safetensors", {t.begin() + half, t.end()});
    json wm = json::object();
    for (size_t i = 0; i < t.size(); ++i)
      wm[t[i].name] = i < half ? "a.safetensors" : "b.safetensors";
    write_text(tmp.path / "model.safetensors.index.json", json{{"weight_map", wm}}.dump());
    const Checkpoint ckpt(tmp.path);
    CHECK_NOTHROW(check_llama_tensors(c, ckpt));
    CHECK(ckpt.tensors().size() == t.size());
  }
}
