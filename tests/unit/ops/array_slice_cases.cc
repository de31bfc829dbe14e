// Conformance cases for the slicing and reordering array ops: Transpose, Slice,
// StridedSlice, Tile and Pad (see op_test_util.h). Shapes of rank 6 and more
// exercise the kernels' path beyond their Eigen instantiations.
#include "graph/attr.h"
#include "tests/unit/ops/array_case_util.h"

namespace gradserve::testing {
namespace {

using namespace array_cases;  // NOLINT: test-local helpers

RefTensor TransposeRef(const RefTensor& x, const std::vector<int64_t>& perm) {
  const int rank = x.rank();
  std::vector<int64_t> p;
  Shape out_shape;
  for (int64_t d : perm) {
    p.push_back(d < 0 ? d + rank : d);
    out_shape.AddDim(x.dim(static_cast<int>(p.back())));
  }
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  for (int64_t f = 0; f < out.size(); ++f) {
    const std::vector<int64_t> o = Unravel(f, out_shape);
    std::vector<int64_t> src(rank);
    for (int i = 0; i < rank; ++i) src[p[i]] = o[i];
    out.v[f] = x.v[Ravel(src, x.shape)];
  }
  return out;
}

RefTensor SliceRef(const RefTensor& x, const std::vector<int64_t>& begin,
                   const std::vector<int64_t>& size) {
  std::vector<std::vector<int64_t>> idx;
  Shape out_shape;
  for (size_t i = 0; i < begin.size(); ++i) {
    const int64_t end = size[i] == -1 ? x.dim(i) : begin[i] + size[i];
    idx.push_back(Range(begin[i], end));
    out_shape.AddDim(end - begin[i]);
  }
  return Pick(x, idx, out_shape);
}

RefTensor TileRef(const RefTensor& x, const std::vector<int64_t>& multiples) {
  Shape out_shape;
  for (int i = 0; i < x.rank(); ++i) out_shape.AddDim(x.dim(i) * multiples[i]);
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  for (int64_t f = 0; f < out.size(); ++f) {
    std::vector<int64_t> idx = Unravel(f, out_shape);
    for (int i = 0; i < x.rank(); ++i) idx[i] %= x.dim(i);
    out.v[f] = x.v[Ravel(idx, x.shape)];
  }
  return out;
}

RefTensor PadRef(const RefTensor& x, const std::vector<int64_t>& paddings) {
  Shape out_shape;
  for (int i = 0; i < x.rank(); ++i) {
    out_shape.AddDim(x.dim(i) + paddings[2 * i] + paddings[2 * i + 1]);
  }
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements(), 0.0)};
  for (int64_t f = 0; f < x.size(); ++f) {
    std::vector<int64_t> idx = Unravel(f, x.shape);
    for (int i = 0; i < x.rank(); ++i) idx[i] += paddings[2 * i];
    out.v[Ravel(idx, out_shape)] = x.v[f];
  }
  return out;
}

void AddTransposeCases(std::vector<OpCase>& cases) {
  auto transpose = [&](std::string name, Shape in, std::vector<int64_t> perm, DType index = kI32,
                       bool constant = true, std::string error = "") {
    AddForAllTypes(cases, {.name = "Transpose_" + name,
                           .op = "Transpose",
                           .inputs = {Data(in), IntVec(perm)},
                           .input_dtypes = {kData, index},
                           .constant = {false, constant},
                           .reference =
                               [perm](const std::vector<RefTensor>& in) {
                                 return One(TransposeRef(in[0], perm));
                               },
                           .expect_error = error});
  };
  transpose("matrix", Shape{3, 5}, {1, 0});
  transpose("rank3_fed_int64", Shape{2, 3, 4}, {2, 0, 1}, kI64, false);
  transpose("negative_perm", Shape{2, 3, 1, 4}, {-1, 0, 2, 1});
  transpose("merged_runs", Shape{2, 3, 4, 5}, {2, 3, 0, 1});
  transpose("identity", Shape{2, 3, 4}, {0, 1, 2});
  transpose("size_one_dims", Shape{1, 3, 1, 4}, {2, 3, 0, 1});
  transpose("rank6", Shape{2, 3, 2, 3, 2, 2}, {0, 2, 4, 1, 3, 5});
  transpose("empty", Shape{0, 3}, {1, 0});
  transpose("scalar", Shape{}, {});
  transpose("duplicate", Shape{2, 3}, {0, 0}, kI32, true, "1 is missing from {0,0}.");
  transpose("out_of_range", Shape{2, 3}, {0, 2}, kI32, true, "2 is out of range [0 .. 2)");
  transpose("wrong_length_fed", Shape{2, 3}, {0}, kI32, false,
            "transpose expects a vector of size 2. But input(1) is a vector of size 1");
}

void AddSliceCases(std::vector<OpCase>& cases) {
  auto slice = [&](std::string name, Shape in, std::vector<int64_t> begin,
                   std::vector<int64_t> size, DType index = kI32, bool constant = true,
                   std::string error = "") {
    AddForAllTypes(cases, {.name = "Slice_" + name,
                           .op = "Slice",
                           .inputs = {Data(in), IntVec(begin), IntVec(size)},
                           .input_dtypes = {kData, index, index},
                           .constant = {false, constant, constant},
                           .reference =
                               [begin, size](const std::vector<RefTensor>& in) {
                                 return One(SliceRef(in[0], begin, size));
                               },
                           .expect_error = error});
  };
  slice("matrix_to_end", Shape{4, 5}, {1, 2}, {2, -1});
  slice("rows_shared", Shape{5, 3}, {1, 0}, {3, 3});
  slice("rank3_fed_int64", Shape{3, 4, 5}, {1, 0, 2}, {2, 4, 2}, kI64, false);
  slice("empty_result", Shape{4, 5}, {1, 1}, {0, 2});
  slice("empty_input", Shape{0, 5}, {0, 1}, {-1, 3});
  slice("scalar", Shape{}, {}, {});
  slice("rank6", Shape{3, 3, 3, 3, 3, 3}, {1, 0, 1, 0, 1, 0}, {2, 2, 2, 2, 2, 2});
  slice("begin_out_of_range", Shape{4, 5}, {0, 6}, {1, 1}, kI32, true,
        "Expected begin[1] in [0, 5], but got 6");
  slice("size_out_of_range", Shape{4, 5}, {1, 0}, {5, 1}, kI32, true,
        "Expected size[0] in [0, 3], but got 5");
  slice("size_out_of_range_fed", Shape{4, 5}, {1, 0}, {1, -2}, kI32, false,
        "Expected size[1] in [0, 5], but got -2");
  slice("wrong_length", Shape{4, 5}, {0}, {1}, kI32, true,
        "Expected begin and size arguments to be 1-D tensors of size 2");
}

struct SliceMasks {
  int64_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_axis_mask = 0;
};
struct SliceSpec {
  std::vector<int64_t> begin, end, strides;
  SliceMasks m;
};

// `idx`: the input elements taken per input dimension, written independently of
// the op's spec arithmetic (as Python's slicing would); `want`: the final
// shape.
void AddStridedSlice(std::vector<OpCase>& cases, std::string name, Shape in, SliceSpec s,
                     std::vector<std::vector<int64_t>> idx, Shape want, DType index = kI32,
                     bool constant = true, std::string error = "") {
  AddForAllTypes(cases, {.name = "StridedSlice_" + name,
                         .op = "StridedSlice",
                         .inputs = {Data(in), IntVec(s.begin), IntVec(s.end), IntVec(s.strides)},
                         .input_dtypes = {kData, index, index, index},
                         .constant = {false, constant, constant, constant},
                         .attrs = {{"begin_mask", MakeAttr(s.m.begin_mask)},
                                   {"end_mask", MakeAttr(s.m.end_mask)},
                                   {"ellipsis_mask", MakeAttr(s.m.ellipsis_mask)},
                                   {"new_axis_mask", MakeAttr(s.m.new_axis_mask)},
                                   {"shrink_axis_mask", MakeAttr(s.m.shrink_axis_mask)}},
                         .reference =
                             [idx, want](const std::vector<RefTensor>& in) {
                               return One(Pick(in[0], idx, want));
                             },
                         .expect_error = error});
}

void AddStridedSliceCases(std::vector<OpCase>& c) {
  const Shape x{4, 5, 6};
  const auto all0 = Range(0, 4), all1 = Range(0, 5), all2 = Range(0, 6);
  // x[1:3, 0:5:2, 2:6:2]
  AddStridedSlice(c, "basic", x, {{1, 0, 2}, {3, 5, 6}, {1, 2, 2}}, {{1, 2}, {0, 2, 4}, {2, 4}},
                  Shape{2, 3, 2});
  // x[-1:0:-1, 4:0:-2, 0:6:3]
  AddStridedSlice(c, "negative_strides", x, {{-1, 4, 0}, {0, 0, 6}, {-1, -2, 3}},
                  {{3, 2, 1}, {4, 2}, {0, 3}}, Shape{3, 2, 2});
  // x[:4, 1:3, :6]
  AddStridedSlice(c, "begin_mask", x, {{3, 1, 5}, {4, 3, 6}, {1, 1, 1}, {.begin_mask = 0b101}},
                  {all0, {1, 2}, all2}, Shape{4, 2, 6});
  // x[1:2, 2:, 0:3]
  AddStridedSlice(c, "end_mask", x, {{1, 2, 0}, {2, 0, 3}, {1, 1, 1}, {.end_mask = 0b010}},
                  {{1}, {2, 3, 4}, {0, 1, 2}}, Shape{1, 3, 3});
  // x[::-1, 0:5, 0:6]
  AddStridedSlice(c, "masks_negative_stride", x,
                  {{0, 0, 0}, {0, 5, 6}, {-1, 1, 1}, {.begin_mask = 1, .end_mask = 1}},
                  {{3, 2, 1, 0}, all1, all2}, x);
  // x[..., 1:3]
  AddStridedSlice(c, "ellipsis_first", x, {{0, 1}, {0, 3}, {1, 1}, {.ellipsis_mask = 1}},
                  {all0, all1, {1, 2}}, Shape{4, 5, 2});
  // x[1:2, ..., -1:0:-1]
  AddStridedSlice(c, "ellipsis_middle", x,
                  {{1, 0, -1}, {2, 0, 0}, {1, 1, -1}, {.ellipsis_mask = 2}},
                  {{1}, all1, {5, 4, 3, 2, 1}}, Shape{1, 5, 5});
  // x[1:3, newaxis, 0:4]
  AddStridedSlice(c, "new_axis", x, {{1, 0, 0}, {3, 0, 4}, {1, 1, 1}, {.new_axis_mask = 2}},
                  {{1, 2}, {0, 1, 2, 3}, all2}, Shape{2, 1, 4, 6});
  // x[2, 1:4, -1]
  AddStridedSlice(c, "shrink", x, {{2, 1, -1}, {3, 4, 0}, {1, 1, 1}, {.shrink_axis_mask = 0b101}},
                  {{2}, {1, 2, 3}, {5}}, Shape{3});
  // x[3, 4, 5]
  AddStridedSlice(c, "shrink_to_scalar", x,
                  {{3, 4, 5}, {4, 5, 6}, {1, 1, 1}, {.shrink_axis_mask = 7}}, {{3}, {4}, {5}},
                  Shape{});
  // x[newaxis, 3, 0:5:2]
  AddStridedSlice(c, "new_axis_and_shrink", x,
                  {{0, 3, 0}, {0, 4, 5}, {1, 1, 2}, {.new_axis_mask = 1, .shrink_axis_mask = 2}},
                  {{3}, {0, 2, 4}, all2}, Shape{1, 3, 6});
  // x[..., newaxis]
  AddStridedSlice(c, "ellipsis_then_new_axis", x,
                  {{0, 0}, {0, 0}, {1, 1}, {.ellipsis_mask = 1, .new_axis_mask = 2}},
                  {all0, all1, all2}, Shape{4, 5, 6, 1});
  // x[-10:10, 2:100, ::4]: bounds clamp to the dimension
  AddStridedSlice(c, "clamped_bounds", x, {{-10, 2, 0}, {10, 100, 6}, {1, 1, 4}},
                  {all0, {2, 3, 4}, {0, 4}}, Shape{4, 3, 2});
  // x[1:4:2**62]: one element; the step must not overflow the end index
  AddStridedSlice(c, "huge_stride", x, {{1}, {4}, {int64_t{1} << 62}}, {{1}, all1, all2},
                  Shape{1, 5, 6}, kI64);
  // x[3:1]
  AddStridedSlice(c, "empty_result", x, {{3}, {1}, {1}}, {{}, all1, all2}, Shape{0, 5, 6});
  // x[1:3]: contiguous rows, shared with the input
  AddStridedSlice(c, "rows_shared", x, {{1}, {3}, {1}}, {{1, 2}, all1, all2}, Shape{2, 5, 6});
  AddStridedSlice(c, "fed_int64", x, {{0, 1, 1}, {4, 5, 6}, {2, 2, 2}}, {{0, 2}, {1, 3}, {1, 3, 5}},
                  Shape{2, 2, 3}, kI64, false);
  AddStridedSlice(c, "fed_int16", x, {{-1}, {-3}, {-1}}, {{3, 2}, all1, all2}, Shape{2, 5, 6},
                  DType::kInt16, false);
  AddStridedSlice(c, "empty_input", Shape{0, 3},
                  {{0, 1}, {0, 3}, {1, 1}, {.begin_mask = 1, .end_mask = 1}}, {{}, {1, 2}},
                  Shape{0, 2});
  // Rank 7 with every dimension reversed: no dimensions merge.
  const Shape r7{2, 2, 2, 2, 2, 2, 2};
  const std::vector<int64_t> rev = {1, 0};
  AddStridedSlice(c, "rank7_reversed", r7,
                  {std::vector<int64_t>(7, 0),
                   std::vector<int64_t>(7, 0),
                   std::vector<int64_t>(7, -1),
                   {.begin_mask = 127, .end_mask = 127}},
                  std::vector<std::vector<int64_t>>(7, rev), r7);

  auto error = [&](std::string name, SliceSpec s, std::string message, bool constant = true) {
    AddStridedSlice(c, name, x, std::move(s), {}, {}, kI32, constant, std::move(message));
  };
  error("zero_stride", {{0, 0}, {1, 1}, {1, 0}}, "strides[1] must be non-zero");
  error("zero_stride_fed", {{0, 0}, {1, 1}, {1, 0}}, "strides[1] must be non-zero", false);
  error("two_ellipses", {{0, 0}, {1, 1}, {1, 1}, {.ellipsis_mask = 3}},
        "Multiple ellipses in slice spec not allowed");
  error("shrink_out_of_bounds", {{5}, {6}, {1}, {.shrink_axis_mask = 1}},
        "slice index 5 of dimension 0 out of bounds.");
  error("shrink_out_of_bounds_fed", {{-5}, {0}, {1}, {.shrink_axis_mask = 1}},
        "slice index -1 of dimension 0 out of bounds.", false);
  error("too_many_entries", {{0, 0, 0, 0}, {1, 1, 1, 1}, {1, 1, 1, 1}},
        "Index out of range using input dim 3; input has only 3 dims");
  error("length_mismatch", {{0, 0}, {1}, {1, 1}},
        "Expected begin, end, and strides to be 1D equal size tensors");
  error("shrink_negative_stride", {{1}, {0}, {-1}, {.shrink_axis_mask = 1}},
        "only stride 1 allowed on non-range indexing.");
}

void AddTileCases(std::vector<OpCase>& cases) {
  auto tile = [&](std::string name, Shape in, std::vector<int64_t> multiples, DType index = kI32,
                  bool constant = true, std::string error = "") {
    AddForAllTypes(cases, {.name = "Tile_" + name,
                           .op = "Tile",
                           .inputs = {Data(in), IntVec(multiples)},
                           .input_dtypes = {kData, index},
                           .constant = {false, constant},
                           .reference =
                               [multiples](const std::vector<RefTensor>& in) {
                                 return One(TileRef(in[0], multiples));
                               },
                           .expect_error = error});
  };
  tile("matrix", Shape{2, 3}, {2, 3});
  tile("rank3_fed_int64", Shape{2, 1, 3}, {1, 4, 2}, kI64, false);
  tile("size_one_dims", Shape{1, 1, 3}, {2, 3, 1});
  tile("all_ones", Shape{2, 3}, {1, 1});
  tile("zero_multiple", Shape{2, 3}, {0, 2});
  tile("empty_input", Shape{0, 3}, {2, 2});
  tile("scalar", Shape{}, {});
  tile("rank6", Shape{2, 2, 2, 2, 2, 2}, {2, 1, 2, 1, 2, 1});
  tile("wrong_length", Shape{2, 3}, {2}, kI32, true,
       "Expected multiples argument to be a vector of length 2 but got length 1");
  tile("overflow", Shape{2, 3}, {int64_t{1} << 62, 1}, kI64, true, "overflows");
  tile("negative", Shape{2, 3}, {1, -1}, kI32, true, "Expected multiples[1] >= 0, but got -1");
  tile("negative_fed", Shape{2, 3}, {-2, 1}, kI32, false, "Expected multiples[0] >= 0, but got -2");
}

void AddPadCases(std::vector<OpCase>& cases) {
  auto pad = [&](std::string name, Shape in, Shape pad_shape, std::vector<int64_t> paddings,
                 DType index = kI32, bool constant = true, std::string error = "") {
    AddForAllTypes(cases, {.name = "Pad_" + name,
                           .op = "Pad",
                           .inputs = {Data(in), IntTensor(pad_shape, paddings)},
                           .input_dtypes = {kData, index},
                           .constant = {false, constant},
                           .reference =
                               [paddings](const std::vector<RefTensor>& in) {
                                 return One(PadRef(in[0], paddings));
                               },
                           .expect_error = error});
  };
  pad("matrix", Shape{2, 3}, Shape{2, 2}, {1, 2, 0, 1});
  pad("rank3_fed_int64", Shape{2, 3, 4}, Shape{3, 2}, {0, 0, 1, 1, 2, 0}, kI64, false);
  pad("inner_only", Shape{3, 1, 4}, Shape{3, 2}, {0, 0, 0, 0, 1, 1});
  pad("none", Shape{2, 3}, Shape{2, 2}, {0, 0, 0, 0});
  pad("empty_input", Shape{0, 3}, Shape{2, 2}, {1, 1, 0, 0});
  pad("scalar", Shape{}, Shape{0, 2}, {});
  pad("rank6", Shape{2, 2, 2, 2, 2, 2}, Shape{6, 2}, {1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1});
  pad("negative", Shape{2, 3}, Shape{2, 2}, {-1, 0, 0, 0}, kI32, true,
      "Paddings must be non-negative: -1 0");
  pad("negative_fed", Shape{2, 3}, Shape{2, 2}, {0, 0, 0, -2}, kI32, false,
      "Paddings must be non-negative: 0 -2");
  pad("three_columns", Shape{2, 3}, Shape{2, 3}, {1, 1, 1, 1, 1, 1}, kI32, true,
      "paddings must be a matrix with 2 columns: [2,3]");
  pad("wrong_rank", Shape{2, 3}, Shape{1, 2}, {1, 1}, kI32, true,
      "The first dimension of paddings must be the rank of inputs[1,2] [2,3]");
}

}  // namespace

std::vector<OpCase> ArraySliceCases() {
  std::vector<OpCase> cases;
  AddTransposeCases(cases);
  AddSliceCases(cases);
  AddStridedSliceCases(cases);
  AddTileCases(cases);
  AddPadCases(cases);
  return cases;
}

}  // namespace gradserve::testing
