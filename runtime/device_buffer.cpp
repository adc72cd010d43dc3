#include "runtime/device_buffer.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "runtime/cuda_check.h"
#include "runtime/units.h"

namespace kvcomp {

namespace {
std::atomic<size_t> g_allocated{0};
std::atomic<size_t> g_peak{0};
std::atomic<uint64_t> g_epoch{0};
constexpr size_t kLimitUnset = ~size_t(0);
std::atomic<size_t> g_limit{kLimitUnset};
}  // namespace

size_t device_memory_limit() {
  if (g_limit == kLimitUnset) {
    size_t limit = 0;
    if (const char* env = std::getenv("KVCOMP_GPU_MEMORY_LIMIT"); env && *env)
      limit = size_t(parse_bytes(env, "KVCOMP_GPU_MEMORY_LIMIT"));
    size_t expected = kLimitUnset;
    g_limit.compare_exchange_strong(expected, limit);
  }
  return g_limit.load();
}

void device_set_memory_limit(size_t bytes) { g_limit = bytes; }

size_t device_bytes_free() {
  size_t free_b = 0, total_b = 0;
  KVCOMP_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const size_t limit = device_memory_limit(), used = g_allocated.load();
  if (limit > 0) free_b = std::min(free_b, limit > used ? limit - used : 0);
  return free_b;
}

[[noreturn]] static void out_of_memory(const std::string& what, size_t bytes, size_t free_b,
                                const std::string& of) {
  fail("out of GPU memory allocating ", what, ": needed ", format_bytes(double(bytes)), " (",
       bytes, " bytes), ", format_bytes(double(free_b)), " free of ", of);
}

DeviceBuffer::DeviceBuffer(size_t bytes, const std::string& what) {
  if (bytes == 0) return;
  const size_t limit = device_memory_limit(), used = g_allocated.load();
  if (limit > 0 && used + bytes > limit)
    out_of_memory(what, bytes, limit > used ? limit - used : 0,
                  "the " + format_bytes(double(limit)) + " limit (KVCOMP_GPU_MEMORY_LIMIT)");
  const cudaError_t e = cudaMalloc(&ptr_, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the sticky allocation error
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    out_of_memory(what, bytes, free_b, format_bytes(double(total_b)));
  }
  KVCOMP_CUDA_CHECK(e);
  bytes_ = bytes;
  ++g_epoch;
  const size_t now = g_allocated += bytes;
  static const bool trace = std::getenv("KVCOMP_TRACE_ALLOC") != nullptr;
  if (trace && bytes >= (size_t(1) << 20))
    std::fprintf(stderr, "device alloc %s: %s (now %s)\n", what.c_str(),
                 format_bytes(double(bytes)).c_str(), format_bytes(double(now)).c_str());
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) {
    ++g_epoch;
    cudaFree(ptr_);
    g_allocated -= bytes_;
  }
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) {
      ++g_epoch;
      cudaFree(ptr_);
      g_allocated -= bytes_;
    }
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::ensure(size_t bytes, const std::string& what) {
  if (bytes <= bytes_) return;
  *this = DeviceBuffer();
  *this = DeviceBuffer(bytes, what);
}

void DeviceBuffer::upload(const void* src, size_t bytes, size_t offset) {
  check(offset + bytes <= bytes_, "DeviceBuffer::upload: ", bytes, " bytes at ", offset,
        " exceed the buffer of ", bytes_);
  KVCOMP_CUDA_CHECK(
      cudaMemcpy(static_cast<char*>(ptr_) + offset, src, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* dst, size_t bytes, size_t offset) const {
  check(offset + bytes <= bytes_, "DeviceBuffer::download: ", bytes, " bytes at ", offset,
        " exceed the buffer of ", bytes_);
  KVCOMP_CUDA_CHECK(
      cudaMemcpy(dst, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost));
}

void DeviceBuffer::zero() {
  if (ptr_) KVCOMP_CUDA_CHECK(cudaMemset(ptr_, 0, bytes_));
}

size_t device_bytes_allocated() {
  return g_allocated.load();
}
size_t device_bytes_peak() {
  return g_peak.load();
}
uint64_t device_alloc_epoch() {
  return g_epoch.load();
}
void device_reset_peak() {
  g_peak.store(g_allocated.load());
}

}  // namespace kvcomp
