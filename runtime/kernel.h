// Kernels: the code that computes one op on one device for one dtype.
//
// Contract (as in TensorFlow's OpKernel): a kernel is constructed once per node
// when an executor is prepared — parse attrs and do expensive setup there — and
// Compute() is then called for every run, possibly from several threads at once,
// so Compute() must not mutate the kernel. Compute() returns a Status instead of
// throwing; the executor prefixes errors with the node's name.
//
// Kernels register per (op, device type, dtype) in a KernelRegistry; the
// registration lists live in runtime/kernels/<device>/<family>_ops.cc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "graph/tensor.h"
#include "runtime/device.h"
#include "runtime/resource.h"

namespace gradserve {

class OpKernelContext;

class OpKernel {
 public:
  explicit OpKernel(const Node& node) : node_(&node) {}
  virtual ~OpKernel() = default;

  virtual absl::Status Compute(OpKernelContext& ctx) const = 0;

  // Cheap kernels (metadata ops, tiny elementwise work) are run inline by the
  // executor rather than handed to the inter-op pool.
  virtual bool IsExpensive() const { return true; }

  const Node& node() const { return *node_; }
  const std::string& name() const { return node_->name(); }

 private:
  const Node* node_;
};

// What Compute() sees: inputs, output slots, the device and the session's
// variables. One context per node execution; not shared across threads.
class OpKernelContext {
 public:
  OpKernelContext(Device* device, ResourceMgr* resources, int num_outputs)
      : device_(device), resources_(resources), outputs_(num_outputs) {}

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  const Tensor& input(int i) const { return *inputs_[i]; }
  void set_inputs(absl::InlinedVector<const Tensor*, 4> inputs) { inputs_ = std::move(inputs); }

  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  // Allocates output i on this device.
  Tensor* allocate_output(int i, const Shape& shape, DType dtype) {
    outputs_[i] = Tensor(device_->allocator(), dtype, shape);
    return &outputs_[i];
  }
  // Output i reuses input `input`'s buffer when nothing else shares it (the
  // kernel may then write in place), else gets a new buffer. Shapes must have
  // the same element count and dtypes the same size.
  Tensor* forward_input_or_allocate_output(int input, int i, const Shape& shape, DType dtype);
  void set_output(int i, Tensor t) { outputs_[i] = std::move(t); }
  Tensor& output(int i) { return outputs_[i]; }
  absl::InlinedVector<Tensor, 2>& outputs() { return outputs_; }

  Device* device() const { return device_; }
  ResourceMgr* resources() const { return resources_; }

  // Lets the executor hand over inputs it owns exclusively (enables forwarding).
  void set_forwardable(absl::InlinedVector<Tensor*, 4> owned) { owned_inputs_ = std::move(owned); }

 private:
  Device* device_;
  ResourceMgr* resources_;
  absl::InlinedVector<const Tensor*, 4> inputs_;
  // Non-null where the executor holds the last reference to input i.
  absl::InlinedVector<Tensor*, 4> owned_inputs_;
  // Inline: most ops have one or two outputs, and a run should not allocate for them.
  absl::InlinedVector<Tensor, 2> outputs_;
};

using KernelFactory = std::function<absl::StatusOr<std::unique_ptr<OpKernel>>(const Node&)>;

struct KernelDef {
  std::string op;
  absl::string_view device_type;
  // The node attr that selects the dtype ("T", "dtype", "SrcT"); "" = any node.
  std::string type_attr;
  std::vector<DType> types;
  KernelFactory factory;
  // Inputs the kernel reads on the host (shapes, axes, permutations) and
  // outputs it writes on the host (Shape, resource handles), though it runs on
  // a device: placement copies such tensors to and from host memory, not the
  // device's (TensorFlow's HostMemory). Indices into the node's inputs/outputs;
  // a negative input index counts from the end (-1: the last input, e.g.
  // ConcatV2's axis after its N values).
  std::vector<int> host_memory_inputs;
  std::vector<int> host_memory_outputs;

  // Whether input `i` of a node with `num_inputs` inputs is in host memory.
  bool HostMemoryInput(int i, int num_inputs) const {
    for (int h : host_memory_inputs) {
      if (h == i || h == i - num_inputs) return true;
    }
    return false;
  }
};

// Where a device kernel wants some of its arguments (KernelDef's fields).
struct HostMemory {
  std::vector<int> inputs;
  std::vector<int> outputs;
};

// Thread safety: built once at start-up, then read concurrently.
class KernelRegistry {
 public:
  absl::Status Register(KernelDef def);
  // The kernel def for `node` on `device_type`, or NotFound naming op and dtype.
  absl::StatusOr<const KernelDef*> Find(const Node& node, absl::string_view device_type) const;
  // True when some kernel implements `op` for `dtype` on `device_type`
  // (dtype kInvalid: for any dtype).
  bool Supports(absl::string_view op, absl::string_view device_type,
                DType dtype = DType::kInvalid) const;
  // Instantiates the kernel for `node` on `device_type`.
  absl::StatusOr<std::unique_ptr<OpKernel>> CreateKernel(const Node& node,
                                                         absl::string_view device_type) const;

  // Every kernel of every device compiled in (CPU, and CUDA when built with
  // GRADSERVE_CUDA), built on first use.
  static const KernelRegistry& Global();

 private:
  std::vector<KernelDef> defs_;
};

// The explicit list of CPU kernel families (runtime/kernels/cpu/).
absl::Status RegisterCpuKernels(KernelRegistry& registry);
absl::Status RegisterCpuMathKernels(KernelRegistry& registry);
absl::Status RegisterCpuReductionKernels(KernelRegistry& registry);
absl::Status RegisterCpuNnKernels(KernelRegistry& registry);
absl::Status RegisterCpuArrayKernels(KernelRegistry& registry);
absl::Status RegisterCpuStateKernels(KernelRegistry& registry);
absl::Status RegisterCpuOptimizerKernels(KernelRegistry& registry);
// The CUDA kernels (runtime/kernels/cuda/; built with GRADSERVE_CUDA).
absl::Status RegisterCudaKernels(KernelRegistry& registry);

// Registration helper for templated kernels:
//   RegisterTyped<float, double>(r, "Relu", [](const Node& n) -> ... for each T)
template <typename... Ts>
struct TypeList {};

// Registers `make.template operator()<T>(node)` for each T in Ts under (op, device,
// type_attr). `make` returns absl::StatusOr<std::unique_ptr<OpKernel>>.
template <typename... Ts, typename Make>
absl::Status RegisterTyped(KernelRegistry& registry, std::string op, TypeList<Ts...>,
                           Make make, std::string type_attr = "T",
                           absl::string_view device = kDeviceCpu, HostMemory host = {}) {
  KernelDef def{.op = std::move(op),
                .device_type = device,
                .type_attr = type_attr,
                .host_memory_inputs = std::move(host.inputs),
                .host_memory_outputs = std::move(host.outputs)};
  def.types = {DTypeOf<Ts>::value...};
  def.factory = [make, type_attr](const Node& node)
      -> absl::StatusOr<std::unique_ptr<OpKernel>> {
    absl::StatusOr<DType> t = node.GetAttr<DType>(type_attr);
    if (!t.ok()) return t.status();
    absl::StatusOr<std::unique_ptr<OpKernel>> out =
        absl::InternalError("kernel dtype dispatch failed");
    ((*t == DTypeOf<Ts>::value ? (out = make.template operator()<Ts>(node), true) : false) ||
     ...);
    return out;
  };
  return registry.Register(std::move(def));
}

// Shorthand for a kernel class template K<T> constructed from the node.
template <template <typename> class K, typename... Ts>
absl::Status RegisterKernelClass(KernelRegistry& registry, std::string op, TypeList<Ts...> types,
                                 std::string type_attr = "T",
                                 absl::string_view device = kDeviceCpu, HostMemory host = {}) {
  return RegisterTyped(
      registry, std::move(op), types,
      []<typename T>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        return std::unique_ptr<OpKernel>(new K<T>(node));
      },
      std::move(type_attr), device, std::move(host));
}

// A kernel with no dtype constraint (NoOp, Const, ...).
template <typename K>
absl::Status RegisterUntyped(KernelRegistry& registry, std::string op,
                             absl::string_view device = kDeviceCpu, HostMemory host = {}) {
  return registry.Register(KernelDef{
      .op = std::move(op),
      .device_type = device,
      .factory = [](const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        return std::unique_ptr<OpKernel>(new K(node));
      },
      .host_memory_inputs = std::move(host.inputs),
      .host_memory_outputs = std::move(host.outputs)});
}

}  // namespace gradserve
