// The subcommands of gradserve-model (tools/gradserve_model.cc parses the flags).
// Each prints what it did to `out` and returns an error Status for the caller to
// print; none of them exits or throws.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

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

}  // namespace gradserve::tools
