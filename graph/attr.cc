#include "graph/attr.h"

#include "absl/strings/str_cat.h"
#include "graph/op_def.h"
#include "graph/status.h"

namespace gradserve {

absl::string_view AttrTypeName(AttrType type) {
  switch (type) {
    case AttrType::kString: return "string";
    case AttrType::kInt: return "int";
    case AttrType::kFloat: return "float";
    case AttrType::kBool: return "bool";
    case AttrType::kType: return "type";
    case AttrType::kShape: return "shape";
    case AttrType::kTensor: return "tensor";
    case AttrType::kListInt: return "list(int)";
    case AttrType::kListFloat: return "list(float)";
    case AttrType::kListType: return "list(type)";
    case AttrType::kListShape: return "list(shape)";
    case AttrType::kListString: return "list(string)";
  }
  return "?";
}

bool AttrValueHasType(const AttrValue& v, AttrType type) {
  const auto& l = v.list();
  const bool empty_list = v.has_list() && l.s_size() + l.i_size() + l.f_size() + l.b_size() +
                                                  l.type_size() + l.shape_size() +
                                                  l.tensor_size() == 0;
  switch (type) {
    case AttrType::kString: return v.value_case() == AttrValue::kS;
    case AttrType::kInt: return v.value_case() == AttrValue::kI;
    case AttrType::kFloat: return v.value_case() == AttrValue::kF;
    case AttrType::kBool: return v.value_case() == AttrValue::kB;
    case AttrType::kType: return v.value_case() == AttrValue::kType;
    case AttrType::kShape: return v.value_case() == AttrValue::kShape;
    case AttrType::kTensor: return v.value_case() == AttrValue::kTensor;
    case AttrType::kListInt: return empty_list || (v.has_list() && l.i_size() > 0);
    case AttrType::kListFloat: return empty_list || (v.has_list() && l.f_size() > 0);
    case AttrType::kListType: return empty_list || (v.has_list() && l.type_size() > 0);
    case AttrType::kListShape: return empty_list || (v.has_list() && l.shape_size() > 0);
    case AttrType::kListString: return empty_list || (v.has_list() && l.s_size() > 0);
  }
  return false;
}

AttrValue MakeAttr(bool v) { AttrValue a; a.set_b(v); return a; }
AttrValue MakeAttr(int64_t v) { AttrValue a; a.set_i(v); return a; }
AttrValue MakeAttr(float v) { AttrValue a; a.set_f(v); return a; }
AttrValue MakeAttr(absl::string_view v) { AttrValue a; a.set_s(std::string(v)); return a; }
AttrValue MakeAttr(DType v) { AttrValue a; a.set_type(static_cast<DataType>(v)); return a; }
AttrValue MakeAttr(const Shape& v) { AttrValue a; v.ToProto(a.mutable_shape()); return a; }
AttrValue MakeAttr(const Tensor& v) { AttrValue a; TensorToProto(v, a.mutable_tensor()); return a; }
AttrValue MakeAttr(const std::vector<int64_t>& v) {
  AttrValue a;
  auto* list = a.mutable_list();
  for (int64_t x : v) list->add_i(x);
  return a;
}
AttrValue MakeAttr(const std::vector<float>& v) {
  AttrValue a;
  auto* list = a.mutable_list();
  for (float x : v) list->add_f(x);
  return a;
}
AttrValue MakeAttr(const std::vector<DType>& v) {
  AttrValue a;
  auto* list = a.mutable_list();
  for (DType x : v) list->add_type(static_cast<DataType>(x));
  return a;
}

const AttrValue* AttrView::Find(absl::string_view name) const {
  auto it = node_->attr().find(std::string(name));
  if (it != node_->attr().end()) return &it->second;
  const AttrDef* def = op_->FindAttr(name);
  if (def != nullptr && def->default_value.has_value()) return &*def->default_value;
  return nullptr;
}

namespace {
absl::Status WrongType(const NodeDef& node, absl::string_view name, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("node '", node.name(), "': attr '", name,
                                                 "' is not of type ", want));
}
}  // namespace

#define GS_ATTR_GETTER(T, want, has, expr)                                             \
  template <>                                                                          \
  absl::StatusOr<T> AttrView::Get<T>(absl::string_view name) const {                    \
    const AttrValue* v = Find(name);                                                   \
    if (v == nullptr) {                                                                \
      return absl::NotFoundError(                                                      \
          absl::StrCat("node '", node_->name(), "' (", node_->op(), ") has no attr '", \
                       name, "'"));                                                    \
    }                                                                                  \
    if (!(has)) return WrongType(*node_, name, want);                                  \
    return expr;                                                                       \
  }

GS_ATTR_GETTER(bool, "bool", v->value_case() == AttrValue::kB, v->b())
GS_ATTR_GETTER(int64_t, "int", v->value_case() == AttrValue::kI, v->i())
GS_ATTR_GETTER(float, "float", v->value_case() == AttrValue::kF, v->f())
GS_ATTR_GETTER(std::string, "string", v->value_case() == AttrValue::kS, v->s())
GS_ATTR_GETTER(DType, "type", v->value_case() == AttrValue::kType,
               static_cast<DType>(v->type()))
GS_ATTR_GETTER(Shape, "shape", v->value_case() == AttrValue::kShape,
               Shape::FromProto(v->shape()))
GS_ATTR_GETTER(Tensor, "tensor", v->value_case() == AttrValue::kTensor,
               TensorFromProto(v->tensor()))
GS_ATTR_GETTER(std::vector<int64_t>, "list(int)", AttrValueHasType(*v, AttrType::kListInt),
               std::vector<int64_t>(v->list().i().begin(), v->list().i().end()))
GS_ATTR_GETTER(std::vector<float>, "list(float)", AttrValueHasType(*v, AttrType::kListFloat),
               std::vector<float>(v->list().f().begin(), v->list().f().end()))
GS_ATTR_GETTER(std::vector<std::string>, "list(string)",
               AttrValueHasType(*v, AttrType::kListString),
               std::vector<std::string>(v->list().s().begin(), v->list().s().end()))

template <>
absl::StatusOr<std::vector<DType>> AttrView::Get<std::vector<DType>>(
    absl::string_view name) const {
  const AttrValue* v = Find(name);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("node '", node_->name(), "' has no attr '", name, "'"));
  }
  if (!AttrValueHasType(*v, AttrType::kListType)) return WrongType(*node_, name, "list(type)");
  std::vector<DType> out;
  for (int t : v->list().type()) out.push_back(static_cast<DType>(t));
  return out;
}

#undef GS_ATTR_GETTER

}  // namespace gradserve
