#include "runtime/kernel.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

Tensor* OpKernelContext::forward_input_or_allocate_output(int input, int i, const Shape& shape,
                                                          DType dtype) {
  if (input < static_cast<int>(owned_inputs_.size()) && owned_inputs_[input] != nullptr) {
    Tensor& in = *owned_inputs_[input];
    if (in.RefCountIsOne() && in.num_elements() == shape.num_elements() &&
        DTypeSize(in.dtype()) == DTypeSize(dtype) && in.dtype() == dtype &&
        in.device() == device_->allocator()->device_name()) {
      absl::StatusOr<Tensor> reshaped = in.Reshaped(shape);
      if (reshaped.ok()) {
        outputs_[i] = *std::move(reshaped);
        return &outputs_[i];
      }
    }
  }
  return allocate_output(i, shape, dtype);
}

absl::Status KernelRegistry::Register(KernelDef def) {
  for (const KernelDef& d : defs_) {
    if (d.op != def.op || d.device_type != def.device_type) continue;
    for (DType t : def.types) {
      if (std::find(d.types.begin(), d.types.end(), t) != d.types.end() ||
          d.types.empty() || def.types.empty()) {
        return absl::AlreadyExistsError(absl::StrCat("kernel ", def.op, " on ",
                                                     def.device_type, " for ", DTypeName(t),
                                                     " registered twice"));
      }
    }
  }
  defs_.push_back(std::move(def));
  return absl::OkStatus();
}

absl::StatusOr<const KernelDef*> KernelRegistry::Find(const Node& node,
                                                      absl::string_view device_type) const {
  DType wanted = DType::kInvalid;
  bool any_for_op = false;
  for (const KernelDef& d : defs_) {
    if (d.op != node.op() || d.device_type != device_type) continue;
    any_for_op = true;
    if (d.type_attr.empty()) return &d;
    absl::StatusOr<DType> t = node.GetAttr<DType>(d.type_attr);
    if (!t.ok()) continue;
    wanted = *t;
    if (std::find(d.types.begin(), d.types.end(), *t) != d.types.end()) return &d;
  }
  if (!any_for_op) {
    return absl::NotFoundError(
        absl::StrCat("no ", device_type, " kernel for op ", node.op()));
  }
  return absl::NotFoundError(absl::StrCat("no ", device_type, " kernel for op ", node.op(),
                                          " with dtype ", DTypeName(wanted)));
}

bool KernelRegistry::Supports(absl::string_view op, absl::string_view device_type,
                              DType dtype) const {
  for (const KernelDef& d : defs_) {
    if (d.op != op || d.device_type != device_type) continue;
    if (dtype == DType::kInvalid || d.type_attr.empty()) return true;
    if (std::find(d.types.begin(), d.types.end(), dtype) != d.types.end()) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<OpKernel>> KernelRegistry::CreateKernel(
    const Node& node, absl::string_view device_type) const {
  GS_ASSIGN_OR_RETURN(const KernelDef* def, Find(node, device_type));
  return def->factory(node);
}

const KernelRegistry& KernelRegistry::Global() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry;
    absl::Status status = RegisterCpuKernels(*r);
#ifdef GRADSERVE_HAVE_CUDA
    if (status.ok()) status = RegisterCudaKernels(*r);
#endif
    if (!status.ok()) {
      fprintf(stderr, "kernel registration failed: %s\n", std::string(status.message()).c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

absl::Status RegisterCpuKernels(KernelRegistry& registry) {
  GS_RETURN_IF_ERROR(RegisterCpuMathKernels(registry));
  GS_RETURN_IF_ERROR(RegisterCpuReductionKernels(registry));
  GS_RETURN_IF_ERROR(RegisterCpuNnKernels(registry));
  GS_RETURN_IF_ERROR(RegisterCpuArrayKernels(registry));
  GS_RETURN_IF_ERROR(RegisterCpuStateKernels(registry));
  GS_RETURN_IF_ERROR(RegisterCpuOptimizerKernels(registry));
  return absl::OkStatus();
}

}  // namespace gradserve
