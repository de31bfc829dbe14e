// The CUDA device and kernels (built with GRADSERVE_CUDA). Every kernel runs
// against the CPU kernel of the same node on fresh random inputs (float32:
// 1e-5 relative elementwise, 1e-4 for products and sums; cuBLAS in pedantic
// IEEE math, no TF32). Without a GPU these tests skip, except the one that
// checks the no-GPU answer itself.
#ifdef GRADSERVE_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "graph/status.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/kernel.h"
#include "tests/unit/cuda/cuda_test_util.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;
using testing::ExpectGpuMatchesCpu;
using testing::Gpu;
using testing::GpuCase;
using testing::RandomFloats;
using testing::RunKernel;

const KernelRegistry& Kernels() { return KernelRegistry::Global(); }

// One op case on float32 inputs of `shapes`.
struct Case {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Output(const Scope&, const std::vector<Output>&)> build;
  double tolerance = 1e-5;
};

TEST(CudaDeviceTest, WithoutAGpuCreateSaysWhy) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "this machine has a GPU";
  auto d = CudaDevice::Create({});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(d.status().message(), HasSubstr("no CUDA GPU"));
  EXPECT_EQ(CudaUnavailableReason(), std::string(d.status().message()));
  // The CUDA kernels register all the same (float32 only).
  EXPECT_TRUE(Kernels().Supports("MatMul", kDeviceCuda, DType::kFloat));
  EXPECT_FALSE(Kernels().Supports("MatMul", kDeviceCuda, DType::kInt32));
}

TEST(CudaDeviceTest, CopiesRoundTripAndMemoryIsAccounted) {
  SKIP_WITHOUT_GPU();
  auto missing = CudaDevice::Create({.ordinal = CudaDeviceCount()});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  const int64_t before = Gpu()->memory_stats().in_use_bytes;
  Tensor host = testing::ToTensor(testing::Random(Shape{123, 45}), DType::kFloat);
  {
    absl::StatusOr<Tensor> dev = Gpu()->CopyFromHost(host);
    ASSERT_TRUE(dev.ok()) << dev.status();
    EXPECT_FALSE(dev->host_accessible());
    EXPECT_EQ(Gpu()->memory_stats().in_use_bytes, before + 123 * 45 * 4);
    absl::StatusOr<Tensor> back = Gpu()->CopyToHost(*dev);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(testing::FromTensor(*back).v, testing::FromTensor(host).v);
  }
  EXPECT_EQ(Gpu()->memory_stats().in_use_bytes, before);
  EXPECT_GE(Gpu()->memory_stats().peak_in_use_bytes, 123 * 45 * 4);
}

TEST(CudaKernelTest, EveryKernelMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  using V = const std::vector<Output>&;
  std::vector<Case> cases;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      cases.push_back({absl::StrCat("MatMul ta=", ta, " tb=", tb),
                       {ta ? Shape{53, 37} : Shape{37, 53}, tb ? Shape{29, 53} : Shape{53, 29}},
                       [ta, tb](const Scope& s, V in) {
                         return ops::MatMul(s, in[0], in[1], {.transpose_a = ta, .transpose_b = tb});
                       },
                       1e-4});
    }
  }
  cases.push_back({"MatMul 256x512x128", {Shape{256, 512}, Shape{512, 128}},
                   [](const Scope& s, V in) { return ops::MatMul(s, in[0], in[1]); }, 1e-4});
  cases.push_back({"AddV2 same", {Shape{17, 33}, Shape{17, 33}},
                   [](const Scope& s, V in) { return ops::AddV2(s, in[0], in[1]); }});
  cases.push_back({"AddV2 row", {Shape{4, 5, 33}, Shape{33}},
                   [](const Scope& s, V in) { return ops::AddV2(s, in[0], in[1]); }});
  cases.push_back({"Sub scalar", {Shape{1000}, Shape{}},
                   [](const Scope& s, V in) { return ops::Sub(s, in[0], in[1]); }});
  cases.push_back({"Mul same", {Shape{3, 100000}, Shape{3, 100000}},
                   [](const Scope& s, V in) { return ops::Mul(s, in[0], in[1]); }});
  cases.push_back({"BiasAdd", {Shape{64, 512}, Shape{512}},
                   [](const Scope& s, V in) { return ops::BiasAdd(s, in[0], in[1]); }});
  cases.push_back({"Relu", {Shape{64, 513}},
                   [](const Scope& s, V in) { return ops::Relu(s, in[0]); }});
  cases.push_back({"ReluGrad", {Shape{64, 513}, Shape{64, 513}},
                   [](const Scope& s, V in) { return ops::ReluGrad(s, in[0], in[1]); }});
  cases.push_back({"BiasAddGrad", {Shape{1000, 10}},
                   [](const Scope& s, V in) { return ops::BiasAddGrad(s, in[0]); }, 1e-4});
  cases.push_back({"Softmax 7x1000", {Shape{7, 1000}},
                   [](const Scope& s, V in) { return ops::Softmax(s, in[0]); }, 1e-4});
  cases.push_back({"Softmax 300x10", {Shape{300, 10}},
                   [](const Scope& s, V in) { return ops::Softmax(s, in[0]); }, 1e-4});
  for (const Case& c : cases) {
    ExpectGpuMatchesCpu(GpuCase{c.name, RandomFloats(c.shapes), c.build, c.tolerance});
  }
}

// Const copies its value to the GPU; AssignAdd/AssignSubVariableOp move a
// variable assigned in host memory to the GPU (EnsureOnDevice) and update it
// there, leaving an earlier snapshot alone (copy-on-write).
TEST(CudaKernelTest, ConstAndVariableUpdatesRunOnTheGpu) {
  SKIP_WITHOUT_GPU();
  const Shape shape{5, 7};
  Graph graph;
  Scope s(&graph);
  const Tensor constant = testing::ToTensor(testing::Random(shape), DType::kFloat);
  Output c = ops::Const(s, constant);
  Output handle = ops::VarHandleOp(s.WithName("v"), DType::kFloat, shape);
  Node* init = ops::AssignVariableOp(s, handle, ops::Placeholder(s, DType::kFloat, shape));
  Node* add = ops::AssignAddVariableOp(s, handle, ops::Placeholder(s, DType::kFloat, shape));
  Node* sub = ops::AssignSubVariableOp(s, handle, ops::Placeholder(s, DType::kFloat, shape));
  Output read = ops::ReadVariableOp(s, handle, DType::kFloat);
  ASSERT_TRUE(s.ok()) << s.status();

  auto got_const = RunKernel(*c.node, Gpu(), {});
  ASSERT_TRUE(got_const.ok()) << got_const.status();
  EXPECT_EQ((*got_const)[0].device(), Gpu()->name());
  EXPECT_EQ(testing::FromTensor(testing::OnHost((*got_const)[0])).v,
            testing::FromTensor(constant).v);

  ResourceMgr resources;
  auto h = RunKernel(*handle.node, Gpu(), {}, &resources);
  ASSERT_TRUE(h.ok()) << h.status();
  const Tensor var_handle = (*h)[0];
  const Tensor start = testing::ToTensor(testing::Random(shape), DType::kFloat);
  const Tensor d1 = testing::ToTensor(testing::Random(shape), DType::kFloat);
  const Tensor d2 = testing::ToTensor(testing::Random(shape), DType::kFloat);
  ASSERT_TRUE(RunKernel(*init, testing::Cpu(), {var_handle, start}, &resources).ok());
  auto on_gpu = [&](const Node& node, const Tensor& delta) {
    return RunKernel(node, Gpu(), testing::ForGpu(node, {var_handle, delta}), &resources).status();
  };
  auto read_on_gpu = [&]() -> Tensor {
    auto r = RunKernel(*read.node, Gpu(), {var_handle}, &resources);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return Tensor();
    EXPECT_EQ((*r)[0].device(), Gpu()->name());
    return (*r)[0];
  };
  ASSERT_TRUE(on_gpu(*add, d1).ok());
  const Tensor after_add = read_on_gpu();  // a snapshot the next update must not change
  ASSERT_TRUE(on_gpu(*sub, d2).ok());
  const Tensor after_sub = read_on_gpu();
  const std::vector<double> v0 = testing::FromTensor(start).v, a = testing::FromTensor(d1).v,
                            b = testing::FromTensor(d2).v;
  const std::vector<double> got_add = testing::FromTensor(testing::OnHost(after_add)).v;
  const std::vector<double> got_sub = testing::FromTensor(testing::OnHost(after_sub)).v;
  ASSERT_EQ(got_add.size(), v0.size());
  ASSERT_EQ(got_sub.size(), v0.size());
  for (size_t i = 0; i < v0.size(); ++i) {
    const float want_add = static_cast<float>(v0[i]) + static_cast<float>(a[i]);
    const float want_sub = want_add - static_cast<float>(b[i]);
    EXPECT_NEAR(got_add[i], want_add, 1e-6 * std::max(1.0, std::abs(double{want_add}))) << i;
    EXPECT_NEAR(got_sub[i], want_sub, 1e-6 * std::max(1.0, std::abs(double{want_sub}))) << i;
  }
  // A delta of another shape: the CPU kernel's InvalidArgument.
  const Tensor wrong = testing::ToTensor(testing::Random(Shape{3}), DType::kFloat);
  EXPECT_EQ(on_gpu(*add, wrong).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CudaKernelTest, AnInputLeftOnTheHostIsAnError) {
  SKIP_WITHOUT_GPU();
  Graph graph;
  Scope s(&graph);
  Output a = ops::Placeholder(s, DType::kFloat, Shape{3, 4});
  Output col = ops::Placeholder(s, DType::kFloat, Shape{3, 1});
  Output sum = ops::AddV2(s, a, col);
  ASSERT_TRUE(s.ok()) << s.status();
  Tensor ha = testing::ToTensor(testing::Random(Shape{3, 4}), DType::kFloat);
  Tensor hc = testing::ToTensor(testing::Random(Shape{3, 1}), DType::kFloat);
  auto on_host = RunKernel(*sum.node, Gpu(), {ha, hc});
  EXPECT_EQ(on_host.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(on_host.status().message(), HasSubstr("is on cpu:0, not on cuda:0"));
}

}  // namespace
}  // namespace gradserve

#endif  // GRADSERVE_HAVE_CUDA
