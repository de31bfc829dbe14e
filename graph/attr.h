// Typed access to node attributes, falling back to the op's declared defaults.
// AttrValue is the wire type (proto/graph.proto); MakeAttr builds one from C++.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/dtype.h"
#include "graph/shape.h"
#include "graph/tensor.h"
#include "proto/graph.pb.h"

namespace gradserve {

struct OpDef;

// The kinds of attribute an op may declare (TensorFlow's attr type strings).
enum class AttrType {
  kString, kInt, kFloat, kBool, kType, kShape, kTensor,
  kListInt, kListFloat, kListType, kListShape, kListString,
};
absl::string_view AttrTypeName(AttrType type);
// True when `value` holds the oneof case `type` requires. An empty list matches
// every list type (TensorFlow writes empty lists without a type).
bool AttrValueHasType(const AttrValue& value, AttrType type);

AttrValue MakeAttr(bool v);
AttrValue MakeAttr(int64_t v);
inline AttrValue MakeAttr(int v) { return MakeAttr(static_cast<int64_t>(v)); }
AttrValue MakeAttr(float v);
AttrValue MakeAttr(absl::string_view v);
inline AttrValue MakeAttr(const char* v) { return MakeAttr(absl::string_view(v)); }
AttrValue MakeAttr(DType v);
AttrValue MakeAttr(const Shape& v);
AttrValue MakeAttr(const Tensor& v);
AttrValue MakeAttr(const std::vector<int64_t>& v);
AttrValue MakeAttr(const std::vector<float>& v);
AttrValue MakeAttr(const std::vector<DType>& v);

// A read-only view of one node's attributes. Cheap to copy; valid while the
// NodeDef and OpDef it points to are. Thread-compatible (read-only).
class AttrView {
 public:
  AttrView(const NodeDef& node, const OpDef& op) : node_(&node), op_(&op) {}

  // The node's value, else the op's default, else nullptr.
  const AttrValue* Find(absl::string_view name) const;

  // NotFound when absent with no default; InvalidArgument when of another type.
  // T: bool, int64_t, float, std::string, DType, Shape, Tensor,
  //    std::vector<int64_t>, std::vector<float>, std::vector<DType>, std::vector<std::string>.
  template <typename T>
  absl::StatusOr<T> Get(absl::string_view name) const;

  const NodeDef& node() const { return *node_; }

 private:
  const NodeDef* node_;
  const OpDef* op_;
};

}  // namespace gradserve
