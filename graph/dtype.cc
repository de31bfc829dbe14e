#include "graph/dtype.h"

#include <algorithm>

namespace gradserve {

namespace {
struct DTypeInfo {
  DType dtype;
  absl::string_view name;
  absl::string_view enum_name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kFloat, "float", "DT_FLOAT", 4},
    {DType::kDouble, "double", "DT_DOUBLE", 8},
    {DType::kInt32, "int32", "DT_INT32", 4},
    {DType::kUInt8, "uint8", "DT_UINT8", 1},
    {DType::kInt16, "int16", "DT_INT16", 2},
    {DType::kInt8, "int8", "DT_INT8", 1},
    {DType::kString, "string", "DT_STRING", 0},
    {DType::kInt64, "int64", "DT_INT64", 8},
    {DType::kBool, "bool", "DT_BOOL", 1},
    {DType::kBFloat16, "bfloat16", "DT_BFLOAT16", 2},
    {DType::kHalf, "half", "DT_HALF", 2},
    {DType::kResource, "resource", "DT_RESOURCE", 8},
};

const DTypeInfo* Find(DType dtype) {
  for (const auto& info : kDTypes)
    if (info.dtype == dtype) return &info;
  return nullptr;
}
}  // namespace

size_t DTypeSize(DType dtype) {
  const DTypeInfo* info = Find(dtype);
  return info ? info->size : 0;
}

absl::string_view DTypeName(DType dtype) {
  const DTypeInfo* info = Find(dtype);
  return info ? info->name : "invalid";
}

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  for (const auto& info : kDTypes)
    if (info.name == name || info.enum_name == name) return info.dtype;
  if (name == "float32") return DType::kFloat;
  if (name == "float64") return DType::kDouble;
  if (name == "float16") return DType::kHalf;
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", name, "'"));
}

bool IsFloatingDType(DType d) {
  return d == DType::kFloat || d == DType::kDouble || d == DType::kHalf ||
         d == DType::kBFloat16;
}

bool IsIntegerDType(DType d) {
  return d == DType::kInt8 || d == DType::kInt16 || d == DType::kInt32 ||
         d == DType::kInt64 || d == DType::kUInt8;
}

const std::vector<DType>& FloatTypes() {
  static const std::vector<DType> types = {DType::kHalf, DType::kBFloat16, DType::kFloat,
                                           DType::kDouble};
  return types;
}

const std::vector<DType>& RealNumberTypes() {
  static const std::vector<DType> types = {
      DType::kHalf, DType::kBFloat16, DType::kFloat, DType::kDouble, DType::kInt8,
      DType::kInt16, DType::kInt32,   DType::kInt64, DType::kUInt8};
  return types;
}

const std::vector<DType>& AllTypes() {
  static const std::vector<DType> types = [] {
    std::vector<DType> t = RealNumberTypes();
    t.push_back(DType::kBool);
    return t;
  }();
  return types;
}

}  // namespace gradserve
