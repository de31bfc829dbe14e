// Saved models in a session: load (create the Session, restore the variables
// from the checkpoint), run a signature with validated inputs, and save the
// session's current variable values. The on-disk layout and its validation live
// in graph/saved_model.h.
//
// Thread safety: RunSignature may be called from many threads on one bundle
// (Session::Run is thread-safe). Load/Save are not synchronized with concurrent
// training steps; callers serialize them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/checkpoint.h"
#include "graph/saved_model.h"
#include "runtime/session.h"

namespace gradserve {

struct SavedModelBundle {
  std::unique_ptr<Session> session;  // owns the graph: session->graph()
  // Signatures, variables list and producer. graph_def is cleared (the graph
  // lives in the session) so a model's constants are not held twice, unless the
  // graph was extended at load: then it is the graph as saved.
  SavedModel meta;
  int64_t step = 0;  // the checkpoint's step (0 without variables)
  // Checkpoint tensors that are not among meta.variables() (optimizer state).
  std::map<std::string, Tensor> extra_state;

  // nullptr when there is no signature `key`.
  const SignatureDef* FindSignature(absl::string_view key) const;
};

// Reads <dir>/saved_model.pb, creates a Session for its graph and restores every
// listed variable from <dir>/variables/variables.ckpt. Errors: those of
// ReadSavedModel and ReadCheckpoint (NotFound, InvalidArgument, DataLoss, all
// naming the file), NotFound for a variable the checkpoint lacks, and
// InvalidArgument when a checkpoint tensor's dtype or shape differs from its
// VarHandleOp's (naming the variable).
//
// `extend`, when given, may add nodes to the imported graph before the session
// is created (runtime/trainer.h adds the training step); its error is returned.
using GraphExtension = std::function<absl::Status(Graph& graph, const SavedModel& meta)>;
absl::StatusOr<SavedModelBundle> LoadSavedModel(const std::string& dir,
                                                const SessionOptions& options = {},
                                                const GraphExtension& extend = nullptr);

// Assigns each of `variables` (VarHandleOp node names) from `checkpoint`; tensors
// the checkpoint holds for other names are ignored.
absl::Status RestoreVariables(Session& session, const std::vector<std::string>& variables,
                              const Checkpoint& checkpoint);

// Sets the variable of VarHandleOp node `var_handle` to `value` (dtype and shape
// must match the node's attrs), creating it in session.resources() if needed.
absl::Status AssignVariable(Session& session, const std::string& var_handle, Tensor value);
// The current value of the variable of VarHandleOp node `var_handle`;
// FailedPrecondition if it was never assigned.
absl::StatusOr<Tensor> ReadVariable(Session& session, const std::string& var_handle);

// Runs signature `key` on `inputs` (signature input key -> tensor) and returns
// its outputs by output key: all of them, or those named in `output_keys`;
// `targets` (node names) run in the same step.
// InvalidArgument, naming the key, for an unknown input or output key, a missing
// input, a dtype mismatch or a shape incompatible with the signature; NotFound
// for an unknown signature; then any error of Session::Run.
absl::StatusOr<std::map<std::string, Tensor>> RunSignature(
    const SavedModelBundle& bundle, const std::string& key,
    const std::map<std::string, Tensor>& inputs, const std::vector<std::string>& output_keys = {},
    const std::vector<std::string>& targets = {});
// The same for a signature the bundle does not hold (`key` names it in errors),
// with the session's run options (device graphs) and metadata (may be null).
absl::StatusOr<std::map<std::string, Tensor>> RunSignatureDef(
    Session& session, const SignatureDef& signature, const std::string& key,
    const std::map<std::string, Tensor>& inputs, const std::vector<std::string>& output_keys = {},
    const std::vector<std::string>& targets = {}, const RunOptions& options = {},
    RunMetadata* metadata = nullptr);

// Writes a saved model of `graph` (normally session.graph()) with `signatures`
// and the current values of all its VarHandleOp variables read from `session`
// (FailedPrecondition naming any that is uninitialized). See WriteSavedModel.
absl::Status SaveSavedModel(const std::string& dir, const Graph& graph,
                            const std::map<std::string, SignatureDef>& signatures, Session& session,
                            int64_t step = 0);

// Writes `meta` (graph_def included) with the current values of its variables
// and of `state_variables` (VarHandleOp nodes of the session's graph that the
// saved graph does not have, e.g. optimizer slots) read from `session`.
absl::Status SaveSessionState(const std::string& dir, const SavedModel& meta, Session& session,
                              const std::vector<std::string>& state_variables, int64_t step);

}  // namespace gradserve
