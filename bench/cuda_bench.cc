// The CUDA device against its peers, on a GPU (scripts/gpu_check.sh run):
//   1. MatMul at 4096^2 through our kernel (OpKernel on a CudaDevice) against
//      cuBLAS called directly: float32 (cublasSgemm on the same buffers, goal
//      >= 90%) and bfloat16 (a device with MatMulPrecision::kBFloat16, whose
//      kernel also rounds the float32 operands, against cublasGemmEx on
//      bfloat16 copies made beforehand, float32 out, 32F compute).
//   2. The MLP 784-512-512-10 forward pass (MatMul, BiasAdd, Relu, Softmax):
//      a. kernel by kernel, GPU kernels against CPU kernels;
//      b. through a whole Session (host feed in, host fetch out), a GPU
//         session (SessionOptions::gpu) against a CPU one, at batch 1, 64 and
//         1024; at 1024 also the session's time against its three GEMMs
//         alone (cublasSgemm on the same shapes; goal: within 1.3x);
//      c. the GPU session with device graphs (CUDA Graphs, Note [Device
//         graphs]) against the same session without, at each batch size.
//   3. A training step (Adam) of fashion_mlp at batch 256 through Trainer,
//      on the GPU against the CPU.
// Prints one table; asserts nothing. Without a GPU it says so and exits 0.
//
//   build-gpu/bench/cuda_bench [--iterations N] [--seconds S]
//     N: calls per MatMul / kernel-chain timing (default 20);
//     S: seconds per session and training timing (default 1).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/builder/ops.h"
#include "graph/example_models.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/kernel.h"
#include "runtime/session.h"
#include "runtime/trainer.h"

namespace gradserve {
namespace {

const KernelRegistry& Kernels() { return KernelRegistry::Global(); }

void Check(const absl::Status& s, const char* what = "") {
  if (!s.ok()) {
    std::fprintf(stderr, "cuda_bench: %s%s%s\n", what, *what ? ": " : "",
                 std::string(s.message()).c_str());
    std::exit(1);
  }
}

template <typename T>
T Value(absl::StatusOr<T> v, const char* what = "") {
  Check(v.status(), what);
  return *std::move(v);
}

void CheckCublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) Check(CublasError(s, what));
}

// Uniform [lo, hi) values from `seed`, in `allocator`'s host memory (nullptr:
// the default host allocator).
Tensor RandomHost(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f,
                  Allocator* allocator = nullptr) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  Tensor t = allocator ? Tensor(allocator, DType::kFloat, shape) : Tensor(DType::kFloat, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// float32 -> bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN).
uint16_t ToBFloat16Bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if (std::isnan(f)) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

Tensor ToBFloat16Host(const Tensor& t) {
  Tensor out(DType::kBFloat16, t.shape());
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    out.data<uint16_t>()[i] = ToBFloat16Bits(t.data<float>()[i]);
  }
  return out;
}

// Seconds per call of `fn` (after a warm-up), each call followed by `sync`.
double Time(int iterations, const std::function<void()>& fn, const std::function<void()>& sync) {
  fn();
  sync();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) fn();
  sync();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
         iterations;
}

// Seconds per call of the synchronous `fn`: two warm-up calls, then calls
// until `seconds` have passed (at least 3).
double TimeFor(double seconds, const std::function<void()>& fn) {
  fn();
  fn();
  const auto start = std::chrono::steady_clock::now();
  int64_t calls = 0;
  double elapsed = 0;
  while (calls < 3 || elapsed < seconds) {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return elapsed / calls;
}

void Row(const std::string& label, const char* format, double ours, double peer, double ratio) {
  std::printf("%-44s ", label.c_str());
  std::printf(format, ours, peer, ratio);
  std::printf("\n");
}
constexpr char kRate[] = "%12.0f %12.0f %7.2f";
constexpr char kTflops[] = "%12.1f %12.1f %7.3f";

// One node's kernel run on `device` with `inputs`.
struct Op {
  std::unique_ptr<OpKernel> kernel;
  std::vector<const Tensor*> inputs;
  Tensor Run(Device* device, ResourceMgr* resources) const {
    OpKernelContext ctx(device, resources, 1);
    ctx.set_inputs(absl::InlinedVector<const Tensor*, 4>(inputs.begin(), inputs.end()));
    Check(kernel->Compute(ctx));
    return ctx.output(0);
  }
};

constexpr int64_t kMatMulSize = 4096;

void MatMulFloat32(CudaDevice& gpu, int iterations) {
  const int64_t n = kMatMulSize;
  Graph g;
  Scope s(&g);
  Output mm = ops::MatMul(s, ops::Placeholder(s, DType::kFloat, Shape{n, n}),
                          ops::Placeholder(s, DType::kFloat, Shape{n, n}));
  Tensor a = Value(gpu.CopyFromHost(RandomHost(Shape{n, n}, 1)));
  Tensor b = Value(gpu.CopyFromHost(RandomHost(Shape{n, n}, 2)));
  Tensor c(gpu.allocator(), DType::kFloat, Shape{n, n});
  ResourceMgr resources;
  Op op{Value(Kernels().CreateKernel(*mm.node, kDeviceCuda)), {&a, &b}};
  auto sync = [&] { Check(gpu.Synchronize()); };
  const double ours = Time(
      iterations, [&] { op.Run(&gpu, &resources); }, sync);
  const float one = 1.f, zero = 0.f;
  // Note [Row-major products on cuBLAS] (matmul_ops.cc): operands swapped.
  const double direct = Time(
      iterations,
      [&] {
        CheckCublas(cublasSgemm(gpu.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one,
                                b.data<float>(), n, a.data<float>(), n, &zero, c.data<float>(), n),
                    "cublasSgemm");
      },
      sync);
  const double flop = 2.0 * n * n * n;
  Row("MatMul fp32 4096^2 (TFLOP/s, ours/cuBLAS)", kTflops, flop / ours / 1e12,
      flop / direct / 1e12, direct / ours);
}

// Our MatMul on a kBFloat16 device (float32 operands, rounded by the kernel)
// against cublasGemmEx on bfloat16 operands rounded beforehand on the host.
// The peer runs on its own handle in cuBLAS's default math mode (ours uses
// the device's handle), on the same stream. Returns the largest difference
// between the two products, relative to the peer's largest magnitude.
double MatMulBFloat16(int iterations) {
  const int64_t n = kMatMulSize;
  auto created = CudaDevice::Create({.matmul_precision = MatMulPrecision::kBFloat16});
  Check(created.status(), "CudaDevice::Create(kBFloat16)");
  CudaDevice& gpu = **created;
  Graph g;
  Scope s(&g);
  Output mm = ops::MatMul(s, ops::Placeholder(s, DType::kFloat, Shape{n, n}),
                          ops::Placeholder(s, DType::kFloat, Shape{n, n}));
  const Tensor host_a = RandomHost(Shape{n, n}, 1), host_b = RandomHost(Shape{n, n}, 2);
  Tensor a = Value(gpu.CopyFromHost(host_a));
  Tensor b = Value(gpu.CopyFromHost(host_b));
  Tensor a16 = Value(gpu.CopyFromHost(ToBFloat16Host(host_a)));
  Tensor b16 = Value(gpu.CopyFromHost(ToBFloat16Host(host_b)));
  Tensor c(gpu.allocator(), DType::kFloat, Shape{n, n});
  Check(gpu.Synchronize());
  ResourceMgr resources;
  Op op{Value(Kernels().CreateKernel(*mm.node, kDeviceCuda)), {&a, &b}};
  auto sync = [&] { Check(gpu.Synchronize()); };
  Tensor ours_out;
  const double ours = Time(
      iterations, [&] { ours_out = op.Run(&gpu, &resources); }, sync);

  cublasHandle_t handle = nullptr;
  CheckCublas(cublasCreate(&handle), "cublasCreate");
  CheckCublas(cublasSetStream(handle, gpu.stream()), "cublasSetStream");
  const float one = 1.f, zero = 0.f;
  const double direct = Time(
      iterations,
      [&] {
        CheckCublas(
            cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b16.raw_data(),
                         CUDA_R_16BF, n, a16.raw_data(), CUDA_R_16BF, n, &zero, c.raw_data(),
                         CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
      },
      sync);
  CheckCublas(cublasDestroy(handle), "cublasDestroy");

  const double flop = 2.0 * n * n * n;
  Row("MatMul bf16 4096^2 (TFLOP/s, ours/GemmEx)", kTflops, flop / ours / 1e12,
      flop / direct / 1e12, direct / ours);
  const Tensor x = Value(ours_out.OnHost()), y = Value(c.OnHost());
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(x.data<float>()[i] - y.data<float>()[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(y.data<float>()[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

const std::vector<int64_t> kMlpWidths = {784, 512, 512, 10};

// Kernel by kernel, without a session: GPU kernels against CPU kernels.
void MlpKernels(CudaDevice& gpu, Device& cpu, int64_t batch, int iterations) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kFloat, Shape{batch, 784});
  std::vector<Tensor> host_params;
  std::vector<Output> nodes;  // in run order
  Output h = x;
  for (size_t l = 0; l + 1 < kMlpWidths.size(); ++l) {
    const Shape ws{kMlpWidths[l], kMlpWidths[l + 1]}, bs{kMlpWidths[l + 1]};
    Output w = ops::Placeholder(s, DType::kFloat, ws);
    Output b = ops::Placeholder(s, DType::kFloat, bs);
    host_params.push_back(RandomHost(ws, 10 + l, -0.05f, 0.05f));
    host_params.push_back(RandomHost(bs, 20 + l, -0.05f, 0.05f));
    Output mm = ops::MatMul(s, h, w);
    Output z = ops::BiasAdd(s, mm, b);
    nodes.push_back(mm);
    nodes.push_back(z);
    h = l + 2 < kMlpWidths.size() ? ops::Relu(s, z) : ops::Softmax(s, z);
    nodes.push_back(h);
  }
  // The kernels of each device, made once; a run chains them.
  auto kernels_for = [&](absl::string_view type) {
    std::vector<std::unique_ptr<OpKernel>> k;
    for (const Output& o : nodes) k.push_back(Value(Kernels().CreateKernel(*o.node, type)));
    return k;
  };
  const auto gpu_kernels = kernels_for(kDeviceCuda);
  const auto cpu_kernels = kernels_for(kDeviceCpu);
  auto run = [&](Device* device, const std::vector<std::unique_ptr<OpKernel>>& k,
                 const std::vector<Tensor>& params, const Tensor& in) {
    ResourceMgr resources;
    Tensor cur = in;
    for (size_t l = 0; l < 3; ++l) {
      auto step = [&](size_t i, std::vector<const Tensor*> inputs) {
        OpKernelContext ctx(device, &resources, 1);
        ctx.set_inputs(absl::InlinedVector<const Tensor*, 4>(inputs.begin(), inputs.end()));
        Check(k[i]->Compute(ctx));
        return ctx.output(0);
      };
      Tensor m = step(3 * l, {&cur, &params[2 * l]});
      Tensor z = step(3 * l + 1, {&m, &params[2 * l + 1]});
      cur = step(3 * l + 2, {&z});
    }
    return cur;
  };
  std::vector<Tensor> gpu_params;
  for (const Tensor& p : host_params) gpu_params.push_back(Value(gpu.CopyFromHost(p)));
  Tensor host_x = RandomHost(Shape{batch, 784}, 7, 0.f, 1.f);
  Tensor gpu_x = Value(gpu.CopyFromHost(host_x));
  const double t_gpu = Time(
      iterations, [&] { run(&gpu, gpu_kernels, gpu_params, gpu_x); },
      [&] { Check(gpu.Synchronize()); });
  const double t_cpu = Time(
      std::max(1, iterations / 10), [&] { run(&cpu, cpu_kernels, host_params, host_x); }, [] {});
  Row("MLP kernels batch " + std::to_string(batch) + " (samples/s, GPU/CPU)", kRate, batch / t_gpu,
      batch / t_cpu, t_cpu / t_gpu);
}

// The MLP as a session graph: Placeholder "x" [-1, 784], Const weights (the
// same for every call), fetch "probabilities".
std::unique_ptr<Session> MlpSession(const SessionOptions& options) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output h = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 784});
  for (size_t l = 0; l + 1 < kMlpWidths.size(); ++l) {
    const Shape ws{kMlpWidths[l], kMlpWidths[l + 1]}, bs{kMlpWidths[l + 1]};
    Output w = ops::Const(s, RandomHost(ws, 10 + l, -0.05f, 0.05f));
    Output b = ops::Const(s, RandomHost(bs, 20 + l, -0.05f, 0.05f));
    h = ops::BiasAdd(s, ops::MatMul(s, h, w), b);
    if (l + 2 < kMlpWidths.size()) h = ops::Relu(s, h);
  }
  ops::Softmax(s.WithName("probabilities"), h);
  Check(s.status(), "building the MLP");
  return Value(Session::Create(std::move(graph), options), "Session::Create");
}

// Seconds of one run of the session at `batch`; `allocator` holds the feed
// (pinned memory for the GPU session, as the server's batches are). With
// `options.use_device_graph`, the two runs that record the graph come first,
// untimed, and every timed run must replay it.
double SessionSeconds(Session& session, int64_t batch, Allocator* allocator, double seconds,
                      const RunOptions& options = {}) {
  const FeedList feeds = {{"x", RandomHost(Shape{batch, 784}, 7, 0.f, 1.f, allocator)}};
  const std::vector<std::string> fetches = {"probabilities"};
  std::vector<Tensor> out;
  RunMetadata metadata;
  auto run = [&] {
    Check(session.Run(feeds, fetches, {}, &out, options, &metadata), "Session::Run");
  };
  if (options.use_device_graph) {
    run();
    run();
    if (metadata.graph != RunMetadata::Graph::kCaptured) {
      std::fprintf(stderr, "cuda_bench: no device graph at batch %lld: %s\n",
                   static_cast<long long>(batch), metadata.graph_note.c_str());
      std::exit(1);
    }
  }
  const double t = TimeFor(seconds, run);
  if (options.use_device_graph && metadata.graph != RunMetadata::Graph::kReplayed) {
    std::fprintf(stderr, "cuda_bench: the device graph was not replayed: %s\n",
                 metadata.graph_note.c_str());
    std::exit(1);
  }
  return t;
}

// The three GEMMs of the MLP at `batch`, each timed alone with cublasSgemm on
// the device's handle (the session's float32 math mode); their sum.
double MlpGemmSeconds(CudaDevice& gpu, int64_t batch, int iterations) {
  const float one = 1.f, zero = 0.f;
  double total = 0;
  for (size_t l = 0; l + 1 < kMlpWidths.size(); ++l) {
    const int64_t m = batch, k = kMlpWidths[l], n = kMlpWidths[l + 1];
    Tensor a = Value(gpu.CopyFromHost(RandomHost(Shape{m, k}, 30 + l)));
    Tensor b = Value(gpu.CopyFromHost(RandomHost(Shape{k, n}, 40 + l)));
    Tensor c(gpu.allocator(), DType::kFloat, Shape{m, n});
    total += Time(
        iterations,
        [&] {
          CheckCublas(
              cublasSgemm(gpu.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b.data<float>(), n,
                          a.data<float>(), k, &zero, c.data<float>(), n),
              "cublasSgemm");
        },
        [&] { Check(gpu.Synchronize()); });
  }
  return total;
}

void MlpSessions(CudaDevice& gpu, int iterations, double seconds) {
  auto on_gpu = MlpSession({.inter_op_threads = 1, .gpu = GpuOptions{}});
  auto on_cpu = MlpSession({.inter_op_threads = 1});
  double gpu_1024 = 0;
  for (int64_t batch : {1, 64, 1024}) {
    const double t_gpu = SessionSeconds(*on_gpu, batch, PinnedHostAllocator(), seconds);
    const double t_cpu = SessionSeconds(*on_cpu, batch, nullptr, seconds);
    Row("MLP session batch " + std::to_string(batch) + " (samples/s, GPU/CPU)", kRate,
        batch / t_gpu, batch / t_cpu, t_cpu / t_gpu);
    if (batch == 1024) gpu_1024 = t_gpu;
  }
  const double gemms = MlpGemmSeconds(gpu, 1024, iterations * 10);
  Row("MLP b1024 session / 3 Sgemms (us, goal<=1.3)", "%12.1f %12.1f %7.2f", gpu_1024 * 1e6,
      gemms * 1e6, gpu_1024 / gemms);
  // The same GPU session with and without device graphs.
  double graph_1024 = 0;
  for (int64_t batch : {1, 64, 1024}) {
    const double t_graph =
        SessionSeconds(*on_gpu, batch, PinnedHostAllocator(), seconds, {.use_device_graph = true});
    const double t_plain = SessionSeconds(*on_gpu, batch, PinnedHostAllocator(), seconds);
    Row("MLP session batch " + std::to_string(batch) + " (samples/s, graph/plain)", kRate,
        batch / t_graph, batch / t_plain, t_plain / t_graph);
    if (batch == 1024) graph_1024 = t_graph;
  }
  Row("MLP b1024 graph / 3 Sgemms (us, goal<=1.3)", "%12.1f %12.1f %7.2f", graph_1024 * 1e6,
      gemms * 1e6, graph_1024 / gemms);
}

// fashion_mlp training steps at batch 256 (Adam), GPU against CPU.
void TrainFashionMlp(double seconds) {
  namespace fs = std::filesystem;
  const std::string root =
      (fs::temp_directory_path() / ("gradserve-cuda-bench-" + std::to_string(::getpid()))).string();
  fs::remove_all(root);
  Check(WriteExampleModels(root), "WriteExampleModels");
  const std::string dir = root + "/fashion_mlp/1";
  const int64_t batch = 256;
  auto step_seconds = [&](const SessionOptions& options, Allocator* allocator) {
    auto trainer = Value(Trainer::Load(dir, OptimizerConfig{}, options), "Trainer::Load");
    const Tensor x = RandomHost(Shape{batch, 784}, 11, 0.f, 1.f, allocator);
    Tensor y = allocator ? Tensor(allocator, DType::kInt64, Shape{batch})
                         : Tensor(DType::kInt64, Shape{batch});
    std::mt19937 rng(12);
    for (int64_t i = 0; i < batch; ++i) y.data<int64_t>()[i] = static_cast<int64_t>(rng() % 10);
    return TimeFor(seconds, [&] { Check(trainer->Step(x, y).status(), "Trainer::Step"); });
  };
  const double t_gpu = step_seconds({.gpu = GpuOptions{}}, PinnedHostAllocator());
  const double t_cpu = step_seconds({}, nullptr);
  fs::remove_all(root);
  Row("train fashion_mlp b256 (steps/s, GPU/CPU)", "%12.1f %12.1f %7.2f", 1 / t_gpu, 1 / t_cpu,
      t_cpu / t_gpu);
  Row("train fashion_mlp b256 (examples/s, GPU/CPU)", kRate, batch / t_gpu, batch / t_cpu,
      t_cpu / t_gpu);
}

}  // namespace
}  // namespace gradserve

int main(int argc, char** argv) {
  using namespace gradserve;
  int iterations = 20;
  double seconds = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--iterations") {
      iterations = std::max(1, std::stoi(argv[i + 1]));
    } else if (flag == "--seconds") {
      seconds = std::stod(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: cuda_bench [--iterations N] [--seconds S]\n");
      return 2;
    }
  }
  auto gpu = CudaDevice::Create({});
  if (!gpu.ok()) {
    std::printf("cuda_bench: %s; nothing measured\n", std::string(gpu.status().message()).c_str());
    return 0;
  }
  if (const std::string why = CublasLoadError(); !why.empty()) {
    std::printf("cuda_bench: %s; nothing measured\n", why.c_str());
    return 1;
  }
  auto cpu = Value(CpuDevice::Create({}));
  std::printf("%-44s %12s %12s %7s\n", "", "ours / GPU", "peer / CPU", "ratio");
  MatMulFloat32(**gpu, iterations);
  const double bf16_error = MatMulBFloat16(iterations);
  for (int64_t batch : {1, 64, 1024}) MlpKernels(**gpu, *cpu, batch, iterations * 5);
  MlpSessions(**gpu, iterations, seconds);
  TrainFashionMlp(seconds);
  std::printf(
      "notes: ratio = ours/peer (throughput rows), GPU/CPU (samples, steps), "
      "graph/plain (device graphs), session/GEMMs (time rows);\n"
      "       bf16 ours includes rounding the fp32 operands; ours vs GemmEx max |diff| / "
      "max |C| = %.2g\n",
      bf16_error);
  return 0;
}
