#include "autodiff/train_graph.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "autodiff/gradients.h"
#include "autodiff/gradients/grad_util.h"
#include "graph/builder/ops.h"
#include "graph/status.h"

namespace gradserve {
namespace {

using grad_util::ScalarOf;

constexpr std::pair<OptimizerKind, const char*> kOptimizerNames[] = {
    {OptimizerKind::kSgd, "sgd"},
    {OptimizerKind::kMomentum, "momentum"},
    {OptimizerKind::kAdam, "adam"},
    {OptimizerKind::kAdamW, "adamw"},
};

struct TrainableVariable {
  Node* handle;
  DType dtype;
  std::vector<Output> reads;  // its ReadVariableOp outputs
  Output grad;                // summed over reads, then clipped
};

// The trainable variables of `train` with their reads.
absl::StatusOr<std::vector<TrainableVariable>> FindTrainableVariables(Graph& graph,
                                                                      const SignatureDef& train) {
  std::vector<TrainableVariable> vars;
  GS_CHECK_ARG(train.trainable_variables_size() > 0, "the train signature lists no trainable variables");
  for (const std::string& name : train.trainable_variables()) {
    Node* handle = graph.FindNode(name);
    GS_CHECK_ARG(handle != nullptr && handle->op() == "VarHandleOp", "trainable variable '", name,
                 "' is not a VarHandleOp node of the graph");
    TrainableVariable var{.handle = handle, .dtype = DType::kInvalid, .reads = {}, .grad = {}};
    GS_ASSIGN_OR_RETURN(var.dtype, handle->GetAttr<DType>("dtype"));
    GS_CHECK_ARG(IsFloatingDType(var.dtype), "trainable variable '", name, "' is ",
                 DTypeName(var.dtype), "; only floating variables can be trained");
    for (const OutEdge& e : handle->out_edges()) {
      if (e.src_output != OutEdge::kControlSlot && e.dst->op() == "ReadVariableOp") {
        var.reads.push_back(Output(e.dst, 0));
      }
    }
    GS_CHECK_ARG(!var.reads.empty(), "trainable variable '", name, "' is never read by the graph");
    vars.push_back(std::move(var));
  }
  return vars;
}

// g *= clip / max(norm, clip) for every gradient; returns the global norm
// sqrt(sum_i |g_i|^2) = sqrt(2 * sum_i L2Loss(g_i)).
Output ClipByGlobalNorm(const Scope& s, std::vector<TrainableVariable>& vars, double clip) {
  std::vector<Output> halves;
  for (TrainableVariable& v : vars) {
    if (!v.grad.valid()) continue;
    Output h = ops::L2Loss(s, v.grad);
    halves.push_back(v.dtype == DType::kFloat ? h : ops::Cast(s, h, DType::kFloat));
  }
  Output sum = halves.size() == 1 ? halves[0] : ops::AddN(s, halves);
  Output norm = ops::Sqrt(s.WithName("global_norm"), ops::Mul(s, sum, ops::Const(s, 2.0f)));
  if (clip <= 0) return norm;
  Output clip_t = ops::Const(s, static_cast<float>(clip));
  Output scale = ops::RealDiv(s.WithName("clip_scale"), clip_t, ops::Maximum(s, norm, clip_t));
  for (TrainableVariable& v : vars) {
    if (!v.grad.valid()) continue;
    Output sv = v.dtype == DType::kFloat ? scale : ops::Cast(s, scale, v.dtype);
    v.grad = ops::Mul(s, v.grad, sv);
  }
  return norm;
}

// A zero-initialized optimizer slot named `<var>/<suffix>` shaped like `var`.
Output Slot(const Scope& root, const TrainableVariable& var, const std::string& suffix,
            std::vector<std::string>* state) {
  absl::StatusOr<Shape> shape = var.handle->GetAttr<Shape>("shape");
  if (!shape.ok()) {
    root.UpdateStatus(shape.status());
    return Output();
  }
  Output slot = ops::VarHandleOp(root.WithName(absl::StrCat(var.handle->name(), "/", suffix)),
                                 var.dtype, *shape);
  if (slot.valid()) state->push_back(slot.node->name());
  return slot;
}

}  // namespace

absl::StatusOr<OptimizerKind> ParseOptimizerKind(absl::string_view name) {
  for (const auto& [kind, n] : kOptimizerNames) {
    if (name == n) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown optimizer '", name, "'; expected sgd, momentum, adam or adamw"));
}

const char* OptimizerKindName(OptimizerKind kind) {
  for (const auto& [k, n] : kOptimizerNames) {
    if (k == kind) return n;
  }
  return "?";
}

absl::Status OptimizerConfig::Validate() const {
  auto finite_positive = [](double v) { return std::isfinite(v) && v > 0; };
  GS_CHECK_ARG(finite_positive(learning_rate), "learning_rate must be finite and > 0, got ",
               learning_rate);
  GS_CHECK_ARG(momentum >= 0 && momentum < 1, "momentum must be in [0, 1), got ", momentum);
  GS_CHECK_ARG(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got ", beta1);
  GS_CHECK_ARG(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got ", beta2);
  GS_CHECK_ARG(finite_positive(epsilon), "epsilon must be finite and > 0, got ", epsilon);
  GS_CHECK_ARG(std::isfinite(weight_decay) && weight_decay >= 0,
               "weight_decay must be finite and >= 0, got ", weight_decay);
  GS_CHECK_ARG(std::isfinite(clip_global_norm) && clip_global_norm >= 0,
               "clip_global_norm must be finite and >= 0 (0 = off), got ", clip_global_norm);
  return absl::OkStatus();
}

absl::StatusOr<TrainGraph> BuildTrainGraph(Graph& graph, const SignatureDef& train,
                                           const OptimizerConfig& config) {
  GS_RETURN_IF_ERROR(config.Validate());
  auto loss_it = train.outputs().find(kLossOutputKey);
  GS_CHECK_ARG(loss_it != train.outputs().end(), "the train signature has no '", kLossOutputKey,
               "' output");
  GS_ASSIGN_OR_RETURN(NodeOut loss, graph.FindOutput(loss_it->second.name()));
  GS_CHECK_ARG(IsFloatingDType(loss.node->output_type(loss.index)) &&
                   loss.node->output_shape(loss.index).IsCompatibleWith(Shape{}),
               "the train signature's loss '", loss_it->second.name(),
               "' must be a floating scalar, but is ",
               DTypeName(loss.node->output_type(loss.index)),
               loss.node->output_shape(loss.index).DebugString());
  GS_ASSIGN_OR_RETURN(std::vector<TrainableVariable> vars, FindTrainableVariables(graph, train));
  GS_CHECK_ARG(graph.FindNode(kGlobalStepName) == nullptr, "the graph already has a node '",
               kGlobalStepName, "'");

  TrainGraph out;
  out.loss = Output(loss).name();
  const Scope root(&graph);  // slots and global_step, named as TensorFlow names them
  const Scope s = root.NewSubScope("train");

  // Gradients of the loss with respect to every read, summed per variable.
  std::vector<Output> xs;
  for (const TrainableVariable& v : vars) xs.insert(xs.end(), v.reads.begin(), v.reads.end());
  GS_ASSIGN_OR_RETURN(std::vector<Output> grads,
                      AddGradients(s.NewSubScope("gradients"), {Output(loss)}, xs));
  size_t next = 0;
  bool any = false;
  for (TrainableVariable& v : vars) {
    std::vector<Output> parts;
    for (size_t i = 0; i < v.reads.size(); ++i, ++next) {
      if (grads[next].valid()) parts.push_back(grads[next]);
    }
    if (parts.empty()) {  // not connected: this variable is not updated
      out.gradients.emplace_back();
      continue;
    }
    v.grad = parts.size() == 1 ? parts[0] : ops::AddN(s, parts);
    out.gradients.push_back(v.grad.name());
    any = true;
  }
  if (!any) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the loss '", out.loss, "' does not depend on any trainable variable"));
  }
  out.global_norm = ClipByGlobalNorm(s.NewSubScope("clip"), vars, config.clip_global_norm).name();

  // global_step, and t = global_step + 1 for Adam's bias correction.
  Output step = ops::VarHandleOp(root.WithName(kGlobalStepName), DType::kInt64, Shape{});
  GS_RETURN_IF_ERROR(s.status());
  out.global_step = step.node->name();
  out.state_variables.push_back(out.global_step);
  Output t = ops::Cast(s, ops::Add(s, ops::ReadVariableOp(s, step, DType::kInt64),
                                   ops::Const(s, int64_t{1})),
                       DType::kFloat);

  std::vector<Output> updates;
  for (TrainableVariable& v : vars) {
    if (!v.grad.valid()) continue;
    const Scope vs = s.NewSubScope(v.handle->name());
    auto scalar = [&](double value) { return ScalarOf(vs, v.dtype, value); };
    Output lr = scalar(config.learning_rate);
    Output handle(v.handle, 0);
    switch (config.kind) {
      case OptimizerKind::kSgd:
        updates.push_back(ops::ResourceApplyGradientDescent(vs, handle, lr, v.grad));
        break;
      case OptimizerKind::kMomentum: {
        Output accum = Slot(root, v, "Momentum", &out.state_variables);
        updates.push_back(ops::ResourceApplyMomentum(vs, handle, accum, lr, v.grad,
                                                     scalar(config.momentum),
                                                     {.use_nesterov = config.use_nesterov}));
        break;
      }
      case OptimizerKind::kAdam:
      case OptimizerKind::kAdamW: {
        Scope apply = vs;
        if (config.kind == OptimizerKind::kAdamW && config.weight_decay > 0) {
          // Decoupled decay (Loshchilov & Hutter): var -= lr * wd * var, after the
          // gradient is known (so after the forward read) and before Adam's step.
          Scope ds = vs.WithControlDependencies({v.grad});
          Output decay = ops::Mul(ds, ops::ReadVariableOp(ds, handle, v.dtype),
                                  scalar(config.learning_rate * config.weight_decay));
          apply = vs.WithControlDependencies({Output(ops::AssignSubVariableOp(vs, handle, decay))});
        }
        Output m = Slot(root, v, "Adam", &out.state_variables);
        Output vv = Slot(root, v, "Adam_1", &out.state_variables);
        auto power = [&](double beta) {
          Output p = ops::Pow(vs, ops::Const(vs, static_cast<float>(beta)), t);
          return v.dtype == DType::kFloat ? p : ops::Cast(vs, p, v.dtype);
        };
        updates.push_back(ops::ResourceApplyAdam(
            apply, handle, m, vv, power(config.beta1), power(config.beta2), lr,
            scalar(config.beta1), scalar(config.beta2), scalar(config.epsilon), v.grad,
            {.use_nesterov = config.use_nesterov}));
        break;
      }
    }
  }
  Node* increment = ops::AssignAddVariableOp(s.WithControlDependencies(updates), step,
                                             ops::Const(s, int64_t{1}));
  Node* train_op = ops::NoOp(s.WithName("step").WithControlDependencies({Output(increment)}));
  GS_RETURN_IF_ERROR(s.status());
  GS_RETURN_IF_ERROR(root.status());
  out.train_op = train_op->name();
  return out;
}

}  // namespace gradserve
