// One parametrized test over every op case of every family (see op_test_util.h).
#include <set>

#include "gmock/gmock.h"
#include "graph/builder/array_ops.h"
#include "gtest/gtest.h"
#include "runtime/kernel.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

struct Param {
  const OpCase* c;
  DType dtype;
};
void PrintTo(const Param& p, std::ostream* os) { *os << p.c->name << "/" << DTypeName(p.dtype); }

const std::vector<OpCase>& AllCases() {
  static const std::vector<OpCase>* cases = [] {
    auto* all = new std::vector<OpCase>;
    for (auto family : {MathOpCases, ReductionOpCases, NnOpCases, ArrayOpCases, StateOpCases}) {
      for (OpCase& c : family()) all->push_back(std::move(c));
    }
    return all;
  }();
  return *cases;
}

std::vector<Param> AllParams(bool include_error_cases) {
  std::vector<Param> params;
  for (const OpCase& c : AllCases()) {
    if (!include_error_cases && !c.expect_error.empty()) continue;
    for (DType t : c.dtypes) params.push_back({&c, t});
  }
  return params;
}

double DefaultTolerance(DType t) {
  switch (t) {
    case DType::kFloat: return 1e-5;
    case DType::kDouble: return 1e-10;
    case DType::kHalf: return 5e-3;
    case DType::kBFloat16: return 3e-2;
    default: return 0;
  }
}

class OpConformanceTest : public ::testing::TestWithParam<Param> {};

TEST_P(OpConformanceTest, MatchesReference) {
  const OpCase& c = *GetParam().c;
  const DType t = GetParam().dtype;
  SCOPED_TRACE(absl::StrCat("op ", c.op, " case ", c.name, " dtype ", DTypeName(t),
                            " seed ", Seed()));
  std::vector<Tensor> inputs;
  std::vector<RefTensor> rounded;  // the inputs as the kernel sees them
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const DType d = i < c.input_dtypes.size() && c.input_dtypes[i] != DType::kInvalid
                        ? c.input_dtypes[i]
                        : t;
    inputs.push_back(ToTensor(c.inputs[i], d));
    rounded.push_back(FromTensor(inputs.back()));
  }
  AttrMap attrs = c.attrs;
  if (c.typed_attrs) {
    for (auto& [k, v] : c.typed_attrs(t)) attrs[k] = v;
  }
  absl::StatusOr<OpResult> result = RunOp(c.op, inputs, attrs, c.constant);
  if (!c.expect_error.empty()) {
    ASSERT_FALSE(result.ok()) << "expected an error containing: " << c.expect_error;
    EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr(c.expect_error));
    return;
  }
  ASSERT_TRUE(result.ok()) << result.status();
  const std::vector<RefTensor> want = c.reference(rounded);
  ASSERT_LE(want.size(), result->outputs.size());
  for (size_t o = 0; o < want.size(); ++o) {
    const Tensor& got_t = result->outputs[o];
    const Shape& inferred = result->inferred_shapes[o];
    EXPECT_TRUE(inferred.IsCompatibleWith(got_t.shape()))
        << "output " << o << ": shape function says " << inferred.DebugString()
        << ", kernel produced " << got_t.shape().DebugString();
    if (inferred.IsFullyDefined()) {
      EXPECT_EQ(inferred, got_t.shape()) << "output " << o;
    }
    ASSERT_EQ(got_t.shape(), want[o].shape) << "output " << o;
    const RefTensor got = FromTensor(got_t);
    double tol = c.tolerance > 0 ? c.tolerance : DefaultTolerance(got_t.dtype());
    double worst = 0;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < got.size(); ++i) {
      const double err = std::abs(got.v[i] - want[o].v[i]) / std::max(std::abs(want[o].v[i]), 1.0);
      if (!(err <= worst) && !(std::isnan(got.v[i]) && std::isnan(want[o].v[i]))) {
        worst = std::isnan(err) ? INFINITY : err;
        worst_i = i;
      }
    }
    EXPECT_LE(worst, tol) << "output " << o << " element " << worst_i << ": got "
                          << got.v[worst_i] << ", want " << want[o].v[worst_i];
  }
}

// Shape functions must cope with inputs of unknown shape (graphs from TensorFlow
// often have them); error cases are excluded, their rejection needs the shapes.
class OpShapeFunctionTest : public ::testing::TestWithParam<Param> {};

TEST_P(OpShapeFunctionTest, AcceptsUnknownShapes) {
  const OpCase& c = *GetParam().c;
  Graph graph;
  Scope s(&graph);
  std::vector<Output> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const DType d = i < c.input_dtypes.size() && c.input_dtypes[i] != DType::kInvalid
                        ? c.input_dtypes[i]
                        : GetParam().dtype;
    if (i < c.constant.size() && c.constant[i]) {
      in.push_back(ops::Const(s, ToTensor(c.inputs[i], d)));
    } else {
      in.push_back(ops::Placeholder(s, d, Shape::UnknownRank()));
    }
  }
  AttrMap attrs = c.attrs;
  if (c.typed_attrs) {
    for (auto& [k, v] : c.typed_attrs(GetParam().dtype)) attrs[k] = v;
  }
  s.AddNode(c.op, in, attrs);
  EXPECT_TRUE(s.ok()) << s.status();
}

std::string ParamName(const ::testing::TestParamInfo<Param>& info) {
  std::string name = absl::StrCat(info.param.c->name, "_", DTypeName(info.param.dtype));
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpConformanceTest, ::testing::ValuesIn(AllParams(true)), ParamName);
INSTANTIATE_TEST_SUITE_P(Ops, OpShapeFunctionTest, ::testing::ValuesIn(AllParams(false)),
                         ParamName);

// Every registered op has a CPU kernel and at least one conformance case.
// Variable ops need a session's state across runs; tests/unit/runtime/
// session_test.cc (VariablesTest) and, for the optimizer steps,
// tests/unit/runtime/optimizer_test.cc cover them instead.
TEST(OpCoverageTest, EveryOpHasKernelAndCase) {
  std::set<std::string> covered = {"VarHandleOp",         "ReadVariableOp",
                                   "AssignVariableOp",    "AssignAddVariableOp",
                                   "AssignSubVariableOp", "VarIsInitializedOp",
                                   "ResourceApplyGradientDescent", "ResourceApplyMomentum",
                                   "ResourceApplyAdam"};
  for (const OpCase& c : AllCases()) covered.insert(c.op);
  for (const std::string& op : OpRegistry::Global().OpNames()) {
    EXPECT_TRUE(KernelRegistry::Global().Supports(op, kDeviceCpu)) << op << " has no CPU kernel";
    EXPECT_TRUE(covered.contains(op)) << op << " has no conformance case";
  }
}

}  // namespace
}  // namespace gradserve::testing
