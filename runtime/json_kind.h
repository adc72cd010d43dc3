// A short description of a JSON value's type for error messages (never the value itself: it may
// be huge). Shared by the config and safetensors readers.
#pragma once

#include <nlohmann/json.hpp>

namespace kvcomp {

inline const char* json_kind(const nlohmann::json& j) {
  using nlohmann::json;
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a floating-point number";
    default:
      return "an invalid value";
  }
}

}  // namespace kvcomp
