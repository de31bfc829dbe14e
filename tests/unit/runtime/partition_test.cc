// Partitioning across memories (Note [Copy nodes], runtime/master.h), on any
// machine: a test accelerator ("TESTACC") stands in for a GPU. Its memory is
// host memory underneath but marked not host-accessible with a device name of
// its own, and its kernels check that every input they get is where the
// partitioner promised. So the plan's copies, the executor's copy items,
// host-memory arguments, fallbacks to the CPU and the results are all
// checked without a GPU; the same cases run on a real GPU in
// tests/unit/cuda/gpu_conformance_test.cc.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "graph/status.h"
#include "gtest/gtest.h"
#include "runtime/executor.h"
#include "runtime/master.h"

namespace gradserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::string_view kTestAcc = "TESTACC";

class AccAllocator final : public Allocator {
 public:
  void* Allocate(size_t bytes) override { return HostAllocator()->Allocate(bytes); }
  void Deallocate(void* p, size_t bytes) override { HostAllocator()->Deallocate(p, bytes); }
  absl::string_view device_name() const override { return "acc:0"; }
  bool host_accessible() const override { return false; }
};

class AccDevice final : public Device {
 public:
  AccDevice() : Device("acc:0", kTestAcc) {}
  Allocator* allocator() override { return &allocator_; }
  absl::StatusOr<Tensor> CopyFromHost(const Tensor& src) override {
    GS_CHECK_ARG(src.host_accessible(), "CopyFromHost of a tensor on ", src.device());
    ++copies_in;
    Tensor t(&allocator_, src.dtype(), src.shape());
    if (src.bytes() > 0) std::memcpy(t.raw_data(), src.raw_data(), src.bytes());
    return t;
  }
  absl::StatusOr<Tensor> CopyToHost(const Tensor& src) override {
    GS_CHECK_ARG(src.device() == "acc:0", "CopyToHost of a tensor on ", src.device());
    ++copies_out;
    Tensor t(src.dtype(), src.shape());
    if (src.bytes() > 0) std::memcpy(t.raw_data(), src.raw_data(), src.bytes());
    return t;
  }
  absl::Status Synchronize() override { return absl::OkStatus(); }
  int intra_op_threads() const override { return 1; }

  std::atomic<int> copies_in{0}, copies_out{0};

 private:
  AccAllocator allocator_;
};

// Fails unless input i is on `device` (or, for host-memory inputs, on the host).
absl::Status ExpectWhere(const OpKernelContext& ctx, int i, bool host) {
  const Tensor& t = ctx.input(i);
  if (host ? t.host_accessible() : t.device() == ctx.device()->name()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("input ", i, " is on ", t.device()));
}

// AddV2 / Mul on the accelerator (float, same shapes).
class AccBinary final : public OpKernel {
 public:
  AccBinary(const Node& node, bool mul) : OpKernel(node), mul_(mul) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(ExpectWhere(ctx, 0, false));
    GS_RETURN_IF_ERROR(ExpectWhere(ctx, 1, false));
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    GS_CHECK_ARG(a.shape() == b.shape(), "shapes differ");
    Tensor* out = ctx.allocate_output(0, a.shape(), DType::kFloat);
    for (int64_t i = 0; i < a.num_elements(); ++i) {
      out->data<float>()[i] =
          mul_ ? a.data<float>()[i] * b.data<float>()[i] : a.data<float>()[i] + b.data<float>()[i];
    }
    return absl::OkStatus();
  }

 private:
  bool mul_;
};

// Reshape with its shape input in host memory.
class AccReshape final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(ExpectWhere(ctx, 0, false));
    GS_RETURN_IF_ERROR(ExpectWhere(ctx, 1, true));
    const Tensor& shape = ctx.input(1);
    std::vector<int64_t> dims(shape.data<int32_t>(), shape.data<int32_t>() + shape.num_elements());
    GS_ASSIGN_OR_RETURN(Tensor out, ctx.input(0).Reshaped(Shape(dims)));
    ctx.set_output(0, std::move(out));
    return absl::OkStatus();
  }
};

// Shape: reads only metadata; its output is written in host memory.
class AccShape final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(ExpectWhere(ctx, 0, false));
    const Shape& s = ctx.input(0).shape();
    Tensor out(HostAllocator(), DType::kInt32, Shape{s.rank()});
    for (int i = 0; i < s.rank(); ++i) out.data<int32_t>()[i] = static_cast<int32_t>(s.dim(i));
    ctx.set_output(0, std::move(out));
    return absl::OkStatus();
  }
};

const KernelRegistry& Kernels() {
  static const KernelRegistry* r = [] {
    auto* r = new KernelRegistry;
    EXPECT_TRUE(RegisterCpuKernels(*r).ok());
    auto add = [r](std::string op, KernelFactory f, std::string attr, HostMemory host) {
      EXPECT_TRUE(r->Register(KernelDef{.op = std::move(op),
                                        .device_type = kTestAcc,
                                        .type_attr = attr,
                                        .types = {DType::kFloat},
                                        .factory = std::move(f),
                                        .host_memory_inputs = host.inputs,
                                        .host_memory_outputs = host.outputs})
                      .ok());
    };
    auto make = [](auto k) -> KernelFactory { return k; };
    add("AddV2", make([](const Node& n) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
          return std::unique_ptr<OpKernel>(new AccBinary(n, false));
        }),
        "T", {});
    add("Mul", make([](const Node& n) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
          return std::unique_ptr<OpKernel>(new AccBinary(n, true));
        }),
        "T", {});
    add("Reshape", make([](const Node& n) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
          return std::unique_ptr<OpKernel>(new AccReshape(n));
        }),
        "T", {.inputs = {1}});
    add("Shape", make([](const Node& n) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
          return std::unique_ptr<OpKernel>(new AccShape(n));
        }),
        "T", {.outputs = {0}});
    return r;
  }();
  return *r;
}

struct AccSet {
  DeviceSet devices;
  AccDevice* acc;
};

AccSet AccFirst() {
  AccSet s;
  auto acc = std::make_unique<AccDevice>();
  s.acc = acc.get();
  s.devices.Add(std::move(acc));
  s.devices.Add(*CpuDevice::Create({.intra_op_threads = 1}));
  return s;
}

Tensor Floats(std::vector<float> v, Shape shape) {
  Tensor t(DType::kFloat, shape);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

std::vector<float> Values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

// x (fed) -> a = x + x (acc) -> r = Reshape(a, shape) (acc; the int32 Const
// shape stays on the host) -> relu = Relu(r) (CPU: no acc kernel) ->
// y = relu * r (acc) -> fetched, with shape_of = Shape(y) (acc, host output).
TEST(PartitionTest, CopiesWhereMemoriesDifferAndOnlyThere) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2, 3});
  Output a = ops::AddV2(s.WithName("a"), x, x);
  Output shape = ops::Const(s.WithName("shape"), Tensor::FromVector<int32_t>({3, 2}));
  Output r = ops::Reshape(s.WithName("r"), a, shape);
  Output relu = ops::Relu(s.WithName("relu"), r);
  Output y = ops::Mul(s.WithName("y"), relu, r);
  ops::ShapeOf(s.WithName("shape_of"), y);
  ASSERT_TRUE(s.ok()) << s.status();
  AccSet set = AccFirst();

  auto plan = BuildExecutionPlan(g, set.devices,
                                 {.feeds = {"x:0"}, .fetches = {"y:0", "shape_of:0"}}, &Kernels());
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::map<std::string, std::string> where;
  for (size_t i = 0; i < plan->nodes.size(); ++i) {
    where[plan->nodes[i]->name()] = plan->devices[i]->name();
  }
  EXPECT_EQ(where["a"], "acc:0");
  EXPECT_EQ(where["r"], "acc:0");
  EXPECT_EQ(where["y"], "acc:0");
  EXPECT_EQ(where["shape_of"], "acc:0");
  EXPECT_EQ(where["relu"], "cpu:0");   // no TESTACC kernel
  EXPECT_EQ(where["shape"], "cpu:0");  // int32: no TESTACC kernel
  EXPECT_THAT(plan->fallbacks, ElementsAre("Const (int32) x1", "Relu (float) x1"));
  // Copies: x in (one copy, though `a` reads it twice); r out to relu; relu in
  // to y; y out as a fetch. The int32 shape stays on the host (host-memory
  // input); shape_of's output is host memory already.
  std::vector<std::string> copies;
  for (const CopyStep& c : plan->copies) {
    copies.push_back(absl::StrCat(c.src.node->name(), ":", c.src.index, " ", c.from->name(), "->",
                                  c.to->name()));
  }
  EXPECT_THAT(copies, ::testing::UnorderedElementsAre("x:0 cpu:0->acc:0", "r:0 acc:0->cpu:0",
                                                      "relu:0 cpu:0->acc:0", "y:0 acc:0->cpu:0"));

  ResourceMgr resources;
  auto ex = Executor::Create(*plan, {.resources = &resources, .kernels = &Kernels()});
  ASSERT_TRUE(ex.ok()) << ex.status();
  std::vector<Tensor> out;
  ASSERT_TRUE((*ex)->Run({Floats({-1, 2, -3, 4, 5, -6}, Shape{2, 3})}, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].host_accessible());
  EXPECT_EQ(out[0].shape(), Shape({3, 2}));
  // a = 2x; y = relu(a) * a.
  EXPECT_THAT(Values(out[0]), ElementsAre(0, 16, 0, 64, 100, 0));
  EXPECT_THAT(std::vector<int32_t>(out[1].data<int32_t>(), out[1].data<int32_t>() + 2),
              ElementsAre(3, 2));
  EXPECT_EQ(set.acc->copies_in.load(), 2);
  EXPECT_EQ(set.acc->copies_out.load(), 2);
}

// Feeds already in the accelerator's memory and fetches left there
// (RunSignature::feed_devices, fetch_devices; the trainer's split step):
// x fed on acc:0 -> a = x * x (acc, no copy in) -> fetched on acc:0 (no copy
// out) and relu = Relu(a) (CPU: one copy out) fetched on the host; x is also
// read on the host by neg = Neg(x) (one copy out of the fed tensor). The
// tensor left on acc:0 is then fed to a second run as it is.
TEST(PartitionTest, FeedsAndFetchesInDeviceMemoryAreNotCopied) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{4});
  Output a = ops::Mul(s.WithName("a"), x, x);
  ops::Relu(s.WithName("relu"), a);
  ops::Neg(s.WithName("neg"), x);
  ASSERT_TRUE(s.ok()) << s.status();
  AccSet set = AccFirst();
  auto plan = BuildExecutionPlan(g, set.devices,
                                 {.feeds = {"x:0"},
                                  .fetches = {"a:0", "relu:0", "neg:0"},
                                  .feed_devices = {set.acc},
                                  .fetch_devices = {set.acc, nullptr, nullptr}},
                                 &Kernels());
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> copies;
  for (const CopyStep& c : plan->copies) {
    copies.push_back(absl::StrCat(c.src.node->name(), ":", c.src.index, " ", c.from->name(), "->",
                                  c.to->name()));
  }
  EXPECT_THAT(copies, ::testing::UnorderedElementsAre("a:0 acc:0->cpu:0", "x:0 acc:0->cpu:0"));
  EXPECT_EQ(plan->fetch_copies[0], -1);
  EXPECT_THAT(plan->fetch_devices, ElementsAre(set.acc, set.devices.host(), set.devices.host()));

  ResourceMgr resources;
  auto ex = Executor::Create(*plan, {.resources = &resources, .kernels = &Kernels()});
  ASSERT_TRUE(ex.ok()) << ex.status();
  auto on_acc = set.acc->CopyFromHost(Floats({-1, 2, -3, 4}, Shape{4}));
  ASSERT_TRUE(on_acc.ok());
  std::vector<Tensor> out;
  ASSERT_TRUE((*ex)->Run({*on_acc}, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].device(), "acc:0");
  EXPECT_TRUE(out[1].host_accessible());
  EXPECT_THAT(Values(out[2]), ElementsAre(1, -2, 3, -4));
  EXPECT_EQ(set.acc->copies_out.load(), 2);  // a for relu, x for neg; not the fetch of a

  // The fetch left on acc:0 is the next run's feed, still without a copy in.
  const int copies_in = set.acc->copies_in.load();
  ASSERT_TRUE((*ex)->Run({out[0]}, &out).ok());
  EXPECT_EQ(set.acc->copies_in.load(), copies_in);
  auto back = set.acc->CopyToHost(out[0]);
  ASSERT_TRUE(back.ok());
  EXPECT_THAT(Values(*back), ElementsAre(1, 16, 81, 256));  // (x^2)^2
  EXPECT_THAT(Values(out[1]), ElementsAre(1, 16, 81, 256));
  EXPECT_THAT(Values(out[2]), ElementsAre(-1, -4, -9, -16));
}

// The executor's wiring around copies: a fed placeholder that is also a
// control input (the feed meets it; the placeholder does not run) and is
// fetched as fed; one copy read twice by one node; a control edge from an
// accelerator node to a CPU node reading the feed directly, which must not
// write into the caller's tensor.
TEST(PartitionTest, FeedsFetchesControlEdgesAndRepeatedReads) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2});
  Output a = ops::Mul(s.WithName("a").WithControlDependencies({x}), x, x);
  ops::Relu(s.WithName("b").WithControlDependencies({a}), x);
  ops::AddV2(s.WithName("y"), a, a);
  ASSERT_TRUE(s.ok()) << s.status();
  AccSet set = AccFirst();
  auto plan = BuildExecutionPlan(g, set.devices,
                                 {.feeds = {"x:0"}, .fetches = {"x:0", "y:0", "b:0"}}, &Kernels());
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (const Node* n : plan->nodes) EXPECT_NE(n->name(), "x");
  std::vector<std::string> copies;
  for (const CopyStep& c : plan->copies) {
    copies.push_back(absl::StrCat(c.src.node->name(), ":", c.src.index, " ", c.from->name(), "->",
                                  c.to->name()));
  }
  EXPECT_THAT(copies, ::testing::UnorderedElementsAre("x:0 cpu:0->acc:0", "y:0 acc:0->cpu:0"));
  ASSERT_EQ(plan->fetch_copies.size(), 3u);
  EXPECT_EQ(plan->fetch_copies[0], -1);
  EXPECT_GE(plan->fetch_copies[1], 0);
  EXPECT_EQ(plan->fetch_copies[2], -1);

  ResourceMgr resources;
  auto ex = Executor::Create(*plan, {.resources = &resources, .kernels = &Kernels()});
  ASSERT_TRUE(ex.ok()) << ex.status();
  for (int run = 0; run < 2; ++run) {
    const Tensor feed = Floats({-1, 2}, Shape{2});
    std::vector<Tensor> out;
    absl::Status st = (*ex)->Run({feed}, &out);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(out.size(), 3u);
    EXPECT_TRUE(out[0].SharesBufferWith(feed));
    EXPECT_THAT(Values(feed), ElementsAre(-1, 2));   // not written by Relu
    EXPECT_THAT(Values(out[1]), ElementsAre(2, 8));  // y = 2 * x * x
    EXPECT_THAT(Values(out[2]), ElementsAre(0, 2));  // b = relu(x)
  }
  EXPECT_EQ(set.acc->copies_in.load(), 2);   // x, once per run
  EXPECT_EQ(set.acc->copies_out.load(), 2);  // y, once per run
}

TEST(PartitionTest, AllOnTheCpuNeedsNoCopies) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2});
  ops::Relu(s.WithName("y"), ops::AddV2(s.WithName("a"), x, x));
  ASSERT_TRUE(s.ok());
  DeviceSet cpu;
  cpu.Add(*CpuDevice::Create({.intra_op_threads = 1}));
  auto plan = BuildExecutionPlan(g, cpu, {.feeds = {"x:0"}, .fetches = {"y:0"}}, &Kernels());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->copies.empty());
  EXPECT_TRUE(plan->fallbacks.empty());
  EXPECT_THAT(plan->fetch_copies, ElementsAre(-1));
}

TEST(PartitionTest, AFailingCopyNamesTheTensorAndDevices) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2});
  ops::AddV2(s.WithName("a"), x, x);
  ASSERT_TRUE(s.ok());
  AccSet set = AccFirst();
  auto plan =
      BuildExecutionPlan(g, set.devices, {.feeds = {"x:0"}, .fetches = {"a:0"}}, &Kernels());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ResourceMgr resources;
  auto ex = Executor::Create(*plan, {.resources = &resources, .kernels = &Kernels()});
  ASSERT_TRUE(ex.ok()) << ex.status();
  // A feed already "on the device" is refused by CopyFromHost.
  Tensor on_acc = *set.acc->CopyFromHost(Floats({1, 2}, Shape{2}));
  std::vector<Tensor> out;
  absl::Status st = (*ex)->Run({on_acc}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("copy of 'x:0' from cpu:0 to acc:0"));
}

}  // namespace
}  // namespace gradserve
