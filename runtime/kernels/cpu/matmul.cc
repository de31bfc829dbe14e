#include "runtime/kernels/cpu/matmul.h"

#include <omp.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.h"

namespace gradserve {

template <typename T>
absl::Status Gemm(const OpKernelContext& ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                  const T* a, const T* b, T* c) {
  if (m == 0 || n == 0) return absl::OkStatus();
  if (k == 0) {  // an empty sum; don't rely on Eigen for empty contractions
    std::fill(c, c + m * n, T(0));
    return absl::OkStatus();
  }
  using Map = Eigen::TensorMap<Eigen::Tensor<const T, 2, Eigen::RowMajor, Eigen::DenseIndex>>;
  Map am(a, ta ? k : m, ta ? m : k);
  Map bm(b, tb ? n : k, tb ? k : n);
  Eigen::TensorMap<Eigen::Tensor<T, 2, Eigen::RowMajor, Eigen::DenseIndex>> cm(c, m, n);
  Eigen::array<Eigen::IndexPair<Eigen::DenseIndex>, 1> dims = {
      Eigen::IndexPair<Eigen::DenseIndex>(ta ? 0 : 1, tb ? 1 : 0)};
  cm.device(EigenCpu(ctx)) = am.contract(bm, dims);
  return absl::OkStatus();
}

template <>
absl::Status Gemm<float>(const OpKernelContext& ctx, bool ta, bool tb, int64_t m, int64_t n,
                         int64_t k, const float* a, const float* b, float* c) {
  if (m == 0 || n == 0) return absl::OkStatus();
  if (k == 0) {
    std::fill(c, c + m * n, 0.0f);
    return absl::OkStatus();
  }
  // oneDNN threads with OpenMP; the thread count is per calling thread, so each
  // run honours its device's intra-op budget.
  omp_set_num_threads(ctx.device()->intra_op_threads());
  const dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a,
                                     ta ? m : k, b, tb ? k : n, 0.0f, c, n);
  if (s != dnnl_success) {
    return absl::InternalError(absl::StrCat("dnnl_sgemm failed with status ", static_cast<int>(s)));
  }
  return absl::OkStatus();
}

template absl::Status Gemm<double>(const OpKernelContext&, bool, bool, int64_t, int64_t, int64_t,
                                   const double*, const double*, double*);
template absl::Status Gemm<half>(const OpKernelContext&, bool, bool, int64_t, int64_t, int64_t,
                                 const half*, const half*, half*);
template absl::Status Gemm<bfloat16>(const OpKernelContext&, bool, bool, int64_t, int64_t,
                                     int64_t, const bfloat16*, const bfloat16*, bfloat16*);
template absl::Status Gemm<int32_t>(const OpKernelContext&, bool, bool, int64_t, int64_t, int64_t,
                                    const int32_t*, const int32_t*, int32_t*);
template absl::Status Gemm<int64_t>(const OpKernelContext&, bool, bool, int64_t, int64_t, int64_t,
                                    const int64_t*, const int64_t*, int64_t*);

}  // namespace gradserve
