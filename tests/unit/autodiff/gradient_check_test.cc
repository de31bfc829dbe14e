// One parametrized test over every gradient case of every family
// (see grad_check_util.h), plus the registry's coverage.
#include <set>

#include "autodiff/gradients.h"
#include "gtest/gtest.h"
#include "tests/unit/autodiff/grad_check_util.h"

namespace gradserve::testing {
namespace {

const std::vector<GradCase>& AllGradCases() {
  static const std::vector<GradCase>* cases = [] {
    auto* all = new std::vector<GradCase>;
    for (auto family : {MathGradCases, ReductionGradCases, NnGradCases, ArrayGradCases}) {
      for (GradCase& c : family()) all->push_back(std::move(c));
    }
    return all;
  }();
  return *cases;
}

class GradientCheckTest : public ::testing::TestWithParam<const GradCase*> {};

TEST_P(GradientCheckTest, SymbolicMatchesFiniteDifferences) {
  const GradCase& c = *GetParam();
  SCOPED_TRACE(absl::StrCat("op ", c.op, " case ", c.name, " order ", c.order, " seed ", Seed()));
  const absl::Status status = CheckGradient(c);
  EXPECT_TRUE(status.ok()) << status;
}

std::vector<const GradCase*> Params() {
  std::vector<const GradCase*> p;
  for (const GradCase& c : AllGradCases()) p.push_back(&c);
  return p;
}

std::string Name(const ::testing::TestParamInfo<const GradCase*>& info) {
  std::string name = info.param->name;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

void PrintTo(const GradCase* c, std::ostream* os) { *os << c->name; }

INSTANTIATE_TEST_SUITE_P(Grads, GradientCheckTest, ::testing::ValuesIn(Params()), Name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GradientCheckTest);

// Ops whose gradients are still to come (issue 3). Each must leave this list when
// its gradient or not-differentiable mark lands; the test fails for an op that is
// neither registered nor listed here, and for a listed op that is registered.
const std::set<std::string>& PendingGradients() {
  // FusedBatchNormGradV3: its own gradient (second order through batch norm, TF's
  // _FusedBatchNormGradGrad) is still to come; until then AddGradients reports
  // Unimplemented naming it, rather than a silent zero.
  static const std::set<std::string> pending = {"FusedBatchNormGradV3"};
  return pending;
}

TEST(GradientCoverageTest, EveryOpHasGradientOrMark) {
  const GradientRegistry& grads = GradientRegistry::Global();
  std::set<std::string> with_cases;
  for (const GradCase& c : AllGradCases()) with_cases.insert(c.op);
  std::vector<std::string> missing;
  for (const std::string& op : OpRegistry::Global().OpNames()) {
    bool not_differentiable = false;
    const bool has = grads.Find(op, &not_differentiable) != nullptr;
    if (PendingGradients().contains(op)) {
      EXPECT_FALSE(has || not_differentiable) << op << " has landed: remove it from the pending list";
      continue;
    }
    if (!has && !not_differentiable) missing.push_back(op);
    if (has) EXPECT_TRUE(with_cases.contains(op)) << op << " has a gradient but no gradient-check case";
  }
  EXPECT_TRUE(missing.empty()) << "ops with neither a gradient nor a not-differentiable mark: "
                               << ::testing::PrintToString(missing);
}

}  // namespace
}  // namespace gradserve::testing
