// InferenceService: the Open Inference Protocol's operations over the model
// manager, in terms of the protocol's messages (proto/grpc_service.proto), so
// the gRPC front end is a thin adapter and the REST front end maps JSON to the
// same messages. One place decides every answer and every error.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/grpc_service.pb.h"
#include "serving/model_manager.h"

namespace gradserve::serving {

inline constexpr char kServerName[] = "gradserve";
inline constexpr char kServerVersion[] = "0.1.0";

class InferenceService {
 public:
  // Called for each ModelInfer that fails before reaching a model version
  // (undecodable request; unknown, unready or malformed model or version) with
  // the requested model and version and the error; versions report the other
  // requests through InferObserver. Optional (metrics).
  using RejectObserver = std::function<void(const std::string& model, const std::string& version,
                                            const absl::Status& status)>;

  explicit InferenceService(ModelManager* manager, RejectObserver on_reject = {})
      : manager_(manager), on_reject_(std::move(on_reject)) {}

  bool Live() const { return true; }
  // Ready once the initial model load finished (whatever each model's outcome)
  // and until shutdown begins.
  bool Ready() const;
  // Starts the shutdown: Ready() turns false, new inference requests get
  // UNAVAILABLE, and queued ones run at once (not waiting for company or
  // max_queue_delay). Returns when no request is queued or running, so the
  // front ends can then stop without cutting off a request they accepted
  // (ModelManager::Shutdown: every model is unloaded).
  void BeginShutdown();

  inference::ServerMetadataResponse ServerMetadata() const;
  absl::StatusOr<inference::ModelMetadataResponse> ModelMetadata(const std::string& name,
                                                                const std::string& version) const;
  absl::StatusOr<bool> ModelReady(const std::string& name, const std::string& version) const;
  absl::StatusOr<inference::ModelConfigResponse> ModelConfig(const std::string& name,
                                                            const std::string& version) const;
  // Every loaded model's READY versions when `name` is empty.
  absl::StatusOr<inference::ModelStatisticsResponse> ModelStatistics(
      const std::string& name, const std::string& version) const;
  inference::RepositoryIndexResponse RepositoryIndex(bool ready_only) const;
  absl::Status Load(const std::string& name) { return manager_->Load(name); }
  absl::Status Unload(const std::string& name) { return manager_->Unload(name); }

  // Decodes `request` (typed contents or raw_input_contents), runs it and
  // calls `done` once with the encoded response: raw_output_contents when the
  // request used raw inputs (or an output has no typed form), typed contents
  // otherwise; parameters weights_generation and batch_size (int64).
  // `request` must stay alive until `done` runs.
  using InferDone = std::function<void(absl::StatusOr<inference::ModelInferResponse>)>;
  void ModelInfer(const inference::ModelInferRequest& request, absl::Time deadline,
                  InferDone done) const;

  // The protocol-independent request of `request` (InvalidArgument naming the
  // input for bad datatypes, shapes or contents).
  static absl::StatusOr<InferRequest> DecodeInferRequest(
      const inference::ModelInferRequest& request);
  // Encodes `result` (raw: raw_output_contents, else typed contents).
  static absl::StatusOr<inference::ModelInferResponse> EncodeInferResult(
      const InferResult& result, bool raw);

  ModelManager& manager() const { return *manager_; }

 private:
  ModelManager* manager_;
  const RejectObserver on_reject_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace gradserve::serving
