// The CUDA reductions, softmax family and losses (runtime/kernels/cuda/
// reduction_ops.cc) against the CPU kernels of the same nodes: Sum, Mean, Max
// and Min over every axis pattern of rank 0 to 4 (keep_dims, negative axes,
// no axes, int32 and int64 axes) up to 10^6 elements, which take the row and
// column kernels and their multi-pass paths (Note [GPU reduction passes]);
// ArgMax with ties and NaN; Softmax and LogSoftmax on rows of 1 to 100000
// columns (warp and block paths), logits of +-100 and NaN logits (NaN rows, as
// on the CPU, in the losses too); the losses, L2Loss and
// BiasAddGrad in both layouts. Sums use integer-valued floats where they can,
// so that any summation order gives the CPU's result exactly and a lost or
// repeated element shows. Bad inputs get the CPU kernel's code and message;
// a sparse label out of range gives NaN rows (the CPU fails) and is checked
// on its own.
#ifdef GRADSERVE_HAVE_CUDA

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "runtime/kernel.h"
#include "tests/unit/cuda/cuda_test_util.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using testing::BuildNode;
using testing::ExpectGpuMatchesCpu;
using testing::ForGpu;
using testing::FromTensor;
using testing::Gpu;
using testing::OnHost;
using testing::RunKernel;
using testing::ToTensor;
using Ints = std::vector<int64_t>;
using V = const std::vector<Output>&;
using Build = std::function<Output(const Scope&, V)>;

Tensor Floats(const Shape& shape, double lo = -2, double hi = 2) {
  return ToTensor(testing::Random(shape, lo, hi), DType::kFloat);
}
// Integer-valued floats in [lo, hi]: their sums (below 2^24) are exact.
Tensor SmallInts(const Shape& shape, int64_t lo = -8, int64_t hi = 8) {
  return ToTensor(testing::RandomInt(shape, lo, hi), DType::kFloat);
}
Tensor IntTensor(const Ints& v, DType dtype, const Shape& shape) {
  return ToTensor(testing::Values(shape, std::vector<double>(v.begin(), v.end())), dtype);
}
Tensor IntVector(const Ints& v, DType dtype) {
  return IntTensor(v, dtype, Shape{static_cast<int64_t>(v.size())});
}
std::string Str(const Ints& v) { return absl::StrCat("{", absl::StrJoin(v, ","), "}"); }

// Like ExpectGpuMatchesCpu, where a NaN must meet a NaN and an infinity the same infinity.
void ExpectSameWithSpecials(const std::string& name, const std::vector<Tensor>& inputs,
                            const Build& build) {
  SCOPED_TRACE(name);
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(&graph, inputs, build);
  ASSERT_TRUE(node.ok()) << node.status();
  absl::StatusOr<std::vector<Tensor>> cpu = RunKernel(**node, testing::Cpu(), inputs);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  absl::StatusOr<std::vector<Tensor>> gpu = RunKernel(**node, Gpu(), ForGpu(**node, inputs));
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  ASSERT_EQ(gpu->size(), cpu->size());
  for (size_t o = 0; o < cpu->size(); ++o) {
    const Tensor g_host = OnHost((*gpu)[o]);
    ASSERT_EQ(g_host.shape(), (*cpu)[o].shape());
    const testing::RefTensor g = FromTensor(g_host), w = FromTensor((*cpu)[o]);
    for (int64_t i = 0; i < w.size(); ++i) {
      if (std::isnan(w.v[i])) {
        EXPECT_TRUE(std::isnan(g.v[i])) << "output " << o << " element " << i << ": " << g.v[i];
      } else {
        EXPECT_EQ(g.v[i], w.v[i]) << "output " << o << " element " << i;
      }
    }
  }
}

// Both kernels reject `inputs` with the same code; the GPU's message (which
// names the node) contains the CPU's.
void ExpectSameRejection(const std::string& name, const std::vector<Tensor>& inputs,
                         const Build& build) {
  testing::ExpectSameRejection(name, inputs, build, testing::GpuMessage::kContains);
}

Build Reduction(const std::string& op, bool keep_dims) {
  return [op, keep_dims](const Scope& s, V in) {
    const ops::ReduceAttrs attrs{.keep_dims = keep_dims};
    if (op == "Sum") return ops::Sum(s, in[0], in[1], attrs);
    if (op == "Mean") return ops::Mean(s, in[0], in[1], attrs);
    if (op == "Max") return ops::Max(s, in[0], in[1], attrs);
    return ops::Min(s, in[0], in[1], attrs);
  };
}

const char* const kReductions[] = {"Sum", "Mean", "Max", "Min"};

// Runs without a GPU: what is registered, and where its arguments live.
TEST(CudaReductionTest, RegistersFloatKernelsWithHostAxes) {
  const KernelRegistry& r = KernelRegistry::Global();
  for (const char* op :
       {"Sum", "Mean", "Max", "Min", "ArgMax", "L2Loss", "BiasAddGrad", "Softmax", "LogSoftmax",
        "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits"}) {
    EXPECT_TRUE(r.Supports(op, kDeviceCuda, DType::kFloat)) << op;
    EXPECT_FALSE(r.Supports(op, kDeviceCuda, DType::kInt32)) << op;
  }
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(
      &graph, {Floats(Shape{2, 3}), IntVector({0}, DType::kInt32)}, Reduction("Sum", false));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(r.Find(**node, kDeviceCuda).value()->host_memory_inputs, std::vector<int>{1});
}

TEST(CudaReductionTest, SumMeanMaxMinMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape shape;
    Ints axes;
  };
  const std::vector<C> cases = {
      {{1000000}, {0}},
      {{1000, 1000}, {0}},
      {{1000, 1000}, {1}},
      {{1000, 1000}, {0, 1}},
      {{3, 5, 7, 11}, {0, 2}},
      {{3, 5, 7, 11}, {1, 3}},
      {{3, 5, 7, 11}, {0, 1, 2, 3}},
      {{3, 5, 7, 11}, {}},
      {{3, 5, 7, 11}, {-1}},
      {{3, 5, 7, 11}, {-4, 2}},
      {{3, 5, 7, 11}, {1, 2}},
      {{1, 7, 1}, {0, 2}},
      {{1, 7, 1}, {1}},
      {{1023, 3}, {0}},
      {{3, 100003}, {1}},
      {{100003, 2}, {0}},
      {{2, 100000, 3}, {1}},
      {{5, 1, 4097}, {2}},
      {{17}, {0}},
      {{7, 16}, {1}},
      {{7, 17}, {1}},
      {{}, {}},
      {{4, 1000000}, {0}},
      {{1 << 22}, {0}},
  };
  int n = 0;
  for (const C& c : cases) {
    const Tensor x = SmallInts(c.shape);
    const DType axes_type = n++ % 2 == 0 ? DType::kInt32 : DType::kInt64;
    for (const char* op : kReductions) {
      for (bool keep_dims : {false, true}) {
        // Integer-valued: every summation order gives the same float.
        ExpectGpuMatchesCpu({absl::StrCat(op, " ", c.shape.DebugString(), " over ", Str(c.axes),
                                          keep_dims ? " keep_dims" : ""),
                             {x, IntVector(c.axes, axes_type)},
                             Reduction(op, keep_dims),
                             0});
      }
    }
  }
  // Random floats: the sums round differently from the CPU's.
  for (const C& c :
       std::vector<C>{{{1000000}, {0}}, {{1000, 1000}, {0}}, {{3, 5, 7, 11}, {1, 3}}}) {
    for (const char* op : kReductions) {
      const bool exact = std::string(op) == "Max" || std::string(op) == "Min";
      ExpectGpuMatchesCpu({absl::StrCat(op, " floats ", c.shape.DebugString(), " ", Str(c.axes)),
                           {Floats(c.shape), IntVector(c.axes, DType::kInt32)},
                           Reduction(op, false),
                           exact ? 0 : 1e-4});
    }
  }
}

TEST(CudaReductionTest, EmptyInputsAndNaNGiveTheCpusValues) {
  SKIP_WITHOUT_GPU();
  Tensor with_nan = Floats(Shape{6, 1000});
  with_nan.data<float>()[3 * 1000 + 17] = NAN;
  with_nan.data<float>()[5 * 1000 + 999] = NAN;
  for (const char* op : kReductions) {
    // Sum 0, Mean NaN, Max -inf, Min +inf over no elements.
    ExpectSameWithSpecials(absl::StrCat(op, " [0,5] over 0"),
                           {Floats(Shape{0, 5}), IntVector({0}, DType::kInt32)},
                           Reduction(op, false));
    ExpectSameWithSpecials(absl::StrCat(op, " [4,0] over 1"),
                           {Floats(Shape{4, 0}), IntVector({1}, DType::kInt64)},
                           Reduction(op, true));
    ExpectSameWithSpecials(absl::StrCat(op, " [0,5] over 1"),
                           {Floats(Shape{0, 5}), IntVector({1}, DType::kInt32)},
                           Reduction(op, false));
    if (std::string(op) == "Max" || std::string(op) == "Min") {
      for (const Ints& axes : {Ints{1}, Ints{0}, Ints{0, 1}}) {
        ExpectSameWithSpecials(absl::StrCat(op, " NaN over ", Str(axes)),
                               {with_nan, IntVector(axes, DType::kInt32)}, Reduction(op, false));
      }
    }
  }
}

TEST(CudaReductionTest, ArgMaxMatchesTheCpuWithTies) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape shape;
    int64_t axis;
  };
  const std::vector<C> cases = {
      {{1000000}, 0},      {{1000, 1000}, 0},  {{1000, 1000}, 1},  {{1000, 1000}, -1},
      {{3, 5, 7, 11}, 0},  {{3, 5, 7, 11}, 1}, {{3, 5, 7, 11}, 2}, {{3, 5, 7, 11}, 3},
      {{3, 5, 7, 11}, -2}, {{7, 4097}, 1},     {{7, 17}, 1},       {{7, 16}, 1},
      {{100003, 2}, 0},    {{1}, 0},           {{0, 3}, 1},
  };
  const DType dim_types[] = {DType::kInt16, DType::kInt32, DType::kInt64};
  int n = 0;
  for (const C& c : cases) {
    for (DType out_type : {DType::kInt64, DType::kInt32}) {
      const auto build = [out_type](const Scope& s, V in) {
        return ops::ArgMax(s, in[0], in[1], {.output_type = out_type});
      };
      const Tensor dim = IntTensor({c.axis}, dim_types[n++ % 3], Shape{});
      const std::string name = absl::StrCat("ArgMax ", c.shape.DebugString(), " axis ", c.axis, " ",
                                            DTypeName(out_type));
      // Values in {0, 1, 2}: many ties, which go to the first index.
      ExpectGpuMatchesCpu({name + " ties", {SmallInts(c.shape, 0, 2), dim}, build});
      ExpectGpuMatchesCpu({name, {Floats(c.shape), dim}, build});
    }
  }
  const auto build = [](const Scope& s, V in) { return ops::ArgMax(s, in[0], in[1]); };
  ExpectGpuMatchesCpu(
      {"ArgMax all equal",
       {ToTensor(testing::Map(testing::Random(Shape{5, 5000}), [](double) { return -3.0; }),
                 DType::kFloat),
        IntTensor({1}, DType::kInt32, Shape{})},
       build});
  // NaN is never the maximum (Eigen's argmax on the CPU skips it): a NaN first
  // in its row, one in the middle, a row of NaN only (index 0) and a row of
  // -inf with NaN, on the column (r = 7, and axis 0), warp and block kernels.
  for (const Shape& shape : {Shape{6, 7}, Shape{6, 40}, Shape{6, 5000}}) {
    Tensor x = Floats(shape);
    float* p = x.data<float>();
    const int64_t cols = shape.dim(1);
    p[0] = NAN;
    p[1 * cols + cols / 2] = NAN;
    for (int64_t c = 0; c < cols; ++c) {
      p[2 * cols + c] = NAN;
      p[3 * cols + c] = c % 2 == 0 ? NAN : -INFINITY;
    }
    for (int64_t axis : {0, 1}) {
      ExpectGpuMatchesCpu({absl::StrCat("ArgMax NaN ", shape.DebugString(), " axis ", axis),
                           {x, IntTensor({axis}, DType::kInt32, Shape{})},
                           build});
    }
  }
}

TEST(CudaReductionTest, SoftmaxAndLogSoftmaxMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<Shape> shapes = {{300, 1},  {300, 7},    {64, 1000}, {5, 1024},
                                     {5, 1025}, {3, 100000}, {2, 3, 7},  {7},
                                     {0, 5},    {5, 0},      {1, 1}};
  for (bool log : {false, true}) {
    const Build build = [log](const Scope& s, V in) {
      return log ? ops::LogSoftmax(s, in[0]) : ops::Softmax(s, in[0]);
    };
    const char* op = log ? "LogSoftmax" : "Softmax";
    for (const Shape& shape : shapes) {
      ExpectGpuMatchesCpu({absl::StrCat(op, " ", shape.DebugString()), {Floats(shape)}, build});
    }
    for (const Shape& shape : {Shape{64, 1000}, Shape{4, 5000}}) {
      ExpectGpuMatchesCpu(
          {absl::StrCat(op, " +-100 ", shape.DebugString()), {Floats(shape, -100, 100)}, build});
    }
  }
}

// A NaN logit makes its whole row NaN on the CPU (the row's sum of exp is
// NaN), in the losses too. Each NaN here is the first value its thread of the
// warp (40 columns) or block (2000) kernel reads, where the online softmax's
// running max is still -inf; row 3 is -inf but for its NaN. Every row has a
// NaN, so every output is NaN on both devices, or an exact 0 (the loss of a
// row whose labels are all 0).
TEST(CudaReductionTest, NaNLogitsGiveNaNRowsAsOnTheCpu) {
  SKIP_WITHOUT_GPU();
  constexpr int64_t kRows = 4;
  for (int64_t cols : {40, 2000}) {
    const Shape shape{kRows, cols};
    Tensor x = Floats(shape, -10, 10);
    float* p = x.data<float>();
    for (int64_t r = 0; r < kRows; ++r) p[r * cols + r] = NAN;
    for (int64_t c = 0; c < cols; ++c) {
      if (c != 3) p[3 * cols + c] = -INFINITY;
    }
    const std::string at = shape.DebugString();
    ExpectSameWithSpecials(absl::StrCat("Softmax NaN ", at), {x},
                           [](const Scope& s, V in) { return ops::Softmax(s, in[0]); });
    ExpectSameWithSpecials(absl::StrCat("LogSoftmax NaN ", at), {x},
                           [](const Scope& s, V in) { return ops::LogSoftmax(s, in[0]); });
    ExpectSameWithSpecials(absl::StrCat("SoftmaxXent NaN ", at), {x, SmallInts(shape, 0, 3)},
                           [](const Scope& s, V in) {
                             return ops::SoftmaxCrossEntropyWithLogits(s, in[0], in[1]).loss;
                           });
    for (DType label_type : {DType::kInt32, DType::kInt64}) {
      ExpectSameWithSpecials(
          absl::StrCat("SparseSoftmaxXent NaN ", at, " ", DTypeName(label_type)),
          {x, ToTensor(testing::RandomInt(Shape{kRows}, 0, cols - 1), label_type)},
          [](const Scope& s, V in) {
            return ops::SparseSoftmaxCrossEntropyWithLogits(s, in[0], in[1]).loss;
          });
    }
  }
}

TEST(CudaReductionTest, LossesMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<Shape> shapes = {{1, 1},      {64, 10}, {7, 1000}, {5, 1025},
                                     {3, 100000}, {4, 0},   {0, 4}};
  for (const Shape& shape : shapes) {
    // Labels in {0, 1, 2, 3}: zero labels take the CPU's skip.
    ExpectGpuMatchesCpu({absl::StrCat("SoftmaxXent ", shape.DebugString()),
                         {Floats(shape, -10, 10), SmallInts(shape, 0, 3)},
                         [](const Scope& s, V in) {
                           return ops::SoftmaxCrossEntropyWithLogits(s, in[0], in[1]).loss;
                         },
                         1e-4});
    if (shape.dim(1) == 0) continue;
    for (DType label_type : {DType::kInt32, DType::kInt64}) {
      ExpectGpuMatchesCpu(
          {absl::StrCat("SparseSoftmaxXent ", shape.DebugString(), " ", DTypeName(label_type)),
           {Floats(shape, -10, 10),
            ToTensor(testing::RandomInt(Shape{shape.dim(0)}, 0, shape.dim(1) - 1), label_type)},
           [](const Scope& s, V in) {
             return ops::SparseSoftmaxCrossEntropyWithLogits(s, in[0], in[1]).loss;
           },
           1e-4});
    }
  }
  const Build l2 = [](const Scope& s, V in) { return ops::L2Loss(s, in[0]); };
  for (const Shape& shape : {Shape{1000000}, Shape{7}, Shape{}, Shape{0}, Shape{3, 0}}) {
    ExpectGpuMatchesCpu(
        {absl::StrCat("L2Loss ", shape.DebugString()), {SmallInts(shape, -3, 3)}, l2, 0});
  }
  ExpectGpuMatchesCpu({"L2Loss floats", {Floats(Shape{100003})}, l2, 1e-4});
}

TEST(CudaReductionTest, BiasAddGradMatchesTheCpuInBothLayouts) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : {Shape{1000, 10}, Shape{8, 7, 5, 33}, Shape{2, 1}, Shape{1, 5},
                             Shape{0, 5}, Shape{100003, 3}}) {
    ExpectGpuMatchesCpu({absl::StrCat("BiasAddGrad NHWC ", shape.DebugString()),
                         {SmallInts(shape)},
                         [](const Scope& s, V in) { return ops::BiasAddGrad(s, in[0]); },
                         0});
  }
  for (const Shape& shape : {Shape{8, 16, 7, 5}, Shape{2, 3, 1}, Shape{1, 3, 4}, Shape{1, 5, 1},
                             Shape{4, 0, 3}, Shape{64, 32, 1000}}) {
    ExpectGpuMatchesCpu(
        {absl::StrCat("BiasAddGrad NCHW ", shape.DebugString()),
         {SmallInts(shape)},
         [](const Scope& s, V in) { return ops::BiasAddGrad(s, in[0], {.data_format = "NCHW"}); },
         0});
  }
  ExpectGpuMatchesCpu({"BiasAddGrad floats",
                       {Floats(Shape{512, 300})},
                       [](const Scope& s, V in) { return ops::BiasAddGrad(s, in[0]); },
                       1e-4});
}

// The CPU rejects a label outside [0, classes); the GPU cannot see it without
// waiting, and gives that example a NaN loss and a NaN backprop row, as
// TensorFlow's GPU kernel does. The other rows are as on the CPU.
TEST(CudaReductionTest, SparseLabelOutOfRangeGivesNaNRows) {
  SKIP_WITHOUT_GPU();
  const Build build = [](const Scope& s, V in) {
    return ops::SparseSoftmaxCrossEntropyWithLogits(s, in[0], in[1]).loss;
  };
  for (int64_t classes : {10, 2000}) {  // the warp and the block kernels
    for (DType label_type : {DType::kInt32, DType::kInt64}) {
      const Tensor features = Floats(Shape{4, classes});
      const Tensor bad = IntVector({1, -1, classes, 3}, label_type);
      const Tensor good = IntVector({1, 0, 0, 3}, label_type);
      Graph graph;
      absl::StatusOr<const Node*> node = BuildNode(&graph, {features, bad}, build);
      ASSERT_TRUE(node.ok()) << node.status();
      absl::StatusOr<std::vector<Tensor>> cpu = RunKernel(**node, testing::Cpu(), {features, bad});
      EXPECT_EQ(cpu.status().code(), absl::StatusCode::kInvalidArgument);
      absl::StatusOr<std::vector<Tensor>> want =
          RunKernel(**node, testing::Cpu(), {features, good});
      ASSERT_TRUE(want.ok()) << want.status();
      absl::StatusOr<std::vector<Tensor>> got =
          RunKernel(**node, Gpu(), ForGpu(**node, {features, bad}));
      ASSERT_TRUE(got.ok()) << got.status();
      const testing::RefTensor loss = FromTensor(OnHost((*got)[0]));
      const testing::RefTensor backprop = FromTensor(OnHost((*got)[1]));
      const testing::RefTensor want_loss = FromTensor((*want)[0]);
      const testing::RefTensor want_backprop = FromTensor((*want)[1]);
      for (int64_t row = 0; row < 4; ++row) {
        const bool valid = row == 0 || row == 3;
        if (valid) {
          EXPECT_NEAR(loss.v[row], want_loss.v[row],
                      1e-4 * std::max(1.0, std::abs(want_loss.v[row])));
        } else {
          EXPECT_TRUE(std::isnan(loss.v[row])) << "row " << row;
        }
        for (int64_t c = 0; c < classes; ++c) {
          const double g = backprop.v[row * classes + c];
          if (valid) {
            ASSERT_NEAR(g, want_backprop.v[row * classes + c], 1e-5) << row << ", " << c;
          } else {
            ASSERT_TRUE(std::isnan(g)) << row << ", " << c;
          }
        }
      }
    }
  }
}

TEST(CudaReductionTest, RejectsWhatTheCpuRejects) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Floats(Shape{3, 4});
  for (const char* op : kReductions) {
    ExpectSameRejection(absl::StrCat(op, " axis out of range"), {x, IntVector({2}, DType::kInt32)},
                        Reduction(op, false));
    ExpectSameRejection(absl::StrCat(op, " axis -3"), {x, IntVector({-3}, DType::kInt64)},
                        Reduction(op, false));
    ExpectSameRejection(absl::StrCat(op, " duplicate axis"), {x, IntVector({1, -1}, DType::kInt32)},
                        Reduction(op, true));
  }
  const Build argmax = [](const Scope& s, V in) { return ops::ArgMax(s, in[0], in[1]); };
  ExpectSameRejection("ArgMax axis 2", {x, IntTensor({2}, DType::kInt32, Shape{})}, argmax);
  ExpectSameRejection("ArgMax vector dimension", {x, IntVector({0}, DType::kInt32)}, argmax);
  ExpectSameRejection("ArgMax empty axis",
                      {Floats(Shape{3, 0}), IntTensor({1}, DType::kInt64, Shape{})}, argmax);
  ExpectSameRejection("ArgMax scalar", {Floats(Shape{}), IntTensor({0}, DType::kInt32, Shape{})},
                      argmax);
  ExpectSameRejection("Softmax scalar", {Floats(Shape{})},
                      [](const Scope& s, V in) { return ops::Softmax(s, in[0]); });
  ExpectSameRejection("LogSoftmax scalar", {Floats(Shape{})},
                      [](const Scope& s, V in) { return ops::LogSoftmax(s, in[0]); });
  ExpectSameRejection("BiasAddGrad NHWC rank 1", {Floats(Shape{5})},
                      [](const Scope& s, V in) { return ops::BiasAddGrad(s, in[0]); });
  ExpectSameRejection("BiasAddGrad NCHW rank 2", {x}, [](const Scope& s, V in) {
    return ops::BiasAddGrad(s, in[0], {.data_format = "NCHW"});
  });
  const Build xent = [](const Scope& s, V in) {
    return ops::SoftmaxCrossEntropyWithLogits(s, in[0], in[1]).loss;
  };
  ExpectSameRejection("SoftmaxXent rank 1", {Floats(Shape{4}), Floats(Shape{4})}, xent);
  ExpectSameRejection("SoftmaxXent shapes differ", {x, Floats(Shape{3, 5})}, xent);
  const Build sparse = [](const Scope& s, V in) {
    return ops::SparseSoftmaxCrossEntropyWithLogits(s, in[0], in[1]).loss;
  };
  ExpectSameRejection("SparseSoftmaxXent batch differs", {x, IntVector({0, 1}, DType::kInt64)},
                      sparse);
  ExpectSameRejection("SparseSoftmaxXent rank 3",
                      {Floats(Shape{2, 3, 4}), IntVector({0, 1}, DType::kInt32)}, sparse);
}

}  // namespace
}  // namespace gradserve

#endif  // GRADSERVE_HAVE_CUDA
