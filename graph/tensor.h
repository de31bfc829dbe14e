// Tensor: a typed, shaped view of a reference-counted buffer. Copying a Tensor is
// cheap (it shares the buffer); Slice() views a range of dimension 0 without
// copying, which is how batching splits and joins requests. The buffer is 64-byte
// aligned at offset 0 and tagged with the device of its allocator.
//
// Thread safety: a Tensor value may be read from many threads; the buffer's
// contents are not synchronized (kernels own their outputs until they return).
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "graph/allocator.h"
#include "graph/dtype.h"
#include "graph/shape.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace gradserve {

class TensorProto;

// Owns one allocation; freed with the last Tensor that refers to it.
class Buffer {
 public:
  Buffer(Allocator* allocator, size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  Allocator* allocator() const { return allocator_; }
  bool ok() const { return data_ != nullptr || size_ == 0; }

 private:
  Allocator* allocator_;
  void* data_;
  size_t size_;
};

class Tensor {
 public:
  template <typename T, int N>
  using EigenTensor =
      Eigen::TensorMap<Eigen::Tensor<T, N, Eigen::RowMajor, Eigen::DenseIndex>>;
  template <typename T, int N>
  using ConstEigenTensor =
      Eigen::TensorMap<Eigen::Tensor<const T, N, Eigen::RowMajor, Eigen::DenseIndex>>;

  // An uninitialized tensor (no dtype, no buffer).
  Tensor() = default;
  // Allocates a host tensor; contents uninitialized. `shape` must be fully defined.
  Tensor(DType dtype, const Shape& shape);
  Tensor(Allocator* allocator, DType dtype, const Shape& shape);

  // Host tensors from values.
  template <typename T>
  static Tensor Scalar(T value) {
    Tensor t(DTypeOf<T>::value, Shape{});
    *t.data<T>() = value;
    return t;
  }
  template <typename T>
  static Tensor FromSpan(absl::Span<const T> values, const Shape& shape) {
    Tensor t(DTypeOf<T>::value, shape);
    std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
    return t;
  }
  template <typename T>
  static Tensor FromVector(const std::vector<T>& values) {
    return FromSpan<T>(absl::MakeConstSpan(values), Shape{static_cast<int64_t>(values.size())});
  }
  template <typename T>
  static Tensor FromVector(const std::vector<T>& values, const Shape& shape) {
    return FromSpan<T>(absl::MakeConstSpan(values), shape);
  }

  bool initialized() const { return dtype_ != DType::kInvalid; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_.dim(i); }
  int64_t num_elements() const { return num_elements_; }
  size_t bytes() const { return num_elements_ * DTypeSize(dtype_); }
  // The device holding the data ("cpu:0" for host tensors).
  absl::string_view device() const;
  bool host_accessible() const;

  void* raw_data() const {
    return buffer_ ? static_cast<char*>(buffer_->data()) + offset_ : nullptr;
  }
  template <typename T>
  T* data() const { return static_cast<T*>(raw_data()); }

  template <typename T>
  EigenTensor<T, 1> flat() const { return EigenTensor<T, 1>(data<T>(), num_elements_); }
  template <typename T>
  T& scalar() const { return *data<T>(); }
  template <typename T, int N>
  EigenTensor<T, N> tensor() const {
    Eigen::array<Eigen::DenseIndex, N> dims;
    for (int i = 0; i < N; ++i) dims[i] = shape_.dim(i);
    return EigenTensor<T, N>(data<T>(), dims);
  }
  // The tensor viewed with `shape` (same element count; no copy).
  template <typename T, int N>
  EigenTensor<T, N> shaped(absl::Span<const int64_t> dims) const {
    Eigen::array<Eigen::DenseIndex, N> d;
    for (int i = 0; i < N; ++i) d[i] = dims[i];
    return EigenTensor<T, N>(data<T>(), d);
  }
  template <typename T>
  absl::Span<T> span() const { return absl::Span<T>(data<T>(), num_elements_); }

  // Rows [begin, end) of dimension 0, sharing the buffer. Requires rank >= 1.
  Tensor Slice(int64_t begin, int64_t end) const;
  // Same buffer viewed with another shape of the same element count.
  absl::StatusOr<Tensor> Reshaped(const Shape& shape) const;
  // A new buffer from the same allocator (host or device) with the same contents.
  Tensor DeepCopy() const;
  // This tensor when it is in host memory, else a host copy of it (waiting for
  // the device); Internal if the device fails.
  absl::StatusOr<Tensor> OnHost() const;

  // True when no other Tensor shares this buffer (kernels may then write in place).
  bool RefCountIsOne() const { return buffer_ && buffer_.use_count() == 1; }
  // The allocator of the buffer (nullptr for an uninitialized tensor).
  Allocator* allocator() const { return buffer_ ? buffer_->allocator() : nullptr; }
  bool SharesBufferWith(const Tensor& other) const {
    return buffer_ && buffer_ == other.buffer_;
  }

  // "float[2,3] {1, 2, 3, ...}" with at most `max_values` values.
  std::string DebugString(int max_values = 8) const;

 private:
  DType dtype_ = DType::kInvalid;
  Shape shape_;
  int64_t num_elements_ = 0;
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;  // bytes
};

// TensorProto <-> Tensor. Accepts tensor_content and the typed value fields,
// including TensorFlow's convention that fewer values than elements repeat the last.
absl::StatusOr<Tensor> TensorFromProto(const TensorProto& proto);
// Writes tensor_content (compact and lossless). `tensor` must be host-accessible.
void TensorToProto(const Tensor& tensor, TensorProto* proto);

// Element-wise conversion on the host (Cast), e.g. for tests and tools.
absl::StatusOr<Tensor> ConvertTensor(const Tensor& tensor, DType to);

}  // namespace gradserve
