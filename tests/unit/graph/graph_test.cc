#include "graph/graph.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "graph/builder/ops.h"
#include "graph/shape_inference.h"
#include "gtest/gtest.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;

GraphDef ParseText(const std::string& text) {
  GraphDef def;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &def)) << text;
  return def;
}

absl::Status Import(const std::string& text) {
  return Graph::FromGraphDef(ParseText(text)).status();
}

constexpr char kSmallGraph[] = R"pb(
  node {
    name: "x"
    op: "Placeholder"
    attr { key: "dtype" value { type: DT_FLOAT } }
    attr { key: "shape" value { shape { dim { size: -1 } dim { size: 3 } } } }
  }
  node {
    name: "w"
    op: "Const"
    attr { key: "dtype" value { type: DT_FLOAT } }
    attr {
      key: "value"
      value {
        tensor {
          dtype: DT_FLOAT
          tensor_shape { dim { size: 3 } dim { size: 2 } }
          float_val: [ 1, 2, 3, 4, 5, 6 ]
        }
      }
    }
  }
  node {
    name: "y"
    op: "MatMul"
    input: [ "x", "w:0" ]
    attr { key: "T" value { type: DT_FLOAT } }
    attr { key: "_output_shapes" value { list {} } }
  }
  versions { producer: 1882 }
)pb";

TEST(GraphTest, RoundTripIsLossless) {
  const GraphDef def = ParseText(kSmallGraph);
  auto graph = Graph::FromGraphDef(def);
  ASSERT_TRUE(graph.ok()) << graph.status();
  const GraphDef back = (*graph)->ToGraphDef();
  // Map fields (attrs) serialize in no fixed order, so compare as messages.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, def))
      << back.DebugString();
}

TEST(GraphTest, RoundTripKeepsOrderOfUnsortedGraph) {
  GraphDef def = ParseText(kSmallGraph);
  // Users before producers: import must sort, export must keep the given order.
  std::swap(*def.mutable_node(0), *def.mutable_node(2));
  auto graph = Graph::FromGraphDef(def);
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals((*graph)->ToGraphDef(), def));
}

TEST(GraphTest, InfersShapesAcrossNodes) {
  auto graph = Graph::FromGraphDef(ParseText(kSmallGraph));
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ((*graph)->FindNode("y")->output_shape(0), (Shape{-1, 2}));
  EXPECT_EQ((*graph)->FindNode("y")->output_type(0), DType::kFloat);
}

TEST(GraphTest, BuilderGraphReimports) {
  Graph g;
  Scope s(&g);
  auto x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2, 2});
  auto sum = ops::AddV2(s, x, x);
  ops::Identity(s.WithControlDependencies({sum}), sum);
  ASSERT_TRUE(s.ok()) << s.status();
  auto again = Graph::FromGraphDef(g.ToGraphDef());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->num_nodes(), 3);
  EXPECT_EQ((*again)->FindNode("Identity")->control_inputs().size(), 1u);
}

TEST(GraphValidationTest, UnknownOpNamesNode) {
  absl::Status st = Import(R"pb(node { name: "n1" op: "FancyOp" })pb");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("'n1'"));
  EXPECT_THAT(st.message(), HasSubstr("unknown op"));
}

TEST(GraphValidationTest, MissingInputNamesBoth) {
  absl::Status st = Import(R"pb(
    node { name: "id" op: "Identity" input: "ghost" attr { key: "T" value { type: DT_FLOAT } } }
  )pb");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("'id'"));
  EXPECT_THAT(st.message(), HasSubstr("'ghost'"));
}

TEST(GraphValidationTest, TypeMismatchNamesInput) {
  absl::Status st = Import(R"pb(
    node { name: "a" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
    node { name: "b" op: "Placeholder" attr { key: "dtype" value { type: DT_INT32 } } }
    node {
      name: "sum"
      op: "AddV2"
      input: [ "a", "b" ]
      attr { key: "T" value { type: DT_FLOAT } }
    }
  )pb");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("'sum'"));
  EXPECT_THAT(st.message(), HasSubstr("int32"));
}

TEST(GraphValidationTest, CycleIsReported) {
  absl::Status st = Import(R"pb(
    node { name: "a" op: "Identity" input: "b" attr { key: "T" value { type: DT_FLOAT } } }
    node { name: "b" op: "Identity" input: "a" attr { key: "T" value { type: DT_FLOAT } } }
  )pb");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("cycle"));
  EXPECT_THAT(st.message(), HasSubstr("a"));
}

TEST(GraphValidationTest, BadAttributeTypeNamesAttr) {
  absl::Status st = Import(R"pb(
    node { name: "a" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
    node {
      name: "mm"
      op: "MatMul"
      input: [ "a", "a" ]
      attr { key: "T" value { type: DT_FLOAT } }
      attr { key: "transpose_a" value { i: 1 } }
    }
  )pb");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("'mm'"));
  EXPECT_THAT(st.message(), HasSubstr("transpose_a"));
}

TEST(GraphValidationTest, UnknownAttributeIsRejected) {
  absl::Status st = Import(R"pb(
    node {
      name: "a"
      op: "Placeholder"
      attr { key: "dtype" value { type: DT_FLOAT } }
      attr { key: "colour" value { s: "blue" } }
    }
  )pb");
  EXPECT_THAT(st.message(), HasSubstr("unknown attr 'colour'"));
}

TEST(GraphValidationTest, DisallowedTypeIsRejected) {
  absl::Status st = Import(R"pb(
    node { name: "a" op: "Placeholder" attr { key: "dtype" value { type: DT_BOOL } } }
    node { name: "m" op: "MatMul" input: [ "a", "a" ] attr { key: "T" value { type: DT_BOOL } } }
  )pb");
  EXPECT_THAT(st.message(), HasSubstr("'m'"));
  EXPECT_THAT(st.message(), HasSubstr("bool"));
}

TEST(GraphValidationTest, MissingRequiredAttr) {
  absl::Status st = Import(R"pb(node { name: "c" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } } })pb");
  EXPECT_THAT(st.message(), HasSubstr("missing required attr 'value'"));
}

TEST(GraphValidationTest, DuplicateNameAndBadPort) {
  EXPECT_THAT(Import(R"pb(
                node { name: "a" op: "NoOp" }
                node { name: "a" op: "NoOp" }
              )pb")
                  .message(),
              HasSubstr("duplicate"));
  EXPECT_THAT(Import(R"pb(
                node { name: "a" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
                node { name: "b" op: "Identity" input: "a:3" attr { key: "T" value { type: DT_FLOAT } } }
              )pb")
                  .message(),
              HasSubstr("has only 1 outputs"));
}

TEST(GraphValidationTest, ShapeErrorNamesNode) {
  absl::Status st = Import(R"pb(
    node {
      name: "a"
      op: "Placeholder"
      attr { key: "dtype" value { type: DT_FLOAT } }
      attr { key: "shape" value { shape { dim { size: 2 } dim { size: 3 } } } }
    }
    node { name: "mm" op: "MatMul" input: [ "a", "a" ] attr { key: "T" value { type: DT_FLOAT } } }
  )pb");
  EXPECT_THAT(st.message(), HasSubstr("'mm'"));
  EXPECT_THAT(st.message(), HasSubstr("inner dimensions"));
}

TEST(ShapeTest, BroadcastRules) {
  EXPECT_EQ(*BroadcastShapes(Shape{2, 1, 3}, Shape{4, 1}), (Shape{2, 4, 3}));
  EXPECT_EQ(*BroadcastShapes(Shape{}, Shape{5}), (Shape{5}));
  EXPECT_EQ(*BroadcastShapes(Shape{-1, 3}, Shape{3}), (Shape{-1, 3}));
  EXPECT_FALSE(BroadcastShapes(Shape{2, 3}, Shape{4}).ok());
  EXPECT_TRUE(BroadcastShapes(Shape::UnknownRank(), Shape{4}).value().unknown_rank());
}

TEST(TensorTest, SliceSharesBufferAlongDimZero) {
  Tensor t = Tensor::FromVector<int32_t>({0, 1, 2, 3, 4, 5}, Shape{3, 2});
  Tensor s = t.Slice(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_TRUE(s.SharesBufferWith(t));
  EXPECT_EQ(s.data<int32_t>()[0], 2);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % Allocator::kAlignment, 0u);
}

TEST(TensorTest, ProtoRoundTripAllDTypes) {
  for (DType d : AllTypes()) {
    Tensor t(d, Shape{2, 3});
    for (size_t i = 0; i < t.bytes(); ++i) static_cast<uint8_t*>(t.raw_data())[i] = i % 2;
    TensorProto p;
    TensorToProto(t, &p);
    auto back = TensorFromProto(p);
    ASSERT_TRUE(back.ok()) << DTypeName(d);
    EXPECT_EQ(back->shape(), t.shape());
    EXPECT_EQ(std::memcmp(back->raw_data(), t.raw_data(), t.bytes()), 0) << DTypeName(d);
  }
}

TEST(TensorTest, ProtoSplatAndErrors) {
  TensorProto p;
  p.set_dtype(DT_FLOAT);
  p.mutable_tensor_shape()->add_dim()->set_size(4);
  p.add_float_val(2.5f);
  auto t = TensorFromProto(p);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->data<float>()[3], 2.5f);
  p.set_tensor_content(std::string(3, '\0'));
  EXPECT_THAT(TensorFromProto(p).status().message(), HasSubstr("tensor_content has 3 bytes"));
}

}  // namespace
}  // namespace gradserve
