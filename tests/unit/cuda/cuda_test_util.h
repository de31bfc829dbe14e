// Helpers for the CUDA kernel tests (gradserve_cuda_tests): the GPU, a skip
// without one, running one node's kernel on a device, and the comparison of a
// node's CUDA kernel with its CPU kernel on the same host inputs.
#pragma once

#ifdef GRADSERVE_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "graph/builder/ops.h"
#include "graph/status.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/kernel.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

// The first GPU, or nullptr (the test then skips).
inline CudaDevice* Gpu() {
  static CudaDevice* gpu = [] {
    auto d = CudaDevice::Create({});
    return d.ok() ? d->release() : nullptr;
  }();
  return gpu;
}

inline Device* Cpu() {
  static CpuDevice* cpu = CpuDevice::Create({}).value().release();
  return cpu;
}

#define SKIP_WITHOUT_GPU() \
  if (::gradserve::testing::Gpu() == nullptr) GTEST_SKIP() << CudaUnavailableReason()

// Runs `node`'s kernel for `device` once on `inputs` (each already where the
// kernel wants it) with `resources` (variables), waits for the device, and
// returns every output.
inline absl::StatusOr<std::vector<Tensor>> RunKernel(const Node& node, Device* device,
                                                     const std::vector<Tensor>& inputs,
                                                     ResourceMgr* resources = nullptr) {
  ResourceMgr local;
  GS_ASSIGN_OR_RETURN(auto kernel, KernelRegistry::Global().CreateKernel(node, device->type()));
  OpKernelContext ctx(device, resources != nullptr ? resources : &local, node.num_outputs());
  absl::InlinedVector<const Tensor*, 4> in;
  for (const Tensor& t : inputs) in.push_back(&t);
  ctx.set_inputs(std::move(in));
  GS_RETURN_IF_ERROR(kernel->Compute(ctx));
  GS_RETURN_IF_ERROR(device->Synchronize());
  return std::vector<Tensor>(ctx.outputs().begin(), ctx.outputs().end());
}

// `t` in host memory (a copy when it is on the GPU).
inline Tensor OnHost(const Tensor& t) {
  if (t.host_accessible()) return t;
  return Gpu()->CopyToHost(t).value();
}

// `inputs` placed as `node`'s CUDA kernel wants them: host-memory inputs stay
// on the host, the others are copied to the GPU.
inline std::vector<Tensor> ForGpu(const Node& node, const std::vector<Tensor>& inputs) {
  const KernelDef* def = KernelRegistry::Global().Find(node, kDeviceCuda).value();
  std::vector<Tensor> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (def->HostMemoryInput(static_cast<int>(i), static_cast<int>(inputs.size()))) {
      out.push_back(inputs[i]);
    } else {
      out.push_back(Gpu()->CopyFromHost(inputs[i]).value());
    }
  }
  return out;
}

// One op case: placeholders of `inputs`' dtypes and shapes, the node built
// on them, compared on every output.
struct GpuCase {
  std::string name;
  std::vector<Tensor> inputs;  // host tensors, any dtype
  std::function<Output(const Scope&, const std::vector<Output>&)> build;
  double tolerance = 1e-5;  // relative, against max(1, |cpu|)
};

// Random float32 host tensors of `shapes`, uniform in [lo, hi].
inline std::vector<Tensor> RandomFloats(const std::vector<Shape>& shapes, double lo = -2,
                                        double hi = 2) {
  std::vector<Tensor> out;
  for (const Shape& s : shapes) out.push_back(ToTensor(Random(s, lo, hi), DType::kFloat));
  return out;
}

// The CUDA kernel's outputs equal the CPU kernel's (shapes exactly, values
// within the tolerance; integer and bool outputs exactly).
inline void ExpectGpuMatchesCpu(const GpuCase& c) {
  SCOPED_TRACE(c.name);
  Graph graph;
  Scope s(&graph);
  std::vector<Output> in;
  for (const Tensor& t : c.inputs) in.push_back(ops::Placeholder(s, t.dtype(), t.shape()));
  Output out = c.build(s, in);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::vector<Tensor>> want = RunKernel(*out.node, Cpu(), c.inputs);
  ASSERT_TRUE(want.ok()) << want.status();
  absl::StatusOr<std::vector<Tensor>> got =
      RunKernel(*out.node, Gpu(), ForGpu(*out.node, c.inputs));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), want->size());
  for (size_t o = 0; o < want->size(); ++o) {
    const Tensor back = OnHost((*got)[o]);
    ASSERT_EQ(back.shape(), (*want)[o].shape()) << "output " << o;
    ASSERT_EQ(back.dtype(), (*want)[o].dtype()) << "output " << o;
    const RefTensor g = FromTensor(back), w = FromTensor((*want)[o]);
    const bool exact = back.dtype() != DType::kFloat && back.dtype() != DType::kDouble;
    for (int64_t i = 0; i < w.size(); ++i) {
      const double tol = exact ? 0 : c.tolerance * std::max(1.0, std::abs(w.v[i]));
      ASSERT_NEAR(g.v[i], w.v[i], tol) << "output " << o << " element " << i;
    }
  }
}

}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
