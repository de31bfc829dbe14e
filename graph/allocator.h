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
};

// The process-wide host allocator (never destroyed).
Allocator* HostAllocator();

}  // namespace gradserve
