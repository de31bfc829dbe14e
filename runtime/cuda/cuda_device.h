// CudaDevice: one NVIDIA GPU as a Device (DESIGN.md §4, issue 6). Its memory
// comes from the stream-ordered allocator (cudaMallocAsync / cudaFreeAsync on
// the device's stream, from the device's default memory pool, which keeps up
// to `pool_release_threshold` bytes cached across synchronizations); work is
// queued on one stream, to which the cuBLAS handle is bound; host copies go
// by DMA from and to pinned memory (Note [Host copies]). Synchronize() waits
// for the stream.
//
// Built only with GRADSERVE_CUDA (GRADSERVE_HAVE_CUDA defined); used only when
// CudaDeviceCount() > 0. Without a GPU (or a driver) Create() fails with
// FailedPrecondition saying why, and nothing else touches CUDA.
//
// Device graphs (Note [Device graphs], runtime/executor.h) are CUDA graphs
// made by stream capture: while a thread captures, stream() and cublas() give
// that thread a capture stream and a cuBLAS handle bound to it (with a fixed
// workspace), so other threads' runs go on on the device's stream meanwhile
// (cudaStreamCaptureModeThreadLocal). Memory allocated in the capture is the
// graph's (memory nodes: the addresses stay valid for every launch); a
// capture that frees memory allocated before it, or leaves memory it
// allocated in use, fails. Graphs are launched on the device's stream.
//
// Thread safety: every method may be called concurrently. The stream orders
// all work; cuBLAS calls are serialized by the device (LockCublas).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/device.h"

namespace gradserve {

// The CUDA GPUs this process can use: 0 without a GPU or a driver.
int CudaDeviceCount();
// Why CudaDeviceCount() is 0 (the driver's answer), or "" when it is not.
std::string CudaUnavailableReason();

// Why cuBLAS cannot be used ("" when it can): the server loads libcublas
// with dlopen on first use (runtime/cuda/cublas_loader.cc says why).
std::string CublasLoadError();

// Internal errors naming `what` and CUDA's (cuBLAS's) description.
absl::Status CudaError(cudaError_t error, absl::string_view what);
absl::Status CublasError(cublasStatus_t status, absl::string_view what);

struct CudaMemoryStats {
  int64_t in_use_bytes = 0;         // tensors alive on the device
  int64_t peak_in_use_bytes = 0;    // since the device was created
  int64_t pool_reserved_bytes = 0;  // the memory pool's reservation from the driver
};

class CudaDevice;

// Page-locked host memory (cudaHostAlloc), for batches bound to a GPU and for
// what CopyToHost returns: the GPU reads and writes it by DMA. Freed buffers
// go to a free list per power-of-two size and are reused, never returned to
// the driver (Deallocate may run in a stream callback, where CUDA calls are
// not allowed), so the pool holds the peak of what was in use at once.
// Process-wide; thread-safe.
Allocator* PinnedHostAllocator();

// Stream-ordered device memory (see the file comment). Allocate returns
// nullptr when the device is out of memory.
class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(CudaDevice* device) : device_(device) {}
  void* Allocate(size_t bytes) override;
  void Deallocate(void* ptr, size_t bytes) override;
  absl::string_view device_name() const override;
  bool host_accessible() const override { return false; }
  // Device to device on the stream (ordered after the work that wrote `src`).
  void CopyWithin(void* dst, const void* src, size_t bytes) override;
  bool CopyToHostMemory(void* dst, const void* src, size_t bytes) override;

  int64_t in_use() const { return in_use_.load(); }
  int64_t peak() const { return peak_.load(); }

 private:
  CudaDevice* device_;
  std::atomic<int64_t> in_use_{0}, peak_{0};
};

class CudaDevice final : public Device {
 public:
  struct Options {
    int ordinal = 0;  // cuda:<ordinal>
    // Bytes the memory pool keeps cached when the stream synchronizes
    // (cudaMemPoolAttrReleaseThreshold); the default keeps everything.
    uint64_t pool_release_threshold = UINT64_MAX;
    // How float32 matrix products run (runtime/device.h).
    MatMulPrecision matmul_precision = MatMulPrecision::kFloat32;
  };
  // FailedPrecondition when there is no GPU `ordinal` (with the driver's
  // reason); Internal for a CUDA or cuBLAS failure while setting up.
  static absl::StatusOr<std::unique_ptr<CudaDevice>> Create(const Options& options);
  ~CudaDevice() override;

  Allocator* allocator() override { return &allocator_; }
  // Note [Host copies]: CopyFromHost queues the transfer and returns; a
  // source in pinned memory (PinnedHostAllocator) is copied by DMA while the
  // host goes on, and is kept alive until the copy is done; pageable memory is
  // staged by the driver before the call returns. CopyToHost waits for the
  // work queued before it (an event, not the whole stream) and returns a
  // pinned host tensor.
  absl::StatusOr<Tensor> CopyFromHost(const Tensor& src) override;
  absl::StatusOr<Tensor> CopyToHost(const Tensor& src) override;
  absl::Status Synchronize() override;
  int intra_op_threads() const override { return 1; }
  Allocator* host_staging_allocator() override { return PinnedHostAllocator(); }

  bool SupportsGraphs() const override { return true; }
  absl::Status BeginGraphCapture() override;
  absl::StatusOr<std::unique_ptr<DeviceGraph>> EndGraphCapture() override;
  bool Capturing() const override;

  int ordinal() const { return ordinal_; }
  MatMulPrecision matmul_precision() const { return matmul_precision_; }
  // Where the calling thread's work goes: the device's stream, or the capture
  // stream while the thread captures.
  cudaStream_t stream() const;
  // The cuBLAS handle bound to stream(); hold the lock while using it.
  cublasHandle_t cublas() const;
  absl::Mutex& cublas_mutex() const ABSL_LOCK_RETURNED(cublas_mu_) { return cublas_mu_; }
  CudaMemoryStats memory_stats() const;
  // Makes this GPU current on the calling thread (before any CUDA call).
  absl::Status Activate() const override;

 private:
  friend class CudaAllocator;
  friend class CudaGraph;
  struct Capture;
  CudaDevice(std::string name, int ordinal);
  // This thread's capture on this device, or nullptr.
  Capture* capture() const;
  absl::Status CreateCaptureResources() ABSL_EXCLUSIVE_LOCKS_REQUIRED(capture_mu_);
  // Forgets memory a failed capture left in use: freeing it later is a no-op.
  bool IsOrphan(void* ptr) const;

  static thread_local Capture* current_capture_;

  const int ordinal_;
  MatMulPrecision matmul_precision_ = MatMulPrecision::kFloat32;
  CudaAllocator allocator_;
  cudaStream_t stream_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  mutable absl::Mutex cublas_mu_;

  // Held from BeginGraphCapture to EndGraphCapture: one capture at a time.
  absl::Mutex capture_mu_;
  cudaStream_t capture_stream_ = nullptr;
  cublasHandle_t capture_cublas_ = nullptr;
  void* capture_workspace_ = nullptr;
  mutable absl::Mutex orphans_mu_;
  std::vector<void*> orphans_ ABSL_GUARDED_BY(orphans_mu_);
  std::atomic<bool> has_orphans_{false};
};

}  // namespace gradserve
