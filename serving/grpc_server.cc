#include "serving/grpc_server.h"

#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/training.grpc.pb.h"

namespace gradserve::serving {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

namespace {

// Finishes a unary call with `status` (answering OK when it is OK).
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Finishes a unary call with `value` stored in `*out`, or its error.
template <typename T>
grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx, absl::StatusOr<T> value,
                              T* out) {
  if (value.ok()) *out = *std::move(value);
  return Reply(ctx, value.status());
}

absl::Time Deadline(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  return deadline == std::chrono::system_clock::time_point::max() ? absl::InfiniteFuture()
                                                                  : absl::FromChrono(deadline);
}

}  // namespace

// Calls that take seconds (loading, draining, writing checkpoints) run on a
// thread of their own, not on gRPC's callback threads, and finish the call
// there. Join() waits for them (before the services they call go away).
class GrpcServer::Aside {
 public:
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx,
                                std::function<absl::Status()> call) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    threads_.emplace_back([reactor, call = std::move(call)] {
      reactor->Finish(ToGrpcStatus(call()));
    });
    return reactor;
  }
  // Runs `call` aside and stores its value in `*out` when it succeeds.
  template <typename T>
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                std::function<absl::StatusOr<T>()> call, T* out) {
    return Run(ctx, [call = std::move(call), out] {
      absl::StatusOr<T> value = call();
      if (value.ok()) *out = *std::move(value);
      return value.status();
    });
  }
  void Join() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

 private:
  absl::Mutex mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

class GrpcServer::Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  Service(InferenceService* s, Aside* aside) : s_(s), aside_(aside) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* r) override {
    r->set_live(s_->Live());
    return Reply(ctx, absl::OkStatus());
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* r) override {
    r->set_ready(s_->Ready());
    return Reply(ctx, absl::OkStatus());
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const inference::ModelReadyRequest* q,
                                       inference::ModelReadyResponse* r) override {
    absl::StatusOr<bool> ready = s_->ModelReady(q->name(), q->version());
    if (ready.ok()) r->set_ready(*ready);
    return Reply(ctx, ready.status());
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* r) override {
    *r = s_->ServerMetadata();
    return Reply(ctx, absl::OkStatus());
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* q,
                                          inference::ModelMetadataResponse* r) override {
    return Set(ctx, s_->ModelMetadata(q->name(), q->version()), r);
  }
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* ctx,
                                        const inference::ModelConfigRequest* q,
                                        inference::ModelConfigResponse* r) override {
    return Set(ctx, s_->ModelConfig(q->name(), q->version()), r);
  }
  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* ctx,
                                            const inference::ModelStatisticsRequest* q,
                                            inference::ModelStatisticsResponse* r) override {
    return Set(ctx, s_->ModelStatistics(q->name(), q->version()), r);
  }
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* q,
                                            inference::RepositoryIndexResponse* r) override {
    *r = s_->RepositoryIndex(q->ready());
    return Reply(ctx, absl::OkStatus());
  }
  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                const inference::RepositoryModelLoadRequest* q,
                                                inference::RepositoryModelLoadResponse*) override {
    return aside_->Run(ctx, [this, name = q->model_name()] { return s_->Load(name); });
  }
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* q,
      inference::RepositoryModelUnloadResponse*) override {
    return aside_->Run(ctx, [this, name = q->model_name()] { return s_->Unload(name); });
  }
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* q,
                                       inference::ModelInferResponse* r) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    s_->ModelInfer(*q, Deadline(ctx),
                   [reactor, r](absl::StatusOr<inference::ModelInferResponse> response) {
                     if (response.ok()) *r = *std::move(response);
                     reactor->Finish(ToGrpcStatus(response.status()));
                   });
    return reactor;
  }

 private:
  InferenceService* s_;
  Aside* aside_;
};

// gradserve.v1.TrainingService over the TrainingService. Train returns its
// thread to gRPC while the examples wait for their step.
class GrpcServer::Training final : public v1::TrainingService::CallbackService {
 public:
  Training(TrainingService* t, Aside* aside) : t_(t), aside_(aside) {}

  grpc::ServerUnaryReactor* ModelTrain(grpc::CallbackServerContext* ctx,
                                       const v1::ModelTrainRequest* q,
                                       v1::ModelTrainResponse* r) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    t_->ModelTrain(*q, Deadline(ctx),
                   [reactor, r](absl::StatusOr<v1::ModelTrainResponse> response) {
                     if (response.ok()) *r = *std::move(response);
                     reactor->Finish(ToGrpcStatus(response.status()));
                   });
    return reactor;
  }
  grpc::ServerUnaryReactor* ModelCheckpoint(grpc::CallbackServerContext* ctx,
                                            const v1::ModelCheckpointRequest* q,
                                            v1::ModelCheckpointResponse* r) override {
    return aside_->Set<v1::ModelCheckpointResponse>(
        ctx, [this, q] { return t_->ModelCheckpoint(*q); }, r);
  }
  grpc::ServerUnaryReactor* ModelExport(grpc::CallbackServerContext* ctx,
                                        const v1::ModelExportRequest* q,
                                        v1::ModelExportResponse* r) override {
    return aside_->Set<v1::ModelExportResponse>(ctx, [this, q] { return t_->ModelExport(*q); },
                                                r);
  }
  grpc::ServerUnaryReactor* ModelRollback(grpc::CallbackServerContext* ctx,
                                          const v1::ModelRollbackRequest* q,
                                          v1::ModelRollbackResponse* r) override {
    return aside_->Set<v1::ModelRollbackResponse>(
        ctx, [this, q] { return t_->ModelRollback(*q); }, r);
  }
  grpc::ServerUnaryReactor* TrainingStatus(grpc::CallbackServerContext* ctx,
                                           const v1::TrainingStatusRequest* q,
                                           v1::TrainingStatusResponse* r) override {
    return Set(ctx, t_->TrainingStatus(*q), r);
  }

 private:
  TrainingService* t_;
  Aside* aside_;
};

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const std::string& address,
                                                              InferenceService* service,
                                                              TrainingService* training) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<GrpcServer> s(new GrpcServer());
  s->aside_ = std::make_unique<Aside>();
  s->service_ = std::make_unique<Service>(service, s->aside_.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &s->port_);
  builder.RegisterService(s->service_.get());
  if (training != nullptr) {
    s->training_ = std::make_unique<Training>(training, s->aside_.get());
    builder.RegisterService(s->training_.get());
  }
  // Tensors travel in one message: allow large ones (the request limit is the
  // model's, not the transport's).
  builder.SetMaxReceiveMessageSize(1 << 30);
  builder.SetMaxSendMessageSize(1 << 30);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", address));
  }
  s->SetServing(false);
  return s;
}

GrpcServer::~GrpcServer() {
  if (server_) Shutdown(absl::Now());
}

void GrpcServer::SetServing(bool serving) {
  if (auto* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(serving);
  }
}

void GrpcServer::Shutdown(absl::Time deadline) {
  if (!server_) return;
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  aside_->Join();
  server_.reset();
}

}  // namespace gradserve::serving
