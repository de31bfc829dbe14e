#pragma once

#include "graph/builder/scope.h"

namespace gradserve::ops {

// A resource variable: the handle node is named by the scope (the variable's
// name in checkpoints); value shape and dtype are fixed.
Output VarHandleOp(const Scope& s, DType dtype, const Shape& shape);
Output ReadVariableOp(const Scope& s, Output handle, DType dtype);
Node* AssignVariableOp(const Scope& s, Output handle, Output value);
Node* AssignAddVariableOp(const Scope& s, Output handle, Output value);
Node* AssignSubVariableOp(const Scope& s, Output handle, Output value);
Output VarIsInitializedOp(const Scope& s, Output handle);

}  // namespace gradserve::ops
