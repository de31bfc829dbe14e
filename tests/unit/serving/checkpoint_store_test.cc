// CheckpointStore: naming and ordering by generation, retention, removal of
// interrupted writes, reading by name, and skipping corrupt or unfitting files.
#include "serving/checkpoint_store.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::serving {
namespace {

using ::testing::HasSubstr;

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ckpt_store_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<std::pair<std::string, Tensor>> Weights(float scale) {
    Tensor w = testing::ToTensor(testing::Random(Shape{4, 3}), DType::kFloat);
    for (int i = 0; i < 12; ++i) w.data<float>()[i] *= scale;
    return {{"w", w}};
  }

  std::string dir_;
};

TEST_F(CheckpointStoreTest, NewestGenerationFirstAndOnlyKeepRemain) {
  CheckpointStore store(dir_, /*keep=*/2);
  ASSERT_TRUE(store.Init().ok());
  EXPECT_TRUE(store.List().empty());
  // Steps go down after a rollback; generations only up.
  for (auto [step, generation] : {std::pair{10, 3}, {20, 9}, {15, 12}}) {
    auto e = store.Write(Weights(1), step, generation);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->name, absl::StrFormat("ckpt-%012d.gsckpt", generation));
  }
  const std::vector<CheckpointEntry> all = store.List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].generation, 12);
  EXPECT_EQ(all[0].step, 15);
  EXPECT_EQ(all[1].generation, 9);
  EXPECT_EQ(all[1].step, 20);
}

TEST_F(CheckpointStoreTest, InitRemovesInterruptedWrites) {
  std::filesystem::create_directories(dir_);
  const std::string temp = dir_ + "/ckpt-000000000004.gsckpt.tmp-123-00ff";
  std::ofstream(temp) << "half a checkpoint";
  std::ofstream(dir_ + "/notes.txt") << "not ours";
  CheckpointStore store(dir_, 3);
  ASSERT_TRUE(store.Init().ok());
  EXPECT_FALSE(std::filesystem::exists(temp));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/notes.txt"));
}

TEST_F(CheckpointStoreTest, ReadsByNameAndSkipsWhatIsCorruptOrDoesNotFit) {
  CheckpointStore store(dir_, 5);
  ASSERT_TRUE(store.Init().ok());
  auto weights = Weights(1);
  ASSERT_TRUE(store.Write(weights, 1, 1).ok());
  ASSERT_TRUE(store.Write(Weights(2), 2, 2).ok());
  auto newest = store.Write(Weights(3), 3, 3);
  ASSERT_TRUE(newest.ok());

  auto one = store.Read("ckpt-000000000001");  // with or without the suffix
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->second.step, 1);
  EXPECT_EQ(testing::FromTensor(one->second.tensors.at("w")).v,
            testing::FromTensor(weights[0].second).v);
  auto missing = store.Read("ckpt-7");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("there are: ckpt-000000000003.gsckpt"));

  // Flip a data byte of the newest: DataLoss when named, skipped when resuming.
  {
    std::fstream f(newest->path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(70);
    char c;
    f.read(&c, 1);
    f.seekp(70);
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  EXPECT_EQ(store.Read(newest->name).status().code(), absl::StatusCode::kDataLoss);
  std::vector<std::string> skipped;
  auto reject_generation_2 = [](const Checkpoint& c) {
    return c.step == 2 ? absl::FailedPreconditionError("does not fit") : absl::OkStatus();
  };
  auto found = store.ReadNewestValid(reject_generation_2,
                                     [&](const CheckpointEntry& e, const absl::Status& why) {
                                       skipped.push_back(absl::StrCat(e.name, ": ", why.message()));
                                     });
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->first.generation, 1);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_THAT(skipped[0], HasSubstr("ckpt-000000000003.gsckpt: "));
  EXPECT_THAT(skipped[0], HasSubstr("crc"));
  EXPECT_THAT(skipped[1], HasSubstr("does not fit"));
}

}  // namespace
}  // namespace gradserve::serving
