// The REST front end: the Open Inference Protocol v2 over HTTP/1.1 (KServe v2
// REST, as Triton serves it) on Boost.Beast, mapped onto the same
// InferenceService as gRPC (serving/grpc_server.h); the bodies are converted
// by serving/rest_codec.h.
//
//   GET  /v2                                     server metadata
//   GET  /v2/health/live | /v2/health/ready      200, or 400 when not ready
//   GET  /v2/models/M[/versions/V]               model metadata
//   GET  /v2/models/M[/versions/V]/ready         200, or 400 when not ready
//   GET  /v2/models/M[/versions/V]/config        the ModelConfig (Triton)
//   GET  /v2/models[/M[/versions/V]]/stats       {"model_stats": [...]} (Triton)
//   POST /v2/models/M[/versions/V]/infer         inference (rest_codec.h)
//   POST /v2/models/M[/versions/V]/train         a training step's examples, in the infer
//                                                request's shape -> ModelTrainResponse JSON
//   GET  /v2/models/M[/versions/V]/training      TrainingStatusResponse JSON
//   POST /v2/models/M[/versions/V]/training/checkpoint | export | rollback
//                                                optional body {"export_version": N} or
//                                                {"checkpoint": "NAME"} (proto/training.proto)
//   POST /v2/repository/index                    [{"name","version","state","reason"}]
//   POST /v2/repository/models/M/load | unload   200 with an empty body
//
// Readiness answers 400 when false, as the KServe v2 REST spec ("a 4xx status
// code indicating false") and Triton have it. Path segments are
// percent-decoded; the query string is ignored. Request bodies may be
// gzip/deflate compressed (Content-Encoding, as tritonclient sends them);
// responses are not compressed.
//
// Errors are {"error": "<message>"} with the status of HttpStatusCode():
// the service's error codes mapped as Triton maps its own (NOT_FOUND 404;
// UNAVAILABLE, and RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED, which Triton
// reports as UNAVAILABLE, 503; UNIMPLEMENTED 501; INTERNAL and unknown
// failures 500; caller mistakes 400). The transport adds: malformed HTTP or
// JSON 400, an unknown route 404, a method the route does not take 405 (with
// Allow), a body over Options::max_body_bytes 413 (the connection is then
// closed), an unknown Content-Encoding 415.
//
// Concurrency: HTTP/1.1 keep-alive connections, each served on its own strand
// of an io_context run by Options::threads threads; a connection handles one
// request at a time. Inference never blocks an io thread: the service calls
// back from its batcher and the response is encoded on an io thread and
// written on the connection's strand. Repository load and unload (seconds)
// run on threads of their own.
//
// Thread safety: Start/Shutdown from one thread; requests run concurrently.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "serving/inference_service.h"
#include "serving/training_service.h"

namespace gradserve::serving {

struct HttpServerOptions {
  int threads = 4;                                   // io threads
  size_t max_body_bytes = size_t{256} << 20;         // request body (decompressed) limit
  absl::Duration idle_timeout = absl::Seconds(120);  // a silent connection is closed
};

class HttpServer {
 public:
  // Listens on `address`:`port` (port 0 picks a free one, see port()).
  // Unavailable when the address cannot be resolved or bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address, int port,
                                                           InferenceService* service,
                                                           TrainingService* training = nullptr,
                                                           const HttpServerOptions& options = {});
  ~HttpServer();  // Shutdown(now) when not shut down yet

  int port() const;
  // Stops accepting connections, answers the requests already read (new
  // requests on open connections get 503), waits up to `deadline` for their
  // responses to be written, then closes every connection. Waits, past the
  // deadline if need be, for service callbacks still due (none once
  // InferenceService::BeginShutdown returned).
  void Shutdown(absl::Time deadline);

  class Impl;  // the .cc's (public for its connection class)

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The HTTP status for a service error (200 for OK).
int HttpStatusCode(absl::StatusCode code);

}  // namespace gradserve::serving
