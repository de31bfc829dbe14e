// Conformance cases for Conv2D, MaxPool and AvgPool (part of the nn family; see
// NnOpCases in nn_cases.cc). References are direct loops over output pixels in
// float64, with TensorFlow's output-size and padding rules written out again.
#include <algorithm>
#include <cmath>
#include <string>

#include "graph/attr.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

using Ints = std::vector<int64_t>;

// Output size and leading pad of one spatial dimension (TF's documented rules:
// SAME = ceil(in / stride) with the padding split low-half first; VALID =
// ceil((in - k_eff + 1) / stride); EXPLICIT from the given pads).
struct RefDim {
  int64_t out, pad_before;
};
RefDim RefWindow(int64_t in, int64_t k, int64_t stride, int64_t dilation, const std::string& padding,
                 int64_t pad_before = 0, int64_t pad_after = 0) {
  const int64_t k_eff = (k - 1) * dilation + 1;
  if (padding == "VALID") return {(in - k_eff + stride) / stride, 0};
  if (padding == "EXPLICIT") return {(in + pad_before + pad_after - k_eff) / stride + 1, pad_before};
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + k_eff - in, 0);
  return {out, total / 2};
}

// Window attrs in NHWC order; pads = {top, bottom, left, right} for EXPLICIT.
struct RefWindowAttrs {
  Ints strides = {1, 1, 1, 1};
  Ints dilations = {1, 1, 1, 1};
  Ints ksize = {1, 1, 1, 1};  // pooling only
  std::string padding = "VALID";
  Ints pads = {0, 0, 0, 0};
};

RefTensor ConvRef(const RefTensor& in, const RefTensor& f, const RefWindowAttrs& a) {
  const int64_t n = in.dim(0), h = in.dim(1), w = in.dim(2), c = in.dim(3);
  const int64_t kh = f.dim(0), kw = f.dim(1), fc = f.dim(2), oc = f.dim(3);
  const int64_t group_out = oc / (c / fc);  // output channels per group
  const RefDim rows = RefWindow(h, kh, a.strides[1], a.dilations[1], a.padding, a.pads[0], a.pads[1]);
  const RefDim cols = RefWindow(w, kw, a.strides[2], a.dilations[2], a.padding, a.pads[2], a.pads[3]);
  RefTensor out{Shape{n, rows.out, cols.out, oc},
                std::vector<double>(n * rows.out * cols.out * oc, 0.0)};
  int64_t o = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < rows.out; ++oy)
      for (int64_t ox = 0; ox < cols.out; ++ox)
        for (int64_t d = 0; d < oc; ++d, ++o) {
          double acc = 0;
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t iy = oy * a.strides[1] - rows.pad_before + i * a.dilations[1];
              const int64_t ix = ox * a.strides[2] - cols.pad_before + j * a.dilations[2];
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (int64_t ci = 0; ci < fc; ++ci) {
                const int64_t channel = d / group_out * fc + ci;
                acc += in.v[((b * h + iy) * w + ix) * c + channel] *
                       f.v[((i * kw + j) * fc + ci) * oc + d];
              }
            }
          out.v[o] = acc;
        }
  return out;
}

RefTensor PoolRef(const RefTensor& in, const RefWindowAttrs& a, bool is_max) {
  const int64_t n = in.dim(0), h = in.dim(1), w = in.dim(2), c = in.dim(3);
  const RefDim rows = RefWindow(h, a.ksize[1], a.strides[1], 1, a.padding, a.pads[0], a.pads[1]);
  const RefDim cols = RefWindow(w, a.ksize[2], a.strides[2], 1, a.padding, a.pads[2], a.pads[3]);
  RefTensor out{Shape{n, rows.out, cols.out, c}, std::vector<double>(n * rows.out * cols.out * c)};
  int64_t o = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < rows.out; ++oy)
      for (int64_t ox = 0; ox < cols.out; ++ox)
        for (int64_t d = 0; d < c; ++d, ++o) {
          double best = -INFINITY, sum = 0;
          int64_t count = 0;
          for (int64_t i = 0; i < a.ksize[1]; ++i)
            for (int64_t j = 0; j < a.ksize[2]; ++j) {
              const int64_t iy = oy * a.strides[1] - rows.pad_before + i;
              const int64_t ix = ox * a.strides[2] - cols.pad_before + j;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const double v = in.v[((b * h + iy) * w + ix) * c + d];
              best = std::max(best, v);
              sum += v;
              ++count;
            }
          out.v[o] = is_max ? best : sum / count;
        }
  return out;
}

AttrMap ConvAttrs(const RefWindowAttrs& a) {
  AttrMap m = {{"strides", MakeAttr(a.strides)},
               {"dilations", MakeAttr(a.dilations)},
               {"padding", MakeAttr(a.padding)}};
  if (a.padding == "EXPLICIT") {
    m["explicit_paddings"] = MakeAttr(Ints{0, 0, a.pads[0], a.pads[1], a.pads[2], a.pads[3], 0, 0});
  }
  return m;
}

AttrMap PoolAttrs(const RefWindowAttrs& a) {
  AttrMap m = {{"ksize", MakeAttr(a.ksize)},
               {"strides", MakeAttr(a.strides)},
               {"padding", MakeAttr(a.padding)}};
  if (a.padding == "EXPLICIT") {
    m["explicit_paddings"] = MakeAttr(Ints{0, 0, a.pads[0], a.pads[1], a.pads[2], a.pads[3], 0, 0});
  }
  return m;
}

const std::vector<DType> kFloats = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16};

void AddConvCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* name;
    Shape input, filter;
    RefWindowAttrs attrs;
    std::vector<DType> dtypes = kFloats;
    double tolerance = 0;
  };
  const std::vector<Spec> specs = {
      {"same_3x3", {1, 5, 5, 3}, {3, 3, 3, 4}, {.padding = "SAME"}},
      {"valid_stride2_odd", {2, 7, 5, 3}, {3, 2, 3, 2}, {.strides = {1, 2, 2, 1}}},
      {"same_stride2_odd", {2, 7, 5, 3}, {3, 3, 3, 4}, {.strides = {1, 2, 2, 1}, .padding = "SAME"}},
      {"same_stride_rows_only", {1, 6, 5, 2}, {2, 3, 2, 3}, {.strides = {1, 3, 1, 1}, .padding = "SAME"}},
      {"same_even_filter", {2, 6, 6, 2}, {4, 2, 2, 3}, {.padding = "SAME"}},
      {"same_dilation2", {1, 7, 6, 2}, {3, 3, 2, 3}, {.dilations = {1, 2, 2, 1}, .padding = "SAME"}},
      {"valid_dilation2_stride2", {2, 9, 8, 3}, {2, 3, 3, 2},
       {.strides = {1, 2, 2, 1}, .dilations = {1, 2, 3, 1}}},
      {"pointwise", {2, 4, 5, 6}, {1, 1, 6, 3}, {}},
      {"pointwise_stride2", {1, 5, 5, 3}, {1, 1, 3, 2}, {.strides = {1, 2, 2, 1}, .padding = "SAME"}},
      {"whole_image", {3, 4, 5, 2}, {4, 5, 2, 3}, {}},
      {"explicit", {1, 5, 6, 2}, {3, 3, 2, 2},
       {.strides = {1, 2, 1, 1}, .padding = "EXPLICIT", .pads = {1, 2, 0, 1}}},
      {"explicit_pointwise", {2, 3, 4, 2}, {1, 1, 2, 3}, {.padding = "EXPLICIT", .pads = {1, 0, 0, 2}}},
      {"grouped", {2, 5, 4, 6}, {3, 2, 2, 9}, {.padding = "SAME"}},
      {"grouped_depthwise_stride2", {1, 6, 7, 4}, {3, 3, 1, 8}, {.strides = {1, 2, 2, 1}}},
      {"grouped_pointwise", {2, 3, 3, 4}, {1, 1, 2, 6}, {}},
      {"empty_batch", {0, 5, 5, 3}, {3, 3, 3, 4}, {.padding = "SAME"}},
      {"valid_zero_output", {1, 2, 2, 1}, {3, 3, 1, 1}, {}},
      {"empty_image_same", {2, 0, 4, 3}, {3, 3, 3, 2}, {.padding = "SAME"}},
      // 576 patch rows of 4608 values: more than one chunk of patches. Float sums
      // of 4608 products carry ~1e-5 absolute error, which the metric (relative to
      // max(|want|, 1)) sees where terms cancel.
      {"multi_chunk", {1, 24, 24, 512}, {3, 3, 512, 2}, {.padding = "SAME"}, {DType::kFloat}, 1e-4},
      {"multi_chunk_widened", {1, 24, 24, 512}, {3, 3, 512, 2}, {.padding = "SAME"}, {DType::kHalf}},
      // The Fashion-MNIST CNN's two layers (bench/conv_bench.cc) at batch 4.
      {"cnn_conv1", {4, 28, 28, 1}, {3, 3, 1, 32}, {}},
      {"cnn_conv2", {4, 13, 13, 32}, {3, 3, 32, 64}, {}, {DType::kFloat, DType::kDouble}, 1e-4},
      {"cnn_conv2_widened", {2, 13, 13, 32}, {3, 3, 32, 64}, {}, {DType::kHalf, DType::kBFloat16}},
  };
  for (const Spec& s : specs) {
    const RefWindowAttrs a = s.attrs;
    cases.push_back({.name = absl::StrCat("Conv2D_", s.name),
                     .op = "Conv2D",
                     .inputs = {Random(s.input), Random(s.filter)},
                     .attrs = ConvAttrs(a),
                     .dtypes = s.dtypes,
                     .reference = [a](const std::vector<RefTensor>& in) {
                       return std::vector<RefTensor>{ConvRef(in[0], in[1], a)};
                     },
                     .tolerance = s.tolerance});
  }
  const RefWindowAttrs same2 = {.strides = {1, 2, 2, 1}, .padding = "SAME"};
  cases.push_back({.name = "Conv2D_int32", .op = "Conv2D",
                   .inputs = {RandomInt(Shape{2, 5, 4, 3}, -9, 9), RandomInt(Shape{3, 3, 3, 2}, -9, 9)},
                   .attrs = ConvAttrs(same2), .dtypes = {DType::kInt32},
                   .reference = [same2](const std::vector<RefTensor>& in) {
                     return std::vector<RefTensor>{ConvRef(in[0], in[1], same2)};
                   }});

  struct Bad {
    const char* name;
    Shape input, filter;
    AttrMap attrs;
    const char* error;
  };
  const AttrMap ok = ConvAttrs({.padding = "SAME"});
  auto with = [&ok](std::string key, AttrValue v) {
    AttrMap m = ok;
    m[key] = std::move(v);
    return m;
  };
  const std::vector<Bad> bad = {
      {"strides_3", {1, 4, 4, 2}, {2, 2, 2, 1}, with("strides", MakeAttr(Ints{1, 1, 1})),
       "strides must have 4 entries"},
      {"batch_stride", {1, 4, 4, 2}, {2, 2, 2, 1}, with("strides", MakeAttr(Ints{2, 1, 1, 1})),
       "must be 1 in the batch and depth"},
      {"zero_dilation", {1, 4, 4, 2}, {2, 2, 2, 1}, with("dilations", MakeAttr(Ints{1, 0, 1, 1})),
       "dilations must be positive"},
      {"explicit_with_same", {1, 4, 4, 2}, {2, 2, 2, 1},
       with("explicit_paddings", MakeAttr(Ints{0, 0, 1, 1, 1, 1, 0, 0})), "must be empty unless"},
      {"explicit_count", {1, 4, 4, 2}, {2, 2, 2, 1},
       [&] { AttrMap m = with("padding", MakeAttr("EXPLICIT"));
             m["explicit_paddings"] = MakeAttr(Ints{1, 1});
             return m; }(),
       "must have 8 entries"},
      {"bad_padding", {1, 4, 4, 2}, {2, 2, 2, 1}, with("padding", MakeAttr("FULL")), "is not one of"},
      {"depth_mismatch", {1, 4, 4, 3}, {2, 2, 2, 1}, ok, "is not a multiple of input depth of filter"},
      {"groups_output_depth", {1, 4, 4, 4}, {2, 2, 2, 3}, ok, "is not a multiple of the number of groups"},
      {"negative_output", {1, 2, 2, 1}, {4, 4, 1, 1}, with("padding", MakeAttr("VALID")),
       "would be negative"},
      {"nchw_on_cpu", {1, 2, 5, 5}, {3, 3, 2, 2}, with("data_format", MakeAttr("NCHW")),
       "supports only data_format NHWC"},
      {"input_rank3", {4, 4, 2}, {2, 2, 2, 1}, ok, "must have rank 4"},
      {"empty_filter", {1, 4, 4, 2}, {0, 2, 2, 1}, ok, "filter must not have zero elements"},
  };
  for (const Bad& b : bad) {
    cases.push_back({.name = absl::StrCat("Conv2D_", b.name), .op = "Conv2D",
                     .inputs = {Random(b.input), Random(b.filter)}, .attrs = b.attrs,
                     .dtypes = {DType::kFloat}, .expect_error = b.error});
  }
}

void AddPoolCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* name;
    Shape input;
    RefWindowAttrs attrs;
    double lo = -1, hi = 1;
  };
  const Ints k2 = {1, 2, 2, 1}, k3 = {1, 3, 3, 1}, s2 = {1, 2, 2, 1};
  const std::vector<Spec> specs = {
      {"valid_2x2_odd", {2, 6, 7, 3}, {.strides = s2, .ksize = k2}},
      {"same_3x3_stride2", {2, 7, 5, 3}, {.strides = s2, .ksize = k3, .padding = "SAME"}},
      {"same_3x3_stride1", {1, 4, 5, 2}, {.ksize = k3, .padding = "SAME"}},
      // All negative: padding must not act as a zero.
      {"same_negative", {1, 5, 4, 3}, {.strides = s2, .ksize = k3, .padding = "SAME"}, -2, -1},
      {"asymmetric", {2, 5, 8, 2}, {.strides = {1, 1, 3, 1}, .ksize = {1, 2, 4, 1}, .padding = "SAME"}},
      {"window_1x1_stride2", {1, 5, 5, 2}, {.strides = s2}},
      {"empty_batch", {0, 4, 4, 2}, {.strides = s2, .ksize = k2}},
  };
  for (const char* op : {"MaxPool", "AvgPool"}) {
    const bool is_max = std::string(op) == "MaxPool";
    for (const Spec& s : specs) {
      const RefWindowAttrs a = s.attrs;
      cases.push_back({.name = absl::StrCat(op, "_", s.name), .op = op,
                       .inputs = {Random(s.input, s.lo, s.hi)}, .attrs = PoolAttrs(a),
                       .dtypes = kFloats,
                       .reference = [a, is_max](const std::vector<RefTensor>& in) {
                         return std::vector<RefTensor>{PoolRef(in[0], a, is_max)};
                       }});
    }
  }
  const RefWindowAttrs explicit_pads = {
      .strides = s2, .ksize = k3, .padding = "EXPLICIT", .pads = {1, 2, 2, 0}};
  auto max_ref = [](RefWindowAttrs a) {
    return [a](const std::vector<RefTensor>& in) {
      return std::vector<RefTensor>{PoolRef(in[0], a, true)};
    };
  };
  cases.push_back({.name = "MaxPool_explicit_negative", .op = "MaxPool",
                   .inputs = {Random(Shape{1, 5, 6, 2}, -2, -1)}, .attrs = PoolAttrs(explicit_pads),
                   .dtypes = kFloats, .reference = max_ref(explicit_pads)});
  const RefWindowAttrs same3 = {.strides = s2, .ksize = k3, .padding = "SAME"};
  cases.push_back({.name = "MaxPool_signed_ints", .op = "MaxPool",
                   .inputs = {RandomInt(Shape{2, 5, 6, 3}, -100, 100)}, .attrs = PoolAttrs(same3),
                   .dtypes = {DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64},
                   .reference = max_ref(same3)});
  cases.push_back({.name = "MaxPool_uint8", .op = "MaxPool",
                   .inputs = {RandomInt(Shape{1, 6, 5, 2}, 0, 255)}, .attrs = PoolAttrs(same3),
                   .dtypes = {DType::kUInt8}, .reference = max_ref(same3)});

  const AttrMap ok = PoolAttrs(same3);
  auto with = [&ok](std::string key, AttrValue v) {
    AttrMap m = ok;
    m[key] = std::move(v);
    return m;
  };
  const AttrMap nchw = {{"ksize", MakeAttr(Ints{1, 1, 3, 3})},
                        {"strides", MakeAttr(Ints{1, 1, 2, 2})},
                        {"padding", MakeAttr("SAME")},
                        {"data_format", MakeAttr("NCHW")}};
  struct Bad {
    const char* op;
    const char* name;
    Shape input;
    AttrMap attrs;
    const char* error;
  };
  const std::vector<Bad> bad = {
      {"MaxPool", "ksize_3", {1, 4, 4, 2}, with("ksize", MakeAttr(Ints{1, 2, 2})),
       "ksize must have 4 entries"},
      {"MaxPool", "batch_window", {2, 4, 4, 2}, with("ksize", MakeAttr(Ints{2, 2, 2, 1})),
       "must be 1 in the batch and depth"},
      {"MaxPool", "depth_window", {1, 4, 4, 2}, with("ksize", MakeAttr(Ints{1, 1, 1, 2})),
       "must be 1 in the batch and depth"},
      {"MaxPool", "zero_stride", {1, 4, 4, 2}, with("strides", MakeAttr(Ints{1, 0, 1, 1})),
       "strides must be positive"},
      {"MaxPool", "pad_covers_window", {1, 4, 4, 2},
       PoolAttrs({.ksize = k3, .padding = "EXPLICIT", .pads = {3, 0, 0, 0}}),
       "smaller than the window"},
      {"MaxPool", "negative_output", {1, 2, 2, 1}, PoolAttrs({.ksize = {1, 4, 4, 1}}),
       "would be negative"},
      {"MaxPool", "nchw_on_cpu", {1, 2, 4, 4}, nchw, "supports only data_format NHWC"},
      {"MaxPool", "input_rank3", {4, 4, 2}, ok, "must have rank 4"},
      {"AvgPool", "explicit", {1, 4, 4, 2}, with("padding", MakeAttr("EXPLICIT")), "is not one of"},
      {"AvgPool", "nchw_on_cpu", {1, 2, 4, 4}, nchw, "supports only data_format NHWC"},
      {"AvgPool", "strides_5", {1, 4, 4, 2}, with("strides", MakeAttr(Ints{1, 1, 1, 1, 1})),
       "strides must have 4 entries"},
  };
  for (const Bad& b : bad) {
    cases.push_back({.name = absl::StrCat(b.op, "_", b.name), .op = b.op,
                     .inputs = {Random(b.input)}, .attrs = b.attrs, .dtypes = {DType::kFloat},
                     .expect_error = b.error});
  }
}

}  // namespace

// Declared and called by NnOpCases (nn_cases.cc).
std::vector<OpCase> NnConvOpCases() {
  std::vector<OpCase> cases;
  AddConvCases(cases);
  AddPoolCases(cases);
  return cases;
}

}  // namespace gradserve::testing
