// Which device a model version runs on (ModelDevice, serving/model_config.h):
// Triton's instance_group kinds against the server's --device choice, and the
// precise refusals when a GPU is asked for and missing.
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "serving/model_config.h"

namespace gradserve::serving {
namespace {

using ::testing::HasSubstr;

inference::ModelConfig Config(const std::string& text) {
  inference::ModelConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  c.set_name("m");
  return c;
}

TEST(ModelDeviceTest, CpuGroupsAndAutoWithoutAServerGpuRunOnTheCpu) {
  for (const char* text : {"", "instance_group [ { kind: KIND_CPU count: 2 } ]",
                           "instance_group [ { kind: KIND_AUTO } ]"}) {
    auto d = ModelDevice(Config(text), std::nullopt);
    ASSERT_TRUE(d.ok()) << text << ": " << d.status();
    EXPECT_FALSE(d->has_value()) << text;
  }
  // KIND_CPU wins over the server's GPU.
  auto d = ModelDevice(Config("instance_group [ { kind: KIND_CPU } ]"), GpuOptions{});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->has_value());
}

TEST(ModelDeviceTest, MixedOrSeveralGpusAreUnimplemented) {
  auto mixed = ModelDevice(
      Config("instance_group [ { kind: KIND_CPU }, { kind: KIND_GPU gpus: [ 0 ] } ]"),
      std::nullopt);
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(mixed.status().message(), HasSubstr("on the CPU and on a GPU"));
  auto two = ModelDevice(Config("instance_group [ { kind: KIND_GPU gpus: [ 0, 1 ] } ]"),
                         std::nullopt);
  EXPECT_EQ(two.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(two.status().message(), HasSubstr("lists GPUs 0, 1"));
}

TEST(ModelDeviceTest, AGpuThatIsNotThereFailsWithTheReason) {
  const int gpus = GpuCount();
  auto beyond = ModelDevice(Config("instance_group [ { kind: KIND_GPU gpus: [ 7 ] } ]"),
                            std::nullopt);
  ASSERT_EQ(beyond.status().code(), absl::StatusCode::kFailedPrecondition);
  if (gpus == 0) {
    EXPECT_THAT(beyond.status().message(), HasSubstr("asks for a GPU (instance_group KIND_GPU)"));
    EXPECT_THAT(beyond.status().message(), HasSubstr(GpuUnavailableReason()));
    // Also the bare KIND_GPU.
    auto any = ModelDevice(Config("instance_group [ { kind: KIND_GPU } ]"), std::nullopt);
    EXPECT_EQ(any.status().code(), absl::StatusCode::kFailedPrecondition);
  } else {
    EXPECT_THAT(beyond.status().message(), HasSubstr("asks for GPU 7"));
  }
}

TEST(ModelDeviceTest, GpuGroupsTakeTheServersPrecisionAndTheirOwnGpu) {
  if (GpuCount() == 0) GTEST_SKIP() << GpuUnavailableReason();
  GpuOptions server{.ordinal = 0, .matmul_precision = MatMulPrecision::kBFloat16};
  auto d = ModelDevice(Config("instance_group [ { kind: KIND_GPU gpus: [ 0 ] count: 2 } ]"),
                       server);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ((*d)->ordinal, 0);
  EXPECT_EQ((*d)->matmul_precision, MatMulPrecision::kBFloat16);
  auto autod = ModelDevice(Config(""), server);
  ASSERT_TRUE(autod.ok()) << autod.status();
  EXPECT_TRUE(autod->has_value());
}

TEST(ModelDeviceTest, MatMulPrecisionNames) {
  EXPECT_EQ(*ParseMatMulPrecision("bfloat16"), MatMulPrecision::kBFloat16);
  EXPECT_EQ(*ParseMatMulPrecision("tf32"), MatMulPrecision::kTf32);
  auto bad = ParseMatMulPrecision("fp8");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("float32, tf32, bfloat16 or float16"));
}

}  // namespace
}  // namespace gradserve::serving
