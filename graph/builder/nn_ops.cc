#include "graph/builder/nn_ops.h"

namespace gradserve::ops {}  // namespace gradserve::ops
