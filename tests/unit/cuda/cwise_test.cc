// The CUDA element-wise kernels (runtime/kernels/cuda/cwise_ops.cc) against the
// CPU's on the same random inputs: every op, NumPy broadcasting (both operands
// broadcast, scalars on either side, one-element non-scalars, rank 5 after
// collapsing, empty outputs), sizes that take many blocks (1 << 20), bool
// outputs and inputs, Cast in each direction the GPU holds, and the rejections,
// which must carry the CPU's status code. Skipped without a GPU.
#ifdef GRADSERVE_HAVE_CUDA

#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "tests/unit/cuda/cuda_test_util.h"

namespace gradserve {
namespace {

using testing::ExpectBothReject;
using testing::ExpectGpuMatchesCpu;
using testing::GpuCase;
using testing::RandomFloats;
using V = const std::vector<Output>&;

// A binary builder: the op on inputs 0 and 1.
using Build2 = std::function<Output(const Scope&, Output, Output)>;

// Host float tensors of `shape` uniform in [lo, hi].
Tensor Floats(const Shape& shape, double lo = -2, double hi = 2) {
  return RandomFloats({shape}, lo, hi)[0];
}
// Small integers as floats, so that comparisons meet ties.
Tensor IntFloats(const Shape& shape) {
  return testing::ToTensor(testing::RandomInt(shape, -2, 2), DType::kFloat);
}
Tensor Bools(const Shape& shape) {
  return testing::ToTensor(testing::RandomInt(shape, 0, 1), DType::kBool);
}
Tensor Ints(DType dtype, const Shape& shape, std::vector<double> v) {
  return testing::ToTensor(testing::Values(shape, std::move(v)), dtype);
}

std::string Name(absl::string_view op, const std::vector<Tensor>& inputs) {
  std::string name(op);
  for (const Tensor& t : inputs) absl::StrAppend(&name, " ", t.shape().DebugString());
  return name;
}

// The broadcasting patterns every binary op runs: the output shape and the
// collapsed rank (Note [Broadcast collapsing]) differ from one to the next.
const std::vector<std::pair<Shape, Shape>>& BroadcastPatterns() {
  static const auto* shapes = new std::vector<std::pair<Shape, Shape>>{
      {{17, 33}, {17, 33}},                // one shape
      {{4, 1, 5}, {3, 1}},                 // both broadcast: [4, 3, 5]
      {{3, 1}, {4, 1, 5}},                 // the same, swapped
      {{1000}, {}},                        // scalar on the right
      {{}, {7, 3}},                        // scalar on the left
      {{1, 1}, {5}},                       // one element, rank 2: [1, 5]
      {{64, 100}, {100}},                  // a row
      {{64, 1}, {64, 100}},                // a column, on the left
      {{2, 1, 3, 1, 4}, {1, 5, 1, 6, 1}},  // rank 5 after collapsing
      {{0, 3}, {3}},                       // empty output
      {{1 << 20}, {1 << 20}},              // many blocks, one shape
      {{1024, 1024}, {1024}},              // many blocks, broadcast
      {{1 << 20}, {}},                     // many blocks, scalar
  };
  return *shapes;
}

TEST(CudaCwiseTest, UnaryOpsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  struct Op {
    std::string name;
    std::function<Output(const Scope&, Output)> build;
    double lo = -2, hi = 2;
  };
  const std::vector<Op> unary = {
      {"Abs", ops::Abs},
      {"Neg", ops::Neg},
      {"Exp", ops::Exp},
      {"Log", ops::Log, 0.01, 10},
      {"Sqrt", ops::Sqrt, 0, 10},
      {"Rsqrt", ops::Rsqrt, 0.01, 10},
      {"Square", ops::Square},
      {"Sigmoid", ops::Sigmoid, -10, 10},
      {"Tanh", ops::Tanh, -5, 5},
      {"Relu", ops::Relu},
      {"Relu6", ops::Relu6, -8, 8},
      {"Elu", ops::Elu, -4, 2},
  };
  for (const Op& op : unary) {
    for (const Shape& shape :
         {Shape{}, Shape{7}, Shape{1023}, Shape{0, 4}, Shape{100003}, Shape{1 << 20}}) {
      std::vector<Tensor> in = {Floats(shape, op.lo, op.hi)};
      ExpectGpuMatchesCpu(
          {Name(op.name, in), in, [&op](const Scope& s, V x) { return op.build(s, x[0]); }});
    }
  }
}

TEST(CudaCwiseTest, BinaryOpsBroadcastLikeTheCpu) {
  SKIP_WITHOUT_GPU();
  struct Op {
    std::string name;
    Build2 build;
    double x_lo = -2, x_hi = 2, y_lo = -2, y_hi = 2;
  };
  const std::vector<Op> binary = {
      {"Add", ops::Add},
      {"AddV2", ops::AddV2},
      {"Sub", ops::Sub},
      {"Mul", ops::Mul},
      {"RealDiv", ops::RealDiv, -2, 2, 0.5, 2},
      {"Maximum", ops::Maximum},
      {"Minimum", ops::Minimum},
      {"Pow", ops::Pow, 0.1, 3, -2, 2},
      {"ReluGrad", ops::ReluGrad, -2, 2, -8, 8},
      {"Relu6Grad", ops::Relu6Grad, -2, 2, -8, 8},
      {"EluGrad", ops::EluGrad, -2, 2, -1, 2},
      {"SigmoidGrad", ops::SigmoidGrad, 0, 1, -2, 2},
      {"TanhGrad", ops::TanhGrad, -1, 1, -2, 2},
  };
  for (const Op& op : binary) {
    for (const auto& [xs, ys] : BroadcastPatterns()) {
      std::vector<Tensor> in = {Floats(xs, op.x_lo, op.x_hi), Floats(ys, op.y_lo, op.y_hi)};
      ExpectGpuMatchesCpu(
          {Name(op.name, in), in, [&op](const Scope& s, V x) { return op.build(s, x[0], x[1]); }});
    }
  }
}

TEST(CudaCwiseTest, ComparisonsAndLogicGiveTheCpusBools) {
  SKIP_WITHOUT_GPU();
  const std::vector<std::pair<std::string, Build2>> compare = {
      {"Equal", [](const Scope& s, Output x, Output y) { return ops::Equal(s, x, y); }},
      {"Less", ops::Less},
      {"Greater", ops::Greater},
  };
  for (const auto& [name, build] : compare) {
    for (const auto& [xs, ys] : BroadcastPatterns()) {
      std::vector<Tensor> in = {IntFloats(xs), IntFloats(ys)};
      ExpectGpuMatchesCpu(
          {Name(name, in), in, [&build](const Scope& s, V x) { return build(s, x[0], x[1]); }});
    }
  }
  for (const auto& [xs, ys] : BroadcastPatterns()) {
    std::vector<Tensor> in = {Bools(xs), Bools(ys)};
    ExpectGpuMatchesCpu({Name("LogicalAnd", in), in,
                         [](const Scope& s, V x) { return ops::LogicalAnd(s, x[0], x[1]); }});
  }
  // Shapes that cannot broadcast compare unequal: a scalar false.
  std::vector<Tensor> in = {IntFloats(Shape{3}), IntFloats(Shape{4})};
  ExpectGpuMatchesCpu({"Equal incompatible, not strict", in, [](const Scope& s, V x) {
                         return ops::Equal(s, x[0], x[1], {.incompatible_shape_error = false});
                       }});
}

TEST(CudaCwiseTest, SelectV2BroadcastsAllThree) {
  SKIP_WITHOUT_GPU();
  const std::vector<std::vector<Shape>> shapes = {
      {{4, 3, 5}, {4, 3, 5}, {4, 3, 5}},                    // one shape
      {{3, 1}, {4, 3, 5}, {5}},                             // all broadcast
      {{}, {100}, {100}},                                   // scalar condition
      {{100}, {}, {100}},                                   // scalar then
      {{2, 1, 3, 1, 1}, {1, 5, 1, 6, 1}, {1, 1, 1, 1, 4}},  // rank 5 after collapsing
      {{0, 2}, {2}, {2}},                                   // empty output
      {{1024, 1024}, {1024, 1024}, {1024, 1024}},           // many blocks
      {{1024, 1}, {1024}, {1024, 1024}},                    // many blocks, broadcast
  };
  for (const std::vector<Shape>& s3 : shapes) {
    std::vector<Tensor> in = {Bools(s3[0]), Floats(s3[1]), Floats(s3[2])};
    ExpectGpuMatchesCpu({Name("SelectV2", in), in,
                         [](const Scope& s, V x) { return ops::SelectV2(s, x[0], x[1], x[2]); }});
  }
}

TEST(CudaCwiseTest, CastFromFloatAndBoolToEveryType) {
  SKIP_WITHOUT_GPU();
  const std::vector<DType> all = {DType::kFloat, DType::kDouble, DType::kHalf,  DType::kBFloat16,
                                  DType::kInt8,  DType::kUInt8,  DType::kInt16, DType::kInt32,
                                  DType::kInt64, DType::kBool};
  // Values every type holds, with zeros and fractions (truncation toward zero).
  const Tensor in_range = Ints(DType::kFloat, Shape{2, 4}, {0, 1, 0.5, 2.75, 99.9, 120.2, 7, 0});
  const Tensor negative = Ints(DType::kFloat, Shape{4}, {-2.7, -0.5, -100, 3});
  for (DType to : all) {
    auto cast = [to](const Scope& s, V x) { return ops::Cast(s, x[0], to); };
    ExpectGpuMatchesCpu({absl::StrCat("Cast float to ", DTypeName(to)), {in_range}, cast});
    ExpectGpuMatchesCpu({absl::StrCat("Cast large float to ", DTypeName(to)),
                         {Floats(Shape{1 << 20}, 0, 120)},
                         cast});
    ExpectGpuMatchesCpu({absl::StrCat("Cast bool to ", DTypeName(to)), {Bools(Shape{1023})}, cast});
    if (to == DType::kInt8 || to == DType::kInt16 || to == DType::kInt32 || to == DType::kInt64) {
      ExpectGpuMatchesCpu(
          {absl::StrCat("Cast negative float to ", DTypeName(to)), {negative}, cast});
    }
  }
  for (DType to : {DType::kHalf, DType::kBFloat16}) {
    ExpectGpuMatchesCpu(
        {absl::StrCat("Cast float to ", DTypeName(to), " truncating"),
         {Floats(Shape{1000}, -100, 100)},
         [to](const Scope& s, V x) { return ops::Cast(s, x[0], to, {.truncate = true}); }});
  }
  ExpectGpuMatchesCpu({"Cast empty", {Floats(Shape{0, 4})}, [](const Scope& s, V x) {
                         return ops::Cast(s, x[0], DType::kInt32);
                       }});
  // SrcT picks the kernel: integer sources (shape arithmetic) stay on the CPU.
  const KernelRegistry& kernels = KernelRegistry::Global();
  EXPECT_TRUE(kernels.Supports("Cast", kDeviceCuda, DType::kFloat));
  EXPECT_TRUE(kernels.Supports("Cast", kDeviceCuda, DType::kBool));
  EXPECT_FALSE(kernels.Supports("Cast", kDeviceCuda, DType::kInt32));
  EXPECT_FALSE(kernels.Supports("Cast", kDeviceCuda, DType::kInt64));
}

TEST(CudaCwiseTest, AddNSumsInOrder) {
  SKIP_WITHOUT_GPU();
  for (int n : {1, 2, 3, 4, 5, 8}) {
    for (const Shape& shape : {Shape{17, 33}, Shape{}, Shape{0, 3}}) {
      std::vector<Tensor> in;
      for (int i = 0; i < n; ++i) in.push_back(Floats(shape));
      ExpectGpuMatchesCpu({Name(absl::StrCat("AddN of ", n), in), in,
                           [](const Scope& s, V x) { return ops::AddN(s, x); }});
    }
  }
  std::vector<Tensor> large = {Floats(Shape{1 << 20}), Floats(Shape{1 << 20}),
                               Floats(Shape{1 << 20})};
  ExpectGpuMatchesCpu({"AddN large", large, [](const Scope& s, V x) { return ops::AddN(s, x); }});
}

TEST(CudaCwiseTest, BiasAddInBothDataFormats) {
  SKIP_WITHOUT_GPU();
  const std::vector<std::tuple<std::string, Shape, Shape>> cases = {
      {"NHWC", {64, 512}, {512}},     {"NHWC", {2, 3, 4, 5}, {5}},     {"NHWC", {1, 7}, {7}},
      {"NHWC", {1024, 1024}, {1024}}, {"NCHW", {2, 3, 4, 5}, {3}},     {"NCHW", {4, 7, 9}, {7}},
      {"NCHW", {1, 3, 2, 2}, {3}},    {"NCHW", {8, 64, 32, 32}, {64}}, {"NHWC", {0, 5}, {5}},
  };
  for (const auto& [format, value, bias] : cases) {
    std::vector<Tensor> in = {Floats(value), Floats(bias)};
    ExpectGpuMatchesCpu(
        {Name(absl::StrCat("BiasAdd ", format), in), in, [format = format](const Scope& s, V x) {
           return ops::BiasAdd(s, x[0], x[1], {.data_format = format});
         }});
  }
}

TEST(CudaCwiseTest, FillAndFillLike) {
  SKIP_WITHOUT_GPU();
  auto fill = [](const Scope& s, V x) { return ops::Fill(s, x[0], x[1]); };
  for (DType index : {DType::kInt32, DType::kInt64}) {
    ExpectGpuMatchesCpu({absl::StrCat("Fill ", DTypeName(index)),
                         {Ints(index, Shape{3}, {2, 3, 4}), Floats(Shape{})},
                         fill});
  }
  ExpectGpuMatchesCpu(
      {"Fill large", {Ints(DType::kInt32, Shape{2}, {1024, 1024}), Floats(Shape{})}, fill});
  ExpectGpuMatchesCpu(
      {"Fill empty", {Ints(DType::kInt32, Shape{2}, {0, 5}), Floats(Shape{})}, fill});
  ExpectGpuMatchesCpu({"Fill scalar", {Ints(DType::kInt32, Shape{0}, {}), Floats(Shape{})}, fill});
  for (const Shape& shape : {Shape{}, Shape{7}, Shape{0, 3}, Shape{1 << 20}}) {
    std::vector<Tensor> in = {Floats(shape)};
    ExpectGpuMatchesCpu(
        {Name("ZerosLike", in), in, [](const Scope& s, V x) { return ops::ZerosLike(s, x[0]); }});
    ExpectGpuMatchesCpu(
        {Name("OnesLike", in), in, [](const Scope& s, V x) { return ops::OnesLike(s, x[0]); }});
  }
}

TEST(CudaCwiseTest, RejectsWithTheCpusCodes) {
  SKIP_WITHOUT_GPU();
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  auto add = [](const Scope& s, V x) { return ops::AddV2(s, x[0], x[1]); };
  ExpectBothReject("AddV2 incompatible", {Floats(Shape{3, 4}), Floats(Shape{5})}, add, kInvalid);
  ExpectBothReject(
      "Less incompatible", {Floats(Shape{2}), Floats(Shape{3})},
      [](const Scope& s, V x) { return ops::Less(s, x[0], x[1]); }, kInvalid);
  ExpectBothReject(
      "Equal incompatible, strict", {Floats(Shape{2}), Floats(Shape{3})},
      [](const Scope& s, V x) { return ops::Equal(s, x[0], x[1]); }, kInvalid);
  // Six alternating broadcast runs: beyond the 5 collapsed dims instantiated.
  ExpectBothReject("AddV2 rank 6",
                   {Floats(Shape{2, 1, 2, 1, 2, 1}), Floats(Shape{1, 2, 1, 2, 1, 2})}, add,
                   absl::StatusCode::kUnimplemented);
  ExpectBothReject(
      "SelectV2 incompatible", {Bools(Shape{3}), Floats(Shape{4}), Floats(Shape{4})},
      [](const Scope& s, V x) { return ops::SelectV2(s, x[0], x[1], x[2]); }, kInvalid);
  ExpectBothReject(
      "AddN shapes differ", {Floats(Shape{3}), Floats(Shape{4})},
      [](const Scope& s, V x) { return ops::AddN(s, x); }, kInvalid);
  ExpectBothReject(
      "BiasAdd bias size", {Floats(Shape{4, 5}), Floats(Shape{4})},
      [](const Scope& s, V x) { return ops::BiasAdd(s, x[0], x[1]); }, kInvalid);
  ExpectBothReject(
      "BiasAdd NCHW rank 2", {Floats(Shape{4, 5}), Floats(Shape{5})},
      [](const Scope& s, V x) { return ops::BiasAdd(s, x[0], x[1], {.data_format = "NCHW"}); },
      kInvalid);
  ExpectBothReject(
      "Fill negative dim", {Ints(DType::kInt32, Shape{2}, {2, -1}), Floats(Shape{})},
      [](const Scope& s, V x) { return ops::Fill(s, x[0], x[1]); }, kInvalid);
  // An input left in host memory is a wiring bug the CUDA kernel reports.
  Graph graph;
  Scope s(&graph);
  Output sum =
      ops::AddV2(s, ops::Placeholder(s, DType::kFloat), ops::Placeholder(s, DType::kFloat));
  ASSERT_TRUE(s.ok()) << s.status();
  auto on_host =
      testing::RunKernel(*sum.node, testing::Gpu(), {Floats(Shape{3}), Floats(Shape{3})});
  EXPECT_EQ(on_host.status().code(), kInvalid) << on_host.status();
}

}  // namespace
}  // namespace gradserve

#endif  // GRADSERVE_HAVE_CUDA
