#include "runtime/kv_options.h"

#include "runtime/error.h"

namespace kvcomp {

namespace {
struct ModeName {
  KvMode mode;
  const char* name;
};
constexpr ModeName kModes[] = {
    {KvMode::kFp16, "fp16"},     {KvMode::kFp16Cublas, "fp16-cublas"},
    {KvMode::kKvcomp, "kvcomp"}, {KvMode::kKvcompUnfused, "kvcomp-unfused"},
    {KvMode::kKvcompFixed, "kvcomp-fixed"},
    {KvMode::kKivi2, "kivi2"},   {KvMode::kKivi4, "kivi4"},
    {KvMode::kInt8, "int8"},     {KvMode::kFp8, "fp8"},
    {KvMode::kFp32, "fp32"}};
}  // namespace

const char* kv_mode_name(KvMode m) {
  for (const auto& e : kModes)
    if (e.mode == m) return e.name;
  return "?";
}

std::vector<std::string> kv_mode_names() {
  std::vector<std::string> names;
  for (const auto& e : kModes) names.push_back(e.name);
  return names;
}

KvMode parse_kv_mode(const std::string& s, const char* option) {
  for (const auto& e : kModes)
    if (s == e.name) return e.mode;
  std::string list;
  for (const auto& e : kModes) list += std::string(list.empty() ? "" : ", ") + e.name;
  fail(option, ": unknown mode '", s, "' (expected one of: ", list, ")");
}

}  // namespace kvcomp

namespace kvcomp {

void validate(const KvOptions& o) {
  auto eb_ok = [](float eb) { return eb >= 1.0f / 250.0f && eb <= 1.0f; };
  check(eb_ok(o.eb_k), "--eb-k: expected a relative error bound in [0.004, 1], got ", o.eb_k);
  check(eb_ok(o.eb_v), "--eb-v: expected a relative error bound in [0.004, 1], got ", o.eb_v);
  auto block_ok = [](int b) { return b == 16 || b == 32 || b == 64 || b == 128 || b == 256; };
  check(block_ok(o.block_k), "--block-k: expected 16, 32, 64, 128 or 256 tokens, got ", o.block_k);
  check(block_ok(o.block_v), "--block-v: expected 16, 32, 64, 128 or 256 tokens, got ", o.block_v);
  check(o.window_k >= 0 && o.window_k <= 65536, "--window-k: expected 0..65536 tokens, got ",
        o.window_k);
  check(o.window_v >= 0 && o.window_v <= 65536, "--window-v: expected 0..65536 tokens, got ",
        o.window_v);
  check(o.max_code_len >= 1 && o.max_code_len <= 12, "--max-code-len: expected 1..12 bits, got ",
        o.max_code_len);
  check(o.quant_group >= 0 && o.quant_group <= 65535,
        "--quant-group: expected 0 (the whole head) or a channel count, got ", o.quant_group);
}

}  // namespace kvcomp
