#include "clients/client.h"

#include <bit>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace gradserve::client {
namespace {

// The raw form is little-endian; we copy host bytes, so the host must be too.
static_assert(std::endian::native == std::endian::little);

struct DatatypeInfo {
  absl::string_view name;
  size_t size;
};
constexpr DatatypeInfo kDatatypes[] = {
    {"BOOL", 1}, {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8},
    {"INT8", 1}, {"INT16", 2}, {"INT32", 4},  {"INT64", 8},  {"FP16", 2},
    {"FP32", 4}, {"FP64", 8},  {"BF16", 2},   {"BYTES", 0},
};

// Appends `values` converted to T (the list's element type may be wider).
template <typename T, typename List>
void AppendAs(const List& values, std::string* out) {
  for (const auto& v : values) {
    const T t = static_cast<T>(v);
    out->append(reinterpret_cast<const char*>(&t), sizeof(T));
  }
}

// The raw bytes of a typed `contents` of `datatype`.
absl::StatusOr<std::string> RawFromContents(const inference::InferTensorContents& c,
                                            absl::string_view datatype) {
  std::string raw;
  if (datatype == "BOOL")
    AppendAs<uint8_t>(c.bool_contents(), &raw);
  else if (datatype == "UINT8")
    AppendAs<uint8_t>(c.uint_contents(), &raw);
  else if (datatype == "UINT16")
    AppendAs<uint16_t>(c.uint_contents(), &raw);
  else if (datatype == "UINT32")
    AppendAs<uint32_t>(c.uint_contents(), &raw);
  else if (datatype == "UINT64")
    AppendAs<uint64_t>(c.uint64_contents(), &raw);
  else if (datatype == "INT8")
    AppendAs<int8_t>(c.int_contents(), &raw);
  else if (datatype == "INT16")
    AppendAs<int16_t>(c.int_contents(), &raw);
  else if (datatype == "INT32")
    AppendAs<int32_t>(c.int_contents(), &raw);
  else if (datatype == "INT64")
    AppendAs<int64_t>(c.int64_contents(), &raw);
  else if (datatype == "FP32")
    AppendAs<float>(c.fp32_contents(), &raw);
  else if (datatype == "FP64")
    AppendAs<double>(c.fp64_contents(), &raw);
  else if (datatype == "BYTES") {
    for (const std::string& s : c.bytes_contents()) {
      const uint32_t n = static_cast<uint32_t>(s.size());
      raw.append(reinterpret_cast<const char*>(&n), 4);
      raw.append(s);
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("the response's ", datatype, " output has no typed form"));
  }
  return raw;
}

// Runs a blocking unary call `method` on the stub with a fresh context.
template <typename Request, typename Response, typename Stub, typename Method>
absl::StatusOr<Response> Call(Stub* stub, std::unique_ptr<grpc::ClientContext> ctx, Method method,
                              const Request& request) {
  Response response;
  grpc::Status s = (stub->*method)(ctx.get(), request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response;
}

// Adds `inputs` to `q` (a ModelInferRequest or a ModelTrainRequest) as
// InferInputTensors with raw_input_contents, checking each with CheckTensor.
template <typename Request>
absl::Status AddInputs(const std::vector<Tensor>& inputs, Request* q) {
  for (const Tensor& t : inputs) {
    absl::Status s = CheckTensor(t);
    if (!s.ok()) return s;
    auto* in = q->add_inputs();
    in->set_name(t.name);
    in->set_datatype(t.datatype);
    in->mutable_shape()->Add(t.shape.begin(), t.shape.end());
    q->add_raw_input_contents(t.data);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<size_t> DatatypeSize(absl::string_view datatype) {
  for (const DatatypeInfo& d : kDatatypes) {
    if (d.name == datatype) return d.size;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown datatype '", datatype,
      "'; the protocol's are BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BF16, BYTES"));
}

int64_t ElementCount(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::Status CheckTensor(const Tensor& t) {
  absl::StatusOr<size_t> size = DatatypeSize(t.datatype);
  if (!size.ok())
    return absl::InvalidArgumentError(absl::StrCat(t.name, ": ", size.status().message()));
  for (int64_t d : t.shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "' has a negative dimension (", d, ")"));
    }
  }
  const int64_t n = ElementCount(t.shape);
  if (*size > 0) {
    if (t.data.size() != static_cast<size_t>(n) * *size) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "' has ", n, " ", t.datatype, " elements (", n * *size,
                       " bytes) but its data holds ", t.data.size(), " bytes"));
    }
    return absl::OkStatus();
  }
  // BYTES: n length-prefixed strings, nothing after them.
  size_t pos = 0;
  int64_t found = 0;
  for (; found < n && pos + 4 <= t.data.size(); ++found) {
    uint32_t len = 0;
    std::memcpy(&len, t.data.data() + pos, 4);
    pos += 4 + len;
  }
  if (found != n || pos != t.data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "' should hold ", n, " length-prefixed BYTES elements"));
  }
  return absl::OkStatus();
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

Client::Client(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options,
               grpc_compression_algorithm compression)
    : channel_(std::move(channel)),
      stub_(inference::GRPCInferenceService::NewStub(channel_)),
      training_stub_(v1::TrainingService::NewStub(channel_)),
      options_(options),
      compression_(compression) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  grpc::ChannelArguments args;
  // Outputs can be large; the default 4 MiB receive limit is not ours to impose.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return Create(grpc::CreateCustomChannel(options.url, grpc::InsecureChannelCredentials(), args),
                options);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(std::shared_ptr<grpc::Channel> channel,
                                                       const ClientOptions& options) {
  grpc_compression_algorithm algorithm;
  if (options.compression == "none")
    algorithm = GRPC_COMPRESS_NONE;
  else if (options.compression == "gzip")
    algorithm = GRPC_COMPRESS_GZIP;
  else if (options.compression == "deflate")
    algorithm = GRPC_COMPRESS_DEFLATE;
  else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown compression '", options.compression, "'; use none, gzip or deflate"));
  }
  return std::unique_ptr<Client>(new Client(std::move(channel), options, algorithm));
}

std::unique_ptr<grpc::ClientContext> Client::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (options_.timeout != absl::InfiniteDuration()) {
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  }
  if (compression_ != GRPC_COMPRESS_NONE) ctx->set_compression_algorithm(compression_);
  return ctx;
}

absl::StatusOr<bool> Client::ServerLive() {
  using S = inference::GRPCInferenceService::Stub;
  absl::StatusOr<inference::ServerLiveResponse> r =
      Call<inference::ServerLiveRequest, inference::ServerLiveResponse>(
          stub_.get(), NewContext(), &S::ServerLive, inference::ServerLiveRequest());
  if (!r.ok()) return r.status();
  return r->live();
}

absl::StatusOr<bool> Client::ServerReady() {
  using S = inference::GRPCInferenceService::Stub;
  absl::StatusOr<inference::ServerReadyResponse> r =
      Call<inference::ServerReadyRequest, inference::ServerReadyResponse>(
          stub_.get(), NewContext(), &S::ServerReady, inference::ServerReadyRequest());
  if (!r.ok()) return r.status();
  return r->ready();
}

absl::StatusOr<bool> Client::ModelReady(const std::string& model, const std::string& version) {
  using S = inference::GRPCInferenceService::Stub;
  inference::ModelReadyRequest q;
  q.set_name(model);
  q.set_version(version);
  absl::StatusOr<inference::ModelReadyResponse> r =
      Call<inference::ModelReadyRequest, inference::ModelReadyResponse>(stub_.get(), NewContext(),
                                                                        &S::ModelReady, q);
  if (!r.ok()) return r.status();
  return r->ready();
}

absl::StatusOr<inference::ServerMetadataResponse> Client::ServerMetadata() {
  using S = inference::GRPCInferenceService::Stub;
  return Call<inference::ServerMetadataRequest, inference::ServerMetadataResponse>(
      stub_.get(), NewContext(), &S::ServerMetadata, inference::ServerMetadataRequest());
}

absl::StatusOr<inference::ModelMetadataResponse> Client::ModelMetadata(const std::string& model,
                                                                       const std::string& version) {
  using S = inference::GRPCInferenceService::Stub;
  inference::ModelMetadataRequest q;
  q.set_name(model);
  q.set_version(version);
  return Call<inference::ModelMetadataRequest, inference::ModelMetadataResponse>(
      stub_.get(), NewContext(), &S::ModelMetadata, q);
}

absl::StatusOr<inference::ModelConfig> Client::ModelConfig(const std::string& model,
                                                           const std::string& version) {
  using S = inference::GRPCInferenceService::Stub;
  inference::ModelConfigRequest q;
  q.set_name(model);
  q.set_version(version);
  absl::StatusOr<inference::ModelConfigResponse> r =
      Call<inference::ModelConfigRequest, inference::ModelConfigResponse>(stub_.get(), NewContext(),
                                                                          &S::ModelConfig, q);
  if (!r.ok()) return r.status();
  return r->config();
}

absl::StatusOr<inference::ModelStatisticsResponse> Client::ModelStatistics(
    const std::string& model, const std::string& version) {
  using S = inference::GRPCInferenceService::Stub;
  inference::ModelStatisticsRequest q;
  q.set_name(model);
  q.set_version(version);
  return Call<inference::ModelStatisticsRequest, inference::ModelStatisticsResponse>(
      stub_.get(), NewContext(), &S::ModelStatistics, q);
}

absl::StatusOr<inference::RepositoryIndexResponse> Client::RepositoryIndex(bool ready_only) {
  using S = inference::GRPCInferenceService::Stub;
  inference::RepositoryIndexRequest q;
  q.set_ready(ready_only);
  return Call<inference::RepositoryIndexRequest, inference::RepositoryIndexResponse>(
      stub_.get(), NewContext(), &S::RepositoryIndex, q);
}

absl::Status Client::Load(const std::string& model) {
  using S = inference::GRPCInferenceService::Stub;
  inference::RepositoryModelLoadRequest q;
  q.set_model_name(model);
  return Call<inference::RepositoryModelLoadRequest, inference::RepositoryModelLoadResponse>(
             stub_.get(), NewContext(), &S::RepositoryModelLoad, q)
      .status();
}

absl::Status Client::Unload(const std::string& model) {
  using S = inference::GRPCInferenceService::Stub;
  inference::RepositoryModelUnloadRequest q;
  q.set_model_name(model);
  return Call<inference::RepositoryModelUnloadRequest, inference::RepositoryModelUnloadResponse>(
             stub_.get(), NewContext(), &S::RepositoryModelUnload, q)
      .status();
}

absl::StatusOr<inference::ModelInferRequest> Client::EncodeInferRequest(
    const InferRequest& request) {
  inference::ModelInferRequest q;
  q.set_model_name(request.model);
  q.set_model_version(request.version);
  q.set_id(request.id);
  absl::Status s = AddInputs(request.inputs, &q);
  if (!s.ok()) return s;
  for (const std::string& name : request.outputs) q.add_outputs()->set_name(name);
  return q;
}

absl::StatusOr<InferResult> Client::DecodeInferResponse(
    const inference::ModelInferResponse& response) {
  InferResult result;
  result.model = response.model_name();
  result.version = response.model_version();
  result.id = response.id();
  const bool raw = response.raw_output_contents_size() > 0;
  if (raw && response.raw_output_contents_size() != response.outputs_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the response has ", response.outputs_size(), " outputs but ",
                     response.raw_output_contents_size(), " raw_output_contents"));
  }
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& out = response.outputs(i);
    Tensor t{out.name(), out.datatype(), {out.shape().begin(), out.shape().end()}, {}};
    if (raw) {
      t.data = response.raw_output_contents(i);
    } else {
      absl::StatusOr<std::string> data = RawFromContents(out.contents(), out.datatype());
      if (!data.ok()) return data.status();
      t.data = *std::move(data);
    }
    absl::Status s = CheckTensor(t);
    if (!s.ok())
      return absl::InvalidArgumentError(absl::StrCat("malformed response: ", s.message()));
    result.outputs.push_back(std::move(t));
  }
  return result;
}

absl::Status Client::ModelInfer(const inference::ModelInferRequest& request,
                                inference::ModelInferResponse* response) {
  std::unique_ptr<grpc::ClientContext> ctx = NewContext();
  return FromGrpcStatus(stub_->ModelInfer(ctx.get(), request, response));
}

void Client::AsyncModelInfer(const inference::ModelInferRequest* request,
                             inference::ModelInferResponse* response,
                             std::function<void(absl::Status)> done) {
  // The context lives until the call finishes: the callback owns it.
  std::shared_ptr<grpc::ClientContext> ctx = NewContext();
  stub_->async()->ModelInfer(
      ctx.get(), request, response,
      [ctx, done = std::move(done)](grpc::Status s) { done(FromGrpcStatus(s)); });
}

absl::StatusOr<InferResult> Client::Infer(const InferRequest& request) {
  absl::StatusOr<inference::ModelInferRequest> q = EncodeInferRequest(request);
  if (!q.ok()) return q.status();
  inference::ModelInferResponse response;
  absl::Status s = ModelInfer(*q, &response);
  if (!s.ok()) return s;
  return DecodeInferResponse(response);
}

absl::StatusOr<v1::ModelTrainResponse> Client::Train(const TrainRequest& request) {
  using S = v1::TrainingService::Stub;
  v1::ModelTrainRequest q;
  q.set_model_name(request.model);
  q.set_model_version(request.version);
  q.set_id(request.id);
  absl::Status s = AddInputs(request.inputs, &q);
  if (!s.ok()) return s;
  return Call<v1::ModelTrainRequest, v1::ModelTrainResponse>(training_stub_.get(), NewContext(),
                                                             &S::ModelTrain, q);
}

absl::StatusOr<v1::ModelCheckpointResponse> Client::Checkpoint(const std::string& model,
                                                               const std::string& version) {
  using S = v1::TrainingService::Stub;
  v1::ModelCheckpointRequest q;
  q.set_model_name(model);
  q.set_model_version(version);
  return Call<v1::ModelCheckpointRequest, v1::ModelCheckpointResponse>(
      training_stub_.get(), NewContext(), &S::ModelCheckpoint, q);
}

absl::StatusOr<v1::ModelExportResponse> Client::Export(const std::string& model,
                                                       const std::string& version,
                                                       int64_t export_version) {
  using S = v1::TrainingService::Stub;
  v1::ModelExportRequest q;
  q.set_model_name(model);
  q.set_model_version(version);
  q.set_export_version(export_version);
  return Call<v1::ModelExportRequest, v1::ModelExportResponse>(training_stub_.get(), NewContext(),
                                                               &S::ModelExport, q);
}

absl::StatusOr<v1::ModelRollbackResponse> Client::Rollback(const std::string& model,
                                                           const std::string& version,
                                                           const std::string& checkpoint) {
  using S = v1::TrainingService::Stub;
  v1::ModelRollbackRequest q;
  q.set_model_name(model);
  q.set_model_version(version);
  q.set_checkpoint(checkpoint);
  return Call<v1::ModelRollbackRequest, v1::ModelRollbackResponse>(
      training_stub_.get(), NewContext(), &S::ModelRollback, q);
}

absl::StatusOr<v1::TrainingStatusResponse> Client::TrainingStatus(const std::string& model,
                                                                  const std::string& version) {
  using S = v1::TrainingService::Stub;
  v1::TrainingStatusRequest q;
  q.set_model_name(model);
  q.set_model_version(version);
  return Call<v1::TrainingStatusRequest, v1::TrainingStatusResponse>(
      training_stub_.get(), NewContext(), &S::TrainingStatus, q);
}

}  // namespace gradserve::client
