// Reduction, argmax, softmax and softmax-loss kernels (reduction_kernels.h).
//
// Row kernels give each row (or row segment) to a group of threads: a warp
// for short rows, the whole block for long ones. The group combines its
// threads' partial results with GroupAllReduce, in a fixed order, so every
// thread of the group ends with the same value and results do not depend on
// timing. Column kernels give each output element to one thread.
#include "runtime/kernels/cuda/reduction_kernels.h"

#include <cfloat>
#include <cmath>
#include <cstring>

#include "runtime/kernels/cuda/launch.h"

namespace gradserve::cuda {
namespace {

constexpr int kWarp = 32;

// Rows up to this long go to the column kernels (one thread per output): a
// warp per row would leave most lanes idle.
constexpr int64_t kShortRow = 16;
// The longest row segment one warp reduces in a pass (Note [GPU reduction passes]).
constexpr int64_t kRowChunk = 1024;
// A column pass gives each thread at least this many elements of r, and splits
// r into segments only while it has fewer than kBusyThreads threads.
constexpr int64_t kColumnChunk = 32;
constexpr int64_t kBusyThreads = int64_t{1} << 16;
// Rows longer than this get a block each in the softmax family, shorter ones a warp.
constexpr int64_t kWarpSoftmaxRow = 1024;
// Rows longer than this get a block each in ArgMax, shorter ones a warp.
constexpr int64_t kWarpArgMaxRow = 4096;

__device__ __forceinline__ int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

// -- Combining the threads of a group -----------------------------------------

// v of lane (this lane ^ mask), or of lane `lane`, for any type of whole words.
template <typename T>
__device__ __forceinline__ T ShflXor(T v, int mask) {
  static_assert(sizeof(T) % sizeof(unsigned) == 0, "shuffled types are whole words");
  unsigned w[sizeof(T) / sizeof(unsigned)];
  memcpy(w, &v, sizeof(T));
  for (unsigned& x : w) x = __shfl_xor_sync(0xffffffffu, x, mask);
  memcpy(&v, w, sizeof(T));
  return v;
}
template <typename T>
__device__ __forceinline__ T ShflFrom(T v, int lane) {
  unsigned w[sizeof(T) / sizeof(unsigned)];
  memcpy(w, &v, sizeof(T));
  for (unsigned& x : w) x = __shfl_sync(0xffffffffu, x, lane);
  memcpy(&v, w, sizeof(T));
  return v;
}

// op over the values of the kGroup threads of a group: a warp (kGroup ==
// kWarp) or the whole block (kGroup == blockDim.x == kThreads). Every thread
// of the group gets lane 0's (or warp 0's) result, so all of them agree even
// where op is not exactly commutative. Every thread of the group must call it
// (the block version synchronizes); `shared` holds kGroup / kWarp values and
// is free for reuse when this returns.
template <int kGroup, typename T, typename Op>
__device__ __forceinline__ T GroupAllReduce(T v, Op op, T* shared) {
  static_assert(kGroup == kWarp || kGroup == kThreads, "a group is a warp or the block");
  for (int mask = kWarp / 2; mask > 0; mask /= 2) v = op(v, ShflXor(v, mask));
  v = ShflFrom(v, 0);
  if constexpr (kGroup > kWarp) {
    if (threadIdx.x % kWarp == 0) shared[threadIdx.x / kWarp] = v;
    __syncthreads();
    v = shared[0];
    for (int w = 1; w < kGroup / kWarp; ++w) v = op(v, shared[w]);
    __syncthreads();
  }
  return v;
}

// The group of this thread when groups of kGroup threads tile the grid: its
// index, its thread's rank in it, and the number of groups in the grid.
template <int kGroup>
struct Group {
  static __device__ __forceinline__ int64_t Index() { return GlobalThread() / kGroup; }
  static __device__ __forceinline__ int Rank() { return threadIdx.x % kGroup; }
  static __device__ __forceinline__ int64_t Count() { return GridThreads() / kGroup; }
};

// -- Sum, Max, Min (Note [GPU reduction passes]) -----------------------------

template <Reducer R>
__device__ __forceinline__ float Identity() {
  if constexpr (R == Reducer::kSum) {
    return 0.f;
  } else if constexpr (R == Reducer::kMax) {
    return -INFINITY;
  } else {
    return INFINITY;
  }
}

// Max and Min return a NaN operand (either one), as Eigen's PropagateNaN does.
template <Reducer R>
struct Combine {
  __device__ __forceinline__ float operator()(float a, float b) const {
    if constexpr (R == Reducer::kSum) {
      return a + b;
    } else if constexpr (R == Reducer::kMax) {
      return (a > b || isnan(a)) ? a : b;
    } else {
      return (a < b || isnan(a)) ? a : b;
    }
  }
};

template <bool kSquare>
__device__ __forceinline__ float Load(float v) {
  if constexpr (kSquare) {
    return v * v;
  } else {
    return v;
  }
}

// Segment s < rows * segments (row s / segments, part s % segments) covers
// elements [part * chunk, min(r, (part + 1) * chunk)) of its row; one warp
// reduces it into out[s].
template <Reducer R, bool kSquare>
__global__ void ReduceRowSegments(const float* __restrict__ in, int64_t rows, int64_t r,
                                  int64_t chunk, int64_t segments, float divisor,
                                  float* __restrict__ out) {
  using G = Group<kWarp>;
  const int lane = G::Rank();
  const int64_t count = rows * segments;
  for (int64_t s = G::Index(); s < count; s += G::Count()) {
    const int64_t begin = (s % segments) * chunk;
    const int64_t end = Min64(r, begin + chunk);
    const float* x = in + (s / segments) * r;
    float acc = Identity<R>();
    for (int64_t j = begin + lane; j < end; j += kWarp) {
      acc = Combine<R>()(acc, Load<kSquare>(x[j]));
    }
    acc = GroupAllReduce<kWarp>(acc, Combine<R>(), static_cast<float*>(nullptr));
    if (lane == 0) out[s] = acc / divisor;
  }
}

// out[o, part, i] = reduce over j in [part * chunk, min(r, (part + 1) * chunk))
// of in[o, j, i], one thread per output element, in order of j.
template <Reducer R, bool kSquare>
__global__ void ReduceColumnSegments(const float* __restrict__ in, int64_t outer, int64_t r,
                                     int64_t inner, int64_t chunk, int64_t segments, float divisor,
                                     float* __restrict__ out) {
  const int64_t count = outer * segments * inner;
  for (int64_t k : GridStride(count)) {
    const int64_t i = k % inner, t = k / inner;
    const int64_t begin = (t % segments) * chunk;
    const int64_t end = Min64(r, begin + chunk);
    const float* x = in + (t / segments) * r * inner + i;
    float acc = Identity<R>();
    for (int64_t j = begin; j < end; ++j) acc = Combine<R>()(acc, Load<kSquare>(x[j * inner]));
    out[k] = acc / divisor;
  }
}

// One pass over [outer, r, inner]: which kernel, and r cut into `segments`
// segments of `chunk` (the last one shorter).
struct Pass {
  bool rows;
  int64_t chunk, segments;
};

Pass PlanPass(int64_t outer, int64_t r, int64_t inner) {
  if (inner == 1 && r > kShortRow) {
    const int64_t chunk = r < kRowChunk ? r : kRowChunk;
    return {true, chunk, CeilDiv(r, chunk)};
  }
  int64_t segments = CeilDiv(r, kColumnChunk);
  const int64_t wanted = CeilDiv(kBusyThreads, outer * inner);
  if (segments > wanted) segments = wanted;
  const int64_t chunk = CeilDiv(r, segments);
  return {false, chunk, CeilDiv(r, chunk)};
}

template <Reducer R, bool kSquare>
void LaunchPass(const Pass& p, const float* in, int64_t outer, int64_t r, int64_t inner,
                float divisor, float* out, cudaStream_t stream) {
  if (p.rows) {
    ReduceRowSegments<R, kSquare><<<Blocks(outer * p.segments * kWarp), kThreads, 0, stream>>>(
        in, outer, r, p.chunk, p.segments, divisor, out);
  } else {
    ReduceColumnSegments<R, kSquare><<<Blocks(outer * p.segments * inner), kThreads, 0, stream>>>(
        in, outer, r, inner, p.chunk, p.segments, divisor, out);
  }
}

template <bool kSquare>
void LaunchPass(Reducer reducer, const Pass& p, const float* in, int64_t outer, int64_t r,
                int64_t inner, float divisor, float* out, cudaStream_t stream) {
  switch (reducer) {
    case Reducer::kSum:
      return LaunchPass<Reducer::kSum, kSquare>(p, in, outer, r, inner, divisor, out, stream);
    case Reducer::kMax:
      return LaunchPass<Reducer::kMax, kSquare>(p, in, outer, r, inner, divisor, out, stream);
    case Reducer::kMin:
      return LaunchPass<Reducer::kMin, kSquare>(p, in, outer, r, inner, divisor, out, stream);
  }
}

// The passes of Note [GPU reduction passes]; `square` squares the input
// elements (the first pass only). Only the last pass divides.
cudaError_t Reduce(Reducer reducer, bool square, const float* in, int64_t outer, int64_t r,
                   int64_t inner, float divisor, float* out, cudaStream_t stream) {
  if (outer == 0 || inner == 0) return cudaSuccess;
  if (r < 1) return cudaErrorInvalidValue;
  void* scratch = nullptr;  // the partials `in` points to after the first pass
  cudaError_t err = cudaSuccess;
  for (;;) {
    const Pass p = PlanPass(outer, r, inner);
    const bool last = p.segments == 1;
    void* next = nullptr;
    if (!last) {
      err = cudaMallocAsync(&next, sizeof(float) * outer * p.segments * inner, stream);
      if (err != cudaSuccess) {
        cudaGetLastError();  // not sticky: keep it from the next launch's check
        break;
      }
    }
    float* dst = last ? out : static_cast<float*>(next);
    const float pass_divisor = last ? divisor : 1.f;
    if (square) {
      LaunchPass<true>(reducer, p, in, outer, r, inner, pass_divisor, dst, stream);
    } else {
      LaunchPass<false>(reducer, p, in, outer, r, inner, pass_divisor, dst, stream);
    }
    err = cudaGetLastError();
    // Stream-ordered: freed after the pass just queued has read it.
    if (scratch != nullptr) cudaFreeAsync(scratch, stream);
    scratch = next;
    if (err != cudaSuccess || last) break;
    in = dst;
    r = p.segments;
    square = false;
  }
  if (scratch != nullptr) cudaFreeAsync(scratch, stream);
  return err;
}

__global__ void Fill(float* out, int64_t n, float value) {
  for (int64_t i : GridStride(n)) out[i] = value;
}

// -- ArgMax ---------------------------------------------------------------------

// A candidate for the maximum. The start {-FLT_MAX, 0} and the order (larger
// value, then smaller index; NaN never wins) give what the CPU's sequential
// Eigen argmax gives, whatever order the elements are visited in.
struct Candidate {
  float value;
  int64_t index;
};
struct Better {
  __device__ __forceinline__ Candidate operator()(Candidate a, Candidate b) const {
    return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
  }
};

template <int kGroup, typename Out>
__global__ void ArgMaxRows(const float* __restrict__ in, int64_t rows, int64_t r,
                           Out* __restrict__ out) {
  using G = Group<kGroup>;
  __shared__ Candidate shared[kGroup / kWarp];
  for (int64_t row = G::Index(); row < rows; row += G::Count()) {
    const float* x = in + row * r;
    Candidate best{-FLT_MAX, 0};
    for (int64_t j = G::Rank(); j < r; j += kGroup) best = Better()(best, Candidate{x[j], j});
    best = GroupAllReduce<kGroup>(best, Better(), shared);
    if (G::Rank() == 0) out[row] = static_cast<Out>(best.index);
  }
}

template <typename Out>
__global__ void ArgMaxColumns(const float* __restrict__ in, int64_t outer, int64_t r, int64_t inner,
                              Out* __restrict__ out) {
  const int64_t count = outer * inner;
  for (int64_t k : GridStride(count)) {
    const float* x = in + (k / inner) * r * inner + k % inner;
    float best = -FLT_MAX;
    int64_t index = 0;
    for (int64_t j = 0; j < r; ++j) {
      const float v = x[j * inner];
      if (v > best) {
        best = v;
        index = j;
      }
    }
    out[k] = static_cast<Out>(index);
  }
}

// -- Softmax and the softmax losses -------------------------------------------

// A row's max and the sum of exp(x - max) over the values seen so far (the
// online softmax: one read of the row gives both). A NaN value makes the sum
// NaN (never the max), so the whole row comes out NaN, as on the CPU; it must
// not be dropped when it comes before any other value (max still -inf).
struct MaxSum {
  float max;
  float sum;
};

__device__ __forceinline__ MaxSum Push(MaxSum t, float x) {
  if (x > t.max) {
    t.sum = t.sum * expf(t.max - x) + 1.f;  // exp(-inf) = 0 for the first value
    t.max = x;
  } else if (x != -INFINITY) {  // -inf adds exp(-inf - max) = 0 (and -inf - -inf is NaN)
    t.sum += expf(x - t.max);   // NaN for a NaN x, whatever the max
  }
  return t;
}

struct MergeMaxSum {
  __device__ __forceinline__ MaxSum operator()(MaxSum a, MaxSum b) const {
    const float max = fmaxf(a.max, b.max);
    // Both maxima -inf: the sums are 0, or NaN after a NaN value; keep the NaN.
    if (max == -INFINITY) return {max, a.sum + b.sum};
    return {max, a.sum * expf(a.max - max) + b.sum * expf(b.max - max)};
  }
};

struct Plus {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};

// The MaxSum of row x[0, cols) over the group.
template <int kGroup>
__device__ __forceinline__ MaxSum RowMaxSum(const float* x, int64_t cols, MaxSum* shared) {
  MaxSum t{-INFINITY, 0.f};
  for (int64_t c = Group<kGroup>::Rank(); c < cols; c += kGroup) t = Push(t, x[c]);
  return GroupAllReduce<kGroup>(t, MergeMaxSum(), shared);
}

// y may be x: each thread writes only the elements it read, after the group
// has combined every read into the row's MaxSum.
template <int kGroup, bool kLog>
__global__ void SoftmaxRows(const float* x, float* y, int64_t rows, int64_t cols) {
  using G = Group<kGroup>;
  __shared__ MaxSum shared[kGroup / kWarp];
  for (int64_t row = G::Index(); row < rows; row += G::Count()) {
    const float* in = x + row * cols;
    float* out = y + row * cols;
    const MaxSum t = RowMaxSum<kGroup>(in, cols, shared);
    if constexpr (kLog) {
      const float shift = t.max + logf(t.sum);
      for (int64_t c = G::Rank(); c < cols; c += kGroup) out[c] = in[c] - shift;
    } else {
      const float inv = 1.f / t.sum;
      for (int64_t c = G::Rank(); c < cols; c += kGroup) out[c] = expf(in[c] - t.max) * inv;
    }
  }
}

template <int kGroup>
__global__ void SoftmaxXentRows(const float* __restrict__ x, const float* __restrict__ labels,
                                float* __restrict__ loss, float* __restrict__ backprop,
                                int64_t rows, int64_t cols) {
  using G = Group<kGroup>;
  __shared__ MaxSum shared_stats[kGroup / kWarp];
  __shared__ float shared_loss[kGroup / kWarp];
  for (int64_t row = G::Index(); row < rows; row += G::Count()) {
    const float* xr = x + row * cols;
    const float* lr = labels + row * cols;
    float* br = backprop + row * cols;
    const MaxSum t = RowMaxSum<kGroup>(xr, cols, shared_stats);
    const float lse = t.max + logf(t.sum);
    float sum = 0.f;
    for (int64_t c = G::Rank(); c < cols; c += kGroup) {
      const float label = lr[c];
      // label * (lse - x) is 0 for a 0 label even when lse - x is huge.
      if (label != 0.f) sum += label * (lse - xr[c]);
      br[c] = expf(xr[c] - t.max) / t.sum - label;
    }
    sum = GroupAllReduce<kGroup>(sum, Plus(), shared_loss);
    if (G::Rank() == 0) loss[row] = sum;
  }
}

template <int kGroup, typename Label>
__global__ void SparseSoftmaxXentRows(const float* __restrict__ x, const Label* __restrict__ labels,
                                      float* __restrict__ loss, float* __restrict__ backprop,
                                      int64_t rows, int64_t cols) {
  using G = Group<kGroup>;
  __shared__ MaxSum shared[kGroup / kWarp];
  for (int64_t row = G::Index(); row < rows; row += G::Count()) {
    const float* xr = x + row * cols;
    float* br = backprop + row * cols;
    const int64_t label = static_cast<int64_t>(labels[row]);
    if (label < 0 || label >= cols) {  // the same for the whole group
      for (int64_t c = G::Rank(); c < cols; c += kGroup) br[c] = NAN;
      if (G::Rank() == 0) loss[row] = NAN;
      continue;
    }
    const MaxSum t = RowMaxSum<kGroup>(xr, cols, shared);
    for (int64_t c = G::Rank(); c < cols; c += kGroup) {
      br[c] = expf(xr[c] - t.max) / t.sum - (c == label ? 1.f : 0.f);
    }
    if (G::Rank() == 0) loss[row] = t.max + logf(t.sum) - xr[label];
  }
}

}  // namespace

cudaError_t LaunchReduce(Reducer reducer, const float* in, int64_t outer, int64_t r, int64_t inner,
                         float divisor, float* out, cudaStream_t stream) {
  return Reduce(reducer, /*square=*/false, in, outer, r, inner, divisor, out, stream);
}

cudaError_t LaunchL2Loss(const float* x, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return LaunchFill(out, 1, 0.f, stream);
  return Reduce(Reducer::kSum, /*square=*/true, x, 1, n, 1, 2.f, out, stream);
}

cudaError_t LaunchFill(float* out, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  Fill<<<Blocks(n), kThreads, 0, stream>>>(out, n, value);
  return cudaGetLastError();
}

template <typename Out>
cudaError_t LaunchArgMax(const float* in, int64_t outer, int64_t r, int64_t inner, Out* out,
                         cudaStream_t stream) {
  if (outer == 0 || inner == 0) return cudaSuccess;
  if (r < 1) return cudaErrorInvalidValue;
  if (inner == 1 && r > kWarpArgMaxRow) {
    ArgMaxRows<kThreads, Out><<<Blocks(outer * kThreads), kThreads, 0, stream>>>(in, outer, r, out);
  } else if (inner == 1 && r > kShortRow) {
    ArgMaxRows<kWarp, Out><<<Blocks(outer * kWarp), kThreads, 0, stream>>>(in, outer, r, out);
  } else {
    ArgMaxColumns<Out><<<Blocks(outer * inner), kThreads, 0, stream>>>(in, outer, r, inner, out);
  }
  return cudaGetLastError();
}
template cudaError_t LaunchArgMax<int32_t>(const float*, int64_t, int64_t, int64_t, int32_t*,
                                           cudaStream_t);
template cudaError_t LaunchArgMax<int64_t>(const float*, int64_t, int64_t, int64_t, int64_t*,
                                           cudaStream_t);

cudaError_t LaunchSoftmax(bool log, const float* x, float* y, int64_t rows, int64_t cols,
                          cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (cols > kWarpSoftmaxRow) {
    const unsigned blocks = Blocks(rows * kThreads);
    if (log) {
      SoftmaxRows<kThreads, true><<<blocks, kThreads, 0, stream>>>(x, y, rows, cols);
    } else {
      SoftmaxRows<kThreads, false><<<blocks, kThreads, 0, stream>>>(x, y, rows, cols);
    }
  } else {
    const unsigned blocks = Blocks(rows * kWarp);
    if (log) {
      SoftmaxRows<kWarp, true><<<blocks, kThreads, 0, stream>>>(x, y, rows, cols);
    } else {
      SoftmaxRows<kWarp, false><<<blocks, kThreads, 0, stream>>>(x, y, rows, cols);
    }
  }
  return cudaGetLastError();
}

cudaError_t LaunchSoftmaxXent(const float* features, const float* labels, float* loss,
                              float* backprop, int64_t batch, int64_t classes,
                              cudaStream_t stream) {
  if (batch == 0) return cudaSuccess;
  if (classes > kWarpSoftmaxRow) {
    SoftmaxXentRows<kThreads><<<Blocks(batch * kThreads), kThreads, 0, stream>>>(
        features, labels, loss, backprop, batch, classes);
  } else {
    SoftmaxXentRows<kWarp><<<Blocks(batch * kWarp), kThreads, 0, stream>>>(
        features, labels, loss, backprop, batch, classes);
  }
  return cudaGetLastError();
}

template <typename Label>
cudaError_t LaunchSparseSoftmaxXent(const float* features, const Label* labels, float* loss,
                                    float* backprop, int64_t batch, int64_t classes,
                                    cudaStream_t stream) {
  if (batch == 0) return cudaSuccess;
  if (classes > kWarpSoftmaxRow) {
    SparseSoftmaxXentRows<kThreads, Label><<<Blocks(batch * kThreads), kThreads, 0, stream>>>(
        features, labels, loss, backprop, batch, classes);
  } else {
    SparseSoftmaxXentRows<kWarp, Label><<<Blocks(batch * kWarp), kThreads, 0, stream>>>(
        features, labels, loss, backprop, batch, classes);
  }
  return cudaGetLastError();
}
template cudaError_t LaunchSparseSoftmaxXent<int32_t>(const float*, const int32_t*, float*, float*,
                                                      int64_t, int64_t, cudaStream_t);
template cudaError_t LaunchSparseSoftmaxXent<int64_t>(const float*, const int64_t*, float*, float*,
                                                      int64_t, int64_t, cudaStream_t);

}  // namespace gradserve::cuda
