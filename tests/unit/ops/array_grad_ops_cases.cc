// Conformance cases for the array family's backward ops (graph/ops/array_grad_ops.cc).
#include "graph/attr.h"
#include "tests/unit/ops/array_case_util.h"

namespace gradserve::testing {
namespace {

using namespace array_cases;  // NOLINT: test-local helpers

RefTensor Ints(std::vector<double> v) {
  const Shape shape{static_cast<int64_t>(v.size())};
  return Values(shape, std::move(v));
}

// out = zeros(shape); out[begin + k * strides] += dy[k] for k over `counts`
// (the slice's extent per input dimension, begin already normalized).
Reference ScatterReference(std::vector<int64_t> begin, std::vector<int64_t> strides,
                           std::vector<int64_t> counts) {
  return [=](const std::vector<RefTensor>& in) {
    Shape shape;
    for (double d : in[0].v) shape.AddDim(static_cast<int64_t>(d));
    RefTensor out{shape, std::vector<double>(shape.num_elements(), 0.0)};
    const std::vector<int64_t> st = Strides(shape);
    std::vector<int64_t> k(counts.size(), 0);
    for (double g : in[4].v) {
      int64_t pos = 0;
      for (size_t i = 0; i < k.size(); ++i) pos += (begin[i] + k[i] * strides[i]) * st[i];
      out.v[pos] += g;
      for (int i = static_cast<int>(k.size()) - 1; i >= 0; --i) {
        if (++k[i] < counts[i]) break;
        k[i] = 0;
      }
    }
    return One(out);
  };
}

AttrMap Masks(int64_t begin, int64_t end, int64_t shrink) {
  return {{"begin_mask", MakeAttr(begin)},
          {"end_mask", MakeAttr(end)},
          {"ellipsis_mask", MakeAttr(0)},
          {"new_axis_mask", MakeAttr(0)},
          {"shrink_axis_mask", MakeAttr(shrink)}};
}

OpCase SliceGradCase(std::string name, RefTensor shape, RefTensor begin, RefTensor end,
                     RefTensor strides, const Shape& dy_shape, AttrMap attrs, Reference ref) {
  return {.name = std::move(name),
          .op = "StridedSliceGrad",
          .inputs = {std::move(shape), std::move(begin), std::move(end), std::move(strides),
                     Random(dy_shape)},
          .input_dtypes = {DType::kInt32, DType::kInt32, DType::kInt32, DType::kInt32,
                           DType::kInvalid},
          .constant = {true, true, true, true, false},
          .attrs = std::move(attrs),
          .reference = std::move(ref)};
}

// out[ids[i], ...] += data[i, ...], dropping negative ids.
std::vector<RefTensor> SegmentSumReference(const std::vector<RefTensor>& in) {
  const RefTensor &data = in[0], &ids = in[1];
  const int64_t num = static_cast<int64_t>(in[2].v[0]);
  Shape shape{num};
  for (int i = ids.rank(); i < data.rank(); ++i) shape.AddDim(data.dim(i));
  const int64_t inner = ids.size() == 0 ? 0 : data.size() / ids.size();
  RefTensor out{shape, std::vector<double>(shape.num_elements(), 0.0)};
  for (int64_t i = 0; i < ids.size(); ++i) {
    const int64_t id = static_cast<int64_t>(ids.v[i]);
    if (id < 0) continue;
    for (int64_t j = 0; j < inner; ++j) out.v[id * inner + j] += data.v[i * inner + j];
  }
  return One(out);
}

OpCase SegmentSumCase(std::string name, const Shape& data_shape, RefTensor ids, int64_t num) {
  return {.name = std::move(name),
          .op = "UnsortedSegmentSum",
          .inputs = {RandomInt(data_shape, -9, 9), std::move(ids), Scalar(static_cast<double>(num))},
          .input_dtypes = {DType::kInvalid, DType::kInt32, DType::kInt32},
          .constant = {false, false, true},
          .dtypes = {DType::kFloat, DType::kDouble, DType::kInt32, DType::kInt64},
          .reference = SegmentSumReference};
}

}  // namespace

std::vector<OpCase> ArrayGradOpCases() {
  std::vector<OpCase> cases;
  // Segment 3 gets nothing; segment 1 gets three rows.
  cases.push_back(SegmentSumCase("UnsortedSegmentSum_rows", Shape{5, 2}, Ints({1, 0, 1, 2, 1}), 4));
  cases.push_back(SegmentSumCase("UnsortedSegmentSum_2d_ids", Shape{2, 3, 2},
                                 Values(Shape{2, 3}, {0, 2, 2, 1, 0, 0}), 3));
  cases.push_back(SegmentSumCase("UnsortedSegmentSum_negative_dropped", Shape{4},
                                 Ints({-1, 1, 0, -1}), 2));
  OpCase out_of_range = SegmentSumCase("UnsortedSegmentSum_id_out_of_range", Shape{3, 2},
                                       Ints({0, 2, 1}), 2);
  out_of_range.expect_error = "is not in [0, 2)";
  cases.push_back(std::move(out_of_range));
  // x[1:3, ::2] of a [3, 5] x: rows 1-2, columns 0, 2, 4.
  cases.push_back(SliceGradCase("StridedSliceGrad_strided", Ints({3, 5}), Ints({1, 0}),
                                Ints({3, 0}), Ints({1, 2}), Shape{2, 3}, Masks(0, 2, 0),
                                ScatterReference({1, 0}, {1, 2}, {2, 3})));
  // x[-1:0:-2] of a [6] x: elements 5, 3, 1.
  cases.push_back(SliceGradCase("StridedSliceGrad_negative_stride", Ints({6}), Ints({-1}),
                                Ints({0}), Ints({-2}), Shape{3}, Masks(0, 0, 0),
                                ScatterReference({5}, {-2}, {3})));
  // x[2] of a [4, 3] x (shrink axis 0): dy is row 2.
  cases.push_back(SliceGradCase("StridedSliceGrad_shrink", Ints({4, 3}), Ints({2}), Ints({3}),
                                Ints({1}), Shape{3}, Masks(0, 0, 1),
                                ScatterReference({2, 0}, {1, 1}, {1, 3})));
  OpCase bad = SliceGradCase("StridedSliceGrad_wrong_dy_shape", Ints({3, 5}), Ints({1, 0}),
                             Ints({3, 0}), Ints({1, 2}), Shape{2, 2}, Masks(0, 2, 0),
                             ScatterReference({1, 0}, {1, 2}, {2, 3}));
  bad.expect_error = "dy has shape";
  cases.push_back(std::move(bad));
  return cases;
}

}  // namespace gradserve::testing
