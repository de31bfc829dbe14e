// The CUDA Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter kernels
// against the CPU's (1e-4 relative to the largest value), in NHWC and NCHW: the CPU takes NHWC only,
// so an NCHW case feeds the GPU transposed inputs and transposes its results
// back. Strides, dilations, SAME / VALID / EXPLICIT padding, 1x1 (pointwise
// and strided), 3x3 and 5x5 filters, groups, batches of 1 and 9, degenerate
// matrices (one output channel or pixel), and patch matrices over the 256 MiB
// chunk (several images per chunk; an image split over chunks); then the
// CPU's rejections.
#ifdef GRADSERVE_HAVE_CUDA

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "tests/unit/cuda/cuda_test_util.h"

namespace gradserve::testing {
namespace {

using V = const std::vector<Output>&;
using Build = std::function<Output(const Scope&, V)>;

struct ConvSpec {
  std::string name;
  Shape input;                               // NHWC
  Shape filter;                              // HWIO
  std::array<int64_t, 2> stride = {1, 1};    // H, W
  std::array<int64_t, 2> dilation = {1, 1};  // H, W
  std::string padding = "SAME";
  std::vector<int64_t> pads = {};  // EXPLICIT: top, bottom, left, right
  double lo = -2, hi = 2;          // input values
};

// The spec's attrs in a data format (the spatial entries at H and W).
std::vector<int64_t> Spatial(const std::array<int64_t, 2>& hw, bool nchw) {
  return nchw ? std::vector<int64_t>{1, 1, hw[0], hw[1]} : std::vector<int64_t>{1, hw[0], hw[1], 1};
}
ops::Conv2DAttrs AttrsOf(const ConvSpec& c, bool nchw) {
  ops::Conv2DAttrs a{.data_format = nchw ? "NCHW" : "NHWC", .dilations = Spatial(c.dilation, nchw)};
  if (!c.pads.empty()) {
    a.explicit_paddings =
        nchw ? std::vector<int64_t>{0, 0, 0, 0, c.pads[0], c.pads[1], c.pads[2], c.pads[3]}
             : std::vector<int64_t>{0, 0, c.pads[0], c.pads[1], c.pads[2], c.pads[3], 0, 0};
  }
  return a;
}

Tensor Sizes(const Shape& s) {
  std::vector<int32_t> v;
  for (int64_t d : s.dims()) v.push_back(static_cast<int32_t>(d));
  return Tensor::FromVector(v);
}

void ExpectNear(const Tensor& got, const Tensor& want, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(got.shape(), want.shape());
  const RefTensor g = FromTensor(got), w = FromTensor(want);
  // Relative to the largest value: a filter-gradient element sums up to ~10^5
  // products whose rounding, in float32 on either side, scales with their
  // magnitude, not with the (possibly cancelled) sum's.
  double scale = 1.0;
  for (double v : w.v) scale = std::max(scale, std::abs(v));
  for (int64_t i = 0; i < w.size(); ++i) {
    ASSERT_NEAR(g.v[i], w.v[i], 1e-4 * scale) << "element " << i;
  }
}

// Conv2D and both gradients of `c` in NHWC and NCHW on the GPU equal the CPU's
// NHWC results.
void ExpectConvMatchesCpu(const ConvSpec& c) {
  SCOPED_TRACE(absl::StrCat(c.name, ": input ", c.input.DebugString(), " filter ",
                            c.filter.DebugString(), " seed ", Seed()));
  const std::vector<Tensor> xw = RandomFloats({c.input, c.filter}, c.lo, c.hi);
  const Tensor& x = xw[0];
  const Tensor& w = xw[1];
  auto conv = [&](bool nchw) -> Build {
    return [&c, nchw](const Scope& s, V in) {
      return ops::Conv2D(s, in[0], in[1], Spatial(c.stride, nchw), c.padding, AttrsOf(c, nchw));
    };
  };
  auto backprop_input = [&](bool nchw) -> Build {
    return [&c, nchw](const Scope& s, V in) {
      return ops::Conv2DBackpropInput(s, in[0], in[1], in[2], Spatial(c.stride, nchw), c.padding,
                                      AttrsOf(c, nchw));
    };
  };
  auto backprop_filter = [&](bool nchw) -> Build {
    return [&c, nchw](const Scope& s, V in) {
      return ops::Conv2DBackpropFilter(s, in[0], in[1], in[2], Spatial(c.stride, nchw), c.padding,
                                       AttrsOf(c, nchw));
    };
  };
  absl::StatusOr<Tensor> y = RunNode(Cpu(), {x, w}, conv(false));
  ASSERT_TRUE(y.ok()) << y.status();
  const Tensor dy = RandomFloats({y->shape()}, c.lo, c.hi)[0];
  absl::StatusOr<Tensor> dx = RunNode(Cpu(), {Sizes(x.shape()), w, dy}, backprop_input(false));
  ASSERT_TRUE(dx.ok()) << dx.status();
  absl::StatusOr<Tensor> dw = RunNode(Cpu(), {x, Sizes(w.shape()), dy}, backprop_filter(false));
  ASSERT_TRUE(dw.ok()) << dw.status();
  for (bool nchw : {false, true}) {
    SCOPED_TRACE(nchw ? "NCHW" : "NHWC");
    const Tensor xf = nchw ? Transposed(x, true) : x, dyf = nchw ? Transposed(dy, true) : dy;
    absl::StatusOr<Tensor> gy = RunNode(Gpu(), {xf, w}, conv(nchw));
    ASSERT_TRUE(gy.ok()) << gy.status();
    ExpectNear(nchw ? Transposed(*gy, false) : *gy, *y, "Conv2D");
    absl::StatusOr<Tensor> gdx = RunNode(Gpu(), {Sizes(xf.shape()), w, dyf}, backprop_input(nchw));
    ASSERT_TRUE(gdx.ok()) << gdx.status();
    ExpectNear(nchw ? Transposed(*gdx, false) : *gdx, *dx, "Conv2DBackpropInput");
    absl::StatusOr<Tensor> gdw = RunNode(Gpu(), {xf, Sizes(w.shape()), dyf}, backprop_filter(nchw));
    ASSERT_TRUE(gdw.ok()) << gdw.status();
    ExpectNear(*gdw, *dw, "Conv2DBackpropFilter");
  }
}

TEST(CudaConvTest, EveryGeometryMatchesTheCpuInBothFormats) {
  SKIP_WITHOUT_GPU();
  const std::vector<ConvSpec> specs = {
      {.name = "3x3 SAME", .input = {1, 7, 9, 3}, .filter = {3, 3, 3, 5}},
      {.name = "3x3 VALID stride 2",
       .input = {9, 11, 10, 4},
       .filter = {3, 3, 4, 6},
       .stride = {2, 2},
       .padding = "VALID"},
      {.name = "5x5 SAME stride 2",
       .input = {2, 13, 12, 3},
       .filter = {5, 5, 3, 4},
       .stride = {2, 2}},
      {.name = "5x5 SAME batch 9", .input = {9, 8, 8, 2}, .filter = {5, 5, 2, 3}},
      {.name = "3x3 SAME dilation 2",
       .input = {9, 10, 11, 2},
       .filter = {3, 3, 2, 3},
       .dilation = {2, 2}},
      {.name = "5x5 VALID dilation 2",
       .input = {1, 14, 13, 3},
       .filter = {5, 5, 3, 2},
       .dilation = {2, 2},
       .padding = "VALID"},
      {.name = "3x3 SAME stride 2 dilation 2",
       .input = {2, 9, 10, 3},
       .filter = {3, 3, 3, 2},
       .stride = {2, 2},
       .dilation = {2, 2}},
      {.name = "3x2 VALID stride (2, 1)",
       .input = {1, 8, 7, 2},
       .filter = {3, 2, 2, 3},
       .stride = {2, 1},
       .padding = "VALID"},
      {.name = "1x1 pointwise", .input = {9, 5, 6, 7}, .filter = {1, 1, 7, 4}, .padding = "VALID"},
      {.name = "1x1 pointwise batch 1", .input = {1, 3, 5, 4}, .filter = {1, 1, 4, 6}},
      {.name = "1x1 SAME stride 2",
       .input = {9, 7, 6, 3},
       .filter = {1, 1, 3, 5},
       .stride = {2, 2}},
      {.name = "3x3 EXPLICIT",
       .input = {2, 6, 7, 3},
       .filter = {3, 3, 3, 4},
       .padding = "EXPLICIT",
       .pads = {1, 2, 0, 3}},
      {.name = "3x3 SAME 3 groups", .input = {2, 6, 5, 6}, .filter = {3, 3, 2, 9}},
      {.name = "1x1 pointwise 2 groups", .input = {3, 4, 5, 4}, .filter = {1, 1, 2, 6}},
      {.name = "5x5 SAME over a 3x3 image", .input = {1, 3, 3, 2}, .filter = {5, 5, 2, 3}},
      {.name = "5x5 VALID whole image (one output pixel)",
       .input = {4, 5, 5, 3},
       .filter = {5, 5, 3, 2},
       .padding = "VALID"},
      {.name = "3x3 SAME one output channel", .input = {3, 6, 6, 4}, .filter = {3, 3, 4, 1}},
      {.name = "3x3 SAME one channel in and out", .input = {2, 5, 5, 1}, .filter = {3, 3, 1, 1}},
      {.name = "1x1 one pixel", .input = {9, 1, 1, 5}, .filter = {1, 1, 5, 3}},
  };
  for (const ConvSpec& c : specs) ExpectConvMatchesCpu(c);
}

TEST(CudaConvTest, PatchMatricesOverTheChunkMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  // 9 images of 96x96 pixels x 1008 patch columns (35 MiB each): chunks of 7
  // images and of 2.
  ExpectConvMatchesCpu({.name = "whole images per chunk",
                        .input = {9, 96, 96, 112},
                        .filter = {3, 3, 112, 3},
                        .lo = -1,
                        .hi = 1});
  // One image of 384x384 pixels x 576 columns (324 MiB): split in two chunks.
  ExpectConvMatchesCpu({.name = "an image over two chunks",
                        .input = {1, 384, 384, 64},
                        .filter = {3, 3, 64, 2},
                        .lo = -1,
                        .hi = 1});
}

// The CPU's status code for a bad input, and the GPU's the same (untyped
// placeholders, so the graph builds and the kernels judge).
void ExpectSameRejection(const std::string& name, const Build& build,
                         const std::vector<Tensor>& inputs) {
  SCOPED_TRACE(name);
  absl::StatusOr<Tensor> want = RunNode(Cpu(), inputs, build, /*unknown_shapes=*/true);
  ASSERT_FALSE(want.ok());
  absl::StatusOr<Tensor> got = RunNode(Gpu(), inputs, build, /*unknown_shapes=*/true);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), want.status().code()) << got.status();
}

TEST(CudaConvTest, BadInputsAreRejectedAsOnTheCpu) {
  SKIP_WITHOUT_GPU();
  const std::vector<int64_t> ones = {1, 1, 1, 1};
  auto conv = [&](const std::string& padding) -> Build {
    return [&ones, padding](const Scope& s, V in) {
      return ops::Conv2D(s, in[0], in[1], ones, padding);
    };
  };
  Build backprop_input = [&ones](const Scope& s, V in) {
    return ops::Conv2DBackpropInput(s, in[0], in[1], in[2], ones, "VALID");
  };
  Build backprop_filter = [&ones](const Scope& s, V in) {
    return ops::Conv2DBackpropFilter(s, in[0], in[1], in[2], ones, "VALID");
  };
  ExpectSameRejection("depth", conv("SAME"), RandomFloats({Shape{1, 5, 5, 4}, Shape{3, 3, 3, 2}}));
  ExpectSameRejection("groups", conv("SAME"), RandomFloats({Shape{1, 5, 5, 4}, Shape{3, 3, 2, 3}}));
  ExpectSameRejection("filter rank", conv("SAME"),
                      RandomFloats({Shape{1, 5, 5, 4}, Shape{3, 4, 2}}));
  ExpectSameRejection("filter larger than input", conv("VALID"),
                      RandomFloats({Shape{1, 3, 3, 2}, Shape{5, 5, 2, 2}}));
  const std::vector<Tensor> w_dy = RandomFloats({Shape{3, 3, 2, 4}, Shape{1, 3, 3, 4}});
  ExpectSameRejection("out_backprop shape", backprop_input,
                      {Sizes(Shape{1, 6, 5, 2}), w_dy[0], w_dy[1]});
  ExpectSameRejection("input_sizes length", backprop_input,
                      {Sizes(Shape{1, 5, 5}), w_dy[0], w_dy[1]});
  const std::vector<Tensor> x_dy = RandomFloats({Shape{1, 5, 5, 2}, Shape{1, 3, 3, 4}});
  ExpectSameRejection("filter_sizes length", backprop_filter,
                      {x_dy[0], Sizes(Shape{3, 3, 2, 4, 1}), x_dy[1]});
  ExpectSameRejection("filter_sizes depth", backprop_filter,
                      {x_dy[0], Sizes(Shape{3, 3, 3, 4}), x_dy[1]});
}

}  // namespace
}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
