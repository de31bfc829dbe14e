// RegisterCudaKernels: the CUDA device's kernel families (runtime/kernels/cuda/
// <family>_ops.cc, each with its launchers in <family>_kernels.{h,cu}).
#include "runtime/kernels/cuda/cuda_kernel_util.h"

namespace gradserve {

absl::Status RegisterCudaKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterCudaCwiseKernels(r));
  GS_RETURN_IF_ERROR(RegisterCudaReductionKernels(r));
  GS_RETURN_IF_ERROR(RegisterCudaMatMulKernels(r));
  GS_RETURN_IF_ERROR(RegisterCudaNnKernels(r));
  GS_RETURN_IF_ERROR(RegisterCudaPoolingKernels(r));
  GS_RETURN_IF_ERROR(RegisterCudaOptimizerKernels(r));
  GS_RETURN_IF_ERROR(RegisterCudaArrayKernels(r));
  GS_RETURN_IF_ERROR(RegisterCudaStateKernels(r));
  return absl::OkStatus();
}

}  // namespace gradserve
