// Op functions of the builder API, one header per op family. Each takes a Scope
// first, then inputs, then an attrs struct with TensorFlow's defaults:
//   ops::MatMul(s, x, w, {.transpose_b = true})
#pragma once

#include "graph/builder/array_ops.h"
#include "graph/builder/math_ops.h"
#include "graph/builder/nn_ops.h"
#include "graph/builder/optimizer_ops.h"
#include "graph/builder/state_ops.h"
