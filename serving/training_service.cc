#include "serving/training_service.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "serving/tensor_codec.h"

namespace gradserve::serving {
namespace {

void SetCheckpoint(const CheckpointEntry& e, v1::CheckpointInfo* info) {
  info->set_name(e.name);
  info->set_path(e.path);
  info->set_step(e.step);
  info->set_weights_generation(e.generation);
  info->set_time_unix_seconds(absl::ToDoubleSeconds(e.time - absl::UnixEpoch()));
}

}  // namespace

absl::StatusOr<OnlineTrainer*> TrainingService::Trainer(const std::string& model,
                                                        const std::string& version,
                                                        std::shared_ptr<Servable>* servable) const {
  GS_ASSIGN_OR_RETURN(*servable, manager_->Get(model, version));
  GS_RETURN_IF_ERROR((*servable)->TrainingAvailable());
  return (*servable)->online_trainer();
}

void TrainingService::ModelTrain(const v1::ModelTrainRequest& request, absl::Time deadline,
                                 TrainDone done) const {
  auto reject = [&](const absl::Status& status) {
    if (on_reject_) on_reject_(request.model_name(), request.model_version(), status);
    done(status);
  };
  if (shutting_down_) {
    return reject(absl::UnavailableError("the server is shutting down; no new training requests"));
  }
  std::shared_ptr<Servable> servable;
  absl::StatusOr<OnlineTrainer*> trainer =
      Trainer(request.model_name(), request.model_version(), &servable);
  if (!trainer.ok()) return reject(trainer.status());
  TrainRequest r;
  r.id = request.id();
  r.deadline = deadline;
  absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> inputs =
      DecodeInputTensors(request.inputs(), request.raw_input_contents());
  if (!inputs.ok()) return reject(inputs.status());
  r.inputs = *std::move(inputs);
  const std::string name = servable->name();
  const std::string version = std::to_string(servable->version());
  // The callback holds the version until the step ran.
  (*trainer)->Train(std::move(r), [done, name, version, servable](
                                      absl::StatusOr<TrainResult> result) {
    if (!result.ok()) return done(result.status());
    v1::ModelTrainResponse response;
    response.set_model_name(name);
    response.set_model_version(version);
    response.set_id(result->id);
    response.set_loss(result->loss);
    response.set_step(result->step);
    response.set_weights_generation(result->generation);
    response.set_examples_in_step(result->examples_in_step);
    done(std::move(response));
  });
}

absl::StatusOr<v1::ModelCheckpointResponse> TrainingService::ModelCheckpoint(
    const v1::ModelCheckpointRequest& request) const {
  std::shared_ptr<Servable> servable;
  GS_ASSIGN_OR_RETURN(OnlineTrainer * trainer,
                      Trainer(request.model_name(), request.model_version(), &servable));
  GS_ASSIGN_OR_RETURN(CheckpointEntry entry, trainer->Checkpoint());
  v1::ModelCheckpointResponse r;
  r.set_model_name(servable->name());
  r.set_model_version(std::to_string(servable->version()));
  SetCheckpoint(entry, r.mutable_checkpoint());
  return r;
}

absl::StatusOr<v1::ModelExportResponse> TrainingService::ModelExport(
    const v1::ModelExportRequest& request) const {
  std::shared_ptr<Servable> servable;
  GS_ASSIGN_OR_RETURN(OnlineTrainer * trainer,
                      Trainer(request.model_name(), request.model_version(), &servable));
  const std::string model_dir =
      absl::StrCat(manager_->options().repository, "/", servable->name());
  GS_ASSIGN_OR_RETURN(OnlineTrainer::Exported e,
                      trainer->Export(model_dir, request.export_version()));
  v1::ModelExportResponse r;
  r.set_model_name(servable->name());
  r.set_model_version(std::to_string(servable->version()));
  r.set_exported_version(e.version);
  r.set_path(e.path);
  r.set_step(e.step);
  r.set_weights_generation(e.generation);
  return r;
}

absl::StatusOr<v1::ModelRollbackResponse> TrainingService::ModelRollback(
    const v1::ModelRollbackRequest& request) const {
  std::shared_ptr<Servable> servable;
  GS_ASSIGN_OR_RETURN(OnlineTrainer * trainer,
                      Trainer(request.model_name(), request.model_version(), &servable));
  GS_ASSIGN_OR_RETURN(OnlineTrainer::RolledBack b, trainer->Rollback(request.checkpoint()));
  v1::ModelRollbackResponse r;
  r.set_model_name(servable->name());
  r.set_model_version(std::to_string(servable->version()));
  SetCheckpoint(b.restored, r.mutable_restored());
  r.set_step(b.step);
  r.set_weights_generation(b.generation);
  return r;
}

absl::StatusOr<v1::TrainingStatusResponse> TrainingService::TrainingStatus(
    const v1::TrainingStatusRequest& request) const {
  GS_ASSIGN_OR_RETURN(std::shared_ptr<Servable> servable,
                      manager_->Get(request.model_name(), request.model_version()));
  v1::TrainingStatusResponse r;
  r.set_model_name(servable->name());
  r.set_model_version(std::to_string(servable->version()));
  r.set_weights_generation(servable->generation());
  absl::Status available = servable->TrainingAvailable();
  r.set_enabled(available.ok());
  if (!available.ok()) {
    r.set_disabled_reason(std::string(available.message()));
    return r;
  }
  const TrainingStatusInfo s = servable->online_trainer()->Status();
  r.set_optimizer(OptimizerKindName(s.optimizer));
  r.set_batch_size(s.batch_size);
  r.set_step(s.step);
  r.set_weights_generation(s.generation);
  r.set_last_loss(s.last_loss);
  r.set_examples_seen(s.examples_seen);
  r.set_steps_applied(s.steps_applied);
  r.set_nonfinite_steps(s.nonfinite_steps);
  r.set_queue_depth(s.queue_depth);
  if (s.last_checkpoint) SetCheckpoint(*s.last_checkpoint, r.mutable_last_checkpoint());
  r.set_checkpoint_dir(s.checkpoint_dir);
  for (const CheckpointEntry& e : s.checkpoints) SetCheckpoint(e, r.add_checkpoints());
  return r;
}

}  // namespace gradserve::serving
