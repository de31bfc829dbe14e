// How the example models of configs/models/ are trained (README "Example
// models"): the data set, split, optimizer and epochs of each, so the build
// (tools/make_example_models.cc), the documented full runs and the tests train
// them the same way.
//
//   digits_mlp, digits_cnn   UCI digits (configs/datasets/digits), pixels / 16,
//                            80/20 seeded split, Adam lr 0.003, batch 32, 30 epochs
//   fashion_mlp              Fashion-MNIST train/t10k, pixels / 255, Adam lr 0.001,
//                            batch 64; quick: 2 epochs, full: 12 epochs
//   fashion_cnn              the same, Adam lr 0.001, batch 64; quick: 1 epoch on
//                            the first 12,000 training images, full: 8 epochs
//
// Not thread-safe (each call trains its own Trainer; the logs are the caller's).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "graph/dataset.h"
#include "runtime/trainer.h"
#include "tools/train_loop.h"

namespace gradserve::tools {

struct ExampleTrainingOptions {
  std::string digits_csv;  // configs/datasets/digits/digits.csv.gz
  std::string fashion_dir;  // /usr/share/datasets/fashion-mnist
  bool full = false;        // the documented full runs instead of the build's quick ones
  int intra_op_threads = 0;
  int inter_op_threads = 0;
};

struct ExampleRecipe {
  OptimizerConfig optimizer;
  TrainLoopOptions loop;
  int64_t train_limit = 0;  // > 0: train on the first N training examples only
};

// NotFound for a name that is not an example model.
absl::StatusOr<ExampleRecipe> RecipeFor(const std::string& model, bool full);

// The (train, test) sets of `model`'s recipe: errors of the dataset readers
// (NotFound naming the file when the data set is not installed).
absl::StatusOr<std::pair<Dataset, Dataset>> ExampleData(const std::string& model,
                                                        const ExampleTrainingOptions& options);

// Trains the saved model in `init_dir` by its recipe, prints an epoch line per
// epoch to `log`, and saves the result to `out_dir`.
absl::StatusOr<TrainReport> TrainExampleModel(const std::string& model, const std::string& init_dir,
                                              const std::string& out_dir,
                                              const ExampleTrainingOptions& options,
                                              std::ostream& log);

}  // namespace gradserve::tools
