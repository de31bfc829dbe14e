// Pooling and batch-norm kernels (pooling_kernels.h).
//
// Note [Pooling gradients gather]
// The backward pooling ops write each input element once, from one thread that
// visits the windows covering it in row-major window order: the order in which
// the CPU kernel adds the windows' contributions, so the float sums agree bit
// for bit and no atomics are needed. MaxPoolGrad first records each window's
// first maximum (pass 1, one thread per window), then every input element sums
// dy over the covering windows whose maximum it is (pass 2).
//
// Note [Batch-norm channel sums]
// Per-channel sums of x viewed as [outer, channels, inner] run in two stages
// that fix the summation order (deterministic, no atomics), in double as on the
// CPU. Stage 1 cuts each channel's elements into `splits` contiguous ranges and
// reduces each range in a block's shared memory: in channels-last views (inner
// = 1) a block takes one range of 32 adjacent channels, so that its loads are
// coalesced; in other views, one range of one channel. Stage 2, one block per
// channel, adds the channel's partial sums by a tree of fixed shape and derives
// its statistics or coefficients. Two passes for the variance, as on the CPU:
// the mean first, then the squared deviations from it.
#include <algorithm>
#include <cfloat>
#include <initializer_list>
#include <limits>

#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/cuda/pooling_kernels.h"
#include "runtime/kernels/cuda/reduction_kernels.h"

namespace gradserve::cuda {
namespace {

__device__ int64_t Min(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ int64_t Max(int64_t a, int64_t b) { return a > b ? a : b; }

// ---- Pooling ----

// Element (b, c, y, x) of an image batch of h x w pixels in the layout of `d`.
struct Element {
  int64_t b, c, y, x;
};
__device__ Element ElementOf(const PoolDims& d, int64_t i, int64_t h, int64_t w) {
  Element e;
  if (d.channels_last) {
    e.c = i % d.depth;
    i /= d.depth;
    e.x = i % w;
    i /= w;
    e.y = i % h;
    e.b = i / h;
  } else {
    e.x = i % w;
    i /= w;
    e.y = i % h;
    i /= h;
    e.c = i % d.depth;
    e.b = i / d.depth;
  }
  return e;
}
__device__ int64_t OffsetOf(const PoolDims& d, int64_t b, int64_t c, int64_t y, int64_t x,
                            int64_t h, int64_t w) {
  return d.channels_last ? ((b * h + y) * w + x) * d.depth + c
                         : ((b * d.depth + c) * h + y) * w + x;
}

// The input plane of (b, c): pixel p = iy * in_w + ix is at plane[p * stride].
struct Plane {
  const float* at;
  int64_t stride;
  __device__ float operator[](int64_t p) const { return at[p * stride]; }
};
__device__ Plane PlaneOf(const PoolDims& d, const float* x, int64_t b, int64_t c) {
  return {x + OffsetOf(d, b, c, 0, 0, d.in_h, d.in_w), d.channels_last ? d.depth : 1};
}

// The window of output pixel (oy, ox) clipped to the image: rows [y_lo, y_hi),
// columns [x_lo, x_hi).
struct Window {
  int64_t y_lo, y_hi, x_lo, x_hi;
  __device__ int64_t count() const { return (y_hi - y_lo) * (x_hi - x_lo); }
  __device__ bool empty() const { return y_hi <= y_lo || x_hi <= x_lo; }
};
__device__ Window WindowOf(const PoolDims& d, int64_t oy, int64_t ox) {
  const int64_t y0 = oy * d.stride_h - d.pad_top, x0 = ox * d.stride_w - d.pad_left;
  return {Max(y0, 0), Min(y0 + d.k_h, d.in_h), Max(x0, 0), Min(x0 + d.k_w, d.in_w)};
}

// The pixel (iy * in_w + ix) of the window's first maximum in row-major order.
__device__ int64_t FirstMax(const PoolDims& d, const Plane& in, const Window& w) {
  int64_t best = w.y_lo * d.in_w + w.x_lo;
  float best_value = in[best];
  for (int64_t iy = w.y_lo; iy < w.y_hi; ++iy) {
    for (int64_t ix = w.x_lo; ix < w.x_hi; ++ix) {
      const float v = in[iy * d.in_w + ix];
      if (v > best_value) {  // the CPU's test: a NaN first element stays the maximum
        best = iy * d.in_w + ix;
        best_value = v;
      }
    }
  }
  return best;
}

// The windows [lo, hi] along one dimension that cover position `pos` of the image.
__device__ void Covering(int64_t pos, int64_t pad, int64_t k, int64_t stride, int64_t out,
                         int64_t* lo, int64_t* hi) {
  const int64_t p = pos + pad;  // window o covers padded positions [o * stride, o * stride + k)
  *lo = p >= k ? (p - k) / stride + 1 : 0;
  *hi = Min(p / stride, out - 1);
}

template <PoolKind kKind>
__global__ void Pool(PoolDims d, const float* x, float* y, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const Element o = ElementOf(d, i, d.out_h, d.out_w);
    const Window w = WindowOf(d, o.y, o.x);
    const Plane in = PlaneOf(d, x, o.b, o.c);
    if constexpr (kKind == PoolKind::kMax) {
      // An empty window (an empty image under explicit padding) reads nothing.
      float acc = w.empty() ? -FLT_MAX : in[w.y_lo * d.in_w + w.x_lo];
      for (int64_t iy = w.y_lo; iy < w.y_hi; ++iy) {
        for (int64_t ix = w.x_lo; ix < w.x_hi; ++ix) {
          const float v = in[iy * d.in_w + ix];
          acc = v > acc ? v : acc;
        }
      }
      y[i] = acc;
    } else {
      float acc = 0.f;
      for (int64_t iy = w.y_lo; iy < w.y_hi; ++iy) {
        for (int64_t ix = w.x_lo; ix < w.x_hi; ++ix) acc += in[iy * d.in_w + ix];
      }
      y[i] = acc * (1.f / static_cast<float>(w.count()));
    }
  }
}

// MaxPoolGrad pass 1 (Note [Pooling gradients gather]): argmax[i] = the pixel
// of window i's first maximum.
__global__ void WindowArgmax(PoolDims d, const float* x, int64_t* argmax, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const Element o = ElementOf(d, i, d.out_h, d.out_w);
    argmax[i] = FirstMax(d, PlaneOf(d, x, o.b, o.c), WindowOf(d, o.y, o.x));
  }
}

enum class Gather { kMax, kAvg };

// Pass 2 of MaxPoolGrad, and AvgPoolGrad: one thread per input element sums
// over the windows covering it (Note [Pooling gradients gather]).
template <Gather kGather>
__global__ void GatherGrad(PoolDims d, const int64_t* argmax, const float* dy, float* dx,
                           int64_t n) {
  for (int64_t i : GridStride(n)) {
    const Element e = ElementOf(d, i, d.in_h, d.in_w);
    int64_t oy_lo, oy_hi, ox_lo, ox_hi;
    Covering(e.y, d.pad_top, d.k_h, d.stride_h, d.out_h, &oy_lo, &oy_hi);
    Covering(e.x, d.pad_left, d.k_w, d.stride_w, d.out_w, &ox_lo, &ox_hi);
    float acc = 0.f;
    for (int64_t oy = oy_lo; oy <= oy_hi; ++oy) {
      for (int64_t ox = ox_lo; ox <= ox_hi; ++ox) {
        const int64_t o = OffsetOf(d, e.b, e.c, oy, ox, d.out_h, d.out_w);
        if constexpr (kGather == Gather::kMax) {
          if (argmax[o] == e.y * d.in_w + e.x) acc += dy[o];
        } else {
          // The CPU rounds the share before adding it: no fused multiply-add.
          const float inv_count = 1.f / static_cast<float>(WindowOf(d, oy, ox).count());
          acc += __fmul_rn(dy[o], inv_count);
        }
      }
    }
    dx[i] = acc;
  }
}

__global__ void MaxPoolGradGrad(PoolDims d, const float* x, const float* g, float* out, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const Element o = ElementOf(d, i, d.out_h, d.out_w);
    const Window w = WindowOf(d, o.y, o.x);
    if (w.empty()) {  // an empty window (empty image): nothing to route
      out[i] = 0.f;
      continue;
    }
    const int64_t best = FirstMax(d, PlaneOf(d, x, o.b, o.c), w);
    out[i] = PlaneOf(d, g, o.b, o.c)[best];
  }
}

// ---- Batch normalization ----

// A channel's two running sums (Note [Batch-norm channel sums]); a second one
// only for the gradient. Plain data: it lives in shared memory.
struct Sums {
  double a, b;
  __device__ Sums& operator+=(const Sums& o) {
    a += o.a;
    b += o.b;
    return *this;
  }
};

// The summed terms at flat index i of channel c.
struct SumOfX {
  const float* x;
  __device__ Sums operator()(int64_t i, int64_t) const { return {x[i], 0.0}; }
};
struct SumOfSquaredDeviations {
  const float* x;
  const double* mean;  // the double mean, as on the CPU
  __device__ Sums operator()(int64_t i, int64_t c) const {
    const double dev = static_cast<double>(x[i]) - mean[c];
    return {dev * dev, 0.0};
  }
};
struct SumsOfGradient {  // sum(dy) and sum(dy * (x - mean))
  const float* dy;
  const float* x;
  const float* mean;
  __device__ Sums operator()(int64_t i, int64_t c) const {
    const double g = dy[i];
    return {g, g * (static_cast<double>(x[i]) - mean[c])};
  }
};

constexpr int kTileChannels = 32, kTileRows = 8;  // the channels-last block shape
constexpr int64_t kMaxSumBlocks = 4096;           // stage 1's blocks, at most

// Channels-last views with at least a tile of channels take the tiled stage 1.
bool Tiled(const ChannelDims& d) { return d.inner == 1 && d.channels >= kTileChannels; }

// Ranges per channel: enough blocks to fill the GPU, each with enough work.
int64_t Splits(const ChannelDims& d) {
  if (d.channels == 0) return 1;
  const int64_t blocks_per_split = Tiled(d) ? CeilDiv(d.channels, kTileChannels) : d.channels;
  const int64_t min_work = Tiled(d) ? 256 : 4096;  // rows, elements
  const int64_t want = CeilDiv(d.per_channel(), min_work);
  const int64_t cap = kMaxSumBlocks / blocks_per_split;
  return std::max<int64_t>(1, std::min(want, cap));
}

// Stage 1, channels-last: block (x, s) sums rows [s * outer / splits, (s + 1)
// * outer / splits) of channels [32 x, 32 x + 32) into partial[s * channels + c].
template <typename Term>
__global__ void TiledPartialSums(Term term, ChannelDims d, int64_t splits, Sums* partial) {
  __shared__ Sums tile[kTileRows][kTileChannels];
  const int64_t c = int64_t{blockIdx.x} * kTileChannels + threadIdx.x;
  const int64_t s = blockIdx.y;
  const int64_t begin = s * d.outer / splits, end = (s + 1) * d.outer / splits;
  Sums acc{0.0, 0.0};
  if (c < d.channels) {
#pragma unroll 4
    for (int64_t o = begin + threadIdx.y; o < end; o += kTileRows) {
      acc += term(o * d.channels + c, c);
    }
  }
  tile[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < d.channels) {
    Sums total{0.0, 0.0};
    for (int r = 0; r < kTileRows; ++r) total += tile[r][threadIdx.x];
    partial[s * d.channels + c] = total;
  }
}

// The sum of the block's kThreads values `acc` by a tree of fixed shape, left
// in scratch[0] (scratch holds kThreads values). Every thread of the block
// calls it; it synchronizes.
__device__ void BlockTreeSum(Sums acc, Sums* scratch) {
  scratch[threadIdx.x] = acc;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
    __syncthreads();
  }
}

// Stage 1, any view: block (c, s) sums elements [s * n / splits, (s + 1) * n /
// splits) of channel c (n = per_channel(), in [outer, inner] order) into
// partial[s * channels + c]. Launched with kThreads threads.
template <typename Term>
__global__ void PartialSums(Term term, ChannelDims d, int64_t splits, Sums* partial) {
  __shared__ Sums scratch[kThreads];
  const int64_t c = blockIdx.x, s = blockIdx.y, n = d.outer * d.inner;
  const int64_t begin = s * n / splits, end = (s + 1) * n / splits;
  Sums acc{0.0, 0.0};
#pragma unroll 4
  for (int64_t j = begin + threadIdx.x; j < end; j += kThreads) {
    const int64_t o = j / d.inner;
    acc += term((o * d.channels + c) * d.inner + (j - o * d.inner), c);
  }
  BlockTreeSum(acc, scratch);
  if (threadIdx.x == 0) partial[s * d.channels + c] = scratch[0];
}

template <typename Term>
cudaError_t LaunchPartialSums(Term term, const ChannelDims& d, int64_t splits, Sums* partial,
                              cudaStream_t stream) {
  if (Tiled(d)) {
    const dim3 grid(static_cast<unsigned>(CeilDiv(d.channels, kTileChannels)),
                    static_cast<unsigned>(splits));
    TiledPartialSums<<<grid, dim3(kTileChannels, kTileRows), 0, stream>>>(term, d, splits, partial);
  } else {
    const dim3 grid(static_cast<unsigned>(d.channels), static_cast<unsigned>(splits));
    PartialSums<<<grid, kThreads, 0, stream>>>(term, d, splits, partial);
  }
  return cudaGetLastError();
}

// Stage 2: the total of channel c's partial sums, in fixed order, returned to
// every thread of the block (kThreads threads, all calling it).
__device__ Sums BlockTotal(const Sums* partial, int64_t splits, int64_t channels, int64_t c) {
  __shared__ Sums scratch[kThreads];
  Sums acc{0.0, 0.0};
  for (int64_t s = threadIdx.x; s < splits; s += kThreads) acc += partial[s * channels + c];
  BlockTreeSum(acc, scratch);
  const Sums total = scratch[0];
  __syncthreads();  // before the next call overwrites scratch
  return total;
}

// Stage 2's grid: a block per channel (block-stride loops beyond kMaxBlocks).
unsigned ChannelBlocks(int64_t channels) { return CappedBlocks(channels); }

// The scratch's layout: partial sums [splits * channels], the double mean and
// the float coefficients [3 * channels] (the normalization factor, or the
// gradient's a, b and k).
struct Scratch {
  Sums* partial;
  double* mean;
  float* coef;
};
Scratch Carve(void* base, const ChannelDims& d, int64_t splits) {
  Scratch s;
  s.partial = static_cast<Sums*>(base);
  s.mean = reinterpret_cast<double*>(s.partial + splits * d.channels);
  s.coef = reinterpret_cast<float*>(s.mean + d.channels);
  return s;
}

__global__ void FinishMean(const Sums* partial, int64_t splits, int64_t channels, double n,
                           double* mean) {
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const Sums total = BlockTotal(partial, splits, channels, c);
    if (threadIdx.x == 0) mean[c] = total.a / n;
  }
}

// Training statistics from the squared deviations' sums, as the CPU forms them
// (float arithmetic, each product rounded); factor = scale / sqrt(var + epsilon).
__global__ void FinishTraining(const Sums* partial, int64_t splits, int64_t channels, double n,
                               const double* mean_d, BatchNormForward t, float epsilon,
                               float avg_factor, float bessel, float* factor) {
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const Sums total = BlockTotal(partial, splits, channels, c);
    if (threadIdx.x != 0) continue;
    const float mean = static_cast<float>(mean_d[c]);
    const float var = static_cast<float>(total.a / n);
    const float f = avg_factor;
    if (f == 1.0f) {  // the running statistics may then be empty
      t.batch_mean[c] = mean;
      t.batch_variance[c] = var * bessel;
    } else {
      t.batch_mean[c] = __fadd_rn(__fmul_rn(1 - f, t.mean[c]), __fmul_rn(f, mean));
      t.batch_variance[c] =
          __fadd_rn(__fmul_rn(1 - f, t.variance[c]), __fmul_rn(__fmul_rn(f, bessel), var));
    }
    t.saved_mean[c] = mean;
    t.saved_variance[c] = var;
    factor[c] = t.scale[c] / sqrtf(var + epsilon);
  }
}

__global__ void FinishInference(int64_t channels, BatchNormForward t, float epsilon,
                                float* factor) {
  for (int64_t c : GridStride(channels)) {
    t.batch_mean[c] = t.saved_mean[c] = t.mean[c];
    t.batch_variance[c] = t.saved_variance[c] = t.variance[c];
    factor[c] = t.scale[c] / sqrtf(t.variance[c] + epsilon);
  }
}

// y = (x - mean) * factor + offset, each product rounded as on the CPU.
__global__ void Normalize(ChannelDims d, const float* x, const float* mean, const float* factor,
                          const float* offset, float* y, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const int64_t c = i / d.inner % d.channels;
    y[i] = __fadd_rn(__fmul_rn(x[i] - mean[c], factor[c]), offset[c]);
  }
}

// The gradient's per-channel results and coefficients (batch_norm_ops.cc):
// dx = a * dy + b * (x - mean) + k; coef = [a | b | k].
__global__ void FinishGrad(const Sums* partial, int64_t splits, int64_t channels, double n,
                           BatchNormGrad t, float epsilon, bool is_training, float* coef) {
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    const Sums sum = BlockTotal(partial, splits, channels, c);  // sum(dy), sum(dy * (x - m))
    if (threadIdx.x != 0) continue;
    const double r = 1.0 / sqrt(static_cast<double>(t.variance[c]) + epsilon);
    t.d_offset[c] = static_cast<float>(sum.a);
    t.d_scale[c] = static_cast<float>(sum.b * r);
    const double sr = t.scale[c] * r;
    coef[c] = static_cast<float>(sr);
    coef[channels + c] = is_training ? static_cast<float>(-sr * r * r * sum.b / n) : 0.f;
    coef[2 * channels + c] = is_training ? static_cast<float>(-sr * sum.a / n) : 0.f;
  }
}

__global__ void ApplyGrad(ChannelDims d, BatchNormGrad t, const float* coef, int64_t n) {
  for (int64_t i : GridStride(n)) {
    const int64_t c = i / d.inner % d.channels;
    const float xc = t.x[i] - t.mean[c];
    t.dx[i] = __fadd_rn(__fadd_rn(__fmul_rn(coef[c], t.dy[i]), __fmul_rn(coef[d.channels + c], xc)),
                        coef[2 * d.channels + c]);
  }
}

}  // namespace

// ---- Pooling launchers ----

cudaError_t LaunchPool(PoolKind kind, const PoolDims& d, const float* x, float* y,
                       cudaStream_t stream) {
  const int64_t n = d.out_size();
  if (n == 0) return cudaSuccess;
  if (kind == PoolKind::kMax) {
    Pool<PoolKind::kMax><<<Blocks(n), kThreads, 0, stream>>>(d, x, y, n);
  } else {
    Pool<PoolKind::kAvg><<<Blocks(n), kThreads, 0, stream>>>(d, x, y, n);
  }
  return cudaGetLastError();
}

cudaError_t LaunchMaxPoolGrad(const PoolDims& d, const float* x, const float* dy, int64_t* argmax,
                              float* dx, cudaStream_t stream) {
  const int64_t windows = d.out_size(), n = d.in_size();
  if (n == 0) return cudaSuccess;
  if (windows > 0) {
    WindowArgmax<<<Blocks(windows), kThreads, 0, stream>>>(d, x, argmax, windows);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  GatherGrad<Gather::kMax><<<Blocks(n), kThreads, 0, stream>>>(d, argmax, dy, dx, n);
  return cudaGetLastError();
}

cudaError_t LaunchMaxPoolGradGrad(const PoolDims& d, const float* x, const float* g, float* out,
                                  cudaStream_t stream) {
  const int64_t n = d.out_size();
  if (n == 0) return cudaSuccess;
  MaxPoolGradGrad<<<Blocks(n), kThreads, 0, stream>>>(d, x, g, out, n);
  return cudaGetLastError();
}

cudaError_t LaunchAvgPoolGrad(const PoolDims& d, const float* dy, float* dx, cudaStream_t stream) {
  const int64_t n = d.in_size();
  if (n == 0) return cudaSuccess;
  GatherGrad<Gather::kAvg><<<Blocks(n), kThreads, 0, stream>>>(d, nullptr, dy, dx, n);
  return cudaGetLastError();
}

// ---- Batch-norm launchers ----

int64_t BatchNormScratchBytes(const ChannelDims& d) {
  const int64_t bytes = Splits(d) * d.channels * static_cast<int64_t>(sizeof(Sums)) +
                        d.channels * static_cast<int64_t>(sizeof(double)) +
                        3 * d.channels * static_cast<int64_t>(sizeof(float));
  return (bytes + 7) / 8 * 8;
}

cudaError_t LaunchBatchNormForward(const ChannelDims& d, const BatchNormForward& t, float epsilon,
                                   float avg_factor, bool is_training, void* scratch,
                                   cudaStream_t stream) {
  const int64_t channels = d.channels, n = d.per_channel() * channels;
  if (channels == 0) return cudaSuccess;
  if (channels > 2147483647) return cudaErrorInvalidValue;  // stage 1's grid
  if (n == 0) {
    for (float* stat : {t.batch_mean, t.batch_variance, t.saved_mean, t.saved_variance}) {
      if (cudaError_t e =
              LaunchFill(stat, channels, std::numeric_limits<float>::quiet_NaN(), stream);
          e != cudaSuccess)
        return e;
    }
    return cudaSuccess;
  }
  const int64_t splits = Splits(d);
  const Scratch s = Carve(scratch, d, splits);
  const float* mean = t.mean;
  if (is_training) {
    const double count = static_cast<double>(d.per_channel());
    // As the CPU forms it, in float.
    const float nf = static_cast<float>(d.per_channel());
    const float bessel = nf > 1 ? nf / (nf - 1) : 1.0f;
    if (cudaError_t e = LaunchPartialSums(SumOfX{t.x}, d, splits, s.partial, stream);
        e != cudaSuccess)
      return e;
    FinishMean<<<ChannelBlocks(channels), kThreads, 0, stream>>>(s.partial, splits, channels, count,
                                                                 s.mean);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    if (cudaError_t e =
            LaunchPartialSums(SumOfSquaredDeviations{t.x, s.mean}, d, splits, s.partial, stream);
        e != cudaSuccess)
      return e;
    FinishTraining<<<ChannelBlocks(channels), kThreads, 0, stream>>>(
        s.partial, splits, channels, count, s.mean, t, epsilon, avg_factor, bessel, s.coef);
    mean = t.saved_mean;
  } else {
    FinishInference<<<Blocks(channels), kThreads, 0, stream>>>(channels, t, epsilon, s.coef);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  Normalize<<<Blocks(n), kThreads, 0, stream>>>(d, t.x, mean, s.coef, t.offset, t.y, n);
  return cudaGetLastError();
}

cudaError_t LaunchBatchNormGrad(const ChannelDims& d, const BatchNormGrad& t, float epsilon,
                                bool is_training, void* scratch, cudaStream_t stream) {
  const int64_t channels = d.channels, n = d.per_channel() * channels;
  if (channels == 0) return cudaSuccess;
  if (channels > 2147483647) return cudaErrorInvalidValue;  // stage 1's grid
  if (n == 0) {
    if (cudaError_t e = LaunchFill(t.d_scale, channels, 0.f, stream); e != cudaSuccess) return e;
    return LaunchFill(t.d_offset, channels, 0.f, stream);
  }
  const int64_t splits = Splits(d);
  const Scratch s = Carve(scratch, d, splits);
  if (cudaError_t e =
          LaunchPartialSums(SumsOfGradient{t.dy, t.x, t.mean}, d, splits, s.partial, stream);
      e != cudaSuccess)
    return e;
  FinishGrad<<<ChannelBlocks(channels), kThreads, 0, stream>>>(s.partial, splits, channels,
                                                               static_cast<double>(d.per_channel()),
                                                               t, epsilon, is_training, s.coef);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  ApplyGrad<<<Blocks(n), kThreads, 0, stream>>>(d, t, s.coef, n);
  return cudaGetLastError();
}

}  // namespace gradserve::cuda
