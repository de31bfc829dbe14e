// Strided-box copy, gather, one-hot and segment-sum kernels (array_kernels.h).
//
// Each kernel is a grid-stride loop over its output elements, one element per
// step. Indices are computed in int32 when every offset the launch can reach
// fits (the common case: 64-bit division costs several times more), else in
// int64; the loop counter itself is always int64 so that the stride cannot
// overflow.
#include <cstdint>

#include "runtime/kernels/cuda/array_kernels.h"
#include "runtime/kernels/cuda/launch.h"

namespace gradserve::cuda {
namespace {

bool FitsInt32(int64_t n) { return n <= INT32_MAX; }

// StridedBox with the index type of the launch.
template <typename I>
struct Box {
  int rank;
  I dims[kMaxBoxRank], src[kMaxBoxRank], dst[kMaxBoxRank];
};

template <typename I>
Box<I> Narrow(const StridedBox& b) {
  Box<I> out{};
  out.rank = b.rank;
  for (int j = 0; j < b.rank; ++j) {
    out.dims[j] = static_cast<I>(b.dims[j]);
    out.src[j] = static_cast<I>(b.src_strides[j]);
    out.dst[j] = static_cast<I>(b.dst_strides[j]);
  }
  return out;
}

// True when n and every offset of the box (|offset| <= sum (dim - 1) * |stride|,
// on either side) fit in int32.
bool BoxFitsInt32(const StridedBox& b, int64_t n) {
  int64_t src = 0, dst = 0;
  for (int j = 0; j < b.rank; ++j) {
    const int64_t last = b.dims[j] - 1;
    src += last * (b.src_strides[j] < 0 ? -b.src_strides[j] : b.src_strides[j]);
    dst += last * (b.dst_strides[j] < 0 ? -b.dst_strides[j] : b.dst_strides[j]);
  }
  return FitsInt32(n) && FitsInt32(src) && FitsInt32(dst);
}

// Element i of the box (row-major over dims) is split into its index, which
// gives both offsets.
template <typename U, typename I>
__global__ void StridedCopy(const U* __restrict__ src, U* __restrict__ dst, Box<I> box, int64_t n) {
  for (int64_t i : GridStride(n)) {
    I rest = static_cast<I>(i), s = 0, d = 0;
    for (int j = box.rank - 1; j >= 0; --j) {
      const I q = rest / box.dims[j];
      const I k = rest - q * box.dims[j];
      s += k * box.src[j];
      d += k * box.dst[j];
      rest = q;
    }
    dst[d] = src[s];
  }
}

template <typename U>
cudaError_t StridedCopyAs(const void* src, void* dst, const StridedBox& box, int64_t n,
                          cudaStream_t stream) {
  const U* s = static_cast<const U*>(src);
  U* d = static_cast<U*>(dst);
  if (BoxFitsInt32(box, n)) {
    StridedCopy<U, int32_t><<<Blocks(n), kThreads, 0, stream>>>(s, d, Narrow<int32_t>(box), n);
  } else {
    StridedCopy<U, int64_t><<<Blocks(n), kThreads, 0, stream>>>(s, d, Narrow<int64_t>(box), n);
  }
  return cudaGetLastError();
}

// The coordinates of flat index u of a row-major [outer, middle, inner] array
// (each remainder by a multiply-subtract: one division per dimension).
template <typename I>
struct Coords3 {
  I outer, middle, inner;
};
template <typename I>
__device__ Coords3<I> SplitIndex(I u, I middle, I inner) {
  const I row = u / inner;  // (outer, middle) flattened
  const I o = row / middle;
  return {o, row - o * middle, u - row * inner};
}

// Output element u = (o, j, k) of [outer, count, inner].
template <typename Index, typename I>
__global__ void Gather(const float* __restrict__ params, const Index* __restrict__ indices,
                       float* __restrict__ out, I limit, I count, I inner, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const I u = static_cast<I>(i);
    const auto [o, j, k] = SplitIndex(u, count, inner);
    const int64_t idx = static_cast<int64_t>(indices[j]);
    out[u] = idx >= 0 && idx < limit ? params[(o * limit + static_cast<I>(idx)) * inner + k] : 0.f;
  }
}

// Output element u = (p, d, s) of [prefix, depth, suffix].
template <typename Index, typename I>
__global__ void OneHot(const Index* __restrict__ indices, const float* on, const float* off,
                       float* __restrict__ out, I depth, I suffix, int64_t n) {
  const float on_value = *on, off_value = *off;
  for (int64_t i : GridStride(n)) {
    const I u = static_cast<I>(i);
    const auto [p, d, s] = SplitIndex(u, depth, suffix);
    out[u] = static_cast<int64_t>(indices[p * suffix + s]) == d ? on_value : off_value;
  }
}

// Data element u = (r, k) of [num_ids, inner].
template <typename Index, typename I>
__global__ void SegmentSum(const float* __restrict__ data, const Index* __restrict__ ids,
                           float* out, I inner, I num_segments, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const I u = static_cast<I>(i);
    const I r = u / inner;
    const I k = u - r * inner;
    const int64_t id = static_cast<int64_t>(ids[r]);
    if (id >= 0 && id < num_segments) atomicAdd(out + static_cast<I>(id) * inner + k, data[u]);
  }
}

}  // namespace

cudaError_t LaunchStridedCopy(const void* src, void* dst, size_t element_size,
                              const StridedBox& box, cudaStream_t stream) {
  if (box.rank < 0 || box.rank > kMaxBoxRank) return cudaErrorInvalidValue;
  int64_t n = 1;
  for (int j = 0; j < box.rank; ++j) n *= box.dims[j];
  if (n == 0) return cudaSuccess;
  const bool contiguous =
      box.rank == 0 || (box.rank == 1 && box.src_strides[0] == 1 && box.dst_strides[0] == 1);
  if (contiguous) {
    return cudaMemcpyAsync(dst, src, n * element_size, cudaMemcpyDeviceToDevice, stream);
  }
  switch (element_size) {
    case 1:
      return StridedCopyAs<uint8_t>(src, dst, box, n, stream);
    case 2:
      return StridedCopyAs<uint16_t>(src, dst, box, n, stream);
    case 4:
      return StridedCopyAs<uint32_t>(src, dst, box, n, stream);
    case 8:
      return StridedCopyAs<uint64_t>(src, dst, box, n, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

template <typename Index>
cudaError_t LaunchGather(const float* params, const Index* indices, float* out, int64_t outer,
                         int64_t limit, int64_t count, int64_t inner, cudaStream_t stream) {
  const int64_t n = outer * count * inner;
  if (n == 0) return cudaSuccess;
  if (FitsInt32(n) && FitsInt32(outer * limit * inner)) {
    Gather<Index, int32_t><<<Blocks(n), kThreads, 0, stream>>>(
        params, indices, out, static_cast<int32_t>(limit), static_cast<int32_t>(count),
        static_cast<int32_t>(inner), n);
  } else {
    Gather<Index, int64_t>
        <<<Blocks(n), kThreads, 0, stream>>>(params, indices, out, limit, count, inner, n);
  }
  return cudaGetLastError();
}

template <typename Index>
cudaError_t LaunchOneHot(const Index* indices, const float* on, const float* off, float* out,
                         int64_t prefix, int64_t depth, int64_t suffix, cudaStream_t stream) {
  const int64_t n = prefix * depth * suffix;
  if (n == 0) return cudaSuccess;
  if (FitsInt32(n)) {  // the indices ([prefix, suffix]) are no more than n
    OneHot<Index, int32_t><<<Blocks(n), kThreads, 0, stream>>>(
        indices, on, off, out, static_cast<int32_t>(depth), static_cast<int32_t>(suffix), n);
  } else {
    OneHot<Index, int64_t>
        <<<Blocks(n), kThreads, 0, stream>>>(indices, on, off, out, depth, suffix, n);
  }
  return cudaGetLastError();
}

template <typename Index>
cudaError_t LaunchUnsortedSegmentSum(const float* data, const Index* ids, float* out,
                                     int64_t num_ids, int64_t inner, int64_t num_segments,
                                     cudaStream_t stream) {
  const int64_t out_n = num_segments * inner;
  if (out_n == 0) return cudaSuccess;  // no element to zero, none to add
  cudaError_t err = cudaMemsetAsync(out, 0, out_n * sizeof(float), stream);
  if (err != cudaSuccess) return err;
  const int64_t n = num_ids * inner;
  if (n == 0) return cudaSuccess;
  if (FitsInt32(n) && FitsInt32(out_n)) {
    SegmentSum<Index, int32_t><<<Blocks(n), kThreads, 0, stream>>>(
        data, ids, out, static_cast<int32_t>(inner), static_cast<int32_t>(num_segments), n);
  } else {
    SegmentSum<Index, int64_t>
        <<<Blocks(n), kThreads, 0, stream>>>(data, ids, out, inner, num_segments, n);
  }
  return cudaGetLastError();
}

// The index types each launcher is built for (array_kernels.h).
template cudaError_t LaunchGather<int16_t>(const float*, const int16_t*, float*, int64_t, int64_t,
                                           int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchGather<int32_t>(const float*, const int32_t*, float*, int64_t, int64_t,
                                           int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchGather<int64_t>(const float*, const int64_t*, float*, int64_t, int64_t,
                                           int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchOneHot<uint8_t>(const uint8_t*, const float*, const float*, float*,
                                           int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchOneHot<int8_t>(const int8_t*, const float*, const float*, float*,
                                          int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchOneHot<int32_t>(const int32_t*, const float*, const float*, float*,
                                           int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchOneHot<int64_t>(const int64_t*, const float*, const float*, float*,
                                           int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchUnsortedSegmentSum<int32_t>(const float*, const int32_t*, float*,
                                                       int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchUnsortedSegmentSum<int64_t>(const float*, const int64_t*, float*,
                                                       int64_t, int64_t, int64_t, cudaStream_t);

}  // namespace gradserve::cuda
