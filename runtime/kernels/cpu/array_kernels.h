// Helpers shared by the CPU kernels of the array family: array_ops.cc (metadata
// and fill ops, registration), slice_ops.cc (Slice, StridedSlice, Transpose, Tile,
// Pad) and gather_ops.cc (ConcatV2, Pack, GatherV2, OneHot, SelectV2). Output
// shapes and input checks come from graph/ops/array_ops.h, the same code the shape
// functions run, mostly through the plans of runtime/kernels/array_util.h, which
// the CUDA kernels share.
//
// Note [Moving bytes]: moving data does not depend on what the elements mean, so
// these kernels dispatch on the element size, not the dtype: bool, int8 and uint8
// move as uint8_t; half, bfloat16 and int16 as uint16_t; float and int32 as
// uint32_t; double and int64 as uint64_t. Each Eigen expression is then
// instantiated 4 times instead of 10. Before evaluating, dimensions that move
// together are merged (as TensorFlow does and as cwise.h's Note [Broadcast
// collapsing] does for broadcasts), so the Eigen paths are instantiated for ranks
// up to kMaxMoveRank and CopyStrided handles the rare shapes beyond.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "graph/ops/array_ops.h"
#include "runtime/kernels/array_util.h"  // ReadInts, DenseStrides, plans
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {

// The dtypes the data-moving array kernels are registered for.
using ArrayTypes =
    TypeList<float, double, half, bfloat16, int8_t, uint8_t, int16_t, int32_t, int64_t, bool>;

// The highest rank (after merging dimensions) that Eigen paths are instantiated for.
inline constexpr int kMaxMoveRank = 5;

// Calls fn.template operator()<U>() with U the unsigned integer of dtype's size.
template <typename Fn>
absl::Status DispatchBySize(DType dtype, Fn&& fn) {
  switch (DTypeSize(dtype)) {
    case 1:
      return fn.template operator()<uint8_t>();
    case 2:
      return fn.template operator()<uint16_t>();
    case 4:
      return fn.template operator()<uint32_t>();
    case 8:
      return fn.template operator()<uint64_t>();
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported dtype ", DTypeName(dtype)));
  }
}

// Calls fn.template operator()<N>() for 1 <= rank <= kMaxMoveRank.
template <typename Fn>
absl::Status DispatchRank(int rank, Fn&& fn) {
  switch (rank) {
    case 1:
      return fn.template operator()<1>();
    case 2:
      return fn.template operator()<2>();
    case 3:
      return fn.template operator()<3>();
    case 4:
      return fn.template operator()<4>();
    case 5:
      return fn.template operator()<5>();
    default:
      return absl::InternalError(absl::StrCat("no Eigen path for rank ", rank));
  }
}

// Calls fn.template operator()<I>() with I the C++ type of an integer dtype.
template <typename Fn>
absl::Status DispatchIndexType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kInt8:
      return fn.template operator()<int8_t>();
    case DType::kUInt8:
      return fn.template operator()<uint8_t>();
    case DType::kInt16:
      return fn.template operator()<int16_t>();
    case DType::kInt32:
      return fn.template operator()<int32_t>();
    case DType::kInt64:
      return fn.template operator()<int64_t>();
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("expected an integer tensor, got ", DTypeName(dtype)));
  }
}

// Dimensions as an Eigen index array.
template <int N>
Eigen::array<Eigen::DenseIndex, N> EigenDims(absl::Span<const int64_t> dims) {
  Eigen::array<Eigen::DenseIndex, N> out;
  for (int i = 0; i < N; ++i) out[i] = dims[i];
  return out;
}

// Moves element (i_0, ..., i_k) of a `dims`-shaped index space from
// src + sum(i_j * src_strides[j]) to dst + sum(i_j * dst_strides[j]); strides are in
// elements and may be negative (src) or zero (src, for broadcasts). Single-threaded;
// the path for shapes beyond kMaxMoveRank.
void CopyStrided(const void* src, void* dst, size_t element_size, absl::Span<const int64_t> dims,
                 absl::Span<const int64_t> src_strides, absl::Span<const int64_t> dst_strides);

// Runs fn(begin, end) over [0, n) on the device's threads; `bytes_per_unit` (read
// plus written) sizes the shards.
void ParallelFor(const OpKernelContext& ctx, int64_t n, double bytes_per_unit,
                 const std::function<void(int64_t, int64_t)>& fn);

// Registers the type-agnostic kernel K for every dtype in ArrayTypes, selected by
// the node's `type_attr`.
template <typename K>
absl::Status RegisterForArrayTypes(KernelRegistry& r, std::string op, std::string type_attr = "T") {
  return RegisterTyped(
      r, std::move(op), ArrayTypes{},
      []<typename T>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        return std::unique_ptr<OpKernel>(new K(node));
      },
      std::move(type_attr));
}

// The kernel files' registrations, called from RegisterCpuArrayKernels.
absl::Status RegisterCpuSliceKernels(KernelRegistry& r);
absl::Status RegisterCpuGatherKernels(KernelRegistry& r);

}  // namespace gradserve
