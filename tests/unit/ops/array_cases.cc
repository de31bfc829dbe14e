// Conformance cases for the array op family (see op_test_util.h): sources,
// identities, metadata ops, fills, ConcatV2, Pack, GatherV2, OneHot and
// SelectV2. The slicing and reordering ops are in array_slice_cases.cc.
#include "graph/attr.h"
#include "tests/unit/ops/array_case_util.h"

namespace gradserve::testing {

std::vector<OpCase> ArrayGatherCases();  // array_gather_cases.cc
std::vector<OpCase> ArraySliceCases();   // array_slice_cases.cc
std::vector<OpCase> ArrayGradOpCases();  // array_grad_ops_cases.cc

namespace {

using namespace array_cases;  // NOLINT: test-local helpers

void AddSourceCases(std::vector<OpCase>& cases) {
  const std::vector<DType> all = AllTypes();
  auto identity = [](const std::vector<RefTensor>& in) { return One(in[0]); };
  const RefTensor value = RandomInt(Shape{2, 3}, 0, 1);
  cases.push_back(
      {.name = "Const",
       .op = "Const",
       .dtypes = all,
       .reference = [value](const std::vector<RefTensor>&) { return One(value); },
       .typed_attrs =
           [value](DType t) {
             return AttrMap{{"value", MakeAttr(ToTensor(value, t))}, {"dtype", MakeAttr(t)}};
           }});
  for (const char* op : {"Identity", "StopGradient"}) {
    AddForAllTypes(cases,
                   {.name = op, .op = op, .inputs = {Data(Shape{4, 1, 3})}, .reference = identity});
  }
  cases.push_back({.name = "PlaceholderWithDefault",
                   .op = "PlaceholderWithDefault",
                   .inputs = {Random(Shape{2, 2})},
                   .attrs = {{"shape", MakeAttr(Shape{-1, 2})}},
                   .reference = identity});
  cases.push_back({.name = "Placeholder_unfed",
                   .op = "Placeholder",
                   .attrs = {{"dtype", MakeAttr(DType::kFloat)}, {"shape", MakeAttr(Shape{2})}},
                   .dtypes = {DType::kFloat},
                   .expect_error = "must be fed"});
  cases.push_back(
      {.name = "NoOp",
       .op = "NoOp",
       .dtypes = {DType::kFloat},
       .reference = [](const std::vector<RefTensor>&) { return std::vector<RefTensor>{}; }});
}

// Reshape, Squeeze, ExpandDims, Shape: the output relabels the input.
void AddMetadataCases(std::vector<OpCase>& cases) {
  auto reshape = [&](std::string name, Shape in, std::vector<int64_t> sizes, Shape want,
                     DType index = kI32, bool constant = true, std::string error = "") {
    AddForAllTypes(cases, {.name = "Reshape_" + name,
                           .op = "Reshape",
                           .inputs = {Data(in), IntVec(sizes)},
                           .input_dtypes = {kData, index},
                           .constant = {false, constant},
                           .reference = Relabeled(want),
                           .expect_error = error});
  };
  reshape("infer_dim", Shape{2, 3, 4}, {4, -1}, Shape{4, 6});
  reshape("fed_int64", Shape{2, 3, 4}, {3, 8}, Shape{3, 8}, kI64, false);
  reshape("to_scalar", Shape{1, 1}, {}, Shape{});
  reshape("empty", Shape{0, 2}, {0, -1}, Shape{0, 2});
  reshape("empty_infer_zero", Shape{3, 0}, {-1, 2}, Shape{0, 2});
  reshape("bad_count", Shape{2, 3}, {4}, {}, kI32, true, "but the requested shape has 4");
  reshape("bad_count_fed", Shape{2, 3}, {5}, {}, kI32, false, "but the requested shape has 5");
  reshape("two_unknown", Shape{2, 3}, {-1, -1}, {}, kI32, true, "Only one input size may be -1");
  reshape("not_multiple", Shape{2, 3}, {-1, 4}, {}, kI32, true, "requires a multiple of 4");
  reshape("negative", Shape{2, 3}, {-2, 3}, {}, kI32, true, "Size 0 must be non-negative");

  auto squeeze = [&](std::string name, Shape in, std::vector<int64_t> dims, Shape want,
                     std::string error = "") {
    AddForAllTypes(cases, {.name = "Squeeze_" + name,
                           .op = "Squeeze",
                           .inputs = {Data(in)},
                           .attrs = {{"squeeze_dims", MakeAttr(dims)}},
                           .reference = Relabeled(want),
                           .expect_error = error});
  };
  squeeze("all", Shape{1, 3, 1, 2}, {}, Shape{3, 2});
  squeeze("negative_dim", Shape{1, 3, 1}, {-1}, Shape{1, 3});
  squeeze("empty", Shape{1, 0, 1}, {0}, Shape{0, 1});
  squeeze("not_one", Shape{2, 3}, {0}, {},
          "Can not squeeze dim[0], expected a dimension of 1, got 2");
  squeeze("out_of_range", Shape{1, 3}, {2}, {}, "Tried to squeeze dim index 2");

  auto expand = [&](std::string name, Shape in, int64_t dim, Shape want, DType index = kI32,
                    bool constant = true, std::string error = "") {
    AddForAllTypes(cases, {.name = "ExpandDims_" + name,
                           .op = "ExpandDims",
                           .inputs = {Data(in), IntScalar(dim)},
                           .input_dtypes = {kData, index},
                           .constant = {false, constant},
                           .reference = Relabeled(want),
                           .expect_error = error});
  };
  expand("last", Shape{2, 3}, -1, Shape{2, 3, 1});
  expand("front_fed_int64", Shape{2, 3}, 0, Shape{1, 2, 3}, kI64, false);
  expand("middle_negative", Shape{2, 3}, -2, Shape{2, 1, 3});
  expand("scalar", Shape{}, 0, Shape{1});
  expand("empty", Shape{0, 3}, 1, Shape{0, 1, 3});
  expand("out_of_range", Shape{2, 3}, 3, {}, kI32, true, "Tried to expand dim index 3");
  AddForAllTypes(cases, {.name = "ExpandDims_two_dims",
                         .op = "ExpandDims",
                         .inputs = {Data(Shape{2}), IntVec({0, 1})},
                         .input_dtypes = {kData, kI32},
                         .constant = {false, true},
                         .expect_error = "'dim' must be a tensor with a single value"});

  for (const Shape& in : {Shape{2, 0, 5}, Shape{}, Shape{3, 1}}) {
    for (DType out_type : {kI32, kI64}) {
      std::vector<double> dims(in.dims().begin(), in.dims().end());
      const RefTensor want = Values(Shape{in.rank()}, dims);
      AddForAllTypes(cases,
                     {.name = absl::StrCat("Shape_rank", in.rank(), "_", DTypeName(out_type)),
                      .op = "Shape",
                      .inputs = {Data(in)},
                      .attrs = {{"out_type", MakeAttr(out_type)}},
                      .reference = [want](const std::vector<RefTensor>&) { return One(want); }});
    }
  }
}

void AddFillCases(std::vector<OpCase>& cases) {
  auto fill = [&](std::string name, std::vector<int64_t> dims, DType index, bool constant,
                  std::string error = "", Shape value_shape = Shape{}) {
    Shape want(absl::MakeConstSpan(dims));
    AddForAllTypes(
        cases,
        {.name = "Fill_" + name,
         .op = "Fill",
         .inputs = {IntVec(dims), Data(value_shape)},
         .input_dtypes = {index, kData},
         .constant = {constant, false},
         .reference =
             [want](const std::vector<RefTensor>& in) {
               return One(RefTensor{want, std::vector<double>(want.num_elements(), in[1].v[0])});
             },
         .expect_error = error});
  };
  fill("matrix", {2, 3}, kI32, true);
  fill("fed_int64", {4, 1, 2}, kI64, false);
  fill("scalar", {}, kI32, true);
  fill("empty", {0, 4}, kI32, true);
  fill("negative", {2, -1}, kI32, true, "Dimension -1 must be >= 0");
  fill("negative_fed", {2, -1}, kI32, false, "Dimension -1 must be >= 0");
  fill("overflow", {int64_t{1} << 40, int64_t{1} << 40}, kI64, true, "has too many elements");
  fill("value_not_scalar", {2}, kI32, true, "value must be a scalar", Shape{1});

  for (const char* op : {"ZerosLike", "OnesLike"}) {
    const double v = std::string(op) == "OnesLike" ? 1.0 : 0.0;
    for (const Shape& shape : {Shape{3, 4}, Shape{}, Shape{0, 3}}) {
      AddForAllTypes(cases,
                     {.name = absl::StrCat(op, "_rank", shape.rank(), "_", shape.num_elements()),
                      .op = op,
                      .inputs = {Data(shape)},
                      .reference = [v](const std::vector<RefTensor>& in) {
                        return One(Map(in[0], [v](double) { return v; }));
                      }});
    }
  }
}

// Concatenation of `values` along `axis` (already normalized).
RefTensor ConcatRef(const std::vector<RefTensor>& values, int axis) {
  Shape out_shape = values[0].shape;
  int64_t total = 0;
  for (const RefTensor& v : values) total += v.dim(axis);
  out_shape.set_dim(axis, total);
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  for (int64_t f = 0; f < out.size(); ++f) {
    std::vector<int64_t> idx = Unravel(f, out_shape);
    size_t k = 0;
    while (idx[axis] >= values[k].dim(axis)) idx[axis] -= values[k++].dim(axis);
    out.v[f] = values[k].v[Ravel(idx, values[k].shape)];
  }
  return out;
}

void AddConcatPackCases(std::vector<OpCase>& cases) {
  auto concat = [&](std::string name, std::vector<Shape> shapes, int64_t axis, DType index = kI32,
                    bool constant = true, std::string error = "") {
    OpCase c{.name = "ConcatV2_" + name,
             .op = "ConcatV2",
             .attrs = {{"N", MakeAttr(static_cast<int64_t>(shapes.size()))}},
             .expect_error = error};
    for (const Shape& s : shapes) {
      c.inputs.push_back(Data(s));
      c.input_dtypes.push_back(kData);
      c.constant.push_back(false);
    }
    c.inputs.push_back(IntScalar(axis));
    c.input_dtypes.push_back(index);
    c.constant.push_back(constant);
    const int rank = shapes[0].rank();
    const int n = static_cast<int>(shapes.size());
    c.reference = [n, axis, rank](const std::vector<RefTensor>& in) {
      return One(
          ConcatRef({in.begin(), in.begin() + n}, static_cast<int>(axis < 0 ? axis + rank : axis)));
    };
    AddForAllTypes(cases, std::move(c));
  };
  concat("axis0", {Shape{2, 3}, Shape{1, 3}, Shape{4, 3}}, 0);
  concat("last_negative", {Shape{2, 3}, Shape{2, 5}}, -1);
  concat("middle_fed_int64", {Shape{2, 1, 3}, Shape{2, 4, 3}}, 1, kI64, false);
  concat("empty_part", {Shape{2, 0}, Shape{2, 3}}, 1);
  concat("all_empty", {Shape{0, 3}, Shape{0, 3}}, 1);
  concat("mismatch", {Shape{2, 3}, Shape{3, 2}}, 0, kI32, true,
         "Dimension 1 in both shapes must be equal");
  concat("axis_out_of_range", {Shape{2, 3}, Shape{2, 3}}, 2, kI32, true,
         "Expected concatenating dimensions in the range [-2, 2), but got 2");
  concat("axis_out_of_range_fed", {Shape{2, 3}, Shape{2, 3}}, -3, kI32, false,
         "Expected concatenating dimensions in the range [-2, 2), but got -3");
  concat("rank_mismatch", {Shape{2, 3}, Shape{3}}, 0, kI32, true,
         "Ranks of all input tensors should match");
  concat("scalars", {Shape{}, Shape{}}, 0, kI32, true, "Can't concatenate scalars");

  auto pack = [&](std::string name, std::vector<Shape> shapes, int64_t axis,
                  std::string error = "") {
    OpCase c{
        .name = "Pack_" + name,
        .op = "Pack",
        .attrs = {{"N", MakeAttr(static_cast<int64_t>(shapes.size()))}, {"axis", MakeAttr(axis)}},
        .expect_error = error};
    for (const Shape& s : shapes) c.inputs.push_back(Data(s));
    const int rank = shapes[0].rank();
    c.reference = [axis, rank](const std::vector<RefTensor>& in) {
      const int ax = static_cast<int>(axis < 0 ? axis + rank + 1 : axis);
      std::vector<RefTensor> expanded = in;
      for (RefTensor& t : expanded) t.shape.InsertDim(ax, 1);
      return One(ConcatRef(expanded, ax));
    };
    AddForAllTypes(cases, std::move(c));
  };
  pack("axis0", {Shape{2, 3}, Shape{2, 3}, Shape{2, 3}}, 0);
  pack("last_negative", {Shape{2, 3}, Shape{2, 3}}, -1);
  pack("middle", {Shape{2, 3}, Shape{2, 3}}, 1);
  pack("scalars", {Shape{}, Shape{}, Shape{}}, 0);
  pack("single", {Shape{4}}, 1);
  pack("empty", {Shape{0, 3}, Shape{0, 3}}, 1);
  pack("mismatch", {Shape{2}, Shape{3}}, 0, "Shapes of all inputs must match");
  pack("axis_out_of_range", {Shape{2}, Shape{2}}, 3, "axis = 3 not in [-2, 2)");
}

}  // namespace

std::vector<OpCase> ArrayOpCases() {
  std::vector<OpCase> cases;
  AddSourceCases(cases);
  AddMetadataCases(cases);
  AddFillCases(cases);
  AddConcatPackCases(cases);
  for (auto more : {ArrayGatherCases, ArraySliceCases, ArrayGradOpCases}) {
    for (OpCase& c : more()) cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace gradserve::testing
