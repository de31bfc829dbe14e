// Dataset readers on the real files (the shipped digits CSV, Fashion-MNIST when
// installed), every rejection with its message on small bad files, and the
// split/shuffle/slice helpers.
#include "graph/dataset.h"

#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/file_io.h"
#include "graph/npy.h"
#include "gtest/gtest.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;
using std::string_literals::operator""s;  // IDX test data holds zero bytes

const std::string kDigitsCsv =
    std::string(GRADSERVE_TESTS_DIR) + "/../configs/datasets/digits/digits.csv.gz";
const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

// A per-test scratch directory for small (bad) files.
class DatasetFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/dataset_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(CreateDirectories(dir_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, absl::string_view contents) {
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomically(path, contents).ok());
    return path;
  }
  std::string WriteGz(const std::string& name, absl::string_view contents) {
    const std::string path = dir_ + "/" + name;
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, contents.data(), contents.size()), static_cast<int>(contents.size()));
    gzclose(f);
    return path;
  }
  // The message of a CSV read that must fail with InvalidArgument.
  std::string CsvError(absl::string_view contents) {
    auto data = ReadCsvDataset(Write("bad.csv", contents));
    EXPECT_FALSE(data.ok());
    EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument) << data.status();
    return std::string(data.status().message());
  }

  std::string dir_;
};

// An IDX file: magic, big-endian dims, then `data`.
std::string Idx(uint32_t magic, const std::vector<uint32_t>& dims, absl::string_view data) {
  std::string out;
  auto put = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  out.append(data.data(), data.size());
  return out;
}

// features[i] = {i, 10 + i}, labels[i] = i % 3: rows can be traced after a shuffle.
Dataset Traceable(int64_t n) {
  std::vector<float> features;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    features.push_back(i);
    features.push_back(10 + i);
    labels.push_back(i % 3);
  }
  return {Tensor::FromVector(features, Shape{n, 2}), Tensor::FromVector(labels)};
}

// The row index each example of a Traceable subset came from, checking that
// its label still belongs to it.
std::vector<int64_t> Rows(const Dataset& d) {
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < d.size(); ++i) {
    const int64_t row = static_cast<int64_t>(d.features.data<float>()[2 * i]);
    EXPECT_EQ(d.features.data<float>()[2 * i + 1], 10 + row);
    EXPECT_EQ(d.labels.data<int64_t>()[i], row % 3);
    rows.push_back(row);
  }
  return rows;
}

TEST(DatasetDigitsTest, ReadsTheShippedDigitsCsv) {
  auto data = ReadCsvDataset(kDigitsCsv, 1.0f / 16);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 1797);
  EXPECT_EQ(data->features.dtype(), DType::kFloat);
  EXPECT_EQ(data->features.shape(), (Shape{1797, 64}));
  EXPECT_EQ(data->labels.dtype(), DType::kInt64);
  EXPECT_EQ(NumClasses(*data), 10);
  std::set<int64_t> classes(data->labels.span<const int64_t>().begin(),
                            data->labels.span<const int64_t>().end());
  EXPECT_EQ(classes.size(), 10u);
  EXPECT_EQ(*classes.begin(), 0);
  float max = 0;
  for (float v : data->features.span<const float>()) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LE(v, 1.0f);
    ASSERT_EQ(v * 16, std::round(v * 16)) << "pixels are integers 0..16 scaled by 1/16";
    max = std::max(max, v);
  }
  EXPECT_EQ(max, 1.0f);
  // The first line: "0,0,5,13,9,1,0,0,...,0" (a zero).
  EXPECT_EQ(data->features.data<float>()[2], 5.0f / 16);
  EXPECT_EQ(data->features.data<float>()[3], 13.0f / 16);
  EXPECT_EQ(data->labels.data<int64_t>()[0], 0);
  EXPECT_EQ(data->labels.data<int64_t>()[1], 1);
}

TEST(DatasetFashionMnistTest, ReadsTheInstalledFiles) {
  const std::string images = kFashionDir + "/t10k-images-idx3-ubyte.gz";
  const std::string labels = kFashionDir + "/t10k-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(images) || !std::filesystem::exists(labels)) {
    GTEST_SKIP() << "Fashion-MNIST is not installed under " << kFashionDir;
  }
  auto data = ReadIdxDataset(images, labels);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->features.shape(), (Shape{10000, 28, 28}));
  EXPECT_EQ(NumClasses(*data), 10);
  float max = 0;
  for (float v : data->features.span<const float>()) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LE(v, 1.0f);
    max = std::max(max, v);
  }
  EXPECT_EQ(max, 1.0f);  // default scale 1/255
  // 1,000 test images per class.
  std::vector<int> counts(10);
  for (int64_t label : data->labels.span<const int64_t>()) ++counts[label];
  EXPECT_EQ(counts, std::vector<int>(10, 1000));

  auto flat = ReshapeExamples(*data, Shape{784});
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_EQ(flat->features.shape(), (Shape{10000, 784}));
  // Training images against the test labels: 60,000 vs 10,000.
  auto mixed = ReadIdxDataset(kFashionDir + "/train-images-idx3-ubyte.gz", labels);
  ASSERT_FALSE(mixed.ok());
  EXPECT_THAT(mixed.status().message(), HasSubstr("differ in length: 60000 examples"));
}

TEST_F(DatasetFileTest, CsvSkipsCommentsBlankLinesAndCarriageReturns) {
  const std::string text = "# pixels..., label\n1,2,3\r\n\n 4 , 5.5,2.0\n#end\n";
  for (const std::string& path : {Write("ok.csv", text), WriteGz("ok.csv.gz", text)}) {
    auto data = ReadCsvDataset(path, 0.5f);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->features.shape(), (Shape{2, 2}));
    EXPECT_THAT(std::vector<float>(data->features.span<const float>().begin(),
                                   data->features.span<const float>().end()),
                ::testing::ElementsAre(0.5f, 1.0f, 2.0f, 2.75f));
    EXPECT_THAT(std::vector<int64_t>(data->labels.span<const int64_t>().begin(),
                                     data->labels.span<const int64_t>().end()),
                ::testing::ElementsAre(3, 2));
  }
}

TEST_F(DatasetFileTest, CsvRejectionsNameFileLineAndProblem) {
  EXPECT_THAT(CsvError("1,2,3\n1,x2,3\n"), HasSubstr("bad.csv:2: column 2: 'x2' is not a finite"));
  EXPECT_THAT(CsvError("1,nan,3\n"), HasSubstr(":1: column 2: 'nan' is not a finite number"));
  EXPECT_THAT(CsvError("1,inf,3\n"), HasSubstr("'inf' is not a finite number"));
  EXPECT_THAT(CsvError("1,,3\n"), HasSubstr("column 2: '' is not a finite number"));
  EXPECT_THAT(CsvError("1,2,3\n# c\n1,2\n"),
              HasSubstr("bad.csv:3: ragged rows: 2 columns, but the first example has 3"));
  EXPECT_THAT(CsvError("1,2,3\n1,2,3,4\n"), HasSubstr(":2: ragged rows: 4 columns"));
  EXPECT_THAT(CsvError("1,2,-1\n"),
              HasSubstr("bad.csv:1: column 3: label '-1' is not a non-negative integer"));
  EXPECT_THAT(CsvError("1,2,3.5\n"), HasSubstr("label '3.5' is not a non-negative integer"));
  EXPECT_THAT(CsvError("1,2,cat\n"), HasSubstr("label 'cat' is not a non-negative integer"));
  EXPECT_THAT(CsvError("7\n"), HasSubstr(":1: expected features and a label, found 1 column"));
  EXPECT_THAT(CsvError("# only a comment\n\n"), HasSubstr("bad.csv: no examples"));
}

TEST_F(DatasetFileTest, MissingFileIsNotFoundNamingThePath) {
  for (auto read : {+[](const std::string& p) { return ReadCsvDataset(p).status(); },
                    +[](const std::string& p) { return ReadIdxDataset(p, p).status(); },
                    +[](const std::string& p) { return ReadNpyDataset(p, p).status(); }}) {
    const absl::Status status = read(dir_ + "/none.csv");
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
    EXPECT_THAT(status.message(), HasSubstr(dir_ + "/none.csv"));
  }
}

TEST_F(DatasetFileTest, TruncatedGzipIsDataLoss) {
  std::string text;
  for (int i = 0; i < 2000; ++i) absl::StrAppend(&text, i, ",", i * 7 % 13, ",", i % 10, "\n");
  const std::string path = WriteGz("full.csv.gz", text);
  auto bytes = ReadFileToString(path);
  ASSERT_TRUE(bytes.ok());
  auto data = ReadCsvDataset(Write("cut.csv.gz", bytes->substr(0, bytes->size() / 2)));
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kDataLoss) << data.status();
  EXPECT_THAT(data.status().message(), HasSubstr("cut.csv.gz: corrupt gzip data"));
}

TEST_F(DatasetFileTest, IdxReadsImagesAndLabelsPlainOrGzipped) {
  const std::string images = WriteGz("img.gz", Idx(0x803, {2, 2, 3},
                                                   "\x00\x01\x02\x03\x04\x05"
                                                   "\xff\x00\x00\x00\x00\x0a"s));
  const std::string labels = Write("lab", Idx(0x801, {2}, "\x07\x00"s));
  auto data = ReadIdxDataset(images, labels, 1.0f);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->features.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(data->features.data<float>()[5], 5.0f);
  EXPECT_EQ(data->features.data<float>()[6], 255.0f);  // unsigned
  EXPECT_EQ(data->features.data<float>()[11], 10.0f);
  EXPECT_EQ(data->labels.data<int64_t>()[0], 7);
  EXPECT_EQ(data->labels.data<int64_t>()[1], 0);
}

TEST_F(DatasetFileTest, IdxRejections) {
  const std::string images = Write("img", Idx(0x803, {2, 1, 2}, "abcd"));
  const std::string labels = Write("lab", Idx(0x801, {2}, "\x01\x02"));
  auto error = [](const absl::StatusOr<Dataset>& d) {
    EXPECT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
    return std::string(d.status().message());
  };
  // Swapped files: each magic is checked.
  EXPECT_THAT(error(ReadIdxDataset(labels, images)),
              HasSubstr("lab: bad IDX magic 0x00000801; images need 0x00000803"));
  EXPECT_THAT(error(ReadIdxDataset(images, images)),
              HasSubstr("img: bad IDX magic 0x00000803; labels need 0x00000801"));
  EXPECT_THAT(error(ReadIdxDataset(Write("f", Idx(0x00000d03, {2, 1, 2}, "abcd")), labels)),
              HasSubstr("bad IDX magic 0x00000d03"));  // float data
  EXPECT_THAT(error(ReadIdxDataset(Write("t", Idx(0x803, {2, 1, 2}, "abc")), labels)),
              HasSubstr("t: truncated IDX data: dims [2,1,2] need 4 bytes, found 3"));
  EXPECT_THAT(error(ReadIdxDataset(Write("h", Idx(0x803, {2}, "")), labels)),
              HasSubstr("h: truncated IDX header (8 bytes, expected 16)"));
  EXPECT_THAT(error(ReadIdxDataset(Write("e", ""), labels)), HasSubstr("truncated IDX file"));
  EXPECT_THAT(error(ReadIdxDataset(Write("x", Idx(0x803, {2, 1, 2}, "abcde")), labels)),
              HasSubstr("x: 1 bytes after the IDX data"));
  EXPECT_THAT(error(ReadIdxDataset(Write("z", Idx(0x803, {0, 1, 2}, "")), labels)),
              HasSubstr("z: IDX dimension 0 is 0"));
  // Huge dims in a small file: refused before any allocation.
  EXPECT_THAT(error(ReadIdxDataset(Write("b", Idx(0x803, {60000, 60000, 60000}, "ab")), labels)),
              HasSubstr("b: truncated IDX data"));
  EXPECT_THAT(error(ReadIdxDataset(images, Write("l3", Idx(0x801, {3}, "\x01\x02\x03")))),
              HasSubstr("features and labels differ in length: 2 examples in " + images +
                        ", 3 labels in " + dir_ + "/l3"));
}

TEST_F(DatasetFileTest, NpyConvertsFeaturesAndChecksLabels) {
  const std::string path = dir_ + "/";
  ASSERT_TRUE(
      WriteNpy(path + "u8.npy", Tensor::FromVector<uint8_t>({0, 128, 255, 4}, Shape{2, 2})).ok());
  ASSERT_TRUE(WriteNpy(path + "i32.npy", Tensor::FromVector<int32_t>({1, 0})).ok());
  auto data = ReadNpyDataset(path + "u8.npy", path + "i32.npy", 0.25f);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->features.dtype(), DType::kFloat);
  EXPECT_EQ(data->features.data<float>()[2], 63.75f);
  EXPECT_EQ(data->labels.dtype(), DType::kInt64);
  EXPECT_EQ(data->labels.data<int64_t>()[0], 1);

  auto error = [&](const std::string& f, const std::string& l) {
    auto d = ReadNpyDataset(path + f, path + l);
    EXPECT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
    return std::string(d.status().message());
  };
  ASSERT_TRUE(WriteNpy(path + "f.npy", Tensor::FromVector<float>({1, 0})).ok());
  ASSERT_TRUE(WriteNpy(path + "l2d.npy", Tensor::FromVector<int64_t>({1, 0}, Shape{2, 1})).ok());
  ASSERT_TRUE(WriteNpy(path + "neg.npy", Tensor::FromVector<int64_t>({1, -2})).ok());
  ASSERT_TRUE(WriteNpy(path + "l3.npy", Tensor::FromVector<int64_t>({1, 2, 3})).ok());
  ASSERT_TRUE(
      WriteNpy(path + "nan.npy", Tensor::FromVector<float>({1, std::nanf("")}, Shape{2, 1})).ok());
  Tensor flags(DType::kBool, Shape{2});
  flags.data<bool>()[0] = true;
  flags.data<bool>()[1] = false;
  ASSERT_TRUE(WriteNpy(path + "b.npy", flags).ok());
  EXPECT_THAT(error("u8.npy", "f.npy"), HasSubstr("f.npy: labels must be integers, not float"));
  EXPECT_THAT(error("u8.npy", "l2d.npy"),
              HasSubstr("l2d.npy: labels must have one dimension, found shape [2,1]"));
  EXPECT_THAT(error("u8.npy", "neg.npy"), HasSubstr("neg.npy: label -2 at index 1 is negative"));
  EXPECT_THAT(error("u8.npy", "l3.npy"), HasSubstr("differ in length: 2 examples in"));
  EXPECT_THAT(error("nan.npy", "i32.npy"), HasSubstr("nan.npy: feature value nan at flat index 1"));
  EXPECT_THAT(error("b.npy", "i32.npy"), HasSubstr("b.npy: features must be numeric, not bool"));
}

TEST(DatasetSplitTest, ShuffleSplitIsDeterministicDisjointAndAligned) {
  const Dataset data = Traceable(101);
  auto [train, test] = ShuffleSplit(data, 0.8, 42);
  EXPECT_EQ(train.size(), 81);  // round(80.8)
  EXPECT_EQ(test.size(), 20);
  const std::vector<int64_t> train_rows = Rows(train), test_rows = Rows(test);
  std::set<int64_t> all(train_rows.begin(), train_rows.end());
  all.insert(test_rows.begin(), test_rows.end());
  EXPECT_EQ(all.size(), 101u) << "disjoint and complete";
  std::vector<int64_t> identity(81);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(train_rows, identity) << "shuffled";

  auto [train2, test2] = ShuffleSplit(data, 0.8, 42);
  EXPECT_EQ(Rows(train2), train_rows);
  EXPECT_EQ(Rows(test2), test_rows);
  auto [train3, test3] = ShuffleSplit(data, 0.8, 43);
  EXPECT_NE(Rows(train3), train_rows);

  EXPECT_EQ(ShuffleSplit(data, 1.0, 1).second.size(), 0);
  EXPECT_EQ(ShuffleSplit(data, 0.0, 1).first.size(), 0);
  EXPECT_EQ(ShuffleSplit(data, 1.5, 1).first.size(), 101);
  EXPECT_EQ(NumClasses(ShuffleSplit(data, 0.0, 1).first), 0);
}

TEST(DatasetSplitTest, TakeGatherAndReshape) {
  const Dataset data = Traceable(10);
  const Dataset mid = Take(data, 3, 6);
  EXPECT_EQ(Rows(mid), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_FALSE(mid.features.SharesBufferWith(data.features)) << "Take copies";
  EXPECT_EQ(Rows(Take(data, 8, 100)), (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(Take(data, 20, 30).size(), 0);
  EXPECT_EQ(Rows(Gather(data, {9, 0, 9, 2})), (std::vector<int64_t>{9, 0, 9, 2}));
  EXPECT_EQ(Gather(data, {}).features.shape(), (Shape{0, 2}));

  auto reshaped = ReshapeExamples(data, Shape{2, 1});
  ASSERT_TRUE(reshaped.ok()) << reshaped.status();
  EXPECT_EQ(reshaped->features.shape(), (Shape{10, 2, 1}));
  EXPECT_TRUE(reshaped->features.SharesBufferWith(data.features));
  auto bad = ReshapeExamples(data, Shape{3});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("cannot reshape examples of shape [2] to [3]: the element counts differ"));
  EXPECT_FALSE(ReshapeExamples(data, Shape{-1}).ok());
}

}  // namespace
}  // namespace gradserve
