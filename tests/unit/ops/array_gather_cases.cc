// Conformance cases for GatherV2, OneHot and SelectV2 (see op_test_util.h).
#include "graph/attr.h"
#include "tests/unit/ops/array_case_util.h"

namespace gradserve::testing {
namespace {

using namespace array_cases;  // NOLINT: test-local helpers

RefTensor GatherRef(const RefTensor& params, const RefTensor& indices, int axis) {
  Shape out_shape;
  for (int i = 0; i < axis; ++i) out_shape.AddDim(params.dim(i));
  for (int i = 0; i < indices.rank(); ++i) out_shape.AddDim(indices.dim(i));
  for (int i = axis + 1; i < params.rank(); ++i) out_shape.AddDim(params.dim(i));
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  for (int64_t f = 0; f < out.size(); ++f) {
    const std::vector<int64_t> o = Unravel(f, out_shape);
    const std::vector<int64_t> j(o.begin() + axis, o.begin() + axis + indices.rank());
    std::vector<int64_t> p(o.begin(), o.begin() + axis);
    p.push_back(static_cast<int64_t>(indices.v[Ravel(j, indices.shape)]));
    p.insert(p.end(), o.begin() + axis + indices.rank(), o.end());
    out.v[f] = params.v[Ravel(p, params.shape)];
  }
  return out;
}

void AddGatherCases(std::vector<OpCase>& cases) {
  auto gather = [&](std::string name, Shape params, RefTensor indices, DType index_type,
                    int64_t axis, bool axis_constant = true, std::string error = "",
                    int64_t batch_dims = 0) {
    const int rank = params.rank();
    AddForAllTypes(cases, {.name = "GatherV2_" + name,
                           .op = "GatherV2",
                           .inputs = {Data(params), std::move(indices), IntScalar(axis)},
                           .input_dtypes = {kData, index_type, axis_constant ? kI32 : kI64},
                           .constant = {false, false, axis_constant},
                           .attrs = {{"batch_dims", MakeAttr(batch_dims)}},
                           .reference =
                               [axis, rank](const std::vector<RefTensor>& in) {
                                 const int ax = static_cast<int>(axis < 0 ? axis + rank : axis);
                                 return One(GatherRef(in[0], in[1], ax));
                               },
                           .expect_error = error});
  };
  gather("rows", Shape{5, 3}, RandomInt(Shape{4}, 0, 4), kI32, 0);
  gather("middle_fed_axis", Shape{2, 4, 3}, RandomInt(Shape{2, 2}, 0, 3), kI64, 1, false);
  gather("last_negative_axis", Shape{3, 5}, RandomInt(Shape{6}, 0, 4), kI32, -1);
  gather("scalar_index", Shape{3, 5}, IntScalar(2), kI32, 0);
  gather("int16_indices", Shape{6}, RandomInt(Shape{3, 2}, 0, 5), DType::kInt16, 0);
  gather("empty_indices", Shape{5, 3}, RandomInt(Shape{0}, 0, 4), kI32, 0);
  gather("empty_params_rows", Shape{0, 3}, RandomInt(Shape{2}, 0, 2), kI32, 1);
  gather("out_of_range", Shape{5, 3}, IntVec({0, 7}), kI32, 0, true,
         "indices[1] = 7 is not in [0, 5)");
  gather("negative_index", Shape{5, 3}, IntTensor(Shape{2, 2}, {0, 1, 2, -1}), kI64, 0, true,
         "indices[1,1] = -1 is not in [0, 5)");
  gather("axis_out_of_range", Shape{5, 3}, IntVec({0}), kI32, 2, true,
         "Expected axis in the range [-2, 2), but got 2");
  gather("axis_out_of_range_fed", Shape{5, 3}, IntVec({0}), kI32, -3, false,
         "Expected axis in the range [-2, 2), but got -3");
  gather("batch_dims", Shape{2, 3}, IntTensor(Shape{2, 1}, {0, 1}), kI32, 1, true,
         "batch_dims = 1 is not supported", 1);
}

RefTensor OneHotRef(const RefTensor& indices, int64_t depth, int axis, double on, double off) {
  const int ax = axis == -1 ? indices.rank() : axis;
  Shape out_shape = indices.shape;
  out_shape.InsertDim(ax, depth);
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  for (int64_t f = 0; f < out.size(); ++f) {
    std::vector<int64_t> idx = Unravel(f, out_shape);
    const int64_t k = idx[ax];
    idx.erase(idx.begin() + ax);
    out.v[f] = indices.v[Ravel(idx, indices.shape)] == static_cast<double>(k) ? on : off;
  }
  return out;
}

void AddOneHotCases(std::vector<OpCase>& cases) {
  auto one_hot = [&](std::string name, RefTensor indices, DType index_type, int64_t depth,
                     int64_t axis, std::string error = "", Shape on_shape = Shape{}) {
    AddForAllTypes(
        cases,
        {.name = "OneHot_" + name,
         .op = "OneHot",
         .inputs = {std::move(indices), IntScalar(depth), Data(on_shape), Data(Shape{})},
         .input_dtypes = {index_type, kI32, kData, kData},
         .constant = {false, true, false, false},
         .attrs = {{"axis", MakeAttr(axis)}},
         .reference =
             [depth, axis](const std::vector<RefTensor>& in) {
               return One(OneHotRef(in[0], depth, static_cast<int>(axis), in[2].v[0], in[3].v[0]));
             },
         .expect_error = error});
  };
  // Indices outside [0, depth) (negative included) give an all-off row.
  one_hot("last_axis", RandomInt(Shape{2, 3}, -1, 5), kI32, 4, -1);
  one_hot("axis0_uint8", RandomInt(Shape{5}, 0, 4), DType::kUInt8, 3, 0);
  one_hot("axis1_int64", RandomInt(Shape{2, 3}, -2, 3), kI64, 3, 1);
  one_hot("int8", RandomInt(Shape{4}, -3, 3), DType::kInt8, 3, -1);
  one_hot("scalar_index", IntScalar(1), kI64, 3, -1);
  one_hot("zero_depth", RandomInt(Shape{3}, 0, 2), kI32, 0, -1);
  one_hot("empty_indices", RandomInt(Shape{0, 2}, 0, 2), kI32, 3, 1);
  one_hot("negative_depth", IntVec({1}), kI32, -1, -1, "depth must be non-negative, got: -1");
  one_hot("axis_out_of_range", IntVec({1}), kI32, 3, 2,
          "Expected axis to be -1 or between [0, 2).  But received: 2");
  one_hot("axis_below_minus_one", IntVec({1}), kI32, 3, -2, "Expected axis to be -1");
  one_hot("on_not_scalar", IntVec({1}), kI32, 3, -1, "on_value must be a scalar", Shape{1});
}

RefTensor SelectRef(const RefTensor& c, const RefTensor& t, const RefTensor& e,
                    const Shape& out_shape) {
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  // The element of `x` that broadcasts to output index `o`.
  auto at = [&](const RefTensor& x, const std::vector<int64_t>& o) {
    std::vector<int64_t> idx(x.rank());
    for (int i = 0; i < x.rank(); ++i) {
      const int64_t oi = o[out_shape.rank() - x.rank() + i];
      idx[i] = x.dim(i) == 1 ? 0 : oi;
    }
    return x.v[Ravel(idx, x.shape)];
  };
  for (int64_t f = 0; f < out.size(); ++f) {
    const std::vector<int64_t> o = Unravel(f, out_shape);
    out.v[f] = at(c, o) != 0 ? at(t, o) : at(e, o);
  }
  return out;
}

void AddSelectCases(std::vector<OpCase>& cases) {
  auto select = [&](std::string name, Shape c, Shape t, Shape e, Shape want,
                    std::string error = "") {
    AddForAllTypes(cases, {.name = "SelectV2_" + name,
                           .op = "SelectV2",
                           .inputs = {RandomInt(c, 0, 1), Data(t), Data(e)},
                           .input_dtypes = {DType::kBool, kData, kData},
                           .reference =
                               [want](const std::vector<RefTensor>& in) {
                                 return One(SelectRef(in[0], in[1], in[2], want));
                               },
                           .expect_error = error});
  };
  select("same_shape", Shape{3, 4}, Shape{3, 4}, Shape{3, 4}, Shape{3, 4});
  select("three_way", Shape{3, 1}, Shape{1, 4}, Shape{}, Shape{3, 4});
  select("scalar_condition", Shape{}, Shape{2, 3}, Shape{2, 3}, Shape{2, 3});
  select("rank3", Shape{2, 1, 4}, Shape{3, 1}, Shape{2, 3, 4}, Shape{2, 3, 4});
  select("rank6", Shape{2, 1, 2, 1, 2, 1}, Shape{1, 2, 1, 2, 1, 2}, Shape{2},
         Shape{2, 2, 2, 2, 2, 2});
  select("empty", Shape{0, 3}, Shape{3}, Shape{1}, Shape{0, 3});
  select("incompatible", Shape{3}, Shape{2, 2}, Shape{2, 2}, {},
         "condition [3], then [2,2], and else [2,2] must be broadcastable");
}

}  // namespace

std::vector<OpCase> ArrayGatherCases() {
  std::vector<OpCase> cases;
  AddGatherCases(cases);
  AddOneHotCases(cases);
  AddSelectCases(cases);
  return cases;
}

}  // namespace gradserve::testing
