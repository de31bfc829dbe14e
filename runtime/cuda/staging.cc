// GpuStagingAllocator (runtime/device.h) in a build with CUDA: the pinned pool.
#include "runtime/cuda/cuda_device.h"

namespace gradserve {

Allocator* GpuStagingAllocator() { return PinnedHostAllocator(); }

}  // namespace gradserve
