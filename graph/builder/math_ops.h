// Builder functions for the math and reduction op families (graph/ops/math_ops.cc,
// graph/ops/reduction_ops.cc). Attr structs carry TensorFlow's defaults.
#pragma once

#include "graph/builder/scope.h"

namespace gradserve::ops {

// Binary element-wise ops with NumPy broadcasting.
Output Add(const Scope& s, Output x, Output y);
Output AddV2(const Scope& s, Output x, Output y);
// The sum of one or more tensors of the same shape and dtype.
Output AddN(const Scope& s, const std::vector<Output>& inputs);
Output Sub(const Scope& s, Output x, Output y);
Output Mul(const Scope& s, Output x, Output y);
Output RealDiv(const Scope& s, Output x, Output y);
Output Pow(const Scope& s, Output x, Output y);
Output Maximum(const Scope& s, Output x, Output y);
Output Minimum(const Scope& s, Output x, Output y);

// Comparisons and logic; outputs are bool.
struct EqualAttrs {
  // false: shapes that cannot broadcast compare unequal (a scalar false) instead
  // of failing.
  bool incompatible_shape_error = true;
};
Output Equal(const Scope& s, Output x, Output y, const EqualAttrs& attrs = {});
Output Less(const Scope& s, Output x, Output y);
Output Greater(const Scope& s, Output x, Output y);
Output LogicalAnd(const Scope& s, Output x, Output y);

// Unary element-wise ops.
Output Neg(const Scope& s, Output x);
Output Abs(const Scope& s, Output x);
Output Exp(const Scope& s, Output x);
Output Log(const Scope& s, Output x);
Output Sqrt(const Scope& s, Output x);
Output Rsqrt(const Scope& s, Output x);
Output Square(const Scope& s, Output x);

struct CastAttrs {
  // Narrowing float casts drop the extra mantissa bits instead of rounding.
  bool truncate = false;
};
Output Cast(const Scope& s, Output x, DType dst, const CastAttrs& attrs = {});

struct MatMulAttrs {
  bool transpose_a = false;
  bool transpose_b = false;
};
Output MatMul(const Scope& s, Output a, Output b, const MatMulAttrs& attrs = {});

struct BatchMatMulAttrs {
  bool adj_x = false;
  bool adj_y = false;
};
Output BatchMatMulV2(const Scope& s, Output x, Output y, const BatchMatMulAttrs& attrs = {});

// Reductions over `axis` (an int32/int64 scalar or vector; negative axes count
// from the end; an empty vector reduces nothing).
struct ReduceAttrs {
  bool keep_dims = false;
};
Output Sum(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs = {});
Output Mean(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs = {});
Output Max(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs = {});
Output Min(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs = {});

struct ArgMaxAttrs {
  DType output_type = DType::kInt64;  // or kInt32
};
// The index of the largest value along the scalar `dimension` (first on ties).
Output ArgMax(const Scope& s, Output input, Output dimension, const ArgMaxAttrs& attrs = {});

// Gradient helper: for shape vectors s0, s1 (int32/int64) of two broadcast
// operands, the axes of the broadcast result each operand's gradient is summed
// over (TensorFlow's BroadcastGradientArgs).
struct BroadcastGradientArgsOutputs {
  Output r0, r1;
};
BroadcastGradientArgsOutputs BroadcastGradientArgs(const Scope& s, Output s0, Output s1);

}  // namespace gradserve::ops
