#include "clients/infer_json.h"

#include <charconv>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace gradserve::client {
namespace {

using Json = nlohmann::json;

absl::Status Bad(const std::string& input, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("input '", input, "': ", what));
}

void Flatten(const Json& data, std::vector<const Json*>* out) {
  if (data.is_array()) {
    for (const Json& d : data) Flatten(d, out);
  } else {
    out->push_back(&data);
  }
}

template <typename T>
void Append(T v, std::string* out) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Appends `v` as an integer of type T, checking that it is whole and in range.
template <typename T>
absl::Status AppendInt(const Json& v, const std::string& input, std::string* out) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        Append(static_cast<T>(u), out);
        return absl::OkStatus();
      }
    } else {
      const int64_t i = v.get<int64_t>();
      if (i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
          (i < 0 ||
           static_cast<uint64_t>(i) <= static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
        Append(static_cast<T>(i), out);
        return absl::OkStatus();
      }
    }
  }
  return Bad(input, absl::StrCat("element ", v.dump(), " is not a whole number in range"));
}

absl::Status AppendElement(const Json& v, const std::string& datatype, const std::string& input,
                           std::string* out) {
  if (datatype == "BOOL") {
    if (!v.is_boolean())
      return Bad(input, absl::StrCat("BOOL element ", v.dump(), " is not true/false"));
    Append<uint8_t>(v.get<bool>() ? 1 : 0, out);
  } else if (datatype == "FP32" || datatype == "FP64") {
    if (!v.is_number()) return Bad(input, absl::StrCat("element ", v.dump(), " is not a number"));
    if (datatype == "FP32")
      Append(v.get<float>(), out);
    else
      Append(v.get<double>(), out);
  } else if (datatype == "BYTES") {
    if (!v.is_string())
      return Bad(input, absl::StrCat("BYTES element ", v.dump(), " is not a string"));
    const std::string& s = v.get_ref<const std::string&>();
    Append(static_cast<uint32_t>(s.size()), out);
    out->append(s);
  } else if (datatype == "UINT8")
    return AppendInt<uint8_t>(v, input, out);
  else if (datatype == "UINT16")
    return AppendInt<uint16_t>(v, input, out);
  else if (datatype == "UINT32")
    return AppendInt<uint32_t>(v, input, out);
  else if (datatype == "UINT64")
    return AppendInt<uint64_t>(v, input, out);
  else if (datatype == "INT8")
    return AppendInt<int8_t>(v, input, out);
  else if (datatype == "INT16")
    return AppendInt<int16_t>(v, input, out);
  else if (datatype == "INT32")
    return AppendInt<int32_t>(v, input, out);
  else if (datatype == "INT64")
    return AppendInt<int64_t>(v, input, out);
  else
    return Bad(input, absl::StrCat(datatype, " has no JSON form here; send it as .npy"));
  return absl::OkStatus();
}

absl::StatusOr<Tensor> InputFromJson(const Json& in, size_t index) {
  std::string name = absl::StrCat("#", index);
  if (!in.is_object()) return Bad(name, "is not an object");
  if (!in.contains("name") || !in["name"].is_string()) return Bad(name, "has no \"name\" string");
  name = in["name"].get<std::string>();
  if (!in.contains("datatype") || !in["datatype"].is_string()) {
    return Bad(name, "has no \"datatype\" string");
  }
  if (!in.contains("shape") || !in["shape"].is_array()) return Bad(name, "has no \"shape\" list");
  if (!in.contains("data")) return Bad(name, "has no \"data\"");
  Tensor t{name, in["datatype"].get<std::string>(), {}, {}};
  absl::StatusOr<size_t> size = DatatypeSize(t.datatype);
  if (!size.ok()) return Bad(name, size.status().message());
  for (const Json& d : in["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return Bad(name, absl::StrCat("shape ", in["shape"].dump(), " is not a list of sizes"));
    }
    t.shape.push_back(d.get<int64_t>());
  }
  std::vector<const Json*> values;
  Flatten(in["data"], &values);
  if (static_cast<int64_t>(values.size()) != ElementCount(t.shape)) {
    return Bad(name, absl::StrCat("\"data\" holds ", values.size(), " elements but shape ",
                                  in["shape"].dump(), " needs ", ElementCount(t.shape)));
  }
  for (const Json* v : values) {
    absl::Status s = AppendElement(*v, t.datatype, name, &t.data);
    if (!s.ok()) return s;
  }
  return t;
}

template <typename T>
void FormatElements(const std::string& data, int64_t row, std::string* out) {
  const size_t n = data.size() / sizeof(T);
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, data.data() + i * sizeof(T), sizeof(T));
    char buf[64];
    std::to_chars_result r;
    if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
      r = std::to_chars(buf, buf + sizeof(buf), static_cast<int>(v));
    } else {
      r = std::to_chars(buf, buf + sizeof(buf), v);
    }
    out->append(buf, r.ptr);
    out->push_back((i + 1) % row == 0 ? '\n' : ' ');
  }
}

}  // namespace

absl::StatusOr<InferRequest> InferRequestFromJson(const std::string& text) {
  Json body = Json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!body.is_object() || !body.contains("inputs") || !body["inputs"].is_array()) {
    return absl::InvalidArgumentError("the body has no \"inputs\" list");
  }
  InferRequest request;
  if (body.contains("id") && body["id"].is_string()) request.id = body["id"].get<std::string>();
  for (size_t i = 0; i < body["inputs"].size(); ++i) {
    absl::StatusOr<Tensor> t = InputFromJson(body["inputs"][i], i);
    if (!t.ok()) return t.status();
    request.inputs.push_back(*std::move(t));
  }
  if (body.contains("outputs")) {
    if (!body["outputs"].is_array()) return absl::InvalidArgumentError("\"outputs\" is not a list");
    for (const Json& out : body["outputs"]) {
      if (!out.is_object() || !out.contains("name") || !out["name"].is_string()) {
        return absl::InvalidArgumentError("each of \"outputs\" needs a \"name\" string");
      }
      request.outputs.push_back(out["name"].get<std::string>());
    }
  }
  return request;
}

std::string FormatTensor(const Tensor& t) {
  std::string out = absl::StrCat(t.name, " ", t.datatype, " [", absl::StrJoin(t.shape, ","), "]\n");
  const int64_t row = t.shape.empty() || t.shape.back() == 0 ? 1 : t.shape.back();
  const std::string& d = t.datatype;
  if (d == "BOOL" || d == "UINT8")
    FormatElements<uint8_t>(t.data, row, &out);
  else if (d == "UINT16")
    FormatElements<uint16_t>(t.data, row, &out);
  else if (d == "UINT32")
    FormatElements<uint32_t>(t.data, row, &out);
  else if (d == "UINT64")
    FormatElements<uint64_t>(t.data, row, &out);
  else if (d == "INT8")
    FormatElements<int8_t>(t.data, row, &out);
  else if (d == "INT16")
    FormatElements<int16_t>(t.data, row, &out);
  else if (d == "INT32")
    FormatElements<int32_t>(t.data, row, &out);
  else if (d == "INT64")
    FormatElements<int64_t>(t.data, row, &out);
  else if (d == "FP32")
    FormatElements<float>(t.data, row, &out);
  else if (d == "FP64")
    FormatElements<double>(t.data, row, &out);
  else if (d == "BYTES") {
    size_t pos = 0;
    for (int64_t i = 0; pos + 4 <= t.data.size(); ++i) {
      uint32_t len;
      std::memcpy(&len, t.data.data() + pos, 4);
      out += Json(t.data.substr(pos + 4, len)).dump(-1, ' ', false, Json::error_handler_t::replace);
      out.push_back((i + 1) % row == 0 ? '\n' : ' ');
      pos += 4 + len;
    }
  } else {
    absl::StrAppend(&out, "(", t.data.size(), " bytes of ", d, "; write it with --output-dir)\n");
  }
  return out;
}

}  // namespace gradserve::client
