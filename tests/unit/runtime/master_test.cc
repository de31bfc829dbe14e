// Pruning and placement, on a device set of two CPU devices.
#include "runtime/master.h"

#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"

namespace gradserve {
namespace {

DeviceSet TwoCpus() {
  DeviceSet set;
  set.Add(*CpuDevice::Create({.name = "cpu:0", .intra_op_threads = 1}));
  set.Add(*CpuDevice::Create({.name = "cpu:1", .intra_op_threads = 1}));
  return set;
}

std::vector<std::string> Names(const ExecutionPlan& plan) {
  std::vector<std::string> names;
  for (const Node* n : plan.nodes) names.push_back(n->name());
  return names;
}

TEST(MasterTest, PrunesToFetchesAndPlacesOnRequestedDevices) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2});
  Output a = ops::AddV2(s.WithName("a").WithDevice("/job:localhost/replica:0/task:0/device:CPU:1"), x, x);
  ops::AddV2(s.WithName("b"), a, x);
  ops::AddV2(s.WithName("unrelated"), x, x);
  ops::Identity(s.WithName("gpu_wish").WithDevice("/device:GPU:0"), a);
  ASSERT_TRUE(s.ok());
  const DeviceSet devices = TwoCpus();

  auto plan = BuildExecutionPlan(g, devices, {.feeds = {}, .fetches = {"b:0", "gpu_wish:0"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(*plan), ::testing::ElementsAre("x", "a", "b", "gpu_wish"));
  EXPECT_EQ(plan->devices[0]->name(), "cpu:0");
  EXPECT_EQ(plan->devices[1]->name(), "cpu:1");  // requested
  EXPECT_EQ(plan->devices[2]->name(), "cpu:0");  // default
  EXPECT_EQ(plan->devices[3]->name(), "cpu:0");  // no such device: falls back to one with a kernel
}

TEST(MasterTest, FeedsCutTheGraphAndTargetsAreKept) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2});
  Output a = ops::AddV2(s.WithName("a"), x, x);
  ops::AddV2(s.WithName("b"), a, a);
  ops::NoOp(s.WithName("side_effect"));
  const DeviceSet devices = TwoCpus();
  auto plan = BuildExecutionPlan(g, devices,
                                 {.feeds = {"a:0"}, .fetches = {"b"}, .targets = {"side_effect"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Names(*plan), ::testing::ElementsAre("b", "side_effect"));
}

TEST(MasterTest, UnknownNamesAreNotFound) {
  Graph g;
  Scope s(&g);
  ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2});
  const DeviceSet devices = TwoCpus();
  EXPECT_EQ(BuildExecutionPlan(g, devices, {.fetches = {"y:0"}}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(BuildExecutionPlan(g, devices, {.targets = {"nothing"}}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace gradserve
