// Heap bytes in use and their high-water mark, for benchmarks that report the
// memory an operation needs (bench/train_bench.cc: the peak of a training step).
//
// heap_counter.cc replaces glibc's malloc family with thin wrappers around
// glibc's own allocator (__libc_malloc and friends, which glibc exports for
// exactly this) that add or subtract malloc_usable_size of each block. glibc
// routes every allocation of the process through the replacement, its own and
// the shared libraries' included, so the count covers tensors (HostAllocator
// uses aligned_alloc), oneDNN's scratchpads and the executor's bookkeeping
// alike. Bytes are usable sizes (a request rounded up to glibc's chunk size),
// not pages touched: what an allocator with perfect reuse would need.
//
// Cost: two relaxed atomic adds and a compare per malloc/free. Link
// heap_counter.cc only into benchmark binaries (never into a library).
// Thread safety: every function may be called from any thread.
#pragma once

#include <cstdint>

namespace gradserve::bench {

// Bytes in blocks allocated and not yet freed.
int64_t HeapLiveBytes();
// The largest HeapLiveBytes() since the process started or the last ResetHeapPeak().
int64_t HeapPeakBytes();
// Restarts the high-water mark at the bytes in use now, and returns them.
int64_t ResetHeapPeak();

}  // namespace gradserve::bench
