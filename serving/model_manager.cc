#include "serving/model_manager.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/status.h"
#include "serving/model_config.h"

namespace gradserve::serving {
namespace {

namespace fs = std::filesystem;

// The versions `policy` wants among `available` (sorted ascending).
std::vector<int64_t> WantedVersions(const inference::ModelVersionPolicy& policy,
                                    const std::vector<int64_t>& available) {
  if (policy.has_all()) return available;
  if (policy.has_specific()) {
    std::vector<int64_t> wanted;
    for (int64_t v : policy.specific().versions()) {
      if (std::binary_search(available.begin(), available.end(), v)) wanted.push_back(v);
    }
    std::sort(wanted.begin(), wanted.end());
    return wanted;
  }
  const size_t n = std::max<uint32_t>(policy.latest().num_versions(), 1);
  return std::vector<int64_t>(available.end() - std::min(n, available.size()), available.end());
}

// What a failed version's retry depends on: its config and every file's size
// and modification time.
std::string VersionStamp(const std::string& config, const fs::path& dir) {
  std::string stamp = config;
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    files.push_back(absl::StrCat(e.path().string(), ":", e.file_size(), ":",
                                 e.last_write_time().time_since_epoch().count()));
  }
  std::sort(files.begin(), files.end());
  return absl::StrCat(stamp, "|", absl::StrJoin(files, "|"));
}

}  // namespace

absl::StatusOr<ControlMode> ParseControlMode(absl::string_view mode) {
  if (mode == "none") return ControlMode::kNone;
  if (mode == "poll") return ControlMode::kPoll;
  if (mode == "explicit") return ControlMode::kExplicit;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown model control mode '", mode, "'; expected none, poll or explicit"));
}

const char* VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kLoading: return "LOADING";
    case VersionState::kReady: return "READY";
    case VersionState::kUnloading: return "UNLOADING";
    case VersionState::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(ModelManagerOptions options) {
  std::error_code ec;
  GS_CHECK_ARG(fs::is_directory(options.repository, ec), "the model repository '",
               options.repository, "' is not a directory");
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(options)));
}

ModelManager::~ModelManager() { Shutdown(); }

std::vector<std::string> ModelManager::RepositoryModels() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.repository, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<int64_t> ModelManager::AvailableVersions(const std::string& model) const {
  return VersionFolders((fs::path(options_.repository) / model).string());
}

void ModelManager::Start() {
  std::vector<std::string> initial = options_.mode == ControlMode::kExplicit
                                         ? options_.startup_models
                                         : RepositoryModels();
  initial_loader_ = std::thread([this, initial] {
    for (const std::string& model : initial) {
      absl::Status s = Sync(model);
      (void)s;  // reported through Index() and the logs by the caller's hooks
    }
    initial_load_done_.Notify();
  });
  if (options_.mode == ControlMode::kPoll) {
    poller_ = std::thread([this] { PollLoop(); });
  }
}

void ModelManager::PollLoop() {
  initial_load_done_.WaitForNotification();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time until = absl::Now() + options_.poll_interval;
      while (!shutting_down_ && absl::Now() < until) shutdown_cv_.WaitWithDeadline(&mu_, until);
      if (shutting_down_) return;
    }
    std::set<std::string> models;
    for (const std::string& m : RepositoryModels()) models.insert(m);
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [name, m] : models_) models.insert(name);
    }
    for (const std::string& model : models) {
      if (fs::is_directory(fs::path(options_.repository) / model)) {
        (void)Sync(model, /*retry_failed=*/false);
      } else {
        (void)Unload(model);
      }
    }
  }
}

void ModelManager::SetState(const std::string& model, int64_t version, VersionState state,
                            std::string reason, std::shared_ptr<Servable> servable) {
  std::shared_ptr<Servable> replaced;
  {
    absl::MutexLock lock(&mu_);
    Version& v = models_[model].versions[version];
    v.state = state;
    v.reason = std::move(reason);
    if (state == VersionState::kReady) {
      replaced = std::move(v.servable);
      v.servable = std::move(servable);
    }
  }
  if (options_.on_state) options_.on_state(model, version, state);
  // A version reloaded in place (new config) drains the instance it replaced.
  if (replaced) replaced->Drain();
}

absl::Status ModelManager::Sync(const std::string& model, bool retry_failed) {
  std::shared_ptr<absl::Mutex> sync_mu;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("the server is shutting down");
    sync_mu = models_[model].sync_mu;
  }
  absl::MutexLock sync(sync_mu.get());
  const std::string dir = (fs::path(options_.repository) / model).string();
  absl::StatusOr<inference::ModelConfig> config = ReadModelConfig(dir);
  const std::vector<int64_t> available = AvailableVersions(model);
  absl::Status config_status = config.status();
  if (config_status.ok() && available.empty()) {
    config_status = absl::NotFoundError(
        absl::StrCat(dir, " has no version folders (numbered directories holding saved models)"));
  }
  if (!config_status.ok()) {
    absl::MutexLock lock(&mu_);
    models_[model].config_error = std::string(config_status.message());
    return config_status;
  }
  {
    absl::MutexLock lock(&mu_);
    models_[model].config_error.clear();
  }
  const std::vector<int64_t> wanted = WantedVersions(config->version_policy(), available);
  absl::Status first_error;
  bool any_ready = false;
  for (int64_t version : wanted) {
    const std::string stamp =
        VersionStamp(config->SerializeAsString(), fs::path(dir) / std::to_string(version));
    {
      absl::MutexLock lock(&mu_);
      const Version& v = models_[model].versions[version];
      if (!retry_failed && v.state == VersionState::kUnavailable && v.failed_stamp == stamp) {
        if (first_error.ok()) first_error = absl::UnavailableError(v.reason);
        continue;
      }
      // An unchanged READY version stays; a changed config reloads it.
      if (v.state == VersionState::kReady && v.servable != nullptr &&
          v.config == config->SerializeAsString()) {
        any_ready = true;
        continue;
      }
      if (v.state != VersionState::kReady) {
        models_[model].versions[version].state = VersionState::kLoading;
      }
    }
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::shared_ptr<Servable>> servable =
        Servable::Load(dir, version, *config, options_.session, options_.observer,
                       options_.training);
    absl::Status status = servable.status();
    if (status.ok()) status = (*servable)->WarmUp();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options_.on_load) options_.on_load(model, version, seconds, status.ok());
    if (status.ok()) {
      SetState(model, version, VersionState::kReady, "", *std::move(servable));
      absl::MutexLock lock(&mu_);
      models_[model].versions[version].config = config->SerializeAsString();
    }
    if (status.ok()) {
      any_ready = true;
    } else {
      bool keep_serving = false;
      {
        absl::MutexLock lock(&mu_);
        Version& v = models_[model].versions[version];
        // A failed reload of a READY version keeps the old instance serving.
        keep_serving = v.state == VersionState::kReady && v.servable != nullptr;
        if (keep_serving) v.reason = std::string(status.message());
      }
      if (!keep_serving) {
        SetState(model, version, VersionState::kUnavailable, std::string(status.message()));
        absl::MutexLock lock(&mu_);
        models_[model].versions[version].failed_stamp = stamp;
      } else {
        any_ready = true;
      }
      if (first_error.ok()) first_error = status;
    }
  }
  // Versions no longer wanted go once a wanted one serves (so a broken new
  // version leaves the old one serving).
  RetiredVersions retired;
  {
    absl::MutexLock lock(&mu_);
    auto& versions = models_[model].versions;
    for (auto it = versions.begin(); it != versions.end();) {
      const bool unwanted = !std::binary_search(wanted.begin(), wanted.end(), it->first);
      if (unwanted && (any_ready || it->second.state != VersionState::kReady)) {
        if (it->second.servable) retired.emplace_back(it->first, std::move(it->second.servable));
        it = versions.erase(it);
      } else {
        ++it;
      }
    }
  }
  Retire(model, std::move(retired));
  return first_error;
}

absl::StatusOr<std::shared_ptr<Servable>> ModelManager::Get(const std::string& model,
                                                           const std::string& version) const {
  int64_t wanted = 0;
  if (!version.empty()) {
    GS_CHECK_ARG(absl::SimpleAtoi(version, &wanted) && wanted > 0, "model version '", version,
                 "' is not a positive integer");
  }
  absl::MutexLock lock(&mu_);
  auto it = models_.find(model);
  if (it == models_.end()) {
    if (fs::is_directory(fs::path(options_.repository) / model)) {
      return absl::UnavailableError(absl::StrCat("model '", model, "' is not loaded"));
    }
    return absl::NotFoundError(absl::StrCat("unknown model '", model, "'"));
  }
  const Model& m = it->second;
  if (wanted > 0) {
    auto v = m.versions.find(wanted);
    if (v == m.versions.end()) {
      return absl::NotFoundError(
          absl::StrCat("model '", model, "' has no version ", wanted, " being served"));
    }
    if (v->second.state != VersionState::kReady || v->second.servable == nullptr) {
      return absl::UnavailableError(absl::StrCat(
          "model '", model, "' version ", wanted, " is ", VersionStateName(v->second.state),
          v->second.reason.empty() ? "" : ": ", v->second.reason));
    }
    return v->second.servable;
  }
  for (auto v = m.versions.rbegin(); v != m.versions.rend(); ++v) {
    if (v->second.state == VersionState::kReady && v->second.servable) return v->second.servable;
  }
  std::vector<std::string> why;
  if (!m.config_error.empty()) why.push_back(m.config_error);
  for (const auto& [n, v] : m.versions) {
    why.push_back(absl::StrCat("version ", n, " is ", VersionStateName(v.state),
                               v.reason.empty() ? "" : ": ", v.reason));
  }
  return absl::UnavailableError(absl::StrCat("model '", model, "' has no ready version",
                                             why.empty() ? "" : " (", absl::StrJoin(why, "; "),
                                             why.empty() ? "" : ")"));
}

absl::Status ModelManager::Infer(InferRequest request, InferCallback done) const {
  GS_ASSIGN_OR_RETURN(std::shared_ptr<Servable> servable,
                      Get(request.model_name, request.model_version));
  if (!request.model_version.empty()) {
    servable->Infer(std::move(request), std::move(done));
    return absl::OkStatus();
  }
  // The unnamed version may be retired between Get and queueing: try the newest
  // READY one again, once.
  InferRequest retry = request;
  Servable* first = servable.get();
  servable->Infer(std::move(request), [this, retry = std::move(retry), done, first](
                                             absl::StatusOr<InferResult> r) mutable {
    if (r.ok() || r.status().code() != absl::StatusCode::kUnavailable) {
      done(std::move(r));
      return;
    }
    absl::StatusOr<std::shared_ptr<Servable>> next = Get(retry.model_name, "");
    if (!next.ok() || next->get() == first) {
      done(std::move(r));
      return;
    }
    (*next)->Infer(std::move(retry), std::move(done));
  });
  return absl::OkStatus();
}

std::vector<ModelIndexEntry> ModelManager::Index(bool ready_only) const {
  std::set<std::string> names;
  for (const std::string& m : RepositoryModels()) names.insert(m);
  std::vector<ModelIndexEntry> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, m] : models_) names.insert(name);
  for (const std::string& name : names) {
    auto it = models_.find(name);
    if (it == models_.end() || (it->second.versions.empty())) {
      if (ready_only) continue;
      std::string reason = it == models_.end() ? "not loaded" : it->second.config_error;
      if (reason.empty()) reason = "unloaded";
      out.push_back({name, 0, VersionState::kUnavailable, reason});
      continue;
    }
    for (const auto& [version, v] : it->second.versions) {
      if (ready_only && v.state != VersionState::kReady) continue;
      out.push_back({name, version, v.state, v.reason});
    }
  }
  return out;
}

absl::Status ModelManager::CheckModelControl() const {
  if (options_.mode == ControlMode::kNone) {
    return absl::FailedPreconditionError(
        "model control is disabled: start the server with --model-control-mode=explicit or poll");
  }
  return absl::OkStatus();
}

void ModelManager::Retire(const std::string& model, RetiredVersions retired) {
  for (auto& [version, servable] : retired) {
    if (options_.on_state) options_.on_state(model, version, VersionState::kUnloading);
    servable->Drain();
  }
}

absl::Status ModelManager::Load(const std::string& model) {
  GS_RETURN_IF_ERROR(CheckModelControl());
  if (!fs::is_directory(fs::path(options_.repository) / model)) {
    return absl::NotFoundError(
        absl::StrCat("the repository has no model '", model, "' (no folder ",
                     (fs::path(options_.repository) / model).string(), ")"));
  }
  return Sync(model);
}

absl::Status ModelManager::Unload(const std::string& model) {
  GS_RETURN_IF_ERROR(CheckModelControl());
  RetiredVersions retired;
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(model);
    if (it == models_.end()) {
      return absl::NotFoundError(absl::StrCat("model '", model, "' is not loaded"));
    }
    for (auto& [version, v] : it->second.versions) {
      if (v.servable) retired.emplace_back(version, std::move(v.servable));
    }
    it->second.versions.clear();
  }
  Retire(model, std::move(retired));
  return absl::OkStatus();
}

void ModelManager::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    shutdown_cv_.SignalAll();
  }
  if (initial_loader_.joinable()) initial_loader_.join();
  if (poller_.joinable()) poller_.join();
  std::vector<std::shared_ptr<Servable>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, m] : models_) {
      for (auto& [version, v] : m.versions) {
        if (v.servable) all.push_back(std::move(v.servable));
      }
      m.versions.clear();
    }
  }
  for (auto& s : all) s->Drain();
}

}  // namespace gradserve::serving
