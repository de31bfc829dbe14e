#include "autodiff/gradients.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "graph/builder/ops.h"
#include "graph/status.h"

namespace gradserve {

absl::Status GradientRegistry::Register(const std::string& op, GradFn fn) {
  if (Knows(op)) return absl::AlreadyExistsError(absl::StrCat("gradient of ", op, " registered twice"));
  fns_.emplace(op, std::move(fn));
  return absl::OkStatus();
}

absl::Status GradientRegistry::RegisterNotDifferentiable(const std::string& op) {
  if (Knows(op)) return absl::AlreadyExistsError(absl::StrCat("gradient of ", op, " registered twice"));
  not_differentiable_.emplace(op, true);
  return absl::OkStatus();
}

const GradFn* GradientRegistry::Find(absl::string_view op, bool* not_differentiable) const {
  *not_differentiable = not_differentiable_.find(op) != not_differentiable_.end();
  auto it = fns_.find(op);
  return it == fns_.end() ? nullptr : &it->second;
}

bool GradientRegistry::Knows(absl::string_view op) const {
  return fns_.find(op) != fns_.end() || not_differentiable_.find(op) != not_differentiable_.end();
}

const GradientRegistry& GradientRegistry::Global() {
  static const GradientRegistry* registry = [] {
    auto* r = new GradientRegistry;
    absl::Status status = RegisterAllGradients(*r);
    if (!status.ok()) {
      fprintf(stderr, "gradient registration failed: %s\n", std::string(status.message()).c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

absl::Status RegisterAllGradients(GradientRegistry& registry) {
  GS_RETURN_IF_ERROR(RegisterMathGradients(registry));
  GS_RETURN_IF_ERROR(RegisterReductionGradients(registry));
  GS_RETURN_IF_ERROR(RegisterNnGradients(registry));
  GS_RETURN_IF_ERROR(RegisterArrayGradients(registry));
  GS_RETURN_IF_ERROR(RegisterStateGradients(registry));
  return absl::OkStatus();
}

namespace {

using OutputKey = std::pair<int, int>;  // node id, output index

// The sum of `grads` (one node for several: AddN), or an empty Output for none.
Output SumGradients(const Scope& s, const std::vector<Output>& grads) {
  if (grads.empty()) return Output();
  if (grads.size() == 1) return grads[0];
  return ops::AddN(s, grads);
}

}  // namespace

absl::StatusOr<std::vector<Output>> AddGradients(const Scope& scope, const std::vector<Output>& ys,
                                                 const std::vector<Output>& xs,
                                                 const std::vector<Output>& grad_ys) {
  GS_RETURN_IF_ERROR(scope.status());
  Graph& graph = *scope.graph();
  for (const Output& t : ys) GS_CHECK_ARG(t.valid(), "AddGradients: a y is empty");
  for (const Output& t : xs) GS_CHECK_ARG(t.valid(), "AddGradients: an x is empty");
  GS_CHECK_ARG(grad_ys.empty() || grad_ys.size() == ys.size(), "AddGradients: ", grad_ys.size(),
               " grad_ys for ", ys.size(), " ys");
  const int num_nodes = graph.num_nodes();  // gradient nodes added below are not walked

  // The nodes on some path from an x to a y (data edges only).
  std::vector<bool> from_x(num_nodes, false), to_y(num_nodes, false);
  for (const Output& x : xs) from_x[x.node->id()] = true;
  for (int id = 0; id < num_nodes; ++id) {  // ids are a topological order
    if (!from_x[id]) continue;
    for (const OutEdge& e : graph.nodes()[id]->out_edges()) {
      if (e.src_output != OutEdge::kControlSlot && e.dst->id() < num_nodes) from_x[e.dst->id()] = true;
    }
  }
  for (const Output& y : ys) to_y[y.node->id()] = true;
  for (int id = num_nodes - 1; id >= 0; --id) {
    if (!to_y[id]) continue;
    for (const NodeOut& in : graph.nodes()[id]->inputs()) to_y[in.node->id()] = true;
  }
  auto on_path = [&](int id) { return from_x[id] && to_y[id]; };

  const Scope gs = scope.NewSubScope("gradients");
  absl::flat_hash_map<OutputKey, std::vector<Output>> pending;
  for (size_t i = 0; i < ys.size(); ++i) {
    Output seed = grad_ys.empty() ? ops::OnesLike(gs, ys[i]) : grad_ys[i];
    GS_RETURN_IF_ERROR(gs.status());
    GS_CHECK_ARG(seed.dtype() == ys[i].dtype(), "AddGradients: grad_ys[", i, "] is ",
                 DTypeName(seed.dtype()), " but y ", ys[i].name(), " is ", DTypeName(ys[i].dtype()));
    pending[{ys[i].node->id(), ys[i].index}].push_back(seed);
  }

  const GradientRegistry& registry = GradientRegistry::Global();
  for (int id = num_nodes - 1; id >= 0; --id) {
    if (!on_path(id)) continue;
    Node* node = graph.nodes()[id].get();
    // Which inputs want a gradient: on the path, and of a floating dtype.
    std::vector<bool> needs(node->num_inputs(), false);
    bool any_needed = false;
    for (int i = 0; i < node->num_inputs(); ++i) {
      needs[i] = on_path(node->input(i).node->id()) && IsFloatingDType(node->input_type(i));
      any_needed |= needs[i];
    }
    if (!any_needed) continue;
    // Gradients of this node's outputs; stop if none reached it.
    std::vector<Output> grad_outputs(node->num_outputs());
    bool any_grad = false;
    for (int o = 0; o < node->num_outputs(); ++o) {
      auto it = pending.find({id, o});
      if (it == pending.end()) continue;
      grad_outputs[o] = SumGradients(gs, it->second);
      any_grad = true;
    }
    if (!any_grad) continue;
    bool not_differentiable = false;
    const GradFn* fn = registry.Find(node->op(), &not_differentiable);
    if (not_differentiable) continue;
    if (fn == nullptr) {
      return absl::UnimplementedError(absl::StrCat("no gradient registered for op ", node->op(),
                                                   " (node '", node->name(), "')"));
    }
    const Scope op_scope = gs.NewSubScope(node->name() + "_grad");
    GradContext ctx{.scope = op_scope, .op = *node, .needs_grad = needs};
    for (const NodeOut& in : node->inputs()) ctx.inputs.emplace_back(in);
    for (int o = 0; o < node->num_outputs(); ++o) {
      ctx.outputs.emplace_back(node, o);
      // Outputs no gradient reached contribute zeros.
      if (!grad_outputs[o].valid() && IsFloatingDType(node->output_type(o))) {
        grad_outputs[o] = ops::ZerosLike(op_scope, Output(node, o));
      }
    }
    ctx.grad_outputs = std::move(grad_outputs);
    std::vector<Output> grad_inputs;
    GS_RETURN_IF_ERROR(Annotate((*fn)(ctx, &grad_inputs),
                                absl::StrCat("gradient of node '", node->name(), "' (", node->op(), ")")));
    GS_RETURN_IF_ERROR(op_scope.status());
    if (grad_inputs.size() != static_cast<size_t>(node->num_inputs())) {
      return absl::InternalError(absl::StrCat("gradient of ", node->op(), " returned ",
                                              grad_inputs.size(), " gradients for ",
                                              node->num_inputs(), " inputs"));
    }
    for (int i = 0; i < node->num_inputs(); ++i) {
      if (!needs[i] || !grad_inputs[i].valid()) continue;
      const NodeOut& in = node->input(i);
      pending[{in.node->id(), in.index}].push_back(grad_inputs[i]);
    }
  }

  std::vector<Output> result;
  for (const Output& x : xs) {
    auto it = pending.find({x.node->id(), x.index});
    result.push_back(it == pending.end() ? Output() : SumGradients(gs, it->second));
  }
  GS_RETURN_IF_ERROR(gs.status());
  return result;
}

}  // namespace gradserve
