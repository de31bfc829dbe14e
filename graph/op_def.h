// Op schemas: what an op takes, gives and is configured by, and how its output
// shapes follow from its inputs. One OpDef per op, registered explicitly by its
// family (graph/ops/<family>_ops.cc) into an OpRegistry; kernels (runtime/) and
// gradients (autodiff/) join it by name.
//
// Thread safety: an OpRegistry is built once, then read concurrently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "graph/attr.h"
#include "graph/dtype.h"

namespace gradserve {

class InferenceContext;
using ShapeFn = std::function<absl::Status(InferenceContext&)>;

// One input or output. Its type is fixed (`type`), named by a type attr
// (`type_attr`, e.g. "T"), or it is a list: `number_attr` copies of `type_attr`,
// or one tensor per entry of the list(type) attr `type_list_attr`.
struct ArgDef {
  std::string name;
  DType type = DType::kInvalid;
  std::string type_attr;
  std::string number_attr;
  std::string type_list_attr;
};

struct AttrDef {
  std::string name;
  AttrType type;
  std::optional<AttrValue> default_value;
  std::vector<DType> allowed_types;         // for kType / kListType; empty = any
  std::vector<std::string> allowed_values;  // for kString; empty = any
  int64_t minimum = INT64_MIN;              // for kInt (e.g. N >= 1)
};

struct OpDef {
  std::string name;
  std::vector<ArgDef> inputs;
  std::vector<ArgDef> outputs;
  std::vector<AttrDef> attrs;
  ShapeFn shape_fn;
  // Stateful ops (variables, random) are never constant-folded or deduplicated.
  bool stateful = false;

  const AttrDef* FindAttr(absl::string_view attr_name) const;
};

// Fluent construction of an OpDef:
//   OpDefBuilder("MatMul")
//       .Input("a", "T").Input("b", "T").Output("product", "T")
//       .Attr("transpose_a", false).Attr("transpose_b", false)
//       .TypeAttr("T", {DType::kFloat, DType::kDouble})
//       .SetShapeFn(MatMulShape)
class OpDefBuilder {
 public:
  explicit OpDefBuilder(std::string name) { def_.name = std::move(name); }

  OpDefBuilder& Input(std::string name, std::string type_attr);
  OpDefBuilder& Input(std::string name, DType type);
  // `number_attr` copies of type `type_attr` (e.g. ConcatV2's values: N * T).
  OpDefBuilder& InputList(std::string name, std::string type_attr, std::string number_attr);
  OpDefBuilder& Output(std::string name, std::string type_attr);
  OpDefBuilder& Output(std::string name, DType type);
  OpDefBuilder& OutputList(std::string name, std::string type_attr, std::string number_attr);

  // A type attr; with `default_type` it may be omitted from nodes.
  OpDefBuilder& TypeAttr(std::string name, std::vector<DType> allowed,
                         std::optional<DType> default_type = std::nullopt);
  // An attr with no default (required), of the given kind.
  OpDefBuilder& RequiredAttr(std::string name, AttrType type);
  // An attr with a default; its kind follows the C++ type of the default.
  OpDefBuilder& Attr(std::string name, bool default_value);
  OpDefBuilder& Attr(std::string name, int64_t default_value);
  OpDefBuilder& Attr(std::string name, int default_value) {
    return Attr(std::move(name), static_cast<int64_t>(default_value));
  }
  OpDefBuilder& Attr(std::string name, float default_value);
  OpDefBuilder& Attr(std::string name, const char* default_value);
  OpDefBuilder& Attr(std::string name, const std::vector<int64_t>& default_value);
  OpDefBuilder& Attr(std::string name, const Shape& default_value);
  // A string attr restricted to `allowed` (e.g. padding: SAME | VALID).
  OpDefBuilder& EnumAttr(std::string name, std::vector<std::string> allowed,
                         std::optional<std::string> default_value = std::nullopt);
  // An int attr with a minimum (list lengths: N >= 1).
  OpDefBuilder& IntAttr(std::string name, int64_t minimum);
  OpDefBuilder& AttrWithDefault(std::string name, AttrType type, AttrValue default_value);

  OpDefBuilder& SetShapeFn(ShapeFn fn);
  OpDefBuilder& SetStateful();

  OpDef Build() && { return std::move(def_); }

 private:
  OpDef def_;
};

class OpRegistry {
 public:
  // AlreadyExists on a duplicate name; InvalidArgument when an arg names an
  // undeclared attr or the shape function is missing.
  absl::Status Register(OpDef def);
  // Takes the finished builder of a fluent chain: Register(OpDefBuilder("X").Input(...)).
  absl::Status Register(OpDefBuilder& builder) { return Register(std::move(builder).Build()); }
  absl::Status Register(OpDefBuilder&& builder) { return Register(std::move(builder).Build()); }
  const OpDef* Find(absl::string_view name) const;
  std::vector<std::string> OpNames() const;

  // Every op of every family (see graph/ops/all_ops.cc), built on first use.
  static const OpRegistry& Global();

 private:
  std::map<std::string, std::unique_ptr<OpDef>, std::less<>> ops_;
};

// The explicit list of op families; each Register*Ops lives in graph/ops/.
absl::Status RegisterAllOps(OpRegistry& registry);
absl::Status RegisterMathOps(OpRegistry& registry);
absl::Status RegisterReductionOps(OpRegistry& registry);
absl::Status RegisterNnOps(OpRegistry& registry);
absl::Status RegisterArrayOps(OpRegistry& registry);
absl::Status RegisterStateOps(OpRegistry& registry);
absl::Status RegisterOptimizerOps(OpRegistry& registry);

}  // namespace gradserve
