#include "runtime/cuda/cuda_device.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
    // A capturing thread (a fetch's host buffer: Note [Device graphs]) may
    // not make calls that can synchronize; relaxed mode lets this one through
    // without breaking the capture, as it touches no captured stream.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    cudaThreadExchangeStreamCaptureMode(&mode);
    const cudaError_t e = cudaHostAlloc(&p, size_t{1} << cls, cudaHostAllocPortable);
    cudaThreadExchangeStreamCaptureMode(&mode);
    if (e != cudaSuccess) {
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

// What one thread's capture on one device has allocated and freed.
struct CudaDevice::Capture {
  const CudaDevice* device;
  // Allocated in the capture (graph memory) and not yet freed in it.
  absl::flat_hash_map<void*, size_t> live;
  // Freed in the capture though allocated before it: freed on the device's
  // stream when the capture ends, and the capture fails.
  std::vector<std::pair<void*, size_t>> foreign;
  absl::Status error;  // the first thing the capture could not record
};

thread_local CudaDevice::Capture* CudaDevice::current_capture_ = nullptr;

void* CudaAllocator::Allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  if (cudaMallocAsync(&ptr, bytes, device_->stream()) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  if (CudaDevice::Capture* capture = device_->capture()) {
    // Graph memory: the driver maps it when the graph is launched.
    capture->live.emplace(ptr, bytes);
    return ptr;
  }
  RaisePeak(peak_, in_use_ += static_cast<int64_t>(bytes));
  GpuUsage& usage = UsageOf(device_->ordinal());
  RaisePeak(usage.peak, usage.in_use += static_cast<int64_t>(bytes));
  return ptr;
}

void CudaAllocator::Deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  if (CudaDevice::Capture* capture = device_->capture()) {
    if (capture->live.erase(ptr) > 0) {
      cudaFreeAsync(ptr, device_->stream());  // a free node of the graph
      return;
    }
    capture->foreign.emplace_back(ptr, bytes);
    if (capture->error.ok()) {
      capture->error = absl::FailedPreconditionError(
          "the run frees device memory allocated before the capture, which a replay would "
          "still read");
    }
    return;
  }
  if (device_->IsOrphan(ptr)) return;
  // Stream-ordered: the memory is reused only by work queued after this.
  cudaFreeAsync(ptr, device_->stream());
  in_use_ -= static_cast<int64_t>(bytes);
  UsageOf(device_->ordinal()).in_use -= static_cast<int64_t>(bytes);
}

void CudaAllocator::CopyWithin(void* dst, const void* src, size_t bytes) {
  cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, device_->stream());
}

bool CudaAllocator::CopyToHostMemory(void* dst, const void* src, size_t bytes) {
  if (CudaDevice::Capture* capture = device_->capture()) {
    if (capture->error.ok()) {
      capture->error = absl::FailedPreconditionError("a kernel waits for a copy to the host");
    }
    return false;
  }
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
    return absl::FailedPreconditionError(absl::StrCat("no GPU cuda:", options.ordinal,
                                                      "; this machine has ", count,
                                                      " (cuda:0 to cuda:", count - 1, ")"));
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
  GS_RETURN_IF_ERROR(
      CudaError(cudaMemPoolSetAttribute(d->pool_, cudaMemPoolAttrReleaseThreshold, &threshold),
                "memory pool release threshold"));
  GS_RETURN_IF_ERROR(CublasError(cublasCreate(&d->cublas_), "cublasCreate"));
  GS_RETURN_IF_ERROR(CublasError(cublasSetStream(d->cublas_, d->stream_), "cublasSetStream"));
  GS_RETURN_IF_ERROR(
      CublasError(cublasSetMathMode(d->cublas_, options.matmul_precision == MatMulPrecision::kTf32
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
  if (capture_cublas_ != nullptr) cublasDestroy(capture_cublas_);
  if (capture_workspace_ != nullptr) cudaFree(capture_workspace_);
  if (capture_stream_ != nullptr) cudaStreamDestroy(capture_stream_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

CudaDevice::Capture* CudaDevice::capture() const {
  Capture* c = current_capture_;
  return c != nullptr && c->device == this ? c : nullptr;
}

bool CudaDevice::Capturing() const { return capture() != nullptr; }

cudaStream_t CudaDevice::stream() const { return capture() != nullptr ? capture_stream_ : stream_; }

cublasHandle_t CudaDevice::cublas() const {
  return capture() != nullptr ? capture_cublas_ : cublas_;
}

bool CudaDevice::IsOrphan(void* ptr) const {
  if (!has_orphans_.load(std::memory_order_acquire)) return false;
  absl::MutexLock lock(&orphans_mu_);
  return std::find(orphans_.begin(), orphans_.end(), ptr) != orphans_.end();
}

absl::Status CudaDevice::Activate() const {
  return CudaError(cudaSetDevice(ordinal_), absl::StrCat("cudaSetDevice(", ordinal_, ")"));
}

absl::Status CudaDevice::Synchronize() {
  if (Capturing()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name(), ": cannot wait for the device while capturing a graph"));
  }
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
  // While capturing, the graph copies from this buffer at every launch and its
  // owner (the executor's graph entry) keeps it; only pinned memory is DMA.
  const bool capturing = Capturing();
  GS_CHECK_ARG(!capturing || src.allocator() == PinnedHostAllocator(),
               "a graph capture copies to the device from pinned memory only");
  GS_RETURN_IF_ERROR(CudaError(
      cudaMemcpyAsync(out.raw_data(), src.raw_data(), bytes, cudaMemcpyHostToDevice, stream()),
      absl::StrCat(name(), capturing ? ": record a copy to the device" : ": copy to the device")));
  if (capturing) return out;
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
  GS_CHECK_ARG(src.device() == name(), "CopyToHost: the tensor is on ", src.device(), ", not on ",
               name());
  GS_RETURN_IF_ERROR(Activate());
  GS_ASSIGN_OR_RETURN(Tensor out, NewTensor(PinnedHostAllocator(), src, "pinned host memory"));
  const size_t bytes = src.bytes();
  if (bytes == 0) return out;
  if (Capturing()) {
    // Recorded, not waited for: the graph's launch waits for the whole graph.
    GS_RETURN_IF_ERROR(CudaError(cudaMemcpyAsync(out.raw_data(), src.raw_data(), bytes,
                                                 cudaMemcpyDeviceToHost, capture_stream_),
                                 absl::StrCat(name(), ": record a copy to the host")));
    return out;
  }
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

// -- Device graphs -------------------------------------------------------------------

namespace {

// cuBLAS's recommended workspace on Hopper; the capture handle's is fixed, so
// that no graph records a workspace allocation of its own.
constexpr size_t kCaptureWorkspaceBytes = size_t{32} << 20;

}  // namespace

class CudaGraph final : public DeviceGraph {
 public:
  CudaGraph(CudaDevice* device, cudaGraphExec_t exec, cudaEvent_t done)
      : device_(device), exec_(exec), done_(done) {}
  ~CudaGraph() override {
    (void)device_->Activate();
    cudaGraphExecDestroy(exec_);
    cudaEventDestroy(done_);
  }

  absl::Status Replay() override {
    absl::MutexLock lock(&mu_);
    GS_RETURN_IF_ERROR(device_->Activate());
    // On the device's stream: after the work queued before (variable
    // updates), before the work queued after.
    GS_RETURN_IF_ERROR(CudaError(cudaGraphLaunch(exec_, device_->stream_),
                                 absl::StrCat(device_->name(), ": graph launch")));
    GS_RETURN_IF_ERROR(CudaError(cudaEventRecord(done_, device_->stream_),
                                 absl::StrCat(device_->name(), ": graph launch")));
    return CudaError(cudaEventSynchronize(done_), absl::StrCat(device_->name(), ": graph run"));
  }

 private:
  CudaDevice* const device_;
  absl::Mutex mu_;
  cudaGraphExec_t exec_;
  cudaEvent_t done_;
};

absl::Status CudaDevice::CreateCaptureResources() {
  if (capture_stream_ != nullptr) return absl::OkStatus();
  cudaStream_t stream = nullptr;
  cublasHandle_t handle = nullptr;
  void* workspace = nullptr;
  absl::Status s =
      CudaError(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "capture stream");
  if (s.ok()) s = CudaError(cudaMalloc(&workspace, kCaptureWorkspaceBytes), "cuBLAS workspace");
  if (s.ok()) s = CublasError(cublasCreate(&handle), "cublasCreate");
  if (s.ok()) s = CublasError(cublasSetStream(handle, stream), "cublasSetStream");
  // After cublasSetStream, which resets the workspace.
  if (s.ok()) {
    s = CublasError(cublasSetWorkspace(handle, workspace, kCaptureWorkspaceBytes),
                    "cublasSetWorkspace");
  }
  if (s.ok()) {
    s = CublasError(cublasSetMathMode(handle, matmul_precision_ == MatMulPrecision::kTf32
                                                  ? CUBLAS_TF32_TENSOR_OP_MATH
                                                  : CUBLAS_PEDANTIC_MATH),
                    "cublasSetMathMode");
  }
  if (!s.ok()) {
    if (handle != nullptr) cublasDestroy(handle);
    if (workspace != nullptr) cudaFree(workspace);
    if (stream != nullptr) cudaStreamDestroy(stream);
    return s;
  }
  capture_stream_ = stream;
  capture_cublas_ = handle;
  capture_workspace_ = workspace;
  return absl::OkStatus();
}

absl::Status CudaDevice::BeginGraphCapture() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (current_capture_ != nullptr) {
    return absl::FailedPreconditionError("this thread is capturing a graph already");
  }
  GS_RETURN_IF_ERROR(Activate());
  capture_mu_.Lock();
  absl::Status s = CreateCaptureResources();
  if (s.ok()) {
    // Thread-local mode: only this thread's calls that would break the
    // capture (synchronizing, cudaMalloc) fail; other threads go on.
    s = CudaError(cudaStreamBeginCapture(capture_stream_, cudaStreamCaptureModeThreadLocal),
                  absl::StrCat(name(), ": begin graph capture"));
  }
  if (!s.ok()) {
    capture_mu_.Unlock();
    return s;
  }
  current_capture_ = new Capture{.device = this};
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DeviceGraph>> CudaDevice::EndGraphCapture()
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::unique_ptr<Capture> capture(this->capture());
  if (capture == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(name(), ": no graph capture on this thread"));
  }
  current_capture_ = nullptr;
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(capture_stream_, &graph);
  cudaGetLastError();  // a failed capture's error is reported here, not at the next launch
  capture_mu_.Unlock();

  for (const auto& [ptr, bytes] : capture->foreign) allocator_.Deallocate(ptr, bytes);
  absl::Status s = capture->error;
  if (s.ok() && !capture->live.empty()) {
    s = absl::FailedPreconditionError(
        absl::StrCat(capture->live.size(), " device buffers allocated in the capture outlive it"));
  }
  if (!capture->live.empty()) {
    // Their addresses exist only in the discarded graph: never free them.
    absl::MutexLock lock(&orphans_mu_);
    for (const auto& [ptr, bytes] : capture->live) orphans_.push_back(ptr);
    has_orphans_.store(true, std::memory_order_release);
  }
  if (s.ok()) s = CudaError(ended, absl::StrCat(name(), ": graph capture"));
  if (!s.ok()) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    return s;
  }
  cudaGraphExec_t exec = nullptr;
  s = CudaError(cudaGraphInstantiate(&exec, graph, 0), absl::StrCat(name(), ": graph instantiate"));
  cudaGraphDestroy(graph);
  GS_RETURN_IF_ERROR(s);
  cudaEvent_t done = nullptr;
  s = CudaError(cudaEventCreateWithFlags(&done, cudaEventDisableTiming),
                absl::StrCat(name(), ": graph event"));
  if (!s.ok()) {
    cudaGraphExecDestroy(exec);
    return s;
  }
  return std::unique_ptr<DeviceGraph>(new CudaGraph(this, exec, done));
}

CudaMemoryStats CudaDevice::memory_stats() const {
  CudaMemoryStats s;
  s.in_use_bytes = allocator_.in_use();
  s.peak_in_use_bytes = allocator_.peak();
  uint64_t reserved = 0;
  if (cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved) == cudaSuccess) {
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
                                          .pool_release_threshold = options.pool_release_threshold,
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
    // Device graphs' memory (graph memory nodes) is reserved apart from the pool.
    uint64_t graphs = 0;
    if (cudaDeviceGetGraphMemAttribute(i, cudaGraphMemAttrReservedMemCurrent, &graphs) ==
        cudaSuccess) {
      s.pool_reserved_bytes += static_cast<int64_t>(graphs);
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace gradserve
