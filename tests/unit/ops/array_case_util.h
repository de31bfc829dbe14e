// Helpers shared by the array family's conformance cases (array_cases.cc,
// array_slice_cases.cc): dtype lists, index inputs, and row-major index
// arithmetic for the float64 references.
#pragma once

#include <vector>

#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing::array_cases {

inline constexpr DType kData = DType::kInvalid;  // an input of the dtype under test
inline constexpr DType kI32 = DType::kInt32;
inline constexpr DType kI64 = DType::kInt64;

// A reference's single output.
inline std::vector<RefTensor> One(RefTensor t) { return {std::move(t)}; }

// The dtypes the data-moving array kernels are registered for, without bool.
inline std::vector<DType> NumericTypes() {
  return {DType::kFloat, DType::kDouble, DType::kHalf,  DType::kBFloat16, DType::kInt8,
          DType::kUInt8, DType::kInt16,  DType::kInt32, DType::kInt64};
}
inline std::vector<DType> AllTypes() {
  std::vector<DType> t = NumericTypes();
  t.push_back(DType::kBool);
  return t;
}

// Values every array dtype but bool holds exactly, and distinct enough to show
// a misplaced element.
inline RefTensor Data(const Shape& shape) { return RandomInt(shape, 0, 100); }

// An integer vector, matrix or scalar (shapes, axes, indices).
inline RefTensor IntTensor(const Shape& shape, const std::vector<int64_t>& v) {
  return Values(shape, std::vector<double>(v.begin(), v.end()));
}
inline RefTensor IntVec(const std::vector<int64_t>& v) {
  return IntTensor(Shape{static_cast<int64_t>(v.size())}, v);
}
inline RefTensor IntScalar(int64_t v) { return Scalar(static_cast<double>(v)); }

inline std::vector<int64_t> Unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.rank());
  for (int i = shape.rank() - 1; i >= 0; --i) {
    idx[i] = flat % shape.dim(i);
    flat /= shape.dim(i);
  }
  return idx;
}
inline int64_t Ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t flat = 0;
  for (int i = 0; i < shape.rank(); ++i) flat = flat * shape.dim(i) + idx[i];
  return flat;
}

// The elements of `in` at every combination of per-dimension indices
// (row-major), with shape `out_shape` (its element count is the product of the
// list sizes).
inline RefTensor Pick(const RefTensor& in, const std::vector<std::vector<int64_t>>& idx,
                      const Shape& out_shape) {
  Shape grid;
  for (const auto& l : idx) grid.AddDim(static_cast<int64_t>(l.size()));
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  for (int64_t f = 0; f < out.size(); ++f) {
    const std::vector<int64_t> g = Unravel(f, grid);
    std::vector<int64_t> src(g.size());
    for (size_t d = 0; d < g.size(); ++d) src[d] = idx[d][g[d]];
    out.v[f] = in.v[Ravel(src, in.shape)];
  }
  return out;
}

// Python's range(begin, end, step).
inline std::vector<int64_t> Range(int64_t begin, int64_t end, int64_t step = 1) {
  std::vector<int64_t> r;
  for (int64_t i = begin; step > 0 ? i < end : i > end; i += step) r.push_back(i);
  return r;
}

// Pushes `c` for the numeric dtypes, and a copy for bool whose data inputs
// (those of the dtype under test) are redrawn as 0/1; the test names stay
// unique since they end in the dtype.
inline void AddForAllTypes(std::vector<OpCase>& cases, OpCase c) {
  OpCase b = c;
  b.dtypes = {DType::kBool};
  for (size_t i = 0; i < b.inputs.size(); ++i) {
    const bool data = i >= b.input_dtypes.size() || b.input_dtypes[i] == DType::kInvalid;
    if (data) b.inputs[i] = RandomInt(b.inputs[i].shape, 0, 1);
  }
  c.dtypes = NumericTypes();
  cases.push_back(std::move(c));
  cases.push_back(std::move(b));
}

// A reference that returns `in[0]`'s values with shape `shape` (metadata ops).
inline Reference Relabeled(const Shape& shape) {
  return [shape](const std::vector<RefTensor>& in) {
    return std::vector<RefTensor>{RefTensor{shape, in[0].v}};
  };
}

}  // namespace gradserve::testing::array_cases
