// Errors: one exception type for every bad input and every failed call. The tools catch it,
// print its message and exit non-zero; nothing in the library calls exit().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace kvcomp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds a message from any streamable pieces: fail("tensor ", name, ": expected ", n).
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

template <typename... Args>
void check(bool ok, const Args&... args) {
  if (!ok) fail(args...);
}

}  // namespace kvcomp
