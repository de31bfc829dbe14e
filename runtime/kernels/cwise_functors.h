// Element-wise math written once for every device (as TensorFlow's functors):
// the functor structs of the element-wise ops, and their evaluation on an Eigen
// device: Eigen::ThreadPoolDevice in the CPU kernels (runtime/kernels/cpu/
// cwise.h) and Eigen::GpuDevice in runtime/kernels/cuda/cwise_kernels.cu.
//
// Plain Eigen, no absl: nvcc (C++17) and the host compiler both include it. A
// .cu file must include runtime/kernels/cuda/eigen_gpu.h before this header, so
// that Eigen is first seen with EIGEN_USE_GPU.
//
// A functor is a struct with a static `Apply` that builds an Eigen expression
// from expressions of its operands (on the host; the device evaluates it):
//   struct AddFn { template <typename A, typename B>
//                  static auto Apply(const A& a, const B& b) { return a + b; } };
// Custom scalar functors inside an expression are EIGEN_DEVICE_FUNC.
//
// The evaluation cores take raw pointers in the device's memory, sizes in
// elements, and the device; they queue work and return nothing (a GPU launch
// error is read by the caller). Output and input may be the same buffer where
// each output element is computed from the input element of the same index
// (forwarded buffers); broadcast operands are never written.
#pragma once

#if defined(__CUDACC__) && !defined(EIGEN_USE_GPU)
#error "include runtime/kernels/cuda/eigen_gpu.h before runtime/kernels/cwise_functors.h"
#endif

#include <cstdint>
#include <type_traits>

#include "unsupported/Eigen/CXX11/Tensor"

namespace gradserve {
namespace functor {

template <typename Expr>
using ScalarOf = std::remove_const_t<typename Eigen::internal::traits<Expr>::Scalar>;

// ---- Unary math (Neg, Abs, Exp, Log, Sqrt, Rsqrt, Square) ----

struct NegFn {
  template <typename X>
  static auto Apply(const X& x) {
    return -x;
  }
};
struct AbsFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.abs();
  }
};
struct ExpFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.exp();
  }
};
struct LogFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.log();
  }
};
struct SqrtFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.sqrt();
  }
};
struct RsqrtFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.rsqrt();
  }
};
struct SquareFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.square();
  }
};

// ---- Activations (Relu, Relu6, Elu, Sigmoid, Tanh) ----

struct ReluFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.cwiseMax(ScalarOf<X>(0));
  }
};
struct Relu6Fn {
  template <typename X>
  static auto Apply(const X& x) {
    using T = ScalarOf<X>;
    return x.cwiseMax(T(0)).cwiseMin(T(6));
  }
};
struct EluFn {
  template <typename X>
  static auto Apply(const X& x) {
    using T = ScalarOf<X>;
    return (x < x.constant(T(0))).select(x.exp() - x.constant(T(1)), x);
  }
};
struct SigmoidFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.sigmoid();
  }
};
struct TanhFn {
  template <typename X>
  static auto Apply(const X& x) {
    return x.tanh();
  }
};

// ---- Binary arithmetic (Add, Sub, Mul, RealDiv, Maximum, Minimum, Pow) ----

struct AddFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a + b;
  }
};
struct SubFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a - b;
  }
};
struct MulFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a * b;
  }
};
struct DivFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a / b;
  }
};
// Maximum and Minimum propagate NaN, as TensorFlow's do.
struct MaxFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a.template cwiseMax<Eigen::PropagateNaN>(b);
  }
};
struct MinFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a.template cwiseMin<Eigen::PropagateNaN>(b);
  }
};

// Integer power by squaring. The arithmetic is unsigned so that overflow wraps
// (defined behaviour) instead of being undefined; the kernel rejects negative
// exponents first.
template <typename T>
struct IntPowOp {
  EIGEN_DEVICE_FUNC T operator()(T base, T exp) const {
    using U = std::make_unsigned_t<T>;
    U result = 1, b = static_cast<U>(base);
    for (T e = exp; e > 0; e >>= 1) {
      if (e & 1) result *= b;
      b *= b;
    }
    return static_cast<T>(result);
  }
};
struct PowFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    using T = ScalarOf<A>;
    if constexpr (std::is_integral_v<T>) {
      return a.binaryExpr(b, IntPowOp<T>());
    } else {
      return a.binaryExpr(b, Eigen::internal::scalar_pow_op<T, T>());
    }
  }
};

// ---- Comparisons and logic (bool outputs) ----

struct EqualFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a == b;
  }
};
struct LessFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a < b;
  }
};
struct GreaterFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a > b;
  }
};
struct LogicalAndFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a && b;
  }
};

// ---- Activation gradients ----

// Inputs (gradients, features): the gradient where the forward op was linear.
struct ReluGradFn {
  template <typename G, typename F>
  static auto Apply(const G& g, const F& f) {
    using T = ScalarOf<G>;
    return (f > f.constant(T(0))).select(g, g.constant(T(0)));
  }
};
struct Relu6GradFn {
  template <typename G, typename F>
  static auto Apply(const G& g, const F& f) {
    using T = ScalarOf<G>;
    return ((f > f.constant(T(0))) && (f < f.constant(T(6)))).select(g, g.constant(T(0)));
  }
};
// Inputs (gradients, outputs): elu'(x) = y + 1 for y < 0.
struct EluGradFn {
  template <typename G, typename Y>
  static auto Apply(const G& g, const Y& y) {
    using T = ScalarOf<G>;
    return (y < y.constant(T(0))).select(g * (y + y.constant(T(1))), g);
  }
};
// Inputs (y, dy).
struct SigmoidGradFn {
  template <typename Y, typename D>
  static auto Apply(const Y& y, const D& dy) {
    using T = ScalarOf<Y>;
    return dy * y * (y.constant(T(1)) - y);
  }
};
struct TanhGradFn {
  template <typename Y, typename D>
  static auto Apply(const Y& y, const D& dy) {
    using T = ScalarOf<Y>;
    return dy * (y.constant(T(1)) - y * y);
  }
};

// ---- Cast ----

// Mantissa bits of a floating type; 0 for integers and bool.
template <typename T>
constexpr int MantissaBits() {
  if constexpr (std::is_same_v<T, double>) return 52;
  if constexpr (std::is_same_v<T, float>) return 23;
  if constexpr (std::is_same_v<T, Eigen::half>) return 10;
  if constexpr (std::is_same_v<T, Eigen::bfloat16>) return 7;
  return 0;
}

// Whether Cast's Truncate changes In -> Out: a float or double narrowed to a
// floating type with fewer mantissa bits.
template <typename In, typename Out>
constexpr bool kCastTruncates = (std::is_same_v<In, float> ||
                                 std::is_same_v<In, double>)&&MantissaBits<Out>() > 0 &&
                                MantissaBits<Out>() < MantissaBits<In>();

// Truncate=true: clears the input mantissa bits the output cannot hold, so the
// rounding conversion that follows is exact and the value is truncated instead
// (TensorFlow's LSBZeroSetter). NaNs are left alone so they stay NaN.
template <typename In, typename Out>
struct ClearLowMantissaBits {
  EIGEN_DEVICE_FUNC In operator()(In v) const {
    using Bits = std::conditional_t<sizeof(In) == 8, uint64_t, uint32_t>;
    constexpr int kDrop = MantissaBits<In>() - MantissaBits<Out>();
    if (v != v) return v;
    const Bits bits = Eigen::numext::bit_cast<Bits>(v) & ~((Bits{1} << kDrop) - 1);
    return Eigen::numext::bit_cast<In>(bits);
  }
};

}  // namespace functor

// ---- Evaluation on an Eigen device ----

// Note [Broadcast collapsing] (runtime/kernels/cpu/cwise.h): a broadcast of up
// to three operands reduced to `rank` dims. Operand k is read as a row-major
// tensor of dims in[k] repeated bcast[k] times; in[k][i] * bcast[k][i] ==
// out[i] for every operand.
inline constexpr int kMaxBroadcastRank = 5;
struct BroadcastDims {
  int rank = 0;  // 1..kMaxBroadcastRank
  Eigen::DenseIndex out[kMaxBroadcastRank] = {};
  Eigen::DenseIndex in[3][kMaxBroadcastRank] = {};
  Eigen::DenseIndex bcast[3][kMaxBroadcastRank] = {};

  // The element count of operand k.
  Eigen::DenseIndex InputSize(int k) const {
    Eigen::DenseIndex n = 1;
    for (int i = 0; i < rank; ++i) n *= in[k][i];
    return n;
  }
};

// Row-major maps over raw pointers, the base of the evaluation cores.
struct EigenMaps {
  template <typename T, int N>
  using Map = Eigen::TensorMap<Eigen::Tensor<T, N, Eigen::RowMajor, Eigen::DenseIndex>>;
  template <typename T, int N>
  using ConstMap = Eigen::TensorMap<Eigen::Tensor<const T, N, Eigen::RowMajor, Eigen::DenseIndex>>;

  template <int N>
  static Eigen::array<Eigen::DenseIndex, N> Dims(const Eigen::DenseIndex* d) {
    Eigen::array<Eigen::DenseIndex, N> out;
    for (int i = 0; i < N; ++i) out[i] = d[i];
    return out;
  }
  // Operand k of `b` as an N-dim broadcast expression.
  template <int N, typename T>
  static auto BroadcastOperand(const T* p, const BroadcastDims& b, int k) {
    return ConstMap<T, N>(p, Dims<N>(b.in[k])).broadcast(Dims<N>(b.bcast[k]));
  }
};

// y = F(x), n elements.
template <typename Device, typename T, typename F, typename Out = T>
struct UnaryEval : EigenMaps {
  static void Run(const Device& d, const T* x, Out* y, Eigen::DenseIndex n) {
    Map<Out, 1>(y, n).device(d) = F::Apply(ConstMap<T, 1>(x, n));
  }
};

// z = F(x, y) with NumPy broadcasting.
template <typename Device, typename T, typename F, typename Out = T>
struct BinaryEval : EigenMaps {
  // x and y of one shape, n elements.
  static void Same(const Device& d, const T* x, const T* y, Out* z, Eigen::DenseIndex n) {
    Map<Out, 1>(z, n).device(d) = F::Apply(ConstMap<T, 1>(x, n), ConstMap<T, 1>(y, n));
  }
  // y is one value known on the host, x has n elements (and the reverse).
  static void ScalarRight(const Device& d, const T* x, T y, Out* z, Eigen::DenseIndex n) {
    ConstMap<T, 1> xm(x, n);
    Map<Out, 1>(z, n).device(d) = F::Apply(xm, xm.constant(y));
  }
  static void ScalarLeft(const Device& d, T x, const T* y, Out* z, Eigen::DenseIndex n) {
    ConstMap<T, 1> ym(y, n);
    Map<Out, 1>(z, n).device(d) = F::Apply(ym.constant(x), ym);
  }
  // Operands 0 (x) and 1 (y) of `b`, at its rank.
  template <int N>
  static void Bcast(const Device& d, const T* x, const T* y, Out* z, const BroadcastDims& b) {
    Map<Out, N>(z, Dims<N>(b.out)).device(d) =
        F::Apply(BroadcastOperand<N>(x, b, 0), BroadcastOperand<N>(y, b, 1));
  }
  static void Broadcast(const Device& d, const T* x, const T* y, Out* z, const BroadcastDims& b) {
    switch (b.rank) {
      case 1:
        return Bcast<1>(d, x, y, z, b);
      case 2:
        return Bcast<2>(d, x, y, z, b);
      case 3:
        return Bcast<3>(d, x, y, z, b);
      case 4:
        return Bcast<4>(d, x, y, z, b);
      case 5:
        return Bcast<5>(d, x, y, z, b);
    }
  }
};

// out = cond ? t : e (SelectV2) with NumPy broadcasting of the three.
template <typename Device, typename T>
struct SelectEval : EigenMaps {
  static void Same(const Device& d, const bool* c, const T* t, const T* e, T* out,
                   Eigen::DenseIndex n) {
    Map<T, 1>(out, n).device(d) =
        ConstMap<bool, 1>(c, n).select(ConstMap<T, 1>(t, n), ConstMap<T, 1>(e, n));
  }
  // Operands 0 (cond), 1 (t) and 2 (e) of `b`, at its rank.
  template <int N>
  static void Bcast(const Device& d, const bool* c, const T* t, const T* e, T* out,
                    const BroadcastDims& b) {
    Map<T, N>(out, Dims<N>(b.out)).device(d) = BroadcastOperand<N>(c, b, 0).select(
        BroadcastOperand<N>(t, b, 1), BroadcastOperand<N>(e, b, 2));
  }
  static void Broadcast(const Device& d, const bool* c, const T* t, const T* e, T* out,
                        const BroadcastDims& b) {
    switch (b.rank) {
      case 1:
        return Bcast<1>(d, c, t, e, out, b);
      case 2:
        return Bcast<2>(d, c, t, e, out, b);
      case 3:
        return Bcast<3>(d, c, t, e, out, b);
      case 4:
        return Bcast<4>(d, c, t, e, out, b);
      case 5:
        return Bcast<5>(d, c, t, e, out, b);
    }
  }
};

// y = Out(x), n elements; C++'s conversions (float -> integer truncates toward
// zero, x -> bool is x != 0). kTruncate: functor::kCastTruncates<In, Out> holds
// and Cast's Truncate attr is set.
template <typename Device, typename In, typename Out, bool kTruncate = false>
struct CastEval : EigenMaps {
  static void Run(const Device& d, const In* x, Out* y, Eigen::DenseIndex n) {
    if constexpr (kTruncate) {
      Map<Out, 1>(y, n).device(d) = ConstMap<In, 1>(x, n)
                                        .unaryExpr(functor::ClearLowMantissaBits<In, Out>())
                                        .template cast<Out>();
    } else {
      Map<Out, 1>(y, n).device(d) = ConstMap<In, 1>(x, n).template cast<Out>();
    }
  }
};

// out[i] = value (a host value) or out[i] = *value (one element in the
// device's memory), n elements.
template <typename Device, typename T>
struct FillEval : EigenMaps {
  static void Constant(const Device& d, T* out, Eigen::DenseIndex n, T value) {
    Map<T, 1> o(out, n);
    o.device(d) = o.constant(value);
  }
  static void FromScalar(const Device& d, const T* value, T* out, Eigen::DenseIndex n) {
    Map<T, 1>(out, n).device(d) =
        ConstMap<T, 1>(value, 1).broadcast(Eigen::array<Eigen::DenseIndex, 1>{n});
  }
};

}  // namespace gradserve
