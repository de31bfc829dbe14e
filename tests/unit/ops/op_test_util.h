// The op-conformance harness. Each op family lists OpCases (sample inputs,
// attrs, dtypes and a float64 reference written plainly); one parametrized test
// (op_conformance_test.cc) checks for every case and dtype that
//   - the graph builds and the shape function accepts the inputs,
//   - the kernel's output shapes agree with the inferred shapes,
//   - the kernel's values match the float64 reference within tolerance,
//   - the shape function also copes with inputs of unknown shape,
// and a coverage test fails when a registered op has no case or no CPU kernel.
#pragma once

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "graph/builder/scope.h"
#include "graph/tensor.h"
#include "runtime/session.h"

namespace gradserve::testing {

// A float64 tensor for references: row-major values and a shape.
struct RefTensor {
  Shape shape;
  std::vector<double> v;

  int64_t size() const { return static_cast<int64_t>(v.size()); }
  int rank() const { return shape.rank(); }
  int64_t dim(int i) const { return shape.dim(i); }
};

// The process's random generator; the seed comes from GRADSERVE_TEST_SEED or
// the clock and is printed once, so a failure can be replayed.
std::mt19937_64& Rng();
uint64_t Seed();

RefTensor Random(const Shape& shape, double lo = -1.0, double hi = 1.0);
// Random integers in [lo, hi] (as doubles).
RefTensor RandomInt(const Shape& shape, int64_t lo, int64_t hi);
RefTensor Values(const Shape& shape, std::vector<double> v);
RefTensor Scalar(double v);

// Element-wise helpers for references.
RefTensor Map(const RefTensor& x, const std::function<double(double)>& f);
// NumPy broadcasting of two operands.
RefTensor Broadcast2(const RefTensor& x, const RefTensor& y,
                     const std::function<double(double, double)>& f);
// Row-major strides of a shape.
std::vector<int64_t> Strides(const Shape& shape);

using Reference = std::function<std::vector<RefTensor>(const std::vector<RefTensor>&)>;

struct OpCase {
  std::string name;  // unique test name, e.g. "AddV2_broadcast_row"
  std::string op;
  std::vector<RefTensor> inputs;
  // Per input: its dtype, or kInvalid to use the case's dtype under test.
  std::vector<DType> input_dtypes;
  // Per input: true to feed it as a Const node (axes, shapes, ...).
  std::vector<bool> constant;
  AttrMap attrs;
  // The dtypes under test (substituted for kInvalid input dtypes).
  std::vector<DType> dtypes = {DType::kFloat, DType::kDouble};
  Reference reference;
  // Max |got - want| / max(|want|, 1); 0 = the dtype's default
  // (float 1e-5, double 1e-10, half 5e-3, bfloat16 3e-2, integers and bool exact).
  double tolerance = 0;
  // Non-empty: building or running must fail with a message containing this.
  std::string expect_error;
  // Attrs that depend on the dtype under test (e.g. Cast's SrcT).
  std::function<AttrMap(DType)> typed_attrs;
};

// The cases of each family (tests/unit/ops/<family>_cases.cc).
std::vector<OpCase> MathOpCases();
std::vector<OpCase> ReductionOpCases();
std::vector<OpCase> NnOpCases();
std::vector<OpCase> ArrayOpCases();
std::vector<OpCase> StateOpCases();

struct OpResult {
  std::vector<Tensor> outputs;
  std::vector<Shape> inferred_shapes;  // what the shape function said
};
// Runs `op` once on typed inputs (constant[i] inputs as Const nodes, the others
// fed to Placeholders of their exact shape) and returns every output; used by the
// harness and by family-specific tests.
absl::StatusOr<OpResult> RunOp(const std::string& op, const std::vector<Tensor>& inputs,
                               const AttrMap& attrs,
                               const std::vector<bool>& constant = {},
                               const SessionOptions& options = {.intra_op_threads = 2});

// RefTensor <-> Tensor of a dtype (values rounded to the dtype).
Tensor ToTensor(const RefTensor& r, DType dtype);
RefTensor FromTensor(const Tensor& t);

}  // namespace gradserve::testing
