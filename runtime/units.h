// Human-readable sizes for messages and tables.
#pragma once

#include <cstdio>
#include <string>

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

}  // namespace kvcomp
