// The REST bodies of the Open Inference Protocol v2 (KServe v2 / Triton HTTP)
// mapped to and from the protocol's gRPC messages (proto/grpc_service.proto),
// so the REST front end (serving/http_server.h) runs every operation through
// the same InferenceService as gRPC and only the wire form differs here.
//
// JSON of protocol messages (ProtoToJson): proto field names, every scalar and
// repeated field (defaults included, as Triton prints its configs), messages
// and oneof members only when set, 64-bit integers as JSON numbers (not the
// strings of proto3's canonical JSON mapping: Triton's statistics and configs
// use numbers), enums by name, maps as objects with string keys.
//
// Infer requests (DecodeRestInferRequest):
//   {"id": "...", "parameters": {...},
//    "inputs": [{"name", "shape", "datatype", "data": [...] | "parameters":
//                {"binary_data_size": N}}],
//    "outputs": [{"name", "parameters": {"binary_data": bool}}]}
// "data" is flat or nested (row-major) and holds exactly shape's element
// count: booleans for BOOL, integers in range for the integer types, numbers
// for FP32/FP64; FP16 and BF16 have no JSON form (send them as binary data).
// Triton's binary tensor data extension: with Inference-Header-Content-Length
// = H, the body's first H bytes are the JSON and the rest is the inputs with
// a binary_data_size, concatenated in input order (the sizes must add up to
// exactly the rest). Request parameters: "binary_data_output" (bool, default
// false: the default of every output), "timeout" (microseconds: the request's
// deadline); the others travel in the request's parameters. An output's
// "binary_data" overrides binary_data_output; "classification" is refused.
// Every input is handed to the service as raw_input_contents, so the service
// answers with raw_output_contents.
//
// Infer responses (EncodeRestInferResponse):
//   {"model_name", "model_version", "id" (when the request had one),
//    "parameters": {"weights_generation": N, "batch_size": N},
//    "outputs": [{"name", "datatype", "shape", "data": [...] (flat) |
//                 "parameters": {"binary_data_size": N}}]}
// followed by the binary outputs in output order when any output is binary
// (header_length is then the JSON's size). FP16/BF16 outputs are always
// binary. Non-finite floats print as null in JSON (use binary data for them).
//
// Errors: InvalidArgument with a message naming the field or input.
// Thread-safe (no state).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"
#include "proto/grpc_service.pb.h"

namespace gradserve::serving {

nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message);

// `value` as text; invalid UTF-8 in strings is replaced, never an error.
std::string DumpJson(const nlohmann::ordered_json& value);

// Parses `text` as one JSON value; InvalidArgument with the parser's message
// (naming `what`, e.g. "the request body") when it is not valid JSON.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, absl::string_view what);

// A decoded REST infer request: the protocol message, and what the REST
// response must do beyond it.
struct RestInferRequest {
  inference::ModelInferRequest request;
  bool binary_output_default = false;          // parameters.binary_data_output
  std::map<std::string, bool> binary_outputs;  // per requested output
  absl::Time deadline = absl::InfiniteFuture();
};

// `body` is the whole POST body; `header_length` the value of the
// Inference-Header-Content-Length header (nullopt: the body is all JSON).
// `model` and `version` come from the URL. `now` anchors parameters.timeout.
absl::StatusOr<RestInferRequest> DecodeRestInferRequest(absl::string_view body,
                                                        std::optional<size_t> header_length,
                                                        const std::string& model,
                                                        const std::string& version, absl::Time now);

struct RestBody {
  std::string body;
  std::optional<size_t> header_length;  // set when binary data follows the JSON
};

// `response` as answered by InferenceService::ModelInfer for `request`.
absl::StatusOr<RestBody> EncodeRestInferResponse(const inference::ModelInferResponse& response,
                                                 const RestInferRequest& request);

}  // namespace gradserve::serving
