// Saved models on disk (DESIGN.md §3), without running anything:
//
//   <dir>/saved_model.pb              SavedModel proto (graph + signatures + variable list)
//   <dir>/variables/variables.ckpt    checkpoint of the variables (graph/checkpoint.h)
//
// A SavedModel is valid when its graph imports (Graph::FromGraphDef), every
// signature tensor exists in the graph with the declared dtype and a shape
// compatible with the declared one, each `train` label key is one of its inputs,
// and every listed variable (and trainable variable) is a VarHandleOp node.
// Restoring variables into a session and running signatures is runtime's job
// (runtime/saved_model_loader.h).
//
// Thread-safe (no shared state).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "proto/saved_model.pb.h"

namespace gradserve {

inline constexpr char kSavedModelFileName[] = "saved_model.pb";
inline constexpr char kVariablesCheckpointPath[] = "variables/variables.ckpt";
inline constexpr char kServingSignatureKey[] = "serving_default";
inline constexpr char kTrainSignatureKey[] = "train";
inline constexpr char kPredictMethodName[] = "tensorflow/serving/predict";
inline constexpr char kTrainMethodName[] = "gradserve/train";

std::string SavedModelProtoPath(const std::string& dir);
std::string SavedModelCheckpointPath(const std::string& dir);

// The graph and signatures of a saved model, validated.
struct SavedModelData {
  SavedModel proto;              // as read, graph_def included
  std::unique_ptr<Graph> graph;  // proto.graph_def() imported
};

// Validates `proto` against `graph` (its imported graph_def). InvalidArgument
// naming the signature, key and tensor, or the variable.
absl::Status ValidateSavedModel(const SavedModel& proto, const Graph& graph);

// Reads and validates <dir>/saved_model.pb. NotFound when absent; InvalidArgument
// (prefixed with the path) when it does not parse or is invalid.
absl::StatusOr<SavedModelData> ReadSavedModel(const std::string& dir);

// Validates `proto`, creates <dir> and <dir>/variables, writes the checkpoint of
// `variables` (name -> value, one per entry of proto.variables(), in any order)
// plus `state` (other named tensors, e.g. optimizer slots, that loaders restore
// only if they want them) and then saved_model.pb, each atomically. The checkpoint is written first, so a
// reader that sees the new proto also sees its variables.
absl::Status WriteSavedModel(const std::string& dir, const SavedModel& proto,
                             const std::vector<std::pair<std::string, Tensor>>& variables,
                             int64_t step = 0,
                             const std::vector<std::pair<std::string, Tensor>>& state = {});

// The name a VarHandleOp's variable has in a session's ResourceMgr: its
// shared_name attr if set, else the node name (as TensorFlow does).
std::string VariableResourceName(const Node& var_handle);

}  // namespace gradserve
