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

}  // namespace

class GrpcServer::Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit Service(InferenceService* s) : s_(s) {}

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
    return RunAside(ctx, [this, name = q->model_name()] { return s_->Load(name); });
  }
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* ctx, const inference::RepositoryModelUnloadRequest* q,
      inference::RepositoryModelUnloadResponse*) override {
    return RunAside(ctx, [this, name = q->model_name()] { return s_->Unload(name); });
  }
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* q,
                                       inference::ModelInferResponse* r) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const auto deadline = ctx->deadline();
    const absl::Time until = deadline == std::chrono::system_clock::time_point::max()
                                 ? absl::InfiniteFuture()
                                 : absl::FromChrono(deadline);
    s_->ModelInfer(*q, until,
                   [reactor, r](absl::StatusOr<inference::ModelInferResponse> response) {
                     if (response.ok()) *r = *std::move(response);
                     reactor->Finish(ToGrpcStatus(response.status()));
                   });
    return reactor;
  }

  // Waits for the repository calls still running (before the manager goes).
  void JoinAside() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(aside_);
    }
    for (std::thread& t : threads) t.join();
  }

 private:
  template <typename T>
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx, absl::StatusOr<T> value,
                                T* out) {
    if (value.ok()) *out = *std::move(value);
    return Reply(ctx, value.status());
  }

  // Repository calls take seconds (loading, draining): they run on a thread
  // of their own, not on gRPC's callback threads, and finish the call there.
  grpc::ServerUnaryReactor* RunAside(grpc::CallbackServerContext* ctx,
                                     std::function<absl::Status()> call) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    absl::MutexLock lock(&mu_);
    aside_.emplace_back([reactor, call = std::move(call)] {
      reactor->Finish(ToGrpcStatus(call()));
    });
    return reactor;
  }

  InferenceService* s_;
  absl::Mutex mu_;
  std::vector<std::thread> aside_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const std::string& address,
                                                              InferenceService* service) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<GrpcServer> s(new GrpcServer());
  s->service_ = std::make_unique<Service>(service);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &s->port_);
  builder.RegisterService(s->service_.get());
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
  service_->JoinAside();
  server_.reset();
}

}  // namespace gradserve::serving
