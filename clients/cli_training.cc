// gradserve-cli's training commands (clients/cli.h).
#include <ostream>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "clients/cli.h"

namespace gradserve::client {
namespace {

// A checkpoint's time (a file modification time) in the local time zone.
std::string FormatCheckpointTime(const v1::CheckpointInfo& c) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S",
                          absl::UnixEpoch() + absl::Seconds(c.time_unix_seconds()),
                          absl::LocalTimeZone());
}

void PrintModelVersion(const std::string& model, const std::string& version, std::ostream& out) {
  out << "model: " << model << "\nversion: " << version << "\n";
}

}  // namespace

absl::Status Train(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<std::vector<Tensor>> inputs = ReadInputs(f);
  if (!inputs.ok()) return inputs.status();
  absl::StatusOr<v1::ModelTrainResponse> r =
      client.Train({f.model, f.version, f.id, *std::move(inputs)});
  if (!r.ok()) return r.status();
  PrintModelVersion(r->model_name(), r->model_version(), out);
  if (!r->id().empty()) out << "id: " << r->id() << "\n";
  out << "loss: " << r->loss() << "\nstep: " << r->step()
      << "\nweights_generation: " << r->weights_generation()
      << "\nexamples_in_step: " << r->examples_in_step() << "\n";
  return absl::OkStatus();
}

absl::Status Checkpoint(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<v1::ModelCheckpointResponse> r = client.Checkpoint(f.model, f.version);
  if (!r.ok()) return r.status();
  const v1::CheckpointInfo& c = r->checkpoint();
  PrintModelVersion(r->model_name(), r->model_version(), out);
  out << "checkpoint: " << c.name() << "\npath: " << c.path() << "\nstep: " << c.step()
      << "\nweights_generation: " << c.weights_generation() << "\ntime: " << FormatCheckpointTime(c)
      << "\n";
  return absl::OkStatus();
}

absl::Status Export(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<v1::ModelExportResponse> r = client.Export(f.model, f.version, f.export_version);
  if (!r.ok()) return r.status();
  PrintModelVersion(r->model_name(), r->model_version(), out);
  out << "exported_version: " << r->exported_version() << "\npath: " << r->path()
      << "\nstep: " << r->step() << "\nweights_generation: " << r->weights_generation() << "\n";
  return absl::OkStatus();
}

absl::Status Rollback(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<v1::ModelRollbackResponse> r = client.Rollback(f.model, f.version, f.checkpoint);
  if (!r.ok()) return r.status();
  PrintModelVersion(r->model_name(), r->model_version(), out);
  // The step is the checkpoint's; the generation is a new one (rolling back
  // is an update of the served weights).
  out << "restored: " << r->restored().name() << "\npath: " << r->restored().path()
      << "\nstep: " << r->step() << "\nweights_generation: " << r->weights_generation() << "\n";
  return absl::OkStatus();
}

absl::Status TrainingStatus(Client& client, const Flags& f, std::ostream& out) {
  absl::StatusOr<v1::TrainingStatusResponse> r = client.TrainingStatus(f.model, f.version);
  if (!r.ok()) return r.status();
  PrintModelVersion(r->model_name(), r->model_version(), out);
  out << "enabled: " << (r->enabled() ? "true" : "false") << "\n";
  if (!r->enabled()) {
    out << "disabled_reason: " << r->disabled_reason() << "\n";
    return absl::OkStatus();
  }
  out << "optimizer: " << r->optimizer() << "\nbatch_size: " << r->batch_size()
      << "\nstep: " << r->step() << "\nweights_generation: " << r->weights_generation()
      << "\nlast_loss: " << r->last_loss() << "\nexamples_seen: " << r->examples_seen()
      << "\nsteps_applied: " << r->steps_applied() << "\nnonfinite_steps: " << r->nonfinite_steps()
      << "\nqueue_depth: " << r->queue_depth() << "\ncheckpoint_dir: " << r->checkpoint_dir()
      << "\nlast_checkpoint: " << (r->has_last_checkpoint() ? r->last_checkpoint().name() : "none")
      << "\ncheckpoints:\n";
  for (const v1::CheckpointInfo& c : r->checkpoints()) {
    out << absl::StrFormat("  %s step %d, weights_generation %d, %s\n", c.name(), c.step(),
                           c.weights_generation(), FormatCheckpointTime(c));
  }
  return absl::OkStatus();
}

}  // namespace gradserve::client
