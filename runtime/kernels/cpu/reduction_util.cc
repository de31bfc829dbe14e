// runtime/kernels/reduction_util.h, for the CPU and the CUDA kernels alike
// (this file is host C++ only and is built on either).
#include "runtime/kernels/reduction_util.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

AxisSplit SplitAtAxis(const Shape& shape, int axis) {
  AxisSplit s{.size = shape.dim(axis)};
  for (int i = 0; i < axis; ++i) s.outer *= shape.dim(i);
  for (int i = axis + 1; i < shape.rank(); ++i) s.inner *= shape.dim(i);
  return s;
}

absl::StatusOr<std::vector<bool>> ReducedAxes(const Tensor& axes, int rank) {
  std::vector<int64_t> values;
  if (axes.dtype() == DType::kInt32) {
    for (int32_t v : axes.span<const int32_t>()) values.push_back(v);
  } else if (axes.dtype() == DType::kInt64) {
    for (int64_t v : axes.span<const int64_t>()) values.push_back(v);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("reduction_indices must be int32 or int64, got ", DTypeName(axes.dtype())));
  }
  std::vector<bool> reduced(rank, false);
  for (int64_t axis : values) {
    GS_CHECK_ARG(axis >= -rank && axis < rank, "invalid reduction dimension ", axis,
                 " for input with ", rank, " dimension(s)");
    const int64_t a = axis < 0 ? axis + rank : axis;
    GS_CHECK_ARG(!reduced[a], "axes contain duplicate dimension ", axis);
    reduced[a] = true;
  }
  return reduced;
}

Shape ReducedShape(const Shape& in, const std::vector<bool>& reduced, bool keep_dims) {
  Shape out;
  for (int i = 0; i < in.rank(); ++i) {
    if (!reduced[i]) {
      out.AddDim(in.dim(i));
    } else if (keep_dims) {
      out.AddDim(1);
    }
  }
  return out;
}

std::vector<DimGroup> CollapseDims(const Shape& shape, const std::vector<bool>& reduced) {
  std::vector<DimGroup> groups;
  for (int i = 0; i < shape.rank(); ++i) {
    if (shape.dim(i) == 1) continue;
    if (!groups.empty() && groups.back().reduced == reduced[i]) {
      groups.back().size *= shape.dim(i);
    } else {
      groups.push_back({shape.dim(i), reduced[i]});
    }
  }
  return groups;
}

bool AnyReduced(const std::vector<DimGroup>& groups) {
  for (const DimGroup& g : groups) {
    if (g.reduced) return true;
  }
  return false;
}

ReducePass NextReducePass(std::vector<DimGroup>& groups) {
  size_t g = 0;
  while (!groups[g].reduced) ++g;
  ReducePass pass{.outer = 1, .r = groups[g].size, .inner = 1, .last = false};
  for (size_t i = 0; i < groups.size(); ++i) {
    if (i < g) pass.outer *= groups[i].size;
    if (i > g) pass.inner *= groups[i].size;
  }
  // Drop the group and merge its kept neighbours.
  if (g > 0 && g + 1 < groups.size()) {
    groups[g - 1].size *= groups[g + 1].size;
    groups.erase(groups.begin() + g, groups.begin() + g + 2);
  } else {
    groups.erase(groups.begin() + g);
  }
  pass.last = !AnyReduced(groups);
  return pass;
}

absl::StatusOr<int> ArgMaxAxis(const Shape& x, const Tensor& dimension) {
  GS_CHECK_ARG(dimension.rank() == 0, "dimension must be a scalar, got shape ",
               dimension.shape().DebugString());
  int64_t axis;
  switch (dimension.dtype()) {
    case DType::kInt16:
      axis = dimension.scalar<int16_t>();
      break;
    case DType::kInt32:
      axis = dimension.scalar<int32_t>();
      break;
    case DType::kInt64:
      axis = dimension.scalar<int64_t>();
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("dimension must be an integer, got ", DTypeName(dimension.dtype())));
  }
  const int rank = x.rank();
  GS_CHECK_ARG(rank > 0, "input must have rank >= 1");
  GS_CHECK_ARG(axis >= -rank && axis < rank, "axis ", axis, " is out of range for rank ", rank);
  const int a = static_cast<int>(axis < 0 ? axis + rank : axis);
  GS_CHECK_ARG(x.dim(a) != 0, "reduction axis ", axis, " is empty in shape ", x.DebugString());
  return a;
}

bool DataFormatIsNchw(const Node& node) {
  return node.GetAttr<std::string>("data_format").value_or("NHWC") == "NCHW";
}

namespace {

// InvalidArgument unless `shape` (named `what`) has the rank a channel axis
// in `nchw` layout needs.
absl::Status CheckChannelRank(const char* what, const Shape& shape, bool nchw) {
  GS_CHECK_ARG(shape.rank() >= (nchw ? 3 : 2), what, " must have rank >= ", (nchw ? 3 : 2),
               " for data_format ", (nchw ? "NCHW" : "NHWC"), ", got ", shape.DebugString());
  return absl::OkStatus();
}

int ChannelAxis(const Shape& shape, bool nchw) { return nchw ? 1 : shape.rank() - 1; }

}  // namespace

absl::StatusOr<AxisSplit> BiasAddSplit(const Shape& value, const Shape& bias, bool nchw) {
  GS_RETURN_IF_ERROR(CheckChannelRank("value", value, nchw));
  GS_CHECK_ARG(bias.rank() == 1, "bias must be a vector, got ", bias.DebugString());
  const AxisSplit split = SplitAtAxis(value, ChannelAxis(value, nchw));
  GS_CHECK_ARG(bias.dim(0) == split.size, "bias has ", bias.dim(0),
               " elements but the channel dimension of value ", value.DebugString(), " has ",
               split.size);
  return split;
}

absl::StatusOr<AxisSplit> BiasAddGradSplit(const Shape& out_backprop, bool nchw) {
  GS_RETURN_IF_ERROR(CheckChannelRank("out_backprop", out_backprop, nchw));
  return SplitAtAxis(out_backprop, ChannelAxis(out_backprop, nchw));
}

absl::Status CheckSoftmaxXentShapes(const Shape& features, const Shape& labels) {
  GS_CHECK_ARG(features.rank() == 2, "features must be [batch, classes], got ",
               features.DebugString());
  GS_CHECK_ARG(features == labels, "features and labels must have the same shape, got ",
               features.DebugString(), " and ", labels.DebugString());
  return absl::OkStatus();
}

absl::Status CheckSparseSoftmaxXentShapes(const Shape& features, const Shape& labels) {
  GS_CHECK_ARG(features.rank() == 2, "features must be [batch, classes], got ",
               features.DebugString());
  GS_CHECK_ARG(labels.rank() == 1 && labels.dim(0) == features.dim(0),
               "labels must be [batch] with batch = features.dim(0), got features ",
               features.DebugString(), " and labels ", labels.DebugString());
  return absl::OkStatus();
}

}  // namespace gradserve
