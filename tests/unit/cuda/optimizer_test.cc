// The CUDA optimizer steps (runtime/kernels/cuda/optimizer_ops.cc) against the
// CPU kernels of the same nodes: the variables are made through the ops'
// handle path (VarHandleOp, AssignVariableOp, ReadVariableOp) in one
// ResourceMgr per device, start from the same random values, take five steps
// with the same fresh gradients and hyperparameters, and must agree after each
// (1e-5 relative). On the GPU the variable itself starts in host memory (as
// after a checkpoint restore) and the step moves it (EnsureOnDevice); its
// slots are assigned on the GPU. A snapshot read before a step keeps its value
// (copy-on-write). Bad inputs get the CPU kernel's code and message.
#ifdef GRADSERVE_HAVE_CUDA

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "runtime/kernel.h"
#include "runtime/resource.h"
#include "tests/unit/cuda/cuda_test_util.h"
#include "tests/unit/ops/op_test_util.h"
#include "tests/unit/runtime/optimizer_test_util.h"

namespace gradserve {
namespace {

using testing::ForGpu;
using testing::FromTensor;
using testing::Gpu;
using ::testing::HasSubstr;
using testing::OnHost;
using testing::OptimizerScalarNames;
using testing::OptimizerVariableNames;
using testing::RefTensor;
using testing::RunKernel;
using testing::ToTensor;

// The hyperparameters of step t (1-based) as float32 scalars.
std::map<std::string, Tensor> Hyperparameters(int t) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, value] : testing::OptimizerHyperparameters(t)) {
    out[name] = Tensor::Scalar<float>(static_cast<float>(value));
  }
  return out;
}

// The variables and the step of one op in a resource manager of one device.
struct Side {
  explicit Side(Device* d) : device(d) {}
  Device* device;
  ResourceMgr resources;
  std::vector<Tensor> handles;  // per VariableNames, host memory
};

// The graph of one optimizer step: per variable X a VarHandleOp "X", an
// AssignVariableOp "X_init" of placeholder "X_value" and a ReadVariableOp;
// scalars and grad are placeholders of unknown shape (so that bad shapes
// reach the kernels). With same_var, Momentum's accum is its var.
class OptimizerFixture {
 public:
  OptimizerFixture(std::string op, const Shape& shape, bool nesterov, bool same_var = false)
      : op_(std::move(op)) {
    Scope s(&graph_);
    for (const std::string& name : OptimizerVariableNames(op_)) {
      Output handle = ops::VarHandleOp(s.WithName(name), DType::kFloat, shape);
      handles_.push_back(handle);
      assigns_.push_back(ops::AssignVariableOp(
          s.WithName(name + "_init"), handle,
          ops::Placeholder(s.WithName(name + "_value"), DType::kFloat, shape)));
      reads_.push_back(ops::ReadVariableOp(s.WithName(name + "_read"), handle, DType::kFloat));
    }
    auto in = [&](const std::string& name) {
      return ops::Placeholder(s.WithName(name), DType::kFloat);
    };
    const Output grad = in("grad");
    if (op_ == "ResourceApplyGradientDescent") {
      step_ = ops::ResourceApplyGradientDescent(s.WithName("step"), handles_[0], in("alpha"), grad);
    } else if (op_ == "ResourceApplyMomentum") {
      step_ = ops::ResourceApplyMomentum(s.WithName("step"), handles_[0],
                                         same_var ? handles_[0] : handles_[1], in("lr"), grad,
                                         in("momentum"), {.use_nesterov = nesterov});
    } else {
      step_ = ops::ResourceApplyAdam(s.WithName("step"), handles_[0], handles_[1], handles_[2],
                                     in("beta1_power"), in("beta2_power"), in("lr"), in("beta1"),
                                     in("beta2"), in("epsilon"), grad, {.use_nesterov = nesterov});
    }
    EXPECT_TRUE(s.ok()) << s.status();
  }

  // Makes the variables on both sides (VarHandleOp on each side's device) and
  // assigns values[k] to variable k (none: leave it uninitialized). On the
  // GPU side the variable is assigned in host memory, its slots on the GPU.
  void Initialize(const std::vector<Tensor>& values) {
    for (Side* side : {&cpu_, &gpu_}) {
      for (size_t k = 0; k < handles_.size(); ++k) {
        absl::StatusOr<std::vector<Tensor>> handle =
            RunKernel(*handles_[k].node, side->device, {}, &side->resources);
        ASSERT_TRUE(handle.ok()) << handle.status();
        side->handles.push_back((*handle)[0]);
        if (!values[k].initialized()) continue;
        const bool on_gpu = side == &gpu_ && k > 0;
        absl::StatusOr<std::vector<Tensor>> assigned =
            on_gpu
                ? RunKernel(*assigns_[k], Gpu(),
                            ForGpu(*assigns_[k], {side->handles[k], values[k]}), &side->resources)
                : RunKernel(*assigns_[k], testing::Cpu(), {side->handles[k], values[k]},
                            &side->resources);
        ASSERT_TRUE(assigned.ok()) << assigned.status();
      }
    }
  }

  // Runs the step on one side with the hyperparameters `h` and `grad` (host
  // tensors; the GPU side gets copies in device memory).
  absl::Status Step(bool on_gpu, const std::map<std::string, Tensor>& h, const Tensor& grad) {
    Side& side = on_gpu ? gpu_ : cpu_;
    const std::vector<Tensor>& v = side.handles;
    std::vector<Tensor> inputs;
    if (op_ == "ResourceApplyGradientDescent") {
      inputs = {v[0], h.at("alpha"), grad};
    } else if (op_ == "ResourceApplyMomentum") {
      inputs = {v[0], v[1], h.at("lr"), grad, h.at("momentum")};
    } else {
      inputs = {v[0],       v[1],          v[2],          h.at("beta1_power"), h.at("beta2_power"),
                h.at("lr"), h.at("beta1"), h.at("beta2"), h.at("epsilon"),     grad};
    }
    if (on_gpu) inputs = ForGpu(*step_, inputs);
    return RunKernel(*step_, side.device, inputs, &side.resources).status();
  }

  // A snapshot of variable k (sharing its buffer) through ReadVariableOp.
  Tensor Read(bool on_gpu, size_t k) {
    Side& side = on_gpu ? gpu_ : cpu_;
    absl::StatusOr<std::vector<Tensor>> got =
        RunKernel(*reads_[k].node, side.device, {side.handles[k]}, &side.resources);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? (*got)[0] : Tensor();
  }

  // The device holding variable k's value on the GPU side.
  std::string GpuVarDevice(size_t k) {
    Var* var = VarFromHandle(gpu_.handles[k]).value();
    return std::string(var->Read().value().device());
  }

  size_t num_vars() const { return handles_.size(); }

 private:
  std::string op_;
  Graph graph_;
  std::vector<Output> handles_, reads_;
  std::vector<Node*> assigns_;
  Node* step_ = nullptr;
  Side cpu_{testing::Cpu()}, gpu_{Gpu()};
};

// OptimizerInitialState in float32.
std::vector<Tensor> InitialValues(const std::string& op, const Shape& shape) {
  std::vector<Tensor> out;
  for (const RefTensor& r : testing::OptimizerInitialState(op, shape)) {
    out.push_back(ToTensor(r, DType::kFloat));
  }
  return out;
}

void ExpectFiveStepsMatchTheCpu(const std::string& op, const Shape& shape, bool nesterov) {
  SCOPED_TRACE(absl::StrCat(op, " ", shape.DebugString(), nesterov ? " nesterov" : "", " seed ",
                            testing::Seed()));
  OptimizerFixture f(op, shape, nesterov);
  f.Initialize(InitialValues(op, shape));
  std::vector<Tensor> held;            // GPU snapshots read before the step
  std::vector<RefTensor> held_values;  // and their values then
  for (int t = 1; t <= 5; ++t) {
    const Tensor grad = ToTensor(testing::Random(shape), DType::kFloat);
    const std::map<std::string, Tensor> h = Hyperparameters(t);
    ASSERT_TRUE(f.Step(false, h, grad).ok()) << "step " << t;
    const absl::Status gpu = f.Step(true, h, grad);
    ASSERT_TRUE(gpu.ok()) << "step " << t << ": " << gpu;
    for (size_t k = 0; k < f.num_vars(); ++k) {
      EXPECT_EQ(f.GpuVarDevice(k), Gpu()->name()) << "variable " << k;
    }
    for (size_t k = 0; k < held.size(); ++k) {
      EXPECT_EQ(FromTensor(OnHost(held[k])).v, held_values[k].v)
          << "snapshot " << k << " changed by step " << t;
    }
    held.clear();
    held_values.clear();
    for (size_t k = 0; k < f.num_vars(); ++k) {
      const RefTensor want = FromTensor(f.Read(false, k));
      held.push_back(f.Read(true, k));
      ASSERT_EQ(held.back().device(), Gpu()->name());
      held_values.push_back(FromTensor(OnHost(held.back())));
      const RefTensor& got = held_values.back();
      ASSERT_EQ(got.shape, shape);
      for (int64_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got.v[i], want.v[i], 1e-5 * std::max(1.0, std::abs(want.v[i])))
            << "variable " << k << " [" << i << "] after step " << t;
      }
    }
  }
}

// Runs without a GPU: what is registered, and where its arguments live.
TEST(CudaOptimizerTest, RegistersFloatStepsWithHostHandles) {
  const KernelRegistry& r = KernelRegistry::Global();
  for (const char* op :
       {"ResourceApplyGradientDescent", "ResourceApplyMomentum", "ResourceApplyAdam"}) {
    EXPECT_TRUE(r.Supports(op, kDeviceCuda, DType::kFloat)) << op;
    EXPECT_FALSE(r.Supports(op, kDeviceCuda, DType::kDouble)) << op;
  }
}

TEST(CudaOptimizerTest, GradientDescentMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (const Shape& shape : {Shape{3, 4}, Shape{37, 1001}, Shape{}}) {
    ExpectFiveStepsMatchTheCpu("ResourceApplyGradientDescent", shape, false);
  }
}

TEST(CudaOptimizerTest, MomentumMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (bool nesterov : {false, true}) {
    for (const Shape& shape : {Shape{3, 4}, Shape{37, 1001}}) {
      ExpectFiveStepsMatchTheCpu("ResourceApplyMomentum", shape, nesterov);
    }
  }
}

TEST(CudaOptimizerTest, AdamMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  for (bool nesterov : {false, true}) {
    for (const Shape& shape : {Shape{3, 4}, Shape{37, 1001}}) {
      ExpectFiveStepsMatchTheCpu("ResourceApplyAdam", shape, nesterov);
    }
  }
}

// Both kernels reject the step with the same code; the GPU's message (which
// names the node) contains the CPU's.
void ExpectSameRejection(const std::string& name, OptimizerFixture& f,
                         const std::map<std::string, Tensor>& h, const Tensor& grad) {
  SCOPED_TRACE(name);
  const absl::Status cpu = f.Step(false, h, grad);
  ASSERT_FALSE(cpu.ok());
  const absl::Status gpu = f.Step(true, h, grad);
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.code(), cpu.code()) << gpu << " vs " << cpu;
  EXPECT_THAT(gpu.message(), HasSubstr(cpu.message()));
}

TEST(CudaOptimizerTest, RejectsWhatTheCpuRejects) {
  SKIP_WITHOUT_GPU();
  const Shape shape{3, 4};
  const Tensor grad = ToTensor(testing::Random(shape), DType::kFloat);
  const Tensor wrong_grad = ToTensor(testing::Random(Shape{4, 3}), DType::kFloat);
  for (const char* op :
       {"ResourceApplyGradientDescent", "ResourceApplyMomentum", "ResourceApplyAdam"}) {
    OptimizerFixture f(op, shape, false);
    f.Initialize(InitialValues(op, shape));
    ExpectSameRejection(absl::StrCat(op, " grad [4,3]"), f, Hyperparameters(1), wrong_grad);
    for (const std::string& name : OptimizerScalarNames(op)) {
      std::map<std::string, Tensor> h = Hyperparameters(1);
      h[name] = ToTensor(testing::Random(Shape{2}), DType::kFloat);
      ExpectSameRejection(absl::StrCat(op, " ", name, " [2]"), f, h, grad);
    }
  }
  for (const char* op : {"ResourceApplyMomentum", "ResourceApplyAdam"}) {
    OptimizerFixture f(op, shape, false);
    std::vector<Tensor> values = InitialValues(op, shape);
    values[1] = Tensor();  // accum or m never assigned
    f.Initialize(values);
    ExpectSameRejection(absl::StrCat(op, " uninitialized slot"), f, Hyperparameters(1), grad);
  }
  OptimizerFixture same("ResourceApplyMomentum", shape, false, /*same_var=*/true);
  same.Initialize(InitialValues("ResourceApplyMomentum", shape));
  ExpectSameRejection("Momentum var == accum", same, Hyperparameters(1), grad);
}

}  // namespace
}  // namespace gradserve

#endif  // GRADSERVE_HAVE_CUDA
