#include "serving/inference_service.h"

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "serving/tensor_codec.h"

namespace gradserve::serving {
namespace {

void SetDuration(int64_t count, int64_t ns, inference::StatisticDuration* d) {
  d->set_count(static_cast<uint64_t>(count));
  d->set_ns(static_cast<uint64_t>(ns));
}

template <typename Tensors, typename Out>
void AddTensorMetadata(const Tensors& tensors, bool batching, Out* out) {
  for (const auto& t : tensors) {
    auto* m = out->Add();
    m->set_name(t.name());
    m->set_datatype(DatatypeName(*DTypeFromConfig(t.data_type())));
    if (batching) m->add_shape(-1);
    for (int64_t d : t.dims()) m->add_shape(d);
  }
}

}  // namespace

bool InferenceService::Ready() const {
  return !shutting_down_.load() && manager_->InitialLoadDone();
}

void InferenceService::BeginShutdown() {
  shutting_down_ = true;
  // Drain the batchers before the front ends wait for their calls: a request
  // queued behind a long max_queue_delay would otherwise hold the gRPC
  // shutdown past --exit-timeout-secs and then be cancelled.
  manager_->Shutdown();
}

inference::ServerMetadataResponse InferenceService::ServerMetadata() const {
  inference::ServerMetadataResponse r;
  r.set_name(kServerName);
  r.set_version(kServerVersion);
  for (const char* e : {"model_repository", "model_configuration", "statistics",
                        "binary_tensor_data", "parameters", "training"}) {
    r.add_extensions(e);
  }
  return r;
}

absl::StatusOr<inference::ModelMetadataResponse> InferenceService::ModelMetadata(
    const std::string& name, const std::string& version) const {
  GS_ASSIGN_OR_RETURN(auto servable, manager_->Get(name, version));
  inference::ModelMetadataResponse r;
  r.set_name(name);
  for (const ModelIndexEntry& e : manager_->Index(/*ready_only=*/true)) {
    if (e.name == name) r.add_versions(std::to_string(e.version));
  }
  r.set_platform(servable->config().platform());
  const bool batching = servable->config().max_batch_size() > 0;
  AddTensorMetadata(servable->config().input(), batching, r.mutable_inputs());
  AddTensorMetadata(servable->config().output(), batching, r.mutable_outputs());
  return r;
}

absl::StatusOr<bool> InferenceService::ModelReady(const std::string& name,
                                                  const std::string& version) const {
  absl::StatusOr<std::shared_ptr<Servable>> s = manager_->Get(name, version);
  if (s.ok()) return true;
  if (s.status().code() == absl::StatusCode::kInvalidArgument) return s.status();
  return false;
}

absl::StatusOr<inference::ModelConfigResponse> InferenceService::ModelConfig(
    const std::string& name, const std::string& version) const {
  GS_ASSIGN_OR_RETURN(auto servable, manager_->Get(name, version));
  inference::ModelConfigResponse r;
  *r.mutable_config() = servable->config();
  return r;
}

absl::StatusOr<inference::ModelStatisticsResponse> InferenceService::ModelStatistics(
    const std::string& name, const std::string& version) const {
  std::vector<std::shared_ptr<Servable>> servables;
  if (!name.empty()) {
    GS_ASSIGN_OR_RETURN(auto s, manager_->Get(name, version));
    servables.push_back(std::move(s));
  } else {
    for (const ModelIndexEntry& e : manager_->Index(/*ready_only=*/true)) {
      absl::StatusOr<std::shared_ptr<Servable>> s =
          manager_->Get(e.name, std::to_string(e.version));
      if (s.ok()) servables.push_back(*std::move(s));
    }
  }
  inference::ModelStatisticsResponse r;
  for (const auto& s : servables) {
    const ServableStats& st = s->stats();
    auto* m = r.add_model_stats();
    m->set_name(s->name());
    m->set_version(std::to_string(s->version()));
    m->set_last_inference(static_cast<uint64_t>(st.last_inference_ms.load()));
    m->set_inference_count(static_cast<uint64_t>(st.inference_count.load()));
    m->set_execution_count(static_cast<uint64_t>(st.execution_count.load()));
    auto* is = m->mutable_inference_stats();
    SetDuration(st.success_count, st.success_ns, is->mutable_success());
    SetDuration(st.fail_count, st.fail_ns, is->mutable_fail());
    SetDuration(st.queue_count, st.queue_ns, is->mutable_queue());
    // The engine does not split input copying, execution and output copying:
    // all of a batch's run counts as compute_infer.
    SetDuration(st.compute_count, 0, is->mutable_compute_input());
    SetDuration(st.compute_count, st.compute_ns, is->mutable_compute_infer());
    SetDuration(st.compute_count, 0, is->mutable_compute_output());
  }
  return r;
}

inference::RepositoryIndexResponse InferenceService::RepositoryIndex(bool ready_only) const {
  inference::RepositoryIndexResponse r;
  for (const ModelIndexEntry& e : manager_->Index(ready_only)) {
    auto* m = r.add_models();
    m->set_name(e.name);
    if (e.version > 0) m->set_version(std::to_string(e.version));
    m->set_state(VersionStateName(e.state));
    m->set_reason(e.reason);
  }
  return r;
}

absl::StatusOr<InferRequest> InferenceService::DecodeInferRequest(
    const inference::ModelInferRequest& req) {
  InferRequest r;
  r.model_name = req.model_name();
  r.model_version = req.model_version();
  r.id = req.id();
  GS_ASSIGN_OR_RETURN(r.inputs, DecodeInputTensors(req.inputs(), req.raw_input_contents()));
  for (const auto& out : req.outputs()) {
    GS_CHECK_ARG(!out.name().empty(), "a requested output has no name");
    r.requested_outputs.push_back(out.name());
  }
  return r;
}

absl::StatusOr<inference::ModelInferResponse> InferenceService::EncodeInferResult(
    const InferResult& result, bool raw) {
  inference::ModelInferResponse r;
  r.set_model_name(result.model_name);
  r.set_model_version(std::to_string(result.model_version));
  r.set_id(result.id);
  (*r.mutable_parameters())["weights_generation"].set_int64_param(result.weights_generation);
  (*r.mutable_parameters())["batch_size"].set_int64_param(result.batch_size);
  for (const auto& [name, t] : result.outputs) {
    raw |= t.dtype() == DType::kHalf || t.dtype() == DType::kBFloat16;
  }
  for (const auto& [name, t] : result.outputs) {
    auto* out = r.add_outputs();
    out->set_name(name);
    out->set_datatype(DatatypeName(t.dtype()));
    for (int64_t d : t.shape().dims()) out->add_shape(d);
    if (raw) {
      TensorToRaw(t, r.add_raw_output_contents());
    } else {
      GS_RETURN_IF_ERROR(TensorToContents(t, out->mutable_contents()));
    }
  }
  return r;
}

void InferenceService::ModelInfer(const inference::ModelInferRequest& request,
                                  absl::Time deadline, InferDone done) const {
  // Requests that never reach a version (bad encoding, no such model or
  // version) are reported here; a version reports its own outcomes.
  auto reject = [&](const absl::Status& status) {
    if (on_reject_) on_reject_(request.model_name(), request.model_version(), status);
    done(status);
  };
  if (shutting_down_.load()) {
    reject(absl::UnavailableError("the server is shutting down"));
    return;
  }
  absl::StatusOr<InferRequest> decoded = DecodeInferRequest(request);
  if (!decoded.ok()) {
    reject(decoded.status());
    return;
  }
  decoded->deadline = deadline;
  const bool raw = request.raw_input_contents_size() > 0;
  absl::Status queued = manager_->Infer(
      *std::move(decoded), [done, raw](absl::StatusOr<InferResult> result) {
        if (!result.ok()) {
          done(result.status());
          return;
        }
        done(EncodeInferResult(*result, raw));
      });
  if (!queued.ok()) reject(queued);
}

}  // namespace gradserve::serving
