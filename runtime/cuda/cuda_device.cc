#include "runtime/cuda/cuda_device.h"

#include <cstring>
#include <new>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

absl::Status CudaError(cudaError_t error, absl::string_view what) {
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, ": ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")"));
}

absl::Status CublasError(cublasStatus_t status, absl::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cublasGetStatusName(status), " (",
                                          cublasGetStatusString(status), ")"));
}

int CudaDeviceCount() {
  int count = 0;
  // Without a GPU: cudaErrorNoDevice; without a driver: cudaErrorInsufficientDriver.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error for later calls
    return 0;
  }
  return count;
}

std::string CudaUnavailableReason() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return absl::StrCat("no CUDA GPU: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
  }
  return count > 0 ? "" : "no CUDA GPU: the driver reports none";
}

// -- Process-wide accounting per GPU --------------------------------------------

namespace {

constexpr int kMaxGpus = 64;

struct GpuUsage {
  std::atomic<int64_t> in_use{0}, peak{0};
  std::atomic<bool> used{false};
};

GpuUsage& UsageOf(int ordinal) {
  static GpuUsage* usage = new GpuUsage[kMaxGpus];
  return usage[ordinal % kMaxGpus];
}

void RaisePeak(std::atomic<int64_t>& peak, int64_t now) {
  int64_t p = peak.load();
  while (now > p && !peak.compare_exchange_weak(p, now)) {
  }
}

// Pinned host buffers by power-of-two size class (PinnedHostAllocator).
class PinnedPool final : public Allocator {
 public:
  void* Allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const int cls = SizeClass(bytes);
    {
      absl::MutexLock lock(&mu_);
      std::vector<void*>& free = free_[cls];
      if (!free.empty()) {
        void* p = free.back();
        free.pop_back();
        return p;
      }
    }
    void* p = nullptr;
    if (cudaHostAlloc(&p, size_t{1} << cls, cudaHostAllocPortable) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return p;
  }
  void Deallocate(void* ptr, size_t bytes) override {
    if (ptr == nullptr) return;
    absl::MutexLock lock(&mu_);
    free_[SizeClass(bytes)].push_back(ptr);
  }
  absl::string_view device_name() const override { return "cpu:0"; }
  bool host_accessible() const override { return true; }

 private:
  // The smallest class >= bytes (at least 4 KiB, a page).
  static int SizeClass(size_t bytes) {
    int cls = 12;
    while ((size_t{1} << cls) < bytes) ++cls;
    return cls;
  }
  absl::Mutex mu_;
  std::vector<void*> free_[64] ABSL_GUARDED_BY(mu_);
};

}  // namespace

Allocator* PinnedHostAllocator() {
  static auto* pool = new PinnedPool;
  return pool;
}

// -- CudaAllocator --------------------------------------------------------------

void* CudaAllocator::Allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  if (cudaMallocAsync(&ptr, bytes, device_->stream()) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  RaisePeak(peak_, in_use_ += static_cast<int64_t>(bytes));
  GpuUsage& usage = UsageOf(device_->ordinal());
  RaisePeak(usage.peak, usage.in_use += static_cast<int64_t>(bytes));
  return ptr;
}

void CudaAllocator::Deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  // Stream-ordered: the memory is reused only by work queued after this.
  cudaFreeAsync(ptr, device_->stream());
  in_use_ -= static_cast<int64_t>(bytes);
  UsageOf(device_->ordinal()).in_use -= static_cast<int64_t>(bytes);
}

void CudaAllocator::CopyWithin(void* dst, const void* src, size_t bytes) {
  cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, device_->stream());
}

bool CudaAllocator::CopyToHostMemory(void* dst, const void* src, size_t bytes) {
  if (!device_->Activate().ok()) return false;
  return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, device_->stream()) ==
             cudaSuccess &&
         cudaStreamSynchronize(device_->stream()) == cudaSuccess;
}

absl::string_view CudaAllocator::device_name() const { return device_->name(); }

// -- CudaDevice ---------------------------------------------------------------------

CudaDevice::CudaDevice(std::string name, int ordinal)
    : Device(std::move(name), kDeviceCuda), ordinal_(ordinal), allocator_(this) {}

absl::StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::Create(const Options& options) {
  const int count = CudaDeviceCount();
  if (count == 0) return absl::FailedPreconditionError(CudaUnavailableReason());
  if (options.ordinal < 0 || options.ordinal >= count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no GPU cuda:", options.ordinal, "; this machine has ", count, " (cuda:0 to cuda:",
        count - 1, ")"));
  }
  if (std::string why = CublasLoadError(); !why.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda:", options.ordinal, " needs cuBLAS: ", why));
  }
  std::unique_ptr<CudaDevice> d(
      new CudaDevice(absl::StrCat("cuda:", options.ordinal), options.ordinal));
  UsageOf(options.ordinal).used = true;
  d->matmul_precision_ = options.matmul_precision;
  GS_RETURN_IF_ERROR(d->Activate());
  GS_RETURN_IF_ERROR(
      CudaError(cudaStreamCreateWithFlags(&d->stream_, cudaStreamNonBlocking), "stream"));
  GS_RETURN_IF_ERROR(
      CudaError(cudaDeviceGetDefaultMemPool(&d->pool_, options.ordinal), "memory pool"));
  uint64_t threshold = options.pool_release_threshold;
  GS_RETURN_IF_ERROR(CudaError(
      cudaMemPoolSetAttribute(d->pool_, cudaMemPoolAttrReleaseThreshold, &threshold),
      "memory pool release threshold"));
  GS_RETURN_IF_ERROR(CublasError(cublasCreate(&d->cublas_), "cublasCreate"));
  GS_RETURN_IF_ERROR(CublasError(cublasSetStream(d->cublas_, d->stream_), "cublasSetStream"));
  GS_RETURN_IF_ERROR(CublasError(
      cublasSetMathMode(d->cublas_, options.matmul_precision == MatMulPrecision::kTf32
                                        ? CUBLAS_TF32_TENSOR_OP_MATH
                                        : CUBLAS_PEDANTIC_MATH),
      "cublasSetMathMode"));
  return d;
}

CudaDevice::~CudaDevice() {
  // The destroying thread may have another GPU current; cuBLAS wants its own.
  (void)Activate();
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::Status CudaDevice::Activate() const {
  return CudaError(cudaSetDevice(ordinal_), absl::StrCat("cudaSetDevice(", ordinal_, ")"));
}

absl::Status CudaDevice::Synchronize() {
  return CudaError(cudaStreamSynchronize(stream_), absl::StrCat(name(), ": synchronize"));
}

namespace {

// Drops the reference to a pinned source once its DMA is done (a stream
// callback: no CUDA calls here; PinnedPool::Deallocate makes none).
void ReleaseTensor(void* tensor) { delete static_cast<Tensor*>(tensor); }

// A tensor from `allocator`, or ResourceExhausted naming `where`: Tensor's
// constructor throws std::bad_alloc when the allocator returns nullptr.
absl::StatusOr<Tensor> NewTensor(Allocator* allocator, const Tensor& like,
                                 absl::string_view where) {
  try {
    return Tensor(allocator, like.dtype(), like.shape());
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": out of memory for ", like.bytes(), " bytes"));
  }
}

}  // namespace

absl::StatusOr<Tensor> CudaDevice::CopyFromHost(const Tensor& src) {
  GS_CHECK_ARG(src.host_accessible(), "CopyFromHost: the tensor is on ", src.device(),
               ", not in host memory");
  GS_RETURN_IF_ERROR(Activate());
  GS_ASSIGN_OR_RETURN(Tensor out, NewTensor(&allocator_, src, name()));
  const size_t bytes = src.bytes();
  if (bytes == 0) return out;
  GS_RETURN_IF_ERROR(CudaError(
      cudaMemcpyAsync(out.raw_data(), src.raw_data(), bytes, cudaMemcpyHostToDevice, stream_),
      absl::StrCat(name(), ": copy to the device")));
  if (src.allocator() == PinnedHostAllocator()) {
    // The DMA reads `src` after this returns: keep its buffer until then.
    auto* keep = new Tensor(src);
    const cudaError_t e = cudaLaunchHostFunc(stream_, ReleaseTensor, keep);
    if (e != cudaSuccess) {
      cudaStreamSynchronize(stream_);  // the DMA is queued: let it finish before `src` may go
      delete keep;
      return CudaError(e, absl::StrCat(name(), ": copy to the device"));
    }
  }
  return out;
}

absl::StatusOr<Tensor> CudaDevice::CopyToHost(const Tensor& src) {
  GS_CHECK_ARG(src.device() == name(), "CopyToHost: the tensor is on ", src.device(),
               ", not on ", name());
  GS_RETURN_IF_ERROR(Activate());
  GS_ASSIGN_OR_RETURN(Tensor out, NewTensor(PinnedHostAllocator(), src, "pinned host memory"));
  const size_t bytes = src.bytes();
  if (bytes == 0) return out;
  // Wait for this copy (and what was queued before it), not for work other
  // runs queue meanwhile. The event is made first: once the DMA is queued,
  // `out` must not go back to the pinned pool before the DMA has run.
  cudaEvent_t done;
  GS_RETURN_IF_ERROR(CudaError(cudaEventCreateWithFlags(&done, cudaEventDisableTiming),
                               absl::StrCat(name(), ": copy to the host")));
  cudaError_t e =
      cudaMemcpyAsync(out.raw_data(), src.raw_data(), bytes, cudaMemcpyDeviceToHost, stream_);
  if (e == cudaSuccess) {
    e = cudaEventRecord(done, stream_);
    if (e == cudaSuccess) {
      e = cudaEventSynchronize(done);
    } else {
      cudaStreamSynchronize(stream_);
    }
  }
  cudaEventDestroy(done);
  GS_RETURN_IF_ERROR(CudaError(e, absl::StrCat(name(), ": copy to the host")));
  return out;
}

CudaMemoryStats CudaDevice::memory_stats() const {
  CudaMemoryStats s;
  s.in_use_bytes = allocator_.in_use();
  s.peak_in_use_bytes = allocator_.peak();
  uint64_t reserved = 0;
  if (cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved) ==
      cudaSuccess) {
    s.pool_reserved_bytes = static_cast<int64_t>(reserved);
  }
  return s;
}

// -- runtime/device.h's GPU entry points ------------------------------------------

int GpuCount() { return CudaDeviceCount(); }

std::string GpuUnavailableReason() {
  std::string why = CudaUnavailableReason();
  if (why.empty()) why = CublasLoadError();
  return why;
}

absl::StatusOr<std::unique_ptr<Device>> CreateGpuDevice(const GpuOptions& options) {
  GS_ASSIGN_OR_RETURN(std::unique_ptr<CudaDevice> d,
                      CudaDevice::Create({.ordinal = options.ordinal,
                                          .pool_release_threshold =
                                              options.pool_release_threshold,
                                          .matmul_precision = options.matmul_precision}));
  return std::unique_ptr<Device>(std::move(d));
}

std::vector<GpuMemoryStats> GpuMemoryUsage() {
  std::vector<GpuMemoryStats> out;
  for (int i = 0; i < kMaxGpus; ++i) {
    GpuUsage& u = UsageOf(i);
    if (!u.used) continue;
    GpuMemoryStats s{.device = absl::StrCat("cuda:", i),
                     .in_use_bytes = u.in_use.load(),
                     .peak_in_use_bytes = u.peak.load()};
    cudaMemPool_t pool;
    uint64_t reserved = 0;
    if (cudaDeviceGetDefaultMemPool(&pool, i) == cudaSuccess &&
        cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved) ==
            cudaSuccess) {
      s.pool_reserved_bytes = static_cast<int64_t>(reserved);
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace gradserve
