// Output shapes of the array ops (contract in graph/ops/array_ops.h).
#include <algorithm>

#include "absl/strings/str_join.h"
#include "graph/ops/array_ops.h"
#include "graph/status.h"

namespace gradserve::array_shape {
namespace {

template <typename... Args>
absl::Status Err(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

// The length of a vector input: from its values, else from its shape; -1 if unknown.
int64_t VectorLength(const Shape& shape, const MaybeInts& values) {
  if (values) return static_cast<int64_t>(values->size());
  if (shape.rank() == 1) return shape.dim(0);
  return -1;
}

Shape RankOnly(int64_t rank) {
  return rank >= 0 ? Shape::UnknownDims(static_cast<int>(rank)) : Shape::UnknownRank();
}

// `shape` itself, or InvalidArgument when its known dims multiply past int64 (as
// TensorFlow's TensorShape refuses).
absl::StatusOr<Shape> Checked(Shape shape) {
  int64_t n = 1;
  for (int64_t d : shape.dims()) {
    if (d >= 0 && __builtin_mul_overflow(n, d, &n)) {
      return Err("Shape ", shape.DebugString(), " has too many elements");
    }
  }
  return shape;
}

// A scalar, or a vector known to hold one value (TensorFlow accepts both for axes).
bool IsScalarLike(const Shape& s) {
  return s.unknown_rank() || s.rank() == 0 || (s.rank() == 1 && (s.dim(0) == 1 || s.dim(0) < 0));
}

}  // namespace

absl::StatusOr<Shape> Reshape(const Shape& input, const Shape& sizes_shape,
                              const MaybeInts& sizes) {
  if (sizes_shape.rank() > 1) {
    return Err("sizes input must be 1-D, not ", sizes_shape.DebugString());
  }
  if (!sizes) return RankOnly(sizes_shape.rank() == 0 ? 1 : VectorLength(sizes_shape, sizes));
  Shape out;
  int unknown = -1;
  int64_t product = 1;  // of the non-zero known sizes
  bool sizes_have_zero = false;
  for (int i = 0; i < static_cast<int>(sizes->size()); ++i) {
    const int64_t v = (*sizes)[i];
    if (v == -1) {
      if (unknown >= 0) return Err("Only one input size may be -1, not both ", unknown, " and ", i);
      unknown = i;
    } else if (v < 0) {
      return Err("Size ", i, " must be non-negative, not ", v);
    } else if (v == 0) {
      sizes_have_zero = true;
    } else if (__builtin_mul_overflow(product, v, &product)) {
      return Err("Reshape sizes ", absl::StrJoin(*sizes, ","), " have too many elements");
    }
    out.AddDim(v);
  }
  if (!input.IsFullyDefined()) return out;
  if (unknown >= 0) {
    int64_t count = 1;
    bool input_has_zero = false;
    for (int64_t d : input.dims()) {
      if (d > 0 || !sizes_have_zero) {
        count *= d;
      } else {
        input_has_zero = true;
      }
    }
    const int64_t missing = count / product;
    if (!input_has_zero && missing * product != count) {
      return Err("Input to reshape is a tensor with ", count,
                 " values, but the requested shape requires a multiple of ", product);
    }
    out.set_dim(unknown, missing);
  }
  if (out.num_elements() != input.num_elements()) {
    return Err("Input to reshape is a tensor with ", input.num_elements(),
               " values, but the requested shape has ", out.num_elements());
  }
  return out;
}

absl::StatusOr<std::vector<int>> NormalizePerm(absl::Span<const int64_t> perm, int rank) {
  if (static_cast<int64_t>(perm.size()) != rank) {
    return Err("transpose expects a vector of size ", rank, ". But input(1) is a vector of size ",
               perm.size());
  }
  std::vector<int> out(rank);
  std::vector<bool> seen(rank, false);
  for (int i = 0; i < rank; ++i) {
    const int64_t d = perm[i] < 0 ? perm[i] + rank : perm[i];
    if (d < 0 || d >= rank) return Err(d, " is out of range [0 .. ", rank, ")");
    out[i] = static_cast<int>(d);
    seen[d] = true;
  }
  for (int i = 0; i < rank; ++i) {
    if (!seen[i]) return Err(i, " is missing from {", absl::StrJoin(perm, ","), "}.");
  }
  return out;
}

absl::StatusOr<Shape> Transpose(const Shape& input, const Shape& perm_shape,
                                const MaybeInts& perm) {
  if (perm_shape.rank() >= 0 && perm_shape.rank() != 1) {
    return Err("perm must be a vector, not ", perm_shape.DebugString());
  }
  if (!perm) return RankOnly(input.rank() >= 0 ? input.rank() : VectorLength(perm_shape, perm));
  const int rank = input.rank() >= 0 ? input.rank() : static_cast<int>(perm->size());
  GS_ASSIGN_OR_RETURN(std::vector<int> p, NormalizePerm(*perm, rank));
  Shape out = Shape::UnknownDims(rank);
  if (input.rank() >= 0) {
    for (int i = 0; i < rank; ++i) out.set_dim(i, input.dim(p[i]));
  }
  return out;
}

absl::StatusOr<Shape> Concat(absl::Span<const Shape> values, const Shape& axis_shape,
                             const MaybeInts& axis) {
  if (!IsScalarLike(axis_shape) || (axis && axis->size() != 1)) {
    return Err("ConcatOp : concat_dim tensor should be a scalar integer, but got shape ",
               axis_shape.DebugString());
  }
  int known = -1;  // the first input of known rank
  for (int i = 0; i < static_cast<int>(values.size()); ++i) {
    if (values[i].unknown_rank()) continue;
    if (values[i].rank() == 0) {
      return Err("ConcatOp : Can't concatenate scalars (use tf.stack instead)");
    }
    if (known < 0) {
      known = i;
    } else if (values[i].rank() != values[known].rank()) {
      return Err("ConcatOp : Ranks of all input tensors should match: shape[", known,
                 "] = ", values[known].DebugString(), " vs. shape[", i,
                 "] = ", values[i].DebugString());
    }
  }
  if (known < 0) return Shape::UnknownRank();
  const int rank = values[known].rank();
  if (!axis) return Shape::UnknownDims(rank);
  const int64_t a = (*axis)[0];
  if (a < -rank || a >= rank) {
    return Err("ConcatOp : Expected concatenating dimensions in the range [", -rank, ", ", rank,
               "), but got ", a);
  }
  const int ax = static_cast<int>(a < 0 ? a + rank : a);
  Shape out = values[known];
  int64_t total = 0;
  for (int i = 0; i < static_cast<int>(values.size()); ++i) {
    const Shape& v = values[i];
    if (v.unknown_rank()) {
      total = -1;
      continue;
    }
    for (int d = 0; d < rank; ++d) {
      if (d == ax) continue;
      if (v.dim(d) >= 0 && out.dim(d) >= 0 && v.dim(d) != out.dim(d)) {
        return Err("ConcatOp : Dimension ", d, " in both shapes must be equal: shape[", known,
                   "] = ", values[known].DebugString(), " vs. shape[", i, "] = ", v.DebugString());
      }
      if (out.dim(d) < 0) out.set_dim(d, v.dim(d));
    }
    total = (total < 0 || v.dim(ax) < 0) ? -1 : total + v.dim(ax);
  }
  out.set_dim(ax, total);
  return out;
}

absl::StatusOr<int> PackAxis(int64_t axis, int rank) {
  if (axis < -(rank + 1) || axis >= rank + 1) {
    return Err("axis = ", axis, " not in [", -(rank + 1), ", ", rank + 1, ")");
  }
  return static_cast<int>(axis < 0 ? axis + rank + 1 : axis);
}

absl::StatusOr<Shape> Pack(absl::Span<const Shape> values, int64_t axis) {
  Shape merged = Shape::UnknownRank();
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StatusOr<Shape> m = merged.Merge(values[i]);
    if (!m.ok()) {
      return Err("Shapes of all inputs must match: values[0].shape = ", values[0].DebugString(),
                 " != values[", i, "].shape = ", values[i].DebugString());
    }
    merged = *std::move(m);
  }
  if (merged.unknown_rank()) return merged;
  GS_ASSIGN_OR_RETURN(int ax, PackAxis(axis, merged.rank()));
  merged.InsertDim(ax, static_cast<int64_t>(values.size()));
  return merged;
}

absl::StatusOr<Shape> Slice(const Shape& input, const Shape& begin_shape, const MaybeInts& begin,
                            const Shape& size_shape, const MaybeInts& size) {
  const int64_t nb = VectorLength(begin_shape, begin), ns = VectorLength(size_shape, size);
  const int64_t rank = input.rank();
  const bool bad_rank = (begin_shape.rank() >= 0 && begin_shape.rank() != 1) ||
                        (size_shape.rank() >= 0 && size_shape.rank() != 1);
  const bool bad_len = (nb >= 0 && ns >= 0 && nb != ns) || (rank >= 0 && nb >= 0 && nb != rank) ||
                       (rank >= 0 && ns >= 0 && ns != rank);
  if (bad_rank || bad_len) {
    return Err("Expected begin and size arguments to be 1-D tensors of size ",
               rank >= 0 ? rank : nb, ", but got shapes ", begin_shape.DebugString(), " and ",
               size_shape.DebugString(), " instead.");
  }
  const int64_t out_rank = rank >= 0 ? rank : (nb >= 0 ? nb : ns);
  if (out_rank < 0) return Shape::UnknownRank();
  Shape out = Shape::UnknownDims(static_cast<int>(out_rank));
  for (int i = 0; i < out_rank; ++i) {
    const int64_t dim = rank >= 0 ? input.dim(i) : -1;
    const int64_t b = begin ? (*begin)[i] : 0;
    if (begin && b < 0) return Err("Expected begin[", i, "] >= 0, but got ", b);
    if (begin && dim >= 0 && b > dim) {
      return Err("Expected begin[", i, "] in [0, ", dim, "], but got ", b);
    }
    // The largest valid size, when known.
    const int64_t limit = (begin && dim >= 0) ? dim - b : -1;
    if (!size) continue;
    const int64_t s = (*size)[i];
    if (s == -1) {
      out.set_dim(i, limit);
      continue;
    }
    if (s < 0 || (limit >= 0 && s > limit)) {
      if (limit < 0) return Err("Expected size[", i, "] >= -1, but got ", s);
      return Err("Expected size[", i, "] in [0, ", limit, "], but got ", s);
    }
    out.set_dim(i, s);
  }
  return out;
}

absl::StatusOr<Shape> Squeeze(const Shape& input, absl::Span<const int64_t> dims) {
  if (input.unknown_rank()) return Shape::UnknownRank();
  const int rank = input.rank();
  std::vector<bool> drop(rank, false);
  for (int64_t d : dims) {
    if (d < -rank || d >= rank) {
      return Err("Tried to squeeze dim index ", d, " for tensor with ", rank, " dimensions.");
    }
    const int64_t i = d < 0 ? d + rank : d;
    if (input.dim(i) >= 0 && input.dim(i) != 1) {
      return Err("Can not squeeze dim[", i, "], expected a dimension of 1, got ", input.dim(i));
    }
    drop[i] = true;
  }
  Shape out;
  for (int i = 0; i < rank; ++i) {
    // Without squeeze_dims, an unknown dim may or may not be 1.
    if (dims.empty() && input.dim(i) < 0) return Shape::UnknownRank();
    if (dims.empty() ? input.dim(i) == 1 : drop[i]) continue;
    out.AddDim(input.dim(i));
  }
  return out;
}

absl::StatusOr<Shape> ExpandDims(const Shape& input, const Shape& dim_shape, const MaybeInts& dim) {
  const int64_t n = dim ? static_cast<int64_t>(dim->size()) : dim_shape.num_elements();
  if (n >= 0 && n != 1) return Err("'dim' must be a tensor with a single value");
  if (input.unknown_rank()) return Shape::UnknownRank();
  const int rank = input.rank();
  if (!dim) return Shape::UnknownDims(rank + 1);
  const int64_t d = (*dim)[0];
  if (d < -rank - 1 || d > rank) {
    return Err("Tried to expand dim index ", d, " for tensor with ", rank, " dimensions.");
  }
  Shape out = input;
  out.InsertDim(static_cast<int>(d < 0 ? d + rank + 1 : d), 1);
  return out;
}

absl::StatusOr<Shape> Fill(const Shape& dims_shape, const MaybeInts& dims,
                           const Shape& value_shape) {
  if (dims_shape.rank() >= 0 && dims_shape.rank() != 1) {
    return Err("dims must be a vector, got shape ", dims_shape.DebugString());
  }
  if (value_shape.rank() > 0) {
    return Err("value must be a scalar, got shape ", value_shape.DebugString());
  }
  if (!dims) return RankOnly(VectorLength(dims_shape, dims));
  for (int64_t d : *dims) {
    if (d < 0) return Err("Dimension ", d, " must be >= 0");
  }
  return Checked(Shape(absl::MakeConstSpan(*dims)));
}

absl::StatusOr<int> GatherAxis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) {
    return Err("Expected axis in the range [", -rank, ", ", rank, "), but got ", axis);
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

absl::StatusOr<Shape> GatherV2(const Shape& params, const Shape& indices, const Shape& axis_shape,
                               const MaybeInts& axis, int64_t batch_dims) {
  if (batch_dims != 0) {
    return Err("batch_dims = ", batch_dims, " is not supported; only batch_dims = 0 is");
  }
  if (axis_shape.rank() > 0 || (axis && axis->size() != 1)) return Err("axis must be scalar");
  if (params.rank() == 0) return Err("params must be at least 1 dimensional");
  if (params.unknown_rank() || indices.unknown_rank()) return Shape::UnknownRank();
  if (!axis) return Shape::UnknownDims(params.rank() + indices.rank() - 1);
  GS_ASSIGN_OR_RETURN(int ax, GatherAxis((*axis)[0], params.rank()));
  Shape out;
  for (int i = 0; i < ax; ++i) out.AddDim(params.dim(i));
  for (int64_t d : indices.dims()) out.AddDim(d);
  for (int i = ax + 1; i < params.rank(); ++i) out.AddDim(params.dim(i));
  return out;
}

absl::StatusOr<Shape> OneHot(const Shape& indices, const Shape& depth_shape, const MaybeInts& depth,
                             const Shape& on_shape, const Shape& off_shape, int64_t axis) {
  const int out_rank = indices.unknown_rank() ? -1 : indices.rank() + 1;
  if (axis < -1 || (out_rank >= 0 && axis >= out_rank)) {
    return Err("Expected axis to be -1 or between [0, ",
               out_rank >= 0 ? absl::StrCat(out_rank) : std::string("rank + 1"),
               ").  But received: ", axis);
  }
  const std::pair<const char*, const Shape*> scalars[] = {
      {"depth", &depth_shape}, {"on_value", &on_shape}, {"off_value", &off_shape}};
  for (const auto& [name, shape] : scalars) {
    if (shape->rank() > 0) return Err(name, " must be a scalar, but got: ", shape->DebugString());
  }
  const int64_t d = depth ? (*depth)[0] : -1;
  if (depth && d < 0) return Err("depth must be non-negative, got: ", d);
  if (out_rank < 0) return Shape::UnknownRank();
  Shape out = indices;
  out.InsertDim(axis == -1 ? indices.rank() : static_cast<int>(axis), d);
  return Checked(std::move(out));
}

absl::StatusOr<Shape> Tile(const Shape& input, const Shape& multiples_shape,
                           const MaybeInts& multiples) {
  if (multiples_shape.rank() >= 0 && multiples_shape.rank() != 1) {
    return Err("Expected multiples to be 1-D, but got shape ", multiples_shape.DebugString());
  }
  const int64_t n = VectorLength(multiples_shape, multiples);
  if (input.rank() >= 0 && n >= 0 && n != input.rank()) {
    return Err("Expected multiples argument to be a vector of length ", input.rank(),
               " but got length ", n);
  }
  if (!multiples) return RankOnly(input.rank() >= 0 ? input.rank() : n);
  Shape out = Shape::UnknownDims(static_cast<int>(n));
  for (int i = 0; i < n; ++i) {
    const int64_t m = (*multiples)[i];
    if (m < 0) return Err("Expected multiples[", i, "] >= 0, but got ", m);
    const int64_t dim = input.rank() >= 0 ? input.dim(i) : -1;
    int64_t size = m == 0 ? 0 : -1;
    if (m != 0 && dim >= 0 && __builtin_mul_overflow(dim, m, &size)) {
      return Err("Tile of dimension ", i, " (", dim, ") by ", m, " overflows");
    }
    out.set_dim(i, size);
  }
  return Checked(std::move(out));
}

absl::StatusOr<Shape> Pad(const Shape& input, const Shape& paddings_shape,
                          const MaybeInts& paddings) {
  if (paddings_shape.rank() >= 0 &&
      (paddings_shape.rank() != 2 || (paddings_shape.dim(1) >= 0 && paddings_shape.dim(1) != 2))) {
    return Err("paddings must be a matrix with 2 columns: ", paddings_shape.DebugString());
  }
  const int64_t n = paddings_shape.rank() == 2 ? paddings_shape.dim(0) : -1;
  if (input.rank() >= 0 && n >= 0 && n != input.rank()) {
    return Err("The first dimension of paddings must be the rank of inputs",
               paddings_shape.DebugString(), " ", input.DebugString());
  }
  const int64_t rank = input.rank() >= 0 ? input.rank() : n;
  if (!paddings || rank < 0) return RankOnly(rank);
  Shape out = Shape::UnknownDims(static_cast<int>(rank));
  for (int i = 0; i < rank; ++i) {
    const int64_t before = (*paddings)[2 * i], after = (*paddings)[2 * i + 1];
    if (before < 0 || after < 0) return Err("Paddings must be non-negative: ", before, " ", after);
    const int64_t dim = input.rank() >= 0 ? input.dim(i) : -1;
    int64_t size = -1;
    if (dim >= 0 && (__builtin_add_overflow(dim, before, &size) ||
                     __builtin_add_overflow(size, after, &size))) {
      return Err("Padding dimension ", i, " (", dim, ") by ", before, " and ", after, " overflows");
    }
    out.set_dim(i, size);
  }
  return Checked(std::move(out));
}

absl::StatusOr<Shape> SelectV2(const Shape& cond, const Shape& then_shape,
                               const Shape& else_shape) {
  absl::StatusOr<Shape> out = BroadcastShapes(cond, then_shape);
  if (out.ok()) out = BroadcastShapes(*out, else_shape);
  if (!out.ok()) {
    return Err("condition ", cond.DebugString(), ", then ", then_shape.DebugString(), ", and else ",
               else_shape.DebugString(), " must be broadcastable");
  }
  return out;
}

}  // namespace gradserve::array_shape
