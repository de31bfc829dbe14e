// Eigen tensor expressions on a CudaDevice's stream, for .cu files only.
//
//   gradserve::cuda::EigenGpu gpu(stream, ordinal);
//   out.device(gpu.device()) = (x + y.broadcast(b)).cwiseMax(0.f);
//
// EigenGpu is made per launch and is cheap: it implements Eigen's
// StreamInterface over our stream, so Eigen's temporary buffers (reduction
// scratch, its semaphore) come from the stream-ordered pool (cudaMallocAsync
// and cudaFreeAsync on the same stream) and nothing synchronizes. Eigen's
// GpuStreamDevice would cudaMalloc and cudaFree instead, and cudaFree waits
// for the whole device.
//
// It may go out of scope while its kernel is still queued: Eigen's
// TensorExecutor for GpuDevice launches, cleans up the evaluator (temporaries
// go back with deallocate, stream-ordered) and returns without synchronizing;
// the kernel gets the evaluator by value and never dereferences the device;
// the scratchpad is freed with cudaFreeAsync on the same stream.
#pragma once

#ifndef __CUDACC__
#error "eigen_gpu.h is for nvcc (.cu files)"
#endif

#define EIGEN_USE_GPU
#include <cuda_runtime_api.h>

#include "unsupported/Eigen/CXX11/Tensor"

namespace gradserve::cuda {

class EigenStream final : public Eigen::StreamInterface {
 public:
  EigenStream(cudaStream_t stream, int ordinal) : stream_(stream), ordinal_(ordinal) {}
  ~EigenStream() override {
    if (scratch_ != nullptr) cudaFreeAsync(scratch_, stream_);
  }
  EigenStream(const EigenStream&) = delete;
  EigenStream& operator=(const EigenStream&) = delete;

  const cudaStream_t& stream() const override { return stream_; }
  const cudaDeviceProp& deviceProperties() const override {
    return Eigen::GetGpuDeviceProperties(ordinal_);
  }
  void* allocate(size_t bytes) const override {
    void* p = nullptr;
    return cudaMallocAsync(&p, bytes, stream_) == cudaSuccess ? p : nullptr;
  }
  void deallocate(void* buffer) const override {
    if (buffer != nullptr) cudaFreeAsync(buffer, stream_);
  }
  void* scratchpad() const override {
    if (scratch_ == nullptr) scratch_ = allocate(Eigen::kGpuScratchSize + sizeof(unsigned int));
    return scratch_;
  }
  unsigned int* semaphore() const override {
    if (semaphore_ == nullptr) {
      char* scratch = static_cast<char*>(scratchpad()) + Eigen::kGpuScratchSize;
      semaphore_ = reinterpret_cast<unsigned int*>(scratch);
      cudaMemsetAsync(semaphore_, 0, sizeof(unsigned int), stream_);
    }
    return semaphore_;
  }

 private:
  cudaStream_t stream_;
  int ordinal_;
  mutable void* scratch_ = nullptr;
  mutable unsigned int* semaphore_ = nullptr;
};

// An Eigen::GpuDevice over EigenStream; one per launch.
class EigenGpu {
 public:
  EigenGpu(cudaStream_t stream, int ordinal) : stream_(stream, ordinal), device_(&stream_) {}
  const Eigen::GpuDevice& device() const { return device_; }
  // The launch error, if any (cudaGetLastError clears it for the next launch).
  // With NDEBUG (release builds) Eigen's launch macro leaves the error to us;
  // without it, Eigen's gpu_assert(cudaGetLastError() == cudaSuccess) aborts
  // on a failed launch first.
  static cudaError_t LastError() { return cudaGetLastError(); }

 private:
  EigenStream stream_;
  Eigen::GpuDevice device_;
};

// Row-major Eigen maps over raw pointers.
template <typename T, int N>
using DeviceMap = Eigen::TensorMap<Eigen::Tensor<T, N, Eigen::RowMajor, Eigen::DenseIndex>>;
template <typename T, int N>
using ConstDeviceMap =
    Eigen::TensorMap<Eigen::Tensor<const T, N, Eigen::RowMajor, Eigen::DenseIndex>>;

}  // namespace gradserve::cuda
