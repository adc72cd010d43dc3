#include "runtime/kv_options.h"

#include "runtime/error.h"

namespace kvcomp {

namespace {
struct ModeName {
  KvMode mode;
  const char* name;
};
constexpr ModeName kModes[] = {{KvMode::kFp16, "fp16"}, {KvMode::kFp32, "fp32"}};
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

KvMode parse_kv_mode(const std::string& s) {
  for (const auto& e : kModes)
    if (s == e.name) return e.mode;
  std::string list;
  for (const auto& e : kModes) list += std::string(list.empty() ? "" : ", ") + e.name;
  fail("--kv: unknown mode '", s, "' (expected one of: ", list, ")");
}

}  // namespace kvcomp
