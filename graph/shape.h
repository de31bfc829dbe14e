// Shape: the dimensions of a tensor. During shape inference a Shape may be partly
// known: a dimension of -1 is unknown, and a shape of unknown rank has no dims.
// A Tensor's shape is always fully defined. Value type; not thread-safe to mutate.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace gradserve {

class TensorShapeProto;

class Shape {
 public:
  static constexpr int64_t kUnknownDim = -1;

  Shape() = default;  // scalar (rank 0)
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(absl::Span<const int64_t> dims) : dims_(dims.begin(), dims.end()) {}
  static Shape UnknownRank() {
    Shape s;
    s.unknown_rank_ = true;
    return s;
  }
  // A shape of known rank whose dims are all unknown.
  static Shape UnknownDims(int rank) {
    Shape s;
    s.dims_.assign(rank, kUnknownDim);
    return s;
  }

  bool unknown_rank() const { return unknown_rank_; }
  // -1 when the rank is unknown.
  int rank() const { return unknown_rank_ ? -1 : static_cast<int>(dims_.size()); }
  int64_t dim(int i) const { return dims_[i]; }
  absl::Span<const int64_t> dims() const { return dims_; }
  void set_dim(int i, int64_t size) { dims_[i] = size; }
  void AddDim(int64_t size) { dims_.push_back(size); }
  void InsertDim(int i, int64_t size) { dims_.insert(dims_.begin() + i, size); }
  void RemoveDim(int i) { dims_.erase(dims_.begin() + i); }

  bool IsFullyDefined() const;
  // Product of the dims; -1 if any is unknown.
  int64_t num_elements() const;

  // True when every known dimension agrees (unknowns match anything).
  bool IsCompatibleWith(const Shape& other) const;
  // The most specific shape compatible with both, or InvalidArgument.
  absl::StatusOr<Shape> Merge(const Shape& other) const;

  // "[2,-1,3]", or "<unknown>" for unknown rank.
  std::string DebugString() const;
  bool operator==(const Shape& other) const {
    return unknown_rank_ == other.unknown_rank_ && dims_ == other.dims_;
  }
  bool operator!=(const Shape& other) const { return !(*this == other); }

  void ToProto(TensorShapeProto* proto) const;
  static Shape FromProto(const TensorShapeProto& proto);

 private:
  absl::InlinedVector<int64_t, 6> dims_;
  bool unknown_rank_ = false;
};

// NumPy broadcasting of two (possibly partial) shapes; InvalidArgument names both
// shapes when they cannot broadcast.
absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b);

}  // namespace gradserve
