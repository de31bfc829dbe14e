// The CUDA kernels against their peers, on a GPU (scripts/gpu_check.sh run):
//   1. MatMul float32 at 4096^2 through our kernel (OpKernel on CudaDevice)
//      against cublasSgemm called directly on the same buffers (goal >= 90%).
//   2. The MLP 784-512-512-10 forward pass (MatMul, BiasAdd, Relu, Softmax) on
//      the GPU kernels against the CPU kernels, at batch 1, 64 and 1024.
// Prints a table; asserts nothing. Without a GPU it says so and exits 0.
//
//   build-gpu/bench/cuda_bench [--iterations N]
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/builder/ops.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/kernel.h"

namespace gradserve {
namespace {

const KernelRegistry& Kernels() { return CpuAndCudaKernels(); }

Tensor RandomHost(const Shape& shape) {
  static std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Tensor t(DType::kFloat, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
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

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "cuda_bench: %s\n", std::string(s.message()).c_str());
    std::exit(1);
  }
}

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

void MatMulVsCublas(CudaDevice& gpu, int iterations) {
  const int64_t n = 4096;
  Graph g;
  Scope s(&g);
  Output mm = ops::MatMul(s, ops::Placeholder(s, DType::kFloat, Shape{n, n}),
                          ops::Placeholder(s, DType::kFloat, Shape{n, n}));
  Tensor a = *gpu.CopyFromHost(RandomHost(Shape{n, n}));
  Tensor b = *gpu.CopyFromHost(RandomHost(Shape{n, n}));
  Tensor c(gpu.allocator(), DType::kFloat, Shape{n, n});
  ResourceMgr resources;
  Op op{*Kernels().CreateKernel(*mm.node, kDeviceCuda), {&a, &b}};
  auto sync = [&] { Check(gpu.Synchronize()); };
  const double ours = Time(iterations, [&] { op.Run(&gpu, &resources); }, sync);
  const float one = 1.f, zero = 0.f;
  const double direct = Time(
      iterations,
      [&] {
        cublasSgemm(gpu.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b.data<float>(), n,
                    a.data<float>(), n, &zero, c.data<float>(), n);
      },
      sync);
  const double flop = 2.0 * n * n * n;
  std::printf("%-34s %10.1f %10.1f %7.3f\n", "MatMul fp32 4096^2 (TFLOP/s)", flop / ours / 1e12,
              flop / direct / 1e12, direct / ours);
}

void MlpForward(CudaDevice& gpu, Device& cpu, int64_t batch, int iterations) {
  Graph g;
  Scope s(&g);
  const std::vector<int64_t> widths = {784, 512, 512, 10};
  Output x = ops::Placeholder(s, DType::kFloat, Shape{batch, 784});
  std::vector<Tensor> host_params;
  std::vector<Output> nodes;  // in run order
  Output h = x;
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    Output w = ops::Placeholder(s, DType::kFloat, Shape{widths[l], widths[l + 1]});
    Output b = ops::Placeholder(s, DType::kFloat, Shape{widths[l + 1]});
    host_params.push_back(RandomHost(Shape{widths[l], widths[l + 1]}));
    host_params.push_back(RandomHost(Shape{widths[l + 1]}));
    Output mm = ops::MatMul(s, h, w);
    Output z = ops::BiasAdd(s, mm, b);
    nodes.push_back(mm);
    nodes.push_back(z);
    h = l + 2 < widths.size() ? ops::Relu(s, z) : ops::Softmax(s, z);
    nodes.push_back(h);
  }
  // The kernels of each device, made once; a run chains them.
  auto kernels_for = [&](absl::string_view type) {
    std::vector<std::unique_ptr<OpKernel>> k;
    for (const Output& o : nodes) k.push_back(*Kernels().CreateKernel(*o.node, type));
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
  for (const Tensor& p : host_params) gpu_params.push_back(*gpu.CopyFromHost(p));
  Tensor host_x = RandomHost(Shape{batch, 784});
  Tensor gpu_x = *gpu.CopyFromHost(host_x);
  const double t_gpu = Time(iterations, [&] { run(&gpu, gpu_kernels, gpu_params, gpu_x); },
                            [&] { Check(gpu.Synchronize()); });
  const double t_cpu = Time(std::max(1, iterations / 10),
                            [&] { run(&cpu, cpu_kernels, host_params, host_x); }, [] {});
  std::printf("%-34s %10.0f %10.0f %7.1f\n",
              ("MLP 784-512-512-10 batch " + std::to_string(batch) + " (samples/s)").c_str(),
              batch / t_gpu, batch / t_cpu, t_cpu / t_gpu);
}

}  // namespace
}  // namespace gradserve

int main(int argc, char** argv) {
  using namespace gradserve;
  int iterations = 20;
  if (argc == 3 && std::string(argv[1]) == "--iterations") iterations = std::stoi(argv[2]);
  auto gpu = CudaDevice::Create({});
  if (!gpu.ok()) {
    std::printf("cuda_bench: %s; nothing measured\n", std::string(gpu.status().message()).c_str());
    return 0;
  }
  auto cpu = CpuDevice::Create({});
  std::printf("%-34s %10s %10s %7s\n", "", "ours", "peer", "ratio");
  std::printf("%-34s %10s %10s %7s\n", "", "(GPU)", "(cuBLAS/CPU)", "");
  MatMulVsCublas(**gpu, iterations);
  for (int64_t batch : {1, 64, 1024}) MlpForward(**gpu, **cpu, batch, iterations * 5);
  return 0;
}
