#include "graph/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "graph/npy.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// The whole file, decompressed when it is gzip data. gzread passes plain files
// through unchanged, so one reader serves "x.csv" and "x.csv.gz" alike and the
// file's name does not have to say which it is.
absl::StatusOr<std::string> ReadMaybeGzipped(const std::string& path) {
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    if (errno != 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
    return absl::ResourceExhaustedError(absl::StrCat("cannot open ", path, ": out of memory"));
  }
  std::string contents;
  char chunk[1 << 16];
  int n;
  while ((n = gzread(file, chunk, sizeof(chunk))) > 0) contents.append(chunk, n);
  int error = Z_OK;
  const char* message = gzerror(file, &error);
  const int saved_errno = errno;
  gzclose(file);
  if (n < 0 || (error != Z_OK && error != Z_STREAM_END)) {
    if (error == Z_ERRNO && saved_errno != 0) {
      return absl::ErrnoToStatus(saved_errno, absl::StrCat("cannot read ", path));
    }
    return absl::DataLossError(absl::StrCat(path, ": corrupt gzip data: ", message));
  }
  return contents;
}

// Scales in place unless `scale` is 1 (most NPY/CSV data is used as is).
void Scale(Tensor& features, float scale) {
  if (scale != 1.0f) features.flat<float>() = features.flat<float>() * scale;
}

absl::Status NoExamples(const std::string& path) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": no examples"));
}

absl::Status CheckSameCount(int64_t features, const std::string& features_path, int64_t labels,
                            const std::string& labels_path) {
  GS_CHECK_ARG(features == labels, "features and labels differ in length: ", features,
               " examples in ", features_path, ", ", labels, " labels in ", labels_path);
  return absl::OkStatus();
}

// A CSV label: an integer, or a number with no fractional part ("3.0", as
// pandas writes integer columns holding NaN elsewhere); never negative.
absl::StatusOr<int64_t> ParseLabel(absl::string_view field) {
  int64_t label;
  if (!absl::SimpleAtoi(field, &label)) {
    double value;
    // 2^53: beyond it doubles skip integers, so "integral" means nothing.
    if (!absl::SimpleAtod(field, &value) || !std::isfinite(value) || value != std::trunc(value) ||
        std::abs(value) > 9007199254740992.0) {
      return absl::InvalidArgumentError(
          absl::StrCat("label '", field, "' is not a non-negative integer"));
    }
    label = static_cast<int64_t>(value);
  }
  GS_CHECK_ARG(label >= 0, "label '", field, "' is not a non-negative integer");
  return label;
}

// IDX: a big-endian header (2 zero bytes, a type code, the number of
// dimensions, then one uint32 per dimension) and the row-major data.
// Fashion-MNIST uses type 0x08 (unsigned byte) only, so that is all we read.
struct IdxFile {
  std::string bytes;
  std::vector<int64_t> dims;
  size_t data_offset = 0;
};

uint32_t BigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

absl::StatusOr<IdxFile> ReadIdx(const std::string& path, uint32_t magic, absl::string_view what) {
  IdxFile idx;
  GS_ASSIGN_OR_RETURN(idx.bytes, ReadMaybeGzipped(path));
  GS_CHECK_ARG(idx.bytes.size() >= 4, path, ": truncated IDX file (", idx.bytes.size(),
               " bytes, no header)");
  const uint32_t found = BigEndian32(idx.bytes, 0);
  GS_CHECK_ARG(found == magic, path, ": bad IDX magic ", absl::StrFormat("0x%08x", found), "; ",
               what, " need ", absl::StrFormat("0x%08x", magic), " (unsigned bytes, ", magic & 0xff,
               " dimensions)");
  const size_t rank = magic & 0xff;
  idx.data_offset = 4 + 4 * rank;
  GS_CHECK_ARG(idx.bytes.size() >= idx.data_offset, path, ": truncated IDX header (",
               idx.bytes.size(), " bytes, expected ", idx.data_offset, ")");
  // Each dimension is at most 2^32 - 1 and the product is compared with the
  // file size after every factor, so it cannot overflow.
  uint64_t elements = 1;
  for (size_t i = 0; i < rank; ++i) {
    const uint32_t dim = BigEndian32(idx.bytes, 4 + 4 * i);
    GS_CHECK_ARG(dim > 0, path, ": IDX dimension ", i, " is 0");
    idx.dims.push_back(dim);
    elements *= dim;
    GS_CHECK_ARG(elements <= idx.bytes.size(), path, ": truncated IDX data: the header's dims [",
                 absl::StrJoin(idx.dims, ","), "...] need more than the file's ", idx.bytes.size(),
                 " bytes");
  }
  const size_t data_bytes = idx.bytes.size() - idx.data_offset;
  GS_CHECK_ARG(data_bytes >= elements, path, ": truncated IDX data: dims [",
               absl::StrJoin(idx.dims, ","), "] need ", elements, " bytes, found ", data_bytes);
  GS_CHECK_ARG(data_bytes == elements, path, ": ", data_bytes - elements,
               " bytes after the IDX data (dims [", absl::StrJoin(idx.dims, ","), "])");
  return idx;
}

// Checks that every feature is finite (NPY files can hold NaN and inf).
absl::Status CheckFinite(const Tensor& features, const std::string& path) {
  const absl::Span<const float> values = features.span<const float>();
  for (size_t i = 0; i < values.size(); ++i) {
    GS_CHECK_ARG(std::isfinite(values[i]), path, ": feature value ", values[i], " at flat index ",
                 i, " is not finite");
  }
  return absl::OkStatus();
}

Shape WithBatch(int64_t n, absl::Span<const int64_t> example_dims) {
  Shape shape{n};
  for (int64_t d : example_dims) shape.AddDim(d);
  return shape;
}

// Copies the rows `order` of `t` (dimension 0) into a new tensor.
Tensor GatherRows(const Tensor& t, const std::vector<int64_t>& order) {
  const int64_t n = t.dim(0);
  Tensor out(t.dtype(), WithBatch(static_cast<int64_t>(order.size()), t.shape().dims().subspan(1)));
  const size_t row_bytes = n == 0 ? 0 : t.bytes() / n;
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < order.size(); ++i) {
    std::memcpy(dst + i * row_bytes, src + order[i] * row_bytes, row_bytes);
  }
  return out;
}

}  // namespace

absl::StatusOr<Dataset> ReadCsvDataset(const std::string& path, float scale) {
  GS_ASSIGN_OR_RETURN(std::string text, ReadMaybeGzipped(path));
  std::vector<float> features;
  std::vector<int64_t> labels;
  size_t columns = 0;  // of the first example; every row must match it
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);  // also a Windows '\r'
    if (line.empty() || line[0] == '#') continue;
    const std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
    const std::string where = absl::StrCat(path, ":", line_number, ": ");
    GS_CHECK_ARG(fields.size() >= 2, where, "expected features and a label, found ", fields.size(),
                 " column");
    if (columns == 0) columns = fields.size();
    GS_CHECK_ARG(fields.size() == columns, where, "ragged rows: ", fields.size(),
                 " columns, but the first example has ", columns);
    for (size_t i = 0; i + 1 < fields.size(); ++i) {
      const absl::string_view field = absl::StripAsciiWhitespace(fields[i]);
      float value;
      GS_CHECK_ARG(absl::SimpleAtof(field, &value) && std::isfinite(value), where, "column ", i + 1,
                   ": '", field, "' is not a finite number");
      features.push_back(value);
    }
    absl::StatusOr<int64_t> label = ParseLabel(absl::StripAsciiWhitespace(fields.back()));
    if (!label.ok()) return Annotate(label.status(), absl::StrCat(where, "column ", columns));
    labels.push_back(*label);
  }
  if (labels.empty()) return NoExamples(path);
  const int64_t n = static_cast<int64_t>(labels.size());
  Dataset data;
  data.features = Tensor::FromVector(features, Shape{n, static_cast<int64_t>(columns - 1)});
  data.labels = Tensor::FromVector(labels);
  Scale(data.features, scale);
  return data;
}

absl::StatusOr<Dataset> ReadIdxDataset(const std::string& images_path,
                                       const std::string& labels_path, float scale) {
  GS_ASSIGN_OR_RETURN(IdxFile images, ReadIdx(images_path, 0x00000803, "images"));
  GS_ASSIGN_OR_RETURN(IdxFile labels, ReadIdx(labels_path, 0x00000801, "labels"));
  GS_RETURN_IF_ERROR(CheckSameCount(images.dims[0], images_path, labels.dims[0], labels_path));
  Dataset data;
  data.features = Tensor(DType::kFloat, Shape(absl::MakeConstSpan(images.dims)));
  const auto* pixels = reinterpret_cast<const uint8_t*>(images.bytes.data() + images.data_offset);
  float* out = data.features.data<float>();
  for (int64_t i = 0; i < data.features.num_elements(); ++i) out[i] = pixels[i] * scale;
  const int64_t n = labels.dims[0];
  data.labels = Tensor(DType::kInt64, Shape{n});
  const auto* classes = reinterpret_cast<const uint8_t*>(labels.bytes.data() + labels.data_offset);
  std::copy(classes, classes + n, data.labels.data<int64_t>());
  return data;
}

absl::StatusOr<Dataset> ReadNpyDataset(const std::string& features_path,
                                       const std::string& labels_path, float scale) {
  GS_ASSIGN_OR_RETURN(Tensor features, ReadNpy(features_path));
  GS_ASSIGN_OR_RETURN(Tensor labels, ReadNpy(labels_path));
  GS_CHECK_ARG(features.dtype() != DType::kBool, features_path,
               ": features must be numeric, not bool");
  GS_CHECK_ARG(features.rank() >= 1, features_path,
               ": features must have a batch dimension, "
               "found a scalar");
  GS_CHECK_ARG(IsIntegerDType(labels.dtype()), labels_path, ": labels must be integers, not ",
               DTypeName(labels.dtype()));
  GS_CHECK_ARG(labels.rank() == 1, labels_path, ": labels must have one dimension, found shape ",
               labels.shape().DebugString());
  GS_RETURN_IF_ERROR(CheckSameCount(features.dim(0), features_path, labels.dim(0), labels_path));
  if (labels.dim(0) == 0) return NoExamples(labels_path);

  Dataset data;
  GS_ASSIGN_OR_RETURN(data.features, ConvertTensor(features, DType::kFloat));
  GS_RETURN_IF_ERROR(CheckFinite(data.features, features_path));
  Scale(data.features, scale);
  GS_ASSIGN_OR_RETURN(data.labels, ConvertTensor(labels, DType::kInt64));
  const absl::Span<const int64_t> values = data.labels.span<const int64_t>();
  for (size_t i = 0; i < values.size(); ++i) {
    GS_CHECK_ARG(values[i] >= 0, labels_path, ": label ", values[i], " at index ", i,
                 " is negative");
  }
  return data;
}

absl::StatusOr<Dataset> ReshapeExamples(const Dataset& data, const Shape& example_shape) {
  GS_CHECK_ARG(example_shape.IsFullyDefined(), "example shape ", example_shape.DebugString(),
               " must be fully defined");
  const Shape& from = data.features.shape();
  const Shape to = WithBatch(data.size(), example_shape.dims());
  GS_CHECK_ARG(to.num_elements() == from.num_elements(), "cannot reshape examples of shape ",
               Shape(from.dims().subspan(1)).DebugString(), " to ", example_shape.DebugString(),
               ": the element counts differ");
  Dataset out;
  GS_ASSIGN_OR_RETURN(out.features, data.features.Reshaped(to));
  out.labels = data.labels;
  return out;
}

Dataset Take(const Dataset& data, int64_t begin, int64_t end) {
  const int64_t n = data.size();
  begin = std::clamp<int64_t>(begin, 0, n);
  end = std::clamp<int64_t>(end, begin, n);
  return {data.features.Slice(begin, end).DeepCopy(), data.labels.Slice(begin, end).DeepCopy()};
}

Dataset Gather(const Dataset& data, const std::vector<int64_t>& order) {
  return {GatherRows(data.features, order), GatherRows(data.labels, order)};
}

std::pair<Dataset, Dataset> ShuffleSplit(const Dataset& data, double train_fraction,
                                         uint64_t seed) {
  const int64_t n = data.size();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // std::shuffle and std::uniform_int_distribution differ between standard
  // libraries; mt19937_64's output and a modulo do not. The modulo's bias is
  // below n / 2^64, far under anything a data split could show.
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  const int64_t train =
      std::clamp<int64_t>(std::llround(std::clamp(train_fraction, 0.0, 1.0) * n), 0, n);
  std::vector<int64_t> train_order(order.begin(), order.begin() + train);
  std::vector<int64_t> test_order(order.begin() + train, order.end());
  return {Gather(data, train_order), Gather(data, test_order)};
}

int64_t NumClasses(const Dataset& data) {
  if (data.size() == 0) return 0;
  const absl::Span<const int64_t> labels = data.labels.span<const int64_t>();
  return *std::max_element(labels.begin(), labels.end()) + 1;
}

}  // namespace gradserve
