#include "graph/builder/array_ops.h"

namespace gradserve::ops {

Output Const(const Scope& s, const Tensor& value) {
  return s.AddNode("Const", {}, {{"value", MakeAttr(value)}, {"dtype", MakeAttr(value.dtype())}});
}

Output Placeholder(const Scope& s, DType dtype, const Shape& shape) {
  return s.AddNode("Placeholder", {}, {{"dtype", MakeAttr(dtype)}, {"shape", MakeAttr(shape)}});
}

Output PlaceholderWithDefault(const Scope& s, Output input, const Shape& shape) {
  return s.AddNode("PlaceholderWithDefault", {input}, {{"shape", MakeAttr(shape)}});
}

Output Identity(const Scope& s, Output input) { return s.AddNode("Identity", {input}); }
Output StopGradient(const Scope& s, Output input) { return s.AddNode("StopGradient", {input}); }
Node* NoOp(const Scope& s) { return s.AddNode("NoOp", {}); }

Output Reshape(const Scope& s, Output tensor, Output shape) {
  return s.AddNode("Reshape", {tensor, shape});
}

Output Transpose(const Scope& s, Output x, Output perm) {
  return s.AddNode("Transpose", {x, perm});
}

Output ConcatV2(const Scope& s, const std::vector<Output>& values, Output axis) {
  std::vector<Output> inputs = values;
  inputs.push_back(axis);
  return s.AddNode("ConcatV2", inputs, {{"N", MakeAttr(static_cast<int64_t>(values.size()))}});
}

Output Pack(const Scope& s, const std::vector<Output>& values, const PackAttrs& attrs) {
  return s.AddNode(
      "Pack", values,
      {{"N", MakeAttr(static_cast<int64_t>(values.size()))}, {"axis", MakeAttr(attrs.axis)}});
}

Output Slice(const Scope& s, Output input, Output begin, Output size) {
  return s.AddNode("Slice", {input, begin, size});
}

Output StridedSlice(const Scope& s, Output input, Output begin, Output end, Output strides,
                    const StridedSliceAttrs& attrs) {
  return s.AddNode("StridedSlice", {input, begin, end, strides},
                   {{"begin_mask", MakeAttr(attrs.begin_mask)},
                    {"end_mask", MakeAttr(attrs.end_mask)},
                    {"ellipsis_mask", MakeAttr(attrs.ellipsis_mask)},
                    {"new_axis_mask", MakeAttr(attrs.new_axis_mask)},
                    {"shrink_axis_mask", MakeAttr(attrs.shrink_axis_mask)}});
}

Output Squeeze(const Scope& s, Output input, const SqueezeAttrs& attrs) {
  return s.AddNode("Squeeze", {input}, {{"squeeze_dims", MakeAttr(attrs.squeeze_dims)}});
}

Output ExpandDims(const Scope& s, Output input, Output dim) {
  return s.AddNode("ExpandDims", {input, dim});
}

Output Tile(const Scope& s, Output input, Output multiples) {
  return s.AddNode("Tile", {input, multiples});
}

Output Pad(const Scope& s, Output input, Output paddings) {
  return s.AddNode("Pad", {input, paddings});
}

Output ShapeOf(const Scope& s, Output input, const ShapeAttrs& attrs) {
  return s.AddNode("Shape", {input}, {{"out_type", MakeAttr(attrs.out_type)}});
}

Output Fill(const Scope& s, Output dims, Output value) { return s.AddNode("Fill", {dims, value}); }

Output ZerosLike(const Scope& s, Output x) { return s.AddNode("ZerosLike", {x}); }
Output OnesLike(const Scope& s, Output x) { return s.AddNode("OnesLike", {x}); }

Output GatherV2(const Scope& s, Output params, Output indices, Output axis,
                const GatherV2Attrs& attrs) {
  return s.AddNode("GatherV2", {params, indices, axis},
                   {{"batch_dims", MakeAttr(attrs.batch_dims)}});
}

Output OneHot(const Scope& s, Output indices, Output depth, Output on_value, Output off_value,
              const OneHotAttrs& attrs) {
  return s.AddNode("OneHot", {indices, depth, on_value, off_value},
                   {{"axis", MakeAttr(attrs.axis)}});
}

Output SelectV2(const Scope& s, Output condition, Output t, Output e) {
  return s.AddNode("SelectV2", {condition, t, e});
}

// Backward ops.

Output StridedSliceGrad(const Scope& s, Output shape, Output begin, Output end, Output strides,
                        Output dy, const StridedSliceAttrs& attrs) {
  return s.AddNode("StridedSliceGrad", {shape, begin, end, strides, dy},
                   {{"begin_mask", MakeAttr(attrs.begin_mask)},
                    {"end_mask", MakeAttr(attrs.end_mask)},
                    {"ellipsis_mask", MakeAttr(attrs.ellipsis_mask)},
                    {"new_axis_mask", MakeAttr(attrs.new_axis_mask)},
                    {"shrink_axis_mask", MakeAttr(attrs.shrink_axis_mask)}});
}

Output UnsortedSegmentSum(const Scope& s, Output data, Output segment_ids, Output num_segments) {
  return s.AddNode("UnsortedSegmentSum", {data, segment_ids, num_segments});
}

}  // namespace gradserve::ops
