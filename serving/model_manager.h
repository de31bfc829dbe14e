// ModelManager: the model repository and the versions loaded from it.
//
//   <repository>/<model>/config.pbtxt         optional (serving/model_config.h)
//   <repository>/<model>/<version>/           a saved model; version = a positive
//                                             integer; other folders are ignored
//
// Life of a version: LOADING (saved model read, session built, warm-up run) ->
// READY (serving) -> UNLOADING (no new requests; queued and running ones
// finish) -> gone; or UNAVAILABLE with the reason its load failed. A model's
// version policy (latest N by default) decides which versions should serve;
// Sync(model) loads the missing ones first and only then unloads the ones no
// longer wanted, so a new version takes over without a gap, and a version that
// fails to load leaves the others serving.
//
// Control modes (Triton's): NONE loads every model at start; POLL also rescans
// the repository every poll interval and syncs what changed; EXPLICIT loads
// only the startup models, then what Load() asks for.
//
// Thread safety: all methods are thread-safe. Loads of one model are
// serialized; different models load concurrently on their callers' threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "serving/servable.h"

namespace gradserve::serving {

enum class ControlMode { kNone, kPoll, kExplicit };
absl::StatusOr<ControlMode> ParseControlMode(absl::string_view mode);

enum class VersionState { kLoading, kReady, kUnloading, kUnavailable };
const char* VersionStateName(VersionState state);  // "LOADING", "READY", ...

struct ModelIndexEntry {
  std::string name;
  int64_t version = 0;  // 0 when the model failed before any version (bad config)
  VersionState state = VersionState::kUnavailable;
  std::string reason;   // why it is UNAVAILABLE
};

struct ModelManagerOptions {
  std::string repository;
  ControlMode mode = ControlMode::kNone;
  absl::Duration poll_interval = absl::Seconds(15);
  std::vector<std::string> startup_models;  // EXPLICIT: --load-model
  SessionOptions session;
  InferObserver observer;
  TrainingOptions training;  // checkpoint location and trainer hooks
  // After each version load: the model, version, seconds taken, and whether it
  // became READY.
  std::function<void(const std::string&, int64_t, double, bool)> on_load;
  // After each state change (metrics' gradserve_model_ready).
  std::function<void(const std::string&, int64_t, VersionState)> on_state;
};

class ModelManager {
 public:
  // InvalidArgument when the repository is not a readable directory.
  static absl::StatusOr<std::unique_ptr<ModelManager>> Create(ModelManagerOptions options);
  ~ModelManager();  // Shutdown()

  // Starts the initial load in the background (and, in POLL mode, the poller).
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  bool InitialLoadDone() const { return initial_load_done_.HasBeenNotified(); }
  void WaitForInitialLoad() const { initial_load_done_.WaitForNotification(); }

  // The version to serve: `version` ("" = the highest READY one). NOT_FOUND
  // for an unknown model or version; UNAVAILABLE when it is not READY (with
  // the reason a failed load gave).
  absl::StatusOr<std::shared_ptr<Servable>> Get(const std::string& model,
                                                const std::string& version) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Runs `request` on the version it names (retrying once on the newest READY
  // version when an unnamed version was unloaded between lookup and queueing).
  // Returns Get's error when no version takes the request (`done` is then not
  // called); otherwise `done` gets the outcome.
  absl::Status Infer(InferRequest request, InferCallback done) const;

  // Every model of the repository and every loaded one, sorted by name, then
  // version; `ready_only` keeps the READY ones.
  std::vector<ModelIndexEntry> Index(bool ready_only) const ABSL_LOCKS_EXCLUDED(mu_);
  // The version numbers present in the model's folder.
  std::vector<int64_t> AvailableVersions(const std::string& model) const;

  // Loads or reloads `model` from the repository (config re-read) and waits:
  // OK when the versions its policy wants are READY, else the first load
  // error. NOT_FOUND when the repository has no such model; FAILED_PRECONDITION
  // in NONE mode (no model control).
  absl::Status Load(const std::string& model) ABSL_LOCKS_EXCLUDED(mu_);
  // Unloads every version of `model` and waits for them to drain.
  absl::Status Unload(const std::string& model) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops the poller, unloads everything (draining in-flight requests).
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  const ModelManagerOptions& options() const { return options_; }

 private:
  struct Version {
    VersionState state = VersionState::kLoading;
    std::string reason;
    std::shared_ptr<Servable> servable;  // set when READY
    std::string config;  // the config it was loaded with (serialized), to spot changes
    // UNAVAILABLE: the config and the files' sizes and times when it failed;
    // a poll retries it only once they change.
    std::string failed_stamp;
  };
  struct Model {
    std::map<int64_t, Version> versions;
    std::string config_error;  // the config failed to read: no version loads
    std::shared_ptr<absl::Mutex> sync_mu = std::make_shared<absl::Mutex>();
  };

  using RetiredVersions = std::vector<std::pair<int64_t, std::shared_ptr<Servable>>>;

  explicit ModelManager(ModelManagerOptions options) : options_(std::move(options)) {}
  // FailedPrecondition in NONE mode (no load/unload from clients).
  absl::Status CheckModelControl() const;
  // Reports each version UNLOADING and drains it (in-flight requests finish).
  void Retire(const std::string& model, RetiredVersions retired);
  // Brings `model` in line with the repository; returns the first load error.
  // `retry_failed` = false (polls) skips versions that failed and have not
  // changed since.
  absl::Status Sync(const std::string& model, bool retry_failed = true) ABSL_LOCKS_EXCLUDED(mu_);
  void SetState(const std::string& model, int64_t version, VersionState state,
                std::string reason, std::shared_ptr<Servable> servable = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> RepositoryModels() const;
  void PollLoop() ABSL_LOCKS_EXCLUDED(mu_);

  const ModelManagerOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, Model> models_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar shutdown_cv_;
  absl::Notification initial_load_done_;
  std::thread initial_loader_, poller_;
};

}  // namespace gradserve::serving
