// Helpers of the GPU tests: host <-> device copies of vectors, NaN-poisoned outputs, the
// relative error they compare with.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/cuda_check.h"
#include "runtime/device_buffer.h"
#include "tests/catch.h"

namespace kvcomp::test {

template <typename T>
DeviceBuffer upload(const std::vector<T>& v, const char* what = "test input") {
  DeviceBuffer b(std::max<size_t>(v.size() * sizeof(T), 1), what);
  if (!v.empty()) b.upload(v.data(), v.size() * sizeof(T));
  return b;
}

template <typename T>
std::vector<T> download(const DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  if (n) b.download(v.data(), n * sizeof(T));
  return v;
}

// bytes of 0xff: NaN in fp32, fp16 and bf16, so an output never written fails its comparison.
inline DeviceBuffer poisoned(size_t bytes) {
  DeviceBuffer b(bytes, "test output");
  KVCOMP_CUDA_CHECK(cudaMemset(b.get(), 0xff, bytes));
  return b;
}

// ||a - b|| / ||b|| over n values, NaN-propagating.
inline double rel_err(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(a[i]) - b[i];
    num += d * d;
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  return rel_err(a.data(), b.data(), a.size());
}

}  // namespace kvcomp::test
