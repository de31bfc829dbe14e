#include "clients/npy.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace gradserve::client {
namespace {

static_assert(std::endian::native == std::endian::little);

constexpr absl::string_view kMagic("\x93NUMPY", 6);
constexpr size_t kAlignment = 64;  // numpy.lib.format.ARRAY_ALIGN

struct Descr {
  absl::string_view code;  // without the byte-order mark
  absl::string_view datatype;
};
constexpr Descr kDescrs[] = {
    {"b1", "BOOL"},   {"u1", "UINT8"}, {"u2", "UINT16"}, {"u4", "UINT32"},
    {"u8", "UINT64"}, {"i1", "INT8"},  {"i2", "INT16"},  {"i4", "INT32"},
    {"i8", "INT64"},  {"f2", "FP16"},  {"f4", "FP32"},   {"f8", "FP64"},
};

absl::Status HeaderError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed .npy header: ", what));
}

absl::StatusOr<std::string> DatatypeFromDescr(absl::string_view descr) {
  if (descr.size() == 3) {
    const char order = descr[0];
    for (const Descr& d : kDescrs) {
      if (d.code != descr.substr(1)) continue;
      const bool one_byte = d.code[1] == '1';
      if (order == '<' || order == '=' || (one_byte && (order == '|' || order == '>'))) {
        return std::string(d.datatype);
      }
      if (order == '>') {
        return absl::InvalidArgumentError(absl::StrCat(
            ".npy dtype '", descr, "' is big-endian; convert with array.astype('<", d.code, "')"));
      }
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported .npy dtype '", descr,
                   "'; supported: |b1 |u1 <u2 <u4 <u8 |i1 <i2 <i4 <i8 <f2 <f4 <f8"));
}

// The text of the value of 'key' in the header dict, up to the next top-level
// comma or the closing brace ("'<f4'", "False", "(5, 64)").
absl::StatusOr<absl::string_view> DictValue(absl::string_view header, absl::string_view key) {
  const std::string quoted = absl::StrCat("'", key, "'");
  size_t pos = header.find(quoted);
  if (pos == absl::string_view::npos) return HeaderError(absl::StrCat("no ", quoted, " key"));
  pos = header.find(':', pos + quoted.size());
  if (pos == absl::string_view::npos) return HeaderError(absl::StrCat("no value for ", quoted));
  size_t end = pos + 1;
  int depth = 0;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  return absl::StripAsciiWhitespace(header.substr(pos + 1, end - pos - 1));
}

absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view text) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    return HeaderError(absl::StrCat("shape ", text, " is not a tuple"));
  }
  std::vector<int64_t> shape;
  for (absl::string_view part : absl::StrSplit(text.substr(1, text.size() - 2), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;  // "(5,)" and "()"
    int64_t d;
    if (!absl::SimpleAtoi(part, &d) || d < 0) {
      return HeaderError(absl::StrCat("bad dimension '", part, "' in shape ", text));
    }
    shape.push_back(d);
  }
  return shape;
}

// BF16 widened to FP32 (its bits are the high half of a float's).
std::string Bf16ToFloatBytes(const std::string& data) {
  std::string out(data.size() * 2, '\0');
  for (size_t i = 0; i < data.size() / 2; ++i) {
    uint16_t h;
    std::memcpy(&h, data.data() + 2 * i, 2);
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    std::memcpy(out.data() + 4 * i, &bits, 4);
  }
  return out;
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes, const std::string& name) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) {
    return absl::InvalidArgumentError("not a .npy file (no \\x93NUMPY magic)");
  }
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return HeaderError("truncated");
    uint32_t len;
    std::memcpy(&len, bytes.data() + 8, 4);
    header_len = len;
    offset = 12;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unsupported .npy version ", major));
  }
  if (bytes.size() < offset + header_len) return HeaderError("truncated");
  const absl::string_view header = bytes.substr(offset, header_len);

  absl::StatusOr<absl::string_view> descr = DictValue(header, "descr");
  if (!descr.ok()) return descr.status();
  if (descr->size() < 2 || (descr->front() != '\'' && descr->front() != '"')) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported .npy dtype ", *descr, " (structured arrays are not supported)"));
  }
  absl::StatusOr<std::string> datatype = DatatypeFromDescr(descr->substr(1, descr->size() - 2));
  if (!datatype.ok()) return datatype.status();
  absl::StatusOr<absl::string_view> fortran = DictValue(header, "fortran_order");
  if (!fortran.ok()) return fortran.status();
  if (*fortran != "False") {
    return absl::InvalidArgumentError(
        ".npy file is in Fortran order; save it in C order (numpy.ascontiguousarray)");
  }
  absl::StatusOr<absl::string_view> shape_text = DictValue(header, "shape");
  if (!shape_text.ok()) return shape_text.status();
  absl::StatusOr<std::vector<int64_t>> shape = ParseShape(*shape_text);
  if (!shape.ok()) return shape.status();

  Tensor t{name, *datatype, *shape, std::string(bytes.substr(offset + header_len))};
  const size_t want = static_cast<size_t>(ElementCount(t.shape)) * *DatatypeSize(t.datatype);
  if (t.data.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(".npy data holds ", t.data.size(), " bytes; its shape and dtype need ", want));
  }
  return t;
}

absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor) {
  absl::Status s = CheckTensor(tensor);
  if (!s.ok()) return s;
  std::string datatype = tensor.datatype;
  const std::string* data = &tensor.data;
  std::string widened;
  if (datatype == "BF16") {
    widened = Bf16ToFloatBytes(tensor.data);
    datatype = "FP32";
    data = &widened;
  }
  std::string descr;
  for (const Descr& d : kDescrs) {
    if (d.datatype == datatype) descr = absl::StrCat(d.code[1] == '1' ? "|" : "<", d.code);
  }
  if (descr.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", tensor.name, "' is ", datatype, ", which .npy cannot hold"));
  }
  std::string shape = absl::StrJoin(tensor.shape, ", ");
  if (tensor.shape.size() == 1) shape += ",";
  std::string header =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': (", shape, "), }");
  // Pad with spaces so that magic + version + length + header + '\n' is aligned.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  header.push_back('\n');
  if (header.size() > 0xffff) return absl::InvalidArgumentError(".npy header too long");
  std::string out(kMagic);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out += *data;
  return out;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  absl::StatusOr<Tensor> t = ParseNpy(bytes.str(), name);
  if (!t.ok())
    return absl::Status(t.status().code(), absl::StrCat(path, ": ", t.status().message()));
  return t;
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  absl::StatusOr<std::string> bytes = SerializeNpy(tensor);
  if (!bytes.ok()) return bytes.status();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace gradserve::client
