// gradserve's C++ client: typed calls over one gRPC channel to any Open
// Inference Protocol v2 server with Triton's extensions (gradserve, Triton),
// and to gradserve's own TrainingService (proto/training.proto; other servers
// answer those calls UNIMPLEMENTED).
//
// It sees only proto/ (STYLE.md convention 1): tensors travel as the small
// client::Tensor below (protocol datatype name, shape, raw little-endian
// bytes), never as engine Tensors.
//
// Errors: every call returns absl::Status / absl::StatusOr. A failed RPC keeps
// the gRPC code (gRPC's and Abseil's code numbers are the same) and the
// server's message, e.g. NOT_FOUND "unknown model 'x'". Local mistakes (a
// tensor whose bytes do not match its shape) are InvalidArgument before any
// call is made.
//
// Thread safety: Client is thread-safe; calls may run concurrently from any
// number of threads (they share the channel, one HTTP/2 connection).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/training.grpc.pb.h"

namespace gradserve::client {

// A tensor on the wire: `data` holds the elements flattened row-major,
// little-endian, without padding (the protocol's raw form; BYTES elements each
// as a 4-byte little-endian length then the bytes).
struct Tensor {
  std::string name;
  std::string datatype;  // "FP32", "INT64", ... (the protocol's names)
  std::vector<int64_t> shape;
  std::string data;
};

// Bytes per element of a protocol datatype; 0 for BYTES (variable length);
// InvalidArgument for names the protocol does not have.
absl::StatusOr<size_t> DatatypeSize(absl::string_view datatype);
// The product of `shape` (1 for a scalar).
int64_t ElementCount(const std::vector<int64_t>& shape);
// InvalidArgument unless `t`'s data holds exactly its shape's elements (BYTES:
// exactly ElementCount length-prefixed strings).
absl::Status CheckTensor(const Tensor& t);

struct InferRequest {
  std::string model;
  std::string version;  // empty: the server's version policy picks
  std::string id;       // echoed in the result
  std::vector<Tensor> inputs;
  std::vector<std::string> outputs;  // empty: every output of the model
};

struct InferResult {
  std::string model;
  std::string version;  // the version that computed the outputs
  std::string id;
  std::vector<Tensor> outputs;
};

// Examples for a model's trainer: the train signature's inputs by name (its
// features and its labels), all with the same first (batch) dimension, at
// most the model's training batch_size.
struct TrainRequest {
  std::string model;
  std::string version;  // empty: the version the server would serve
  std::string id;       // echoed in the response
  std::vector<Tensor> inputs;
};

struct ClientOptions {
  // host:port of the gRPC endpoint (Triton's convention: 8001).
  std::string url = "localhost:8001";
  // Deadline of each call; InfiniteDuration: none.
  absl::Duration timeout = absl::InfiniteDuration();
  // Compression of requests: "none", "gzip" or "deflate".
  std::string compression = "none";
};

class Client {
 public:
  // Connects lazily (the first call connects); InvalidArgument for a bad
  // compression name.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);
  // Over an existing channel (tests, or callers that configure their own).
  static absl::StatusOr<std::unique_ptr<Client>> Create(std::shared_ptr<grpc::Channel> channel,
                                                        const ClientOptions& options);

  // Health.
  absl::StatusOr<bool> ServerLive();
  absl::StatusOr<bool> ServerReady();
  absl::StatusOr<bool> ModelReady(const std::string& model, const std::string& version = "");

  // Metadata and configuration (the protocol's messages).
  absl::StatusOr<inference::ServerMetadataResponse> ServerMetadata();
  absl::StatusOr<inference::ModelMetadataResponse> ModelMetadata(const std::string& model,
                                                                 const std::string& version = "");
  absl::StatusOr<inference::ModelConfig> ModelConfig(const std::string& model,
                                                     const std::string& version = "");
  // Empty model: every loaded model; empty version: every version.
  absl::StatusOr<inference::ModelStatisticsResponse> ModelStatistics(
      const std::string& model = "", const std::string& version = "");

  // Inference: inputs go as raw_input_contents; outputs are decoded from
  // raw_output_contents (or from typed contents, for servers that answer so).
  absl::StatusOr<InferResult> Infer(const InferRequest& request);

  // Repository control.
  absl::StatusOr<inference::RepositoryIndexResponse> RepositoryIndex(bool ready_only = false);
  absl::Status Load(const std::string& model);
  absl::Status Unload(const std::string& model);

  // Online fine-tuning (gradserve.v1.TrainingService). An empty version is
  // the one the server would serve. Besides the inference API's codes:
  // FAILED_PRECONDITION when the version does not train, RESOURCE_EXHAUSTED
  // when its train queue is full.
  //
  // Queues the examples (sent as raw_input_contents, each checked with
  // CheckTensor first) and returns once the step that used them was applied:
  // its loss, the step and weights generation after it.
  absl::StatusOr<v1::ModelTrainResponse> Train(const TrainRequest& request);
  // Writes a checkpoint of the current weights and optimizer state.
  absl::StatusOr<v1::ModelCheckpointResponse> Checkpoint(const std::string& model,
                                                         const std::string& version = "");
  // Writes the current weights as version `export_version` of the model in
  // the server's repository (0: one more than the highest there; an existing
  // version is ALREADY_EXISTS).
  absl::StatusOr<v1::ModelExportResponse> Export(const std::string& model,
                                                 const std::string& version = "",
                                                 int64_t export_version = 0);
  // Restores the checkpoint named `checkpoint` (empty: the newest valid one).
  absl::StatusOr<v1::ModelRollbackResponse> Rollback(const std::string& model,
                                                     const std::string& version = "",
                                                     const std::string& checkpoint = "");
  // For a version that does not train: enabled = false and the reason.
  absl::StatusOr<v1::TrainingStatusResponse> TrainingStatus(const std::string& model,
                                                            const std::string& version = "");

  // Lower level, for callers that encode a request once and send it many
  // times (gradserve-perf). The message encoding of `request` (checks every
  // input with CheckTensor).
  static absl::StatusOr<inference::ModelInferRequest> EncodeInferRequest(
      const InferRequest& request);
  // The result held by `response` (InvalidArgument when it is malformed).
  static absl::StatusOr<InferResult> DecodeInferResponse(
      const inference::ModelInferResponse& response);
  // A blocking ModelInfer of an encoded request.
  absl::Status ModelInfer(const inference::ModelInferRequest& request,
                          inference::ModelInferResponse* response);
  // Starts a ModelInfer and returns at once; `done` runs once, on a gRPC
  // thread, when it finishes. `request` and `response` must outlive `done`'s
  // call; `done` must not block for long.
  void AsyncModelInfer(const inference::ModelInferRequest* request,
                       inference::ModelInferResponse* response,
                       std::function<void(absl::Status)> done);

 private:
  Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options,
         grpc_compression_algorithm compression);
  // A context with the deadline and compression of the options.
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::unique_ptr<v1::TrainingService::Stub> training_stub_;
  const ClientOptions options_;
  const grpc_compression_algorithm compression_;
};

// A gRPC status as an absl::Status (same code, same message).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace gradserve::client
