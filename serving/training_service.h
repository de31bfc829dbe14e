// TrainingService: gradserve.v1.TrainingService's operations
// (proto/training.proto) over the model manager, in terms of its messages, so
// the gRPC front end is a thin adapter and REST maps JSON onto the same calls
// (as InferenceService does for inference).
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "proto/training.pb.h"
#include "serving/model_manager.h"

namespace gradserve::serving {

class TrainingService {
 public:
  // Called for each ModelTrain that fails before reaching a model's trainer
  // (undecodable; unknown, unready or non-training model or version), with
  // the error. Optional (metrics).
  using RejectObserver = std::function<void(const std::string& model, const std::string& version,
                                            const absl::Status& status)>;

  explicit TrainingService(ModelManager* manager, RejectObserver on_reject = {})
      : manager_(manager), on_reject_(std::move(on_reject)) {}

  // Decodes `request`, queues it for the version's trainer and calls `done`
  // once the step with its examples was applied (or with the error).
  // `request` must stay alive until `done` runs.
  using TrainDone = std::function<void(absl::StatusOr<v1::ModelTrainResponse>)>;
  void ModelTrain(const v1::ModelTrainRequest& request, absl::Time deadline,
                  TrainDone done) const;

  // New Train requests get UNAVAILABLE from now on (the server is stopping;
  // queued ones still run and the final checkpoints are written at unload).
  void BeginShutdown() { shutting_down_ = true; }

  absl::StatusOr<v1::ModelCheckpointResponse> ModelCheckpoint(
      const v1::ModelCheckpointRequest& request) const;
  absl::StatusOr<v1::ModelExportResponse> ModelExport(const v1::ModelExportRequest& request) const;
  absl::StatusOr<v1::ModelRollbackResponse> ModelRollback(
      const v1::ModelRollbackRequest& request) const;
  // For a version that does not train: enabled = false and the reason.
  absl::StatusOr<v1::TrainingStatusResponse> TrainingStatus(
      const v1::TrainingStatusRequest& request) const;

 private:
  // The version's trainer: Get's errors, or FAILED_PRECONDITION when it does
  // not train. `servable` keeps the version alive while it is used.
  absl::StatusOr<OnlineTrainer*> Trainer(const std::string& model, const std::string& version,
                                         std::shared_ptr<Servable>* servable) const;

  ModelManager* manager_;
  const RejectObserver on_reject_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace gradserve::serving
