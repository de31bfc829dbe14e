// The CUDA array kernels (runtime/kernels/cuda/array_ops.cc) against the CPU
// kernels of the same nodes: every op over ranks 1 to 5, negative axes, all
// StridedSlice masks, int32 and int64 index inputs (int16 and int8 where
// GatherV2 and OneHot take them), odd sizes, sizes of about 1 << 20 (many
// blocks) and, once per kernel, more elements than one grid has threads (the
// grid-stride loops take a second step); the metadata ops and the
// contiguous slices share their input's buffer; bad inputs get the CPU
// kernel's code and message. Where the GPU differs by design (an index out of
// range: GatherV2 writes zeros, UnsortedSegmentSum drops it, the CPU fails)
// the GPU's answer is checked on its own.
#ifdef GRADSERVE_HAVE_CUDA

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/builder/ops.h"
#include "graph/ops/array_ops.h"
#include "gtest/gtest.h"
#include "runtime/kernel.h"
#include "tests/unit/cuda/cuda_test_util.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using testing::BuildNode;
using testing::ExpectGpuMatchesCpu;
using testing::ForGpu;
using testing::Gpu;
using testing::GpuCase;
using testing::OnHost;
using testing::RunKernel;
using Ints = std::vector<int64_t>;
using V = const std::vector<Output>&;
using Build = std::function<Output(const Scope&, V)>;

Tensor Floats(const Shape& shape) { return testing::RandomFloats({shape})[0]; }

// An index-like input (shape, begin, perm, axis, ...) of `dtype`: a vector, or
// a tensor of `shape` when given.
Tensor IndexTensor(const Ints& v, DType dtype, std::optional<Shape> shape = std::nullopt) {
  return testing::ToTensor(testing::Values(shape.value_or(Shape{static_cast<int64_t>(v.size())}),
                                           std::vector<double>(v.begin(), v.end())),
                           dtype);
}
Tensor IndexScalar(int64_t v, DType dtype) { return IndexTensor({v}, dtype, Shape{}); }

Tensor RandomIndices(const Shape& shape, int64_t lo, int64_t hi, DType dtype) {
  return testing::ToTensor(testing::RandomInt(shape, lo, hi), dtype);
}

std::string Str(const Ints& v) { return absl::StrCat("{", absl::StrJoin(v, ","), "}"); }

const DType kIndexTypes[] = {DType::kInt32, DType::kInt64};

// The GPU kernel's output 0 shares the buffer of its input 0 (no copy).
void ExpectSharesInput(const std::string& name, const std::vector<Tensor>& inputs,
                       const Build& build) {
  SCOPED_TRACE(name);
  ExpectGpuMatchesCpu({name, inputs, build});
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(&graph, inputs, build);
  ASSERT_TRUE(node.ok()) << node.status();
  const std::vector<Tensor> on_gpu = ForGpu(**node, inputs);
  absl::StatusOr<std::vector<Tensor>> got = RunKernel(**node, Gpu(), on_gpu);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE((*got)[0].SharesBufferWith(on_gpu[0]));
}

// Both kernels reject `inputs` with the same code and message.
void ExpectSameRejection(const std::string& name, const std::vector<Tensor>& inputs,
                         const Build& build) {
  testing::ExpectSameRejection(name, inputs, build, testing::GpuMessage::kSame);
}

// Runs without a GPU: what is registered, and where its arguments live.
TEST(CudaArrayTest, RegistersFloatDataAndHostMetadata) {
  const KernelRegistry& r = KernelRegistry::Global();
  for (const char* op : {"Reshape", "ExpandDims", "Squeeze", "Identity", "StopGradient", "Shape",
                         "Slice", "StridedSlice", "StridedSliceGrad", "Pad", "ConcatV2", "Pack",
                         "Transpose", "Tile", "GatherV2", "OneHot", "UnsortedSegmentSum"}) {
    EXPECT_TRUE(r.Supports(op, kDeviceCuda, DType::kFloat)) << op;
  }
  // int32 shape arithmetic stays on the CPU.
  for (const char* op : {"Reshape", "Slice", "StridedSlice", "ConcatV2", "Pack", "Shape"}) {
    EXPECT_FALSE(r.Supports(op, kDeviceCuda, DType::kInt32)) << op;
  }
  Graph graph;
  Scope s(&graph);
  Output x = ops::Placeholder(s, DType::kFloat);
  Output i = ops::Placeholder(s, DType::kInt32);
  Output concat = ops::ConcatV2(s, {x, x, x}, i);
  Output identity = ops::Identity(s, i);
  Output shape = ops::ShapeOf(s, x);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(r.Find(*concat.node, kDeviceCuda).value()->host_memory_inputs, std::vector<int>{-1});
  EXPECT_EQ(r.Find(*identity.node, kDeviceCuda).value()->host_memory_outputs, std::vector<int>{0});
  EXPECT_EQ(r.Find(*shape.node, kDeviceCuda).value()->host_memory_outputs, std::vector<int>{0});
}

TEST(CudaArrayTest, MetadataOpsShareTheBuffer) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Floats(Shape{3, 1, 4, 1});
  for (DType d : kIndexTypes) {
    ExpectSharesInput("Reshape -1", {x, IndexTensor({2, -1}, d)},
                      [](const Scope& s, V in) { return ops::Reshape(s, in[0], in[1]); });
    ExpectSharesInput("Reshape scalar", {Floats(Shape{1, 1}), IndexTensor({}, d)},
                      [](const Scope& s, V in) { return ops::Reshape(s, in[0], in[1]); });
    for (int64_t axis : {0, 2, 4, -1, -5}) {
      ExpectSharesInput(absl::StrCat("ExpandDims ", axis), {x, IndexScalar(axis, d)},
                        [](const Scope& s, V in) { return ops::ExpandDims(s, in[0], in[1]); });
    }
  }
  for (const Ints& dims : {Ints{}, Ints{1}, Ints{-1, 1}}) {
    ExpectSharesInput("Squeeze " + Str(dims), {x}, [dims](const Scope& s, V in) {
      return ops::Squeeze(s, in[0], {.squeeze_dims = dims});
    });
  }
  ExpectSharesInput("Identity", {x}, [](const Scope& s, V in) { return ops::Identity(s, in[0]); });
  ExpectSharesInput("StopGradient", {Floats(Shape{1 << 20})},
                    [](const Scope& s, V in) { return ops::StopGradient(s, in[0]); });
}

TEST(CudaArrayTest, ShapeAndInt32IdentityAnswerInHostMemory) {
  SKIP_WITHOUT_GPU();
  for (DType out_type : kIndexTypes) {
    Graph graph;
    absl::StatusOr<const Node*> node =
        BuildNode(&graph, {Floats(Shape{2, 0, 7})}, [out_type](const Scope& s, V in) {
          return ops::ShapeOf(s, in[0], {.out_type = out_type});
        });
    ASSERT_TRUE(node.ok()) << node.status();
    absl::StatusOr<std::vector<Tensor>> got =
        RunKernel(**node, Gpu(), ForGpu(**node, {Floats(Shape{2, 0, 7})}));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE((*got)[0].host_accessible());
    EXPECT_EQ((*got)[0].dtype(), out_type);
    EXPECT_EQ(testing::FromTensor((*got)[0]).v, (std::vector<double>{2, 0, 7}));
  }
  const Tensor ints = IndexTensor({4, 5, 6}, DType::kInt32);
  Graph graph;
  absl::StatusOr<const Node*> node =
      BuildNode(&graph, {ints}, [](const Scope& s, V in) { return ops::Identity(s, in[0]); });
  ASSERT_TRUE(node.ok()) << node.status();
  absl::StatusOr<std::vector<Tensor>> got = RunKernel(**node, Gpu(), {ints});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE((*got)[0].SharesBufferWith(ints));
}

TEST(CudaArrayTest, SliceMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape in;
    Ints begin, size;
  };
  const std::vector<C> cases = {
      {{7}, {2}, {4}},
      {{100003}, {1}, {-1}},
      {{5, 7}, {1, 2}, {3, -1}},
      {{3, 4, 5}, {1, 0, 2}, {2, 4, 3}},
      {{2, 3, 4, 5}, {0, 1, 1, 0}, {2, 2, 3, 5}},
      {{2, 3, 1, 4, 5}, {1, 0, 0, 1, 2}, {1, 3, 1, 2, 3}},
      {{1024, 1025}, {3, 5}, {1000, 1017}},
      {{4, 0, 3}, {1, 0, 0}, {2, 0, 3}},
  };
  for (DType d : kIndexTypes) {
    for (const C& c : cases) {
      ExpectGpuMatchesCpu(
          {absl::StrCat("Slice ", c.in.DebugString(), " ", Str(c.begin), " ", Str(c.size)),
           {Floats(c.in), IndexTensor(c.begin, d), IndexTensor(c.size, d)},
           [](const Scope& s, V in) { return ops::Slice(s, in[0], in[1], in[2]); }});
    }
    ExpectSharesInput("Slice rows",
                      {Floats(Shape{9, 1023}), IndexTensor({2, 0}, d), IndexTensor({5, -1}, d)},
                      [](const Scope& s, V in) { return ops::Slice(s, in[0], in[1], in[2]); });
  }
}

struct SliceSpec {
  Shape in;
  Ints begin, end, strides;
  ops::StridedSliceAttrs attrs;
};

std::vector<SliceSpec> SliceSpecs() {
  const Shape x{5, 6, 7};
  return {
      {{10}, {1}, {9}, {2}},
      {{10}, {-1}, {-11}, {-1}},
      {x, {1, 0, 2}, {3, 5, 6}, {1, 2, 2}},
      {x, {-1, 4, 0}, {0, 0, 6}, {-1, -2, 3}},
      {x, {3, 1, 5}, {4, 3, 6}, {1, 1, 1}, {.begin_mask = 0b101}},
      {x, {1, 2, 0}, {2, 0, 3}, {1, 1, 1}, {.end_mask = 0b010}},
      {x, {0, 0, 0}, {0, 0, 0}, {-1, 2, -3}, {.begin_mask = 0b111, .end_mask = 0b111}},
      {x, {0, 1}, {0, 3}, {1, 1}, {.ellipsis_mask = 1}},
      {x, {1, 0, 2}, {3, 0, 6}, {1, 1, 2}, {.ellipsis_mask = 0b010}},
      {x, {1, 0, 0}, {3, 0, 4}, {1, 1, 1}, {.new_axis_mask = 0b010}},
      {x, {2, 1, -1}, {3, 4, 0}, {1, 1, 1}, {.shrink_axis_mask = 0b101}},
      {x, {2, 3, 4}, {3, 4, 5}, {1, 1, 1}, {.shrink_axis_mask = 0b111}},
      {{2, 3, 4, 5, 6}, {1, 0, -2}, {2, 0, 0}, {1, 1, -2}, {.ellipsis_mask = 0b010}},
      {{2, 1, 4, 1, 6}, {0, 0, 1, 0, 5}, {2, 1, 4, 1, 0}, {1, 1, 2, 1, -1}},
      {{1024, 1024}, {0, 1}, {1024, 1024}, {1, 2}},
      {{1 << 20}, {0}, {0}, {-1}, {.begin_mask = 1, .end_mask = 1}},
      {{6, 4}, {4, 0}, {1, 4}, {1, 1}},  // empty: begin past end
  };
}

TEST(CudaArrayTest, StridedSliceMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (DType d : kIndexTypes) {
    for (const SliceSpec& c : SliceSpecs()) {
      const ops::StridedSliceAttrs attrs = c.attrs;
      ExpectGpuMatchesCpu(
          {absl::StrCat("StridedSlice ", c.in.DebugString(), " ", Str(c.begin), " ", Str(c.end),
                        " ", Str(c.strides), " masks ", attrs.begin_mask, attrs.end_mask,
                        attrs.ellipsis_mask, attrs.new_axis_mask, attrs.shrink_axis_mask),
           {Floats(c.in), IndexTensor(c.begin, d), IndexTensor(c.end, d),
            IndexTensor(c.strides, d)},
           [attrs](const Scope& s, V in) {
             return ops::StridedSlice(s, in[0], in[1], in[2], in[3], attrs);
           }});
    }
  }
  ExpectSharesInput(
      "StridedSlice rows",
      {Floats(Shape{8, 9}), IndexTensor({2, 0}, DType::kInt32), IndexTensor({5, 9}, DType::kInt32),
       IndexTensor({1, 1}, DType::kInt32)},
      [](const Scope& s, V in) { return ops::StridedSlice(s, in[0], in[1], in[2], in[3]); });
}

TEST(CudaArrayTest, StridedSliceGradMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (DType d : kIndexTypes) {
    for (const SliceSpec& c : SliceSpecs()) {
      const ops::StridedSliceAttrs attrs = c.attrs;
      const array_shape::StridedSliceMasks masks{attrs.begin_mask, attrs.end_mask,
                                                 attrs.ellipsis_mask, attrs.new_axis_mask,
                                                 attrs.shrink_axis_mask};
      const Shape spec_shape{static_cast<int64_t>(c.begin.size())};
      absl::StatusOr<array_shape::StridedSlicePlan> plan = array_shape::StridedSlice(
          c.in, spec_shape, c.begin, spec_shape, c.end, spec_shape, c.strides, masks);
      ASSERT_TRUE(plan.ok()) << plan.status();
      const Ints dims(c.in.dims().begin(), c.in.dims().end());
      ExpectGpuMatchesCpu({absl::StrCat("StridedSliceGrad ", c.in.DebugString(), " ", Str(c.begin),
                                        " ", Str(c.end), " ", Str(c.strides)),
                           {IndexTensor(dims, d), IndexTensor(c.begin, d), IndexTensor(c.end, d),
                            IndexTensor(c.strides, d), Floats(plan->final_shape)},
                           [attrs](const Scope& s, V in) {
                             return ops::StridedSliceGrad(s, in[0], in[1], in[2], in[3], in[4],
                                                          attrs);
                           }});
    }
  }
}

TEST(CudaArrayTest, TransposeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape in;
    Ints perm;
  };
  const std::vector<C> cases = {
      {{7}, {0}},
      {{3, 5}, {1, 0}},
      {{2, 3, 4}, {2, 0, 1}},
      {{2, 3, 4}, {-1, -3, -2}},
      {{2, 1, 3, 1}, {3, 2, 1, 0}},
      {{2, 3, 4, 5}, {0, 1, 3, 2}},
      {{2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}},
      {{2, 3, 2, 3, 2, 2, 3}, {6, 5, 4, 3, 2, 1, 0}},
      {{1024, 1023}, {1, 0}},
      {{64, 128, 129}, {2, 0, 1}},
      {{0, 3}, {1, 0}},
  };
  for (DType d : kIndexTypes) {
    for (const C& c : cases) {
      ExpectGpuMatchesCpu({absl::StrCat("Transpose ", c.in.DebugString(), " ", Str(c.perm)),
                           {Floats(c.in), IndexTensor(c.perm, d)},
                           [](const Scope& s, V in) { return ops::Transpose(s, in[0], in[1]); }});
    }
  }
  ExpectSharesInput("Transpose of size-1 dims",
                    {Floats(Shape{1, 6, 1}), IndexTensor({2, 1, 0}, DType::kInt32)},
                    [](const Scope& s, V in) { return ops::Transpose(s, in[0], in[1]); });
}

TEST(CudaArrayTest, TileMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape in;
    Ints multiples;
  };
  const std::vector<C> cases = {
      {{3}, {4}},
      {{2, 3}, {3, 1}},
      {{2, 3}, {1, 7}},
      {{2, 1, 3}, {1, 5, 1}},
      {{2, 3, 4, 5}, {2, 1, 3, 1}},
      {{1, 2, 1, 3, 1}, {2, 2, 2, 2, 2}},
      {{2, 3, 2, 3, 2, 3}, {2, 3, 2, 3, 2, 3}},  // a box of rank 12
      {{1024, 1}, {1, 1024}},
      {{1, 1023}, {1025, 1}},
      {{3, 2}, {0, 2}},
  };
  for (DType d : kIndexTypes) {
    for (const C& c : cases) {
      ExpectGpuMatchesCpu({absl::StrCat("Tile ", c.in.DebugString(), " ", Str(c.multiples)),
                           {Floats(c.in), IndexTensor(c.multiples, d)},
                           [](const Scope& s, V in) { return ops::Tile(s, in[0], in[1]); }});
    }
  }
  ExpectSharesInput("Tile by ones", {Floats(Shape{2, 3}), IndexTensor({1, 1}, DType::kInt32)},
                    [](const Scope& s, V in) { return ops::Tile(s, in[0], in[1]); });
}

TEST(CudaArrayTest, PadMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape in;
    Ints paddings;  // [rank, 2]
  };
  const std::vector<C> cases = {
      {{5}, {2, 3}},
      {{4, 5}, {1, 0, 0, 2}},
      {{2, 3, 4}, {0, 0, 1, 1, 0, 0}},
      {{2, 3, 4, 5}, {1, 1, 0, 0, 0, 0, 2, 1}},
      {{2, 1, 3, 1, 2}, {0, 1, 1, 0, 0, 0, 2, 2, 1, 0}},
      {{1024, 1023}, {1, 2, 3, 0}},
      {{0, 3}, {1, 1, 0, 0}},
  };
  for (DType d : kIndexTypes) {
    for (const C& c : cases) {
      const Shape pad_shape{c.in.rank(), 2};
      ExpectGpuMatchesCpu({absl::StrCat("Pad ", c.in.DebugString(), " ", Str(c.paddings)),
                           {Floats(c.in), IndexTensor(c.paddings, d, pad_shape)},
                           [](const Scope& s, V in) { return ops::Pad(s, in[0], in[1]); }});
    }
  }
  ExpectSharesInput("Pad by zeros",
                    {Floats(Shape{2, 3}), IndexTensor({0, 0, 0, 0}, DType::kInt32, Shape{2, 2})},
                    [](const Scope& s, V in) { return ops::Pad(s, in[0], in[1]); });
}

// ConcatV2 of `shapes` along `axis` (its axis input is the last one).
void ExpectConcatMatches(const std::vector<Shape>& shapes, int64_t axis, DType d) {
  std::vector<Tensor> inputs;
  std::string name = absl::StrCat("ConcatV2 axis ", axis);
  for (const Shape& s : shapes) {
    inputs.push_back(Floats(s));
    absl::StrAppend(&name, " ", s.DebugString());
  }
  inputs.push_back(IndexScalar(axis, d));
  ExpectGpuMatchesCpu({name, inputs, [](const Scope& s, V in) {
                         return ops::ConcatV2(s, std::vector<Output>(in.begin(), in.end() - 1),
                                              in.back());
                       }});
}

TEST(CudaArrayTest, ConcatV2MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (DType d : kIndexTypes) {
    ExpectConcatMatches({{7}, {1}, {1023}}, 0, d);
    ExpectConcatMatches({{2, 3}, {2, 5}}, 1, d);
    ExpectConcatMatches({{2, 3}, {4, 3}, {1, 3}}, 0, d);
    ExpectConcatMatches({{2, 3}, {2, 5}}, -1, d);
    ExpectConcatMatches({{2, 3, 4, 5}, {2, 3, 1, 5}, {2, 3, 7, 5}}, 2, d);
    ExpectConcatMatches({{2, 3, 4, 5, 2}, {2, 3, 4, 5, 3}}, -1, d);
    ExpectConcatMatches({{3, 0}, {3, 4}, {3, 0}}, 1, d);
    ExpectConcatMatches({{0, 4}, {0, 4}}, 1, d);
    ExpectConcatMatches({{512, 1024}, {512, 1023}}, 1, d);
    ExpectConcatMatches({{512, 1024}, {513, 1024}}, -2, d);
  }
}

TEST(CudaArrayTest, PackMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape in;
    int n;
    int64_t axis;
  };
  const std::vector<C> cases = {
      {{7}, 2, 0},     {{7}, 3, 1},          {{3, 4}, 3, 0},     {{3, 4}, 3, 1}, {{3, 4}, 3, -1},
      {{3, 4}, 2, -3}, {{2, 3, 4, 5}, 2, 2}, {{512, 512}, 4, 1}, {{0, 3}, 2, 1},
  };
  for (const C& c : cases) {
    std::vector<Tensor> inputs;
    for (int i = 0; i < c.n; ++i) inputs.push_back(Floats(c.in));
    const int64_t axis = c.axis;
    ExpectGpuMatchesCpu(
        {absl::StrCat("Pack ", c.n, " x ", c.in.DebugString(), " axis ", axis), inputs,
         [axis](const Scope& s, V in) { return ops::Pack(s, in, {.axis = axis}); }});
  }
  ExpectSharesInput("Pack of one", {Floats(Shape{3, 4})},
                    [](const Scope& s, V in) { return ops::Pack(s, in, {.axis = 1}); });
}

TEST(CudaArrayTest, GatherV2MatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape params, indices;
    int64_t axis;
  };
  const std::vector<C> cases = {
      {{10, 4}, {5}, 0},
      {{10, 4}, {}, 0},
      {{3, 10, 4}, {2, 3}, 1},
      {{4, 5, 6}, {7}, -1},
      {{2, 3, 4, 5}, {3}, -2},
      {{100003}, {1000}, 0},
      {{1 << 14, 64}, {1 << 14}, 0},
      {{10, 4}, {0}, 0},
  };
  for (DType d : {DType::kInt16, DType::kInt32, DType::kInt64}) {
    const DType axis_type = d == DType::kInt16 ? DType::kInt32 : d;  // Taxis: int32 or int64
    const int64_t top = d == DType::kInt16 ? INT16_MAX : INT64_MAX;
    for (const C& c : cases) {
      const int ax = static_cast<int>(c.axis < 0 ? c.axis + c.params.rank() : c.axis);
      ExpectGpuMatchesCpu(
          {absl::StrCat("GatherV2 ", c.params.DebugString(), " ", c.indices.DebugString(), " axis ",
                        c.axis, " ", DTypeName(d)),
           {Floats(c.params),
            RandomIndices(c.indices, 0, std::min<int64_t>(c.params.dim(ax) - 1, top), d),
            IndexScalar(c.axis, axis_type)},
           [](const Scope& s, V in) { return ops::GatherV2(s, in[0], in[1], in[2]); }});
    }
  }
}

TEST(CudaArrayTest, GatherV2WritesZerosForIndicesOutOfRange) {
  SKIP_WITHOUT_GPU();
  const Tensor params =
      testing::ToTensor(testing::Values(Shape{4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), DType::kFloat);
  for (DType d : kIndexTypes) {
    const std::vector<Tensor> inputs = {params, IndexTensor({1, 4, -1, 3}, d),
                                        IndexScalar(0, DType::kInt32)};
    Graph graph;
    absl::StatusOr<const Node*> node = BuildNode(
        &graph, inputs, [](const Scope& s, V in) { return ops::GatherV2(s, in[0], in[1], in[2]); });
    ASSERT_TRUE(node.ok()) << node.status();
    EXPECT_EQ(RunKernel(**node, testing::Cpu(), inputs).status().code(),
              absl::StatusCode::kInvalidArgument);
    absl::StatusOr<std::vector<Tensor>> got = RunKernel(**node, Gpu(), ForGpu(**node, inputs));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(testing::FromTensor(OnHost((*got)[0])).v,
              (std::vector<double>{3, 4, 0, 0, 0, 0, 7, 8}));
  }
}

TEST(CudaArrayTest, OneHotMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape indices;
    int64_t depth, axis;
  };
  const std::vector<C> cases = {
      {{5}, 4, -1}, {{5}, 4, 0},  {{3, 4}, 5, 0},       {{3, 4}, 5, 1},      {{3, 4}, 5, -1},
      {{}, 3, -1},  {{7}, 0, -1}, {{2, 3, 4, 5}, 6, 2}, {{1 << 14}, 64, -1}, {{1023}, 1025, 0},
  };
  const Tensor on = Tensor::Scalar<float>(2.5f), off = Tensor::Scalar<float>(-0.5f);
  for (DType d : {DType::kInt32, DType::kInt64, DType::kUInt8, DType::kInt8}) {
    const int64_t lo = d == DType::kUInt8 ? 0 : -2;  // some indices out of range
    const int64_t top = d == DType::kInt8 ? INT8_MAX : UINT8_MAX;
    for (const C& c : cases) {
      const int64_t axis = c.axis;
      ExpectGpuMatchesCpu({absl::StrCat("OneHot ", c.indices.DebugString(), " depth ", c.depth,
                                        " axis ", axis, " ", DTypeName(d)),
                           {RandomIndices(c.indices, lo, std::min<int64_t>(c.depth + 1, top), d),
                            Tensor::Scalar<int32_t>(static_cast<int32_t>(c.depth)), on, off},
                           [axis](const Scope& s, V in) {
                             return ops::OneHot(s, in[0], in[1], in[2], in[3], {.axis = axis});
                           }});
    }
  }
}

TEST(CudaArrayTest, UnsortedSegmentSumMatchesCpu) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape data, ids;
    int64_t num;
  };
  const std::vector<C> cases = {
      {{10}, {10}, 4},
      {{6, 3}, {6}, 5},
      {{2, 3, 4}, {2, 3}, 7},
      {{7, 5}, {7}, 1},
      {{4, 3}, {4}, 0},
      {{0, 3}, {0}, 3},
      {{1 << 16, 16}, {1 << 16}, 1000},
      {{100003}, {100003}, 10007},
  };
  for (DType d : kIndexTypes) {
    for (const C& c : cases) {
      // Negative ids are dropped on both devices.
      ExpectGpuMatchesCpu(
          {absl::StrCat("UnsortedSegmentSum ", c.data.DebugString(), " ", c.ids.DebugString(),
                        " into ", c.num, " ", DTypeName(d)),
           {Floats(c.data), RandomIndices(c.ids, -1, c.num - 1, d), IndexScalar(c.num, d)},
           [](const Scope& s, V in) { return ops::UnsortedSegmentSum(s, in[0], in[1], in[2]); },
           1e-4});  // atomicAdd sums in any order
    }
  }
}

TEST(CudaArrayTest, UnsortedSegmentSumDropsIdsOutOfRange) {
  SKIP_WITHOUT_GPU();
  const Tensor data =
      testing::ToTensor(testing::Values(Shape{4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), DType::kFloat);
  const std::vector<Tensor> inputs = {data, IndexTensor({1, 3, -1, 1}, DType::kInt64),
                                      IndexScalar(2, DType::kInt32)};
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(&graph, inputs, [](const Scope& s, V in) {
    return ops::UnsortedSegmentSum(s, in[0], in[1], in[2]);
  });
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(RunKernel(**node, testing::Cpu(), inputs).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<Tensor>> got = RunKernel(**node, Gpu(), ForGpu(**node, inputs));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(testing::FromTensor(OnHost((*got)[0])).v, (std::vector<double>{0, 0, 8, 10}));
}

// The launches cap the grid at 65535 blocks of 256 threads (array_kernels.cu:
// Blocks), 16,776,960 threads; every kernel here gets more elements than
// that, so each grid-stride loop takes a second step. (The cases above, of
// about 1 << 20 elements, fit in one grid.)
TEST(CudaArrayTest, GridStrideLoopsReachEveryElement) {
  SKIP_WITHOUT_GPU();
  constexpr int64_t kSide = 4097;  // kSide * kSide = 16,785,409
  const DType i64 = DType::kInt64;
  ExpectGpuMatchesCpu({"Transpose (StridedCopy)",
                       {Floats(Shape{kSide, kSide}), IndexTensor({1, 0}, DType::kInt32)},
                       [](const Scope& s, V in) { return ops::Transpose(s, in[0], in[1]); }});
  ExpectGpuMatchesCpu(
      {"GatherV2",
       {Floats(Shape{kSide + 3, kSide}), RandomIndices(Shape{kSide}, 0, kSide + 2, i64),
        IndexScalar(0, i64)},
       [](const Scope& s, V in) { return ops::GatherV2(s, in[0], in[1], in[2]); }});
  ExpectGpuMatchesCpu({"OneHot",
                       {RandomIndices(Shape{kSide}, -1, kSide, i64),
                        Tensor::Scalar<int32_t>(static_cast<int32_t>(kSide)),
                        Tensor::Scalar<float>(2.5f), Tensor::Scalar<float>(-0.5f)},
                       [](const Scope& s, V in) {
                         return ops::OneHot(s, in[0], in[1], in[2], in[3]);
                       }});
  ExpectGpuMatchesCpu(
      {"UnsortedSegmentSum",
       {Floats(Shape{kSide, kSide}), RandomIndices(Shape{kSide}, -1, 63, i64), IndexScalar(64, i64)},
       [](const Scope& s, V in) { return ops::UnsortedSegmentSum(s, in[0], in[1], in[2]); },
       1e-4});  // atomicAdd sums in any order
}

TEST(CudaArrayTest, RejectsWhatTheCpuRejects) {
  SKIP_WITHOUT_GPU();
  const DType i32 = DType::kInt32;
  const Tensor x = Floats(Shape{2, 3});
  ExpectSameRejection("Reshape to a wrong size", {x, IndexTensor({4}, i32)},
                      [](const Scope& s, V in) { return ops::Reshape(s, in[0], in[1]); });
  ExpectSameRejection("ExpandDims axis 3 of rank 2", {x, IndexScalar(3, i32)},
                      [](const Scope& s, V in) { return ops::ExpandDims(s, in[0], in[1]); });
  ExpectSameRejection("Squeeze a dimension of 3", {x}, [](const Scope& s, V in) {
    return ops::Squeeze(s, in[0], {.squeeze_dims = {1}});
  });
  ExpectSameRejection("Slice past the end", {x, IndexTensor({1, 1}, i32), IndexTensor({2, 1}, i32)},
                      [](const Scope& s, V in) { return ops::Slice(s, in[0], in[1], in[2]); });
  ExpectSameRejection("Slice begin of the wrong rank",
                      {x, IndexTensor({1}, i32), IndexTensor({1}, i32)},
                      [](const Scope& s, V in) { return ops::Slice(s, in[0], in[1], in[2]); });
  ExpectSameRejection(
      "StridedSlice stride 0",
      {x, IndexTensor({0, 0}, i32), IndexTensor({1, 1}, i32), IndexTensor({1, 0}, i32)},
      [](const Scope& s, V in) { return ops::StridedSlice(s, in[0], in[1], in[2], in[3]); });
  ExpectSameRejection("StridedSlice shrink out of bounds",
                      {x, IndexTensor({5}, i32), IndexTensor({6}, i32), IndexTensor({1}, i32)},
                      [](const Scope& s, V in) {
                        return ops::StridedSlice(s, in[0], in[1], in[2], in[3],
                                                 {.shrink_axis_mask = 1});
                      });
  ExpectSameRejection("StridedSliceGrad dy of the wrong shape",
                      {IndexTensor({2, 3}, i32), IndexTensor({0, 0}, i32), IndexTensor({2, 2}, i32),
                       IndexTensor({1, 1}, i32), Floats(Shape{2, 3})},
                      [](const Scope& s, V in) {
                        return ops::StridedSliceGrad(s, in[0], in[1], in[2], in[3], in[4]);
                      });
  ExpectSameRejection("Transpose perm repeats", {x, IndexTensor({0, 0}, i32)},
                      [](const Scope& s, V in) { return ops::Transpose(s, in[0], in[1]); });
  ExpectSameRejection("Tile multiples of the wrong length", {x, IndexTensor({2}, i32)},
                      [](const Scope& s, V in) { return ops::Tile(s, in[0], in[1]); });
  ExpectSameRejection("Tile by a negative multiple", {x, IndexTensor({2, -1}, i32)},
                      [](const Scope& s, V in) { return ops::Tile(s, in[0], in[1]); });
  ExpectSameRejection("Pad by a negative amount", {x, IndexTensor({0, 0, -1, 0}, i32, Shape{2, 2})},
                      [](const Scope& s, V in) { return ops::Pad(s, in[0], in[1]); });
  ExpectSameRejection("Pad paddings of the wrong shape", {x, IndexTensor({0, 0}, i32, Shape{1, 2})},
                      [](const Scope& s, V in) { return ops::Pad(s, in[0], in[1]); });
  const Build concat = [](const Scope& s, V in) { return ops::ConcatV2(s, {in[0], in[1]}, in[2]); };
  ExpectSameRejection("ConcatV2 axis 2 of rank 2", {x, x, IndexScalar(2, i32)}, concat);
  ExpectSameRejection("ConcatV2 ranks differ", {x, Floats(Shape{2, 3, 1}), IndexScalar(0, i32)},
                      concat);
  ExpectSameRejection("ConcatV2 sizes differ", {x, Floats(Shape{3, 3}), IndexScalar(1, i32)},
                      concat);
  ExpectSameRejection("Pack shapes differ", {x, Floats(Shape{3, 2})},
                      [](const Scope& s, V in) { return ops::Pack(s, in); });
  ExpectSameRejection("Pack axis 3 of rank 2", {x, x},
                      [](const Scope& s, V in) { return ops::Pack(s, in, {.axis = 3}); });
  ExpectSameRejection("GatherV2 axis 2 of rank 2", {x, IndexTensor({0}, i32), IndexScalar(2, i32)},
                      [](const Scope& s, V in) { return ops::GatherV2(s, in[0], in[1], in[2]); });
  ExpectSameRejection(
      "OneHot axis 2 of rank 1",
      {IndexTensor({0, 1}, i32), Tensor::Scalar<int32_t>(3), Tensor::Scalar<float>(1),
       Tensor::Scalar<float>(0)},
      [](const Scope& s, V in) { return ops::OneHot(s, in[0], in[1], in[2], in[3], {.axis = 2}); });
  ExpectSameRejection(
      "OneHot negative depth",
      {IndexTensor({0, 1}, i32), Tensor::Scalar<int32_t>(-1), Tensor::Scalar<float>(1),
       Tensor::Scalar<float>(0)},
      [](const Scope& s, V in) { return ops::OneHot(s, in[0], in[1], in[2], in[3]); });
  const Build segments = [](const Scope& s, V in) {
    return ops::UnsortedSegmentSum(s, in[0], in[1], in[2]);
  };
  ExpectSameRejection("UnsortedSegmentSum ids not a prefix",
                      {x, IndexTensor({0, 1, 0}, i32), IndexScalar(2, i32)}, segments);
  ExpectSameRejection("UnsortedSegmentSum negative num_segments",
                      {x, IndexTensor({0, 1}, i32), IndexScalar(-1, i32)}, segments);
}

TEST(CudaArrayTest, HostArgumentsOnTheDeviceAreAnErrorNotACrash) {
  SKIP_WITHOUT_GPU();
  const Tensor x = Floats(Shape{2, 3});
  Graph graph;
  absl::StatusOr<const Node*> node =
      BuildNode(&graph, {x, x, IndexScalar(1, DType::kInt32)}, [](const Scope& s, V in) {
        return ops::ConcatV2(s, {in[0], in[1]}, in[2]);
      });
  ASSERT_TRUE(node.ok()) << node.status();
  std::vector<Tensor> all_on_gpu;
  for (const Tensor& t : {x, x, IndexScalar(1, DType::kInt32)}) {
    all_on_gpu.push_back(Gpu()->CopyFromHost(t).value());
  }
  absl::StatusOr<std::vector<Tensor>> got = RunKernel(**node, Gpu(), all_on_gpu);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
}

}  // namespace
}  // namespace gradserve

#endif  // GRADSERVE_HAVE_CUDA
