#include "graph/checkpoint.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/file_io.h"
#include "gtest/gtest.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;
using TensorList = std::vector<std::pair<std::string, Tensor>>;

std::string Bytes(const Tensor& t) {
  return t.bytes() == 0 ? "" : std::string(static_cast<const char*>(t.raw_data()), t.bytes());
}

Tensor RandomTensor(DType dtype, const Shape& shape) {
  if (dtype == DType::kBool) return testing::ToTensor(testing::RandomInt(shape, 0, 1), dtype);
  if (IsIntegerDType(dtype)) return testing::ToTensor(testing::RandomInt(shape, -100, 100), dtype);
  return testing::ToTensor(testing::Random(shape, -10, 10), dtype);
}

TensorList SampleTensors() {
  return {
      {"dense/kernel", RandomTensor(DType::kFloat, Shape{37, 11})},
      {"dense/bias", RandomTensor(DType::kFloat, Shape{11})},
      {"scalar", RandomTensor(DType::kDouble, Shape{})},
      {"empty", RandomTensor(DType::kFloat, Shape{0})},
      {"empty3d", RandomTensor(DType::kInt32, Shape{2, 0, 3})},
      {"half", RandomTensor(DType::kHalf, Shape{3, 5})},
      {"bf16", RandomTensor(DType::kBFloat16, Shape{9})},
      {"i8", RandomTensor(DType::kInt8, Shape{13})},
      {"u8", RandomTensor(DType::kUInt8, Shape{2, 2})},
      {"i16", RandomTensor(DType::kInt16, Shape{3})},
      {"i64", RandomTensor(DType::kInt64, Shape{1, 1, 4})},
      {"flags", RandomTensor(DType::kBool, Shape{17})},
  };
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/checkpoint_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(CreateDirectories(dir_).ok());
    path_ = dir_ + "/model.ckpt";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes the sample checkpoint and returns its bytes.
  std::string WriteSample() {
    EXPECT_TRUE(WriteCheckpoint(path_, SampleTensors(), 42).ok());
    return *ReadFileToString(path_);
  }
  absl::Status ReadBytes(const std::string& bytes) {
    EXPECT_TRUE(WriteFileAtomically(path_, bytes).ok());
    return ReadCheckpoint(path_).status();
  }

  std::string dir_;
  std::string path_;
};

TEST_F(CheckpointTest, RoundTripsDtypesShapesAndStep) {
  const TensorList tensors = SampleTensors();
  const int64_t step = static_cast<int64_t>(testing::Rng()() >> 1);
  ASSERT_TRUE(WriteCheckpoint(path_, tensors, step).ok());
  absl::StatusOr<Checkpoint> ckpt = ReadCheckpoint(path_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->step, step);
  ASSERT_EQ(ckpt->tensors.size(), tensors.size());
  for (const auto& [name, want] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(ckpt->tensors.contains(name));
    const Tensor& got = ckpt->tensors.at(name);
    EXPECT_EQ(got.dtype(), want.dtype());
    EXPECT_EQ(got.shape(), want.shape());
    EXPECT_EQ(Bytes(got), Bytes(want));
  }
}

TEST_F(CheckpointTest, LayoutHasMagicsAlignedDataAndTrailer) {
  const std::string bytes = WriteSample();
  EXPECT_EQ(bytes.substr(0, 8), "GSCKPT01");
  EXPECT_EQ(bytes.substr(bytes.size() - 8), "GSCKPT01");
  absl::StatusOr<CheckpointIndex> index = ReadCheckpointIndex(path_);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->step(), 42);
  ASSERT_EQ(index->entry_size(), 12);
  EXPECT_EQ(index->entry(0).name(), "dense/kernel");
  EXPECT_EQ(index->entry(0).offset(), 64u);
  EXPECT_EQ(index->entry(0).size(), 37u * 11 * 4);
  for (const CheckpointEntry& e : index->entry()) EXPECT_EQ(e.offset() % 64, 0u) << e.name();
}

TEST_F(CheckpointTest, EmptyCheckpointRoundTrips) {
  ASSERT_TRUE(WriteCheckpoint(path_, {}, 7).ok());
  absl::StatusOr<Checkpoint> ckpt = ReadCheckpoint(path_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->step, 7);
  EXPECT_TRUE(ckpt->tensors.empty());
}

TEST_F(CheckpointTest, RejectsTruncationAtEveryPoint) {
  const std::string bytes = WriteSample();
  std::vector<size_t> lengths = {0, 7, 8, bytes.size() - 1, bytes.size() - 28};
  for (int k = 1; k < 7; ++k) lengths.push_back(bytes.size() * k / 7);
  for (size_t n : lengths) {
    SCOPED_TRACE(absl::StrCat("truncated to ", n, " of ", bytes.size()));
    const absl::Status status = ReadBytes(bytes.substr(0, n));
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(status.message(), HasSubstr(path_));
  }
  EXPECT_THAT(ReadBytes(bytes.substr(0, bytes.size() - 1)).message(), HasSubstr("trailer"));
  EXPECT_THAT(ReadBytes(bytes + "x").message(), HasSubstr("trailer"));
}

TEST_F(CheckpointTest, RejectsRandomByteFlips) {
  const std::string bytes = WriteSample();
  const uint64_t seed = testing::Seed() ^ 0xf11b5;
  std::printf("byte-flip seed: %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 300; ++trial) {
    std::string corrupt = bytes;
    const size_t pos = rng() % corrupt.size();
    corrupt[pos] ^= static_cast<char>(1 + rng() % 255);
    const absl::Status status = ReadBytes(corrupt);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss)
        << "flip at " << pos << " of " << bytes.size() << ": " << status;
  }
}

TEST_F(CheckpointTest, ErrorsSayWhichPartIsCorrupt) {
  const std::string bytes = WriteSample();
  const CheckpointIndex index = *ReadCheckpointIndex(path_);
  const CheckpointEntry& bias = index.entry(1);
  std::string corrupt = bytes;
  corrupt[bias.offset() + 5] ^= 0x10;
  EXPECT_THAT(ReadBytes(corrupt).message(), HasSubstr("tensor 'dense/bias' is corrupt"));
  corrupt = bytes;
  corrupt[20] = 1;  // padding between the header and the first tensor
  EXPECT_THAT(ReadBytes(corrupt).message(), HasSubstr("padding byte at offset 20"));
  corrupt = bytes;
  corrupt[bytes.size() - 40] ^= 0x01;  // inside the index
  EXPECT_THAT(ReadBytes(corrupt).message(), HasSubstr("index is corrupt"));
  corrupt = bytes;
  corrupt[0] = 'X';
  EXPECT_THAT(ReadBytes(corrupt).message(), HasSubstr("bad header magic"));
  EXPECT_EQ(ReadCheckpoint(dir_ + "/absent.ckpt").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, RejectsBadTensorsOnWrite) {
  const Tensor f = RandomTensor(DType::kFloat, Shape{2});
  EXPECT_THAT(WriteCheckpoint(path_, {{"a", f}, {"a", f}}, 0).message(), HasSubstr("twice"));
  EXPECT_THAT(WriteCheckpoint(path_, {{"", f}}, 0).message(), HasSubstr("need a name"));
  EXPECT_THAT(WriteCheckpoint(path_, {{"x", Tensor()}}, 0).message(), HasSubstr("no value"));
  EXPECT_THAT(WriteCheckpoint(path_, {{"r", Tensor(DType::kResource, Shape{})}}, 0).message(),
              HasSubstr("dtype resource"));
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(CheckpointTest, OldFileSurvivesAFailedWrite) {
  const std::string old_bytes = WriteSample();
  // Make the write fail halfway: a file size limit turns write() into EFBIG.
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  void (*old_handler)(int) = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status status =
      WriteCheckpoint(path_, {{"big", RandomTensor(DType::kFloat, Shape{4096})}}, 1);
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(".tmp-"));

  EXPECT_EQ(*ReadFileToString(path_), old_bytes);
  absl::StatusOr<Checkpoint> ckpt = ReadCheckpoint(path_);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->step, 42);
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename(), "model.ckpt") << "left behind: " << entry.path();
  }
}

TEST_F(CheckpointTest, FailedRenameLeavesNoTempFile) {
  // <path> is a non-empty directory, so the final rename fails.
  ASSERT_TRUE(CreateDirectories(path_ + "/occupied").ok());
  const absl::Status status = WriteCheckpoint(path_, SampleTensors(), 1);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(path_));
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "model.ckpt");
  }
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace gradserve
