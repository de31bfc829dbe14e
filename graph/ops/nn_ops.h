// Sliding-window geometry of the nn family (Conv2D, MaxPool, AvgPool), shared by
// the shape functions (graph/ops/nn_ops.cc) and the kernels so that inferred and
// computed output sizes cannot drift apart. Follows TensorFlow's
// GetWindowedOutputSizeVerbose exactly.
//
// Errors are InvalidArgument without a node prefix; callers add their context.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/status.h"

namespace gradserve {

enum class Padding { kSame, kValid, kExplicit };

// Validated attrs of a 2-D window op. Spatial arrays are indexed [0] = rows (H),
// [1] = cols (W); explicit pads are [dim][0 = before, 1 = after].
struct Window2D {
  bool channels_last = true;  // data_format NHWC (else NCHW)
  int64_t ksize[2] = {1, 1};  // pooling window; a convolution takes it from its filter
  int64_t stride[2] = {1, 1};
  int64_t dilation[2] = {1, 1};
  Padding padding = Padding::kValid;
  int64_t pad[2][2] = {{0, 0}, {0, 0}};  // used when padding is kExplicit

  // Axes of H, W and C in a rank-4 tensor of this data format.
  int h_axis() const { return channels_last ? 1 : 2; }
  int w_axis() const { return channels_last ? 2 : 3; }
  int c_axis() const { return channels_last ? 3 : 1; }
};

// The output size and padding of one spatial dimension.
struct WindowDim {
  int64_t output = -1;  // -1 when the input or filter size is unknown
  int64_t pad_before = 0;
  int64_t pad_after = 0;
};

// Output size of one dimension: VALID (in - k_eff + stride) / stride, SAME
// ceil(in / stride) with the padding split low-half first, EXPLICIT from the pads.
// `input` or `filter` of -1 (unknown) yields output -1. InvalidArgument when the
// output would be negative.
absl::StatusOr<WindowDim> ComputeWindowDim(int64_t input, int64_t filter, int64_t dilation,
                                           int64_t stride, Padding padding,
                                           const int64_t explicit_pad[2]);

// Conv2D's attrs: strides and dilations of 4 (1 in N and C, positive), padding with
// explicit_paddings (8 values, zero for N and C) only when EXPLICIT.
absl::StatusOr<Window2D> MakeConv2DWindow(const std::vector<int64_t>& strides,
                                          const std::vector<int64_t>& dilations,
                                          const std::string& padding,
                                          const std::vector<int64_t>& explicit_paddings,
                                          const std::string& data_format);
// MaxPool / AvgPool attrs: ksize and strides of 4 (1 in N and C, positive); explicit
// pads must be smaller than the window so that no window lies wholly in padding.
absl::StatusOr<Window2D> MakePoolWindow(const std::vector<int64_t>& ksize,
                                        const std::vector<int64_t>& strides,
                                        const std::string& padding,
                                        const std::vector<int64_t>& explicit_paddings,
                                        const std::string& data_format);

// Reads a window op's attrs from a Node or an InferenceContext (both have
// GetAttr<T>); `conv` selects Conv2D's attrs over the pooling ones.
template <typename AttrSource>
absl::StatusOr<Window2D> ParseWindow2D(const AttrSource& a, bool conv) {
  GS_ASSIGN_OR_RETURN(auto strides, a.template GetAttr<std::vector<int64_t>>("strides"));
  GS_ASSIGN_OR_RETURN(auto padding, a.template GetAttr<std::string>("padding"));
  GS_ASSIGN_OR_RETURN(auto format, a.template GetAttr<std::string>("data_format"));
  std::vector<int64_t> explicit_paddings;
  if (auto p = a.template GetAttr<std::vector<int64_t>>("explicit_paddings"); p.ok()) {
    explicit_paddings = *std::move(p);  // AvgPool has no such attr
  }
  if (conv) {
    GS_ASSIGN_OR_RETURN(auto dilations, a.template GetAttr<std::vector<int64_t>>("dilations"));
    return MakeConv2DWindow(strides, dilations, padding, explicit_paddings, format);
  }
  GS_ASSIGN_OR_RETURN(auto ksize, a.template GetAttr<std::vector<int64_t>>("ksize"));
  return MakePoolWindow(ksize, strides, padding, explicit_paddings, format);
}

}  // namespace gradserve
