// A TensorFlow-style graph written in text format by hand loads and runs, and
// matches a float64 computation of the same network.
#include <cmath>
#include <fstream>
#include <sstream>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "runtime/session.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

TEST(TfGraphTest, HandWrittenMlpLoadsAndRuns) {
  const char* env = std::getenv("GRADSERVE_TEST_DATA");
  const std::string root = env != nullptr ? env : GRADSERVE_TESTS_DIR;
  std::ifstream in(root + "/data/tf_mlp.pbtxt");
  std::stringstream text;
  text << in.rdbuf();
  GraphDef def;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text.str(), &def));
  auto session = Session::Create(def);
  ASSERT_TRUE(session.ok()) << session.status();

  const auto x = testing::Random(Shape{5, 3});
  std::vector<Tensor> out;
  ASSERT_TRUE((*session)
                  ->Run({{"x", testing::ToTensor(x, DType::kFloat)}}, {"probabilities"}, {}, &out)
                  .ok());
  const auto w = testing::FromTensor(*TensorFromProto(def.node(1).attr().at("value").tensor()));
  const auto b = testing::FromTensor(*TensorFromProto(def.node(2).attr().at("value").tensor()));
  const auto xf = testing::FromTensor(testing::ToTensor(x, DType::kFloat));
  ASSERT_EQ(out[0].shape(), (Shape{5, 4}));
  for (int r = 0; r < 5; ++r) {
    double h[4], z = 0;
    for (int j = 0; j < 4; ++j) {
      double acc = b.v[j];
      for (int k = 0; k < 3; ++k) acc += xf.v[r * 3 + k] * w.v[k * 4 + j];
      h[j] = std::exp(std::tanh(acc));
      z += h[j];
    }
    for (int j = 0; j < 4; ++j) {
      EXPECT_NEAR(out[0].data<float>()[r * 4 + j], h[j] / z, 1e-6) << "row " << r << " col " << j;
    }
  }
}

}  // namespace
}  // namespace gradserve
