// CPU kernels for the pooling gradients (graph/ops/nn_grad_ops.cc): MaxPoolGrad,
// MaxPoolGradGrad and AvgPoolGrad, NHWC only like the forward kernels
// (pooling_ops.cc). Windows are clipped to the image exactly as the forward
// kernels clip them, so each backward op is the transpose of its forward op:
// MaxPoolGrad routes a window's gradient to the window's first maximum,
// AvgPoolGrad spreads it over the window's in-bounds pixels.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/nn_util.h"

namespace gradserve {
namespace {

enum class PoolGrad { kMax, kMaxGradGrad, kAvg };

// The clipped windows of a pooling op over an [batch, in_h, in_w, depth] input.
struct PoolGeometry {
  int64_t batch, in_h, in_w, depth, out_h, out_w;
  WindowDim rows, cols;

  // Calls fn(in_pixel_base, out_pixel_base, y_lo, y_hi, x_lo, x_hi) per window,
  // the bases being flat offsets of channel 0 of the output pixel and of the image.
  template <typename Fn>
  void ForEachWindow(const Window2D& w, Fn fn) const {
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t oy = 0; oy < out_h; ++oy) {
        const int64_t y0 = oy * w.stride[0] - rows.pad_before;
        const int64_t y_lo = std::max<int64_t>(y0, 0), y_hi = std::min(y0 + w.ksize[0], in_h);
        for (int64_t ox = 0; ox < out_w; ++ox) {
          const int64_t x0 = ox * w.stride[1] - cols.pad_before;
          const int64_t x_lo = std::max<int64_t>(x0, 0), x_hi = std::min(x0 + w.ksize[1], in_w);
          fn(b * in_h * in_w * depth, ((b * out_h + oy) * out_w + ox) * depth, y_lo, y_hi, x_lo,
             x_hi);
        }
      }
    }
  }
};

absl::StatusOr<PoolGeometry> MakeGeometry(const Window2D& w, const Shape& in) {
  GS_CHECK_ARG(in.rank() == 4, "orig_input must be 4-dimensional, got ", in.DebugString());
  PoolGeometry g{.batch = in.dim(0), .in_h = in.dim(1), .in_w = in.dim(2), .depth = in.dim(3)};
  GS_ASSIGN_OR_RETURN(g.rows,
                      ComputeWindowDim(g.in_h, w.ksize[0], 1, w.stride[0], w.padding, w.pad[0]));
  GS_ASSIGN_OR_RETURN(g.cols,
                      ComputeWindowDim(g.in_w, w.ksize[1], 1, w.stride[1], w.padding, w.pad[1]));
  g.out_h = g.rows.output;
  g.out_w = g.cols.output;
  return g;
}

template <typename T, PoolGrad kMode>
class PoolGradKernel final : public OpKernel {
 public:
  PoolGradKernel(const Node& node, const Window2D& window) : OpKernel(node), w_(window) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    Shape in_shape;
    if constexpr (kMode == PoolGrad::kAvg) {
      const Tensor& dims = ctx.input(0);
      GS_CHECK_ARG(dims.rank() == 1 && dims.num_elements() == 4,
                   "orig_input_shape must be a vector of 4 elements, got ",
                   dims.shape().DebugString());
      for (int i = 0; i < 4; ++i) in_shape.AddDim(dims.data<int32_t>()[i]);
    } else {
      in_shape = ctx.input(0).shape();
    }
    GS_ASSIGN_OR_RETURN(PoolGeometry g, MakeGeometry(w_, in_shape));
    const Shape out_shape{g.batch, g.out_h, g.out_w, g.depth};
    const Tensor& grad = ctx.input(kMode == PoolGrad::kAvg ? 1 : 2);
    const Shape& want = kMode == PoolGrad::kMaxGradGrad ? in_shape : out_shape;
    GS_CHECK_ARG(grad.shape() == want, "grad must have shape ", want.DebugString(), ", got ",
                 grad.shape().DebugString());
    if constexpr (kMode != PoolGrad::kAvg) {
      GS_CHECK_ARG(ctx.input(1).shape() == out_shape, "orig_output must have shape ",
                   out_shape.DebugString(), ", got ", ctx.input(1).shape().DebugString());
    }
    const Shape& result_shape = kMode == PoolGrad::kMaxGradGrad ? out_shape : in_shape;
    Tensor* out = ctx.allocate_output(0, result_shape, DTypeOf<T>::value);
    std::vector<A> acc(out->num_elements(), A(0));
    const T* gv = grad.data<T>();
    const T* x = kMode == PoolGrad::kAvg ? nullptr : ctx.input(0).data<T>();
    const int64_t in_w = g.in_w, depth = g.depth;
    g.ForEachWindow(w_, [&](int64_t in_base, int64_t out_base, int64_t y_lo, int64_t y_hi,
                            int64_t x_lo, int64_t x_hi) {
      // An empty window (an empty image under explicit padding) routes nothing
      // (and MaxPoolGradGrad's output stays 0), as on the GPU.
      if (y_lo >= y_hi || x_lo >= x_hi) return;
      const A inv_count = A(1) / static_cast<A>((y_hi - y_lo) * (x_hi - x_lo));
      for (int64_t c = 0; c < depth; ++c) {
        if constexpr (kMode == PoolGrad::kAvg) {
          const A share = static_cast<A>(gv[out_base + c]) * inv_count;
          for (int64_t iy = y_lo; iy < y_hi; ++iy) {
            for (int64_t ix = x_lo; ix < x_hi; ++ix) {
              acc[in_base + (iy * in_w + ix) * depth + c] += share;
            }
          }
        } else {
          // The first maximum in row-major window order, as the forward kernel keeps.
          int64_t best = in_base + (y_lo * in_w + x_lo) * depth + c;
          for (int64_t iy = y_lo; iy < y_hi; ++iy) {
            for (int64_t ix = x_lo; ix < x_hi; ++ix) {
              const int64_t i = in_base + (iy * in_w + ix) * depth + c;
              if (x[i] > x[best]) best = i;
            }
          }
          if constexpr (kMode == PoolGrad::kMax) {
            acc[best] += static_cast<A>(gv[out_base + c]);
          } else {
            acc[out_base + c] = static_cast<A>(gv[best]);
          }
        }
      }
    });
    T* y = out->data<T>();
    for (int64_t i = 0; i < out->num_elements(); ++i) y[i] = static_cast<T>(acc[i]);
    return absl::OkStatus();
  }

 private:
  using A = AccumType<T>;
  Window2D w_;
};

template <PoolGrad kMode>
absl::Status RegisterPoolGrad(KernelRegistry& r, const char* op) {
  return RegisterWindowKernel(r, op, TypeList<float, double, half, bfloat16>{}, /*conv=*/false,
                              []<typename T>(const Node& node, const Window2D& w) {
                                return new PoolGradKernel<T, kMode>(node, w);
                              });
}

}  // namespace

absl::Status RegisterCpuPoolingGradKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterPoolGrad<PoolGrad::kMax>(r, "MaxPoolGrad"));
  GS_RETURN_IF_ERROR(RegisterPoolGrad<PoolGrad::kMaxGradGrad>(r, "MaxPoolGradGrad"));
  GS_RETURN_IF_ERROR(RegisterPoolGrad<PoolGrad::kAvg>(r, "AvgPoolGrad"));
  return absl::OkStatus();
}

}  // namespace gradserve
