#include "runtime/resource.h"

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

bool Var::initialized() const {
  absl::MutexLock lock(&mu_);
  return value_.initialized();
}

absl::StatusOr<Tensor> Var::Read() const {
  absl::MutexLock lock(&mu_);
  if (!value_.initialized()) {
    return absl::FailedPreconditionError("variable read before it was initialized");
  }
  return value_;
}

absl::Status Var::Assign(Tensor value) {
  if (value.dtype() != dtype_) {
    return absl::InvalidArgumentError(absl::StrCat("cannot assign ", DTypeName(value.dtype()),
                                                   " to a ", DTypeName(dtype_), " variable"));
  }
  if (!declared_shape_.IsCompatibleWith(value.shape())) {
    return absl::InvalidArgumentError(absl::StrCat("cannot assign shape ",
                                                   value.shape().DebugString(),
                                                   " to a variable of shape ",
                                                   declared_shape_.DebugString()));
  }
  absl::MutexLock lock(&mu_);
  value_ = std::move(value);
  return absl::OkStatus();
}

absl::Status Var::Update(const std::function<absl::Status(Tensor&)>& update) {
  absl::MutexLock lock(&mu_);
  if (!value_.initialized()) {
    return absl::FailedPreconditionError("variable updated before it was initialized");
  }
  // Note [Copy-on-write variables]: a reader holds a snapshot that shares the
  // buffer; writing into it would change a value the reader is using. So write
  // in place only when this Var is the buffer's only owner.
  if (!value_.RefCountIsOne()) value_ = value_.DeepCopy();
  return update(value_);
}

absl::StatusOr<Var*> ResourceMgr::LookupOrCreate(const std::string& name, DType dtype,
                                                 const Shape& shape) {
  absl::MutexLock lock(&mu_);
  auto& slot = vars_[name];
  if (!slot) slot = std::make_unique<Var>(dtype, shape);
  if (slot->dtype() != dtype) {
    return absl::InvalidArgumentError(absl::StrCat("variable '", name, "' is ",
                                                   DTypeName(slot->dtype()), ", not ",
                                                   DTypeName(dtype)));
  }
  return slot.get();
}

Var* ResourceMgr::Lookup(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = vars_.find(name);
  return it == vars_.end() ? nullptr : it->second.get();
}

std::vector<std::string> ResourceMgr::Names() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, var] : vars_) names.push_back(name);
  return names;
}

}  // namespace gradserve
