// StridedSlice's index arithmetic (contract in graph/ops/array_ops.h).
//
// Note [StridedSlice spec]: the op takes a "sparse" spec, one entry per element of
// begin/end/strides, where an entry may be an ellipsis, a new axis or a shrunk
// index, and expands it into a "dense" spec with one entry per input dimension:
// the ellipsis stands for as many whole dimensions as the other entries leave,
// new axes take no input dimension, and a spec without an ellipsis acts as if one
// ended it. Each dense entry is then made canonical: a masked bound becomes the
// dimension's end (the far ends for negative strides), negative bounds count from
// the end, bounds clamp to the dimension, and a shrunk index takes exactly one
// element (out of range is an error, not a clamp). This is TensorFlow's
// ValidateStridedSliceOp (tensorflow/core/util/strided_slice_op.cc) step by step,
// including its quirks (a shrunk index ignores begin_mask), so graphs that Python
// slicing produced give TensorFlow's shapes.
#include <algorithm>

#include "graph/ops/array_ops.h"
#include "graph/status.h"

namespace gradserve::array_shape {
namespace {

constexpr int kNewAxis = -1;
constexpr int kShrinkAxis = -2;
// Masks are int attrs; more entries than bits cannot be addressed.
constexpr int64_t kMaxSparseDims = 62;

struct DenseSpec {
  Ints begin, end, strides;
  std::vector<bool> begin_mask, end_mask, shrink;
  // Per final dimension: the dense dimension it comes from, or kNewAxis; kShrinkAxis
  // entries produce no dimension.
  std::vector<int> final_from;
};

absl::StatusOr<DenseSpec> BuildDenseSpec(int rank, const MaybeInts& begin, const MaybeInts& end,
                                         const Ints& strides, const StridedSliceMasks& m) {
  const int sparse_dims = static_cast<int>(strides.size());
  int64_t ellipsis = m.ellipsis;
  int dims = sparse_dims;
  int new_axes_after_ellipsis = 0;
  bool ellipsis_seen = false;
  for (int i = 0; i < dims; ++i) {
    if (ellipsis_seen && (m.new_axis & (int64_t{1} << i))) ++new_axes_after_ellipsis;
    if (ellipsis & (int64_t{1} << i)) ellipsis_seen = true;
  }
  if (!ellipsis_seen) ellipsis |= int64_t{1} << dims++;

  DenseSpec d{.begin = Ints(rank, 0),
              .end = Ints(rank, 0),
              .strides = Ints(rank, 1),
              .begin_mask = std::vector<bool>(rank, false),
              .end_mask = std::vector<bool>(rank, false),
              .shrink = std::vector<bool>(rank, false)};
  int full = 0;
  for (int i = 0; i < dims; ++i) {
    const int64_t bit = int64_t{1} << i;
    if (ellipsis & bit) {
      const int next = std::min(rank - (dims - i) + 1 + new_axes_after_ellipsis, rank);
      for (; full < next; ++full) {
        d.begin_mask[full] = d.end_mask[full] = true;
        d.final_from.push_back(full);
      }
    } else if (m.new_axis & bit) {
      d.final_from.push_back(kNewAxis);
    } else {
      if (full == rank) {
        return absl::InvalidArgumentError(absl::StrCat("Index out of range using input dim ", full,
                                                       "; input has only ", rank, " dims"));
      }
      if (begin) d.begin[full] = (*begin)[i];
      if (end) d.end[full] = (*end)[i];
      d.strides[full] = strides[i];
      d.begin_mask[full] = (m.begin & bit) != 0;
      d.end_mask[full] = (m.end & bit) != 0;
      d.shrink[full] = (m.shrink_axis & bit) != 0;
      d.final_from.push_back(d.shrink[full] ? kShrinkAxis : full);
      ++full;
    }
  }
  return d;
}

// Elements taken from [begin, end) by `stride`: ceil(interval / stride), or 0 when
// the interval runs against the stride.
int64_t IntervalSize(int64_t interval, int64_t stride) {
  if (interval == 0 || ((interval < 0) != (stride < 0))) return 0;
  return interval / stride + (interval % stride != 0 ? 1 : 0);
}

}  // namespace

absl::StatusOr<StridedSlicePlan> StridedSlice(const Shape& input, const Shape& begin_shape,
                                              const MaybeInts& begin, const Shape& end_shape,
                                              const MaybeInts& end, const Shape& strides_shape,
                                              const MaybeInts& strides,
                                              const StridedSliceMasks& masks) {
  const Shape* specs[] = {&begin_shape, &end_shape, &strides_shape};
  const MaybeInts* values[] = {&begin, &end, &strides};
  int64_t length = -1;
  bool ok = true;
  for (int k = 0; k < 3; ++k) {
    if (specs[k]->rank() >= 0 && specs[k]->rank() != 1) ok = false;
    int64_t n = *values[k] ? static_cast<int64_t>((*values[k])->size())
                           : (specs[k]->rank() == 1 ? specs[k]->dim(0) : -1);
    if (n >= 0 && length >= 0 && n != length) ok = false;
    if (n >= 0) length = n;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Expected begin, end, and strides to be 1D equal size tensors, but got shapes ",
        begin_shape.DebugString(), ", ", end_shape.DebugString(), ", and ",
        strides_shape.DebugString(), " instead."));
  }
  if (length > kMaxSparseDims) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StridedSlice spec has ", length, " entries; at most ", kMaxSparseDims, " are supported"));
  }
  const uint64_t ellipsis = static_cast<uint64_t>(masks.ellipsis);
  if (ellipsis & (ellipsis - 1)) {
    return absl::InvalidArgumentError("Multiple ellipses in slice spec not allowed");
  }
  if (input.unknown_rank() || !strides) return StridedSlicePlan{};
  StridedSlicePlan plan;

  const int rank = input.rank();
  GS_ASSIGN_OR_RETURN(DenseSpec d, BuildDenseSpec(rank, begin, end, *strides, masks));
  const bool bounds_known = begin.has_value() && end.has_value();
  plan.begin.assign(rank, 0);
  plan.strides.assign(rank, 1);
  for (int i = 0; i < rank; ++i) {
    int64_t b = d.begin[i], e = d.end[i];
    const int64_t s = d.strides[i], dim = input.dim(i);
    const bool shrink = d.shrink[i];
    if (s == 0) {
      return absl::InvalidArgumentError(absl::StrCat("strides[", i, "] must be non-zero"));
    }
    if (shrink && s <= 0) {
      return absl::InvalidArgumentError("only stride 1 allowed on non-range indexing.");
    }
    plan.strides[i] = s;
    if (dim < 0) {
      plan.processing_dims.push_back(shrink ? 1 : -1);
      continue;
    }
    // Valid bounds: [0, dim] going forward, [-1, dim - 1] going backward.
    const int64_t lo = s > 0 ? 0 : -1, hi = s > 0 ? dim : dim - 1;
    auto canonical = [&](int64_t x, bool masked, bool is_end) {
      if (masked) return (s > 0) != is_end ? lo : hi;
      const int64_t fwd = x < 0 ? dim + x : x;
      return std::clamp(fwd, lo, hi);
    };
    if (bounds_known) {
      if (shrink) {
        b = b < 0 ? dim + b : b;
        e = b + 1;
        if (b < 0 || b >= dim) {
          return absl::InvalidArgumentError(
              absl::StrCat("slice index ", b, " of dimension ", i, " out of bounds."));
        }
      } else {
        b = canonical(b, d.begin_mask[i], false);
        e = canonical(e, d.end_mask[i], true);
      }
      plan.begin[i] = b;
      plan.processing_dims.push_back(IntervalSize(e - b, s));
    } else if (shrink) {
      plan.processing_dims.push_back(1);
    } else if (d.begin_mask[i] && d.end_mask[i]) {
      plan.begin[i] = s > 0 ? 0 : dim - 1;
      plan.processing_dims.push_back(IntervalSize(s < 0 ? -dim : dim, s));
    } else {
      plan.processing_dims.push_back(-1);
    }
  }
  Ints final_dims;
  for (int from : d.final_from) {
    if (from >= 0) {
      final_dims.push_back(plan.processing_dims[from]);
    } else if (from == kNewAxis) {
      final_dims.push_back(1);
    }
  }
  plan.final_shape = Shape(absl::MakeConstSpan(final_dims));
  return plan;
}

}  // namespace gradserve::array_shape
