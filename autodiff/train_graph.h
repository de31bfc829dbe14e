// The training graph: from a saved model's `train` signature (its "loss"
// output, label inputs and trainable variables) and an optimizer config, adds
// once, under the name scope "train/", the nodes of one optimizer step:
//
//   gradients      AddGradients(loss, every read of each trainable variable)
//   clipping       g *= clip / max(global_norm, clip)      (clip_global_norm > 0)
//   weight decay   var -= lr * weight_decay * var          (AdamW, decoupled)
//   update         ResourceApply{GradientDescent,Momentum,Adam}
//   step           global_step += 1, after every update
//
// Running `train_op` as a target while fetching `loss` performs one step. The
// optimizer's state (slots "<var>/Momentum", "<var>/Adam", "<var>/Adam_1" and
// the int64 "global_step", TensorFlow's names) lives in variables, listed in
// `state_variables`, so it is checkpointed and restored with the weights.
// Adam's bias correction uses t = global_step + 1, so no beta powers are stored.
//
// autodiff builds graphs; running them is runtime/trainer.h's job.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "proto/saved_model.pb.h"

namespace gradserve {

enum class OptimizerKind { kSgd, kMomentum, kAdam, kAdamW };

// Parses "sgd" | "momentum" | "adam" | "adamw" (InvalidArgument listing them).
absl::StatusOr<OptimizerKind> ParseOptimizerKind(absl::string_view name);
const char* OptimizerKindName(OptimizerKind kind);

// Defaults are Keras's (tf.keras.optimizers.*).
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kAdam;
  double learning_rate = 1e-3;
  double momentum = 0.9;  // momentum
  bool use_nesterov = false;  // momentum, adam
  double beta1 = 0.9;     // adam, adamw
  double beta2 = 0.999;   // adam, adamw
  double epsilon = 1e-7;  // adam, adamw
  double weight_decay = 0.004;  // adamw only (Keras AdamW's default)
  double clip_global_norm = 0;  // > 0 clips the gradients by their global norm

  // InvalidArgument naming the field for a value out of range.
  absl::Status Validate() const;
};

// What BuildTrainGraph added, by tensor or node name.
struct TrainGraph {
  std::string loss;         // the train signature's "loss" (a float scalar)
  std::string train_op;     // run as a target for one step
  std::string global_norm;  // the gradients' global norm before clipping
  std::string global_step;  // VarHandleOp, int64 scalar
  // Per trainable variable (the signature's order): its gradient before
  // clipping, summed over its reads; empty when the loss does not reach it.
  std::vector<std::string> gradients;
  // VarHandleOp nodes of the optimizer state (slots and global_step), in the
  // order they were created; each starts at zeros.
  std::vector<std::string> state_variables;
};

inline constexpr char kLossOutputKey[] = "loss";
inline constexpr char kGlobalStepName[] = "global_step";

// Adds the step to `graph`. InvalidArgument when the signature has no scalar
// floating "loss" output or no trainable variables, a trainable variable is not
// a VarHandleOp or has no reads, the config is invalid, or a name under
// "train/" is taken; Unimplemented (naming the op) when an op between a
// variable and the loss has no gradient; FailedPrecondition when the loss does
// not depend on a trainable variable.
absl::StatusOr<TrainGraph> BuildTrainGraph(Graph& graph, const SignatureDef& train,
                                           const OptimizerConfig& config);

}  // namespace gradserve
