#include "tools/train_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "graph/status.h"

namespace gradserve::tools {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// How a signature is read as a classifier (see the header).
struct Classifier {
  std::string signature;
  std::string input_key;
  TensorInfo input;
  std::string output_key;  // "logits" or "probabilities"
  int64_t classes = -1;    // the output's last dimension; -1 when unknown
};

absl::StatusOr<Classifier> FindClassifier(const SavedModelBundle& bundle, const std::string& key) {
  const SignatureDef* sig = bundle.FindSignature(key);
  if (sig == nullptr) {
    return absl::NotFoundError(absl::StrCat("the model has no signature '", key, "'"));
  }
  GS_CHECK_ARG(sig->inputs_size() == 1, "signature '", key, "' has ", sig->inputs_size(),
               " inputs; evaluating a classifier needs exactly one");
  Classifier c;
  c.signature = key;
  c.input_key = sig->inputs().begin()->first;
  c.input = sig->inputs().begin()->second;
  for (const char* name : {"logits", "probabilities"}) {
    if (sig->outputs().contains(name)) {
      c.output_key = name;
      break;
    }
  }
  GS_CHECK_ARG(!c.output_key.empty(), "signature '", key,
               "' has no 'logits' or 'probabilities' output to evaluate a classifier with");
  const TensorInfo& out = sig->outputs().at(c.output_key);
  const Shape shape =
      out.has_tensor_shape() ? Shape::FromProto(out.tensor_shape()) : Shape::UnknownRank();
  GS_CHECK_ARG(shape.unknown_rank() || shape.rank() == 2, "output '", c.output_key,
               "' of signature '", key, "' has shape ", shape.DebugString(),
               "; a classifier's is [batch, classes]");
  if (shape.rank() == 2) c.classes = shape.dim(1);
  return c;
}

// InvalidArgument naming the first label the model cannot predict.
absl::Status CheckClasses(const Dataset& data, int64_t classes, absl::string_view what) {
  if (classes < 0) return absl::OkStatus();
  const absl::Span<const int64_t> labels = data.labels.span<const int64_t>();
  for (size_t i = 0; i < labels.size(); ++i) {
    GS_CHECK_ARG(labels[i] < classes, what, ": label ", labels[i], " (example ", i,
                 ", counting from 0) is out of range: the model predicts ", classes,
                 " classes (0..", classes - 1, ")");
  }
  return absl::OkStatus();
}

struct Totals {
  int64_t examples = 0;
  int64_t correct = 0;
  double loss = 0;  // summed over examples
};

// Adds a batch's predictions (`scores`: logits or probabilities [n, classes]).
absl::Status Accumulate(const Tensor& scores, bool logits, const Tensor& labels, Totals& t) {
  GS_ASSIGN_OR_RETURN(Tensor s, ConvertTensor(scores, DType::kFloat));
  GS_CHECK_ARG(s.rank() == 2 && s.dim(0) == labels.dim(0),
               "the model returned predictions of shape ", s.shape().DebugString(), " for ",
               labels.dim(0), " examples");
  const int64_t n = s.dim(0), k = s.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = s.data<float>() + i * k;
    const int64_t label = labels.data<int64_t>()[i];
    GS_CHECK_ARG(label < k, "label ", label, " is out of range: the model predicts ", k,
                 " classes");
    const int64_t best = std::max_element(row, row + k) - row;
    t.correct += best == label;
    if (logits) {
      // log-sum-exp shifted by the max, so large logits do not overflow.
      const float m = row[best];
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(row[j]) - m);
      t.loss += m + std::log(sum) - row[label];
    } else {
      t.loss -=
          std::log(std::max(static_cast<double>(row[label]), std::numeric_limits<double>::min()));
    }
  }
  t.examples += n;
  return absl::OkStatus();
}

// Runs the classifier on one batch (features already fitted to its input).
absl::Status Predict(const SavedModelBundle& bundle, const Classifier& c, const Tensor& features,
                     const Tensor& labels, Totals& totals) {
  GS_ASSIGN_OR_RETURN(auto outputs,
                      RunSignature(bundle, c.signature, {{c.input_key, features}}, {c.output_key}));
  return Accumulate(outputs.at(c.output_key), c.output_key == "logits", labels, totals);
}

// A different stream per epoch, and different from ShuffleSplit(data, f, seed)
// that the CLI uses to hold out a test set (SplitMix64's increment).
uint64_t EpochSeed(uint64_t seed, int epoch) {
  return seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(epoch));
}

void ShowProgress(std::ostream& out, int epoch, int epochs, int64_t batch, int64_t batches,
                  double mean_loss) {
  out << absl::StrFormat("\repoch %d/%d  batch %d/%d  loss %.4f", epoch, epochs, batch, batches,
                         mean_loss)
      << std::flush;
}

}  // namespace

absl::Status CheckLabels(const SavedModelBundle& bundle, const Dataset& data,
                         absl::string_view what, const std::string& signature) {
  GS_ASSIGN_OR_RETURN(Classifier c, FindClassifier(bundle, signature));
  return CheckClasses(data, c.classes, what);
}

absl::StatusOr<Dataset> FitFeatures(const Dataset& data, const std::string& input_key,
                                    const TensorInfo& input) {
  if (!input.has_tensor_shape()) return data;
  const Shape want = Shape::FromProto(input.tensor_shape());
  if (want.unknown_rank() || want.rank() < 1) return data;
  const Shape example(want.dims().subspan(1));
  if (!example.IsFullyDefined()) return data;
  if (Shape(data.features.shape().dims().subspan(1)) == example) return data;
  absl::StatusOr<Dataset> fitted = ReshapeExamples(data, example);
  if (!fitted.ok()) {
    return Annotate(fitted.status(),
                    absl::StrCat("input '", input_key, "' wants shape ", want.DebugString()));
  }
  return fitted;
}

absl::StatusOr<EvalResult> Evaluate(const SavedModelBundle& bundle, const Dataset& data,
                                    int64_t batch_size, const std::string& signature) {
  GS_CHECK_ARG(batch_size > 0, "batch size must be positive, not ", batch_size);
  GS_CHECK_ARG(data.size() > 0, "nothing to evaluate: the data set is empty");
  GS_ASSIGN_OR_RETURN(Classifier c, FindClassifier(bundle, signature));
  GS_RETURN_IF_ERROR(CheckClasses(data, c.classes, "evaluation data"));
  GS_ASSIGN_OR_RETURN(Dataset fitted, FitFeatures(data, c.input_key, c.input));
  Totals totals;
  for (int64_t begin = 0; begin < fitted.size(); begin += batch_size) {
    const int64_t end = std::min(begin + batch_size, fitted.size());
    GS_RETURN_IF_ERROR(Predict(bundle, c, fitted.features.Slice(begin, end),
                               fitted.labels.Slice(begin, end), totals));
  }
  return EvalResult{.examples = totals.examples,
                    .accuracy = static_cast<double>(totals.correct) / totals.examples,
                    .loss = totals.loss / totals.examples};
}

std::string FormatEpoch(const EpochReport& r, int epochs) {
  std::string line = absl::StrFormat("epoch %d/%d  loss %.4f", r.epoch, epochs, r.train_loss);
  if (r.train_accuracy) absl::StrAppendFormat(&line, "  accuracy %.4f", *r.train_accuracy);
  if (r.test) {
    absl::StrAppendFormat(&line, "  test_loss %.4f  test_accuracy %.4f", r.test->loss,
                          r.test->accuracy);
  }
  absl::StrAppendFormat(&line, "  %.0f examples/s  %.2f s", r.examples_per_second, r.seconds);
  return line;
}

absl::StatusOr<TrainReport> TrainEpochs(Trainer& trainer, const Dataset& train, const Dataset& test,
                                        const TrainLoopOptions& options, std::ostream& log) {
  GS_CHECK_ARG(options.epochs >= 1, "epochs must be at least 1, not ", options.epochs);
  GS_CHECK_ARG(options.batch_size >= 1, "batch size must be positive, not ", options.batch_size);
  GS_CHECK_ARG(train.size() > 0, "the training set is empty");
  const SignatureDef& sig = trainer.signature();
  GS_CHECK_ARG(sig.label_keys_size() == 1 && sig.inputs_size() == 2, "the '", kTrainSignatureKey,
               "' signature has ", sig.inputs_size(), " inputs and ", sig.label_keys_size(),
               " label keys; training from a data set needs one feature and one label");
  std::string feature_key;
  for (const auto& [key, info] : sig.inputs()) {
    if (key != sig.label_keys(0)) feature_key = key;
  }
  GS_ASSIGN_OR_RETURN(const Dataset fitted_train,
                      FitFeatures(train, feature_key, sig.inputs().at(feature_key)));

  // The serving signature is needed for accuracy only; without one the loop
  // still trains when nothing asks for accuracy.
  absl::StatusOr<Classifier> classifier = FindClassifier(trainer.bundle(), kServingSignatureKey);
  if (options.train_accuracy || test.size() > 0) GS_RETURN_IF_ERROR(classifier.status());
  if (classifier.ok()) {
    GS_RETURN_IF_ERROR(CheckClasses(train, classifier->classes, "training data"));
    GS_RETURN_IF_ERROR(CheckClasses(test, classifier->classes, "test data"));
  }

  TrainReport report;
  const int64_t batches = (fitted_train.size() + options.batch_size - 1) / options.batch_size;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const Clock::time_point start = Clock::now();
    const Dataset data = ShuffleSplit(fitted_train, 1.0, EpochSeed(options.seed, epoch)).first;
    Totals predicted;
    double loss_sum = 0;
    double step_seconds = 0;
    Clock::time_point last_progress = start;
    for (int64_t b = 0; b < batches; ++b) {
      const int64_t begin = b * options.batch_size;
      const int64_t end = std::min(begin + options.batch_size, data.size());
      const Dataset batch{data.features.Slice(begin, end), data.labels.Slice(begin, end)};
      const Clock::time_point step_start = Clock::now();
      if (options.train_accuracy) {
        GS_ASSIGN_OR_RETURN(Dataset as_served,
                            FitFeatures(batch, classifier->input_key, classifier->input));
        GS_RETURN_IF_ERROR(
            Predict(trainer.bundle(), *classifier, as_served.features, batch.labels, predicted));
      }
      absl::StatusOr<StepResult> step = trainer.Step(batch.features, batch.labels);
      if (!step.ok()) {
        return Annotate(step.status(), absl::StrCat("epoch ", epoch, " batch ", b + 1));
      }
      step_seconds += SecondsSince(step_start);
      if (!std::isfinite(step->loss)) {
        if (options.progress != nullptr) *options.progress << "\n";
        return absl::FailedPreconditionError(absl::StrCat(
            "the loss is ", step->loss, " at step ", step->step, " (epoch ", epoch, " batch ",
            b + 1, "): training diverged; try a lower learning rate or gradient clipping"));
      }
      loss_sum += step->loss * (end - begin);
      if (options.progress != nullptr && (SecondsSince(last_progress) >= 0.1 || b + 1 == batches)) {
        last_progress = Clock::now();
        ShowProgress(*options.progress, epoch, options.epochs, b + 1, batches, loss_sum / end);
      }
    }
    if (options.progress != nullptr) *options.progress << "\r\033[K" << std::flush;

    EpochReport r;
    r.epoch = epoch;
    r.step = trainer.step();
    r.train_loss = loss_sum / data.size();
    if (options.train_accuracy) {
      r.train_accuracy = static_cast<double>(predicted.correct) / predicted.examples;
    }
    if (test.size() > 0) {
      GS_ASSIGN_OR_RETURN(r.test, Evaluate(trainer.bundle(), test, options.eval_batch_size));
    }
    r.examples_per_second = step_seconds > 0 ? data.size() / step_seconds : 0;
    r.seconds = SecondsSince(start);
    log << FormatEpoch(r, options.epochs) << "\n" << std::flush;
    report.epochs.push_back(std::move(r));
  }
  return report;
}

}  // namespace gradserve::tools
