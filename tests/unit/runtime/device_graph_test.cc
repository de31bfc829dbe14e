// The executor's device graphs (Note [Device graphs], runtime/executor.h) on
// any machine. A recording test accelerator stands in for a GPU and keeps the
// Device graph contract (runtime/device.h) as CUDA stream capture does:
//   - kernels and copies queue closures on the device's "stream" (Enqueue),
//     which runs them at once, unless the calling thread captures on this
//     device: then they are recorded, not run, and Replay() runs them. One
//     capture per device at a time; Capturing() only on its thread.
//   - graph memory: device memory the capture allocates and frees stays the
//     graph's until the graph goes; a capture that frees older memory, keeps
//     memory it allocated, or waits for the device fails (FailedPrecondition).
//   - a recorded copy from or to the host uses the same address at every
//     replay, so it must be staging memory (host_staging_allocator).
//   - every buffer is tracked: work touching freed memory counts a fault (a
//     GPU would read garbage), and each test ends with no fault and no buffer.
// ReadVariableOp and Const are the CUDA device's own kernels
// (DeviceReadVariableOpKernel, DeviceConstKernel: runtime/kernels/
// state_kernels.h): a variable moves to the device on first use and is read
// as its own buffer; a constant is copied there on first use; neither makes
// such state while capturing.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "graph/status.h"
#include "gtest/gtest.h"
#include "runtime/executor.h"
#include "runtime/kernels/state_kernels.h"
#include "runtime/master.h"
#include "tests/unit/ops/op_test_util.h"
#include "unsupported/Eigen/CXX11/ThreadPool"

namespace gradserve::device_graph_test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Graphs = RunMetadata::Graph;

constexpr absl::string_view kRecAcc = "RECACC";

// Live buffers by address: which memory exists now.
class LiveSet {
 public:
  void Add(void* p, size_t bytes) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    live_[reinterpret_cast<uintptr_t>(p)] = bytes;
  }
  void Remove(void* p) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    live_.erase(reinterpret_cast<uintptr_t>(p));
  }
  // Whether [p, p + bytes) lies inside one live buffer.
  bool Contains(const void* p, size_t bytes) const ABSL_LOCKS_EXCLUDED(mu_) {
    if (bytes == 0) return true;
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    absl::MutexLock lock(&mu_);
    auto it = live_.upper_bound(a);
    if (it == live_.begin()) return false;
    --it;
    return a + bytes <= it->first + it->second;
  }
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return live_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::map<uintptr_t, size_t> live_ ABSL_GUARDED_BY(mu_);
};

// Host staging memory (a GPU's pinned memory), tracked.
class StagingAllocator final : public Allocator {
 public:
  void* Allocate(size_t bytes) override {
    void* p = HostAllocator()->Allocate(bytes);
    if (p != nullptr) live_.Add(p, bytes);
    return p;
  }
  void Deallocate(void* p, size_t bytes) override {
    if (p != nullptr) live_.Remove(p);
    HostAllocator()->Deallocate(p, bytes);
  }
  absl::string_view device_name() const override { return "cpu:0"; }
  bool host_accessible() const override { return true; }
  const LiveSet& live() const { return live_; }

 private:
  LiveSet live_;
};

// The accelerator, and the allocator of its memory (host memory underneath,
// marked not host-accessible).
class RecordingDevice final : public Device, public Allocator {
 public:
  RecordingDevice() : Device("acc:0", kRecAcc) {}

  // Device.
  Allocator* allocator() override { return this; }
  Allocator* host_staging_allocator() override { return &staging_; }
  absl::StatusOr<Tensor> CopyFromHost(const Tensor& src) override {
    GS_CHECK_ARG(src.host_accessible(), "CopyFromHost of a tensor on ", src.device());
    // Every replay reads `src`'s address: only staging memory, which its owner
    // (the executor's graph entry) keeps, may be recorded. Outside a capture
    // the copy runs now, while the caller holds `src`.
    GS_CHECK_ARG(!Capturing() || src.allocator() == &staging_,
                 "a graph capture copies to the device from staging memory only");
    Tensor out(this, src.dtype(), src.shape());
    EnqueueCopy(out.raw_data(), src.raw_data(), src.bytes(), {.to = true, .from = Capturing()});
    return out;
  }
  absl::StatusOr<Tensor> CopyToHost(const Tensor& src) override {
    GS_CHECK_ARG(src.device() == name(), "CopyToHost of a tensor on ", src.device());
    // In a capture the graph writes the result at every replay: staging memory.
    Tensor out(Capturing() ? &staging_ : HostAllocator(), src.dtype(), src.shape());
    EnqueueCopy(out.raw_data(), src.raw_data(), src.bytes(), {.to = Capturing(), .from = true});
    return out;
  }
  absl::Status Synchronize() override {
    if (!Capturing()) return absl::OkStatus();
    // As cudaStreamSynchronize on a capturing stream: an error that also
    // invalidates the capture.
    absl::Status s = absl::FailedPreconditionError(
        absl::StrCat(name(), ": cannot wait for the device while capturing a graph"));
    FailCapture(s);
    return s;
  }
  int intra_op_threads() const override { return 1; }
  bool SupportsGraphs() const override { return true; }
  absl::Status BeginGraphCapture() override;
  absl::StatusOr<std::unique_ptr<DeviceGraph>> EndGraphCapture() override;
  bool Capturing() const override { return capture() != nullptr; }

  // Allocator.
  void* Allocate(size_t bytes) override {
    void* p = HostAllocator()->Allocate(bytes);
    if (p == nullptr) return nullptr;
    memory_.Add(p, bytes);
    if (Capture* c = capture()) c->live.emplace(p, bytes);
    return p;
  }
  void Deallocate(void* p, size_t bytes) override {
    if (p == nullptr) return;
    Capture* c = capture();
    if (c == nullptr) return Free(p, bytes);
    if (c->live.erase(p) > 0) {
      c->freed.emplace_back(p, bytes);  // a free node: the graph keeps the memory
      return;
    }
    c->foreign.emplace_back(p, bytes);
    FailCapture(absl::FailedPreconditionError(
        "the run frees device memory allocated before the capture, which a replay would read"));
  }
  absl::string_view device_name() const override { return name(); }
  bool host_accessible() const override { return false; }
  void CopyWithin(void* dst, const void* src, size_t bytes) override {
    EnqueueCopy(dst, src, bytes, {.to = true, .from = true});
  }
  bool CopyToHostMemory(void* dst, const void* src, size_t bytes) override {
    if (Capturing()) {
      FailCapture(absl::FailedPreconditionError("a kernel waits for a copy to the host"));
      return false;
    }
    EnqueueCopy(dst, src, bytes, {.to = false, .from = true});
    return true;
  }

  // The stream: runs `work` now, or records it while this thread captures here.
  void Enqueue(std::function<void()> work) {
    if (Capture* c = capture()) return c->work.push_back(std::move(work));
    Run(work);
  }
  // True when [p, p + bytes) lies in a live buffer of the device or of its
  // staging memory; otherwise counts a fault.
  bool Valid(const void* p, size_t bytes) {
    if (memory_.Contains(p, bytes) || staging_.live().Contains(p, bytes)) return true;
    ++faults_;
    return false;
  }
  // Queues a memcpy; `check` says which sides are device or staging memory,
  // to be live when it runs.
  struct Tracked {
    bool to, from;
  };
  void EnqueueCopy(void* to, const void* from, size_t bytes, Tracked check) {
    if (bytes == 0) return;
    Enqueue([this, to, from, bytes, check] {
      if ((!check.to || Valid(to, bytes)) && (!check.from || Valid(from, bytes))) {
        std::memcpy(to, from, bytes);
      }
    });
  }

  int64_t executed() const { return executed_.load(); }  // closures run
  int64_t replays() const { return replays_.load(); }
  int64_t captures_begun() const { return begun_.load(); }
  int64_t faults() const { return faults_.load(); }
  // Closures the last capture recorded, and those the device ran (on any
  // thread) while it lasted.
  int64_t last_capture_recorded() const { return last_recorded_.load(); }
  int64_t last_capture_executed() const { return last_executed_.load(); }
  size_t live_buffers() const { return memory_.size() + staging_.live().size(); }

 private:
  friend class RecordingGraph;
  // What one thread's capture has recorded, allocated and freed (only that
  // thread touches it).
  struct Capture {
    const RecordingDevice* device;
    int64_t executed_at_begin;
    std::vector<std::function<void()>> work;
    absl::flat_hash_map<void*, size_t> live;        // allocated in it, not freed
    std::vector<std::pair<void*, size_t>> freed;    // allocated and freed: the graph's
    std::vector<std::pair<void*, size_t>> foreign;  // freed in it, allocated before
    absl::Status error;                             // the first thing that could not be recorded
  };
  Capture* capture() const {
    Capture* c = current_capture_;
    return c != nullptr && c->device == this ? c : nullptr;
  }
  void FailCapture(absl::Status status) {
    if (Capture* c = capture(); c != nullptr && c->error.ok()) c->error = std::move(status);
  }
  void Run(const std::function<void()>& work) {
    ++executed_;
    work();
  }
  void Free(void* p, size_t bytes) {
    memory_.Remove(p);
    HostAllocator()->Deallocate(p, bytes);
  }

  static thread_local Capture* current_capture_;
  StagingAllocator staging_;
  LiveSet memory_;
  absl::Mutex capture_mu_;  // held from BeginGraphCapture to EndGraphCapture
  std::atomic<int64_t> executed_{0}, replays_{0}, begun_{0}, faults_{0};
  std::atomic<int64_t> last_recorded_{0}, last_executed_{0};
};

thread_local RecordingDevice::Capture* RecordingDevice::current_capture_ = nullptr;

class RecordingGraph final : public DeviceGraph {
 public:
  RecordingGraph(RecordingDevice* device, std::vector<std::function<void()>> work,
                 std::vector<std::pair<void*, size_t>> memory)
      : device_(device), work_(std::move(work)), memory_(std::move(memory)) {}
  ~RecordingGraph() override {
    for (const auto& [p, bytes] : memory_) device_->Free(p, bytes);
  }
  absl::Status Replay() override {
    absl::MutexLock lock(&mu_);
    const int64_t faults = device_->faults();
    ++device_->replays_;
    for (const auto& w : work_) device_->Run(w);
    if (device_->faults() != faults) return absl::InternalError("a replay touched freed memory");
    return absl::OkStatus();
  }

 private:
  RecordingDevice* const device_;
  absl::Mutex mu_;  // one replay of this graph at a time
  const std::vector<std::function<void()>> work_;
  const std::vector<std::pair<void*, size_t>> memory_;  // graph memory, freed with the graph
};

absl::Status RecordingDevice::BeginGraphCapture() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (current_capture_ != nullptr) {
    return absl::FailedPreconditionError("this thread is capturing a graph already");
  }
  capture_mu_.Lock();
  ++begun_;
  current_capture_ = new Capture{.device = this, .executed_at_begin = executed_.load()};
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DeviceGraph>> RecordingDevice::EndGraphCapture()
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::unique_ptr<Capture> c(capture());
  if (c == nullptr) return absl::FailedPreconditionError("no graph capture on this thread");
  current_capture_ = nullptr;
  last_recorded_ = static_cast<int64_t>(c->work.size());
  last_executed_ = executed_.load() - c->executed_at_begin;
  capture_mu_.Unlock();

  for (const auto& [p, bytes] : c->foreign) Free(p, bytes);
  absl::Status s = c->error;
  if (s.ok() && !c->live.empty()) {
    s = absl::FailedPreconditionError(
        absl::StrCat(c->live.size(), " device buffers allocated in the capture outlive it"));
  }
  // Buffers still in use (c->live) become ordinary ones, freed with their tensors.
  if (!s.ok()) {
    for (const auto& [p, bytes] : c->freed) Free(p, bytes);
    return s;
  }
  return std::unique_ptr<DeviceGraph>(
      new RecordingGraph(this, std::move(c->work), std::move(c->freed)));
}

// -- Kernels --------------------------------------------------------------------

RecordingDevice& Acc(const OpKernelContext& ctx) {
  return static_cast<RecordingDevice&>(*ctx.device());
}

absl::Status OnAcc(const OpKernelContext& ctx, int i) {
  if (ctx.input(i).device() == ctx.device()->name()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("input ", i, " is on ", ctx.input(i).device()));
}

enum class Fn { kAdd, kMul, kSyncingAbs };

// AddV2, Mul and Abs (float); b has a's shape or is a vector along a's last
// dimension. This Abs first waits for the device, standing in for a kernel
// that reads a device value back (a size, a flag): fine in a usual run, not in
// a capture.
class AccElementwise final : public OpKernel {
 public:
  AccElementwise(const Node& node, Fn fn) : OpKernel(node), fn_(fn) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    for (int i = 0; i < ctx.num_inputs(); ++i) GS_RETURN_IF_ERROR(OnAcc(ctx, i));
    if (fn_ == Fn::kSyncingAbs) GS_RETURN_IF_ERROR(ctx.device()->Synchronize());
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(ctx.num_inputs() - 1);
    const bool row = b.rank() == 1 && a.rank() >= 1 && b.dim(0) == a.dim(a.rank() - 1);
    GS_CHECK_ARG(a.shape() == b.shape() || row, "shapes ", a.shape().DebugString(), " and ",
                 b.shape().DebugString(), " do not match");
    Tensor* out = ctx.allocate_output(0, a.shape(), DType::kFloat);
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* po = out->data<float>();
    const int64_t n = a.num_elements();
    const int64_t m = b.num_elements();
    const Fn fn = fn_;
    RecordingDevice& acc = Acc(ctx);
    acc.Enqueue([&acc, pa, pb, po, n, m, fn] {
      const size_t bytes = n * sizeof(float);
      if (!acc.Valid(pa, bytes) || !acc.Valid(pb, m * sizeof(float)) || !acc.Valid(po, bytes)) {
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        po[i] = fn == Fn::kAdd   ? pa[i] + pb[i % m]
                : fn == Fn::kMul ? pa[i] * pb[i % m]
                                 : std::fabs(pa[i]);
      }
    });
    return absl::OkStatus();
  }

 private:
  Fn fn_;
};

class AccAssignVariable final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(OnAcc(ctx, 1));
    return AssignVariableFromInputs(ctx);
  }
};

template <typename K, typename... Args>
absl::Status RegisterAcc(KernelRegistry& r, std::string op, std::string type_attr, HostMemory host,
                         Args... args) {
  return r.Register(
      KernelDef{.op = std::move(op),
                .device_type = kRecAcc,
                .type_attr = std::move(type_attr),
                .types = {DType::kFloat},
                .factory = [args...](const Node& n) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
                  return std::unique_ptr<OpKernel>(new K(n, args...));
                },
                .host_memory_inputs = std::move(host.inputs),
                .host_memory_outputs = std::move(host.outputs)});
}

absl::Status RegisterAccKernels(KernelRegistry& r) {
  const HostMemory handle{.inputs = {0}};
  GS_RETURN_IF_ERROR(RegisterAcc<AccElementwise>(r, "AddV2", "T", {}, Fn::kAdd));
  GS_RETURN_IF_ERROR(RegisterAcc<AccElementwise>(r, "Mul", "T", {}, Fn::kMul));
  GS_RETURN_IF_ERROR(RegisterAcc<AccElementwise>(r, "Abs", "T", {}, Fn::kSyncingAbs));
  GS_RETURN_IF_ERROR(RegisterAcc<VarHandleOpKernel>(r, "VarHandleOp", "dtype", {.outputs = {0}}));
  GS_RETURN_IF_ERROR(RegisterAcc<DeviceReadVariableOpKernel>(r, "ReadVariableOp", "dtype", handle));
  GS_RETURN_IF_ERROR(RegisterAcc<AccAssignVariable>(r, "AssignVariableOp", "dtype", handle));
  return RegisterAcc<DeviceConstKernel>(r, "Const", "dtype", {});
}

// The CPU's kernels and the accelerator's (Neg, Square, ... only on the CPU).
const KernelRegistry& Kernels() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry;
    absl::Status s = RegisterCpuKernels(*r);
    if (s.ok()) s = RegisterAccKernels(*r);
    EXPECT_TRUE(s.ok()) << s;
    return r;
  }();
  return *registry;
}

// -- Helpers --------------------------------------------------------------------

// Uniform in [-2, 2).
void FillRandom(std::mt19937& rng, Tensor& t) {
  std::uniform_real_distribution<float> dist(-2.f, 2.f);
  for (float& v : t.span<float>()) v = dist(rng);
}

Tensor RandomTensor(std::mt19937& rng, const Shape& shape) {
  Tensor t(DType::kFloat, shape);
  FillRandom(rng, t);
  return t;
}

std::vector<float> Floats(const Tensor& host) {
  return std::vector<float>(host.data<float>(), host.data<float>() + host.num_elements());
}

// f(x, column) for each element of host tensor x, in double precision.
std::vector<double> Reference(const Tensor& x, const std::function<double(double, int64_t)>& f) {
  std::vector<double> out;
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    out.push_back(f(x.data<float>()[i], i % x.dim(x.rank() - 1)));
  }
  return out;
}

// y = x * w + b, b = c if given, else x (BuildAffine).
std::vector<double> AffineReference(const Tensor& x, const std::vector<float>& w,
                                    const std::vector<float>& c = {}) {
  return Reference(x, [&](double v, int64_t j) { return v * w[j] + (c.empty() ? v : c[j]); });
}

::testing::AssertionResult Near(const Tensor& got, const std::vector<double>& want) {
  if (!got.host_accessible()) return ::testing::AssertionFailure() << "on " << got.device();
  if (got.dtype() != DType::kFloat || got.num_elements() != static_cast<int64_t>(want.size())) {
    return ::testing::AssertionFailure()
           << "got " << got.DebugString() << ", want " << want.size() << " floats";
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got.data<float>()[i];
    if (std::fabs(g - want[i]) > 1e-5 * (1 + std::fabs(want[i]))) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << g << ", want " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

std::string GraphName(Graphs g) {
  constexpr const char* kNames[] = {"kNotRequested", "kNotUsed", "kCaptured", "kReplayed"};
  return kNames[static_cast<int>(g)];
}

struct Result {
  Tensor x;  // the feed
  absl::Status status;
  std::vector<Tensor> fetches;
  RunMetadata metadata;
};

Result RunWithGraph(const Executor& ex, const Tensor& x) {
  Result r{.x = x};
  r.status = ex.Run({x}, &r.fetches, RunOptions{.use_device_graph = true}, &r.metadata);
  return r;
}

#define EXPECT_GRAPH(result, want)                               \
  EXPECT_EQ(GraphName((result).metadata.graph), GraphName(want)) \
      << "note: " << (result).metadata.graph_note

const RunSignature kXToY = {.feeds = {"x:0"}, .fetches = {"y:0"}};

// y = x * w + b: x fed [batch, 4]; w a float variable read on the
// accelerator; b the Const c if given (on the accelerator), else x.
void BuildAffine(Graph* g, const Shape& w_shape = Shape{4}, const std::vector<float>& c = {}) {
  Scope s(g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 4});
  Output handle = ops::VarHandleOp(s.WithName("w"), DType::kFloat, w_shape);
  Output w = ops::ReadVariableOp(s.WithName("read_w"), handle, DType::kFloat);
  Output b = c.empty() ? x : ops::Const(s.WithName("c"), Tensor::FromVector(c));
  ops::AddV2(s.WithName("y"), ops::Mul(s.WithName("xw"), x, w), b);
  ASSERT_TRUE(s.ok()) << s.status();
}

class DeviceGraphTest : public ::testing::Test {
 protected:
  DeviceGraphTest() {
    auto acc = std::make_unique<RecordingDevice>();
    acc_ = acc.get();
    devices_.Add(std::move(acc));
    devices_.Add(*CpuDevice::Create({.intra_op_threads = 1}));
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    const auto seed = static_cast<uint32_t>(testing::Seed() ^ std::hash<std::string>{}(test));
    std::printf("%s: seed %u (from GRADSERVE_TEST_SEED=%llu)\n", test.c_str(), seed,
                static_cast<unsigned long long>(testing::Seed()));
    rng_.seed(seed);
    trace_.emplace(__FILE__, __LINE__, absl::StrCat("seed ", seed));
  }

  // Executors and their graphs are gone by now (locals of the test body).
  void TearDown() override {
    resources_.reset();
    EXPECT_EQ(acc_->faults(), 0) << "work touched freed memory";
    EXPECT_EQ(acc_->live_buffers(), 0u) << "device or staging buffers outlived their owners";
  }

  // The plan for `signature` on [acc:0, cpu:0] and its executor (null on error).
  std::unique_ptr<Executor> MakeExecutor(const Graph& g, const RunSignature& signature,
                                         Eigen::ThreadPool* pool = nullptr) {
    absl::StatusOr<ExecutionPlan> plan = BuildExecutionPlan(g, devices_, signature, &Kernels());
    EXPECT_TRUE(plan.ok()) << plan.status();
    if (!plan.ok()) return nullptr;
    auto ex = Executor::Create(
        *plan, {.inter_op_pool = pool, .resources = resources_.get(), .kernels = &Kernels()});
    EXPECT_TRUE(ex.ok()) << ex.status();
    return ex.ok() ? *std::move(ex) : nullptr;
  }

  // A float variable with a host value, as a restore leaves it.
  Var* NewVariable(const std::string& name, const std::vector<float>& value,
                   const Shape& declared = Shape{4}) {
    absl::StatusOr<Var*> var = resources_->LookupOrCreate(name, DType::kFloat, declared);
    EXPECT_TRUE(var.ok()) << var.status();
    EXPECT_TRUE(var.ok() && (*var)->Assign(Tensor::FromVector(value)).ok());
    return var.value_or(nullptr);
  }

  std::vector<float> RandomFloats(int64_t n) { return Floats(RandomTensor(rng_, Shape{n})); }

  // A run of a BuildAffine executor on a fresh x [batch, 4], its result checked.
  Result RunAffine(const Executor& ex, const std::vector<float>& w, int64_t batch = 2,
                   const std::vector<float>& c = {}) {
    Result r = RunWithGraph(ex, RandomTensor(rng_, Shape{batch, 4}));
    if (r.status.ok()) {
      EXPECT_TRUE(Near(r.fetches[0], AffineReference(r.x, w, c)));
    } else {
      ADD_FAILURE() << r.status;
    }
    return r;
  }
  // Three runs at a shape not seen (or whose graph was dropped) before.
  void ExpectCapturedOnSecondRun(const Executor& ex, const std::vector<float>& w, int64_t batch = 2,
                                 const std::vector<float>& c = {}) {
    SCOPED_TRACE(absl::StrCat("batch ", batch));
    for (Graphs want : {Graphs::kNotUsed, Graphs::kCaptured, Graphs::kReplayed}) {
      EXPECT_GRAPH(RunAffine(ex, w, batch, c), want);
    }
  }

  DeviceSet devices_;  // first: outlives every buffer on the accelerator
  RecordingDevice* acc_;
  std::unique_ptr<ResourceMgr> resources_ = std::make_unique<ResourceMgr>();
  std::mt19937 rng_;
  std::optional<::testing::ScopedTrace> trace_;
};

// -- The test device --------------------------------------------------------------

// The fake keeps the contract the executor relies on, so that a failure in
// the tests below points at the executor.
TEST_F(DeviceGraphTest, TheTestDeviceRecordsLikeStreamCapture) {
  Tensor staged(acc_->host_staging_allocator(), DType::kFloat, Shape{4});
  FillRandom(rng_, staged);
  Tensor before = *acc_->CopyFromHost(staged);
  ASSERT_TRUE(acc_->BeginGraphCapture().ok());
  EXPECT_TRUE(acc_->Capturing());
  bool other_thread_captures = true;
  std::thread([&] { other_thread_captures = acc_->Capturing(); }).join();
  EXPECT_FALSE(other_thread_captures);
  EXPECT_FALSE(acc_->CopyFromHost(Tensor(DType::kFloat, Shape{4})).ok());  // not staging
  Tensor in = *acc_->CopyFromHost(staged);
  Tensor out = *acc_->CopyToHost(in);
  in = Tensor();  // graph memory from now on
  const int64_t executed = acc_->executed();
  absl::StatusOr<std::unique_ptr<DeviceGraph>> graph = acc_->EndGraphCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(acc_->executed(), executed);
  EXPECT_EQ(acc_->last_capture_recorded(), 2);
  // A replay copies what the staging buffer holds now.
  FillRandom(rng_, staged);
  ASSERT_TRUE((*graph)->Replay().ok());
  EXPECT_EQ(Floats(out), Floats(staged));
  EXPECT_EQ(acc_->executed(), executed + 2);

  // Captures that fail: a wait for the device, a free of older memory,
  // memory allocated in the capture still in use at its end.
  const auto kFailed = absl::StatusCode::kFailedPrecondition;
  ASSERT_TRUE(acc_->BeginGraphCapture().ok());
  EXPECT_EQ(acc_->Synchronize().code(), kFailed);
  EXPECT_EQ(acc_->EndGraphCapture().status().code(), kFailed);
  ASSERT_TRUE(acc_->BeginGraphCapture().ok());
  before = Tensor();
  EXPECT_EQ(acc_->EndGraphCapture().status().code(), kFailed);
  ASSERT_TRUE(acc_->BeginGraphCapture().ok());
  Tensor kept = *acc_->CopyFromHost(staged);
  EXPECT_EQ(acc_->EndGraphCapture().status().code(), kFailed);
}

// -- The executor -----------------------------------------------------------------

TEST_F(DeviceGraphTest, SecondRunCapturesAndLaterRunsReplayOnFreshInputs) {
  Graph g;
  BuildAffine(&g);
  const std::vector<float> w = RandomFloats(4);
  NewVariable("w", w);
  std::unique_ptr<Executor> ex = MakeExecutor(g, kXToY);
  ASSERT_NE(ex, nullptr);
  EXPECT_EQ(ex->device_graph_unsupported(), "");

  std::vector<Result> runs;
  for (int run = 1; run <= 10; ++run) {
    SCOPED_TRACE(absl::StrCat("run ", run));
    const int64_t executed = acc_->executed();
    Result r = RunAffine(*ex, w);
    ASSERT_TRUE(r.status.ok());
    if (run == 1) {
      // Moves w to the accelerator, which a capture must not do.
      EXPECT_GRAPH(r, Graphs::kNotUsed);
      EXPECT_THAT(r.metadata.graph_note, HasSubstr("first run"));
      EXPECT_EQ(acc_->captures_begun(), 0);
      continue;
    }
    EXPECT_GRAPH(r, run == 2 ? Graphs::kCaptured : Graphs::kReplayed);
    if (run == 2) {
      // Copy in, Mul, AddV2, copy out: recorded while nothing ran.
      EXPECT_EQ(acc_->last_capture_recorded(), 4);
      EXPECT_EQ(acc_->last_capture_executed(), 0);
    }
    // Then run once, by a replay.
    EXPECT_EQ(acc_->executed() - executed, 4);
    EXPECT_EQ(acc_->replays(), run - 1);
    runs.push_back(std::move(r));
  }
  // Each result is the caller's: later replays did not write into it.
  for (const Result& r : runs) EXPECT_TRUE(Near(r.fetches[0], AffineReference(r.x, w)));
  DeviceGraphStats stats = ex->device_graph_stats();
  EXPECT_EQ(stats.graphs, 1);
  EXPECT_EQ(stats.captures, 1);
  EXPECT_EQ(stats.capture_failures, 0);
  // The capturing run replayed what it recorded (kCaptured): 1 + 8 replays.
  EXPECT_EQ(stats.replays, 9);
  EXPECT_EQ(acc_->captures_begun(), 1);

  // A run that does not ask for a graph goes the usual way; the graph stays.
  Tensor x = RandomTensor(rng_, Shape{2, 4});
  Result plain;
  plain.status = ex->Run({x}, &plain.fetches, RunOptions{}, &plain.metadata);
  ASSERT_TRUE(plain.status.ok()) << plain.status;
  EXPECT_GRAPH(plain, Graphs::kNotRequested);
  EXPECT_TRUE(Near(plain.fetches[0], AffineReference(x, w)));
  EXPECT_EQ(acc_->replays(), 9);
  EXPECT_GRAPH(RunAffine(*ex, w), Graphs::kReplayed);
}

TEST_F(DeviceGraphTest, EachFeedShapeGetsItsOwnGraph) {
  // y = x * w + c, with c a Const copied to the accelerator on the first run.
  Graph g;
  const std::vector<float> w = RandomFloats(4), c = RandomFloats(4);
  BuildAffine(&g, Shape{4}, c);
  NewVariable("w", w);
  std::unique_ptr<Executor> ex = MakeExecutor(g, kXToY);
  ASSERT_NE(ex, nullptr);
  const std::vector<int64_t> batches = {1, 3, 8};
  for (size_t b = 0; b < batches.size(); ++b) {
    ExpectCapturedOnSecondRun(*ex, w, batches[b], c);
    EXPECT_EQ(ex->device_graph_stats().graphs, static_cast<int64_t>(b + 1));
  }
  // Interleaved, each shape replays its own graph.
  for (int run = 0; run < 12; ++run) {
    EXPECT_GRAPH(RunAffine(*ex, w, batches[rng_() % batches.size()], c), Graphs::kReplayed);
  }
  const DeviceGraphStats stats = ex->device_graph_stats();
  EXPECT_EQ(stats.graphs, 3);
  EXPECT_EQ(stats.captures, 3);
  EXPECT_EQ(stats.capture_failures, 0);
}

TEST_F(DeviceGraphTest, ReplaysSeeVariablesUpdatedInPlaceAndRecaptureMovedOnes) {
  Graph g;
  BuildAffine(&g);
  std::vector<float> w = RandomFloats(4);
  Var* var = NewVariable("w", w);
  std::unique_ptr<Executor> ex = MakeExecutor(g, kXToY);
  ASSERT_NE(ex, nullptr);
  ExpectCapturedOnSecondRun(*ex, w);

  // Written where it is (an optimizer step): the executor keeps no snapshot
  // between runs, so Var::Update has no reason to copy.
  const void* buffer = var->Read()->raw_data();
  w = RandomFloats(4);
  auto write_w = [&](Tensor& value) {
    acc_->EnqueueCopy(value.raw_data(), w.data(), value.bytes(), {.to = true, .from = false});
    return absl::OkStatus();
  };
  ASSERT_TRUE(var->Update(write_w).ok());
  ASSERT_EQ(var->Read()->raw_data(), buffer) << "the executor holds w between runs";
  for (int run = 0; run < 3; ++run) EXPECT_GRAPH(RunAffine(*ex, w), Graphs::kReplayed);
  EXPECT_EQ(ex->device_graph_stats().captures, 1);

  // A new host tensor (a restore): the graph's buffer of w is freed.
  w = RandomFloats(4);
  ASSERT_TRUE(var->Assign(Tensor::FromVector(w)).ok());
  Result moved = RunAffine(*ex, w);
  EXPECT_GRAPH(moved, Graphs::kNotUsed);
  EXPECT_THAT(moved.metadata.graph_note, HasSubstr("moved"));
  EXPECT_GRAPH(RunAffine(*ex, w), Graphs::kCaptured);
  EXPECT_GRAPH(RunAffine(*ex, w), Graphs::kReplayed);
  const DeviceGraphStats stats = ex->device_graph_stats();
  EXPECT_EQ(stats.graphs, 1);
  EXPECT_EQ(stats.captures, 2);
  EXPECT_EQ(stats.capture_failures, 0);
}

// Plans Note [Device graphs] rules out: each run goes the usual way and says why.
TEST_F(DeviceGraphTest, PlansThatCannotBeGraphsRunTheUsualWay) {
  struct Case {
    std::string name;
    std::function<void(const Scope&, Output)> build;  // y from x (Neg: CPU only)
    std::function<double(double)> y;
    std::vector<std::string> targets = {};
  };
  const Case cases[] = {
      {"a host kernel reads a feed",
       [](const Scope& s, Output x) { ops::Mul(s.WithName("y"), ops::Neg(s, x), x); },
       [](double x) { return -x * x; }},
      {"a copy to the host mid-run",
       [](const Scope& s, Output x) {
         ops::Mul(s.WithName("y"), ops::Neg(s, ops::Mul(s, x, x)), x);
       },
       [](double x) { return -x * x * x; }},
      {"a variable assigned (v := y)",
       [](const Scope& s, Output x) {
         Output v = ops::VarHandleOp(s.WithName("v"), DType::kFloat, Shape{-1, 4});
         ops::AssignVariableOp(s.WithName("assign"), v, ops::Mul(s.WithName("y"), x, x));
       },
       [](double x) { return x * x; },
       {"assign"}},
      {"nothing on the accelerator", [](const Scope& s, Output x) { ops::Neg(s.WithName("y"), x); },
       [](double x) { return -x; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Graph g;
    Scope s(&g);
    c.build(s, ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 4}));
    ASSERT_TRUE(s.ok()) << s.status();
    std::unique_ptr<Executor> ex =
        MakeExecutor(g, {.feeds = {"x:0"}, .fetches = {"y:0"}, .targets = c.targets});
    ASSERT_NE(ex, nullptr);
    EXPECT_NE(ex->device_graph_unsupported(), "");
    for (int run = 1; run <= 3; ++run) {
      Result r = RunWithGraph(*ex, RandomTensor(rng_, Shape{3, 4}));
      ASSERT_TRUE(r.status.ok()) << r.status;
      EXPECT_GRAPH(r, Graphs::kNotUsed);
      EXPECT_THAT(r.metadata.graph_note, HasSubstr(ex->device_graph_unsupported()));
      const std::vector<double> y = Reference(r.x, [&](double x, int64_t) { return c.y(x); });
      EXPECT_TRUE(Near(r.fetches[0], y));
      if (!c.targets.empty()) {
        EXPECT_TRUE(Near(*resources_->Lookup("v")->Read()->OnHost(), y));
      }
    }
    const DeviceGraphStats stats = ex->device_graph_stats();
    EXPECT_EQ(stats.graphs + stats.captures + stats.capture_failures + stats.replays, 0);
  }
  EXPECT_EQ(acc_->captures_begun(), 0);
}

TEST_F(DeviceGraphTest, AFailedCaptureRunsTheUsualWayAndIsRetriedAFewTimes) {
  // y = |x * w|, where Abs waits for the device.
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 4});
  Output handle = ops::VarHandleOp(s.WithName("w"), DType::kFloat, Shape{4});
  Output w = ops::ReadVariableOp(s.WithName("read_w"), handle, DType::kFloat);
  ops::Abs(s.WithName("y"), ops::Mul(s.WithName("xw"), x, w));
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<float> wv = RandomFloats(4);
  NewVariable("w", wv);
  std::unique_ptr<Executor> ex = MakeExecutor(g, kXToY);
  ASSERT_NE(ex, nullptr);
  EXPECT_EQ(ex->device_graph_unsupported(), "");
  for (int run = 1; run <= 10; ++run) {
    SCOPED_TRACE(absl::StrCat("run ", run));
    Result r = RunWithGraph(*ex, RandomTensor(rng_, Shape{2, 4}));
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_GRAPH(r, Graphs::kNotUsed);
    EXPECT_NE(r.metadata.graph_note, "");
    if (run == 2) {
      EXPECT_THAT(r.metadata.graph_note, HasSubstr("cannot wait for the device"));
    }
    EXPECT_TRUE(Near(r.fetches[0],
                     Reference(r.x, [&](double v, int64_t j) { return std::fabs(v * wv[j]); })));
  }
  const DeviceGraphStats stats = ex->device_graph_stats();
  EXPECT_EQ(stats.graphs, 0);
  EXPECT_EQ(stats.captures, 0);
  EXPECT_GE(stats.capture_failures, 1);
  EXPECT_LE(stats.capture_failures, 3);
  EXPECT_THAT(stats.last_failure, HasSubstr("cannot wait for the device"));
  EXPECT_EQ(acc_->captures_begun(), stats.capture_failures);

  // Every failed capture was ended: another plan on the device captures.
  Graph g2;
  BuildAffine(&g2);
  std::unique_ptr<Executor> ex2 = MakeExecutor(g2, kXToY);
  ASSERT_NE(ex2, nullptr);
  ExpectCapturedOnSecondRun(*ex2, wv);
}

TEST_F(DeviceGraphTest, ConcurrentRunsAtTwoShapesAreAllCorrect) {
  // y = x * x + (x + x) * w: two branches ready at once, so usual runs use the
  // pool, while a capture must record both on its own thread.
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 4});
  Output handle = ops::VarHandleOp(s.WithName("w"), DType::kFloat, Shape{4});
  Output w = ops::ReadVariableOp(s.WithName("read_w"), handle, DType::kFloat);
  ops::AddV2(s.WithName("y"), ops::Mul(s, x, x), ops::Mul(s, ops::AddV2(s, x, x), w));
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<float> wv = RandomFloats(4);
  NewVariable("w", wv);
  auto reference = [&wv](const Tensor& x) {
    return Reference(x, [&wv](double v, int64_t j) { return v * v + 2 * v * wv[j]; });
  };
  Eigen::ThreadPool pool(2);
  std::unique_ptr<Executor> ex = MakeExecutor(g, kXToY, &pool);
  ASSERT_NE(ex, nullptr);

  constexpr int kThreads = 8;
  absl::Mutex mu;
  std::vector<std::string> errors;
  std::atomic<int> runs_of[4] = {};  // by RunMetadata::Graph
  std::atomic<int> finished{0};
  absl::Notification all_done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t, seed = static_cast<uint32_t>(rng_())] {
      std::mt19937 rng(seed);
      for (int i = 0; i < 50; ++i) {
        Result r = RunWithGraph(*ex, RandomTensor(rng, Shape{rng() % 2 == 0 ? 1 : 4, 4}));
        ++runs_of[static_cast<int>(r.metadata.graph)];
        const std::string error =
            r.status.ok() ? Near(r.fetches[0], reference(r.x)).message() : r.status.ToString();
        if (!error.empty()) {
          absl::MutexLock lock(&mu);
          errors.push_back(absl::StrCat("thread ", t, " run ", i, ": ", error));
        }
      }
      if (++finished == kThreads) all_done.Notify();
    });
  }
  if (!all_done.WaitForNotificationWithTimeout(absl::Seconds(120))) {
    std::fprintf(stderr, "DeviceGraphTest: concurrent runs not done in 120 s (deadlock?)\n");
    std::abort();
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(errors, IsEmpty());
  const int captured = runs_of[static_cast<int>(Graphs::kCaptured)];
  const int replayed = runs_of[static_cast<int>(Graphs::kReplayed)];
  EXPECT_EQ(captured, 2);
  EXPECT_GT(replayed, 0);
  EXPECT_EQ(runs_of[static_cast<int>(Graphs::kNotRequested)].load(), 0);
  const DeviceGraphStats stats = ex->device_graph_stats();
  EXPECT_EQ(stats.graphs, 2);
  EXPECT_EQ(stats.captures, 2);
  EXPECT_EQ(stats.capture_failures, 0);
  EXPECT_EQ(stats.replays, captured + replayed);
  EXPECT_EQ(stats.replays, acc_->replays());
}

// A variable cannot be deleted; a value of another shape makes the replay's
// re-read find w moved, and the run then fails in Mul.
TEST_F(DeviceGraphTest, AnErrorAfterAVariableMovesIsTheUsualRunsError) {
  Graph g;
  BuildAffine(&g, Shape::UnknownRank());
  std::vector<float> w = RandomFloats(4);
  Var* var = NewVariable("w", w, Shape::UnknownRank());
  std::unique_ptr<Executor> ex = MakeExecutor(g, kXToY);
  ASSERT_NE(ex, nullptr);
  ExpectCapturedOnSecondRun(*ex, w);
  ASSERT_TRUE(var->Assign(Tensor::FromVector(RandomFloats(3))).ok());
  Tensor x = RandomTensor(rng_, Shape{2, 4});
  const absl::Status with_graph = RunWithGraph(*ex, x).status;
  std::vector<Tensor> out;
  const absl::Status usual = ex->Run({x}, &out);
  ASSERT_FALSE(usual.ok());
  EXPECT_THAT(usual.message(), HasSubstr("do not match"));
  EXPECT_EQ(with_graph, usual);
  for (int run = 0; run < 3; ++run) EXPECT_EQ(RunWithGraph(*ex, x).status, usual);

  // Fixed: results are right again.
  w = RandomFloats(4);
  ASSERT_TRUE(var->Assign(Tensor::FromVector(w)).ok());
  for (int run = 0; run < 4; ++run) RunAffine(*ex, w);
}

}  // namespace
}  // namespace gradserve::device_graph_test
