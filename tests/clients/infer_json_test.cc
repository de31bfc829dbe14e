// The JSON inference body (gradserve-cli infer --json) and the printed form of
// tensors.
#include "clients/infer_json.h"

#include <cstring>

#include "gtest/gtest.h"

namespace gradserve::client {
namespace {

TEST(InferJsonTest, ReadsNestedAndFlatData) {
  absl::StatusOr<InferRequest> r = InferRequestFromJson(R"({
    "id": "req-1",
    "inputs": [
      {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2.5], [3, -4]]},
      {"name": "n", "shape": [3], "datatype": "INT64", "data": [1, -2, 3]},
      {"name": "b", "shape": [2], "datatype": "BOOL", "data": [true, false]},
      {"name": "s", "shape": [1], "datatype": "BYTES", "data": ["hi"]}],
    "outputs": [{"name": "y"}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "req-1");
  ASSERT_EQ(r->inputs.size(), 4u);
  float x[4];
  ASSERT_EQ(r->inputs[0].data.size(), sizeof(x));
  std::memcpy(x, r->inputs[0].data.data(), sizeof(x));
  EXPECT_EQ(x[1], 2.5f);
  EXPECT_EQ(x[3], -4.0f);
  int64_t n[3];
  std::memcpy(n, r->inputs[1].data.data(), sizeof(n));
  EXPECT_EQ(n[1], -2);
  EXPECT_EQ(r->inputs[2].data, std::string("\x01\x00", 2));
  EXPECT_EQ(r->inputs[3].data, std::string("\x02\0\0\0hi", 6));
  EXPECT_EQ(r->outputs, std::vector<std::string>{"y"});
}

TEST(InferJsonTest, ErrorsNameTheInput) {
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {"{", "not valid JSON"},
      {R"({"inputs": 3})", "no \"inputs\" list"},
      {R"({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]})",
       "input 'x': \"data\" holds 2 elements but shape [3] needs 3"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]})",
       "input 'x': element 300 is not a whole number in range"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]})",
       "input 'x'"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP33", "data": [1]}]})",
       "unknown datatype 'FP33'"},
      {R"({"inputs": [{"name": "x", "shape": [1], "data": [1]}]})", "no \"datatype\""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<InferRequest> r = InferRequestFromJson(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status();
  }
}

TEST(InferJsonTest, FormatsOneLinePerRow) {
  const float v[] = {0.1f, 2.0f, -3.5f, 1e-8f};
  Tensor t{"y", "FP32", {2, 2}, std::string(reinterpret_cast<const char*>(v), sizeof(v))};
  EXPECT_EQ(FormatTensor(t), "y FP32 [2,2]\n0.1 2\n-3.5 1e-08\n");
  const int8_t i[] = {-1, 7};
  EXPECT_EQ(FormatTensor({"i", "INT8", {2}, std::string(reinterpret_cast<const char*>(i), 2)}),
            "i INT8 [2]\n-1 7\n");
}

}  // namespace
}  // namespace gradserve::client
