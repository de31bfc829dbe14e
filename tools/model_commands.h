// The subcommands of gradserve-model (tools/gradserve_model.cc parses the flags).
// Each prints what it did to `out` and returns an error Status for the caller to
// print; none of them exits or throws.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "autodiff/train_graph.h"
#include "graph/dataset.h"
#include "graph/saved_model.h"
#include "runtime/session.h"

namespace gradserve::tools {

// `show --model DIR`: signatures, variables (with the checkpoint's step) and op
// counts. `show --graph FILE`: placeholders and op counts of a GraphDef.
absl::Status ShowSavedModel(const std::string& dir, std::ostream& out);
absl::Status ShowGraph(const std::string& path, std::ostream& out);

struct RunOptions {
  std::string model_dir;                      // either this (a saved model) ...
  std::string graph_path;                     // ... or this (a GraphDef, .pb or .pbtxt)
  std::string signature = "serving_default";  // --model only
  std::vector<std::string> inputs;            // "KEY=FILE.npy"
  std::vector<std::string> fetches;           // --graph: "node:port"
  std::vector<std::string> output_keys;       // --model: subset of outputs (empty = all)
  std::string output_dir;
};
// --model: writes <output_dir>/<output key>.npy per signature output.
// --graph: writes <output_dir>/<fetch with ':' replaced by '_'>.npy per fetch.
absl::Status Run(const RunOptions& options, std::ostream& out);

// `convert --in A --out B [--type auto|graph|saved_model]`: binary (.pb) <-> text
// (.pbtxt) by extension. `auto` treats a directory or a file named
// saved_model.pb[txt] as a SavedModel, anything else as a GraphDef.
absl::Status Convert(const std::string& in, const std::string& out_path, const std::string& type,
                     std::ostream& out);

// A labelled data set on disk (graph/dataset.h): exactly one of `csv`, `idx`
// (images, labels) and `npy` (features, labels). `scale` multiplies the
// features; unset, it is 1 for CSV and NPY and 1/255 for IDX (so digits.csv.gz
// needs 1/16 to give the [0, 1] pixels the example models expect).
struct DataSource {
  std::string csv;
  std::vector<std::string> idx;
  std::vector<std::string> npy;
  std::optional<float> scale;

  // How many of csv, idx and npy are given.
  int count() const { return !csv.empty() + !idx.empty() + !npy.empty(); }
};
// InvalidArgument unless exactly one source is given (idx/npy: two paths);
// then the errors of ReadCsvDataset / ReadIdxDataset / ReadNpyDataset.
absl::StatusOr<Dataset> LoadDataSource(const DataSource& source);

struct TrainOptions {
  std::string model_dir;  // a saved model version with a `train` signature
  DataSource data;
  // Either a separate test set, or (when test_data.count() == 0) this fraction
  // of `data` held out by ShuffleSplit with `seed`; 0 means no test set.
  DataSource test_data;
  double test_fraction = 0.2;
  int epochs = 1;
  int64_t batch_size = 64;
  OptimizerConfig optimizer;
  uint64_t seed = 0;  // the split and each epoch's shuffle
  // The new version directory; empty: the next free integer version beside
  // model_dir (<model>/<version> -> <model>/<max version + 1>). An existing
  // directory must be empty.
  std::string output_dir;
  SessionOptions session;
  std::ostream* progress = nullptr;  // see TrainLoopOptions::progress
};
// `train`: loads the data and the model, trains (one line per epoch on `out`,
// tools/train_loop.h), and saves the model with its optimizer state to the
// output directory, whose path it prints last. The output directory is
// checked before anything is loaded: AlreadyExists when it is not empty,
// InvalidArgument when it is a file or no default can be derived.
absl::Status Train(const TrainOptions& options, std::ostream& out);

struct EvaluateOptions {
  std::string model_dir;
  DataSource data;
  int64_t batch_size = 256;
  std::string signature = kServingSignatureKey;
  SessionOptions session;
};
// `evaluate`: prints "accuracy A  loss L  (N examples)" of `signature` on the
// data (tools/train_loop.h, Evaluate).
absl::Status EvaluateModel(const EvaluateOptions& options, std::ostream& out);

}  // namespace gradserve::tools
