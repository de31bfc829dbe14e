// Tensors on the wire (Open Inference Protocol v2): datatype names, the typed
// `contents` form and the raw little-endian form, converted to and from
// engine Tensors. Shared by the gRPC and REST front ends so both reject the
// same things with the same words.
//
// Thread-safe (no state).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/tensor.h"
#include "proto/grpc_service.pb.h"
#include "proto/model_config.pb.h"

namespace gradserve::serving {

// "FP32" <-> DType::kFloat etc. The protocol types gradserve has no dtype for
// (UINT16, UINT32, UINT64, BYTES) are InvalidArgument naming the type.
absl::StatusOr<DType> DTypeFromDatatype(absl::string_view datatype);
// The protocol name of `dtype` ("FP32"); "" for dtypes the protocol lacks.
std::string DatatypeName(DType dtype);
// Model configuration types (TYPE_FP32) likewise.
absl::StatusOr<DType> DTypeFromConfig(inference::DataType type);
inference::DataType ConfigDataType(DType dtype);

// Checks `shape` (no negative dimension, element count within limits) and
// returns it as a Shape. `what` names the tensor in errors.
absl::StatusOr<Shape> WireShape(absl::Span<const int64_t> shape, absl::string_view what);

// A tensor from the typed contents: the list matching `dtype` must hold exactly
// shape's element count (InvalidArgument naming the tensor, the list used and
// both counts; also when another list is set). FP16/BF16 have no typed form.
absl::StatusOr<Tensor> TensorFromContents(const inference::InferTensorContents& contents,
                                          DType dtype, const Shape& shape, absl::string_view what);
// A tensor from raw bytes: exactly element count * element size bytes.
absl::StatusOr<Tensor> TensorFromRaw(absl::string_view raw, DType dtype, const Shape& shape,
                                     absl::string_view what);

// The tensors of a request's inputs: typed contents, or (when raw_contents
// is not empty) one raw entry per input in the same order. InvalidArgument
// naming the input for a bad datatype, shape or contents.
absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> DecodeInputTensors(
    const google::protobuf::RepeatedPtrField<inference::ModelInferRequest::InferInputTensor>&
        inputs,
    const google::protobuf::RepeatedPtrField<std::string>& raw_contents);

// Fills `contents` with `t`'s elements (FP16/BF16: InvalidArgument; those go raw).
absl::Status TensorToContents(const Tensor& t, inference::InferTensorContents* contents);
// Appends t's bytes to `raw`.
void TensorToRaw(const Tensor& t, std::string* raw);

}  // namespace gradserve::serving
