// Launchers of the CUDA device code of the array family (array_kernels.cu) for
// the OpKernels of array_ops.cc. Plain C++ over raw device pointers; each
// queues its work on `stream`, never waits for it, and returns the launch error.
//
// Note [Strided boxes]: Slice, StridedSlice, StridedSliceGrad, Pad, ConcatV2,
// Pack, Transpose and Tile all move the elements of a box: for every index
// (i_0, ..., i_{r-1}) below `dims`, the element at sum(i_j * src_strides[j])
// goes to sum(i_j * dst_strides[j]). A slice reads with the input's strides
// times its steps (negative for a reversed slice); Pad and StridedSliceGrad
// write the box into a zeroed output at an offset; ConcatV2 and Pack write
// each input as a box of [outer, row] into the output's rows; Transpose reads
// with permuted strides; Tile reads [multiple, dim] pairs with stride 0 along
// the repeats. The host describes the box, drops dimensions of size 1 and
// merges neighbours that step as one (array_ops.cc: MakeBox), so one kernel
// serves them all and most boxes end up of rank 1 to 3.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace gradserve::cuda {

// The highest rank of a box after merging (Tile of a rank-8 tensor reads
// [multiple, dim] pairs: 16).
inline constexpr int kMaxBoxRank = 16;

// Strides are in elements; src_strides may be zero (repeats) or negative,
// dst_strides negative. rank 0 is a single element.
struct StridedBox {
  int rank = 0;
  int64_t dims[kMaxBoxRank] = {};
  int64_t src_strides[kMaxBoxRank] = {};
  int64_t dst_strides[kMaxBoxRank] = {};
};

// Copies the box from `src` to `dst` (both pointing at the box's element
// (0, ..., 0)); elements of `element_size` bytes (1, 2, 4 or 8, else
// cudaErrorInvalidValue). No two indices of the box may name the same
// destination element. A box that is one contiguous range on both sides is a
// cudaMemcpyAsync.
cudaError_t LaunchStridedCopy(const void* src, void* dst, size_t element_size,
                              const StridedBox& box, cudaStream_t stream);

// GatherV2 with params viewed as [outer, limit, inner] and the output as
// [outer, count, inner]: out[o, j, :] = params[o, indices[j], :]. A row whose
// index is outside [0, limit) is written as zeros (as TensorFlow's GPU kernel
// does; the host cannot check the indices without waiting for the device).
// Index: int16_t, int32_t or int64_t.
template <typename Index>
cudaError_t LaunchGather(const float* params, const Index* indices, float* out, int64_t outer,
                         int64_t limit, int64_t count, int64_t inner, cudaStream_t stream);

// OneHot with indices viewed as [prefix, suffix] and the output as
// [prefix, depth, suffix]: out[p, d, s] = indices[p, s] == d ? *on : *off (on
// and off are device scalars). An index outside [0, depth) gives all off.
// Index: uint8_t, int8_t, int32_t or int64_t.
template <typename Index>
cudaError_t LaunchOneHot(const Index* indices, const float* on, const float* off, float* out,
                         int64_t prefix, int64_t depth, int64_t suffix, cudaStream_t stream);

// UnsortedSegmentSum with data viewed as [num_ids, inner]: zeroes out
// ([num_segments, inner]), then adds data[i, :] into out[ids[i], :] with
// atomicAdd (the order of the additions, hence the rounding, varies between
// runs). Ids outside [0, num_segments) are dropped (as TensorFlow's GPU
// kernel does). Index: int32_t or int64_t.
template <typename Index>
cudaError_t LaunchUnsortedSegmentSum(const float* data, const Index* ids, float* out,
                                     int64_t num_ids, int64_t inner, int64_t num_segments,
                                     cudaStream_t stream);

}  // namespace gradserve::cuda
