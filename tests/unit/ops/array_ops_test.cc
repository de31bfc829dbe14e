// Array-op behaviour the data-driven cases cannot express: StridedSlice against
// TensorFlow's own results on random specs, constant propagation from Shape
// into downstream shape functions, zero-copy outputs of the metadata ops, large
// inputs that shard over threads, and the builder functions end to end.
#include "graph/builder/array_ops.h"

#include "gtest/gtest.h"
#include "runtime/kernel.h"
#include "runtime/session.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

// A random StridedSlice of iota(shape) and what TensorFlow 2.21 returned for it
// (tf.raw_ops.StridedSlice, eager): the output shape and values, or an error.
struct TfStridedSlice {
  std::vector<int64_t> shape, begin, end, strides;
  std::vector<int64_t> masks;  // begin, end, ellipsis, new_axis, shrink_axis
  std::vector<int64_t> want_shape, want_values;
  std::string error;
};

const std::vector<TfStridedSlice>& TfStridedSlices() {
  // clang-format off
  static const auto* table = new std::vector<TfStridedSlice>{
    {{2,4,1}, {2}, {-5}, {-1}, {0, 0, 0, 0, 0}, {2,4,1}, {4,5,6,7,0,1,2,3}, ""},
    {{5}, {-6,3}, {-5,-3}, {2,2}, {0, 3, 0, 0, 0}, {}, {}, "Index out of range using input dim 1; input has only 1 dims"},
    {{2,5,1,5}, {2,4,-4}, {-5,3,3}, {2,-2,-1}, {1, 1, 0, 0, 0}, {1,1,0,5}, {}, ""},
    {{5,4,3,3}, {6,-4}, {5,6}, {-2,-3}, {2, 3, 2, 0, 0}, {3,4,3,3}, {144,145,146,147,148,149,150,151,152,153,154,155,156,157,158,159,160,161,162,163,164,165,166,167,168,169,170,171,172,173,174,175,176,177,178,179,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100,101,102,103,104,105,106,107,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35}, ""},
    {{2,3,2,4}, {-6,4,-5,6}, {2,3,6,-1}, {-1,2,-1,1}, {15, 14, 0, 0, 0}, {0,2,2,4}, {}, ""},
    {{5,4,3}, {4,-1,-6,1}, {-1,-4,3,-5}, {1,-3,-2,3}, {9, 4, 0, 0, 0}, {}, {}, "Index out of range using input dim 3; input has only 3 dims"},
    {{4,5,3,2}, {2,-2,5,0}, {-1,4,0,-3}, {-2,-3,-2,-2}, {7, 7, 0, 0, 0}, {2,2,2,1}, {118,114,100,96,58,54,40,36}, ""},
    {{4,5}, {3,3}, {-1,-4}, {2,3}, {0, 3, 0, 0, 0}, {1,1}, {18}, ""},
    {{1,2,1,2}, {-4,-5,-1,3}, {-6,-5,-6,3}, {-2,1,-3,-1}, {0, 2, 2, 0, 0}, {0,2,1,0}, {}, ""},
    {{4,1,1}, {1,1,1,-2}, {-5,-4,-5,5}, {-1,2,-1,1}, {5, 0, 2, 0, 0}, {4,1,1}, {3,2,1,0}, ""},
    {{1,3,5}, {-4,-1,6}, {-3,2,2}, {3,1,-1}, {3, 3, 0, 0, 0}, {1,3,2}, {4,3,9,8,14,13}, ""},
    {{1}, {1,-2}, {-3,5}, {1,-1}, {3, 2, 0, 0, 0}, {}, {}, "Index out of range using input dim 1; input has only 1 dims"},
    {{3,2}, {3,3}, {-6,1}, {2,-1}, {0, 0, 2, 0, 0}, {0,2}, {}, ""},
    {{1,4,4}, {5,-5,5,-4}, {-4,-4,-6,-4}, {1,1,3,2}, {4, 15, 0, 0, 0}, {}, {}, "Index out of range using input dim 3; input has only 3 dims"},
    {{5}, {0}, {-3}, {3}, {0, 0, 0, 1, 0}, {1,5}, {0,1,2,3,4}, ""},
    {{3,5,4}, {-6,5}, {-1,1}, {2,1}, {3, 1, 1, 0, 1}, {3,5,1}, {0,4,8,12,16,20,24,28,32,36,40,44,48,52,56}, ""},
    {{2}, {-4}, {1}, {1}, {0, 0, 1, 0, 0}, {2}, {0,1}, ""},
    {{3,1}, {2}, {1}, {1}, {0, 0, 0, 0, 0}, {0,1}, {}, ""},
    {{5,2,5,3}, {-3,1,-4,0,-5}, {0,1,-1,-5,4}, {-2,1,-3,-2,2}, {19, 7, 2, 0, 0}, {3,0,0,2}, {}, ""},
    {{2,1,4,4}, {4,-3}, {-4,5}, {1,1}, {3, 2, 0, 0, 0}, {0,1,4,4}, {}, ""},
    {{1,3,5}, {1,5,-6,0}, {-1,2,3,-2}, {1,-3,-3,3}, {7, 3, 0, 0, 0}, {}, {}, "Index out of range using input dim 3; input has only 3 dims"},
    {{4,3}, {-4,2}, {2,3}, {1,2}, {2, 0, 0, 0, 0}, {2,2}, {0,2,3,5}, ""},
    {{1}, {-5,3}, {-3,-5}, {-1,3}, {0, 3, 0, 0, 0}, {}, {}, "Index out of range using input dim 1; input has only 1 dims"},
    {{1,2}, {-6,-4}, {-3,-2}, {2,-1}, {1, 2, 2, 0, 0}, {0,2}, {}, ""},
    {{1,1,1}, {2,1}, {-3,1}, {-3,2}, {3, 3, 2, 2, 0}, {1,1,1}, {0}, ""},
    {{2,2,4}, {-6,-4,-6}, {-5,4,5}, {-1,1,-2}, {0, 1, 0, 4, 3}, {}, {}, "only stride 1 allowed on non-range indexing."},
    {{1,4,2}, {-2,1}, {-6,-2}, {-1,-1}, {2, 1, 0, 0, 0}, {0,1,2}, {}, ""},
    {{4,1,4}, {2,4,-3}, {-3,2,6}, {-3,-3,-1}, {1, 2, 2, 0, 0}, {1,1,0}, {}, ""},
    {{2,1,5}, {4,5}, {6,3}, {1,3}, {2, 3, 0, 0, 3}, {}, {}, "slice index 4 of dimension 0 out of bounds."},
    {{5,5}, {6,-6,4}, {3,6,5}, {2,2,2}, {3, 1, 0, 2, 0}, {3,1,1}, {4,14,24}, ""},
    {{4,5,1,1}, {4,-3,1,-2,-6}, {1,6,-5,5,2}, {1,-3,2,1,-3}, {30, 16, 0, 15, 0}, {1,1,1,1,2,5,1,1}, {15,16,17,18,19,0,1,2,3,4}, ""},
    {{4,4,1,4}, {6,-6,3}, {4,4,-3}, {-3,1,-2}, {5, 4, 4, 4, 0}, {0,4,1,4}, {}, ""},
    {{1,4,3,1}, {4,1}, {-2,5}, {1,-1}, {3, 3, 0, 0, 0}, {1,4,3,1}, {9,10,11,6,7,8,3,4,5,0,1,2}, ""},
    {{3}, {-5,2}, {1,-2}, {1,-2}, {1, 0, 0, 0, 1}, {}, {}, "Index out of range using input dim 1; input has only 1 dims"},
    {{1,3,2}, {1,0,-6,-4}, {-6,1,4,1}, {1,-1,2,-2}, {13, 11, 0, 0, 0}, {}, {}, "Index out of range using input dim 3; input has only 3 dims"},
    {{4,1,2}, {5}, {-2}, {-1}, {1, 0, 0, 0, 0}, {1,1,2}, {6,7}, ""},
    {{3}, {-6}, {4}, {-1}, {0, 0, 0, 0, 0}, {0}, {}, ""},
    {{4}, {5}, {-5}, {-3}, {1, 1, 1, 0, 0}, {4}, {0,1,2,3}, ""},
    {{2,4}, {-1,-2}, {-2,-2}, {2,2}, {2, 3, 0, 3, 0}, {1,1,2,4}, {0,1,2,3,4,5,6,7}, ""},
    {{2,1}, {2}, {6}, {1}, {0, 1, 0, 0, 0}, {0,1}, {}, ""},
    {{2}, {2,-5}, {-1,-3}, {-1,-1}, {1, 0, 0, 3, 0}, {1,1,2}, {0,1}, ""},
    {{3,1,4}, {3,-1,-4}, {4,2,2}, {2,3,3}, {3, 1, 0, 0, 0}, {2,1,1}, {0,8}, ""},
    {{4}, {2}, {6}, {-3}, {0, 0, 1, 0, 0}, {4}, {0,1,2,3}, ""},
    {{5,4,1}, {-5}, {-2}, {1}, {0, 1, 0, 0, 0}, {5,4,1}, {0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19}, ""},
    {{3,2,4}, {2,-3}, {-6,0}, {2,2}, {2, 0, 0, 3, 0}, {1,1,3,2,4}, {0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23}, ""},
    {{2,4,3}, {1,-6}, {5,-1}, {2,1}, {2, 3, 0, 2, 0}, {1,1,4,3}, {12,13,14,15,16,17,18,19,20,21,22,23}, ""},
    {{2,3,2,2}, {-3,-2,6,-2}, {-5,3,1,3}, {-2,-2,1,1}, {1, 4, 0, 0, 0}, {1,0,0,2}, {}, ""},
    {{1}, {0}, {1}, {2}, {1, 0, 0, 0, 0}, {1}, {0}, ""},
  };
  // clang-format on
  return *table;
}

Tensor Iota(const std::vector<int64_t>& dims) {
  Tensor t(DType::kInt32, Shape(absl::MakeConstSpan(dims)));
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(i);
  return t;
}

Tensor IntVector(const std::vector<int64_t>& v) {
  std::vector<int32_t> v32(v.begin(), v.end());
  return Tensor::FromVector<int32_t>(v32);
}

TEST(StridedSliceTest, MatchesTensorFlowOnRandomSpecs) {
  for (const TfStridedSlice& c : TfStridedSlices()) {
    const AttrMap attrs = {{"begin_mask", MakeAttr(c.masks[0])},
                           {"end_mask", MakeAttr(c.masks[1])},
                           {"ellipsis_mask", MakeAttr(c.masks[2])},
                           {"new_axis_mask", MakeAttr(c.masks[3])},
                           {"shrink_axis_mask", MakeAttr(c.masks[4])}};
    const std::vector<Tensor> inputs = {Iota(c.shape), IntVector(c.begin), IntVector(c.end),
                                        IntVector(c.strides)};
    // Spec as constants (checked by the shape function) and fed (checked by the
    // kernel).
    for (bool constant : {true, false}) {
      SCOPED_TRACE(absl::StrCat("shape ", Shape(absl::MakeConstSpan(c.shape)).DebugString(),
                                " begin ", IntVector(c.begin).DebugString(), " end ",
                                IntVector(c.end).DebugString(), " strides ",
                                IntVector(c.strides).DebugString(), " masks ",
                                IntVector(c.masks).DebugString(), " constant ", constant));
      absl::StatusOr<OpResult> r =
          RunOp("StridedSlice", inputs, attrs, {false, constant, constant, constant});
      if (!c.error.empty()) {
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.status().message().find(c.error), std::string::npos) << r.status();
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.status();
      const Tensor& out = r->outputs[0];
      EXPECT_EQ(out.shape(), Shape(absl::MakeConstSpan(c.want_shape)));
      if (constant) {
        EXPECT_EQ(r->inferred_shapes[0], out.shape());
      }
      ASSERT_EQ(out.num_elements(), static_cast<int64_t>(c.want_values.size()));
      for (int64_t i = 0; i < out.num_elements(); ++i) {
        EXPECT_EQ(out.data<int32_t>()[i], c.want_values[i]) << "element " << i;
      }
    }
  }
}

// Shape publishes its value when its input's shape is fully defined, so Reshape
// and Fill downstream infer exact shapes, and a -1 resolves from the count.
TEST(ArrayShapeInferenceTest, ShapeValueFlowsIntoReshapeAndFill) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kFloat, Shape{2, 3, 4});
  Output flat = ops::Placeholder(s, DType::kFloat, Shape{-1});
  Output shape = ops::ShapeOf(s, x);
  Output shape64 = ops::ShapeOf(s, x, {.out_type = DType::kInt64});
  Output back = ops::Reshape(s, flat, shape);
  Output filled = ops::Fill(s, shape64, ops::Const(s, 1.5f));
  Output partial = ops::ShapeOf(s, ops::Placeholder(s, DType::kFloat, Shape{-1, 3}));
  Output reshaped = ops::Reshape(s, x, ops::Const(s, std::vector<int32_t>{-1, 6}, Shape{2}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(shape.shape(), Shape{3});
  EXPECT_EQ(back.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(filled.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(partial.node->constant_value(), nullptr);
  EXPECT_EQ(reshaped.shape(), (Shape{4, 6}));
  ASSERT_NE(shape64.node->constant_value(), nullptr);
  EXPECT_EQ(shape64.node->constant_value()->data<int64_t>()[2], 4);
}

TEST(ArrayShapeInferenceTest, PartialShapesStayPartial) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kFloat, Shape{-1, 3});
  Output unknown = ops::Placeholder(s, DType::kFloat);
  Output perm = ops::Const(s, std::vector<int32_t>{1, 0}, Shape{2});
  Output axis0 = ops::Const(s, 0);
  EXPECT_EQ(ops::Transpose(s, x, perm).shape(), (Shape{3, -1}));
  EXPECT_EQ(ops::ConcatV2(s, {x, x}, axis0).shape(), (Shape{-1, 3}));
  EXPECT_EQ(ops::ConcatV2(s, {x, unknown}, ops::Const(s, 1)).shape(), (Shape{-1, -1}));
  EXPECT_EQ(ops::Pack(s, {x, unknown}, {.axis = 1}).shape(), (Shape{-1, 2, 3}));
  EXPECT_EQ(ops::ExpandDims(s, x, ops::Placeholder(s, DType::kInt32, Shape{})).shape(),
            Shape::UnknownDims(3));
  EXPECT_TRUE(ops::Squeeze(s, x).shape().unknown_rank());  // -1 may or may not be 1
  EXPECT_EQ(ops::Squeeze(s, ops::ExpandDims(s, x, axis0), {.squeeze_dims = {0}}).shape(),
            (Shape{-1, 3}));
  EXPECT_EQ(ops::Tile(s, x, ops::Const(s, std::vector<int32_t>{2, 0}, Shape{2})).shape(),
            (Shape{-1, 0}));
  ASSERT_TRUE(s.ok()) << s.status();
}

// The metadata ops and contiguous slices relabel the input's buffer; the
// kernels of the metadata ops say they are cheap so the executor runs them
// inline.
TEST(ArrayKernelTest, MetadataOpsShareTheInputBuffer) {
  const Tensor x = Iota({4, 1, 6});
  auto run = [&](const std::string& op, std::vector<Tensor> more, const AttrMap& attrs = {}) {
    std::vector<Tensor> inputs = {x};
    inputs.insert(inputs.end(), more.begin(), more.end());
    absl::StatusOr<OpResult> r = RunOp(op, inputs, attrs);
    EXPECT_TRUE(r.ok()) << op << ": " << r.status();
    return r.ok() ? r->outputs[0] : Tensor();
  };
  EXPECT_TRUE(run("Reshape", {IntVector({6, -1})}).SharesBufferWith(x));
  EXPECT_TRUE(run("Squeeze", {}).SharesBufferWith(x));
  EXPECT_TRUE(run("ExpandDims", {Tensor::Scalar<int32_t>(0)}).SharesBufferWith(x));
  EXPECT_TRUE(run("Identity", {}).SharesBufferWith(x));
  EXPECT_TRUE(run("Slice", {IntVector({1, 0, 0}), IntVector({2, -1, -1})}).SharesBufferWith(x));
  const Tensor rows = run("StridedSlice", {IntVector({2}), IntVector({4}), IntVector({1})});
  EXPECT_TRUE(rows.SharesBufferWith(x));
  EXPECT_EQ(rows.data<int32_t>()[0], 12);
  EXPECT_TRUE(run("Transpose", {IntVector({1, 0, 2})}).SharesBufferWith(x));
  EXPECT_FALSE(run("Transpose", {IntVector({2, 1, 0})}).SharesBufferWith(x));

  Graph g;
  Scope s(&g);
  Output in = ops::Placeholder(s, DType::kFloat, Shape{2, 3});
  for (Output out :
       {ops::Reshape(s, in, ops::Const(s, std::vector<int32_t>{6}, Shape{1})), ops::Squeeze(s, in),
        ops::ExpandDims(s, in, ops::Const(s, 1)), ops::ShapeOf(s, in)}) {
    ASSERT_TRUE(s.ok()) << s.status();
    absl::StatusOr<std::unique_ptr<OpKernel>> k =
        KernelRegistry::Global().CreateKernel(*out.node, kDeviceCpu);
    ASSERT_TRUE(k.ok()) << k.status();
    EXPECT_FALSE((*k)->IsExpensive()) << out.node->op();
  }
}

// Inputs large enough that ConcatV2 and GatherV2 shard their rows over threads.
TEST(ArrayKernelTest, LargeConcatAndGatherMatchLoops) {
  const int64_t rows = 3000, cols = 7;
  const Tensor a = Iota({rows, cols});
  Tensor b = Iota({rows, 2});
  absl::StatusOr<OpResult> cat =
      RunOp("ConcatV2", {a, b, Tensor::Scalar<int32_t>(1)}, {{"N", MakeAttr(2)}});
  ASSERT_TRUE(cat.ok()) << cat.status();
  const Tensor& c = cat->outputs[0];
  ASSERT_EQ(c.shape(), (Shape{rows, cols + 2}));
  for (int64_t r = 0; r < rows; r += 97) {
    EXPECT_EQ(c.data<int32_t>()[r * (cols + 2) + 3], a.data<int32_t>()[r * cols + 3]);
    EXPECT_EQ(c.data<int32_t>()[r * (cols + 2) + cols + 1], b.data<int32_t>()[r * 2 + 1]);
  }

  std::vector<int64_t> idx(20000);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = (i * 7919) % rows;
  absl::StatusOr<OpResult> g =
      RunOp("GatherV2", {a, Tensor::FromVector<int64_t>(idx), Tensor::Scalar<int32_t>(0)}, {});
  ASSERT_TRUE(g.ok()) << g.status();
  const Tensor& out = g->outputs[0];
  ASSERT_EQ(out.shape(), (Shape{20000, cols}));
  for (size_t i = 0; i < idx.size(); i += 101) {
    for (int64_t j = 0; j < cols; ++j) {
      ASSERT_EQ(out.data<int32_t>()[i * cols + j], a.data<int32_t>()[idx[i] * cols + j]);
    }
  }
}

TEST(ArrayBuilderTest, BuildsAndRunsAPipeline) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2, 3});
  Output i32 = ops::Const(s, std::vector<int32_t>{1, 0}, Shape{2});
  Output t = ops::Transpose(s, x, i32);                                                     // [3,2]
  Output p = ops::Pad(s, t, ops::Const(s, std::vector<int32_t>{0, 1, 0, 0}, Shape{2, 2}));  // [4,2]
  Output tiled = ops::Tile(s, p, ops::Const(s, std::vector<int32_t>{1, 2}, Shape{2}));      // [4,4]
  Output sl = ops::Slice(s, tiled, ops::Const(s, std::vector<int32_t>{1, 1}, Shape{2}),
                         ops::Const(s, std::vector<int32_t>{2, -1}, Shape{2}));  // [2,3]
  Output ss = ops::StridedSlice(s, sl, ops::Const(s, std::vector<int32_t>{0}, Shape{1}),
                                ops::Const(s, std::vector<int32_t>{0}, Shape{1}),
                                ops::Const(s, std::vector<int32_t>{1}, Shape{1}),
                                {.shrink_axis_mask = 1});  // [3]
  Output packed = ops::Pack(s, {ss, ss});                  // [2,3]
  Tensor cond_value(DType::kBool, Shape{3});
  for (int i = 0; i < 3; ++i) cond_value.data<bool>()[i] = i != 1;
  Output cond = ops::Const(s, cond_value);
  Output sel = ops::SelectV2(s, cond, packed, ops::ZerosLike(s, packed));  // [2,3]
  Output hot = ops::OneHot(s, ops::Const(s, std::vector<int32_t>{2, 0}, Shape{2}), ops::Const(s, 3),
                           ops::Const(s, 1.0f), ops::Const(s, 0.0f));  // [2,3]
  Output sum =
      ops::ConcatV2(s.WithName("y"), {sel, hot, ops::OnesLike(s, hot)}, ops::Const(s, 0));  // [6,3]
  Output gathered =
      ops::GatherV2(s.WithName("g"), sum, ops::Const(s, std::vector<int32_t>{5, 0}, Shape{2}),
                    ops::Const(s, 0));  // [2,3]
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(sum.shape(), (Shape{6, 3}));
  EXPECT_EQ(gathered.shape(), (Shape{2, 3}));
  auto session = Session::Create(std::move(graph), {});
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  const Tensor xv = Tensor::FromVector<float>({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  ASSERT_TRUE((*session)->Run({{"x:0", xv}}, {"y:0", "g:0"}, {}, &out).ok());
  // t = [[1,4],[2,5],[3,6]]; padded adds a zero row; tiled doubles the columns:
  // [[1,4,1,4],[2,5,2,5],[3,6,3,6],[0,0,0,0]]; sl = [[5,2,5],[6,3,6]]; ss =
  // [5,2,5].
  const std::vector<float> want = {5, 0, 5, 5, 0, 5, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1};
  ASSERT_EQ(out[0].num_elements(), 18);
  for (int i = 0; i < 18; ++i) EXPECT_EQ(out[0].data<float>()[i], want[i]) << i;
  EXPECT_EQ(out[1].data<float>()[0], 1);
  EXPECT_EQ(out[1].data<float>()[3], 5);
}

}  // namespace
}  // namespace gradserve::testing
