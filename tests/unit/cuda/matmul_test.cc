// The CUDA MatMul and BatchMatMulV2 kernels against the CPU's: every transpose
// and adjoint, odd and unit sizes, a product large enough for cuBLAS's tiled
// paths, each batch broadcasting pattern (equal batches, one side's batch 1 or
// absent, and the general case that loops over groups), the empty sum, the
// CPU's rejections, and the bfloat16 / float16 precisions of a second device.
#ifdef GRADSERVE_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "tests/unit/cuda/cuda_test_util.h"

namespace gradserve::testing {
namespace {

using V = const std::vector<Output>&;

GpuCase MatMulCase(int64_t m, int64_t k, int64_t n, bool ta, bool tb) {
  return {.name = absl::StrCat("MatMul ", m, "x", k, "x", n, " ta=", ta, " tb=", tb),
          .inputs = RandomFloats({ta ? Shape{k, m} : Shape{m, k}, tb ? Shape{n, k} : Shape{k, n}}),
          .build =
              [ta, tb](const Scope& s, V in) {
                return ops::MatMul(s, in[0], in[1], {ta, tb});
              },
          .tolerance = 1e-4};
}

// x [xb..., m, k] (or [k, m] with adj_x), y [yb..., k, n] (or [n, k]).
GpuCase BatchCase(std::vector<int64_t> xb, std::vector<int64_t> yb, int64_t m, int64_t k, int64_t n,
                  bool ax, bool ay) {
  Shape xs(xb), ys(yb);
  xs.AddDim(ax ? k : m);
  xs.AddDim(ax ? m : k);
  ys.AddDim(ay ? n : k);
  ys.AddDim(ay ? k : n);
  return {.name = absl::StrCat("BatchMatMulV2 ", xs.DebugString(), " x ", ys.DebugString(),
                               " adj_x=", ax, " adj_y=", ay),
          .inputs = RandomFloats({xs, ys}),
          .build =
              [ax, ay](const Scope& s, V in) {
                return ops::BatchMatMulV2(s, in[0], in[1], {ax, ay});
              },
          .tolerance = 1e-4};
}

TEST(CudaMatMulTest, EveryTransposeAndSizeMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      ExpectGpuMatchesCpu(MatMulCase(1, 1, 1, ta, tb));
      ExpectGpuMatchesCpu(MatMulCase(1, 7, 33, ta, tb));
      ExpectGpuMatchesCpu(MatMulCase(37, 53, 1, ta, tb));
      ExpectGpuMatchesCpu(MatMulCase(129, 1, 65, ta, tb));
      ExpectGpuMatchesCpu(MatMulCase(512, 1024, 256, ta, tb));
    }
  }
}

TEST(CudaMatMulTest, EmptyProductsAreZeroOrEmpty) {
  SKIP_WITHOUT_GPU();
  ExpectGpuMatchesCpu(MatMulCase(5, 0, 3, false, false));  // an empty sum: zeros
  ExpectGpuMatchesCpu(MatMulCase(0, 4, 3, false, true));
  ExpectGpuMatchesCpu(MatMulCase(6, 4, 0, true, false));
  ExpectGpuMatchesCpu(BatchCase({3}, {3}, 4, 0, 2, false, false));
  ExpectGpuMatchesCpu(BatchCase({0}, {1}, 4, 3, 2, false, false));
}

TEST(CudaBatchMatMulTest, EveryAdjointMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (bool ax : {false, true}) {
    for (bool ay : {false, true}) {
      ExpectGpuMatchesCpu(BatchCase({5}, {5}, 7, 13, 3, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({2, 3}, {2, 3}, 1, 9, 1, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({}, {}, 31, 17, 23, ax, ay));  // plain matrices
      ExpectGpuMatchesCpu(BatchCase({3}, {3}, 64, 96, 80, ax, ay));
    }
  }
}

TEST(CudaBatchMatMulTest, EveryBroadcastPatternMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (bool ax : {false, true}) {
    for (bool ay : {false, true}) {
      // One side's batch is 1 or absent: one strided call, stride 0.
      ExpectGpuMatchesCpu(BatchCase({6}, {}, 5, 7, 3, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({}, {6}, 5, 7, 3, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({1}, {4}, 5, 7, 3, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({2, 3}, {3}, 5, 7, 3, ax, ay));  // y repeats per outer index
      ExpectGpuMatchesCpu(BatchCase({2, 1}, {1}, 4, 6, 5, ax, ay));
      // The general case: groups looped on the host.
      ExpectGpuMatchesCpu(BatchCase({4, 1}, {1, 5}, 3, 7, 2, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({1, 5}, {4, 1}, 3, 7, 2, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({2, 3, 1}, {3, 4}, 3, 5, 6, ax, ay));
      ExpectGpuMatchesCpu(BatchCase({2, 1, 4}, {1, 3, 1}, 2, 3, 4, ax, ay));
    }
  }
}

TEST(CudaMatMulTest, BadShapesAreRejectedAsOnTheCpu) {
  SKIP_WITHOUT_GPU();
  auto matmul = [](const Scope& s, V in) { return ops::MatMul(s, in[0], in[1]); };
  auto batch = [](const Scope& s, V in) { return ops::BatchMatMulV2(s, in[0], in[1]); };
  // The status codes must agree; the messages may differ.
  const GpuMessage any = GpuMessage::kAny;
  ExpectSameRejection("MatMul inner", RandomFloats({Shape{3, 4}, Shape{5, 2}}), matmul, any);
  ExpectSameRejection("MatMul rank", RandomFloats({Shape{3, 4, 1}, Shape{4, 2}}), matmul, any);
  ExpectSameRejection("BatchMatMulV2 inner", RandomFloats({Shape{2, 3, 4}, Shape{2, 5, 2}}), batch,
                      any);
  ExpectSameRejection("BatchMatMulV2 rank", RandomFloats({Shape{4}, Shape{4, 2}}), batch, any);
  ExpectSameRejection("BatchMatMulV2 batch", RandomFloats({Shape{2, 3, 4}, Shape{3, 4, 2}}), batch,
                      any);
}

// A second GPU device whose matrix products run in `precision`.
CudaDevice* GpuIn(MatMulPrecision precision) {
  static CudaDevice* bf16 =
      CudaDevice::Create({.matmul_precision = MatMulPrecision::kBFloat16})->release();
  static CudaDevice* fp16 =
      CudaDevice::Create({.matmul_precision = MatMulPrecision::kFloat16})->release();
  return precision == MatMulPrecision::kBFloat16 ? bf16 : fp16;
}

// `c` on a device of `precision` is within `tolerance` of the CPU, relative to
// the largest magnitude of the CPU's result, and not bit-equal to it (the
// operands were rounded).
void ExpectReducedPrecisionMatchesCpu(const GpuCase& c, MatMulPrecision precision,
                                      double tolerance) {
  SCOPED_TRACE(c.name);
  CudaDevice* gpu = GpuIn(precision);
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(&graph, c.inputs, c.build);
  ASSERT_TRUE(node.ok()) << node.status();
  absl::StatusOr<std::vector<Tensor>> want = RunKernel(**node, Cpu(), c.inputs);
  ASSERT_TRUE(want.ok()) << want.status();
  std::vector<Tensor> inputs;
  for (const Tensor& t : c.inputs) inputs.push_back(gpu->CopyFromHost(t).value());
  absl::StatusOr<std::vector<Tensor>> got = RunKernel(**node, gpu, inputs);
  ASSERT_TRUE(got.ok()) << got.status();
  const RefTensor g = FromTensor(gpu->CopyToHost((*got)[0]).value());
  const RefTensor w = FromTensor((*want)[0]);
  ASSERT_EQ(g.shape, w.shape);
  double scale = 0, max_error = 0;
  for (double v : w.v) scale = std::max(scale, std::abs(v));
  for (int64_t i = 0; i < w.size(); ++i) {
    ASSERT_NEAR(g.v[i], w.v[i], tolerance * scale) << "element " << i;
    max_error = std::max(max_error, std::abs(g.v[i] - w.v[i]));
  }
  EXPECT_GT(max_error, 0) << "the operands were not rounded";
}

TEST(CudaMatMulTest, BFloat16AndFloat16PrecisionsStayNearTheCpu) {
  SKIP_WITHOUT_GPU();
  for (MatMulPrecision p : {MatMulPrecision::kBFloat16, MatMulPrecision::kFloat16}) {
    SCOPED_TRACE(p == MatMulPrecision::kBFloat16 ? "bfloat16" : "float16");
    for (bool t : {false, true}) {
      ExpectReducedPrecisionMatchesCpu(MatMulCase(512, 1024, 256, t, !t), p, 2e-2);
      ExpectReducedPrecisionMatchesCpu(MatMulCase(37, 53, 29, t, t), p, 2e-2);
      ExpectReducedPrecisionMatchesCpu(BatchCase({4}, {4}, 33, 65, 17, t, !t), p, 2e-2);
      ExpectReducedPrecisionMatchesCpu(BatchCase({3}, {}, 33, 65, 17, t, t), p, 2e-2);
      ExpectReducedPrecisionMatchesCpu(BatchCase({2, 1}, {1, 3}, 9, 31, 7, t, !t), p, 2e-2);
    }
  }
}

}  // namespace
}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
