// Trainer: a saved model with its training step (autodiff/train_graph.h) in
// one session, so the variables it updates are the ones its serving signatures
// read.
//
//   GS_ASSIGN_OR_RETURN(auto trainer, Trainer::Load(dir, {.kind = OptimizerKind::kAdam}));
//   GS_ASSIGN_OR_RETURN(StepResult r, trainer->Step(pixels, labels));
//   GS_RETURN_IF_ERROR(trainer->Save(out_dir));  // weights + optimizer state
//
// Load restores the weights and, when the checkpoint has them (it was saved by a
// Trainer with the same optimizer), the optimizer's slots and global_step;
// otherwise they start at zero and global_step at the checkpoint's step.
//
// Thread safety: Step and Save are serialized by the trainer; serving
// signatures may run on bundle() concurrently with them (each step's updates
// are made variable by variable; see DESIGN.md §6 for how the server makes
// them atomic to readers).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "autodiff/train_graph.h"
#include "runtime/saved_model_loader.h"

namespace gradserve {

struct StepResult {
  double loss = 0;         // the step's loss (before the update)
  double global_norm = 0;  // the gradients' global norm before clipping
  int64_t step = 0;        // global_step after the update
};

// A step split in two (the server's way, DESIGN.md §2 "Train"): ComputeStep
// runs the forward and backward passes, which only read the variables, so
// inference may run beside it; ApplyStep feeds the gradients to the optimizer
// update, the only part that writes them. Step() does both in one run.
struct PendingStep {
  double loss = 0;
  double global_norm = 0;
  // Gradient tensor name -> value, one per reached variable; in the memory of
  // the session's default device (a GPU's: no round trip through the host).
  FeedList gradients;
  bool finite() const;  // loss and global_norm are finite
};

class Trainer {
 public:
  // FailedPrecondition (prefixed with the dir) when the model has no `train`
  // signature (or its loss reaches no variable); InvalidArgument when
  // BuildTrainGraph rejects it; any error of LoadSavedModel.
  static absl::StatusOr<std::unique_ptr<Trainer>> Load(const std::string& dir,
                                                       const OptimizerConfig& optimizer,
                                                       const SessionOptions& options = {});

  // One optimizer step on `inputs` (train-signature key -> tensor: every
  // feature and label). Errors: those of RunSignature (unknown/missing key,
  // dtype, shape) and of the kernels (e.g. a label out of range), in which case
  // no variable changed unless the error came from an update itself.
  absl::StatusOr<StepResult> Step(const std::map<std::string, Tensor>& inputs)
      ABSL_LOCKS_EXCLUDED(mu_);
  // For a signature with one feature and one label.
  absl::StatusOr<StepResult> Step(const Tensor& features, const Tensor& labels)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The two halves of Step. A ComputeStep/ApplyStep pair must not interleave
  // with another step or a restore (the caller serializes them); Step and Save
  // do not take part in that serialization.
  absl::StatusOr<PendingStep> ComputeStep(const std::map<std::string, Tensor>& inputs);
  // Returns global_step after the update.
  absl::StatusOr<int64_t> ApplyStep(const PendingStep& pending);

  // Every variable a checkpoint of this trainer holds: the model's variables,
  // then the optimizer state, with their current values.
  absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> StateTensors() const;
  // Assigns every variable of StateTensors() from `tensors` and resets the
  // step to global_step's value. InvalidArgument naming the first variable
  // missing from `tensors` or of another dtype or shape; nothing is assigned
  // then.
  absl::Status RestoreState(const std::map<std::string, Tensor>& tensors);

  // For each label input key fed to a SparseSoftmaxCrossEntropyWithLogits
  // (directly or through Identity/Cast), the number of classes of its logits
  // when known: labels must lie in [0, classes).
  const std::map<std::string, int64_t>& label_classes() const { return label_classes_; }

  // Writes the model as loaded (graph and signatures) with the current weights,
  // and the optimizer state in its checkpoint, as a saved model in `dir`.
  absl::Status Save(const std::string& dir) ABSL_LOCKS_EXCLUDED(mu_);

  const SavedModelBundle& bundle() const { return bundle_; }
  Session& session() { return *bundle_.session; }
  const TrainGraph& train_graph() const { return train_; }
  const SignatureDef& signature() const { return *signature_; }
  int64_t step() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Trainer() = default;
  // The variables a checkpoint holds: the model's, then the optimizer state.
  std::vector<std::string> StateVariables() const;

  SavedModelBundle bundle_;
  TrainGraph train_;
  const SignatureDef* signature_ = nullptr;  // in bundle_.meta
  SignatureDef step_signature_;              // *signature_ plus output "global_norm"
  std::string feature_key_, label_key_;      // when there is exactly one of each
  std::vector<std::string> gradient_keys_;   // step_signature_ outputs, "gradient/<i>"
  std::map<std::string, int64_t> label_classes_;
  mutable absl::Mutex mu_;
  int64_t step_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gradserve
