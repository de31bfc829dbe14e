#include "graph/shape.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/graph.pb.h"

namespace gradserve {

bool Shape::IsFullyDefined() const {
  if (unknown_rank_) return false;
  return std::none_of(dims_.begin(), dims_.end(), [](int64_t d) { return d < 0; });
}

int64_t Shape::num_elements() const {
  if (!IsFullyDefined()) return -1;
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

bool Shape::IsCompatibleWith(const Shape& other) const {
  if (unknown_rank_ || other.unknown_rank_) return true;
  if (dims_.size() != other.dims_.size()) return false;
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (dims_[i] >= 0 && other.dims_[i] >= 0 && dims_[i] != other.dims_[i]) return false;
  }
  return true;
}

absl::StatusOr<Shape> Shape::Merge(const Shape& other) const {
  if (!IsCompatibleWith(other)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shapes ", DebugString(), " and ", other.DebugString(), " are incompatible"));
  }
  if (unknown_rank_) return other;
  if (other.unknown_rank_) return *this;
  Shape merged = *this;
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (merged.dims_[i] < 0) merged.dims_[i] = other.dims_[i];
  }
  return merged;
}

std::string Shape::DebugString() const {
  if (unknown_rank_) return "<unknown>";
  return absl::StrCat("[", absl::StrJoin(dims_, ","), "]");
}

void Shape::ToProto(TensorShapeProto* proto) const {
  proto->Clear();
  if (unknown_rank_) {
    proto->set_unknown_rank(true);
    return;
  }
  for (int64_t d : dims_) proto->add_dim()->set_size(d);
}

Shape Shape::FromProto(const TensorShapeProto& proto) {
  if (proto.unknown_rank()) return UnknownRank();
  Shape s;
  for (const auto& d : proto.dim()) s.AddDim(d.size() < 0 ? kUnknownDim : d.size());
  return s;
}

absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  if (a.unknown_rank() || b.unknown_rank()) return Shape::UnknownRank();
  const int rank = std::max(a.rank(), b.rank());
  Shape out = Shape::UnknownDims(rank);
  for (int i = 0; i < rank; ++i) {
    // Align from the trailing dimension, as NumPy does.
    const int ia = a.rank() - rank + i, ib = b.rank() - rank + i;
    const int64_t da = ia >= 0 ? a.dim(ia) : 1;
    const int64_t db = ib >= 0 ? b.dim(ib) : 1;
    int64_t d;
    if (da == 1) {
      d = db;
    } else if (db == 1) {
      d = da;
    } else if (da < 0 || db < 0) {
      d = da < 0 ? db : da;  // the known one, or unknown if both are
    } else if (da == db) {
      d = da;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("shapes ", a.DebugString(), " and ",
                                                     b.DebugString(),
                                                     " cannot be broadcast together"));
    }
    out.set_dim(i, d);
  }
  return out;
}

}  // namespace gradserve
