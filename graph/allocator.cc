#include "graph/allocator.h"

#include <cstdlib>
#include <cstring>

namespace gradserve {

void Allocator::CopyWithin(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
}

bool Allocator::CopyToHostMemory(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
  return true;
}

namespace {

class HostAllocatorImpl final : public Allocator {
 public:
  void* Allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    // aligned_alloc wants a size that is a multiple of the alignment.
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    return std::aligned_alloc(kAlignment, rounded);
  }
  void Deallocate(void* ptr, size_t) override { std::free(ptr); }
  absl::string_view device_name() const override { return "cpu:0"; }
  bool host_accessible() const override { return true; }
};

}  // namespace

Allocator* HostAllocator() {
  static auto* allocator = new HostAllocatorImpl;
  return allocator;
}

}  // namespace gradserve
