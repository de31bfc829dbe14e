// Conformance cases for the reduction op family (see op_test_util.h).
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

std::vector<OpCase> ReductionOpCases() {
  std::vector<OpCase> cases;
  return cases;
}

}  // namespace gradserve::testing
