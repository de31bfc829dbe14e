#include "serving/rest_codec.h"

#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "graph/dtype.h"
#include "graph/status.h"
#include "serving/tensor_codec.h"

namespace gradserve::serving {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Nesting deeper than any tensor's rank is refused (and keeps the recursion
// over "data" shallow).
constexpr int kMaxDataDepth = 64;

// Element `index` of repeated field `f` (index < 0: the singular field).
OrderedJson FieldValue(const Message& m, const FieldDescriptor* f, int index) {
  const auto* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f))->name();
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      return f->type() == FieldDescriptor::TYPE_BYTES ? absl::Base64Escape(s) : s;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return ProtoToJson(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f));
  }
  return nullptr;
}

// A map field as an object: keys as strings (numbers printed), values converted.
OrderedJson MapToJson(const Message& m, const FieldDescriptor* f) {
  OrderedJson out = OrderedJson::object();
  const auto* key_field = f->message_type()->FindFieldByNumber(1);
  const auto* value_field = f->message_type()->FindFieldByNumber(2);
  for (int i = 0; i < m.GetReflection()->FieldSize(m, f); ++i) {
    const Message& entry = m.GetReflection()->GetRepeatedMessage(m, f, i);
    OrderedJson key = FieldValue(entry, key_field, -1);
    out[key.is_string() ? key.get<std::string>() : key.dump()] = FieldValue(entry, value_field, -1);
  }
  return out;
}

OrderedJson ParameterToJson(const inference::InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam:
      return p.bool_param();
    case inference::InferParameter::kInt64Param:
      return p.int64_param();
    case inference::InferParameter::kStringParam:
      return p.string_param();
    case inference::InferParameter::kDoubleParam:
      return p.double_param();
    case inference::InferParameter::kUint64Param:
      return p.uint64_param();
    default:
      return nullptr;
  }
}

// A protocol parameter from a JSON value (booleans, numbers and strings only).
absl::Status ToParameter(const Json& v, absl::string_view key, inference::InferParameter* p) {
  if (v.is_boolean()) {
    p->set_bool_param(v.get<bool>());
  } else if (v.is_number_unsigned() &&
             v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    p->set_uint64_param(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    p->set_int64_param(v.get<int64_t>());
  } else if (v.is_number_float()) {
    p->set_double_param(v.get<double>());
  } else if (v.is_string()) {
    p->set_string_param(v.get<std::string>());
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", key, "' is a JSON ", v.type_name(),
                     "; parameters are booleans, numbers or strings"));
  }
  return absl::OkStatus();
}

// `what` must hold a JSON object (or be absent: nullptr).
absl::StatusOr<const Json*> OptionalObject(const Json& parent, const char* key,
                                           absl::string_view what) {
  auto it = parent.find(key);
  if (it == parent.end()) return nullptr;
  GS_CHECK_ARG(it->is_object(), what, " must be a JSON object, not a ", it->type_name());
  return &*it;
}

// A short rendering of a JSON value for error messages.
std::string Excerpt(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

// One element of "data" as T, range-checked.
template <typename T>
absl::Status Leaf(const Json& v, int64_t index, absl::string_view input, DType dtype, T* out) {
  const std::string type = DatatypeName(dtype);
  if constexpr (std::is_same_v<T, bool>) {
    GS_CHECK_ARG(v.is_boolean(), "input '", input, "' is BOOL but element ", index,
                 " of its data is ", Excerpt(v), "; give true or false");
    *out = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    GS_CHECK_ARG(v.is_number_integer(), "input '", input, "' is ", type, " but element ", index,
                 " of its data is ", Excerpt(v), "; give integers");
    bool in_range;
    if (v.is_number_unsigned()) {
      in_range = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    } else {
      const int64_t s = v.get<int64_t>();
      in_range = s >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                 s <= static_cast<int64_t>(std::numeric_limits<T>::max());
    }
    GS_CHECK_ARG(in_range, "input '", input, "' is ", type, " but element ", index,
                 " of its data, ", Excerpt(v), ", is out of its range");
    *out = v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>())
                                  : static_cast<T>(v.get<int64_t>());
  } else {
    GS_CHECK_ARG(v.is_number(), "input '", input, "' is ", type, " but element ", index,
                 " of its data is ", Excerpt(v), "; give numbers");
    *out = static_cast<T>(v.get<double>());
  }
  return absl::OkStatus();
}

// Appends the leaves of `v` (nested arrays flattened row-major) to `raw`.
template <typename T>
absl::Status AppendLeaves(const Json& v, int depth, absl::string_view input, DType dtype,
                          std::string* raw, int64_t* count) {
  if (v.is_array()) {
    GS_CHECK_ARG(depth < kMaxDataDepth, "input '", input, "' has data nested more than ",
                 kMaxDataDepth, " arrays deep");
    for (const Json& e : v) {
      GS_RETURN_IF_ERROR(AppendLeaves<T>(e, depth + 1, input, dtype, raw, count));
    }
    return absl::OkStatus();
  }
  T value;
  GS_RETURN_IF_ERROR(Leaf<T>(v, *count, input, dtype, &value));
  raw->append(reinterpret_cast<const char*>(&value), sizeof(T));
  ++*count;
  return absl::OkStatus();
}

// The raw little-endian bytes of an input's "data".
absl::StatusOr<std::string> DataToRaw(const Json& data, DType dtype, const Shape& shape,
                                      absl::string_view input) {
  GS_CHECK_ARG(data.is_array(), "input '", input, "' has 'data' of type ", data.type_name(),
               "; give an array (flat or nested)");
  std::string raw;
  int64_t count = 0;
  GS_RETURN_IF_ERROR(DispatchDType(dtype, [&]<typename T>() -> absl::Status {
    if constexpr (std::is_same_v<T, half> || std::is_same_v<T, bfloat16>) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", input, "' is ", DatatypeName(dtype),
          ", which has no JSON form; send it as binary data (parameters.binary_data_size)"));
    } else {
      raw.reserve(data.size() * sizeof(T));
      return AppendLeaves<T>(data, 0, input, dtype, &raw, &count);
    }
  }));
  GS_CHECK_ARG(count == shape.num_elements(), "input '", input, "' has shape ", shape.DebugString(),
               " (", shape.num_elements(), " elements) but its data holds ", count, " values");
  return raw;
}

// Output bytes as a flat JSON array of the datatype's values.
OrderedJson RawToData(absl::string_view raw, DType dtype) {
  OrderedJson out = OrderedJson::array();
  (void)DispatchDType(dtype, [&]<typename T>() -> absl::Status {
    if constexpr (!std::is_same_v<T, half> && !std::is_same_v<T, bfloat16>) {
      const size_t n = raw.size() / sizeof(T);
      out.get_ref<OrderedJson::array_t&>().reserve(n);
      for (size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
        out.push_back(v);
      }
    }
    return absl::OkStatus();
  });
  return out;
}

// Decodes inputs[index] into `request`, taking binary data from `binary` at
// `*offset` (advanced past what the input uses).
absl::Status DecodeInput(const Json& in, size_t index, absl::string_view binary, bool has_binary,
                         size_t* offset, inference::ModelInferRequest* request) {
  GS_CHECK_ARG(in.is_object(), "inputs[", index, "] must be a JSON object");
  auto name_it = in.find("name");
  GS_CHECK_ARG(name_it != in.end() && name_it->is_string(), "inputs[", index,
               "] needs a 'name' string");
  const std::string name = name_it->get<std::string>();
  auto type_it = in.find("datatype");
  GS_CHECK_ARG(type_it != in.end() && type_it->is_string(), "input '", name,
               "' needs a 'datatype' string");
  auto shape_it = in.find("shape");
  GS_CHECK_ARG(shape_it != in.end() && shape_it->is_array(), "input '", name,
               "' needs a 'shape' array of integers");
  auto* t = request->add_inputs();
  t->set_name(name);
  t->set_datatype(type_it->get<std::string>());
  for (const Json& d : *shape_it) {
    GS_CHECK_ARG(
        d.is_number_integer() &&
            (!d.is_number_unsigned() ||
             d.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())),
        "input '", name, "' has shape element ", Excerpt(d), "; give integers");
    t->add_shape(d.get<int64_t>());
  }
  absl::StatusOr<DType> dtype = DTypeFromDatatype(t->datatype());
  if (!dtype.ok()) return Annotate(dtype.status(), absl::StrCat("input '", name, "'"));
  GS_ASSIGN_OR_RETURN(Shape shape, WireShape(t->shape(), name));

  GS_ASSIGN_OR_RETURN(
      const Json* params,
      OptionalObject(in, "parameters", absl::StrCat("input '", name, "' parameters")));
  std::optional<size_t> binary_size;
  if (params != nullptr) {
    for (const auto& [key, value] : params->items()) {
      if (key == "binary_data_size") {
        GS_CHECK_ARG(value.is_number_unsigned(), "input '", name, "' has binary_data_size ",
                     Excerpt(value), "; give a byte count");
        binary_size = value.get<uint64_t>();
      } else {
        GS_RETURN_IF_ERROR(ToParameter(value, key, &(*t->mutable_parameters())[key]));
      }
    }
  }
  auto data_it = in.find("data");
  if (binary_size.has_value()) {
    GS_CHECK_ARG(data_it == in.end(), "input '", name,
                 "' has both 'data' and parameters.binary_data_size; use one");
    GS_CHECK_ARG(has_binary, "input '", name, "' has binary_data_size ", *binary_size,
                 " but the request has no binary data (no Inference-Header-Content-Length "
                 "header)");
    GS_CHECK_ARG(*binary_size <= binary.size() - *offset, "input '", name,
                 "' has binary_data_size ", *binary_size, " but only ", binary.size() - *offset,
                 " bytes of binary data are left for it");
    request->add_raw_input_contents(std::string(binary.substr(*offset, *binary_size)));
    *offset += *binary_size;
    return absl::OkStatus();
  }
  GS_CHECK_ARG(data_it != in.end(), "input '", name,
               "' has neither 'data' nor parameters.binary_data_size");
  GS_ASSIGN_OR_RETURN(*request->add_raw_input_contents(), DataToRaw(*data_it, *dtype, shape, name));
  return absl::OkStatus();
}

// Request parameters: binary_data_output and timeout are the server's; the
// others are passed on in the request.
absl::Status DecodeRequestParameters(const Json& params, absl::Time now, RestInferRequest* out) {
  for (const auto& [key, value] : params.items()) {
    if (key == "binary_data_output") {
      GS_CHECK_ARG(value.is_boolean(), "parameter 'binary_data_output' must be a boolean, not ",
                   Excerpt(value));
      out->binary_output_default = value.get<bool>();
      continue;
    }
    if (key == "timeout") {
      GS_CHECK_ARG(value.is_number_unsigned(),
                   "parameter 'timeout' must be a count of "
                   "microseconds, not ",
                   Excerpt(value));
      const uint64_t us = value.get<uint64_t>();
      if (us > 0) out->deadline = now + absl::Microseconds(us);
    }
    GS_RETURN_IF_ERROR(ToParameter(value, key, &(*out->request.mutable_parameters())[key]));
  }
  return absl::OkStatus();
}

absl::Status DecodeOutputs(const Json& outputs, RestInferRequest* out) {
  GS_CHECK_ARG(outputs.is_array(), "'outputs' must be an array, not a ", outputs.type_name());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Json& o = outputs[i];
    GS_CHECK_ARG(o.is_object(), "outputs[", i, "] must be a JSON object");
    auto name_it = o.find("name");
    GS_CHECK_ARG(name_it != o.end() && name_it->is_string(), "outputs[", i,
                 "] needs a 'name' string");
    auto* r = out->request.add_outputs();
    r->set_name(name_it->get<std::string>());
    GS_ASSIGN_OR_RETURN(
        const Json* params,
        OptionalObject(o, "parameters", absl::StrCat("output '", r->name(), "' parameters")));
    if (params == nullptr) continue;
    for (const auto& [key, value] : params->items()) {
      if (key == "binary_data") {
        GS_CHECK_ARG(value.is_boolean(), "output '", r->name(), "' has binary_data ",
                     Excerpt(value), "; give true or false");
        out->binary_outputs[r->name()] = value.get<bool>();
      } else if (key == "classification") {
        return absl::InvalidArgumentError(absl::StrCat(
            "output '", r->name(), "' asks for classification, which gradserve does not offer"));
      } else {
        GS_RETURN_IF_ERROR(ToParameter(value, key, &(*r->mutable_parameters())[key]));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

OrderedJson ProtoToJson(const Message& message) {
  OrderedJson out = OrderedJson::object();
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* f = descriptor->field(i);
    if (f->is_map()) {
      out[f->name()] = MapToJson(message, f);
    } else if (f->is_repeated()) {
      OrderedJson array = OrderedJson::array();
      for (int j = 0; j < reflection->FieldSize(message, f); ++j) {
        array.push_back(FieldValue(message, f, j));
      }
      out[f->name()] = std::move(array);
    } else if ((f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ||
                f->containing_oneof() != nullptr) &&
               !reflection->HasField(message, f)) {
      continue;  // unset message or oneof member: absent, as protobuf prints it
    } else {
      out[f->name()] = FieldValue(message, f, -1);
    }
  }
  return out;
}

std::string DumpJson(const OrderedJson& value) {
  return value.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  // nlohmann's parser takes a NUL byte for the end of the input.
  if (const size_t nul = text.find('\0'); nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not valid JSON: byte ", nul,
                     " is NUL (binary data goes after the JSON, whose size the "
                     "Inference-Header-Content-Length header gives)"));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON: ", e.what()));
  }
}

absl::StatusOr<RestInferRequest> DecodeRestInferRequest(absl::string_view body,
                                                        std::optional<size_t> header_length,
                                                        const std::string& model,
                                                        const std::string& version,
                                                        absl::Time now) {
  absl::string_view json_text = body, binary;
  if (header_length.has_value()) {
    GS_CHECK_ARG(*header_length <= body.size(), "Inference-Header-Content-Length is ",
                 *header_length, " but the body holds only ", body.size(), " bytes");
    json_text = body.substr(0, *header_length);
    binary = body.substr(*header_length);
  }
  GS_ASSIGN_OR_RETURN(Json j, ParseJson(json_text, "the inference request"));
  GS_CHECK_ARG(j.is_object(), "the inference request must be a JSON object, not a ", j.type_name());
  RestInferRequest out;
  out.request.set_model_name(model);
  out.request.set_model_version(version);
  if (auto it = j.find("id"); it != j.end()) {
    GS_CHECK_ARG(it->is_string(), "'id' must be a string, not ", Excerpt(*it));
    out.request.set_id(it->get<std::string>());
  }
  GS_ASSIGN_OR_RETURN(const Json* params, OptionalObject(j, "parameters", "'parameters'"));
  if (params != nullptr) GS_RETURN_IF_ERROR(DecodeRequestParameters(*params, now, &out));

  auto inputs = j.find("inputs");
  GS_CHECK_ARG(inputs != j.end() && inputs->is_array(),
               "the inference request needs an 'inputs' array");
  size_t offset = 0;
  for (size_t i = 0; i < inputs->size(); ++i) {
    GS_RETURN_IF_ERROR(
        DecodeInput((*inputs)[i], i, binary, header_length.has_value(), &offset, &out.request));
  }
  GS_CHECK_ARG(offset == binary.size(), "the request has ", binary.size(),
               " bytes of binary data after its JSON but its inputs' binary_data_size add up to ",
               offset);
  if (auto it = j.find("outputs"); it != j.end()) GS_RETURN_IF_ERROR(DecodeOutputs(*it, &out));
  return out;
}

absl::StatusOr<RestBody> EncodeRestInferResponse(const inference::ModelInferResponse& response,
                                                 const RestInferRequest& request) {
  OrderedJson j = OrderedJson::object();
  j["model_name"] = response.model_name();
  j["model_version"] = response.model_version();
  if (!response.id().empty()) j["id"] = response.id();
  // Sorted: protobuf maps have no order.
  std::map<std::string, OrderedJson> params;
  for (const auto& [key, p] : response.parameters()) params[key] = ParameterToJson(p);
  OrderedJson params_json = OrderedJson::object();
  for (auto& [key, value] : params) params_json[key] = std::move(value);
  j["parameters"] = std::move(params_json);

  const bool raw = response.raw_output_contents_size() == response.outputs_size();
  std::string binary;
  OrderedJson outputs = OrderedJson::array();
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& o = response.outputs(i);
    GS_ASSIGN_OR_RETURN(DType dtype, DTypeFromDatatype(o.datatype()));
    std::string typed_bytes;  // outputs the service sent as typed contents
    if (!raw) {
      GS_ASSIGN_OR_RETURN(Shape shape, WireShape(o.shape(), o.name()));
      GS_ASSIGN_OR_RETURN(Tensor t, TensorFromContents(o.contents(), dtype, shape, o.name()));
      TensorToRaw(t, &typed_bytes);
    }
    const absl::string_view bytes =
        raw ? absl::string_view(response.raw_output_contents(i)) : absl::string_view(typed_bytes);
    bool as_binary = request.binary_output_default;
    if (auto it = request.binary_outputs.find(o.name()); it != request.binary_outputs.end()) {
      as_binary = it->second;
    }
    as_binary |= dtype == DType::kHalf || dtype == DType::kBFloat16;  // no JSON form

    OrderedJson out = OrderedJson::object();
    out["name"] = o.name();
    out["datatype"] = o.datatype();
    out["shape"] = std::vector<int64_t>(o.shape().begin(), o.shape().end());
    if (as_binary) {
      out["parameters"] = {{"binary_data_size", bytes.size()}};
      binary.append(bytes.data(), bytes.size());
    } else {
      out["data"] = RawToData(bytes, dtype);
    }
    outputs.push_back(std::move(out));
  }
  j["outputs"] = std::move(outputs);

  RestBody body;
  body.body = DumpJson(j);
  bool any_binary = false;
  for (const auto& o : j["outputs"]) any_binary |= o.contains("parameters");
  if (any_binary) {
    body.header_length = body.body.size();
    body.body.append(binary);
  }
  return body;
}

}  // namespace gradserve::serving
