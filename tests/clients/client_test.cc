// The client library against an in-process fake of the gRPC service (no
// engine): calls reach the right methods, errors keep the server's code and
// message, tensors travel raw and come back decoded (raw or typed).
#include "clients/client.h"

#include <cstring>

#include "absl/synchronization/notification.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace gradserve::client {
namespace {

// Echoes inputs as outputs (typed FP32 contents when the request's id is
// "typed"); knows one model, "m".
class FakeService final : public inference::GRPCInferenceService::Service {
 public:
  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* r) override {
    r->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* q,
                          inference::ModelReadyResponse* r) override {
    if (q->name() != "m")
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown model '" + q->name() + "'");
    r->set_ready(q->version() != "2");
    return grpc::Status::OK;
  }
  grpc::Status ModelConfig(grpc::ServerContext*, const inference::ModelConfigRequest* q,
                           inference::ModelConfigResponse* r) override {
    r->mutable_config()->set_name(q->name());
    r->mutable_config()->set_max_batch_size(8);
    return grpc::Status::OK;
  }
  grpc::Status RepositoryModelLoad(grpc::ServerContext*,
                                   const inference::RepositoryModelLoadRequest* q,
                                   inference::RepositoryModelLoadResponse*) override {
    last_loaded = q->model_name();
    return grpc::Status::OK;
  }
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* q,
                          inference::ModelInferResponse* r) override {
    if (q->raw_input_contents_size() != q->inputs_size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "expected raw inputs");
    }
    r->set_model_name(q->model_name());
    r->set_model_version("1");
    r->set_id(q->id());
    for (int i = 0; i < q->inputs_size(); ++i) {
      auto* out = r->add_outputs();
      out->set_name(q->inputs(i).name() + "_out");
      out->set_datatype(q->inputs(i).datatype());
      *out->mutable_shape() = q->inputs(i).shape();
      const std::string& raw = q->raw_input_contents(i);
      if (q->id() == "typed") {
        for (size_t k = 0; k < raw.size(); k += 4) {
          float v;
          std::memcpy(&v, raw.data() + k, 4);
          out->mutable_contents()->add_fp32_contents(v);
        }
      } else {
        r->add_raw_output_contents(raw);
      }
    }
    return grpc::Status::OK;
  }

  std::string last_loaded;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto client = Client::Create(server_->InProcessChannel(grpc::ChannelArguments()), {});
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
  }
  void TearDown() override { server_->Shutdown(); }

  FakeService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
};

Tensor Floats(const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
  return {name, "FP32", std::move(shape),
          std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4)};
}

TEST_F(ClientTest, HealthAndModelCalls) {
  EXPECT_TRUE(*client_->ServerLive());
  EXPECT_TRUE(*client_->ModelReady("m"));
  EXPECT_FALSE(*client_->ModelReady("m", "2"));
  EXPECT_EQ(client_->ModelConfig("m")->max_batch_size(), 8);
  EXPECT_TRUE(client_->Load("m").ok());
  EXPECT_EQ(service_.last_loaded, "m");
}

TEST_F(ClientTest, ErrorsKeepTheServersCodeAndMessage) {
  absl::StatusOr<bool> ready = client_->ModelReady("nope");
  EXPECT_EQ(ready.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ready.status().message(), "unknown model 'nope'");
  // Methods the fake does not implement answer UNIMPLEMENTED.
  EXPECT_EQ(client_->ServerReady().status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(ClientTest, InferSendsRawAndDecodesRawOrTyped) {
  for (const char* id : {"raw", "typed"}) {
    InferRequest request{"m", "", id, {Floats("x", {2, 2}, {1, 2, 3, 4.5f})}, {}};
    absl::StatusOr<InferResult> result = client_->Infer(request);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->id, id);
    EXPECT_EQ(result->version, "1");
    ASSERT_EQ(result->outputs.size(), 1u);
    EXPECT_EQ(result->outputs[0].name, "x_out");
    EXPECT_EQ(result->outputs[0].shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(result->outputs[0].data, request.inputs[0].data);
  }
}

TEST_F(ClientTest, BadTensorsFailBeforeAnyCall) {
  InferRequest request{"m", "", "", {Floats("x", {3}, {1, 2})}, {}};
  absl::StatusOr<InferResult> result = client_->Infer(request);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("'x'"), std::string::npos);
  EXPECT_FALSE(CheckTensor({"s", "BYTES", {2}, std::string("\x01\0\0\0a", 5)}).ok());
  EXPECT_TRUE(CheckTensor({"s", "BYTES", {1}, std::string("\x01\0\0\0a", 5)}).ok());
  EXPECT_FALSE(DatatypeSize("FLOAT").ok());
}

TEST_F(ClientTest, AsyncInferCallsBack) {
  absl::StatusOr<inference::ModelInferRequest> q =
      Client::EncodeInferRequest({"m", "", "", {Floats("x", {1}, {7})}, {}});
  ASSERT_TRUE(q.ok());
  inference::ModelInferResponse response;
  absl::Notification done;
  absl::Status status = absl::UnknownError("not called");
  client_->AsyncModelInfer(&*q, &response, [&](absl::Status s) {
    status = s;
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(Client::DecodeInferResponse(response)->outputs[0].data, q->raw_input_contents(0));
}

TEST(ClientCreateTest, RejectsUnknownCompression) {
  ClientOptions options;
  options.compression = "lz4";
  EXPECT_EQ(Client::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gradserve::client
