// The element-wise launchers declared in cwise_kernels.h: the device-generic
// cores of runtime/kernels/cwise_functors.h on Eigen's GPU device.
//
// eigen_gpu.h first: EIGEN_USE_GPU must precede Eigen's first inclusion (which
// cwise_kernels.h makes, through cwise_functors.h).
#include "runtime/kernels/cuda/eigen_gpu.h"
// (the include above stays first)

#include <cfloat>

#include "runtime/kernels/cuda/cwise_kernels.h"

namespace gradserve::cuda {
namespace {

using Device = Eigen::GpuDevice;

}  // namespace

// ---- Element-wise: each launch makes its EigenGpu (our stream, our pool) ----

template <typename F, typename T, typename Out>
cudaError_t UnaryLauncher<F, T, Out>::Run(const T* x, Out* y, int64_t n, cudaStream_t stream,
                                          int ordinal) {
  if (n == 0) return cudaSuccess;
  EigenGpu gpu(stream, ordinal);
  UnaryEval<Device, T, F, Out>::Run(gpu.device(), x, y, n);
  return EigenGpu::LastError();
}

template <typename F, typename T, typename Out>
cudaError_t BinaryLauncher<F, T, Out>::Same(const T* x, const T* y, Out* z, int64_t n,
                                            cudaStream_t stream, int ordinal) {
  if (n == 0) return cudaSuccess;
  EigenGpu gpu(stream, ordinal);
  BinaryEval<Device, T, F, Out>::Same(gpu.device(), x, y, z, n);
  return EigenGpu::LastError();
}

// A one-element operand stays in device memory and is broadcast like any other
// (the host never reads it).
template <typename F, typename T, typename Out>
cudaError_t BinaryLauncher<F, T, Out>::Broadcast(const T* x, const T* y, Out* z,
                                                 const BroadcastDims& dims, cudaStream_t stream,
                                                 int ordinal) {
  if (dims.rank < 1 || dims.rank > kMaxBroadcastRank) return cudaErrorInvalidValue;
  int64_t n = 1;
  for (int i = 0; i < dims.rank; ++i) n *= dims.out[i];
  if (n == 0) return cudaSuccess;
  EigenGpu gpu(stream, ordinal);
  BinaryEval<Device, T, F, Out>::Broadcast(gpu.device(), x, y, z, dims);
  return EigenGpu::LastError();
}

template <typename In, typename Out>
cudaError_t CastLauncher<In, Out>::Run(const In* x, Out* y, int64_t n, bool truncate,
                                       cudaStream_t stream, int ordinal) {
  if (n == 0) return cudaSuccess;
  EigenGpu gpu(stream, ordinal);
  if constexpr (functor::kCastTruncates<In, Out>) {
    if (truncate) {
      CastEval<Device, In, Out, true>::Run(gpu.device(), x, y, n);
      return EigenGpu::LastError();
    }
  }
  CastEval<Device, In, Out, false>::Run(gpu.device(), x, y, n);
  return EigenGpu::LastError();
}

cudaError_t LaunchSelect(const bool* cond, const float* t, const float* e, float* out, int64_t n,
                         const BroadcastDims* dims, cudaStream_t stream, int ordinal) {
  if (n == 0) return cudaSuccess;
  if (dims != nullptr && (dims->rank < 1 || dims->rank > kMaxBroadcastRank)) {
    return cudaErrorInvalidValue;
  }
  EigenGpu gpu(stream, ordinal);
  if (dims == nullptr) {
    SelectEval<Device, float>::Same(gpu.device(), cond, t, e, out, n);
  } else {
    SelectEval<Device, float>::Broadcast(gpu.device(), cond, t, e, out, *dims);
  }
  return EigenGpu::LastError();
}

template <typename T>
cudaError_t LaunchFill(T* out, int64_t n, T value, cudaStream_t stream, int ordinal) {
  if (n == 0) return cudaSuccess;
  EigenGpu gpu(stream, ordinal);
  FillEval<Device, T>::Constant(gpu.device(), out, n, value);
  return EigenGpu::LastError();
}

cudaError_t LaunchFillFromScalar(const float* value, float* out, int64_t n, cudaStream_t stream,
                                 int ordinal) {
  if (n == 0) return cudaSuccess;
  EigenGpu gpu(stream, ordinal);
  FillEval<Device, float>::FromScalar(gpu.device(), value, out, n);
  return EigenGpu::LastError();
}

// Up to 4 terms per pass: out = acc + in[i] (+ in[i+1] (+ in[i+2])), acc being
// inputs[0] and then out; Eigen's a + b + c is (a + b) + c, the CPU's order.
cudaError_t LaunchAddN(const float* const* inputs, int count, float* out, int64_t n,
                       cudaStream_t stream, int ordinal) {
  if (n == 0) return cudaSuccess;
  if (count == 1) {
    if (inputs[0] == out) return cudaSuccess;
    return cudaMemcpyAsync(out, inputs[0], n * sizeof(float), cudaMemcpyDeviceToDevice, stream);
  }
  using In = EigenMaps::ConstMap<float, 1>;
  EigenGpu gpu(stream, ordinal);
  EigenMaps::Map<float, 1> sum(out, n);
  const float* acc = inputs[0];
  for (int i = 1; i < count;) {
    const int terms = count - i < 3 ? count - i : 3;
    const In a(acc, n), b(inputs[i], n);
    if (terms == 1) {
      sum.device(gpu.device()) = a + b;
    } else if (terms == 2) {
      sum.device(gpu.device()) = a + b + In(inputs[i + 1], n);
    } else {
      sum.device(gpu.device()) = a + b + In(inputs[i + 1], n) + In(inputs[i + 2], n);
    }
    i += terms;
    acc = out;
  }
  return EigenGpu::LastError();
}

// ---- The instantiations: what cwise_ops.cc registers (float, and bool where
// the op's output or inputs are bool) ----

template struct UnaryLauncher<functor::AbsFn, float>;
template struct UnaryLauncher<functor::NegFn, float>;
template struct UnaryLauncher<functor::ExpFn, float>;
template struct UnaryLauncher<functor::LogFn, float>;
template struct UnaryLauncher<functor::SqrtFn, float>;
template struct UnaryLauncher<functor::RsqrtFn, float>;
template struct UnaryLauncher<functor::SquareFn, float>;
template struct UnaryLauncher<functor::SigmoidFn, float>;
template struct UnaryLauncher<functor::TanhFn, float>;
template struct UnaryLauncher<functor::ReluFn, float>;
template struct UnaryLauncher<functor::Relu6Fn, float>;
template struct UnaryLauncher<functor::EluFn, float>;

template struct BinaryLauncher<functor::AddFn, float>;
template struct BinaryLauncher<functor::SubFn, float>;
template struct BinaryLauncher<functor::MulFn, float>;
template struct BinaryLauncher<functor::DivFn, float>;
template struct BinaryLauncher<functor::MaxFn, float>;
template struct BinaryLauncher<functor::MinFn, float>;
template struct BinaryLauncher<functor::PowFn, float>;
template struct BinaryLauncher<functor::ReluGradFn, float>;
template struct BinaryLauncher<functor::Relu6GradFn, float>;
template struct BinaryLauncher<functor::EluGradFn, float>;
template struct BinaryLauncher<functor::SigmoidGradFn, float>;
template struct BinaryLauncher<functor::TanhGradFn, float>;
template struct BinaryLauncher<functor::EqualFn, float, bool>;
template struct BinaryLauncher<functor::LessFn, float, bool>;
template struct BinaryLauncher<functor::GreaterFn, float, bool>;
template struct BinaryLauncher<functor::LogicalAndFn, bool>;

// Cast from float and from bool (SrcT) to every other numeric type and bool.
template struct CastLauncher<float, double>;
template struct CastLauncher<float, Eigen::half>;
template struct CastLauncher<float, Eigen::bfloat16>;
template struct CastLauncher<float, int8_t>;
template struct CastLauncher<float, uint8_t>;
template struct CastLauncher<float, int16_t>;
template struct CastLauncher<float, int32_t>;
template struct CastLauncher<float, int64_t>;
template struct CastLauncher<float, bool>;
template struct CastLauncher<bool, float>;
template struct CastLauncher<bool, double>;
template struct CastLauncher<bool, Eigen::half>;
template struct CastLauncher<bool, Eigen::bfloat16>;
template struct CastLauncher<bool, int8_t>;
template struct CastLauncher<bool, uint8_t>;
template struct CastLauncher<bool, int16_t>;
template struct CastLauncher<bool, int32_t>;
template struct CastLauncher<bool, int64_t>;

template cudaError_t LaunchFill<float>(float*, int64_t, float, cudaStream_t, int);
template cudaError_t LaunchFill<bool>(bool*, int64_t, bool, cudaStream_t, int);

}  // namespace gradserve::cuda
