// The gRPC front end: inference.GRPCInferenceService (Open Inference Protocol
// v2 plus Triton's ModelConfig, ModelStatistics and repository RPCs) over the
// InferenceService, plus grpc.health.v1.Health (SERVING once the server is
// ready), gradserve.v1.TrainingService over the TrainingService (when given),
// and server reflection. Uses the callback API: ModelInfer returns its
// thread to gRPC while the request waits in the batcher.
//
// Thread safety: Start/Shutdown from one thread; RPCs run concurrently.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "serving/inference_service.h"
#include "serving/training_service.h"

namespace gradserve::serving {

class GrpcServer {
 public:
  // Listens on `address` ("0.0.0.0:8001"; port 0 picks a free one, see port()).
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const std::string& address,
                                                           InferenceService* service,
                                                           TrainingService* training = nullptr);
  ~GrpcServer();

  int port() const { return port_; }
  // Sets the health service's status ("" and the inference service).
  void SetServing(bool serving);
  // Stops accepting calls and waits up to `deadline` for running ones.
  void Shutdown(absl::Time deadline);

  class Aside;  // long calls' threads

 private:
  class Service;
  class Training;
  GrpcServer() = default;
  std::unique_ptr<Aside> aside_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Training> training_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// absl::Status -> grpc::Status (the codes are the same numbers).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace gradserve::serving
