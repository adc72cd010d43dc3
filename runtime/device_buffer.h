// The one owner of device memory: an RAII buffer. Everything else borrows pointers from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "runtime/units.h"  // format_bytes

namespace kvcomp {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // Allocates `bytes`; when the GPU is out of memory, throws Error naming `what` and saying how
  // much was needed and how much is free.
  DeviceBuffer(size_t bytes, const std::string& what);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return ptr_ == nullptr; }

  // Keeps the allocation when it is large enough, else reallocates (contents are lost).
  void ensure(size_t bytes, const std::string& what);
  // Host <-> device copies on the default stream (synchronous).
  void upload(const void* src, size_t bytes, size_t offset = 0);
  void download(void* dst, size_t bytes, size_t offset = 0) const;
  void zero();

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Device memory in use by this process's allocations (for peak-memory reports).
size_t device_bytes_allocated();
size_t device_bytes_peak();
// Changes whenever device memory is allocated or freed (CUDA graphs captured before a change
// may point at freed memory and are captured again).
uint64_t device_alloc_epoch();
void device_reset_peak();
// A cap on device_bytes_allocated(): an allocation past it fails as out of memory does (0: no
// cap). Defaults to the environment's KVCOMP_GPU_MEMORY_LIMIT (bytes, or 512M, 20G, ...).
size_t device_memory_limit();
// Device memory an allocation could take now: the GPU's free memory, within the limit.
size_t device_bytes_free();
void device_set_memory_limit(size_t bytes);

}  // namespace kvcomp
