// One include for Catch2 2.13 (Debian 12) and Catch2 3.x (newer distributions).
#pragma once

#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
using Catch::Approx;
// Matcher for REQUIRE_THROWS_WITH(expr, HasSubstr("...")).
inline auto HasSubstr(const std::string& s) {
  return Catch::Matchers::ContainsSubstring(s);
}
#else
#include <catch2/catch.hpp>
inline auto HasSubstr(const std::string& s) {
  return Catch::Matchers::Contains(s);
}
#endif
