// The training and evaluation loops behind `gradserve-model train` and
// `evaluate`, shared with tools/make_example_models.cc and the unit tests.
//
// Classification only: a model is evaluated through a signature with one input
// and an output "logits" (preferred: the loss is computed from it stably) or
// "probabilities" of shape [batch, classes]; the prediction is the argmax, the
// loss the mean cross-entropy -log p[label]. Labels are checked against the
// number of classes (the output's last dimension, when known) before anything
// runs, so a data set with a label the model cannot predict is an
// InvalidArgument naming the label, not a kernel error halfway through.
//
// Not thread-safe: one loop per Trainer at a time (Trainer::Step serializes
// anyway). Functions print only to the streams they are given.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/dataset.h"
#include "graph/saved_model.h"
#include "runtime/saved_model_loader.h"
#include "runtime/trainer.h"

namespace gradserve::tools {

struct EvalResult {
  int64_t examples = 0;
  double accuracy = 0;  // fraction of examples whose argmax is the label
  double loss = 0;      // mean cross-entropy, natural log
};

// Runs `signature` over `data` in batches of `batch_size` (features are first
// reshaped to the signature's input shape, see FitFeatures). Errors:
// InvalidArgument when the signature cannot classify (not one input, no
// logits/probabilities output), a label is out of range, or the data is empty;
// NotFound for a missing signature; any error of RunSignature.
absl::StatusOr<EvalResult> Evaluate(const SavedModelBundle& bundle, const Dataset& data,
                                    int64_t batch_size = 256,
                                    const std::string& signature = kServingSignatureKey);

// InvalidArgument "<what>: label L (example I, counting from 0) is out of
// range: the model predicts C classes (0..C-1)" for the first label that
// `signature` (read as Evaluate reads it) cannot predict; OK when its number of
// classes is unknown. Evaluate and TrainEpochs check this themselves; callers
// that split a data set check it first to name the file and the example in it.
absl::Status CheckLabels(const SavedModelBundle& bundle, const Dataset& data,
                         absl::string_view what,
                         const std::string& signature = kServingSignatureKey);

// `data` with its features shaped as `input` expects, e.g. digits [N, 64] for
// an input of shape [-1, 8, 8, 1] becomes [N, 8, 8, 1] (no copy). Returned as
// is when the example shapes already agree or the input's shape is not known
// beyond the batch; InvalidArgument naming `input_key` when the element counts
// differ.
absl::StatusOr<Dataset> FitFeatures(const Dataset& data, const std::string& input_key,
                                    const TensorInfo& input);

struct TrainLoopOptions {
  int epochs = 1;
  int64_t batch_size = 64;        // the last batch of an epoch may be smaller
  int64_t eval_batch_size = 256;  // test-set evaluation
  // Epoch e (1-based) trains on the training set shuffled by ShuffleSplit with
  // a seed derived from (seed, e): the same seed gives the same batches.
  uint64_t seed = 0;
  // Runs the serving signature on each batch just before its step, so the
  // epoch's accuracy is measured like its loss (weights before each update,
  // as Keras reports them). Costs one forward pass per example.
  bool train_accuracy = true;
  // When set (the CLI passes std::cerr when it is a TTY), a progress line is
  // rewritten with '\r' at most every 100 ms during an epoch and erased before
  // the epoch's line is printed.
  std::ostream* progress = nullptr;
};

struct EpochReport {
  int epoch = 0;                         // 1-based
  int64_t step = 0;                      // the trainer's global_step after the epoch
  double train_loss = 0;                 // mean of the steps' losses, weighted by batch size
  std::optional<double> train_accuracy;  // with TrainLoopOptions::train_accuracy
  std::optional<EvalResult> test;        // when the test set is not empty
  // Training examples over the time of the steps (with their accuracy passes).
  double examples_per_second = 0;
  double seconds = 0;  // the epoch's wall time, evaluation included
};

struct TrainReport {
  std::vector<EpochReport> epochs;
};

// "epoch 2/5  loss 0.4123  accuracy 0.8812  test_loss 0.3921  test_accuracy 0.8950
//  15234 examples/s  0.21 s" (one line, without the newline).
std::string FormatEpoch(const EpochReport& report, int epochs);

// Trains for options.epochs epochs on `train` and, after each, evaluates
// `test` (may be empty) with the serving signature; prints one FormatEpoch
// line per epoch to `log`. The trainer's signature must have one feature and
// one label input; features are fitted to the feature input's shape.
// Errors: InvalidArgument for bad options, an empty training set, labels out
// of range (naming the set and the label), or a signature that cannot be used;
// FailedPrecondition when the loss becomes NaN or infinite (naming the step:
// lower the learning rate or clip); any error of Trainer::Step or Evaluate.
// Steps already taken stay taken.
absl::StatusOr<TrainReport> TrainEpochs(Trainer& trainer, const Dataset& train, const Dataset& test,
                                        const TrainLoopOptions& options, std::ostream& log);

}  // namespace gradserve::tools
