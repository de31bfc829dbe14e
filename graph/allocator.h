// Allocator: where tensor buffers live. The host allocator hands out 64-byte
// aligned memory (a cache line, and the widest AVX-512 load). Device allocators
// (runtime/) implement the same interface. Implementations must be thread-safe.
#pragma once

#include <cstddef>
#include "absl/strings/string_view.h"

namespace gradserve {

class Allocator {
 public:
  static constexpr size_t kAlignment = 64;

  virtual ~Allocator() = default;
  // Returns `bytes` bytes aligned to kAlignment, or nullptr when out of memory.
  // Zero bytes returns nullptr, which Deallocate accepts.
  virtual void* Allocate(size_t bytes) = 0;
  virtual void Deallocate(void* ptr, size_t bytes) = 0;
  // The device whose memory this is: "cpu:0", "cuda:0", ...
  virtual absl::string_view device_name() const = 0;
  // True when the CPU may dereference the memory.
  virtual bool host_accessible() const = 0;
  // Copies `bytes` between two buffers of this allocator (a device copies on
  // its own stream, ordered after the work that wrote `src`).
  virtual void CopyWithin(void* dst, const void* src, size_t bytes);
  // Copies `bytes` from a buffer of this allocator to host memory `dst` and
  // waits for it (a device: after the work queued before). False on failure.
  virtual bool CopyToHostMemory(void* dst, const void* src, size_t bytes);
};

// The process-wide host allocator (never destroyed).
Allocator* HostAllocator();

}  // namespace gradserve
