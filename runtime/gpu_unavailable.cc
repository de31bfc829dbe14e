// The GPU entry points of runtime/device.h in a build without CUDA
// (GRADSERVE_CUDA=OFF, or no nvcc found): no GPUs, and a reason that says how
// to get them. Compiled only then (runtime/CMakeLists.txt).
#include "runtime/device.h"

namespace gradserve {

int GpuCount() { return 0; }

std::string GpuUnavailableReason() {
  return "this gradserve was built without CUDA (configure with -DGRADSERVE_CUDA=ON and the "
         "CUDA toolkit installed)";
}

absl::StatusOr<std::unique_ptr<Device>> CreateGpuDevice(const GpuOptions& options) {
  return absl::FailedPreconditionError(GpuUnavailableReason());
}

std::vector<GpuMemoryStats> GpuMemoryUsage() { return {}; }

Allocator* GpuStagingAllocator() { return HostAllocator(); }

}  // namespace gradserve
