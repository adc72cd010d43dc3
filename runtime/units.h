// Human-readable sizes for messages and tables.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "runtime/error.h"

namespace kvcomp {

// 1536 -> "1.50 KiB"; bytes below 1 KiB print as an integer.
inline std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

// "1048576", "512M", "20G", "1.5GiB" -> bytes (K, M, G, T are powers of 1024); `what` names the
// option or variable in the error.
inline uint64_t parse_bytes(const std::string& s, const std::string& what) {
  size_t used = 0;
  double x = -1;
  try {
    x = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = s.substr(used);
  if (unit.size() >= 2 && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() == 2 && (unit[1] == 'i' || unit[1] == 'I')) unit.pop_back();
  double mult = 0;
  if (unit.empty() || unit == "B" || unit == "b") mult = 1;
  else if (unit == "K" || unit == "k") mult = 1024.0;
  else if (unit == "M" || unit == "m") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "g") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "t") mult = 1024.0 * 1024 * 1024 * 1024;
  check(used > 0 && mult > 0 && x >= 0 && x * mult < 1.8e19, what, ": '", s,
        "' is not a size (expected bytes, or a number with K, M, G or T: 512M, 20G)");
  return uint64_t(x * mult);
}

}  // namespace kvcomp
