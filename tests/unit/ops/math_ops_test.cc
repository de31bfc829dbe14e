// Math and reduction behaviour the data-driven cases cannot express: infinities
// and NaN (the harness compares finite values), accumulation precision on long
// rows, and the builder functions end to end.
#include "graph/builder/math_ops.h"

#include <cmath>
#include <limits>

#include "graph/builder/array_ops.h"
#include "gtest/gtest.h"
#include "runtime/session.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor RunOne(const std::string& op, const std::vector<Tensor>& inputs, const AttrMap& attrs = {},
              const std::vector<bool>& constant = {}) {
  absl::StatusOr<OpResult> r = RunOp(op, inputs, attrs, constant);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->outputs[0] : Tensor();
}

TEST(ReductionTest, MaxAndMinOfNothingAreInfinite) {
  const Tensor empty(DType::kFloat, Shape{0, 2});
  const Tensor axis0 = Tensor::FromVector<int32_t>({0});
  const Tensor max = RunOne("Max", {empty, axis0}, {}, {false, true});
  const Tensor min = RunOne("Min", {empty, axis0}, {}, {false, true});
  ASSERT_EQ(max.shape(), (Shape{2}));
  ASSERT_EQ(min.shape(), (Shape{2}));
  EXPECT_EQ(max.data<float>()[0], -kInf);
  EXPECT_EQ(min.data<float>()[1], kInf);

  const Tensor empty_half(DType::kHalf, Shape{3, 0});
  const Tensor axis1 = Tensor::FromVector<int32_t>({1});
  const Tensor max_half = RunOne("Max", {empty_half, axis1}, {}, {false, true});
  EXPECT_EQ(static_cast<float>(max_half.data<half>()[2]), -kInf);
}

// Short rows go to Eigen, long ones to the row-wise paths; all propagate NaN.
TEST(ReductionTest, MaxAndMinPropagateNaN) {
  for (int64_t n : {3, 40}) {
    for (int axis : {0, 1}) {
      // x is [n, n] with a NaN at (0, 1); every other value is finite.
      Tensor x(DType::kFloat, Shape{n, n});
      for (int64_t i = 0; i < n * n; ++i) x.data<float>()[i] = static_cast<float>(i % 7);
      x.data<float>()[1] = kNaN;
      const Tensor axes = Tensor::FromVector<int32_t>({axis});
      for (const char* op : {"Max", "Min"}) {
        SCOPED_TRACE(absl::StrCat(op, " n=", n, " axis=", axis));
        const Tensor y = RunOne(op, {x, axes}, {}, {false, true});
        ASSERT_EQ(y.num_elements(), n);
        const int64_t nan_at = axis == 0 ? 1 : 0;
        for (int64_t i = 0; i < n; ++i) EXPECT_EQ(std::isnan(y.data<float>()[i]), i == nan_at) << i;
      }
    }
  }
}

TEST(ReductionTest, MeanOfNothingIsNaN) {
  const Tensor empty(DType::kFloat, Shape{0});
  const Tensor y = RunOne("Mean", {empty, Tensor::FromVector<int32_t>({0})}, {}, {false, true});
  ASSERT_EQ(y.shape(), Shape{});
  EXPECT_TRUE(std::isnan(y.scalar<float>()));
}

// 16-bit floats stop counting at 2^11 (half) or 2^8 (bfloat16) when they
// accumulate in their own type; Sum and Mean accumulate in float.
TEST(ReductionTest, HalfAndBFloat16SumsAccumulateInFloat) {
  const int64_t n = 4096;
  Tensor h(DType::kHalf, Shape{n});
  Tensor b(DType::kBFloat16, Shape{n});
  for (int64_t i = 0; i < n; ++i) {
    h.data<half>()[i] = half(1.0f);
    b.data<bfloat16>()[i] = bfloat16(1.0f);
  }
  const Tensor axis = Tensor::Scalar<int32_t>(0);
  EXPECT_EQ(static_cast<float>(RunOne("Sum", {h, axis}, {}, {false, true}).scalar<half>()),
            4096.0f);
  EXPECT_EQ(static_cast<float>(RunOne("Sum", {b, axis}, {}, {false, true}).scalar<bfloat16>()),
            4096.0f);
  EXPECT_EQ(static_cast<float>(RunOne("Mean", {h, axis}, {}, {false, true}).scalar<half>()), 1.0f);
}

TEST(ReductionTest, LargeNonContiguousReductionMatchesLoop) {
  // [R, K, R, K] with sizes large enough for Eigen's threaded paths.
  const Shape shape{17, 33, 9, 65};
  const RefTensor x = Random(shape);
  const Tensor in = ToTensor(x, DType::kDouble);
  const Tensor y = RunOne("Sum", {in, Tensor::FromVector<int64_t>({0, 2})}, {}, {false, true});
  ASSERT_EQ(y.shape(), (Shape{33, 65}));
  for (int64_t j = 0; j < 33; ++j)
    for (int64_t l = 0; l < 65; ++l) {
      double want = 0;
      for (int64_t i = 0; i < 17; ++i)
        for (int64_t k = 0; k < 9; ++k) want += x.v[((i * 33 + j) * 9 + k) * 65 + l];
      ASSERT_NEAR(y.data<double>()[j * 65 + l], want, 1e-9) << j << "," << l;
    }
}

TEST(MaximumTest, PropagatesNaN) {
  const Tensor x = Tensor::FromVector<float>({kNaN, 1, 2});
  const Tensor y = Tensor::FromVector<float>({0, kNaN, 1});
  for (const char* op : {"Maximum", "Minimum"}) {
    const Tensor z = RunOne(op, {x, y});
    EXPECT_TRUE(std::isnan(z.data<float>()[0])) << op;
    EXPECT_TRUE(std::isnan(z.data<float>()[1])) << op;
    EXPECT_FALSE(std::isnan(z.data<float>()[2])) << op;
  }
}

TEST(CastTest, NaNAndInfinityToBoolAreTrue) {
  const Tensor x = Tensor::FromVector<float>({kNaN, kInf, 0.0f, -0.0f});
  const Tensor y = RunOne("Cast", {x}, {{"DstT", MakeAttr(DType::kBool)}});
  EXPECT_EQ(y.span<bool>()[0], true);
  EXPECT_EQ(y.span<bool>()[1], true);
  EXPECT_EQ(y.span<bool>()[2], false);
  EXPECT_EQ(y.span<bool>()[3], false);
}

TEST(CastTest, TruncateKeepsNaN) {
  const Tensor x = Tensor::FromVector<float>({kNaN, -kInf});
  const Tensor y =
      RunOne("Cast", {x}, {{"DstT", MakeAttr(DType::kHalf)}, {"Truncate", MakeAttr(true)}});
  EXPECT_TRUE(std::isnan(static_cast<float>(y.data<half>()[0])));
  EXPECT_EQ(static_cast<float>(y.data<half>()[1]), -kInf);
}

// The builder functions wire the TensorFlow attrs the kernels read.
TEST(MathBuilderTest, BuildsAndRunsAPipeline) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Const(s, std::vector<float>{1, -2, 3, -4, 5, -6}, Shape{2, 3});
  Output w = ops::Const(s, std::vector<float>{1, 0, 0, 1, 1, 1}, Shape{1, 3, 2});
  Output prod = ops::BatchMatMulV2(s, x, w);                   // [1, 2, 2]
  Output sq = ops::Square(s, ops::Neg(s, ops::Abs(s, prod)));  // |p|^2
  Output total = ops::Sum(s, sq, ops::Const(s, std::vector<int32_t>{0, 2}, Shape{2}),
                          {.keep_dims = true});  // [1, 2, 1]
  Output mean = ops::Mean(s, ops::Sqrt(s, total), ops::Const<int64_t>(s, -1));
  Output arg = ops::ArgMax(s, x, ops::Const<int32_t>(s, 1), {.output_type = DType::kInt32});
  Output as_int =
      ops::Cast(s.WithName("as_int"), ops::Maximum(s, x, ops::Const(s, 0.0f)), DType::kInt64);
  Output same = ops::Equal(s, ops::Const<int32_t>(s, 1), ops::Cast(s, x, DType::kInt32),
                           {.incompatible_shape_error = false});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(prod.shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(total.shape(), (Shape{1, 2, 1}));
  EXPECT_EQ(mean.shape(), (Shape{1, 2}));
  EXPECT_EQ(arg.dtype(), DType::kInt32);
  const std::vector<std::string> fetches = {mean.name(), arg.name(), as_int.name(), same.name()};
  auto session = Session::Create(std::move(graph), {.intra_op_threads = 2});
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  ASSERT_TRUE((*session)->Run({}, fetches, {}, &out).ok());
  // prod = [[1+3, -2+3], [-4-6, 5-6]] = [[4, 1], [-10, -1]]; row sums of squares
  // are 17 and 101.
  EXPECT_FLOAT_EQ(out[0].data<float>()[0], std::sqrt(17.0f));
  EXPECT_FLOAT_EQ(out[0].data<float>()[1], std::sqrt(101.0f));
  EXPECT_EQ(out[1].data<int32_t>()[0], 2);
  EXPECT_EQ(out[1].data<int32_t>()[1], 1);
  EXPECT_EQ(out[2].data<int64_t>()[4], 5);
  EXPECT_EQ(out[2].data<int64_t>()[5], 0);
  EXPECT_TRUE(out[3].data<bool>()[0]);
  EXPECT_FALSE(out[3].data<bool>()[1]);
}

}  // namespace
}  // namespace gradserve::testing
