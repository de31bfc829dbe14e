// Conformance cases for the nn op family (see op_test_util.h).
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

std::vector<OpCase> NnOpCases() {
  std::vector<OpCase> cases;
  return cases;
}

}  // namespace gradserve::testing
