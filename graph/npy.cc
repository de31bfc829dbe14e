#include "graph/npy.h"

#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/file_io.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// The data section is copied byte for byte: it is little-endian, and so are we.
static_assert(std::endian::native == std::endian::little);

constexpr absl::string_view kMagic("\x93NUMPY", 6);
constexpr size_t kAlignment = 64;  // numpy.lib.format.ARRAY_ALIGN

struct DescrInfo {
  absl::string_view code;  // without the byte-order mark
  DType dtype;
};
constexpr DescrInfo kDescrs[] = {
    {"f2", DType::kHalf},  {"f4", DType::kFloat}, {"f8", DType::kDouble},
    {"i1", DType::kInt8},  {"u1", DType::kUInt8}, {"i2", DType::kInt16},
    {"i4", DType::kInt32}, {"i8", DType::kInt64}, {"b1", DType::kBool},
};

absl::Status HeaderError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed .npy header: ", what));
}

absl::StatusOr<DType> DTypeFromDescr(absl::string_view descr) {
  if (descr.size() == 3) {
    const char order = descr[0];
    const absl::string_view code = descr.substr(1);
    for (const DescrInfo& d : kDescrs) {
      if (d.code != code) continue;
      const bool one_byte = DTypeSize(d.dtype) == 1;
      if (order == '<' || order == '=' || (one_byte && (order == '|' || order == '>'))) {
        return d.dtype;
      }
      if (order == '>') {
        return absl::InvalidArgumentError(
            absl::StrCat(".npy dtype '", descr,
                         "' is big-endian; only little-endian data is supported "
                         "(convert with array.astype('<",
                         code, "'))"));
      }
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported .npy dtype '", descr, "'; supported: <f2 <f4 <f8 |i1 |u1 <i2 <i4 <i8 |b1"));
}

absl::string_view DescrFor(DType dtype) {
  switch (dtype) {
    case DType::kHalf:
      return "<f2";
    case DType::kFloat:
      return "<f4";
    case DType::kDouble:
      return "<f8";
    case DType::kInt8:
      return "|i1";
    case DType::kUInt8:
      return "|u1";
    case DType::kInt16:
      return "<i2";
    case DType::kInt32:
      return "<i4";
    case DType::kInt64:
      return "<i8";
    case DType::kBool:
      return "|b1";
    default:
      return "";
  }
}

struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// followed by spaces and '\n'. Only what numpy.save writes is accepted.
class HeaderParser {
 public:
  explicit HeaderParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<Header> Parse() {
    Header h;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    GS_RETURN_IF_ERROR(Expect('{'));
    while (true) {
      SkipSpace();
      if (Peek() == '}') break;
      GS_ASSIGN_OR_RETURN(std::string key, ParseString());
      GS_RETURN_IF_ERROR(Expect(':'));
      SkipSpace();
      if (key == "descr") {
        if (Peek() == '[') {
          return absl::InvalidArgumentError(
              "structured .npy dtypes (record arrays) are not supported");
        }
        GS_ASSIGN_OR_RETURN(h.descr, ParseString());
        seen_descr = true;
      } else if (key == "fortran_order") {
        GS_ASSIGN_OR_RETURN(h.fortran_order, ParseBool());
        seen_order = true;
      } else if (key == "shape") {
        GS_ASSIGN_OR_RETURN(h.shape, ParseShape());
        seen_shape = true;
      } else {
        return HeaderError(absl::StrCat("unexpected key '", key, "'"));
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != '}') {
        return HeaderError(absl::StrCat("expected ',' or '}' at offset ", pos_));
      }
    }
    ++pos_;
    for (; pos_ < text_.size(); ++pos_) {
      if (!absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) {
        return HeaderError("unexpected text after the dict");
      }
    }
    if (!seen_descr || !seen_order || !seen_shape) {
      return HeaderError("'descr', 'fortran_order' and 'shape' are required");
    }
    return h;
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < text_.size() && absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
  }
  absl::Status Expect(char c) {
    SkipSpace();
    if (Peek() != c)
      return HeaderError(absl::StrCat("expected '", std::string(1, c), "' at offset ", pos_));
    ++pos_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ParseString() {
    const char quote = Peek();
    if (quote != '\'' && quote != '"') {
      return HeaderError(absl::StrCat("expected a string at offset ", pos_));
    }
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == absl::string_view::npos) return HeaderError("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  absl::StatusOr<bool> ParseBool() {
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    return HeaderError("fortran_order must be True or False");
  }
  absl::StatusOr<std::vector<int64_t>> ParseShape() {
    GS_RETURN_IF_ERROR(Expect('('));
    std::vector<int64_t> dims;
    while (true) {
      SkipSpace();
      if (Peek() == ')') break;
      if (!absl::ascii_isdigit(static_cast<unsigned char>(Peek()))) {
        return HeaderError(absl::StrCat("expected a non-negative dimension at offset ", pos_));
      }
      int64_t d = 0;
      while (absl::ascii_isdigit(static_cast<unsigned char>(Peek()))) {
        if (d > (std::numeric_limits<int64_t>::max() - 9) / 10) {
          return HeaderError("dimension too large");
        }
        d = d * 10 + (text_[pos_++] - '0');
      }
      if (Peek() == 'L') ++pos_;  // Python 2 longs
      dims.push_back(d);
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != ')') {
        return HeaderError(absl::StrCat("expected ',' or ')' in shape at offset ", pos_));
      }
    }
    ++pos_;
    return dims;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

uint32_t ReadLittleEndian(absl::string_view bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  return v;
}

std::string ShapeTuple(const Shape& shape) {
  if (shape.rank() == 1) return absl::StrCat("(", shape.dim(0), ",)");
  return absl::StrCat("(", absl::StrJoin(shape.dims(), ", "), ")");
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    return absl::InvalidArgumentError("not a .npy file (no \\x93NUMPY magic)");
  }
  if (bytes.size() < 10) return absl::InvalidArgumentError("truncated .npy header");
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported .npy format version ", major, ".",
                                                   minor, " (supported: 1.0, 2.0, 3.0)"));
  }
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t preamble = 8 + len_bytes;
  if (bytes.size() < preamble) return absl::InvalidArgumentError("truncated .npy header");
  const uint64_t header_len = ReadLittleEndian(bytes.substr(8, len_bytes));
  if (header_len > bytes.size() - preamble) {
    return absl::InvalidArgumentError(absl::StrCat("truncated .npy header: it declares ",
                                                   header_len, " bytes, the file has ",
                                                   bytes.size() - preamble));
  }
  GS_ASSIGN_OR_RETURN(Header header, HeaderParser(bytes.substr(preamble, header_len)).Parse());
  if (header.fortran_order) {
    return absl::InvalidArgumentError(
        ".npy array is in Fortran order; only C order is supported "
        "(save numpy.ascontiguousarray(a) instead)");
  }
  GS_ASSIGN_OR_RETURN(DType dtype, DTypeFromDescr(header.descr));

  // Checked before allocating, so a corrupt shape cannot ask for huge memory.
  const absl::string_view data = bytes.substr(preamble + header_len);
  uint64_t expected = DTypeSize(dtype);
  for (int64_t d : header.shape) {
    if (__builtin_mul_overflow(expected, static_cast<uint64_t>(d), &expected)) {
      return absl::InvalidArgumentError(
          absl::StrCat(".npy shape ", ShapeTuple(Shape(header.shape)), " is too large"));
    }
  }
  const Shape shape(header.shape);
  if (data.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        ".npy data section is ", data.size(), " bytes but ", header.descr, " ", ShapeTuple(shape),
        " needs ", expected, data.size() < expected ? " (truncated file)" : " (trailing bytes)"));
  }
  Tensor t(dtype, shape);
  if (expected > 0) std::memcpy(t.raw_data(), data.data(), expected);
  if (dtype == DType::kBool) {
    // Any byte but 0 or 1 would be an invalid C++ bool.
    auto* raw = static_cast<unsigned char*>(t.raw_data());
    for (int64_t i = 0; i < t.num_elements(); ++i) raw[i] = raw[i] != 0;
  }
  return t;
}

absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor) {
  if (!tensor.initialized()) return absl::InvalidArgumentError("cannot write an empty tensor");
  if (!tensor.host_accessible()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor on ", tensor.device(), " must be copied to the host first"));
  }
  if (tensor.dtype() == DType::kBFloat16) {
    GS_ASSIGN_OR_RETURN(Tensor widened, ConvertTensor(tensor, DType::kFloat));
    return SerializeNpy(widened);
  }
  const absl::string_view descr = DescrFor(tensor.dtype());
  if (descr.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype ", DTypeName(tensor.dtype()), " has no .npy representation"));
  }
  std::string dict =
      absl::StrCat("{'descr': '", descr,
                   "', 'fortran_order': False, 'shape': ", ShapeTuple(tensor.shape()), ", }");
  // Pad with spaces so the data starts aligned; the header ends with '\n'.
  size_t preamble = 10;
  if (dict.size() + 1 + preamble > 65535) preamble = 12;
  const size_t unpadded = preamble + dict.size() + 1;
  dict.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  dict.push_back('\n');

  std::string out(kMagic);
  out.push_back(preamble == 10 ? 1 : 2);
  out.push_back(0);
  const uint32_t len = static_cast<uint32_t>(dict.size());
  for (size_t i = 0; i < preamble - 8; ++i) {
    out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  }
  out += dict;
  if (tensor.bytes() > 0) out.append(static_cast<const char*>(tensor.raw_data()), tensor.bytes());
  return out;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  GS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  absl::StatusOr<Tensor> t = ParseNpy(bytes);
  if (!t.ok()) return Annotate(t.status(), path);
  return t;
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  absl::StatusOr<std::string> bytes = SerializeNpy(tensor);
  if (!bytes.ok()) return Annotate(bytes.status(), path);
  return WriteFileAtomically(path, *bytes);
}

}  // namespace gradserve
