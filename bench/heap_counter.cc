#include "bench/heap_counter.h"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>

// glibc's allocator under its exported internal names (see "Replacing malloc"
// in the glibc manual for the set of functions a replacement must provide).
extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
}

namespace gradserve::bench {
namespace {

std::atomic<int64_t> live_bytes{0};
std::atomic<int64_t> peak_bytes{0};

void Add(int64_t bytes) {
  const int64_t now = live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  int64_t peak = peak_bytes.load(std::memory_order_relaxed);
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void* Counted(void* ptr) {
  if (ptr != nullptr) Add(static_cast<int64_t>(malloc_usable_size(ptr)));
  return ptr;
}

}  // namespace

int64_t HeapLiveBytes() { return live_bytes.load(std::memory_order_relaxed); }
int64_t HeapPeakBytes() { return peak_bytes.load(std::memory_order_relaxed); }
int64_t ResetHeapPeak() {
  const int64_t now = HeapLiveBytes();
  peak_bytes.store(now, std::memory_order_relaxed);
  return now;
}

}  // namespace gradserve::bench

using gradserve::bench::Add;
using gradserve::bench::Counted;

extern "C" {

void* malloc(size_t size) { return Counted(__libc_malloc(size)); }

void free(void* ptr) {
  if (ptr == nullptr) return;
  Add(-static_cast<int64_t>(malloc_usable_size(ptr)));
  __libc_free(ptr);
}

void* calloc(size_t count, size_t size) { return Counted(__libc_calloc(count, size)); }

void* realloc(void* ptr, size_t size) {
  const int64_t old = ptr != nullptr ? static_cast<int64_t>(malloc_usable_size(ptr)) : 0;
  void* moved = __libc_realloc(ptr, size);
  if (moved != nullptr) {
    Add(static_cast<int64_t>(malloc_usable_size(moved)) - old);
  } else if (size == 0) {
    Add(-old);  // realloc(ptr, 0) freed ptr
  }
  return moved;
}

void* reallocarray(void* ptr, size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(ptr, bytes);
}

void* memalign(size_t alignment, size_t size) {
  return Counted(__libc_memalign(alignment, size));
}
void* aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }
void* valloc(size_t size) { return memalign(getpagesize(), size); }
void* pvalloc(size_t size) {
  const size_t page = getpagesize();
  return memalign(page, (size + page - 1) / page * page);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* ptr = memalign(alignment, size);
  if (ptr == nullptr) return ENOMEM;
  *out = ptr;
  return 0;
}

}  // extern "C"
