// Backward ops of the nn family (TensorFlow's names, inputs and semantics):
// the activation gradients, BiasAddGrad, the pooling and Conv2D gradients and
// FusedBatchNormGradV3. The losses are in loss_ops.cc.
#include "graph/op_def.h"
#include "graph/ops/nn_ops.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// Output 0 = the merge of inputs 0 and 1 (an upstream gradient and the forward
// tensor it belongs to must have one shape).
absl::Status MergeBothInputs(InferenceContext& c) {
  absl::StatusOr<Shape> merged = c.input(0).Merge(c.input(1));
  if (!merged.ok()) {
    return c.Error("inputs must have the same shape, got ", c.input(0).DebugString(), " and ",
                   c.input(1).DebugString());
  }
  c.set_output(0, *std::move(merged));
  return absl::OkStatus();
}

// [channels] of out_backprop's channel axis (NHWC: last, NCHW: 1).
absl::Status BiasAddGradShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(std::string format, c.GetAttr<std::string>("data_format"));
  const bool nchw = format == "NCHW";
  GS_ASSIGN_OR_RETURN(Shape g, c.WithRankAtLeast(0, nchw ? 3 : 2));
  if (g.unknown_rank()) {
    c.set_output(0, Shape{-1});
    return absl::OkStatus();
  }
  c.set_output(0, Shape{g.dim(nchw ? 1 : g.rank() - 1)});
  return absl::OkStatus();
}

// Output 0 = input `i`'s shape, which must be 4-D (an image batch); the window
// attrs are validated as for the forward pooling op.
template <int i>
absl::Status PoolGradShape(InferenceContext& c) {
  absl::StatusOr<Window2D> w = ParseWindow2D(c, /*conv=*/false);
  if (!w.ok()) return c.Error(w.status().message());
  GS_ASSIGN_OR_RETURN(Shape out, c.WithRank(i, 4));
  c.set_output(0, out);
  return absl::OkStatus();
}

// AvgPoolGrad: the shape given by orig_input_shape (a 4-element vector).
absl::Status AvgPoolGradShape(InferenceContext& c) {
  absl::StatusOr<Window2D> w = ParseWindow2D(c, /*conv=*/false);
  if (!w.ok()) return c.Error(w.status().message());
  GS_ASSIGN_OR_RETURN(Shape out, c.MakeShapeFromShapeTensor(0));
  if (!out.unknown_rank() && out.rank() != 4) {
    return c.Error("orig_input_shape must have 4 elements, got ", out.DebugString());
  }
  c.set_output(0, out.unknown_rank() ? Shape::UnknownDims(4) : out);
  return absl::OkStatus();
}

// Conv2DBackpropInput / Conv2DBackpropFilter: the shape given by input `i`
// (input_sizes / filter_sizes, a 4-element vector); Conv2D's attrs are checked.
template <int i>
absl::Status ConvBackpropShape(InferenceContext& c) {
  absl::StatusOr<Window2D> w = ParseWindow2D(c, /*conv=*/true);
  if (!w.ok()) return c.Error(w.status().message());
  GS_ASSIGN_OR_RETURN(Shape out, c.MakeShapeFromShapeTensor(i));
  if (!out.unknown_rank() && out.rank() != 4) {
    return c.Error(i == 0 ? "input_sizes" : "filter_sizes", " must have 4 elements, got ",
                   out.DebugString());
  }
  c.set_output(0, out.unknown_rank() ? Shape::UnknownDims(4) : out);
  return absl::OkStatus();
}

// FusedBatchNormGradV3: x_backprop has the shape of y_backprop and x (merged);
// scale_backprop and offset_backprop are [channels], channels merged over x,
// scale and reserve_space_1/2; reserve_space_4/5 are empty vectors, as in
// TensorFlow. reserve_space_3 is not read.
absl::Status FusedBatchNormGradShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(std::string format, c.GetAttr<std::string>("data_format"));
  const int rank = format == "NDHWC" || format == "NCDHW" ? 5 : 4;
  const int c_axis = format == "NHWC" || format == "NDHWC" ? rank - 1 : 1;
  GS_ASSIGN_OR_RETURN(Shape dy, c.WithRank(0, rank));
  GS_ASSIGN_OR_RETURN(Shape x, c.WithRank(1, rank));
  absl::StatusOr<Shape> merged = dy.Merge(x);
  if (!merged.ok()) {
    return c.Error("x and y_backprop must have the same shape, got ", x.DebugString(), " and ",
                   dy.DebugString());
  }
  static constexpr const char* kNames[] = {"scale", "reserve_space_1", "reserve_space_2"};
  for (int i = 2; i < 5; ++i) {
    GS_ASSIGN_OR_RETURN(Shape v, c.WithRank(i, 1));
    const int64_t have = merged->dim(c_axis), got = v.dim(0);
    if (have >= 0 && got >= 0 && have != got) {
      return c.Error(kNames[i - 2], " has ", got, " elements but x ", merged->DebugString(),
                     " has ", have, " channels");
    }
    if (have < 0) merged->set_dim(c_axis, got);
  }
  c.set_output(0, *merged);
  c.set_output(1, Shape{merged->dim(c_axis)});
  c.set_output(2, Shape{merged->dim(c_axis)});
  c.set_output(3, Shape{0});
  c.set_output(4, Shape{0});
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterNnGradOps(OpRegistry& r) {
  const std::vector<DType> floats = FloatTypes();
  // ReluGrad(gradients, features), Relu6Grad(gradients, features),
  // EluGrad(gradients, outputs) -> backprops.
  for (const char* op : {"ReluGrad", "Relu6Grad", "EluGrad"}) {
    const bool elu = std::string(op) == "EluGrad";
    GS_RETURN_IF_ERROR(r.Register(OpDefBuilder(op)
                                      .Input("gradients", "T")
                                      .Input(elu ? "outputs" : "features", "T")
                                      .Output("backprops", "T")
                                      .TypeAttr("T", floats)
                                      .SetShapeFn(MergeBothInputs)));
  }
  // SigmoidGrad(y, dy) = dy * y * (1 - y); TanhGrad(y, dy) = dy * (1 - y^2).
  for (const char* op : {"SigmoidGrad", "TanhGrad"}) {
    GS_RETURN_IF_ERROR(r.Register(OpDefBuilder(op)
                                      .Input("y", "T")
                                      .Input("dy", "T")
                                      .Output("z", "T")
                                      .TypeAttr("T", floats)
                                      .SetShapeFn(MergeBothInputs)));
  }
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("BiasAddGrad")
                                    .Input("out_backprop", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", floats)
                                    .EnumAttr("data_format", {"NHWC", "NCHW"}, "NHWC")
                                    .SetShapeFn(BiasAddGradShape)));
  // MaxPoolGrad(orig_input, orig_output, grad) scatters each grad element to the
  // max of its window (shape of orig_input); MaxPoolGradGrad(orig_input,
  // orig_output, grad) gathers grad (shaped like orig_input) at those maxima
  // (shape of orig_output).
  for (const char* op : {"MaxPoolGrad", "MaxPoolGradGrad"}) {
    const bool grad_grad = std::string(op) == "MaxPoolGradGrad";
    GS_RETURN_IF_ERROR(
        r.Register(OpDefBuilder(op)
                       .Input("orig_input", "T")
                       .Input("orig_output", "T")
                       .Input("grad", "T")
                       .Output("output", "T")
                       .TypeAttr("T", floats, DType::kFloat)
                       .RequiredAttr("ksize", AttrType::kListInt)
                       .RequiredAttr("strides", AttrType::kListInt)
                       .EnumAttr("padding", {"SAME", "VALID", "EXPLICIT"})
                       .Attr("explicit_paddings", std::vector<int64_t>{})
                       .EnumAttr("data_format", {"NHWC", "NCHW"}, "NHWC")
                       .SetShapeFn(grad_grad ? PoolGradShape<1> : PoolGradShape<0>)));
  }
  // AvgPoolGrad(orig_input_shape, grad) spreads each grad element evenly over
  // the in-bounds pixels of its window.
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("AvgPoolGrad")
                                    .Input("orig_input_shape", DType::kInt32)
                                    .Input("grad", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", floats)
                                    .RequiredAttr("ksize", AttrType::kListInt)
                                    .RequiredAttr("strides", AttrType::kListInt)
                                    .EnumAttr("padding", {"SAME", "VALID"})
                                    .EnumAttr("data_format", {"NHWC", "NCHW"}, "NHWC")
                                    .SetShapeFn(AvgPoolGradShape)));
  // Conv2DBackpropInput(input_sizes, filter, out_backprop) -> d input;
  // Conv2DBackpropFilter(input, filter_sizes, out_backprop) -> d filter.
  for (const char* op : {"Conv2DBackpropInput", "Conv2DBackpropFilter"}) {
    const bool input = std::string(op) == "Conv2DBackpropInput";
    OpDefBuilder b(op);
    if (input) {
      b.Input("input_sizes", DType::kInt32).Input("filter", "T");
    } else {
      b.Input("input", "T").Input("filter_sizes", DType::kInt32);
    }
    b.Input("out_backprop", "T")
        .Output("output", "T")
        .TypeAttr("T", floats)
        .RequiredAttr("strides", AttrType::kListInt)
        .Attr("use_cudnn_on_gpu", true)
        .EnumAttr("padding", {"SAME", "VALID", "EXPLICIT"})
        .Attr("explicit_paddings", std::vector<int64_t>{})
        .EnumAttr("data_format", {"NHWC", "NCHW"}, "NHWC")
        .Attr("dilations", std::vector<int64_t>{1, 1, 1, 1})
        .SetShapeFn(input ? ConvBackpropShape<0> : ConvBackpropShape<1>);
    GS_RETURN_IF_ERROR(r.Register(b));
  }
  // FusedBatchNormGradV3(y_backprop, x, scale, reserve_space_1..3) -> the
  // gradients of FusedBatchNormV3's y w.r.t. x, scale and offset. reserve_space_1/2
  // are the forward op's: the batch mean and (biased) variance in training, the
  // given mean and variance in inference.
  GS_RETURN_IF_ERROR(
      r.Register(OpDefBuilder("FusedBatchNormGradV3")
                     .Input("y_backprop", "T")
                     .Input("x", "T")
                     .Input("scale", DType::kFloat)
                     .Input("reserve_space_1", "U")
                     .Input("reserve_space_2", "U")
                     .Input("reserve_space_3", "U")
                     .Output("x_backprop", "T")
                     .Output("scale_backprop", "U")
                     .Output("offset_backprop", "U")
                     .Output("reserve_space_4", "U")
                     .Output("reserve_space_5", "U")
                     .TypeAttr("T", {DType::kHalf, DType::kBFloat16, DType::kFloat})
                     .TypeAttr("U", {DType::kFloat})
                     .Attr("epsilon", 0.0001f)
                     .EnumAttr("data_format", {"NHWC", "NCHW", "NDHWC", "NCDHW"}, "NHWC")
                     .Attr("is_training", true)
                     .SetShapeFn(FusedBatchNormGradShape)));
  return absl::OkStatus();
}

}  // namespace gradserve
