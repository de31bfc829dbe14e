// The Open Inference Protocol's JSON inference body, and tensors as text: what
// `gradserve-cli infer --json` reads and what it prints.
//
// The body is the REST form of a request (KServe v2 "$inference_request"):
//   {"id": "...",
//    "inputs": [{"name": "pixels", "shape": [2, 64], "datatype": "FP32",
//                "data": [...]}],
//    "outputs": [{"name": "probabilities"}]}
// "id" and "outputs" are optional; "data" is flat or nested row-major lists
// (nesting is flattened, the shape decides). Element types: BOOL takes true/
// false, the integer types whole numbers in their range, FP32/FP64 numbers,
// BYTES strings. FP16 and BF16 have no JSON form here (use .npy).
// Errors are InvalidArgument naming the input.
//
// Thread-safe (no state).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "clients/client.h"

namespace gradserve::client {

// The request in a JSON body (model and version are left empty).
absl::StatusOr<InferRequest> InferRequestFromJson(const std::string& text);

// "name DATATYPE [d0,d1,...]" then the values, one line per innermost row
// (floats in their shortest exact form; BYTES quoted).
std::string FormatTensor(const Tensor& t);

}  // namespace gradserve::client
