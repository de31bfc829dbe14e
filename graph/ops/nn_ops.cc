// Neural-network ops: activations, softmax family, convolution, pooling, batch norm.
// Their backward ops are in nn_grad_ops.cc, the losses in loss_ops.cc.
#include "graph/ops/nn_ops.h"

#include "absl/strings/str_join.h"
#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {

absl::StatusOr<WindowDim> ComputeWindowDim(int64_t input, int64_t filter, int64_t dilation,
                                           int64_t stride, Padding padding,
                                           const int64_t explicit_pad[2]) {
  WindowDim d;
  if (padding == Padding::kExplicit) {
    d.pad_before = explicit_pad[0];
    d.pad_after = explicit_pad[1];
  }
  if (input < 0 || filter < 0) return d;
  const int64_t effective_filter = (filter - 1) * dilation + 1;
  switch (padding) {
    case Padding::kValid:
      d.output = (input - effective_filter + stride) / stride;
      break;
    case Padding::kExplicit:
      d.output = (input + d.pad_before + d.pad_after - effective_filter + stride) / stride;
      break;
    case Padding::kSame: {
      d.output = (input + stride - 1) / stride;
      const int64_t needed = std::max<int64_t>((d.output - 1) * stride + effective_filter - input, 0);
      d.pad_before = needed / 2;
      d.pad_after = needed - d.pad_before;
      break;
    }
  }
  if (d.output < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "computed output size would be negative: ", d.output, " [input size: ", input,
        ", effective filter size: ", effective_filter, ", stride: ", stride, "]"));
  }
  return d;
}

namespace {

absl::StatusOr<Padding> ParsePadding(const std::string& s) {
  if (s == "SAME") return Padding::kSame;
  if (s == "VALID") return Padding::kValid;
  if (s == "EXPLICIT") return Padding::kExplicit;
  return absl::InvalidArgumentError(absl::StrCat("unknown padding \"", s, "\""));
}

// The attr checks common to Conv2D and pooling: `window` (dilations or ksize) and
// strides have 4 positive entries with 1 in N and C, and explicit pads fit.
absl::StatusOr<Window2D> MakeWindow(const char* window_name, const std::vector<int64_t>& window,
                                    const std::vector<int64_t>& strides,
                                    const std::string& padding,
                                    const std::vector<int64_t>& explicit_paddings,
                                    const std::string& data_format) {
  Window2D w;
  if (data_format != "NHWC" && data_format != "NCHW") {
    return absl::InvalidArgumentError(
        absl::StrCat("data_format \"", data_format, "\" is not supported (NHWC or NCHW)"));
  }
  w.channels_last = data_format == "NHWC";
  for (const auto* list : {&window, &strides}) {
    const char* name = list == &strides ? "strides" : window_name;
    GS_CHECK_ARG(list->size() == 4, name, " must have 4 entries, got [",
                 absl::StrJoin(*list, ","), "]");
    for (int64_t v : *list) {
      GS_CHECK_ARG(v > 0, name, " must be positive, got [", absl::StrJoin(*list, ","), "]");
    }
    GS_CHECK_ARG((*list)[0] == 1 && (*list)[w.c_axis()] == 1, name,
                 " must be 1 in the batch and depth dimensions, got [",
                 absl::StrJoin(*list, ","), "] (", data_format, ")");
  }
  for (int i = 0; i < 2; ++i) w.stride[i] = strides[i == 0 ? w.h_axis() : w.w_axis()];
  GS_ASSIGN_OR_RETURN(w.padding, ParsePadding(padding));
  if (w.padding != Padding::kExplicit) {
    GS_CHECK_ARG(explicit_paddings.empty(),
                 "explicit_paddings must be empty unless padding is EXPLICIT, got [",
                 absl::StrJoin(explicit_paddings, ","), "]");
    return w;
  }
  GS_CHECK_ARG(explicit_paddings.size() == 8,
               "explicit_paddings must have 8 entries (before and after per dimension), got [",
               absl::StrJoin(explicit_paddings, ","), "]");
  for (int64_t p : explicit_paddings) {
    GS_CHECK_ARG(p >= 0, "explicit_paddings must be non-negative, got [",
                 absl::StrJoin(explicit_paddings, ","), "]");
  }
  const int c = w.c_axis();
  GS_CHECK_ARG(explicit_paddings[0] == 0 && explicit_paddings[1] == 0 &&
                   explicit_paddings[2 * c] == 0 && explicit_paddings[2 * c + 1] == 0,
               "explicit_paddings must be 0 in the batch and depth dimensions, got [",
               absl::StrJoin(explicit_paddings, ","), "]");
  for (int i = 0; i < 2; ++i) {
    const int axis = i == 0 ? w.h_axis() : w.w_axis();
    w.pad[i][0] = explicit_paddings[2 * axis];
    w.pad[i][1] = explicit_paddings[2 * axis + 1];
  }
  return w;
}

}  // namespace

absl::StatusOr<Window2D> MakeConv2DWindow(const std::vector<int64_t>& strides,
                                          const std::vector<int64_t>& dilations,
                                          const std::string& padding,
                                          const std::vector<int64_t>& explicit_paddings,
                                          const std::string& data_format) {
  GS_ASSIGN_OR_RETURN(Window2D w,
                      MakeWindow("dilations", dilations, strides, padding, explicit_paddings,
                                 data_format));
  for (int i = 0; i < 2; ++i) w.dilation[i] = dilations[i == 0 ? w.h_axis() : w.w_axis()];
  return w;
}

absl::StatusOr<Window2D> MakePoolWindow(const std::vector<int64_t>& ksize,
                                        const std::vector<int64_t>& strides,
                                        const std::string& padding,
                                        const std::vector<int64_t>& explicit_paddings,
                                        const std::string& data_format) {
  GS_ASSIGN_OR_RETURN(Window2D w,
                      MakeWindow("ksize", ksize, strides, padding, explicit_paddings, data_format));
  for (int i = 0; i < 2; ++i) {
    w.ksize[i] = ksize[i == 0 ? w.h_axis() : w.w_axis()];
    GS_CHECK_ARG(w.pad[i][0] < w.ksize[i] && w.pad[i][1] < w.ksize[i],
                 "explicit_paddings must be smaller than the window, got [",
                 absl::StrJoin(explicit_paddings, ","), "] for ksize [",
                 absl::StrJoin(ksize, ","), "]");
  }
  return w;
}

namespace {

// Output 0 has input 0's shape, which must have rank >= 1 (softmax over the last axis).
absl::Status UnchangedRankAtLeast1(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape x, c.WithRankAtLeast(0, 1));
  c.set_output(0, x);
  return absl::OkStatus();
}

// Merges `b` into dimension `axis` of `shape` (unknowns take the known size).
absl::Status MergeDim(const InferenceContext& c, Shape& shape, int axis, int64_t b,
                      absl::string_view what) {
  const int64_t a = shape.dim(axis);
  if (a >= 0 && b >= 0 && a != b) {
    return c.Error(what, " has ", b, " elements but the input's channel dimension ", axis,
                   " has ", a, " (input shape ", shape.DebugString(), ")");
  }
  if (a < 0) shape.set_dim(axis, b);
  return absl::OkStatus();
}

absl::Status BiasAddShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(std::string format, c.GetAttr<std::string>("data_format"));
  const bool nchw = format == "NCHW";
  GS_ASSIGN_OR_RETURN(Shape value, c.WithRankAtLeast(0, nchw ? 3 : 2));
  GS_ASSIGN_OR_RETURN(Shape bias, c.WithRank(1, 1));
  if (value.unknown_rank()) {
    c.set_output(0, Shape::UnknownRank());
    return absl::OkStatus();
  }
  GS_RETURN_IF_ERROR(MergeDim(c, value, nchw ? 1 : value.rank() - 1, bias.dim(0), "bias"));
  c.set_output(0, value);
  return absl::OkStatus();
}

absl::Status Conv2DShape(InferenceContext& c) {
  absl::StatusOr<Window2D> w = ParseWindow2D(c, /*conv=*/true);
  if (!w.ok()) return c.Error(w.status().message());
  GS_ASSIGN_OR_RETURN(Shape in, c.WithRank(0, 4));
  GS_ASSIGN_OR_RETURN(Shape filter, c.WithRank(1, 4));
  const int64_t in_depth = in.dim(w->c_axis()), filter_depth = filter.dim(2);
  const int64_t out_depth = filter.dim(3);
  if (filter_depth == 0) return c.Error("filter has 0 input channels: ", filter.DebugString());
  if (in_depth >= 0 && filter_depth > 0) {
    if (in_depth % filter_depth != 0) {
      return c.Error("depth of input (", in_depth, ") is not a multiple of input depth of filter (",
                     filter_depth, ")");
    }
    const int64_t groups = in_depth / filter_depth;
    if (out_depth >= 0 && groups > 0 && out_depth % groups != 0) {
      return c.Error("depth of output (", out_depth, ") is not a multiple of the number of groups (",
                     groups, ")");
    }
  }
  int64_t out_size[2];
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<WindowDim> d =
        ComputeWindowDim(in.dim(i == 0 ? w->h_axis() : w->w_axis()), filter.dim(i),
                         w->dilation[i], w->stride[i], w->padding, w->pad[i]);
    if (!d.ok()) return c.Error(d.status().message());
    out_size[i] = d->output;
  }
  c.set_output(0, w->channels_last ? Shape{in.dim(0), out_size[0], out_size[1], out_depth}
                                   : Shape{in.dim(0), out_depth, out_size[0], out_size[1]});
  return absl::OkStatus();
}

absl::Status PoolShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(std::string format, c.GetAttr<std::string>("data_format"));
  if (format == "NCHW_VECT_C") {  // accepted for loading; its rank-5 layout is not inferred
    c.set_output(0, Shape::UnknownRank());
    return absl::OkStatus();
  }
  absl::StatusOr<Window2D> w = ParseWindow2D(c, /*conv=*/false);
  if (!w.ok()) return c.Error(w.status().message());
  GS_ASSIGN_OR_RETURN(Shape out, c.WithRank(0, 4));
  for (int i = 0; i < 2; ++i) {
    const int axis = i == 0 ? w->h_axis() : w->w_axis();
    absl::StatusOr<WindowDim> d =
        ComputeWindowDim(out.dim(axis), w->ksize[i], 1, w->stride[i], w->padding, w->pad[i]);
    if (!d.ok()) return c.Error(d.status().message());
    out.set_dim(axis, d->output);
  }
  c.set_output(0, out);
  return absl::OkStatus();
}

absl::Status FusedBatchNormShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(std::string format, c.GetAttr<std::string>("data_format"));
  GS_ASSIGN_OR_RETURN(bool is_training, c.GetAttr<bool>("is_training"));
  GS_ASSIGN_OR_RETURN(float avg_factor, c.GetAttr<float>("exponential_avg_factor"));
  const int rank = format == "NDHWC" || format == "NCDHW" ? 5 : 4;
  const bool channels_last = format == "NHWC" || format == "NDHWC";
  GS_ASSIGN_OR_RETURN(Shape x, c.WithRank(0, rank));
  const int c_axis = channels_last ? rank - 1 : 1;
  // Training with factor 1 ignores mean and variance (TF lets them be empty).
  const int vector_inputs = is_training && avg_factor == 1.0f ? 3 : 5;
  static constexpr const char* kNames[] = {"x", "scale", "offset", "mean", "variance"};
  for (int i = 1; i < vector_inputs; ++i) {
    GS_ASSIGN_OR_RETURN(Shape v, c.WithRank(i, 1));
    GS_RETURN_IF_ERROR(MergeDim(c, x, c_axis, v.dim(0), kNames[i]));
  }
  for (int i = 1; i <= 4; ++i) c.set_output(i, Shape{x.dim(c_axis)});
  c.set_output(0, x);
  // The CPU writes a scalar; accelerators may write a workspace of their own size.
  c.set_output(5, Shape::UnknownRank());
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterNnGradOps(OpRegistry& r);  // nn_grad_ops.cc
absl::Status RegisterLossOps(OpRegistry& r);    // loss_ops.cc

absl::Status RegisterNnOps(OpRegistry& r) {
  const std::vector<DType> floats = FloatTypes();
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("BiasAdd")
                                    .Input("value", "T")
                                    .Input("bias", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", RealNumberTypes())
                                    .EnumAttr("data_format", {"NHWC", "NCHW"}, "NHWC")
                                    .SetShapeFn(BiasAddShape)));
  for (const char* op : {"Relu", "Relu6", "Elu"}) {
    GS_RETURN_IF_ERROR(r.Register(
        OpDefBuilder(op)
            .Input("features", "T")
            .Output("activations", "T")
            .TypeAttr("T", std::string(op) == "Elu" ? floats : RealNumberTypes())
            .SetShapeFn(shape_fn::Unchanged)));
  }
  for (const char* op : {"Sigmoid", "Tanh"}) {
    GS_RETURN_IF_ERROR(r.Register(OpDefBuilder(op)
                                      .Input("x", "T")
                                      .Output("y", "T")
                                      .TypeAttr("T", floats)
                                      .SetShapeFn(shape_fn::Unchanged)));
  }
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Softmax")
                                    .Input("logits", "T")
                                    .Output("softmax", "T")
                                    .TypeAttr("T", floats)
                                    .SetShapeFn(UnchangedRankAtLeast1)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("LogSoftmax")
                                    .Input("logits", "T")
                                    .Output("logsoftmax", "T")
                                    .TypeAttr("T", floats)
                                    .SetShapeFn(UnchangedRankAtLeast1)));
  GS_RETURN_IF_ERROR(r.Register(
      OpDefBuilder("Conv2D")
          .Input("input", "T")
          .Input("filter", "T")
          .Output("output", "T")
          .TypeAttr("T", {DType::kHalf, DType::kBFloat16, DType::kFloat, DType::kDouble,
                          DType::kInt32})
          .RequiredAttr("strides", AttrType::kListInt)
          .Attr("use_cudnn_on_gpu", true)
          .EnumAttr("padding", {"SAME", "VALID", "EXPLICIT"})
          .Attr("explicit_paddings", std::vector<int64_t>{})
          .EnumAttr("data_format", {"NHWC", "NCHW"}, "NHWC")
          .Attr("dilations", std::vector<int64_t>{1, 1, 1, 1})
          .SetShapeFn(Conv2DShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("MaxPool")
                                    .Input("input", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", RealNumberTypes(), DType::kFloat)
                                    .RequiredAttr("ksize", AttrType::kListInt)
                                    .RequiredAttr("strides", AttrType::kListInt)
                                    .EnumAttr("padding", {"SAME", "VALID", "EXPLICIT"})
                                    .Attr("explicit_paddings", std::vector<int64_t>{})
                                    .EnumAttr("data_format", {"NHWC", "NCHW", "NCHW_VECT_C"},
                                              "NHWC")
                                    .SetShapeFn(PoolShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("AvgPool")
                                    .Input("value", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", floats)
                                    .RequiredAttr("ksize", AttrType::kListInt)
                                    .RequiredAttr("strides", AttrType::kListInt)
                                    .EnumAttr("padding", {"SAME", "VALID"})
                                    .EnumAttr("data_format", {"NHWC", "NCHW"}, "NHWC")
                                    .SetShapeFn(PoolShape)));
  GS_RETURN_IF_ERROR(r.Register(
      OpDefBuilder("FusedBatchNormV3")
          .Input("x", "T")
          .Input("scale", "U")
          .Input("offset", "U")
          .Input("mean", "U")
          .Input("variance", "U")
          .Output("y", "T")
          .Output("batch_mean", "U")
          .Output("batch_variance", "U")
          .Output("reserve_space_1", "U")
          .Output("reserve_space_2", "U")
          .Output("reserve_space_3", "U")
          .TypeAttr("T", {DType::kHalf, DType::kBFloat16, DType::kFloat})
          .TypeAttr("U", {DType::kFloat})
          .Attr("epsilon", 0.0001f)
          .Attr("exponential_avg_factor", 1.0f)
          .EnumAttr("data_format", {"NHWC", "NCHW", "NDHWC", "NCDHW"}, "NHWC")
          .Attr("is_training", true)
          .SetShapeFn(FusedBatchNormShape)));
  GS_RETURN_IF_ERROR(RegisterNnGradOps(r));
  GS_RETURN_IF_ERROR(RegisterLossOps(r));
  return absl::OkStatus();
}

}  // namespace gradserve
