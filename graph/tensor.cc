#include "graph/tensor.h"

#include <new>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/status.h"
#include "proto/graph.pb.h"

namespace gradserve {

Buffer::Buffer(Allocator* allocator, size_t bytes)
    : allocator_(allocator), data_(allocator->Allocate(bytes)), size_(bytes) {}

Buffer::~Buffer() { allocator_->Deallocate(data_, size_); }

Tensor::Tensor(DType dtype, const Shape& shape) : Tensor(HostAllocator(), dtype, shape) {}

Tensor::Tensor(Allocator* allocator, DType dtype, const Shape& shape)
    : dtype_(dtype), shape_(shape), num_elements_(shape.num_elements()) {
  // A partial shape here is a programming error in the caller.
  if (num_elements_ < 0) std::abort();
  buffer_ = std::make_shared<Buffer>(allocator, bytes());
  if (!buffer_->ok()) throw std::bad_alloc();
}

absl::string_view Tensor::device() const {
  return buffer_ ? buffer_->allocator()->device_name() : "cpu:0";
}

bool Tensor::host_accessible() const {
  return !buffer_ || buffer_->allocator()->host_accessible();
}

Tensor Tensor::Slice(int64_t begin, int64_t end) const {
  Tensor t = *this;
  const int64_t row_elems = shape_.dim(0) == 0 ? 0 : num_elements_ / shape_.dim(0);
  t.shape_.set_dim(0, end - begin);
  t.num_elements_ = (end - begin) * row_elems;
  t.offset_ = offset_ + begin * row_elems * DTypeSize(dtype_);
  return t;
}

absl::StatusOr<Tensor> Tensor::Reshaped(const Shape& shape) const {
  if (shape.num_elements() != num_elements_) {
    return absl::InvalidArgumentError(absl::StrCat("cannot reshape ",
                                                   shape_.DebugString(), " to ",
                                                   shape.DebugString()));
  }
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::DeepCopy() const {
  if (!buffer_) return Tensor(dtype_, shape_);
  Allocator* allocator = buffer_->allocator();
  Tensor t(allocator, dtype_, shape_);
  if (bytes() > 0) allocator->CopyWithin(t.raw_data(), raw_data(), bytes());
  return t;
}

absl::StatusOr<Tensor> Tensor::OnHost() const {
  if (host_accessible()) return *this;
  Tensor t(dtype_, shape_);
  if (bytes() > 0 && !buffer_->allocator()->CopyToHostMemory(t.raw_data(), raw_data(), bytes())) {
    return absl::InternalError(absl::StrCat("copying a tensor from ", device(), " to the host failed"));
  }
  return t;
}

std::string Tensor::DebugString(int max_values) const {
  if (!initialized()) return "<uninitialized>";
  std::string out = absl::StrCat(DTypeName(dtype_), shape_.DebugString());
  if (!host_accessible() || dtype_ == DType::kResource) return out;
  std::vector<std::string> values;
  const int64_t n = std::min<int64_t>(num_elements_, max_values);
  (void)DispatchDType(dtype_, [&]<typename T>() -> absl::Status {
    for (int64_t i = 0; i < n; ++i) {
      values.push_back(absl::StrCat(static_cast<double>(data<T>()[i])));
    }
    return absl::OkStatus();
  });
  if (num_elements_ > n) values.push_back("...");
  return absl::StrCat(out, " {", absl::StrJoin(values, ", "), "}");
}

namespace {

// Copies `n` typed values into `out`, repeating the last one to fill (TF's rule).
template <typename T, typename Src>
absl::Status FillFromRepeated(const Src& src, int64_t n, T* out, absl::string_view field) {
  if (src.size() == 0) {
    for (int64_t i = 0; i < n; ++i) out[i] = T(0);
    return absl::OkStatus();
  }
  if (src.size() > n) {
    return absl::InvalidArgumentError(absl::StrCat("tensor proto has ", src.size(), " ",
                                                   field, " values for ", n, " elements"));
  }
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(src[std::min<int64_t>(i, src.size() - 1)]);
  return absl::OkStatus();
}

template <typename T, typename Src>
absl::Status FillBits16(const Src& src, int64_t n, T* out) {
  if (src.size() > n) return absl::InvalidArgumentError("too many half_val values");
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits = src.size() == 0 ? 0 : static_cast<uint16_t>(src[std::min<int64_t>(i, src.size() - 1)]);
    std::memcpy(&out[i], &bits, 2);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> TensorFromProto(const TensorProto& proto) {
  const DType dtype = static_cast<DType>(proto.dtype());
  if (DTypeSize(dtype) == 0 || dtype == DType::kResource) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported tensor dtype ", DataType_Name(proto.dtype())));
  }
  const Shape shape = Shape::FromProto(proto.tensor_shape());
  if (!shape.IsFullyDefined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor proto shape ", shape.DebugString(), " is not fully defined"));
  }
  Tensor t(dtype, shape);
  const int64_t n = t.num_elements();
  if (!proto.tensor_content().empty()) {
    if (proto.tensor_content().size() != t.bytes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor_content has ", proto.tensor_content().size(), " bytes, expected ",
          t.bytes(), " for ", DTypeName(dtype), shape.DebugString()));
    }
    std::memcpy(t.raw_data(), proto.tensor_content().data(), t.bytes());
    return t;
  }
  absl::Status status;
  switch (dtype) {
    case DType::kFloat: status = FillFromRepeated(proto.float_val(), n, t.data<float>(), "float_val"); break;
    case DType::kDouble: status = FillFromRepeated(proto.double_val(), n, t.data<double>(), "double_val"); break;
    case DType::kInt32: status = FillFromRepeated(proto.int_val(), n, t.data<int32_t>(), "int_val"); break;
    case DType::kInt16: status = FillFromRepeated(proto.int_val(), n, t.data<int16_t>(), "int_val"); break;
    case DType::kInt8: status = FillFromRepeated(proto.int_val(), n, t.data<int8_t>(), "int_val"); break;
    case DType::kUInt8: status = FillFromRepeated(proto.int_val(), n, t.data<uint8_t>(), "int_val"); break;
    case DType::kInt64: status = FillFromRepeated(proto.int64_val(), n, t.data<int64_t>(), "int64_val"); break;
    case DType::kBool: status = FillFromRepeated(proto.bool_val(), n, t.data<bool>(), "bool_val"); break;
    case DType::kHalf: status = FillBits16(proto.half_val(), n, t.data<half>()); break;
    case DType::kBFloat16: status = FillBits16(proto.half_val(), n, t.data<bfloat16>()); break;
    default: status = absl::InvalidArgumentError("unsupported tensor dtype");
  }
  GS_RETURN_IF_ERROR(status);
  return t;
}

void TensorToProto(const Tensor& tensor, TensorProto* proto) {
  proto->Clear();
  proto->set_dtype(static_cast<DataType>(tensor.dtype()));
  tensor.shape().ToProto(proto->mutable_tensor_shape());
  proto->set_tensor_content(tensor.raw_data(), tensor.bytes());
}

absl::StatusOr<Tensor> ConvertTensor(const Tensor& tensor, DType to) {
  if (tensor.dtype() == to) return tensor;
  Tensor out(to, tensor.shape());
  GS_RETURN_IF_ERROR(DispatchDType(tensor.dtype(), [&]<typename From>() -> absl::Status {
    return DispatchDType(to, [&]<typename To>() -> absl::Status {
      out.flat<To>() = tensor.flat<From>().template cast<To>();
      return absl::OkStatus();
    });
  }));
  return out;
}

}  // namespace gradserve
