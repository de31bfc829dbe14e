// Variables carry no gradient through their ops: a variable is differentiated
// with respect to by naming its ReadVariableOp output as an x.
#include "autodiff/gradients.h"
#include "graph/status.h"

namespace gradserve {

absl::Status RegisterStateGradients(GradientRegistry& r) {
  for (const char* op : {"VarHandleOp", "ReadVariableOp", "AssignVariableOp",
                         "AssignAddVariableOp", "AssignSubVariableOp", "VarIsInitializedOp",
                         // Optimizer steps (graph/ops/optimizer_ops.cc) only write variables.
                         "ResourceApplyGradientDescent", "ResourceApplyMomentum",
                         "ResourceApplyAdam"}) {
    GS_RETURN_IF_ERROR(r.RegisterNotDifferentiable(op));
  }
  return absl::OkStatus();
}

}  // namespace gradserve
