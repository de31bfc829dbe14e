// What every CUDA OpKernel (runtime/kernels/cuda/*_ops.cc) uses: the device,
// the on-device check of its inputs, and registration.
//
// The split (as in TensorFlow's *_op.cc / *_op_gpu.cu.cc): an OpKernel here is
// host C++ that validates, allocates outputs on the device and calls a plain
// launch function declared in a *_kernels.h header; the .cu file behind it is
// compiled by nvcc and sees only raw pointers, sizes and the stream (and Eigen
// expressions, through eigen_gpu.h). Launchers queue work on the device's
// stream and never wait for it.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/kernel.h"
#include "runtime/resource.h"

namespace gradserve {

inline CudaDevice& Gpu(OpKernelContext& ctx) { return *static_cast<CudaDevice*>(ctx.device()); }

// InvalidArgument unless every input but `host_inputs` is in the kernel's
// device memory and the `host_inputs` (which the kernel reads on the host) are
// in host memory: placement puts copies in front, so this catches a wiring bug
// before a kernel dereferences the wrong memory.
inline absl::Status CheckOnDevice(const OpKernel& k, OpKernelContext& ctx,
                                  std::initializer_list<int> host_inputs = {}) {
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    if (absl::c_linear_search(host_inputs, i)) {
      GS_CHECK_ARG(ctx.input(i).host_accessible(), k.name(), ": input ", i, " is on ",
                   ctx.input(i).device(), ", not in host memory");
    } else {
      GS_CHECK_ARG(ctx.input(i).device() == ctx.device()->name(), k.name(), ": input ", i,
                   " is on ", ctx.input(i).device(), ", not on ", ctx.device()->name());
    }
  }
  return absl::OkStatus();
}

// Internal error naming the node when a launch failed.
inline absl::Status LaunchStatus(const OpKernel& k, cudaError_t error) {
  return CudaError(error, k.name());
}

// Registers kernel class K, constructed as K(node, args...), for CUDA under
// `op` for the dtypes `types` of attr `type_attr`.
template <typename K, typename... Args>
absl::Status RegisterCuda(KernelRegistry& r, std::string op, std::vector<DType> types,
                          std::string type_attr, HostMemory host, Args... args) {
  return r.Register(KernelDef{
      .op = std::move(op),
      .device_type = kDeviceCuda,
      .type_attr = std::move(type_attr),
      .types = std::move(types),
      .factory = [args...](const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        return std::unique_ptr<OpKernel>(new K(node, args...));
      },
      .host_memory_inputs = std::move(host.inputs),
      .host_memory_outputs = std::move(host.outputs)});
}

// Float32 kernel of attr "T", every argument in device memory.
template <typename K, typename... Args>
absl::Status RegisterCudaFloat(KernelRegistry& r, std::string op, Args... args) {
  return RegisterCuda<K>(r, std::move(op), {DType::kFloat}, "T", {}, args...);
}

// The per-family registration functions (one per *_ops.cc), called by
// RegisterCudaKernels (cuda_ops.cc).
absl::Status RegisterCudaCwiseKernels(KernelRegistry& r);
absl::Status RegisterCudaReductionKernels(KernelRegistry& r);
absl::Status RegisterCudaArrayKernels(KernelRegistry& r);
absl::Status RegisterCudaMatMulKernels(KernelRegistry& r);
absl::Status RegisterCudaNnKernels(KernelRegistry& r);
absl::Status RegisterCudaPoolingKernels(KernelRegistry& r);
absl::Status RegisterCudaOptimizerKernels(KernelRegistry& r);
absl::Status RegisterCudaStateKernels(KernelRegistry& r);

}  // namespace gradserve
