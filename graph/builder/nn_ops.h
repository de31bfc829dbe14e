#pragma once

#include "graph/builder/scope.h"

namespace gradserve::ops {}  // namespace gradserve::ops
