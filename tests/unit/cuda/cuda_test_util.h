// Helpers for the CUDA kernel tests (gradserve_cuda_tests): the GPU, a skip
// without one, building one node on placeholders and running its kernel on a
// device, the comparison of a node's CUDA kernel with its CPU kernel on the
// same host inputs (results, or rejections), and NHWC <-> NCHW on the host.
#pragma once

#ifdef GRADSERVE_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "gmock/gmock.h"
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

// Makes a node on the placeholders it is given, one per input.
using NodeBuilder = std::function<Output(const Scope&, const std::vector<Output>&)>;

// The node `build` makes in `graph` on placeholders of `inputs`' dtypes and
// shapes or, with `unknown_shapes`, of unknown shape (the graph then builds and
// only the kernels judge the inputs). The scope's error when building fails.
inline absl::StatusOr<const Node*> BuildNode(Graph* graph, const std::vector<Tensor>& inputs,
                                             const NodeBuilder& build,
                                             bool unknown_shapes = false) {
  Scope s(graph);
  std::vector<Output> in;
  for (const Tensor& t : inputs) {
    in.push_back(ops::Placeholder(s, t.dtype(), unknown_shapes ? Shape::UnknownRank() : t.shape()));
  }
  Output out = build(s, in);
  GS_RETURN_IF_ERROR(s.status());
  return out.node;
}

// Output 0 of the node `build` makes on placeholders of `inputs` (as in
// BuildNode), run by the kernel of `device` (Cpu() or Gpu(): the inputs placed
// as it wants them), in host memory.
inline absl::StatusOr<Tensor> RunNode(Device* device, const std::vector<Tensor>& inputs,
                                      const NodeBuilder& build, bool unknown_shapes = false) {
  Graph graph;
  GS_ASSIGN_OR_RETURN(const Node* node, BuildNode(&graph, inputs, build, unknown_shapes));
  GS_ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                      RunKernel(*node, device, device == Cpu() ? inputs : ForGpu(*node, inputs)));
  return OnHost(outputs[0]);
}

// One op case: placeholders of `inputs`' dtypes and shapes, the node built
// on them, compared on every output.
struct GpuCase {
  std::string name;
  std::vector<Tensor> inputs;  // host tensors, any dtype
  NodeBuilder build;
  double tolerance = 1e-5;  // relative, against max(1, |cpu|)
};

// Random float32 host tensors of `shapes`, uniform in [lo, hi].
inline std::vector<Tensor> RandomFloats(const std::vector<Shape>& shapes, double lo = -2,
                                        double hi = 2) {
  std::vector<Tensor> out;
  for (const Shape& s : shapes) out.push_back(ToTensor(Random(s, lo, hi), DType::kFloat));
  return out;
}

// `got` (in any memory) equals `want`: dtype and shape exactly, floating
// values within `tolerance` relative to max(1, |want|), others exactly. The
// failure names the first element that differs.
inline ::testing::AssertionResult TensorsNear(const Tensor& got, const Tensor& want,
                                              double tolerance) {
  const Tensor back = OnHost(got);
  if (back.dtype() != want.dtype() || back.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << DTypeName(back.dtype()) << back.shape().DebugString() << " where "
           << DTypeName(want.dtype()) << want.shape().DebugString() << " was expected";
  }
  const RefTensor g = FromTensor(back), w = FromTensor(want);
  const bool exact = want.dtype() != DType::kFloat && want.dtype() != DType::kDouble;
  for (int64_t i = 0; i < w.size(); ++i) {
    const double tol = exact ? 0 : tolerance * std::max(1.0, std::abs(w.v[i]));
    if (!(std::abs(g.v[i] - w.v[i]) <= tol)) {
      return ::testing::AssertionFailure() << "element " << i << ": " << g.v[i] << " where "
                                           << w.v[i] << " was expected (tolerance " << tol << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// The CUDA kernel's outputs equal the CPU kernel's (shapes exactly, values
// within the tolerance; integer and bool outputs exactly).
inline void ExpectGpuMatchesCpu(const GpuCase& c) {
  SCOPED_TRACE(c.name);
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(&graph, c.inputs, c.build);
  ASSERT_TRUE(node.ok()) << node.status();
  absl::StatusOr<std::vector<Tensor>> want = RunKernel(**node, Cpu(), c.inputs);
  ASSERT_TRUE(want.ok()) << want.status();
  absl::StatusOr<std::vector<Tensor>> got = RunKernel(**node, Gpu(), ForGpu(**node, c.inputs));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), want->size());
  for (size_t o = 0; o < want->size(); ++o) {
    ASSERT_TRUE(TensorsNear((*got)[o], (*want)[o], c.tolerance)) << "output " << o;
  }
}

// What ExpectSameRejection asks of the CUDA kernel's error message.
enum class GpuMessage {
  kAny,       // any message: the status codes alone must agree
  kSame,      // the CPU kernel's message
  kContains,  // one containing the CPU kernel's (the GPU's names the node too)
};

// The CPU and CUDA kernels of the node `build` makes both reject `inputs`, fed
// to placeholders of unknown shape (so that only the kernels judge them), with
// the same status code, and their messages agree as `message` says.
inline void ExpectSameRejection(const std::string& name, const std::vector<Tensor>& inputs,
                                const NodeBuilder& build, GpuMessage message) {
  SCOPED_TRACE(name);
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(&graph, inputs, build, /*unknown_shapes=*/true);
  ASSERT_TRUE(node.ok()) << node.status();
  absl::StatusOr<std::vector<Tensor>> cpu = RunKernel(**node, Cpu(), inputs);
  ASSERT_FALSE(cpu.ok());
  absl::StatusOr<std::vector<Tensor>> gpu = RunKernel(**node, Gpu(), ForGpu(**node, inputs));
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.status().code(), cpu.status().code()) << gpu.status() << " vs " << cpu.status();
  if (message == GpuMessage::kSame) {
    EXPECT_EQ(gpu.status().message(), cpu.status().message());
  } else if (message == GpuMessage::kContains) {
    EXPECT_THAT(gpu.status().message(), ::testing::HasSubstr(cpu.status().message()));
  }
}

// The CPU and CUDA kernels of the node `build` makes both reject `inputs`, fed
// to placeholders of unknown shape (so that only the kernels judge them), with
// `code`; the CUDA kernel's message contains `what` (when not empty).
inline void ExpectBothReject(const std::string& name, const std::vector<Tensor>& inputs,
                             const NodeBuilder& build, absl::StatusCode code,
                             const std::string& what = "") {
  SCOPED_TRACE(name);
  Graph graph;
  absl::StatusOr<const Node*> node = BuildNode(&graph, inputs, build, /*unknown_shapes=*/true);
  ASSERT_TRUE(node.ok()) << node.status();
  absl::StatusOr<std::vector<Tensor>> cpu = RunKernel(**node, Cpu(), inputs);
  EXPECT_EQ(cpu.status().code(), code) << cpu.status();
  absl::StatusOr<std::vector<Tensor>> gpu = RunKernel(**node, Gpu(), ForGpu(**node, inputs));
  EXPECT_EQ(gpu.status().code(), code) << gpu.status();
  if (!what.empty()) {
    EXPECT_THAT(gpu.status().message(), ::testing::HasSubstr(what));
  }
}

// A float32 host tensor NHWC -> NCHW (`to_nchw`), or NCHW -> NHWC.
inline Tensor Transposed(const Tensor& t, bool to_nchw) {
  const int64_t b = t.dim(0), c = to_nchw ? t.dim(3) : t.dim(1);
  const int64_t h = to_nchw ? t.dim(1) : t.dim(2), w = to_nchw ? t.dim(2) : t.dim(3);
  Tensor out(DType::kFloat, to_nchw ? Shape{b, c, h, w} : Shape{b, h, w, c});
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t n = 0; n < b; ++n) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        for (int64_t ch = 0; ch < c; ++ch) {
          const int64_t nhwc = ((n * h + y) * w + x) * c + ch,
                        nchw = ((n * c + ch) * h + y) * w + x;
          dst[to_nchw ? nchw : nhwc] = src[to_nchw ? nhwc : nchw];
        }
      }
    }
  }
  return out;
}

}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
