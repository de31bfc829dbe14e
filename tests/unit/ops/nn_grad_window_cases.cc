// Conformance cases for the pooling and Conv2D gradient ops of the nn family
// (see op_test_util.h): MaxPoolGrad, MaxPoolGradGrad, AvgPoolGrad,
// Conv2DBackpropInput and Conv2DBackpropFilter, against plain NHWC loop
// references. NnGradOpCases (nn_grad_ops_cases.cc) includes them.
#include <algorithm>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "graph/attr.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

const std::vector<DType> kFloats = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16};

// A 2-D pooling window geometry in NHWC (padding SAME or VALID), for references.
struct RefPool {
  int64_t k[2], stride[2];
  bool same;
  int64_t Out(int64_t in, int d) const {
    return same ? (in + stride[d] - 1) / stride[d] : (in - k[d] + stride[d]) / stride[d];
  }
  int64_t PadBefore(int64_t in, int d) const {
    if (!same) return 0;
    return std::max<int64_t>((Out(in, d) - 1) * stride[d] + k[d] - in, 0) / 2;
  }
  AttrMap Attrs() const {
    return {{"ksize", MakeAttr(std::vector<int64_t>{1, k[0], k[1], 1})},
            {"strides", MakeAttr(std::vector<int64_t>{1, stride[0], stride[1], 1})},
            {"padding", MakeAttr(same ? "SAME" : "VALID")}};
  }
  Shape OutShape(const Shape& in) const {
    return Shape{in.dim(0), Out(in.dim(1), 0), Out(in.dim(2), 1), in.dim(3)};
  }
};

// kind 0: MaxPoolGrad (scatter g to each window's first max of x, result shaped
// like x); 1: MaxPoolGradGrad (gather g, shaped like x, at the maxima); 2:
// AvgPoolGrad (spread g evenly over each clipped window).
RefTensor PoolGradRef(const RefPool& p, const Shape& in, const RefTensor* x, const RefTensor& g,
                      int kind) {
  const Shape out = p.OutShape(in);
  const Shape& result_shape = kind == 1 ? out : in;
  RefTensor r{result_shape, std::vector<double>(result_shape.num_elements(), 0.0)};
  const int64_t H = in.dim(1), W = in.dim(2), C = in.dim(3);
  auto at = [&](int64_t b, int64_t y, int64_t xx, int64_t c) {
    return ((b * H + y) * W + xx) * C + c;
  };
  for (int64_t b = 0; b < in.dim(0); ++b) {
    for (int64_t oy = 0; oy < out.dim(1); ++oy) {
      for (int64_t ox = 0; ox < out.dim(2); ++ox) {
        const int64_t y0 = oy * p.stride[0] - p.PadBefore(H, 0);
        const int64_t x0 = ox * p.stride[1] - p.PadBefore(W, 1);
        const int64_t ylo = std::max<int64_t>(y0, 0), yhi = std::min(y0 + p.k[0], H);
        const int64_t xlo = std::max<int64_t>(x0, 0), xhi = std::min(x0 + p.k[1], W);
        for (int64_t c = 0; c < C; ++c) {
          const int64_t o = ((b * out.dim(1) + oy) * out.dim(2) + ox) * C + c;
          int64_t best = at(b, ylo, xlo, c);
          for (int64_t iy = ylo; iy < yhi; ++iy) {
            for (int64_t ix = xlo; ix < xhi; ++ix) {
              const int64_t i = at(b, iy, ix, c);
              if (kind == 2) {
                r.v[i] += g.v[o] / static_cast<double>((yhi - ylo) * (xhi - xlo));
              } else if (x->v[i] > x->v[best]) {
                best = i;
              }
            }
          }
          if (kind == 0) r.v[best] += g.v[o];
          if (kind == 1) r.v[o] = g.v[best];
        }
      }
    }
  }
  return r;
}

void AddPoolGradCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* name;
    Shape in;
    RefPool pool;
  };
  const std::vector<Spec> specs = {
      {"valid_2x2", Shape{2, 4, 6, 3}, {{2, 2}, {2, 2}, false}},
      {"same_overlap", Shape{1, 5, 4, 2}, {{3, 3}, {1, 2}, true}},
      {"same_stride2", Shape{1, 5, 5, 1}, {{2, 3}, {2, 2}, true}},
  };
  const std::vector<DType> f32_64 = {DType::kFloat, DType::kDouble};
  for (const Spec& sp : specs) {
    const RefPool p = sp.pool;
    const Shape in = sp.in, out = p.OutShape(in);
    // Values spaced apart so that rounding to half cannot create ties.
    cases.push_back({.name = absl::StrCat("MaxPoolGrad_", sp.name),
                     .op = "MaxPoolGrad",
                     .inputs = {Random(in), Random(out), Random(out)},
                     .attrs = p.Attrs(),
                     .dtypes = f32_64,
                     .reference = [p, in](const std::vector<RefTensor>& v) {
                       return std::vector<RefTensor>{PoolGradRef(p, in, &v[0], v[2], 0)};
                     }});
    cases.push_back({.name = absl::StrCat("MaxPoolGradGrad_", sp.name),
                     .op = "MaxPoolGradGrad",
                     .inputs = {Random(in), Random(out), Random(in)},
                     .attrs = p.Attrs(),
                     .dtypes = f32_64,
                     .reference = [p, in](const std::vector<RefTensor>& v) {
                       return std::vector<RefTensor>{PoolGradRef(p, in, &v[0], v[2], 1)};
                     }});
    const RefTensor dims =
        Values(Shape{4}, {static_cast<double>(in.dim(0)), static_cast<double>(in.dim(1)),
                          static_cast<double>(in.dim(2)), static_cast<double>(in.dim(3))});
    cases.push_back({.name = absl::StrCat("AvgPoolGrad_", sp.name),
                     .op = "AvgPoolGrad",
                     .inputs = {dims, Random(out)},
                     .input_dtypes = {DType::kInt32},
                     .constant = {true, false},
                     .attrs = p.Attrs(),
                     .dtypes = kFloats,
                     .reference = [p, in](const std::vector<RefTensor>& v) {
                       return std::vector<RefTensor>{PoolGradRef(p, in, nullptr, v[1], 2)};
                     }});
  }
  const RefPool p{{2, 2}, {2, 2}, false};
  cases.push_back(
      {.name = "MaxPoolGrad_grad_shape",
       .op = "MaxPoolGrad",
       .inputs = {Random(Shape{1, 4, 4, 1}), Random(Shape{1, 2, 2, 1}), Random(Shape{1, 3, 3, 1})},
       .attrs = p.Attrs(),
       .dtypes = {DType::kFloat},
       .expect_error = "grad must have shape"});
  cases.push_back({.name = "AvgPoolGrad_shape_length",
                   .op = "AvgPoolGrad",
                   .inputs = {Values(Shape{3}, {1, 4, 4}), Random(Shape{1, 2, 2, 1})},
                   .input_dtypes = {DType::kInt32},
                   .constant = {true, false},
                   .attrs = p.Attrs(),
                   .dtypes = {DType::kFloat},
                   .expect_error = "4 elements"});
}

// Conv2D geometry in NHWC (SAME or VALID, or EXPLICIT when `pads` = {top,
// bottom, left, right} is given, not -1) and the transposed products of
// out[b,oy,ox,oc] += in[b,iy,ix,g*FC+ci] * f[ky,kx,ci,oc] for the references.
struct RefConv {
  int64_t stride[2], dilation[2];
  bool same;
  int64_t pads[4] = {-1, -1, -1, -1};
  bool Explicit() const { return pads[0] >= 0; }
  AttrMap Attrs() const {
    AttrMap m = {{"strides", MakeAttr(std::vector<int64_t>{1, stride[0], stride[1], 1})},
                 {"dilations", MakeAttr(std::vector<int64_t>{1, dilation[0], dilation[1], 1})},
                 {"padding", MakeAttr(Explicit() ? "EXPLICIT" : same ? "SAME" : "VALID")}};
    if (Explicit()) {
      m["explicit_paddings"] =
          MakeAttr(std::vector<int64_t>{0, 0, pads[0], pads[1], pads[2], pads[3], 0, 0});
    }
    return m;
  }
  int64_t Out(int64_t in, int64_t k, int d) const {
    const int64_t eff = (k - 1) * dilation[d] + 1;
    if (Explicit()) return (in + pads[2 * d] + pads[2 * d + 1] - eff) / stride[d] + 1;
    return same ? (in + stride[d] - 1) / stride[d] : (in - eff + stride[d]) / stride[d];
  }
  int64_t PadBefore(int64_t in, int64_t k, int d) const {
    if (Explicit()) return pads[2 * d];
    if (!same) return 0;
    const int64_t eff = (k - 1) * dilation[d] + 1;
    return std::max<int64_t>((Out(in, k, d) - 1) * stride[d] + eff - in, 0) / 2;
  }
  Shape OutShape(const Shape& in, const Shape& f) const {
    return Shape{in.dim(0), Out(in.dim(1), f.dim(0), 0), Out(in.dim(2), f.dim(1), 1), f.dim(3)};
  }
  // want_input: d input from (filter, dy); else d filter from (input, dy).
  RefTensor Backprop(const Shape& in, const Shape& f, const RefTensor& other, const RefTensor& dy,
                     bool want_input) const {
    const Shape& rs = want_input ? in : f;
    RefTensor r{rs, std::vector<double>(rs.num_elements(), 0.0)};
    const Shape out = OutShape(in, f);
    const int64_t H = in.dim(1), W = in.dim(2), C = in.dim(3);
    const int64_t KH = f.dim(0), KW = f.dim(1), FC = f.dim(2), OC = f.dim(3);
    const int64_t per_group = OC / (C / FC);
    const int64_t ph = PadBefore(H, KH, 0), pw = PadBefore(W, KW, 1);
    for (int64_t b = 0; b < in.dim(0); ++b)
      for (int64_t oy = 0; oy < out.dim(1); ++oy)
        for (int64_t ox = 0; ox < out.dim(2); ++ox)
          for (int64_t ky = 0; ky < KH; ++ky)
            for (int64_t kx = 0; kx < KW; ++kx) {
              const int64_t iy = oy * stride[0] - ph + ky * dilation[0];
              const int64_t ix = ox * stride[1] - pw + kx * dilation[1];
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              for (int64_t oc = 0; oc < OC; ++oc)
                for (int64_t ci = 0; ci < FC; ++ci) {
                  const int64_t i_in = ((b * H + iy) * W + ix) * C + oc / per_group * FC + ci;
                  const int64_t i_f = ((ky * KW + kx) * FC + ci) * OC + oc;
                  const double g = dy.v[((b * out.dim(1) + oy) * out.dim(2) + ox) * OC + oc];
                  if (want_input) {
                    r.v[i_in] += g * other.v[i_f];
                  } else {
                    r.v[i_f] += g * other.v[i_in];
                  }
                }
            }
    return r;
  }
};

RefTensor SizesOf(const Shape& s) {
  std::vector<double> v;
  for (int i = 0; i < s.rank(); ++i) v.push_back(static_cast<double>(s.dim(i)));
  return Values(Shape{s.rank()}, v);
}

void AddConvBackpropCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* name;
    Shape in, f;
    RefConv conv;
    std::vector<DType> dtypes = {DType::kFloat, DType::kDouble};
    double tolerance = 0;
  };
  const std::vector<DType> f32_64 = {DType::kFloat, DType::kDouble};
  const RefConv valid{{1, 1}, {1, 1}, false}, same{{1, 1}, {1, 1}, true};
  const std::vector<Spec> specs = {
      {"valid", Shape{2, 5, 4, 3}, Shape{2, 2, 3, 4}, valid},
      {"same_stride2", Shape{1, 5, 6, 2}, Shape{3, 3, 2, 3}, {{2, 2}, {1, 1}, true}},
      {"dilated", Shape{1, 6, 5, 2}, Shape{2, 2, 2, 2}, {{1, 1}, {2, 2}, true}},
      {"grouped", Shape{1, 4, 4, 4}, Shape{2, 2, 2, 6}, valid},
      // The GEMM paths (Note [Conv2D gradients as GEMM] in conv_grad_ops.cc):
      // the 1x1 and whole-image shortcuts, widened 16-bit floats, grouped and
      // explicit padding, and the Fashion-MNIST CNN's two layers at batch 4.
      // Float sums of hundreds to thousands of products carry ~1e-5 absolute
      // error, which the metric (relative to max(|want|, 1)) sees where terms
      // cancel; hence 1e-4 on the larger cases.
      {"pointwise", Shape{2, 4, 5, 6}, Shape{1, 1, 6, 3}, valid, kFloats},
      {"pointwise_stride2", Shape{1, 5, 5, 3}, Shape{1, 1, 3, 2}, {{2, 2}, {1, 1}, true}},
      {"whole_image", Shape{3, 4, 5, 2}, Shape{4, 5, 2, 3}, valid, kFloats},
      {"same_widened", Shape{2, 6, 5, 3}, Shape{3, 3, 3, 4}, same, kFloats},
      {"grouped_same_stride2", Shape{2, 7, 6, 6}, Shape{3, 3, 2, 6}, {{2, 2}, {1, 1}, true},
       kFloats},
      {"grouped_pointwise", Shape{2, 3, 3, 4}, Shape{1, 1, 2, 6}, valid, kFloats},
      {"explicit", Shape{1, 5, 6, 2}, Shape{3, 3, 2, 2}, {{2, 1}, {1, 1}, false, {1, 2, 0, 1}},
       kFloats},
      {"explicit_dilated", Shape{2, 7, 7, 3}, Shape{3, 2, 3, 4},
       {{1, 2}, {2, 2}, false, {2, 0, 1, 3}}},
      {"cnn_conv1", Shape{4, 28, 28, 1}, Shape{3, 3, 1, 32}, valid, f32_64, 1e-4},
      {"cnn_conv2", Shape{4, 13, 13, 32}, Shape{3, 3, 32, 64}, valid, f32_64, 1e-4},
      {"cnn_conv2_widened", Shape{2, 13, 13, 32}, Shape{3, 3, 32, 64}, valid,
       {DType::kHalf, DType::kBFloat16}},
      {"cnn_conv2_same_stride2", Shape{4, 13, 13, 32}, Shape{3, 3, 32, 64},
       {{2, 2}, {1, 1}, true}, f32_64, 1e-4},
      {"cnn_conv2_dilation2", Shape{4, 13, 13, 32}, Shape{3, 3, 32, 64}, {{1, 1}, {2, 2}, false},
       f32_64, 1e-4},
      // 4608-value patch rows: more than one chunk of patches. Here chunks hold
      // 3 of the 4 images; below, an image needs two chunks. Float sums of
      // thousands of products carry ~1e-5 absolute error (see nn_conv_cases.cc).
      {"multi_chunk", Shape{4, 12, 12, 512}, Shape{3, 3, 512, 2}, same, {DType::kFloat}, 1e-4},
      {"multi_chunk_in_image", Shape{1, 24, 24, 512}, Shape{3, 3, 512, 2}, same, {DType::kFloat},
       1e-4},
      {"multi_chunk_widened", Shape{1, 24, 24, 512}, Shape{3, 3, 512, 2}, same, {DType::kHalf}},
      {"empty_batch", Shape{0, 5, 5, 3}, Shape{3, 3, 3, 4}, same},
      {"valid_zero_output", Shape{1, 2, 2, 1}, Shape{3, 3, 1, 1}, valid, kFloats},
  };
  for (const Spec& sp : specs) {
    const RefConv conv = sp.conv;
    const Shape in = sp.in, f = sp.f, out = conv.OutShape(in, f);
    cases.push_back({.name = absl::StrCat("Conv2DBackpropInput_", sp.name),
                     .op = "Conv2DBackpropInput",
                     .inputs = {SizesOf(in), Random(f), Random(out)},
                     .input_dtypes = {DType::kInt32},
                     .constant = {true, false, false},
                     .attrs = conv.Attrs(),
                     .dtypes = sp.dtypes,
                     .reference = [conv, in, f](const std::vector<RefTensor>& v) {
                       return std::vector<RefTensor>{conv.Backprop(in, f, v[1], v[2], true)};
                     },
                     .tolerance = sp.tolerance});
    cases.push_back({.name = absl::StrCat("Conv2DBackpropFilter_", sp.name),
                     .op = "Conv2DBackpropFilter",
                     .inputs = {Random(in), SizesOf(f), Random(out)},
                     .input_dtypes = {DType::kInvalid, DType::kInt32},
                     .constant = {false, true, false},
                     .attrs = conv.Attrs(),
                     .dtypes = sp.dtypes,
                     .reference = [conv, in, f](const std::vector<RefTensor>& v) {
                       return std::vector<RefTensor>{conv.Backprop(in, f, v[0], v[2], false)};
                     },
                     .tolerance = sp.tolerance});
  }
  const RefConv& conv = valid;
  cases.push_back(
      {.name = "Conv2DBackpropInput_bad_out_backprop",
       .op = "Conv2DBackpropInput",
       .inputs = {SizesOf(Shape{1, 4, 4, 2}), Random(Shape{2, 2, 2, 3}), Random(Shape{1, 2, 2, 3})},
       .input_dtypes = {DType::kInt32},
       .constant = {true, false, false},
       .attrs = conv.Attrs(),
       .dtypes = {DType::kFloat},
       .expect_error = "out_backprop must have shape"});
  cases.push_back(
      {.name = "Conv2DBackpropFilter_bad_sizes",
       .op = "Conv2DBackpropFilter",
       .inputs = {Random(Shape{1, 4, 4, 2}), SizesOf(Shape{2, 2, 3}), Random(Shape{1, 3, 3, 3})},
       .input_dtypes = {DType::kInvalid, DType::kInt32},
       .constant = {false, true, false},
       .attrs = conv.Attrs(),
       .dtypes = {DType::kFloat},
       .expect_error = "4 elements"});
  // Depths that do not split into groups, for both ops: {input, filter, message}.
  const std::vector<std::tuple<Shape, Shape, const char*>> bad_depths = {
      {Shape{1, 4, 4, 3}, Shape{2, 2, 2, 1}, "is not a multiple of input depth of filter"},
      {Shape{1, 4, 4, 4}, Shape{2, 2, 2, 3}, "is not a multiple of the number of groups"},
  };
  for (const auto& [in, f, error] : bad_depths) {
    const Shape out{1, 3, 3, f.dim(3)};
    const std::string suffix = absl::StrCat("_depth_", in.dim(3), "_", f.dim(2), "_", f.dim(3));
    cases.push_back({.name = absl::StrCat("Conv2DBackpropInput", suffix),
                     .op = "Conv2DBackpropInput",
                     .inputs = {SizesOf(in), Random(f), Random(out)},
                     .input_dtypes = {DType::kInt32},
                     .constant = {true, false, false},
                     .attrs = conv.Attrs(),
                     .dtypes = {DType::kFloat},
                     .expect_error = error});
    cases.push_back({.name = absl::StrCat("Conv2DBackpropFilter", suffix),
                     .op = "Conv2DBackpropFilter",
                     .inputs = {Random(in), SizesOf(f), Random(out)},
                     .input_dtypes = {DType::kInvalid, DType::kInt32},
                     .constant = {false, true, false},
                     .attrs = conv.Attrs(),
                     .dtypes = {DType::kFloat},
                     .expect_error = error});
  }
}

}  // namespace

std::vector<OpCase> NnGradWindowOpCases() {
  std::vector<OpCase> cases;
  AddPoolGradCases(cases);
  AddConvBackpropCases(cases);
  return cases;
}

}  // namespace gradserve::testing
