// The inference server's wire contract (proto/grpc_service.proto,
// proto/model_config.proto) against the public specifications: every message,
// field, number and type in a table copied from the specs (KServe's
// grpc_predict_v2.proto, Triton's grpc_service.proto and model_config.proto),
// hand-encoded bytes of a request, real gRPC over loopback on the spec's method
// path, and config.pbtxt parsing. tests/interop/proto_compat_check.py does the
// same comparison against tritonclient's generated descriptors.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/grpc_service.pb.h"
#include "proto/model_config.pb.h"

namespace gradserve {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::FileDescriptor;
using ::testing::HasSubstr;

// One field as the spec declares it: message (relative to package
// `inference`), field name, number, and its type written as in a .proto file.
// A message without fields has one row with an empty field name.
struct SpecField {
  const char* message;
  const char* field;
  int number;
  const char* type;
};

// clang-format off
// Copied from the public .proto files; "gradserve" rows are our own additions
// (Note [Triton-compatible ModelConfig]). A message or field missing here, or
// one that differs, fails SpecTable* below.
constexpr SpecField kSpecFields[] = {
    // proto/grpc_service.proto
    {"ServerLiveRequest", "", 0, ""},
    {"ServerLiveResponse", "live", 1, "bool"},
    {"ServerReadyRequest", "", 0, ""},
    {"ServerReadyResponse", "ready", 1, "bool"},
    {"ModelReadyRequest", "name", 1, "string"},
    {"ModelReadyRequest", "version", 2, "string"},
    {"ModelReadyResponse", "ready", 1, "bool"},
    {"ServerMetadataRequest", "", 0, ""},
    {"ServerMetadataResponse", "name", 1, "string"},
    {"ServerMetadataResponse", "version", 2, "string"},
    {"ServerMetadataResponse", "extensions", 3, "repeated string"},
    {"ModelMetadataRequest", "name", 1, "string"},
    {"ModelMetadataRequest", "version", 2, "string"},
    {"ModelMetadataResponse", "name", 1, "string"},
    {"ModelMetadataResponse", "versions", 2, "repeated string"},
    {"ModelMetadataResponse", "platform", 3, "string"},
    {"ModelMetadataResponse", "inputs", 4, "repeated ModelMetadataResponse.TensorMetadata"},
    {"ModelMetadataResponse", "outputs", 5, "repeated ModelMetadataResponse.TensorMetadata"},
    {"ModelMetadataResponse.TensorMetadata", "name", 1, "string"},
    {"ModelMetadataResponse.TensorMetadata", "datatype", 2, "string"},
    {"ModelMetadataResponse.TensorMetadata", "shape", 3, "repeated int64"},
    {"InferParameter", "bool_param", 1, "bool"},
    {"InferParameter", "int64_param", 2, "int64"},
    {"InferParameter", "string_param", 3, "string"},
    {"InferParameter", "double_param", 4, "double"},
    {"InferParameter", "uint64_param", 5, "uint64"},
    {"InferTensorContents", "bool_contents", 1, "repeated bool"},
    {"InferTensorContents", "int_contents", 2, "repeated int32"},
    {"InferTensorContents", "int64_contents", 3, "repeated int64"},
    {"InferTensorContents", "uint_contents", 4, "repeated uint32"},
    {"InferTensorContents", "uint64_contents", 5, "repeated uint64"},
    {"InferTensorContents", "fp32_contents", 6, "repeated float"},
    {"InferTensorContents", "fp64_contents", 7, "repeated double"},
    {"InferTensorContents", "bytes_contents", 8, "repeated bytes"},
    {"ModelInferRequest", "model_name", 1, "string"},
    {"ModelInferRequest", "model_version", 2, "string"},
    {"ModelInferRequest", "id", 3, "string"},
    {"ModelInferRequest", "parameters", 4, "map<string, InferParameter>"},
    {"ModelInferRequest", "inputs", 5, "repeated ModelInferRequest.InferInputTensor"},
    {"ModelInferRequest", "outputs", 6, "repeated ModelInferRequest.InferRequestedOutputTensor"},
    {"ModelInferRequest", "raw_input_contents", 7, "repeated bytes"},
    {"ModelInferRequest.InferInputTensor", "name", 1, "string"},
    {"ModelInferRequest.InferInputTensor", "datatype", 2, "string"},
    {"ModelInferRequest.InferInputTensor", "shape", 3, "repeated int64"},
    {"ModelInferRequest.InferInputTensor", "parameters", 4, "map<string, InferParameter>"},
    {"ModelInferRequest.InferInputTensor", "contents", 5, "InferTensorContents"},
    {"ModelInferRequest.InferRequestedOutputTensor", "name", 1, "string"},
    {"ModelInferRequest.InferRequestedOutputTensor", "parameters", 2,
     "map<string, InferParameter>"},
    {"ModelInferResponse", "model_name", 1, "string"},
    {"ModelInferResponse", "model_version", 2, "string"},
    {"ModelInferResponse", "id", 3, "string"},
    {"ModelInferResponse", "parameters", 4, "map<string, InferParameter>"},
    {"ModelInferResponse", "outputs", 5, "repeated ModelInferResponse.InferOutputTensor"},
    {"ModelInferResponse", "raw_output_contents", 6, "repeated bytes"},
    {"ModelInferResponse.InferOutputTensor", "name", 1, "string"},
    {"ModelInferResponse.InferOutputTensor", "datatype", 2, "string"},
    {"ModelInferResponse.InferOutputTensor", "shape", 3, "repeated int64"},
    {"ModelInferResponse.InferOutputTensor", "parameters", 4, "map<string, InferParameter>"},
    {"ModelInferResponse.InferOutputTensor", "contents", 5, "InferTensorContents"},
    {"ModelConfigRequest", "name", 1, "string"},
    {"ModelConfigRequest", "version", 2, "string"},
    {"ModelConfigResponse", "config", 1, "ModelConfig"},
    {"ModelStatisticsRequest", "name", 1, "string"},
    {"ModelStatisticsRequest", "version", 2, "string"},
    {"StatisticDuration", "count", 1, "uint64"},
    {"StatisticDuration", "ns", 2, "uint64"},
    {"InferStatistics", "success", 1, "StatisticDuration"},
    {"InferStatistics", "fail", 2, "StatisticDuration"},
    {"InferStatistics", "queue", 3, "StatisticDuration"},
    {"InferStatistics", "compute_input", 4, "StatisticDuration"},
    {"InferStatistics", "compute_infer", 5, "StatisticDuration"},
    {"InferStatistics", "compute_output", 6, "StatisticDuration"},
    {"InferStatistics", "cache_hit", 7, "StatisticDuration"},
    {"InferStatistics", "cache_miss", 8, "StatisticDuration"},
    {"InferResponseStatistics", "compute_infer", 1, "StatisticDuration"},
    {"InferResponseStatistics", "compute_output", 2, "StatisticDuration"},
    {"InferResponseStatistics", "success", 3, "StatisticDuration"},
    {"InferResponseStatistics", "fail", 4, "StatisticDuration"},
    {"InferResponseStatistics", "empty_response", 5, "StatisticDuration"},
    {"InferResponseStatistics", "cancel", 6, "StatisticDuration"},
    {"InferBatchStatistics", "batch_size", 1, "uint64"},
    {"InferBatchStatistics", "compute_input", 2, "StatisticDuration"},
    {"InferBatchStatistics", "compute_infer", 3, "StatisticDuration"},
    {"InferBatchStatistics", "compute_output", 4, "StatisticDuration"},
    {"MemoryUsage", "type", 1, "string"},
    {"MemoryUsage", "id", 2, "int64"},
    {"MemoryUsage", "byte_size", 3, "uint64"},
    {"ModelStatistics", "name", 1, "string"},
    {"ModelStatistics", "version", 2, "string"},
    {"ModelStatistics", "last_inference", 3, "uint64"},
    {"ModelStatistics", "inference_count", 4, "uint64"},
    {"ModelStatistics", "execution_count", 5, "uint64"},
    {"ModelStatistics", "inference_stats", 6, "InferStatistics"},
    {"ModelStatistics", "batch_stats", 7, "repeated InferBatchStatistics"},
    {"ModelStatistics", "memory_usage", 8, "repeated MemoryUsage"},
    {"ModelStatistics", "response_stats", 9, "map<string, InferResponseStatistics>"},
    {"ModelStatisticsResponse", "model_stats", 1, "repeated ModelStatistics"},
    {"ModelRepositoryParameter", "bool_param", 1, "bool"},
    {"ModelRepositoryParameter", "int64_param", 2, "int64"},
    {"ModelRepositoryParameter", "string_param", 3, "string"},
    {"ModelRepositoryParameter", "bytes_param", 4, "bytes"},
    {"RepositoryIndexRequest", "repository_name", 1, "string"},
    {"RepositoryIndexRequest", "ready", 2, "bool"},
    {"RepositoryIndexResponse", "models", 1, "repeated RepositoryIndexResponse.ModelIndex"},
    {"RepositoryIndexResponse.ModelIndex", "name", 1, "string"},
    {"RepositoryIndexResponse.ModelIndex", "version", 2, "string"},
    {"RepositoryIndexResponse.ModelIndex", "state", 3, "string"},
    {"RepositoryIndexResponse.ModelIndex", "reason", 4, "string"},
    {"RepositoryModelLoadRequest", "repository_name", 1, "string"},
    {"RepositoryModelLoadRequest", "model_name", 2, "string"},
    {"RepositoryModelLoadRequest", "parameters", 3, "map<string, ModelRepositoryParameter>"},
    {"RepositoryModelLoadResponse", "", 0, ""},
    {"RepositoryModelUnloadRequest", "repository_name", 1, "string"},
    {"RepositoryModelUnloadRequest", "model_name", 2, "string"},
    {"RepositoryModelUnloadRequest", "parameters", 3, "map<string, ModelRepositoryParameter>"},
    {"RepositoryModelUnloadResponse", "", 0, ""},
    // proto/model_config.proto
    {"ModelRateLimiter", "resources", 1, "repeated ModelRateLimiter.Resource"},
    {"ModelRateLimiter", "priority", 2, "uint32"},
    {"ModelRateLimiter.Resource", "name", 1, "string"},
    {"ModelRateLimiter.Resource", "global", 2, "bool"},
    {"ModelRateLimiter.Resource", "count", 3, "uint32"},
    {"ModelInstanceGroup", "name", 1, "string"},
    {"ModelInstanceGroup", "kind", 4, "ModelInstanceGroup.Kind"},
    {"ModelInstanceGroup", "count", 2, "int32"},
    {"ModelInstanceGroup", "rate_limiter", 6, "ModelRateLimiter"},
    {"ModelInstanceGroup", "gpus", 3, "repeated int32"},
    {"ModelInstanceGroup", "secondary_devices", 8, "repeated ModelInstanceGroup.SecondaryDevice"},
    {"ModelInstanceGroup", "profile", 5, "repeated string"},
    {"ModelInstanceGroup", "passive", 7, "bool"},
    {"ModelInstanceGroup", "host_policy", 9, "string"},
    {"ModelInstanceGroup.SecondaryDevice", "kind", 1,
     "ModelInstanceGroup.SecondaryDevice.SecondaryDeviceKind"},
    {"ModelInstanceGroup.SecondaryDevice", "device_id", 2, "int64"},
    {"ModelTensorReshape", "shape", 1, "repeated int64"},
    {"ModelInput", "name", 1, "string"},
    {"ModelInput", "data_type", 2, "DataType"},
    {"ModelInput", "format", 3, "ModelInput.Format"},
    {"ModelInput", "dims", 4, "repeated int64"},
    {"ModelInput", "reshape", 5, "ModelTensorReshape"},
    {"ModelInput", "is_shape_tensor", 6, "bool"},
    {"ModelInput", "allow_ragged_batch", 7, "bool"},
    {"ModelInput", "optional", 8, "bool"},
    {"ModelInput", "is_non_linear_format_io", 9, "bool"},
    {"ModelOutput", "name", 1, "string"},
    {"ModelOutput", "data_type", 2, "DataType"},
    {"ModelOutput", "dims", 3, "repeated int64"},
    {"ModelOutput", "reshape", 5, "ModelTensorReshape"},
    {"ModelOutput", "label_filename", 4, "string"},
    {"ModelOutput", "is_shape_tensor", 6, "bool"},
    {"ModelOutput", "is_non_linear_format_io", 7, "bool"},
    {"ModelVersionPolicy", "latest", 1, "ModelVersionPolicy.Latest"},
    {"ModelVersionPolicy", "all", 2, "ModelVersionPolicy.All"},
    {"ModelVersionPolicy", "specific", 3, "ModelVersionPolicy.Specific"},
    {"ModelVersionPolicy.Latest", "num_versions", 1, "uint32"},
    {"ModelVersionPolicy.All", "", 0, ""},
    {"ModelVersionPolicy.Specific", "versions", 1, "repeated int64"},
    {"ModelQueuePolicy", "timeout_action", 1, "ModelQueuePolicy.TimeoutAction"},
    {"ModelQueuePolicy", "default_timeout_microseconds", 2, "uint64"},
    {"ModelQueuePolicy", "allow_timeout_override", 3, "bool"},
    {"ModelQueuePolicy", "max_queue_size", 4, "uint32"},
    {"ModelDynamicBatching", "preferred_batch_size", 1, "repeated int32"},
    {"ModelDynamicBatching", "max_queue_delay_microseconds", 2, "uint64"},
    {"ModelDynamicBatching", "preserve_ordering", 3, "bool"},
    {"ModelDynamicBatching", "priority_levels", 4, "uint64"},
    {"ModelDynamicBatching", "default_priority_level", 5, "uint64"},
    {"ModelDynamicBatching", "default_queue_policy", 6, "ModelQueuePolicy"},
    {"ModelDynamicBatching", "priority_queue_policy", 7, "map<uint64, ModelQueuePolicy>"},
    {"ModelParameter", "string_value", 1, "string"},
    {"ModelWarmup", "name", 1, "string"},
    {"ModelWarmup", "batch_size", 2, "uint32"},
    {"ModelWarmup", "inputs", 3, "map<string, ModelWarmup.Input>"},
    {"ModelWarmup", "count", 4, "uint32"},
    {"ModelWarmup.Input", "data_type", 1, "DataType"},
    {"ModelWarmup.Input", "dims", 2, "repeated int64"},
    {"ModelWarmup.Input", "zero_data", 3, "bool"},
    {"ModelWarmup.Input", "random_data", 4, "bool"},
    {"ModelWarmup.Input", "input_data_file", 5, "string"},
    // Triton's ModelOptimizationPolicy in part: only these fields.
    {"ModelOptimizationPolicy", "cuda", 3, "ModelOptimizationPolicy.Cuda"},
    {"ModelOptimizationPolicy.Cuda", "graphs", 1, "bool"},
    {"ModelOptimizationPolicy.Cuda", "graph_spec", 3,
     "repeated ModelOptimizationPolicy.Cuda.GraphSpec"},
    {"ModelOptimizationPolicy.Cuda.GraphSpec", "batch_size", 1, "int32"},
    {"ModelOptimizer", "sgd", 1, "ModelOptimizer.Sgd"},  // gradserve
    {"ModelOptimizer", "momentum", 2, "ModelOptimizer.Momentum"},  // gradserve
    {"ModelOptimizer", "adam", 3, "ModelOptimizer.Adam"},  // gradserve
    {"ModelOptimizer", "adamw", 4, "ModelOptimizer.AdamW"},  // gradserve
    {"ModelOptimizer.Sgd", "learning_rate", 1, "optional double"},  // gradserve
    {"ModelOptimizer.Momentum", "learning_rate", 1, "optional double"},  // gradserve
    {"ModelOptimizer.Momentum", "momentum", 2, "optional double"},  // gradserve
    {"ModelOptimizer.Momentum", "use_nesterov", 3, "bool"},  // gradserve
    {"ModelOptimizer.Adam", "learning_rate", 1, "optional double"},  // gradserve
    {"ModelOptimizer.Adam", "beta1", 2, "optional double"},  // gradserve
    {"ModelOptimizer.Adam", "beta2", 3, "optional double"},  // gradserve
    {"ModelOptimizer.Adam", "epsilon", 4, "optional double"},  // gradserve
    {"ModelOptimizer.Adam", "use_nesterov", 5, "bool"},  // gradserve
    {"ModelOptimizer.AdamW", "learning_rate", 1, "optional double"},  // gradserve
    {"ModelOptimizer.AdamW", "beta1", 2, "optional double"},  // gradserve
    {"ModelOptimizer.AdamW", "beta2", 3, "optional double"},  // gradserve
    {"ModelOptimizer.AdamW", "epsilon", 4, "optional double"},  // gradserve
    {"ModelOptimizer.AdamW", "weight_decay", 5, "optional double"},  // gradserve
    {"ModelTrainingConfig", "enabled", 1, "bool"},  // gradserve
    {"ModelTrainingConfig", "optimizer", 2, "ModelOptimizer"},  // gradserve
    {"ModelTrainingConfig", "batch_size", 3, "optional int64"},  // gradserve
    {"ModelTrainingConfig", "max_queue_size", 4, "optional int64"},  // gradserve
    {"ModelTrainingConfig", "max_queue_delay_microseconds", 5, "optional int64"},  // gradserve
    {"ModelTrainingConfig", "clip_global_norm", 6, "double"},  // gradserve
    {"ModelTrainingConfig", "checkpoint_every_steps", 7, "int64"},  // gradserve
    {"ModelTrainingConfig", "checkpoint_every_seconds", 8, "int64"},  // gradserve
    {"ModelTrainingConfig", "keep_checkpoints", 9, "optional int32"},  // gradserve
    {"ModelTrainingConfig", "nonfinite", 10, "ModelTrainingConfig.NonFiniteAction"},  // gradserve
    {"ModelConfig", "name", 1, "string"},
    {"ModelConfig", "platform", 2, "string"},
    {"ModelConfig", "backend", 17, "string"},
    {"ModelConfig", "version_policy", 3, "ModelVersionPolicy"},
    {"ModelConfig", "max_batch_size", 4, "int32"},
    {"ModelConfig", "input", 5, "repeated ModelInput"},
    {"ModelConfig", "output", 6, "repeated ModelOutput"},
    {"ModelConfig", "dynamic_batching", 11, "ModelDynamicBatching"},
    {"ModelConfig", "instance_group", 7, "repeated ModelInstanceGroup"},
    {"ModelConfig", "optimization", 12, "ModelOptimizationPolicy"},
    {"ModelConfig", "default_model_filename", 8, "string"},
    {"ModelConfig", "parameters", 14, "map<string, ModelParameter>"},
    {"ModelConfig", "model_warmup", 16, "repeated ModelWarmup"},
    {"ModelConfig", "training", 1000, "ModelTrainingConfig"},  // gradserve
};

// Enum values, "NAME=number" in declaration order.
struct SpecEnum {
  const char* name;
  const char* values;
};
constexpr SpecEnum kSpecEnums[] = {
    {"DataType",
     "TYPE_INVALID=0 TYPE_BOOL=1 TYPE_UINT8=2 TYPE_UINT16=3 TYPE_UINT32=4 TYPE_UINT64=5 "
     "TYPE_INT8=6 TYPE_INT16=7 TYPE_INT32=8 TYPE_INT64=9 TYPE_FP16=10 TYPE_FP32=11 TYPE_FP64=12 "
     "TYPE_STRING=13 TYPE_BF16=14"},
    {"ModelInstanceGroup.Kind", "KIND_AUTO=0 KIND_GPU=1 KIND_CPU=2 KIND_MODEL=3"},
    {"ModelInstanceGroup.SecondaryDevice.SecondaryDeviceKind", "KIND_NVDLA=0"},
    {"ModelInput.Format", "FORMAT_NONE=0 FORMAT_NHWC=1 FORMAT_NCHW=2"},
    {"ModelQueuePolicy.TimeoutAction", "REJECT=0 DELAY=1"},
    {"ModelTrainingConfig.NonFiniteAction", "REJECT=0 SKIP=1"},  // gradserve
};
// clang-format on

constexpr char kPackage[] = "inference.";

std::string Short(const std::string& full_name) {
  return full_name.rfind(kPackage, 0) == 0 ? full_name.substr(sizeof(kPackage) - 1) : full_name;
}

std::string BaseType(const FieldDescriptor* f) {
  if (f->message_type() != nullptr) return Short(f->message_type()->full_name());
  if (f->enum_type() != nullptr) return Short(f->enum_type()->full_name());
  return f->type_name();  // "string", "int64", ...
}

// The field's type as a .proto file writes it: "map<string, InferParameter>",
// "repeated int64", "optional double", "ModelConfig".
std::string ProtoType(const FieldDescriptor* f) {
  if (f->is_map()) {
    return absl::StrCat("map<", BaseType(f->message_type()->map_key()), ", ",
                        BaseType(f->message_type()->map_value()), ">");
  }
  if (f->is_repeated()) return "repeated " + BaseType(f);
  if (f->has_optional_keyword()) return "optional " + BaseType(f);
  return BaseType(f);
}

std::vector<const FileDescriptor*> OurFiles() {
  return {inference::ModelInferRequest::descriptor()->file(),
          inference::ModelConfig::descriptor()->file()};
}

const Descriptor* FindMessage(const std::string& name) {
  return inference::ModelInferRequest::descriptor()->file()->pool()->FindMessageTypeByName(
      kPackage + name);
}

void CollectMessages(const Descriptor* d, std::vector<const Descriptor*>& out) {
  if (d->options().map_entry()) return;  // written as map<K, V> on its field
  out.push_back(d);
  for (int i = 0; i < d->nested_type_count(); ++i) CollectMessages(d->nested_type(i), out);
}

std::vector<const Descriptor*> AllOurMessages() {
  std::vector<const Descriptor*> out;
  for (const FileDescriptor* file : OurFiles()) {
    for (int i = 0; i < file->message_type_count(); ++i) {
      CollectMessages(file->message_type(i), out);
    }
  }
  return out;
}

TEST(ProtoWire, SpecTableFieldsMatchTheDescriptors) {
  for (const SpecField& row : kSpecFields) {
    SCOPED_TRACE(absl::StrCat(row.message, ".", row.field));
    const Descriptor* message = FindMessage(row.message);
    ASSERT_NE(message, nullptr) << "message not defined";
    if (row.field[0] == '\0') {
      EXPECT_EQ(message->field_count(), 0);
      continue;
    }
    const FieldDescriptor* field = message->FindFieldByName(row.field);
    ASSERT_NE(field, nullptr) << "field not defined";
    EXPECT_EQ(field->number(), row.number);
    EXPECT_EQ(ProtoType(field), row.type);
  }
}

TEST(ProtoWire, SpecTableCoversEveryMessageAndField) {
  std::set<std::string> rows;
  for (const SpecField& row : kSpecFields) rows.insert(absl::StrCat(row.message, ".", row.field));
  for (const Descriptor* message : AllOurMessages()) {
    const std::string name = Short(message->full_name());
    if (message->field_count() == 0) {
      EXPECT_TRUE(rows.count(name + ".")) << name << " is not in kSpecFields";
    }
    for (int i = 0; i < message->field_count(); ++i) {
      EXPECT_TRUE(rows.count(absl::StrCat(name, ".", message->field(i)->name())))
          << message->field(i)->full_name() << " is not in kSpecFields";
    }
  }
}

TEST(ProtoWire, EnumValuesMatchTheSpec) {
  const auto* pool = inference::ModelConfig::descriptor()->file()->pool();
  std::set<std::string> listed;
  for (const SpecEnum& row : kSpecEnums) {
    const EnumDescriptor* e = pool->FindEnumTypeByName(kPackage + std::string(row.name));
    ASSERT_NE(e, nullptr) << row.name;
    std::vector<std::string> values;
    for (int i = 0; i < e->value_count(); ++i) {
      values.push_back(absl::StrCat(e->value(i)->name(), "=", e->value(i)->number()));
    }
    EXPECT_EQ(absl::StrJoin(values, " "), row.values) << row.name;
    listed.insert(row.name);
  }
  const FileDescriptor* file = inference::ModelConfig::descriptor()->file();
  EXPECT_EQ(file->enum_type_count(), 1);  // DataType
  for (const Descriptor* message : AllOurMessages()) {
    for (int i = 0; i < message->enum_type_count(); ++i) {
      EXPECT_TRUE(listed.count(Short(message->enum_type(i)->full_name())))
          << message->enum_type(i)->full_name() << " is not in kSpecEnums";
    }
  }
}

TEST(ProtoWire, ServiceHasTheSpecMethods) {
  // rpc, request, response as the spec names them; all unary.
  const std::vector<std::vector<std::string>> spec = {
      {"ServerLive", "ServerLiveRequest", "ServerLiveResponse"},
      {"ServerReady", "ServerReadyRequest", "ServerReadyResponse"},
      {"ModelReady", "ModelReadyRequest", "ModelReadyResponse"},
      {"ServerMetadata", "ServerMetadataRequest", "ServerMetadataResponse"},
      {"ModelMetadata", "ModelMetadataRequest", "ModelMetadataResponse"},
      {"ModelInfer", "ModelInferRequest", "ModelInferResponse"},
      {"ModelConfig", "ModelConfigRequest", "ModelConfigResponse"},
      {"ModelStatistics", "ModelStatisticsRequest", "ModelStatisticsResponse"},
      {"RepositoryIndex", "RepositoryIndexRequest", "RepositoryIndexResponse"},
      {"RepositoryModelLoad", "RepositoryModelLoadRequest", "RepositoryModelLoadResponse"},
      {"RepositoryModelUnload", "RepositoryModelUnloadRequest", "RepositoryModelUnloadResponse"},
  };
  EXPECT_STREQ(inference::GRPCInferenceService::service_full_name(),
               "inference.GRPCInferenceService");
  const auto* service =
      inference::ModelInferRequest::descriptor()->file()->FindServiceByName("GRPCInferenceService");
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(service->method_count(), static_cast<int>(spec.size()));
  for (const auto& rpc : spec) {
    const auto* method = service->FindMethodByName(rpc[0]);
    ASSERT_NE(method, nullptr) << rpc[0];
    EXPECT_EQ(Short(method->input_type()->full_name()), rpc[1]);
    EXPECT_EQ(Short(method->output_type()->full_name()), rpc[2]);
    EXPECT_FALSE(method->client_streaming() || method->server_streaming()) << rpc[0];
  }
}

std::string Serialize(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// A typed-contents request, encoded by hand from the protobuf wire format
// (tag = field_number << 3 | wire_type; 2 = length-delimited, 0 = varint).
TEST(ProtoWire, TypedRequestHasTheSpecBytes) {
  inference::ModelInferRequest request;
  request.set_model_name("m");
  (*request.mutable_parameters())["priority"].set_int64_param(1);
  auto* input = request.add_inputs();
  input->set_name("x");
  input->set_datatype("FP32");
  input->add_shape(2);
  input->mutable_contents()->add_fp32_contents(1.0f);
  input->mutable_contents()->add_fp32_contents(2.0f);
  // clang-format off
  static constexpr char kExpected[] =
      "\x0a\x01m"                                   // model_name = 1
      "\x22\x0e"                                    // parameters = 4 (a map entry)
      "\x0a\x08priority"                            //   key = 1
      "\x12\x02\x10\x01"                            //   value = 2: int64_param = 2
      "\x2a\x18"                                    // inputs = 5
      "\x0a\x01x"                                   //   name = 1
      "\x12\x04" "FP32"                             //   datatype = 2
      "\x1a\x01\x02"                                //   shape = 3 (packed)
      "\x2a\x0a"                                    //   contents = 5
      "\x32\x08\x00\x00\x80\x3f\x00\x00\x00\x40";  //     fp32_contents = 6 (packed)
  // clang-format on
  const std::string expected(kExpected, sizeof(kExpected) - 1);  // with its NUL bytes
  EXPECT_EQ(Serialize(request), expected);
  inference::ModelInferRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(expected));
  EXPECT_EQ(parsed.inputs(0).contents().fp32_contents(1), 2.0f);
  EXPECT_EQ(parsed.parameters().at("priority").int64_param(), 1);
}

TEST(ProtoWire, RawContentsAreFields7And6) {
  inference::ModelInferRequest request;
  request.add_raw_input_contents(std::string("\x01\x02", 2));
  request.add_raw_input_contents("");
  EXPECT_EQ(Serialize(request), std::string("\x3a\x02\x01\x02\x3a\x00", 6));

  inference::ModelInferResponse response;
  response.set_id("r");
  response.add_raw_output_contents(std::string("\xff", 1));
  EXPECT_EQ(Serialize(response), std::string("\x1a\x01r\x32\x01\xff", 6));
}

// Real gRPC over loopback, with the client naming the method by the path
// unchanged clients send: /inference.GRPCInferenceService/ModelInfer.
class EchoService final : public inference::GRPCInferenceService::Service {
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* request,
                          inference::ModelInferResponse* response) override {
    response->set_model_name(request->model_name());
    response->set_id(request->id());
    for (const auto& raw : request->raw_input_contents()) response->add_raw_output_contents(raw);
    return grpc::Status::OK;
  }
};

TEST(ProtoWire, ModelInferAnswersOnTheSpecMethodPath) {
  EchoService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  inference::ModelInferRequest request;
  request.set_model_name("m");
  request.set_id("42");
  request.add_raw_input_contents("abc");
  const std::string wire = Serialize(request);
  grpc::Slice slice(wire);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/inference.GRPCInferenceService/ModelInfer", grpc::StubOptions(),
                 &request_buffer, &response_buffer, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response_buffer.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  inference::ModelInferResponse response;
  ASSERT_TRUE(response.ParseFromString(bytes));
  EXPECT_EQ(response.model_name(), "m");
  EXPECT_EQ(response.id(), "42");
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_EQ(response.raw_output_contents(0), "abc");
  server->Shutdown();
}

// A config.pbtxt as Triton users write it, plus gradserve's training block.
constexpr char kConfigPbtxt[] = R"cfg(
  name: "digits_mlp"
  platform: "gradserve_savedmodel"
  max_batch_size: 64
  version_policy: { latest: { num_versions: 2 } }
  input [ { name: "pixels" data_type: TYPE_FP32 dims: [ 64 ] } ]
  output [ { name: "probabilities" data_type: TYPE_FP32 dims: [ 10 ] } ]
  instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0 ] }, { kind: KIND_CPU } ]
  dynamic_batching {
    preferred_batch_size: [ 16, 32 ]
    max_queue_delay_microseconds: 500
    default_queue_policy { timeout_action: REJECT max_queue_size: 128 }
    priority_queue_policy { key: 1 value: { allow_timeout_override: true } }
  }
  parameters { key: "intra_op_threads" value: { string_value: "2" } }
  optimization { cuda { graphs: true graph_spec [ { batch_size: 16 }, { batch_size: 32 } ] } }
  model_warmup [ { name: "zeros" batch_size: 1 inputs { key: "pixels" value: {
    data_type: TYPE_FP32 dims: [ 64 ] zero_data: true } } } ]
  training {
    enabled: true
    optimizer { adam { learning_rate: 0.001 beta2: 0.99 } }
    batch_size: 32
    max_queue_size: 1024
    max_queue_delay_microseconds: 0
    clip_global_norm: 1.0
    checkpoint_every_steps: 100
    checkpoint_every_seconds: 60
    keep_checkpoints: 3
    nonfinite: SKIP
  }
)cfg";

TEST(ProtoWireConfig, ParsesTritonBlocksAndTraining) {
  inference::ModelConfig config;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kConfigPbtxt, &config));
  EXPECT_EQ(config.max_batch_size(), 64);
  EXPECT_EQ(config.version_policy().latest().num_versions(), 2u);
  EXPECT_EQ(config.input(0).data_type(), inference::TYPE_FP32);
  EXPECT_EQ(config.input(0).dims(0), 64);
  ASSERT_EQ(config.instance_group_size(), 2);
  EXPECT_EQ(config.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_GPU);
  EXPECT_EQ(config.instance_group(1).kind(), inference::ModelInstanceGroup::KIND_CPU);
  ASSERT_EQ(config.scheduling_choice_case(), inference::ModelConfig::kDynamicBatching);
  const auto& batching = config.dynamic_batching();
  EXPECT_THAT(batching.preferred_batch_size(), ::testing::ElementsAre(16, 32));
  EXPECT_EQ(batching.max_queue_delay_microseconds(), 500u);
  EXPECT_EQ(batching.default_queue_policy().max_queue_size(), 128u);
  EXPECT_TRUE(batching.priority_queue_policy().at(1).allow_timeout_override());
  EXPECT_EQ(config.parameters().at("intra_op_threads").string_value(), "2");
  EXPECT_TRUE(config.optimization().cuda().graphs());
  ASSERT_EQ(config.optimization().cuda().graph_spec_size(), 2);
  EXPECT_EQ(config.optimization().cuda().graph_spec(1).batch_size(), 32);
  EXPECT_TRUE(config.model_warmup(0).inputs().at("pixels").zero_data());

  const auto& training = config.training();
  EXPECT_TRUE(training.enabled());
  ASSERT_EQ(training.optimizer().kind_case(), inference::ModelOptimizer::kAdam);
  EXPECT_DOUBLE_EQ(training.optimizer().adam().learning_rate(), 0.001);
  EXPECT_FALSE(training.optimizer().adam().has_beta1());  // unset: the default applies
  EXPECT_DOUBLE_EQ(training.optimizer().adam().beta2(), 0.99);
  EXPECT_EQ(training.batch_size(), 32);
  ASSERT_TRUE(training.has_max_queue_delay_microseconds());  // set to 0, not unset
  EXPECT_EQ(training.max_queue_delay_microseconds(), 0);
  EXPECT_EQ(training.checkpoint_every_steps(), 100);
  EXPECT_EQ(training.keep_checkpoints(), 3);
  EXPECT_EQ(training.nonfinite(), inference::ModelTrainingConfig::SKIP);
}

// Collects the parser's messages instead of logging them.
class Errors final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    text += absl::StrCat(line + 1, ":", column + 1, ": ", message, "\n");
  }
  std::string text;
};

// A Triton block or field gradserve does not implement is a parse error naming
// it, never silently dropped; optimization is implemented in part.
TEST(ProtoWireConfig, UnimplementedTritonBlockIsAnErrorNamingIt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"max_batch_size: 8\nsequence_batching { max_sequence_idle_microseconds: 5 }",
       "sequence_batching"},
      {"optimization { execution_accelerators { gpu_execution_accelerator { name: \"tensorrt\" } "
       "} }",
       "execution_accelerators"},
      {"optimization { priority: PRIORITY_MAX }", "priority"},
      {"optimization { input_pinned_memory { enable: false } }", "input_pinned_memory"},
      {"optimization { cuda { graphs: true output_copy_stream: true } }", "output_copy_stream"},
      {"optimization { cuda { busy_wait_events: true } }", "busy_wait_events"},
      {"optimization { cuda { graph_spec { batch_size: 1 input { key: \"x\" value { dim: 4 } } "
       "} } }",
       "\"input\""},
      {"optimization { cuda { graph_spec { batch_size: 1 graph_lower_bound { batch_size: 1 } } } }",
       "graph_lower_bound"},
  };
  for (const auto& [text, field] : cases) {
    google::protobuf::TextFormat::Parser parser;
    Errors errors;
    parser.RecordErrorsTo(&errors);
    inference::ModelConfig config;
    EXPECT_FALSE(parser.ParseFromString(text, &config)) << text;
    EXPECT_THAT(errors.text, HasSubstr(field)) << text;
  }
}

}  // namespace
}  // namespace gradserve
