// Gradient-check cases for the array op family (see grad_check_util.h).
#include "graph/attr.h"
#include "tests/unit/autodiff/grad_check_util.h"

namespace gradserve::testing {
namespace {

constexpr DType kF = DType::kInvalid;  // float64
constexpr DType kI = DType::kInt32;

RefTensor Ints(std::vector<double> v) {
  const Shape shape{static_cast<int64_t>(v.size())};
  return Values(shape, std::move(v));
}

// One float input and one constant int32 index input. Every array gradient is
// linear and independent of the op's input, so order-2 checks need a composed
// graph: they are in array_grad_test.cc.
void AddUnaryIndexed(std::vector<GradCase>& cases, const std::string& name, const std::string& op,
                     const Shape& x_shape, const RefTensor& index, AttrMap attrs = {}) {
  GradCase c{.name = name,
             .op = op,
             .inputs = {Random(x_shape), index},
             .input_dtypes = {kF, kI},
             .constant = {false, true},
             .attrs = std::move(attrs),
             .wrt = {0}};
  cases.push_back(std::move(c));
}

void AddShapeCases(std::vector<GradCase>& cases) {
  cases.push_back({.name = "Identity", .op = "Identity", .inputs = {Random(Shape{3, 2})},
                   .wrt = {0}});
  cases.push_back({.name = "PlaceholderWithDefault",
                   .op = "PlaceholderWithDefault",
                   .inputs = {Random(Shape{2, 3})},
                   .attrs = {{"shape", MakeAttr(Shape{-1, 3})}},
                   .wrt = {0}});
  AddUnaryIndexed(cases, "Reshape", "Reshape", Shape{2, 3, 5}, Ints({5, -1}));
  AddUnaryIndexed(cases, "ExpandDims", "ExpandDims", Shape{3, 4}, Values(Shape{}, {-1}));
  cases.push_back({.name = "Squeeze_dims",
                   .op = "Squeeze",
                   .inputs = {Random(Shape{3, 1, 4, 1})},
                   .attrs = {{"squeeze_dims", MakeAttr(std::vector<int64_t>{1})}},
                   .wrt = {0}});
  cases.push_back({.name = "Squeeze_all", .op = "Squeeze", .inputs = {Random(Shape{1, 5, 1})},
                   .wrt = {0}});
  AddUnaryIndexed(cases, "Transpose_2d", "Transpose", Shape{3, 5}, Ints({1, 0}));
  AddUnaryIndexed(cases, "Transpose_3d", "Transpose", Shape{2, 3, 4}, Ints({2, 0, 1}));
  AddUnaryIndexed(cases, "Tile", "Tile", Shape{2, 3}, Ints({3, 2}));
  AddUnaryIndexed(cases, "Tile_3d", "Tile", Shape{2, 1, 3}, Ints({1, 4, 2}));
}

void AddSliceCases(std::vector<GradCase>& cases) {
  cases.push_back({.name = "Slice",
                   .op = "Slice",
                   .inputs = {Random(Shape{4, 5, 3}), Ints({1, 0, 1}), Ints({2, -1, 1})},
                   .input_dtypes = {kF, kI, kI},
                   .constant = {false, true, true},
                   .wrt = {0}});
  AddUnaryIndexed(cases, "Pad", "Pad", Shape{3, 2},
                  Values(Shape{2, 2}, {1, 2, 0, 3}));
  AttrMap masks = {{"begin_mask", MakeAttr(0)},
                   {"end_mask", MakeAttr(2)},
                   {"ellipsis_mask", MakeAttr(0)},
                   {"new_axis_mask", MakeAttr(0)},
                   {"shrink_axis_mask", MakeAttr(0)}};
  cases.push_back({.name = "StridedSlice_strided",
                   .op = "StridedSlice",
                   .inputs = {Random(Shape{5, 6}), Ints({4, 1}), Ints({0, 0}), Ints({-2, 2})},
                   .input_dtypes = {kF, kI, kI, kI},
                   .constant = {false, true, true, true},
                   .attrs = masks,
                   .wrt = {0}});
  AttrMap shrink = masks;
  shrink["shrink_axis_mask"] = MakeAttr(1);
  shrink["end_mask"] = MakeAttr(0);
  cases.push_back({.name = "StridedSlice_shrink",
                   .op = "StridedSlice",
                   .inputs = {Random(Shape{3, 4}), Ints({1, 1}), Ints({2, 4}), Ints({1, 1})},
                   .input_dtypes = {kF, kI, kI, kI},
                   .constant = {false, true, true, true},
                   .attrs = shrink,
                   .wrt = {0}});
  cases.push_back({.name = "StridedSliceGrad",
                   .op = "StridedSliceGrad",
                   .inputs = {Ints({5, 6}), Ints({4, 1}), Ints({0, 0}), Ints({-2, 2}),
                              Random(Shape{2, 3})},
                   .input_dtypes = {kI, kI, kI, kI, kF},
                   .constant = {true, true, true, true, false},
                   .attrs = masks,
                   .wrt = {4}});
}

void AddCombineCases(std::vector<GradCase>& cases) {
  GradCase concat{.name = "ConcatV2_axis1",
                  .op = "ConcatV2",
                  .inputs = {Random(Shape{2, 3}), Random(Shape{2, 1}), Random(Shape{2, 4}),
                             Values(Shape{}, {-1})},
                  .input_dtypes = {kF, kF, kF, kI},
                  .constant = {false, false, false, true},
                  .attrs = {{"N", MakeAttr(3)}},
                  .wrt = {0, 1, 2}};
  cases.push_back(concat);
  cases.push_back({.name = "Pack_axis1",
                   .op = "Pack",
                   .inputs = {Random(Shape{2, 3}), Random(Shape{2, 3}), Random(Shape{2, 3})},
                   .attrs = {{"axis", MakeAttr(1)}, {"N", MakeAttr(3)}},
                   .wrt = {0, 1, 2}});
  GradCase pack{.name = "Pack_axis_last",
                .op = "Pack",
                .inputs = {Random(Shape{3}), Random(Shape{3})},
                .attrs = {{"axis", MakeAttr(-1)}, {"N", MakeAttr(2)}},
                .wrt = {0, 1}};
  cases.push_back(pack);
  cases.push_back({.name = "GatherV2_axis0_repeats",
                   .op = "GatherV2",
                   .inputs = {Random(Shape{4, 3}), Values(Shape{2, 3}, {0, 3, 3, 1, 0, 3}),
                              Values(Shape{}, {0})},
                   .input_dtypes = {kF, kI, kI},
                   .constant = {false, true, true},
                   .wrt = {0}});
  cases.push_back({.name = "GatherV2_axis1",
                   .op = "GatherV2",
                   .inputs = {Random(Shape{2, 5, 3}), Ints({4, 0, 4}), Values(Shape{}, {1})},
                   .input_dtypes = {kF, kI, kI},
                   .constant = {false, false, true},
                   .wrt = {0}});
  cases.push_back({.name = "GatherV2_axis_last_scalar_index",
                   .op = "GatherV2",
                   .inputs = {Random(Shape{3, 4}), Values(Shape{}, {2}), Values(Shape{}, {-1})},
                   .input_dtypes = {kF, kI, kI},
                   .constant = {false, true, true},
                   .wrt = {0}});
  cases.push_back({.name = "UnsortedSegmentSum_negative_ids",
                   .op = "UnsortedSegmentSum",
                   .inputs = {Random(Shape{5, 2}), Ints({1, -1, 0, 1, 3}), Values(Shape{}, {4})},
                   .input_dtypes = {kF, kI, kI},
                   .constant = {false, true, true},
                   .wrt = {0}});
  cases.push_back({.name = "UnsortedSegmentSum_2d_ids",
                   .op = "UnsortedSegmentSum",
                   .inputs = {Random(Shape{2, 3, 2}), Values(Shape{2, 3}, {0, 2, 2, 1, 0, 0}),
                              Values(Shape{}, {3})},
                   .input_dtypes = {kF, kI, kI},
                   .constant = {false, false, true},
                   .wrt = {0}});
  const RefTensor cond = RandomInt(Shape{3, 4}, 0, 1);
  cases.push_back({.name = "SelectV2_same_shape",
                   .op = "SelectV2",
                   .inputs = {cond, Random(Shape{3, 4}), Random(Shape{3, 4})},
                   .input_dtypes = {DType::kBool, kF, kF},
                   .constant = {true, false, false},
                   .wrt = {1, 2}});
  cases.push_back({.name = "SelectV2_broadcast",
                   .op = "SelectV2",
                   .inputs = {RandomInt(Shape{2, 3, 4}, 0, 1), Random(Shape{3, 1}), Random(Shape{4})},
                   .input_dtypes = {DType::kBool, kF, kF},
                   .constant = {true, false, false},
                   .wrt = {1, 2}});
  cases.push_back({.name = "Fill",
                   .op = "Fill",
                   .inputs = {Ints({2, 3}), Scalar(0.5)},
                   .input_dtypes = {kI, kF},
                   .constant = {true, false},
                   .wrt = {1}});
}

}  // namespace

std::vector<GradCase> ArrayGradCases() {
  std::vector<GradCase> cases;
  AddShapeCases(cases);
  AddSliceCases(cases);
  AddCombineCases(cases);
  return cases;
}

}  // namespace gradserve::testing
