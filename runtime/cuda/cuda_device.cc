#include "runtime/cuda/cuda_device.h"

#include <cstring>

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

// -- CudaAllocator --------------------------------------------------------------

void* CudaAllocator::Allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  if (cudaMallocAsync(&ptr, bytes, device_->stream()) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  const int64_t now = in_use_ += static_cast<int64_t>(bytes);
  int64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  return ptr;
}

void CudaAllocator::Deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  // Stream-ordered: the memory is reused only by work queued after this.
  cudaFreeAsync(ptr, device_->stream());
  in_use_ -= static_cast<int64_t>(bytes);
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
  std::unique_ptr<CudaDevice> d(
      new CudaDevice(absl::StrCat("cuda:", options.ordinal), options.ordinal));
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
      cublasSetMathMode(d->cublas_,
                        options.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH),
      "cublasSetMathMode"));
  return d;
}

CudaDevice::~CudaDevice() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  {
    absl::MutexLock lock(&staging_mu_);
    if (staging_ != nullptr) cudaFreeHost(staging_);
  }
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

absl::Status CudaDevice::Activate() const {
  return CudaError(cudaSetDevice(ordinal_), absl::StrCat("cudaSetDevice(", ordinal_, ")"));
}

absl::Status CudaDevice::Synchronize() {
  return CudaError(cudaStreamSynchronize(stream_), absl::StrCat(name(), ": synchronize"));
}

absl::Status CudaDevice::EnsureStaging(size_t bytes) {
  if (bytes <= staging_bytes_) return absl::OkStatus();
  if (staging_ != nullptr) {
    cudaFreeHost(staging_);
    staging_ = nullptr;
    staging_bytes_ = 0;
  }
  GS_RETURN_IF_ERROR(CudaError(cudaMallocHost(&staging_, bytes), "pinned staging buffer"));
  staging_bytes_ = bytes;
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CudaDevice::CopyFromHost(const Tensor& src) {
  GS_CHECK_ARG(src.host_accessible(), "CopyFromHost: the tensor is on ", src.device(),
               ", not in host memory");
  GS_RETURN_IF_ERROR(Activate());
  Tensor out(&allocator_, src.dtype(), src.shape());
  const size_t bytes = src.bytes();
  if (bytes == 0) return out;
  if (out.raw_data() == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat(name(), ": out of memory for ", bytes, " bytes"));
  }
  // Through pinned memory: one DMA transfer, and the source may change once
  // this returns.
  absl::MutexLock lock(&staging_mu_);
  GS_RETURN_IF_ERROR(EnsureStaging(bytes));
  std::memcpy(staging_, src.raw_data(), bytes);
  GS_RETURN_IF_ERROR(CudaError(
      cudaMemcpyAsync(out.raw_data(), staging_, bytes, cudaMemcpyHostToDevice, stream_),
      absl::StrCat(name(), ": copy to the device")));
  GS_RETURN_IF_ERROR(Synchronize());  // the staging buffer is reused
  return out;
}

absl::StatusOr<Tensor> CudaDevice::CopyToHost(const Tensor& src) {
  GS_CHECK_ARG(src.device() == name(), "CopyToHost: the tensor is on ", src.device(),
               ", not on ", name());
  GS_RETURN_IF_ERROR(Activate());
  Tensor out(src.dtype(), src.shape());
  const size_t bytes = src.bytes();
  if (bytes == 0) return out;
  absl::MutexLock lock(&staging_mu_);
  GS_RETURN_IF_ERROR(EnsureStaging(bytes));
  GS_RETURN_IF_ERROR(CudaError(
      cudaMemcpyAsync(staging_, src.raw_data(), bytes, cudaMemcpyDeviceToHost, stream_),
      absl::StrCat(name(), ": copy to the host")));
  GS_RETURN_IF_ERROR(Synchronize());
  std::memcpy(out.raw_data(), staging_, bytes);
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

}  // namespace gradserve
