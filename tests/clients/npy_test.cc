// The client's .npy reader and writer: round trips for every protocol dtype,
// the bytes numpy.save writes, and the errors for what it cannot read.
#include "clients/npy.h"

#include <cstring>

#include "gtest/gtest.h"

namespace gradserve::client {
namespace {

std::string Bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

TEST(NpyTest, RoundTripsEveryProtocolDatatype) {
  for (const char* datatype : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                               "INT32", "INT64", "FP16", "FP32", "FP64"}) {
    const size_t size = *DatatypeSize(datatype);
    Tensor t{"x", datatype, {2, 3}, std::string(6 * size, '\0')};
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<char>(i % 2);
    absl::StatusOr<std::string> bytes = SerializeNpy(t);
    ASSERT_TRUE(bytes.ok()) << datatype << ": " << bytes.status();
    absl::StatusOr<Tensor> back = ParseNpy(*bytes, "x");
    ASSERT_TRUE(back.ok()) << datatype << ": " << back.status();
    EXPECT_EQ(back->datatype, datatype);
    EXPECT_EQ(back->shape, t.shape);
    EXPECT_EQ(back->data, t.data);
  }
}

TEST(NpyTest, WritesNumpysLayout) {
  const float values[] = {1.5f, -2.0f};
  absl::StatusOr<std::string> bytes = SerializeNpy({"v", "FP32", {2}, Bytes(values, 8)});
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes->size() % 64, 8u);  // header padded to 64, then 8 data bytes
  EXPECT_NE(bytes->find("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"),
            std::string::npos);
  EXPECT_EQ((*bytes)[bytes->size() - 9], '\n');
}

TEST(NpyTest, ReadsScalarsAndVersion2Headers) {
  const std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': (), }\n";
  const int64_t value = 42;
  std::string v2 = std::string("\x93NUMPY\x02\x00", 8);
  const uint32_t len = static_cast<uint32_t>(header.size());
  v2 += Bytes(&len, 4) + header + Bytes(&value, 8);
  absl::StatusOr<Tensor> t = ParseNpy(v2);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->datatype, "INT64");
  EXPECT_TRUE(t->shape.empty());
  EXPECT_EQ(t->data, Bytes(&value, 8));
}

TEST(NpyTest, WidensBf16ToFloat) {
  const uint16_t one = 0x3f80;  // 1.0 in bfloat16
  absl::StatusOr<std::string> bytes = SerializeNpy({"b", "BF16", {1}, Bytes(&one, 2)});
  ASSERT_TRUE(bytes.ok());
  absl::StatusOr<Tensor> t = ParseNpy(*bytes);
  ASSERT_TRUE(t.ok());
  float f;
  std::memcpy(&f, t->data.data(), 4);
  EXPECT_EQ(t->datatype, "FP32");
  EXPECT_EQ(f, 1.0f);
}

std::string File(const std::string& dict, const std::string& data) {
  std::string header = dict + "\n";
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size()));
  out.push_back('\0');
  return out + header + data;
}

TEST(NpyTest, RejectsWhatItCannotRead) {
  struct Case {
    std::string bytes, message;
  };
  const Case cases[] = {
      {"not numpy at all", "magic"},
      {File("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "abcd"), "big-endian"},
      {File("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "abcdabcd"), "<c8"},
      {File("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "abcd"), "Fortran"},
      {File("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "abcd"), "holds 4 bytes"},
      {File("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "abcd"),
       "structured"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Tensor> t = ParseNpy(c.bytes);
    ASSERT_FALSE(t.ok()) << c.message;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.message), std::string::npos) << t.status();
  }
  EXPECT_FALSE(SerializeNpy({"s", "BYTES", {1}, std::string("\x01\0\0\0a", 5)}).ok());
  absl::StatusOr<Tensor> missing = ReadNpy("/nonexistent/x.npy");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/x.npy"), std::string::npos);
}

}  // namespace
}  // namespace gradserve::client
