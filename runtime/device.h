// Device: where kernels run and tensors live. A device owns an allocator for its
// memory, copies tensors between host memory and its own, and orders its work
// (CPU work is synchronous; a CUDA device has a stream per executor and
// Synchronize() waits for it). Kernels reach device-specific resources through
// the concrete device (e.g. CpuDevice::eigen_device()).
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/allocator.h"
#include "graph/tensor.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace gradserve {

// A recording of a device's work (a CUDA graph), replayed as one launch
// (Note [Device graphs], runtime/executor.h).
class DeviceGraph {
 public:
  virtual ~DeviceGraph() = default;
  // Queues the recorded work on the device's stream and waits until it has run.
  virtual absl::Status Replay() = 0;
};

// Kernel registry key: the kind of device.
inline constexpr absl::string_view kDeviceCpu = "CPU";
inline constexpr absl::string_view kDeviceCuda = "CUDA";

class Device {
 public:
  virtual ~Device() = default;

  // "cpu:0", "cuda:1", ...
  const std::string& name() const { return name_; }
  // kDeviceCpu or kDeviceCuda.
  absl::string_view type() const { return type_; }

  virtual Allocator* allocator() = 0;
  // Copies `src` (host memory) into a new tensor in this device's memory.
  virtual absl::StatusOr<Tensor> CopyFromHost(const Tensor& src) = 0;
  // Copies `src` (this device's memory) into a new host tensor.
  virtual absl::StatusOr<Tensor> CopyToHost(const Tensor& src) = 0;
  // Waits for all work queued on this device.
  virtual absl::Status Synchronize() = 0;
  // Threads a kernel may use for one op (intra-op parallelism).
  virtual int intra_op_threads() const = 0;
  // Makes this device current on the calling thread before its kernels run
  // (a GPU: cudaSetDevice). The executor calls it; CPU: nothing to do.
  virtual absl::Status Activate() const { return absl::OkStatus(); }
  // Host memory this device copies from and to fastest (a GPU: pinned).
  virtual Allocator* host_staging_allocator() { return HostAllocator(); }

  // Device graphs (Note [Device graphs], runtime/executor.h). Between
  // BeginGraphCapture and EndGraphCapture on one thread, the work that thread
  // queues on this device is recorded into a graph instead of running, and the
  // device memory it allocates and frees there belongs to the graph. One
  // capture per device at a time (BeginGraphCapture waits for another to
  // end); other threads' work runs as usual meanwhile. A CPU has none.
  virtual bool SupportsGraphs() const { return false; }
  // Unimplemented on a device without graphs; Internal for a driver failure.
  // After success, EndGraphCapture must be called on the same thread.
  virtual absl::Status BeginGraphCapture();
  // The recording, or why it cannot be replayed (FailedPrecondition: work
  // that cannot be recorded, device memory allocated in the capture and still
  // in use after it, or memory the capture freed that it did not allocate).
  virtual absl::StatusOr<std::unique_ptr<DeviceGraph>> EndGraphCapture();
  // True while the calling thread captures on this device. Kernels must not
  // make state that outlives the run then (copy a constant or a variable to
  // the device), and fail with FailedPrecondition instead.
  virtual bool Capturing() const { return false; }

 protected:
  Device(std::string name, absl::string_view type) : name_(std::move(name)), type_(type) {}

 private:
  std::string name_;
  absl::string_view type_;
};

// The host CPU: host memory, and an Eigen thread pool for intra-op parallelism.
class CpuDevice final : public Device {
 public:
  struct Options {
    std::string name = "cpu:0";
    // Threads per op; 0 = the number of hardware threads.
    int intra_op_threads = 0;
  };
  static absl::StatusOr<std::unique_ptr<CpuDevice>> Create(const Options& options);
  ~CpuDevice() override;

  Allocator* allocator() override { return HostAllocator(); }
  absl::StatusOr<Tensor> CopyFromHost(const Tensor& src) override { return src; }
  absl::StatusOr<Tensor> CopyToHost(const Tensor& src) override { return src; }
  absl::Status Synchronize() override { return absl::OkStatus(); }
  int intra_op_threads() const override { return threads_; }

  // The Eigen device kernels evaluate tensor expressions on.
  const Eigen::ThreadPoolDevice& eigen_device() const { return *eigen_device_; }

 private:
  CpuDevice(std::string name, int threads);
  int threads_;
  std::unique_ptr<Eigen::ThreadPool> pool_;
  std::unique_ptr<Eigen::ThreadPoolDevice> eigen_device_;
};

// -- GPUs ----------------------------------------------------------------------
// Built with GRADSERVE_CUDA (runtime/cuda/); otherwise every GPU request fails
// with the reason (runtime/gpu_unavailable.cc).

// How float32 matrix products run on a GPU.
enum class MatMulPrecision {
  kFloat32,   // IEEE float32 (cuBLAS pedantic math): matches the CPU to ~1e-6
  kTf32,      // TF32 tensor cores: ~1e-3 relative error
  kBFloat16,  // operands rounded to bfloat16, float32 accumulation
  kFloat16,   // operands rounded to float16, float32 accumulation
};
// "float32", "tf32", "bfloat16", "float16"; InvalidArgument naming the choices.
absl::StatusOr<MatMulPrecision> ParseMatMulPrecision(absl::string_view name);

struct GpuOptions {
  int ordinal = 0;  // cuda:<ordinal>
  // Bytes the stream-ordered memory pool keeps cached when the stream
  // synchronizes (cudaMemPoolAttrReleaseThreshold); the default keeps all.
  uint64_t pool_release_threshold = UINT64_MAX;
  MatMulPrecision matmul_precision = MatMulPrecision::kFloat32;
};

// The GPUs this process can use: 0 when built without CUDA, or without a GPU
// or a driver.
int GpuCount();
// Why GpuCount() is 0, or "".
std::string GpuUnavailableReason();
// A cuda:N device; FailedPrecondition with the reason when there is no such GPU.
absl::StatusOr<std::unique_ptr<Device>> CreateGpuDevice(const GpuOptions& options);

// Host memory that GPUs copy from and to fastest: page-locked (pinned) when
// built with CUDA, else the host allocator. Batches bound for a GPU are
// assembled in it, so their copy is one asynchronous DMA transfer.
Allocator* GpuStagingAllocator();

// Memory of one GPU, for every device object this process made on it.
struct GpuMemoryStats {
  std::string device;               // "cuda:0"
  int64_t in_use_bytes = 0;         // tensors alive
  int64_t peak_in_use_bytes = 0;    // since the process started
  int64_t pool_reserved_bytes = 0;  // the memory pool's reservation from the driver
};
// One entry per GPU this process has used; empty without any.
std::vector<GpuMemoryStats> GpuMemoryUsage();

}  // namespace gradserve
