// The CUDA pooling and batch-norm kernels (runtime/kernels/cuda/pooling_ops.cc)
// against the CPU kernels of the same nodes on random inputs: every window
// geometry the gradients must transpose, odd sizes, grids large enough for the
// grid-stride loops, ties in the max windows, every batch-norm data format and
// mode, and the rejections (the same status code as the CPU's). The CPU pools
// NHWC only, so an NCHW pooling case feeds the GPU transposed inputs and
// transposes its result back. Pooling is exact up to float rounding (1e-5);
// batch norm sums in double (1e-4).
#ifdef GRADSERVE_HAVE_CUDA

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "graph/ops/nn_ops.h"
#include "gtest/gtest.h"
#include "tests/unit/cuda/cuda_test_util.h"

namespace gradserve::testing {
namespace {

using ::testing::HasSubstr;
using Ints = std::vector<int64_t>;
using Inputs = const std::vector<Output>&;
using Build = std::function<Output(const Scope&, Inputs)>;

Tensor Floats(const RefTensor& r) { return ToTensor(r, DType::kFloat); }

// ---- Pooling ----

// A pooling window; its attrs in either data format (H and W entries placed).
struct PoolGeometry {
  std::string name;
  int64_t k[2], stride[2];  // H, W
  std::string padding;
  Ints pads = {};  // EXPLICIT (MaxPool and its gradients only): top, bottom, left, right

  bool avg_ok() const { return padding != "EXPLICIT"; }
  Ints ksize(bool nchw) const { return Spatial(k, nchw); }
  Ints strides(bool nchw) const { return Spatial(stride, nchw); }
  ops::MaxPoolAttrs max_attrs(bool nchw) const {
    ops::MaxPoolAttrs a{.data_format = nchw ? "NCHW" : "NHWC"};
    if (!pads.empty()) {
      a.explicit_paddings = nchw ? Ints{0, 0, 0, 0, pads[0], pads[1], pads[2], pads[3]}
                                 : Ints{0, 0, pads[0], pads[1], pads[2], pads[3], 0, 0};
    }
    return a;
  }
  ops::AvgPoolAttrs avg_attrs(bool nchw) const { return {.data_format = nchw ? "NCHW" : "NHWC"}; }

  // The pooled shape of an NHWC input (graph/ops/nn_ops.h's arithmetic).
  Shape Out(const Shape& in) const {
    const Padding p = padding == "SAME"    ? Padding::kSame
                      : padding == "VALID" ? Padding::kValid
                                           : Padding::kExplicit;
    Shape out{in.dim(0), 0, 0, in.dim(3)};
    for (int d = 0; d < 2; ++d) {
      const int64_t explicit_pads[2] = {pads.empty() ? 0 : pads[2 * d],
                                        pads.empty() ? 0 : pads[2 * d + 1]};
      out.set_dim(1 + d,
                  ComputeWindowDim(in.dim(1 + d), k[d], 1, stride[d], p, explicit_pads)->output);
    }
    return out;
  }

 private:
  static Ints Spatial(const int64_t hw[2], bool nchw) {
    return nchw ? Ints{1, 1, hw[0], hw[1]} : Ints{1, hw[0], hw[1], 1};
  }
};

const std::vector<PoolGeometry>& Geometries() {
  static const auto* g = new std::vector<PoolGeometry>{
      {"2x2_stride2_valid", {2, 2}, {2, 2}, "VALID"},
      {"3x3_stride1_same", {3, 3}, {1, 1}, "SAME"},
      {"3x3_stride2_valid", {3, 3}, {2, 2}, "VALID"},
      {"3x3_stride2_same", {3, 3}, {2, 2}, "SAME"},
      // Strides larger than the window leave pixels no window covers.
      {"1x2_stride3x2_valid", {1, 2}, {3, 2}, "VALID"},
      {"2x4_stride1x3_same", {2, 4}, {1, 3}, "SAME"},
      {"3x3_stride2_explicit", {3, 3}, {2, 2}, "EXPLICIT", {1, 2, 2, 0}},
  };
  return *g;
}

// Batch 1 and 5, 7x9 and 32x32 images, 1, 3 and 64 channels (NHWC).
std::vector<Shape> PoolInputShapes() {
  std::vector<Shape> shapes;
  for (int64_t batch : {1, 5}) {
    for (auto [h, w] : {std::pair<int64_t, int64_t>{7, 9}, {32, 32}}) {
      for (int64_t c : {1, 3, 64}) shapes.push_back(Shape{batch, h, w, c});
    }
  }
  return shapes;
}

Build MaxPoolOf(const PoolGeometry& g, bool nchw = false) {
  return [g, nchw](const Scope& s, Inputs in) {
    return ops::MaxPool(s, in[0], g.ksize(nchw), g.strides(nchw), g.padding, g.max_attrs(nchw));
  };
}
Build AvgPoolOf(const PoolGeometry& g, bool nchw = false) {
  return [g, nchw](const Scope& s, Inputs in) {
    return ops::AvgPool(s, in[0], g.ksize(nchw), g.strides(nchw), g.padding, g.avg_attrs(nchw));
  };
}
// (orig_input, orig_output, grad) for MaxPoolGrad and MaxPoolGradGrad.
Build MaxPoolGradOf(const PoolGeometry& g, bool grad_grad, bool nchw = false) {
  return [g, grad_grad, nchw](const Scope& s, Inputs in) {
    return grad_grad ? ops::MaxPoolGradGrad(s, in[0], in[1], in[2], g.ksize(nchw), g.strides(nchw),
                                            g.padding, g.max_attrs(nchw))
                     : ops::MaxPoolGrad(s, in[0], in[1], in[2], g.ksize(nchw), g.strides(nchw),
                                        g.padding, g.max_attrs(nchw));
  };
}
// (orig_input_shape, grad).
Build AvgPoolGradOf(const PoolGeometry& g, bool nchw = false) {
  return [g, nchw](const Scope& s, Inputs in) {
    return ops::AvgPoolGrad(s, in[0], in[1], g.ksize(nchw), g.strides(nchw), g.padding,
                            g.avg_attrs(nchw));
  };
}

// An int32 shape vector.
Tensor ShapeVector(const Shape& in) {
  std::vector<double> dims;
  for (int i = 0; i < in.rank(); ++i) dims.push_back(static_cast<double>(in.dim(i)));
  return ToTensor(Values(Shape{in.rank()}, dims), DType::kInt32);
}

Tensor Nchw(const Tensor& nhwc) { return Transposed(nhwc, true); }
Shape NchwShape(const Shape& s) { return Shape{s.dim(0), s.dim(3), s.dim(1), s.dim(2)}; }

// The CUDA kernel of an NCHW node (`nchw` on `nchw_inputs`) equals the CPU
// kernel of the NHWC node (`nhwc` on `nhwc_inputs`): the CPU pools NHWC only.
void ExpectNchwMatchesCpu(const std::string& name, const std::vector<Tensor>& nhwc_inputs,
                          const Build& nhwc, const std::vector<Tensor>& nchw_inputs,
                          const Build& nchw) {
  SCOPED_TRACE(name);
  absl::StatusOr<Tensor> want = RunNode(Cpu(), nhwc_inputs, nhwc);
  ASSERT_TRUE(want.ok()) << want.status();
  absl::StatusOr<Tensor> got = RunNode(Gpu(), nchw_inputs, nchw);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->shape(), NchwShape(want->shape()));
  const RefTensor g = FromTensor(Transposed(*got, false)), w = FromTensor(*want);
  for (int64_t i = 0; i < w.size(); ++i) {
    ASSERT_NEAR(g.v[i], w.v[i], 1e-5 * std::max(1.0, std::abs(w.v[i]))) << "element " << i;
  }
}

// Every pooling op over geometry `g` and input `x` (NHWC), compared with the
// CPU in NHWC and in NCHW.
void ExpectPoolingMatchesCpu(const std::string& name, const PoolGeometry& g, const Tensor& x) {
  const Shape in = x.shape(), out = g.Out(in);
  const Tensor orig_out = Floats(Random(out)), dy = Floats(Random(out)), ddx = Floats(Random(in));
  ExpectGpuMatchesCpu({absl::StrCat("MaxPool ", name), {x}, MaxPoolOf(g)});
  ExpectGpuMatchesCpu(
      {absl::StrCat("MaxPoolGrad ", name), {x, orig_out, dy}, MaxPoolGradOf(g, false)});
  ExpectGpuMatchesCpu(
      {absl::StrCat("MaxPoolGradGrad ", name), {x, orig_out, ddx}, MaxPoolGradOf(g, true)});
  ExpectNchwMatchesCpu(absl::StrCat("MaxPool NCHW ", name), {x}, MaxPoolOf(g), {Nchw(x)},
                       MaxPoolOf(g, true));
  ExpectNchwMatchesCpu(absl::StrCat("MaxPoolGrad NCHW ", name), {x, orig_out, dy},
                       MaxPoolGradOf(g, false), {Nchw(x), Nchw(orig_out), Nchw(dy)},
                       MaxPoolGradOf(g, false, true));
  ExpectNchwMatchesCpu(absl::StrCat("MaxPoolGradGrad NCHW ", name), {x, orig_out, ddx},
                       MaxPoolGradOf(g, true), {Nchw(x), Nchw(orig_out), Nchw(ddx)},
                       MaxPoolGradOf(g, true, true));
  if (!g.avg_ok()) return;
  ExpectGpuMatchesCpu({absl::StrCat("AvgPool ", name), {x}, AvgPoolOf(g)});
  ExpectGpuMatchesCpu(
      {absl::StrCat("AvgPoolGrad ", name), {ShapeVector(in), dy}, AvgPoolGradOf(g)});
  ExpectNchwMatchesCpu(absl::StrCat("AvgPool NCHW ", name), {x}, AvgPoolOf(g), {Nchw(x)},
                       AvgPoolOf(g, true));
  ExpectNchwMatchesCpu(absl::StrCat("AvgPoolGrad NCHW ", name), {ShapeVector(in), dy},
                       AvgPoolGradOf(g), {ShapeVector(NchwShape(in)), Nchw(dy)},
                       AvgPoolGradOf(g, true));
}

TEST(CudaPoolingTest, EveryGeometryAndSizeMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const PoolGeometry& g : Geometries()) {
    for (const Shape& in : PoolInputShapes()) {
      ExpectPoolingMatchesCpu(absl::StrCat(g.name, " ", in.DebugString()), g,
                              Floats(Random(in, -2, 2)));
    }
  }
}

TEST(CudaPoolingTest, EdgeSizesMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const PoolGeometry& same3 = Geometries()[1];
  const PoolGeometry& valid3 = Geometries()[2];
  // A window larger than the image; an empty batch; a VALID window larger than
  // the image (empty output, all-zero input gradients); all-negative values
  // (padding must not act as a zero).
  ExpectPoolingMatchesCpu("1x1 image", same3, Floats(Random(Shape{1, 1, 1, 3})));
  ExpectPoolingMatchesCpu("empty batch", same3, Floats(Random(Shape{0, 5, 5, 2})));
  ExpectPoolingMatchesCpu("empty output", valid3, Floats(Random(Shape{2, 2, 5, 3})));
  ExpectPoolingMatchesCpu("negative", Geometries()[3], Floats(Random(Shape{2, 7, 9, 3}, -2, -1)));
}

TEST(CudaPoolingTest, AnEmptyImageUnderExplicitPaddingReadsNothing) {
  SKIP_WITHOUT_GPU();
  // 0 rows padded by (2, 1) under a 3-row window: one output row of empty
  // windows (pooling_kernels.h). GPU only: the CPU kernel reads out of bounds.
  const PoolGeometry g{"3x1_explicit", {3, 1}, {1, 1}, "EXPLICIT", {2, 1, 0, 0}};
  const Tensor x = Floats(Random(Shape{1, 0, 5, 2}));
  const Shape out = g.Out(x.shape());
  ASSERT_EQ(out, (Shape{1, 1, 5, 2}));
  absl::StatusOr<Tensor> max = RunNode(Gpu(), {x}, MaxPoolOf(g));
  ASSERT_TRUE(max.ok()) << max.status();
  ASSERT_EQ(max->shape(), out);
  for (double v : FromTensor(*max).v) EXPECT_EQ(v, -FLT_MAX);
  absl::StatusOr<Tensor> grad_grad =
      RunNode(Gpu(), {x, Floats(Random(out)), x}, MaxPoolGradOf(g, /*grad_grad=*/true));
  ASSERT_TRUE(grad_grad.ok()) << grad_grad.status();
  ASSERT_EQ(grad_grad->shape(), out);
  for (double v : FromTensor(*grad_grad).v) EXPECT_EQ(v, 0.0);
}

TEST(CudaPoolingTest, MaxTiesGoToTheFirstMaximumInWindowOrder) {
  SKIP_WITHOUT_GPU();
  for (const PoolGeometry& g : Geometries()) {
    // Three distinct values: most windows hold several maxima.
    ExpectPoolingMatchesCpu(absl::StrCat(g.name, " ties"), g,
                            Floats(RandomInt(Shape{2, 9, 11, 5}, 0, 2)));
    ExpectPoolingMatchesCpu(absl::StrCat(g.name, " constant"), g,
                            Floats(Map(Random(Shape{1, 8, 8, 2}), [](double) { return 1.0; })));
  }
  // A NaN first in its window stays the maximum (the CPU's comparison); the
  // gradients are finite and comparable.
  RefTensor x = Random(Shape{1, 6, 6, 2});
  x.v[0] = x.v[2 * (6 + 1) + 1] = std::nan("");
  const PoolGeometry& g = Geometries()[1];
  const Tensor dy = Floats(Random(g.Out(x.shape))), ddx = Floats(Random(x.shape));
  ExpectGpuMatchesCpu({"MaxPoolGrad NaN", {Floats(x), dy, dy}, MaxPoolGradOf(g, false)});
  ExpectGpuMatchesCpu({"MaxPoolGradGrad NaN", {Floats(x), dy, ddx}, MaxPoolGradOf(g, true)});
}

TEST(CudaPoolingTest, GridsLargerThanOneLaunchMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  // More than 65535 blocks of 256 threads' worth of elements: the grid-stride
  // loops run more than once.
  const PoolGeometry& g = Geometries()[3];
  const Shape in{2, 192, 192, 256};  // 18.9M input elements
  const Tensor x = Floats(Random(in)), dy = Floats(Random(g.Out(in)));
  ExpectGpuMatchesCpu({"MaxPoolGrad large", {x, dy, dy}, MaxPoolGradOf(g, false)});
  ExpectGpuMatchesCpu({"AvgPoolGrad large", {ShapeVector(in), dy}, AvgPoolGradOf(g)});
  const Tensor big = Floats(Random(Shape{5, 256, 256, 64}));  // 20.6M outputs
  ExpectGpuMatchesCpu({"AvgPool large", {big}, AvgPoolOf(Geometries()[1])});
}

// ---- Batch normalization ----

struct Format {
  const char* name;
  int rank, c_axis;
};
constexpr Format kFormats[] = {{"NHWC", 4, 3}, {"NCHW", 4, 1}, {"NDHWC", 5, 4}, {"NCDHW", 5, 1}};

// A shape of format `f` with `channels` channels and `per_channel` (1 or
// 10000) elements in each.
Shape BatchNormShape(const Format& f, int64_t channels, int64_t per_channel) {
  Ints others = per_channel == 1 ? Ints{1, 1, 1, 1} : Ints{4, 50, 50, 1};
  if (f.rank == 5 && per_channel != 1) others = {4, 10, 10, 25};
  Shape s;
  for (int i = 0, j = 0; i < f.rank; ++i) s.AddDim(i == f.c_axis ? channels : others[j++]);
  return s;
}

struct Mode {
  const char* name;
  bool is_training;
  float avg_factor;
};
constexpr Mode kModes[] = {
    {"training", true, 1.0f}, {"training_avg0.3", true, 0.3f}, {"inference", false, 1.0f}};

// (x, scale, offset, mean, variance): the variance positive.
std::vector<Tensor> BatchNormInputs(const Shape& x, int64_t channels, int64_t stats = -1) {
  const Shape c{channels}, s{stats < 0 ? channels : stats};
  return {Floats(Random(x, -2, 2)), Floats(Random(c, -2, 2)), Floats(Random(c, -2, 2)),
          Floats(Random(s, -1, 1)), Floats(Random(s, 0.5, 2))};
}
// (y_backprop, x, scale, reserve_space_1..3).
std::vector<Tensor> BatchNormGradInputs(const Shape& x, int64_t channels) {
  const Shape c{channels};
  return {Floats(Random(x, -2, 2)), Floats(Random(x, -2, 2)),  Floats(Random(c, -2, 2)),
          Floats(Random(c, -1, 1)), Floats(Random(c, 0.5, 2)), Floats(Random(Shape{}))};
}

Build BatchNormOf(const std::string& format, const Mode& m) {
  return [format, m](const Scope& s, Inputs in) {
    return ops::FusedBatchNormV3(s, in[0], in[1], in[2], in[3], in[4],
                                 {.epsilon = 1e-3f,
                                  .exponential_avg_factor = m.avg_factor,
                                  .data_format = format,
                                  .is_training = m.is_training})
        .y;
  };
}
Build BatchNormGradOf(const std::string& format, bool is_training) {
  return [format, is_training](const Scope& s, Inputs in) {
    return ops::FusedBatchNormGradV3(
               s, in[0], in[1], in[2], in[3], in[4], in[5],
               {.epsilon = 1e-3f, .data_format = format, .is_training = is_training})
        .x_backprop;
  };
}

TEST(CudaBatchNormTest, EveryFormatModeAndSizeMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const Format& f : kFormats) {
    for (int64_t channels : {1, 3, 256}) {
      for (int64_t per_channel : {1, 10000}) {
        const Shape x = BatchNormShape(f, channels, per_channel);
        for (const Mode& m : kModes) {
          const std::string name = absl::StrCat(f.name, " ", x.DebugString(), " ", m.name);
          ExpectGpuMatchesCpu({absl::StrCat("FusedBatchNormV3 ", name),
                               BatchNormInputs(x, channels), BatchNormOf(f.name, m), 1e-4});
          if (m.avg_factor != 1.0f) continue;
          ExpectGpuMatchesCpu({absl::StrCat("FusedBatchNormGradV3 ", name),
                               BatchNormGradInputs(x, channels),
                               BatchNormGradOf(f.name, m.is_training), 1e-4});
        }
      }
    }
  }
}

TEST(CudaBatchNormTest, LargeAndEdgeCasesMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const Mode& training = kModes[0];
  // Many ranges per channel, channels-last tiles and grid-stride loops
  // (19.7M elements); one channels-first with long rows.
  for (auto [format, x] : {std::pair<std::string, Shape>{"NHWC", Shape{3, 320, 320, 64}},
                           {"NCHW", Shape{16, 3, 256, 256}}}) {
    const int64_t channels = format == "NHWC" ? x.dim(3) : x.dim(1);
    const std::string name = absl::StrCat(format, " ", x.DebugString());
    ExpectGpuMatchesCpu({absl::StrCat("FusedBatchNormV3 ", name), BatchNormInputs(x, channels),
                         BatchNormOf(format, training), 1e-4});
    ExpectGpuMatchesCpu({absl::StrCat("FusedBatchNormGradV3 ", name),
                         BatchNormGradInputs(x, channels), BatchNormGradOf(format, true), 1e-4});
  }
  // Channels-first with 1x1 images is channels-last in memory (the tiled sums).
  ExpectGpuMatchesCpu({"FusedBatchNormV3 NCHW 1x1", BatchNormInputs(Shape{300, 64, 1, 1}, 64),
                       BatchNormOf("NCHW", training), 1e-4});
  // 33 channels: a partly filled second tile.
  ExpectGpuMatchesCpu({"FusedBatchNormV3 NHWC 33", BatchNormInputs(Shape{7, 9, 11, 33}, 33),
                       BatchNormOf("NHWC", training), 1e-4});
  // Training with factor 1 takes empty running statistics.
  ExpectGpuMatchesCpu({"FusedBatchNormV3 no running stats",
                       BatchNormInputs(Shape{2, 5, 5, 3}, 3, /*stats=*/0),
                       BatchNormOf("NHWC", training), 1e-4});
  // An empty batch: zero scale and offset gradients.
  ExpectGpuMatchesCpu({"FusedBatchNormGradV3 empty", BatchNormGradInputs(Shape{0, 4, 4, 3}, 3),
                       BatchNormGradOf("NHWC", true), 1e-4});
}

TEST(CudaBatchNormTest, AnEmptyBatchGivesNanStatistics) {
  SKIP_WITHOUT_GPU();
  for (const Mode& m : kModes) {
    SCOPED_TRACE(m.name);
    Graph graph;
    Scope s(&graph);
    const std::vector<Tensor> inputs = BatchNormInputs(Shape{0, 4, 4, 3}, 3);
    std::vector<Output> in;
    for (const Tensor& t : inputs) in.push_back(ops::Placeholder(s, DType::kFloat, t.shape()));
    Output y = BatchNormOf("NHWC", m)(s, in);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::StatusOr<std::vector<Tensor>> got = RunKernel(*y.node, Gpu(), ForGpu(*y.node, inputs));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), 6u);
    EXPECT_EQ((*got)[0].shape(), inputs[0].shape());
    for (int i = 1; i <= 4; ++i) {
      const RefTensor stat = FromTensor(OnHost((*got)[i]));
      ASSERT_EQ(stat.shape, Shape{3});
      for (double v : stat.v) EXPECT_TRUE(std::isnan(v)) << "output " << i;
    }
    const RefTensor reserve_3 = FromTensor(OnHost((*got)[5]));
    EXPECT_EQ(reserve_3.shape, Shape{});
    EXPECT_EQ(reserve_3.v, std::vector<double>{0.0});
  }
}

// ---- Rejections ----

TEST(CudaPoolingTest, RejectsWhatTheCpuRejects) {
  SKIP_WITHOUT_GPU();
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const PoolGeometry& g = Geometries()[3];
  const Tensor x = Floats(Random(Shape{1, 6, 6, 2}));
  const Shape out = g.Out(x.shape());
  // Accepted by the op's shape function, not by any kernel.
  ExpectBothReject(
      "MaxPool NCHW_VECT_C", {x},
      [&g](const Scope& s, Inputs in) {
        ops::MaxPoolAttrs a = g.max_attrs(true);
        a.data_format = "NCHW_VECT_C";
        return ops::MaxPool(s, in[0], g.ksize(true), g.strides(true), g.padding, a);
      },
      kInvalid, "is not supported");
  for (const char* op : {"MaxPool", "AvgPool"}) {
    const bool max = std::string(op) == "MaxPool";
    const Build build = max ? MaxPoolOf(g) : AvgPoolOf(g);
    ExpectBothReject(absl::StrCat(op, " rank 3"), {Floats(Random(Shape{6, 6, 2}))}, build, kInvalid,
                     "input must be 4-dimensional");
    const PoolGeometry too_big{"4x4_valid", {4, 4}, {1, 1}, "VALID"};
    ExpectBothReject(absl::StrCat(op, " negative output"), {Floats(Random(Shape{1, 2, 2, 1}))},
                     max ? MaxPoolOf(too_big) : AvgPoolOf(too_big), kInvalid, "would be negative");
  }
  const Tensor dy = Floats(Random(out)), wrong = Floats(Random(Shape{1, 2, 2, 2}));
  ExpectBothReject("MaxPoolGrad grad shape", {x, dy, wrong}, MaxPoolGradOf(g, false), kInvalid,
                   "grad must have shape");
  ExpectBothReject("MaxPoolGrad orig_output shape", {x, wrong, dy}, MaxPoolGradOf(g, false),
                   kInvalid, "orig_output must have shape");
  ExpectBothReject("MaxPoolGrad rank 3", {Floats(Random(Shape{6, 6, 2})), dy, dy},
                   MaxPoolGradOf(g, false), kInvalid, "orig_input must be 4-dimensional");
  ExpectBothReject("MaxPoolGradGrad grad shape", {x, dy, dy}, MaxPoolGradOf(g, true), kInvalid,
                   "grad must have shape");
  ExpectBothReject("AvgPoolGrad shape length",
                   {ToTensor(Values(Shape{3}, {1, 6, 6}), DType::kInt32), dy}, AvgPoolGradOf(g),
                   kInvalid, "orig_input_shape must be a vector of 4 elements");
  ExpectBothReject("AvgPoolGrad grad shape", {ShapeVector(x.shape()), wrong}, AvgPoolGradOf(g),
                   kInvalid, "grad must have shape");
  // An input left in host memory is a wiring bug the CUDA kernel reports.
  Graph graph;
  Scope s(&graph);
  Output pooled = MaxPoolOf(g)(s, {ops::Placeholder(s, DType::kFloat, x.shape())});
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::vector<Tensor>> on_host = RunKernel(*pooled.node, Gpu(), {x});
  EXPECT_EQ(on_host.status().code(), kInvalid);
  EXPECT_THAT(on_host.status().message(), HasSubstr("is on cpu:0"));
}

TEST(CudaBatchNormTest, RejectsWhatTheCpuRejects) {
  SKIP_WITHOUT_GPU();
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const Mode& training = kModes[0];
  const Mode& inference = kModes[2];
  const Shape x{2, 4, 4, 3};
  ExpectBothReject("rank 3", BatchNormInputs(Shape{4, 4, 3}, 3), BatchNormOf("NHWC", training),
                   kInvalid, "x must be 4-dimensional");
  ExpectBothReject("rank 4 as NDHWC", BatchNormInputs(x, 3), BatchNormOf("NDHWC", training),
                   kInvalid, "x must be 5-dimensional");
  std::vector<Tensor> bad = BatchNormInputs(x, 3);
  bad[1] = Floats(Random(Shape{4}));
  ExpectBothReject("scale length", bad, BatchNormOf("NHWC", training), kInvalid,
                   "scale has 4 elements");
  bad = BatchNormInputs(x, 3);
  bad[2] = Floats(Random(Shape{1, 3}));
  ExpectBothReject("offset matrix", bad, BatchNormOf("NHWC", training), kInvalid,
                   "offset must be a vector");
  // Inference reads mean and variance: they must match the channels.
  ExpectBothReject("inference mean length", BatchNormInputs(x, 3, /*stats=*/2),
                   BatchNormOf("NHWC", inference), kInvalid, "mean has 2 elements");
  ExpectBothReject("blended variance length", BatchNormInputs(x, 3, /*stats=*/2),
                   BatchNormOf("NHWC", kModes[1]), kInvalid, "has 2 elements");

  std::vector<Tensor> grad = BatchNormGradInputs(x, 3);
  grad[0] = Floats(Random(Shape{2, 4, 4, 2}));
  ExpectBothReject("grad shapes differ", grad, BatchNormGradOf("NHWC", true), kInvalid,
                   "must have the same shape");
  grad = BatchNormGradInputs(x, 3);
  grad[3] = Floats(Random(Shape{5}));
  ExpectBothReject("reserve_space_1 length", grad, BatchNormGradOf("NHWC", true), kInvalid,
                   "reserve_space_1 has 5 elements");
  grad = BatchNormGradInputs(Shape{4, 4, 3}, 3);
  ExpectBothReject("grad rank 3", grad, BatchNormGradOf("NHWC", false), kInvalid,
                   "x must be 4-dimensional");
}

}  // namespace
}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
