// Every op-conformance case of tests/unit/ops run on the GPU: a session whose
// default device is cuda:0 places the op there (with copies for its inputs
// and outputs, Note [Copy nodes]), and its float32 outputs must match the
// same case run on the CPU (1e-5 relative elementwise; 1e-4 for matrix
// products, convolutions and reductions; cuBLAS in IEEE math). Also, without
// a GPU: every op with a float32 CPU kernel has a CUDA kernel, except the
// listed ones.
#ifdef GRADSERVE_HAVE_CUDA

#include <map>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/kernel.h"
#include "tests/unit/cuda/cuda_test_util.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

// Ops that run on the host by design, with why.
const std::map<std::string, std::string>& HostOnlyOps() {
  static const auto* ops = new std::map<std::string, std::string>{
      {"Placeholder", "fed: its value is the host tensor the caller passes"},
      {"PlaceholderWithDefault", "a default fed from the host"},
      {"BroadcastGradientArgs", "shape arithmetic on int32 shapes, read on the host"},
  };
  return *ops;
}

std::vector<OpCase> AllCases() {
  std::vector<OpCase> all;
  for (auto family : {MathOpCases, ReductionOpCases, NnOpCases, ArrayOpCases, StateOpCases}) {
    for (OpCase& c : family()) all.push_back(std::move(c));
  }
  return all;
}

// The relative tolerance of a float32 GPU result against the CPU's.
double Tolerance(const std::string& op) {
  static const std::set<std::string> sums = {
      "MatMul", "BatchMatMulV2", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter",
      "Sum", "Mean", "L2Loss", "BiasAddGrad", "Softmax", "LogSoftmax",
      "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits",
      "FusedBatchNormV3", "FusedBatchNormGradV3", "AvgPool", "AvgPoolGrad", "AddN",
      "UnsortedSegmentSum", "Pow"};
  return sums.contains(op) ? 1e-4 : 1e-5;
}

TEST(GpuConformanceTest, EveryFloatOpHasACudaKernel) {
  std::set<std::string> missing;
  for (const OpCase& c : AllCases()) {
    if (HostOnlyOps().contains(c.op)) continue;
    const bool float_case =
        std::find(c.dtypes.begin(), c.dtypes.end(), DType::kFloat) != c.dtypes.end();
    if (!float_case || !KernelRegistry::Global().Supports(c.op, kDeviceCpu, DType::kFloat)) {
      continue;
    }
    if (!KernelRegistry::Global().Supports(c.op, kDeviceCuda, DType::kFloat)) missing.insert(c.op);
  }
  EXPECT_THAT(missing, ::testing::IsEmpty())
      << "ops with a float32 CPU kernel but no CUDA kernel (add one, or list the op in "
         "HostOnlyOps with the reason)";
}

TEST(GpuConformanceTest, EveryCaseMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  int ran = 0;
  for (const OpCase& c : AllCases()) {
    if (!c.expect_error.empty()) continue;
    if (std::find(c.dtypes.begin(), c.dtypes.end(), DType::kFloat) == c.dtypes.end()) continue;
    if (HostOnlyOps().contains(c.op)) continue;
    SCOPED_TRACE(absl::StrCat("op ", c.op, " case ", c.name, " seed ", Seed()));
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      const DType d = i < c.input_dtypes.size() && c.input_dtypes[i] != DType::kInvalid
                          ? c.input_dtypes[i]
                          : DType::kFloat;
      inputs.push_back(ToTensor(c.inputs[i], d));
    }
    AttrMap attrs = c.attrs;
    if (c.typed_attrs) {
      for (auto& [k, v] : c.typed_attrs(DType::kFloat)) attrs[k] = v;
    }
    absl::StatusOr<OpResult> want = RunOp(c.op, inputs, attrs, c.constant);
    ASSERT_TRUE(want.ok()) << want.status();
    std::string placed;
    SessionOptions gpu{.intra_op_threads = 2, .gpu = GpuOptions{}};
    gpu.on_placement = [&placed](const RunSignature&, const ExecutionPlan& plan) {
      for (size_t i = 0; i < plan.nodes.size(); ++i) {
        if (plan.nodes[i]->name() == "op") placed = plan.devices[i]->name();
      }
    };
    absl::StatusOr<OpResult> got = RunOp(c.op, inputs, attrs, c.constant, gpu);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(placed, "cuda:0") << "the op was not placed on the GPU";
    ASSERT_EQ(got->outputs.size(), want->outputs.size());
    for (size_t o = 0; o < want->outputs.size(); ++o) {
      const Tensor& g = got->outputs[o];
      const Tensor& w = want->outputs[o];
      ASSERT_TRUE(g.host_accessible()) << "fetches come back in host memory";
      ASSERT_EQ(g.shape(), w.shape()) << "output " << o;
      ASSERT_EQ(g.dtype(), w.dtype()) << "output " << o;
      if (w.dtype() == DType::kResource) continue;
      const RefTensor gr = FromTensor(g), wr = FromTensor(w);
      const bool exact = w.dtype() != DType::kFloat;
      for (int64_t i = 0; i < wr.size(); ++i) {
        if (std::isnan(wr.v[i]) && std::isnan(gr.v[i])) continue;
        const double tol = exact ? 0 : Tolerance(c.op) * std::max(1.0, std::abs(wr.v[i]));
        ASSERT_NEAR(gr.v[i], wr.v[i], tol) << "output " << o << " element " << i;
      }
    }
    ++ran;
  }
  EXPECT_GT(ran, 100);
}

}  // namespace
}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
