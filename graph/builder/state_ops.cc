#include "graph/builder/state_ops.h"

namespace gradserve::ops {

Output VarHandleOp(const Scope& s, DType dtype, const Shape& shape) {
  return s.AddNode("VarHandleOp", {}, {{"dtype", MakeAttr(dtype)}, {"shape", MakeAttr(shape)}});
}
Output ReadVariableOp(const Scope& s, Output handle, DType dtype) {
  return s.AddNode("ReadVariableOp", {handle}, {{"dtype", MakeAttr(dtype)}});
}
Node* AssignVariableOp(const Scope& s, Output handle, Output value) {
  return s.AddNode("AssignVariableOp", {handle, value}, {{"dtype", MakeAttr(value.dtype())}});
}
Node* AssignAddVariableOp(const Scope& s, Output handle, Output value) {
  return s.AddNode("AssignAddVariableOp", {handle, value}, {{"dtype", MakeAttr(value.dtype())}});
}
Node* AssignSubVariableOp(const Scope& s, Output handle, Output value) {
  return s.AddNode("AssignSubVariableOp", {handle, value}, {{"dtype", MakeAttr(value.dtype())}});
}
Output VarIsInitializedOp(const Scope& s, Output handle) {
  return s.AddNode("VarIsInitializedOp", {handle});
}

}  // namespace gradserve::ops
