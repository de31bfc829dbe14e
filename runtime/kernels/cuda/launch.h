// Launch geometry shared by the hand-written kernels (runtime/kernels/cuda/*.cu),
// for .cu files only.
//
// Every launch uses blocks of kThreads threads. Element-wise kernels are
// grid-stride loops over their n elements,
//
//   __global__ void Scale(float* x, float a, int64_t n) {
//     for (int64_t i : GridStride(n)) x[i] *= a;
//   }
//   Scale<<<Blocks(n), kThreads, 0, stream>>>(x, a, n);
//
// so the grid may be capped (Blocks) and the loop covers what it leaves out.
// The loop's index and stride are int64_t whatever the grid: they cannot
// overflow.
#pragma once

#ifndef __CUDACC__
#error "launch.h is for nvcc (.cu files)"
#endif

#include <cstdint>

namespace gradserve::cuda {

// Threads per block of every launch. Kernels that reduce in shared memory
// (reduction_kernels.cu, pooling_kernels.cu) size their buffers by it and
// halve it down to one warp, so it stays a power of two and whole warps.
constexpr int kThreads = 256;
static_assert(kThreads % 32 == 0 && (kThreads & (kThreads - 1)) == 0,
              "kThreads is a power of two of whole warps");

// The most blocks a launch asks for; grid-stride loops cover the rest.
constexpr int64_t kMaxBlocks = 65535;

// a / b rounded up, for a >= 0 and b > 0.
constexpr int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// `blocks` capped to [1, kMaxBlocks]: a grid whose loops stride over the rest.
inline unsigned CappedBlocks(int64_t blocks) {
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

// Blocks of kThreads for one thread per element of n (capped: CappedBlocks).
inline unsigned Blocks(int64_t n) { return CappedBlocks(CeilDiv(n, kThreads)); }

// This thread's index in the grid, and the grid's threads (x dimension).
__device__ __forceinline__ int64_t GlobalThread() {
  return int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridThreads() { return int64_t{gridDim.x} * blockDim.x; }

// The indices in [0, n) of this thread in a grid-stride loop:
// GlobalThread(), then every GridThreads() after it.
class GridStride {
 public:
  struct End {
    int64_t n;
  };
  class Iterator {
   public:
    __device__ __forceinline__ Iterator(int64_t i, int64_t step) : i_(i), step_(step) {}
    __device__ __forceinline__ int64_t operator*() const { return i_; }
    __device__ __forceinline__ Iterator& operator++() {
      i_ += step_;
      return *this;
    }
    __device__ __forceinline__ bool operator!=(End end) const { return i_ < end.n; }

   private:
    int64_t i_, step_;
  };

  __device__ __forceinline__ explicit GridStride(int64_t n) : n_(n) {}
  __device__ __forceinline__ Iterator begin() const { return {GlobalThread(), GridThreads()}; }
  __device__ __forceinline__ End end() const { return {n_}; }

 private:
  int64_t n_;
};

}  // namespace gradserve::cuda
