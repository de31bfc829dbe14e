// Launchers of the CUDA reductions, the softmax family and the losses
// (reduction_kernels.cu) for the OpKernels of reduction_ops.cc. Plain C++ over
// raw device pointers (float32 data); each queues its work on `stream`, never
// waits for it, and returns the first launch or allocation error.
//
// Note [GPU reduction passes]: a reduction sees its input as a row-major
// [outer, r, inner] and reduces the middle dimension (the host collapses the
// reduced and kept dimensions into such groups first, as the CPU kernel does:
// Note [Reduction collapsing] in runtime/kernels/cpu/reduction_ops.cc). Rows
// (inner == 1) are read by one warp per segment of at most kRowChunk elements,
// coalesced; columns (inner > 1, or short rows) by one thread per output
// element, walking r with stride inner. When the first pass would leave the
// GPU idle (a long r and few outputs) it reduces r in segments and writes
// per-segment partials [outer, segments, inner], which the next pass reduces
// the same way, until one segment is left. The order of operations depends
// only on the shapes, never on timing: results are deterministic (no atomics).
// Partials live in stream-ordered scratch (cudaMallocAsync / cudaFreeAsync on
// `stream`), freed as soon as the pass that reads them is queued.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradserve::cuda {

enum class Reducer { kSum, kMax, kMin };

// out[o, i] = reduce over j < r of in[o, j, i], divided by `divisor` (Mean
// passes its element count, everything else 1), for a row-major
// [outer, r, inner] `in` with r >= 1 (Note [GPU reduction passes]). Max and
// Min propagate NaN, as the CPU's do.
cudaError_t LaunchReduce(Reducer reducer, const float* in, int64_t outer, int64_t r, int64_t inner,
                         float divisor, float* out, cudaStream_t stream);

// *out = sum over i < n of x[i]^2, / 2 (L2Loss); 0 when n == 0.
cudaError_t LaunchL2Loss(const float* x, int64_t n, float* out, cudaStream_t stream);

// out[i] = value, i < n.
cudaError_t LaunchFill(float* out, int64_t n, float value, cudaStream_t stream);

// out[o, i] = the first j < r with in[o, j, i] maximal, for a row-major
// [outer, r, inner] `in` with r >= 1 (ties to the first index and NaN never
// chosen, as the CPU's Eigen argmax). Out: int32_t or int64_t.
template <typename Out>
cudaError_t LaunchArgMax(const float* in, int64_t outer, int64_t r, int64_t inner, Out* out,
                         cudaStream_t stream);

// y[row, :] = softmax(x[row, :]), or log_softmax when `log`, for row-major
// [rows, cols] with cols >= 1; shifted by the row's max, so large logits
// neither overflow nor lose the result. A NaN makes its whole row NaN, as on
// the CPU (in the losses below too). y may be x (in place).
cudaError_t LaunchSoftmax(bool log, const float* x, float* y, int64_t rows, int64_t cols,
                          cudaStream_t stream);

// SoftmaxCrossEntropyWithLogits on row-major [batch, classes] features and
// labels: with lse = log(sum_j exp(x_j)) per row,
// loss[b] = sum over labels_j != 0 of labels_j * (lse - x_j),
// backprop[b, j] = softmax_j - labels_j. classes == 0 gives loss 0.
cudaError_t LaunchSoftmaxXent(const float* features, const float* labels, float* loss,
                              float* backprop, int64_t batch, int64_t classes, cudaStream_t stream);

// SparseSoftmaxCrossEntropyWithLogits with labels [batch] of class indices
// (Label: int32_t or int64_t): loss[b] = lse - x[b, label],
// backprop[b, j] = softmax_j - (j == label). A label outside [0, classes)
// gives NaN loss and a NaN backprop row, as TensorFlow's GPU kernel does (the
// CPU kernel returns InvalidArgument; here the labels are in device memory and
// the host does not wait to read them).
template <typename Label>
cudaError_t LaunchSparseSoftmaxXent(const float* features, const Label* labels, float* loss,
                                    float* backprop, int64_t batch, int64_t classes,
                                    cudaStream_t stream);

}  // namespace gradserve::cuda
