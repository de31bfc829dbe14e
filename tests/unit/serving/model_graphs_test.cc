// CUDA graphs in a model's config (Triton's optimization.cuda): which
// graph_spec entries ValidateModelConfig refuses, with the field named, and
// which batch sizes DeviceGraphBatchSizes records (Note [Graph batch sizes],
// serving/servable.h). Config only: no device is needed. That Triton's other
// optimization fields do not parse is tested in proto_wire_test.cc.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "serving/model_config.h"

namespace gradserve::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

inference::ModelConfig Config(const std::string& text) {
  inference::ModelConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  c.set_name("m");
  return c;
}

// The error of ValidateModelConfig, expected InvalidArgument.
std::string Rejection(const std::string& text) {
  absl::Status s = ValidateModelConfig(Config(text), "m");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text << ": " << s;
  return std::string(s.message());
}

TEST(ModelGraphsTest, ValidGraphSpecsAreAccepted) {
  for (const char* text : {
           "max_batch_size: 32 optimization { cuda { graphs: true } }",
           "max_batch_size: 32 optimization { cuda { graphs: true graph_spec [ { batch_size: 1 },"
           " { batch_size: 32 } ] } }",
           // Duplicates are ignored, not refused.
           "max_batch_size: 8 optimization { cuda { graphs: true graph_spec [ { batch_size: 4 },"
           " { batch_size: 4 } ] } }",
           "max_batch_size: 0 optimization { cuda { graphs: true graph_spec { batch_size: 1 } } }",
           // Triton's way of saying the same.
           "max_batch_size: 0 optimization { cuda { graphs: true graph_spec { batch_size: 0 } } }",
           "optimization { cuda { graphs: false } }",
       }) {
    EXPECT_TRUE(ValidateModelConfig(Config(text), "m").ok()) << text;
  }
}

TEST(ModelGraphsTest, GraphSpecWithoutGraphsIsRefused) {
  EXPECT_THAT(Rejection("max_batch_size: 8 optimization { cuda { graph_spec { batch_size: 4 } } }"),
              HasSubstr("optimization.cuda.graph_spec is set but optimization.cuda.graphs is not "
                        "true"));
}

TEST(ModelGraphsTest, GraphSpecBatchSizeOutsideOneToMaxBatchSizeIsRefused) {
  EXPECT_THAT(Rejection("max_batch_size: 8 optimization { cuda { graphs: true graph_spec [ "
                        "{ batch_size: 4 }, { batch_size: 9 } ] } }"),
              HasSubstr("optimization.cuda.graph_spec batch_size 9 is outside [1, max_batch_size "
                        "= 8]"));
  EXPECT_THAT(Rejection("max_batch_size: 8 optimization { cuda { graphs: true graph_spec "
                        "{ batch_size: 0 } } }"),
              HasSubstr("optimization.cuda.graph_spec batch_size 0 is outside [1, max_batch_size "
                        "= 8]"));
  EXPECT_THAT(Rejection("max_batch_size: 8 optimization { cuda { graphs: true graph_spec "
                        "{ batch_size: -2 } } }"),
              HasSubstr("batch_size -2 is outside"));
}

TEST(ModelGraphsTest, WithoutBatchingOnlyBatchSizeZeroOrOneIsAccepted) {
  for (int batch_size : {2, -1}) {
    const std::string text = absl::StrCat(
        "optimization { cuda { graphs: true graph_spec { batch_size: ", batch_size, " } } }");
    EXPECT_THAT(Rejection(text),
                HasSubstr(absl::StrCat("optimization.cuda.graph_spec batch_size ", batch_size,
                                       " must be 0 or 1: with max_batch_size 0 the model is not "
                                       "batched")));
  }
}

TEST(ModelGraphsTest, NoSizesUnlessGraphsIsTrue) {
  EXPECT_THAT(DeviceGraphBatchSizes(Config("max_batch_size: 8")), IsEmpty());
  EXPECT_THAT(DeviceGraphBatchSizes(Config("max_batch_size: 8 optimization { cuda { } }")),
              IsEmpty());
  EXPECT_THAT(DeviceGraphBatchSizes(
                  Config("max_batch_size: 8 dynamic_batching { preferred_batch_size: [ 4 ] }")),
              IsEmpty());
}

TEST(ModelGraphsTest, GraphSpecSizesComeSortedWithoutDuplicates) {
  EXPECT_THAT(DeviceGraphBatchSizes(
                  Config("max_batch_size: 64 dynamic_batching { preferred_batch_size: [ 16 ] } "
                         "optimization { cuda { graphs: true graph_spec [ { batch_size: 32 }, "
                         "{ batch_size: 1 }, { batch_size: 8 }, { batch_size: 32 } ] } }")),
              ElementsAre(1, 8, 32));
}

TEST(ModelGraphsTest, WithoutGraphSpecThePreferredSizesThenMaxBatchSize) {
  EXPECT_THAT(DeviceGraphBatchSizes(Config(
                  "max_batch_size: 64 dynamic_batching { preferred_batch_size: [ 32, 4, 32 ] } "
                  "optimization { cuda { graphs: true } }")),
              ElementsAre(4, 32));
  EXPECT_THAT(DeviceGraphBatchSizes(Config("max_batch_size: 64 dynamic_batching { } "
                                           "optimization { cuda { graphs: true } }")),
              ElementsAre(64));
  EXPECT_THAT(
      DeviceGraphBatchSizes(Config("max_batch_size: 16 optimization { cuda { graphs: true } }")),
      ElementsAre(16));
  // Without batching: the one unbatched shape.
  EXPECT_THAT(DeviceGraphBatchSizes(Config("optimization { cuda { graphs: true } }")),
              ElementsAre(1));
}

}  // namespace
}  // namespace gradserve::serving
