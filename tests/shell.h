// Commands run from tests (the kvcomp binary, scripts): exit code and output, and fresh scratch
// directories.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/catch.h"

struct Run {
  int code;
  std::string out;  // stdout and stderr together
};

// Runs cmd through the shell; code is -1 when it did not exit normally.
inline Run shell(const std::string& cmd) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// An empty directory $TMPDIR/kvcomp_<name> (emptied if it exists).
inline std::filesystem::path temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("kvcomp_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}
