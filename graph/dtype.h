// Element types. Values match TensorFlow's DataType enum (proto/graph.proto), so a
// DType converts to and from the wire by a cast.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace gradserve {

enum class DType : int {
  kInvalid = 0,
  kFloat = 1,
  kDouble = 2,
  kInt32 = 3,
  kUInt8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kString = 7,
  kInt64 = 9,
  kBool = 10,
  kBFloat16 = 14,
  kHalf = 19,
  kResource = 20,
};

using half = Eigen::half;
using bfloat16 = Eigen::bfloat16;

// Size in bytes of one element; 0 for kInvalid and kString.
size_t DTypeSize(DType dtype);
// TensorFlow's spelling: "float", "int64", "half", ...
absl::string_view DTypeName(DType dtype);
// Parses TensorFlow's spelling or the enum name ("DT_FLOAT").
absl::StatusOr<DType> ParseDType(absl::string_view name);
bool IsFloatingDType(DType dtype);  // half, bfloat16, float, double
bool IsIntegerDType(DType dtype);   // int8/16/32/64, uint8

// Type sets used by op schemas, as TensorFlow defines them.
const std::vector<DType>& FloatTypes();   // half, bfloat16, float, double
const std::vector<DType>& RealNumberTypes();  // FloatTypes + int8..int64, uint8
const std::vector<DType>& AllTypes();     // RealNumberTypes + bool

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kFloat; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kDouble; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kInt32; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kUInt8; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::kInt16; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kInt8; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kInt64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::kBool; };
template <> struct DTypeOf<bfloat16> { static constexpr DType value = DType::kBFloat16; };
template <> struct DTypeOf<half> { static constexpr DType value = DType::kHalf; };

// Calls `fn.template operator()<T>()` with T the C++ type of `dtype`, for the
// numeric and bool types. Returns InvalidArgument for any other dtype.
//   return DispatchDType(dtype, [&]<typename T>() -> absl::Status { ... });
template <typename Fn>
auto DispatchDType(DType dtype, Fn&& fn) -> decltype(fn.template operator()<float>()) {
  switch (dtype) {
    case DType::kFloat: return fn.template operator()<float>();
    case DType::kDouble: return fn.template operator()<double>();
    case DType::kHalf: return fn.template operator()<half>();
    case DType::kBFloat16: return fn.template operator()<bfloat16>();
    case DType::kInt32: return fn.template operator()<int32_t>();
    case DType::kInt64: return fn.template operator()<int64_t>();
    case DType::kInt16: return fn.template operator()<int16_t>();
    case DType::kInt8: return fn.template operator()<int8_t>();
    case DType::kUInt8: return fn.template operator()<uint8_t>();
    case DType::kBool: return fn.template operator()<bool>();
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported dtype ", DTypeName(dtype)));
  }
}

}  // namespace gradserve
