#include "graph/op_def.h"

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

const AttrDef* OpDef::FindAttr(absl::string_view attr_name) const {
  for (const auto& a : attrs)
    if (a.name == attr_name) return &a;
  return nullptr;
}

OpDefBuilder& OpDefBuilder::Input(std::string name, std::string type_attr) {
  def_.inputs.push_back({.name = std::move(name), .type_attr = std::move(type_attr)});
  return *this;
}
OpDefBuilder& OpDefBuilder::Input(std::string name, DType type) {
  def_.inputs.push_back({.name = std::move(name), .type = type});
  return *this;
}
OpDefBuilder& OpDefBuilder::InputList(std::string name, std::string type_attr,
                                      std::string number_attr) {
  def_.inputs.push_back({.name = std::move(name),
                         .type_attr = std::move(type_attr),
                         .number_attr = std::move(number_attr)});
  return *this;
}
OpDefBuilder& OpDefBuilder::Output(std::string name, std::string type_attr) {
  def_.outputs.push_back({.name = std::move(name), .type_attr = std::move(type_attr)});
  return *this;
}
OpDefBuilder& OpDefBuilder::Output(std::string name, DType type) {
  def_.outputs.push_back({.name = std::move(name), .type = type});
  return *this;
}
OpDefBuilder& OpDefBuilder::OutputList(std::string name, std::string type_attr,
                                       std::string number_attr) {
  def_.outputs.push_back({.name = std::move(name),
                          .type_attr = std::move(type_attr),
                          .number_attr = std::move(number_attr)});
  return *this;
}

OpDefBuilder& OpDefBuilder::TypeAttr(std::string name, std::vector<DType> allowed,
                                     std::optional<DType> default_type) {
  AttrDef a{.name = std::move(name), .type = AttrType::kType};
  a.allowed_types = std::move(allowed);
  if (default_type) a.default_value = MakeAttr(*default_type);
  def_.attrs.push_back(std::move(a));
  return *this;
}
OpDefBuilder& OpDefBuilder::RequiredAttr(std::string name, AttrType type) {
  def_.attrs.push_back({.name = std::move(name), .type = type});
  return *this;
}
OpDefBuilder& OpDefBuilder::AttrWithDefault(std::string name, AttrType type,
                                            AttrValue default_value) {
  def_.attrs.push_back(
      {.name = std::move(name), .type = type, .default_value = std::move(default_value)});
  return *this;
}
OpDefBuilder& OpDefBuilder::Attr(std::string name, bool v) {
  return AttrWithDefault(std::move(name), AttrType::kBool, MakeAttr(v));
}
OpDefBuilder& OpDefBuilder::Attr(std::string name, int64_t v) {
  return AttrWithDefault(std::move(name), AttrType::kInt, MakeAttr(v));
}
OpDefBuilder& OpDefBuilder::Attr(std::string name, float v) {
  return AttrWithDefault(std::move(name), AttrType::kFloat, MakeAttr(v));
}
OpDefBuilder& OpDefBuilder::Attr(std::string name, const char* v) {
  return AttrWithDefault(std::move(name), AttrType::kString, MakeAttr(v));
}
OpDefBuilder& OpDefBuilder::Attr(std::string name, const std::vector<int64_t>& v) {
  return AttrWithDefault(std::move(name), AttrType::kListInt, MakeAttr(v));
}
OpDefBuilder& OpDefBuilder::Attr(std::string name, const Shape& v) {
  return AttrWithDefault(std::move(name), AttrType::kShape, MakeAttr(v));
}
OpDefBuilder& OpDefBuilder::EnumAttr(std::string name, std::vector<std::string> allowed,
                                     std::optional<std::string> default_value) {
  AttrDef a{.name = std::move(name), .type = AttrType::kString};
  a.allowed_values = std::move(allowed);
  if (default_value) a.default_value = MakeAttr(*default_value);
  def_.attrs.push_back(std::move(a));
  return *this;
}
OpDefBuilder& OpDefBuilder::IntAttr(std::string name, int64_t minimum) {
  AttrDef a{.name = std::move(name), .type = AttrType::kInt};
  a.minimum = minimum;
  def_.attrs.push_back(std::move(a));
  return *this;
}
OpDefBuilder& OpDefBuilder::SetShapeFn(ShapeFn fn) {
  def_.shape_fn = std::move(fn);
  return *this;
}
OpDefBuilder& OpDefBuilder::SetStateful() {
  def_.stateful = true;
  return *this;
}

absl::Status OpRegistry::Register(OpDef def) {
  if (!def.shape_fn) {
    return absl::InvalidArgumentError(absl::StrCat("op ", def.name, " has no shape function"));
  }
  auto check_arg = [&](const ArgDef& arg) -> absl::Status {
    for (const std::string* attr : {&arg.type_attr, &arg.number_attr, &arg.type_list_attr}) {
      if (!attr->empty() && def.FindAttr(*attr) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "op ", def.name, " arg ", arg.name, " names undeclared attr ", *attr));
      }
    }
    if (arg.type == DType::kInvalid && arg.type_attr.empty() && arg.type_list_attr.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("op ", def.name, " arg ", arg.name, " has no type"));
    }
    return absl::OkStatus();
  };
  for (const auto& a : def.inputs) GS_RETURN_IF_ERROR(check_arg(a));
  for (const auto& a : def.outputs) GS_RETURN_IF_ERROR(check_arg(a));
  std::string name = def.name;
  auto [it, inserted] = ops_.emplace(name, std::make_unique<OpDef>(std::move(def)));
  if (!inserted) return absl::AlreadyExistsError(absl::StrCat("op ", name, " registered twice"));
  return absl::OkStatus();
}

const OpDef* OpRegistry::Find(absl::string_view name) const {
  auto it = ops_.find(name);
  return it == ops_.end() ? nullptr : it->second.get();
}

std::vector<std::string> OpRegistry::OpNames() const {
  std::vector<std::string> names;
  for (const auto& [name, def] : ops_) names.push_back(name);
  return names;
}

const OpRegistry& OpRegistry::Global() {
  static const OpRegistry* registry = [] {
    auto* r = new OpRegistry;
    absl::Status status = RegisterAllOps(*r);
    // A failure here is a bug in an op family's registration, caught by every test.
    if (!status.ok()) {
      fprintf(stderr, "op registration failed: %s\n", std::string(status.message()).c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

absl::Status RegisterAllOps(OpRegistry& registry) {
  GS_RETURN_IF_ERROR(RegisterMathOps(registry));
  GS_RETURN_IF_ERROR(RegisterReductionOps(registry));
  GS_RETURN_IF_ERROR(RegisterNnOps(registry));
  GS_RETURN_IF_ERROR(RegisterArrayOps(registry));
  GS_RETURN_IF_ERROR(RegisterStateOps(registry));
  GS_RETURN_IF_ERROR(RegisterOptimizerOps(registry));
  return absl::OkStatus();
}

}  // namespace gradserve
