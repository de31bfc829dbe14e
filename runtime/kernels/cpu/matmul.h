// Row-major GEMM on the CPU: C[m,n] = op(A) * op(B), op = optional transpose.
// float goes to oneDNN's sgemm (measured fastest here, see bench/matmul_bench.cc);
// other types use Eigen's tensor contraction on the device's thread pool.
#pragma once

#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {

template <typename T>
absl::Status Gemm(const OpKernelContext& ctx, bool transpose_a, bool transpose_b, int64_t m,
                  int64_t n, int64_t k, const T* a, const T* b, T* c);

}  // namespace gradserve
