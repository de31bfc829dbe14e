#include "serving/tensor_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve::serving {
namespace {

struct TypeName {
  DType dtype;
  const char* name;
  inference::DataType config;
};
constexpr TypeName kTypes[] = {
    {DType::kBool, "BOOL", inference::TYPE_BOOL},
    {DType::kUInt8, "UINT8", inference::TYPE_UINT8},
    {DType::kInt8, "INT8", inference::TYPE_INT8},
    {DType::kInt16, "INT16", inference::TYPE_INT16},
    {DType::kInt32, "INT32", inference::TYPE_INT32},
    {DType::kInt64, "INT64", inference::TYPE_INT64},
    {DType::kHalf, "FP16", inference::TYPE_FP16},
    {DType::kFloat, "FP32", inference::TYPE_FP32},
    {DType::kDouble, "FP64", inference::TYPE_FP64},
    {DType::kBFloat16, "BF16", inference::TYPE_BF16},
};

// At most 2^31 elements per tensor: larger requests are refused before any
// allocation (the gRPC message limit stops them earlier in practice).
constexpr int64_t kMaxElements = int64_t{1} << 31;

// Copies `values` (the typed list of type V) into a new tensor of T.
template <typename T, typename List>
absl::StatusOr<Tensor> FromList(const List& values, const Shape& shape, const char* list_name,
                                absl::string_view what) {
  GS_CHECK_ARG(static_cast<int64_t>(values.size()) == shape.num_elements(), "input '", what,
               "' has shape ", shape.DebugString(), " (", shape.num_elements(),
               " elements) but its contents.", list_name, " holds ", values.size());
  Tensor t(DTypeOf<T>::value, shape);
  T* out = t.data<T>();
  for (int i = 0; i < values.size(); ++i) out[i] = static_cast<T>(values[i]);
  return t;
}

// The names of the typed lists that hold elements.
std::vector<const char*> UsedLists(const inference::InferTensorContents& c) {
  std::vector<const char*> used;
  if (c.bool_contents_size()) used.push_back("bool_contents");
  if (c.int_contents_size()) used.push_back("int_contents");
  if (c.int64_contents_size()) used.push_back("int64_contents");
  if (c.uint_contents_size()) used.push_back("uint_contents");
  if (c.uint64_contents_size()) used.push_back("uint64_contents");
  if (c.fp32_contents_size()) used.push_back("fp32_contents");
  if (c.fp64_contents_size()) used.push_back("fp64_contents");
  if (c.bytes_contents_size()) used.push_back("bytes_contents");
  return used;
}

}  // namespace

absl::StatusOr<DType> DTypeFromDatatype(absl::string_view datatype) {
  for (const TypeName& t : kTypes) {
    if (datatype == t.name) return t.dtype;
  }
  if (datatype == "UINT16" || datatype == "UINT32" || datatype == "UINT64" ||
      datatype == "BYTES") {
    return absl::InvalidArgumentError(
        absl::StrCat("datatype ", datatype, " is not supported by gradserve models"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown datatype '", datatype,
      "'; expected one of BOOL, UINT8, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16"));
}

std::string DatatypeName(DType dtype) {
  for (const TypeName& t : kTypes) {
    if (t.dtype == dtype) return t.name;
  }
  return "";
}

absl::StatusOr<DType> DTypeFromConfig(inference::DataType type) {
  for (const TypeName& t : kTypes) {
    if (t.config == type) return t.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "data type ", inference::DataType_Name(type), " is not supported by gradserve models"));
}

inference::DataType ConfigDataType(DType dtype) {
  for (const TypeName& t : kTypes) {
    if (t.dtype == dtype) return t.config;
  }
  return inference::TYPE_INVALID;
}

absl::StatusOr<Shape> WireShape(absl::Span<const int64_t> shape, absl::string_view what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    GS_CHECK_ARG(d >= 0, "input '", what, "' has a negative dimension ", d,
                 " in its shape; every dimension must be >= 0");
    GS_CHECK_ARG(d == 0 || n <= kMaxElements / d, "input '", what,
                 "' is too large: more than 2^31 elements");
    n *= d;
  }
  return Shape(std::vector<int64_t>(shape.begin(), shape.end()));
}

absl::StatusOr<Tensor> TensorFromContents(const inference::InferTensorContents& c, DType dtype,
                                          const Shape& shape, absl::string_view what) {
  const std::vector<const char*> used = UsedLists(c);
  auto expect = [&](const char* list) -> absl::Status {
    for (const char* u : used) {
      GS_CHECK_ARG(std::strcmp(u, list) == 0, "input '", what, "' is ", DatatypeName(dtype),
                   ", whose elements go in contents.", list, ", but contents.", u, " is set");
    }
    return absl::OkStatus();
  };
  switch (dtype) {
    case DType::kBool:
      GS_RETURN_IF_ERROR(expect("bool_contents"));
      return FromList<bool>(c.bool_contents(), shape, "bool_contents", what);
    case DType::kUInt8:
      GS_RETURN_IF_ERROR(expect("uint_contents"));
      return FromList<uint8_t>(c.uint_contents(), shape, "uint_contents", what);
    case DType::kInt8:
      GS_RETURN_IF_ERROR(expect("int_contents"));
      return FromList<int8_t>(c.int_contents(), shape, "int_contents", what);
    case DType::kInt16:
      GS_RETURN_IF_ERROR(expect("int_contents"));
      return FromList<int16_t>(c.int_contents(), shape, "int_contents", what);
    case DType::kInt32:
      GS_RETURN_IF_ERROR(expect("int_contents"));
      return FromList<int32_t>(c.int_contents(), shape, "int_contents", what);
    case DType::kInt64:
      GS_RETURN_IF_ERROR(expect("int64_contents"));
      return FromList<int64_t>(c.int64_contents(), shape, "int64_contents", what);
    case DType::kFloat:
      GS_RETURN_IF_ERROR(expect("fp32_contents"));
      return FromList<float>(c.fp32_contents(), shape, "fp32_contents", what);
    case DType::kDouble:
      GS_RETURN_IF_ERROR(expect("fp64_contents"));
      return FromList<double>(c.fp64_contents(), shape, "fp64_contents", what);
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", what, "' is ", DatatypeName(dtype),
          ", which has no typed contents in the protocol; send it in raw_input_contents"));
  }
}

absl::StatusOr<Tensor> TensorFromRaw(absl::string_view raw, DType dtype, const Shape& shape,
                                     absl::string_view what) {
  const size_t want = static_cast<size_t>(shape.num_elements()) * DTypeSize(dtype);
  GS_CHECK_ARG(raw.size() == want, "input '", what, "' has shape ", shape.DebugString(), " of ",
               DatatypeName(dtype), ", i.e. ", want, " bytes, but its raw contents hold ",
               raw.size(), " bytes");
  Tensor t(dtype, shape);
  if (want > 0) std::memcpy(t.raw_data(), raw.data(), want);
  return t;
}

absl::Status TensorToContents(const Tensor& t, inference::InferTensorContents* c) {
  const int64_t n = t.num_elements();
  switch (t.dtype()) {
    case DType::kBool:
      c->mutable_bool_contents()->Add(t.data<bool>(), t.data<bool>() + n);
      return absl::OkStatus();
    case DType::kUInt8:
      c->mutable_uint_contents()->Add(t.data<uint8_t>(), t.data<uint8_t>() + n);
      return absl::OkStatus();
    case DType::kInt8:
      c->mutable_int_contents()->Add(t.data<int8_t>(), t.data<int8_t>() + n);
      return absl::OkStatus();
    case DType::kInt16:
      c->mutable_int_contents()->Add(t.data<int16_t>(), t.data<int16_t>() + n);
      return absl::OkStatus();
    case DType::kInt32:
      c->mutable_int_contents()->Add(t.data<int32_t>(), t.data<int32_t>() + n);
      return absl::OkStatus();
    case DType::kInt64:
      c->mutable_int64_contents()->Add(t.data<int64_t>(), t.data<int64_t>() + n);
      return absl::OkStatus();
    case DType::kFloat:
      c->mutable_fp32_contents()->Add(t.data<float>(), t.data<float>() + n);
      return absl::OkStatus();
    case DType::kDouble:
      c->mutable_fp64_contents()->Add(t.data<double>(), t.data<double>() + n);
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          DTypeName(t.dtype()), " outputs have no typed contents; request raw outputs"));
  }
}

void TensorToRaw(const Tensor& t, std::string* raw) {
  raw->append(static_cast<const char*>(t.raw_data()), t.bytes());
}

absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> DecodeInputTensors(
    const google::protobuf::RepeatedPtrField<inference::ModelInferRequest::InferInputTensor>&
        inputs,
    const google::protobuf::RepeatedPtrField<std::string>& raw_contents) {
  std::vector<std::pair<std::string, Tensor>> out;
  const bool raw = raw_contents.size() > 0;
  GS_CHECK_ARG(!raw || raw_contents.size() == inputs.size(), "the request has ",
               inputs.size(), " inputs but ", raw_contents.size(),
               " raw_input_contents; give one per input, in the same order");
  for (int i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    absl::StatusOr<DType> dtype_or = DTypeFromDatatype(in.datatype());
    if (!dtype_or.ok()) return Annotate(dtype_or.status(), absl::StrCat("input '", in.name(), "'"));
    const DType dtype = *dtype_or;
    GS_ASSIGN_OR_RETURN(Shape shape, WireShape(in.shape(), in.name()));
    Tensor t;
    if (raw) {
      GS_CHECK_ARG(!in.has_contents(), "input '", in.name(),
                   "' has typed contents but the request uses raw_input_contents; use one form");
      GS_ASSIGN_OR_RETURN(t, TensorFromRaw(raw_contents[i], dtype, shape, in.name()));
    } else {
      GS_ASSIGN_OR_RETURN(t, TensorFromContents(in.contents(), dtype, shape, in.name()));
    }
    out.emplace_back(in.name(), std::move(t));
  }
  return out;
}

}  // namespace gradserve::serving
