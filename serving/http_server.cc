#include "serving/http_server.h"

#include <zlib.h>

#include <atomic>
#include <functional>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/strand.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "serving/rest_codec.h"

namespace gradserve::serving {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;

int HttpStatusCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kCancelled:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnimplemented:
      return 501;
    // Triton has no codes for a full queue or an expired request: both are
    // its UNAVAILABLE, a condition worth retrying.
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

namespace {

// An answer, before it becomes an http::response on the connection's strand.
struct Reply {
  http::status status = http::status::ok;
  std::string body;  // empty: no body and no Content-Type
  const char* content_type = "application/json";
  std::optional<size_t> header_length;  // Inference-Header-Content-Length
  std::string allow;                    // 405: the method the route takes
  bool close = false;                   // close the connection after it
};
using Respond = std::function<void(Reply)>;

absl::string_view SV(beast::string_view s) { return {s.data(), s.size()}; }

Reply ErrorReply(http::status status, absl::string_view message) {
  Reply r;
  r.status = status;
  r.body = DumpJson({{"error", std::string(message)}});
  return r;
}

Reply StatusReply(const absl::Status& status) {
  return ErrorReply(http::int_to_status(HttpStatusCode(status.code())), status.message());
}

Reply MessageReply(const google::protobuf::Message& message) {
  Reply r;
  r.body = DumpJson(ProtoToJson(message));
  return r;
}

template <typename T>
Reply ProtoReply(const absl::StatusOr<T>& message) {
  return message.ok() ? MessageReply(*message) : StatusReply(message.status());
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The percent-decoded segments of the target's path ("/v2/models/m%2Fx?q" ->
// v2, models, m/x); nullopt when it is not an absolute path or a %XX is bad.
std::optional<std::vector<std::string>> PathSegments(absl::string_view target) {
  target = target.substr(0, target.find('?'));
  if (target.empty() || target[0] != '/') return std::nullopt;
  std::vector<std::string> segments;
  for (absl::string_view raw : absl::StrSplit(target.substr(1), '/')) {
    std::string s;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '%') {
        s += raw[i];
        continue;
      }
      if (i + 2 >= raw.size()) return std::nullopt;
      const int hi = HexValue(raw[i + 1]), lo = HexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      s += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    segments.push_back(std::move(s));
  }
  return segments;
}

// What a path names.
struct Route {
  enum Kind {
    kNone,
    kServerMetadata,
    kLive,
    kReady,
    kModelMetadata,
    kModelReady,
    kModelConfig,
    kModelStats,
    kInfer,
    kRepositoryIndex,
    kLoad,
    kUnload,
    kTrain,
    kTrainingStatus,
    kCheckpoint,
    kExport,
    kRollback,
  };
  Kind kind = kNone;
  http::verb method = http::verb::get;
  std::string model, version;  // "" for every model (stats) or the policy's version
};

Route Match(const std::vector<std::string>& s) {
  Route r;
  if (s.empty() || s[0] != "v2") return r;
  if (s.size() == 1) {
    r.kind = Route::kServerMetadata;
  } else if (s[1] == "health" && s.size() == 3) {
    if (s[2] == "live") r.kind = Route::kLive;
    if (s[2] == "ready") r.kind = Route::kReady;
  } else if (s[1] == "models" && s.size() == 3 && s[2] == "stats") {
    r.kind = Route::kModelStats;  // every model
  } else if (s[1] == "models" && s.size() >= 3) {
    r.model = s[2];
    size_t i = 3;
    if (i + 1 < s.size() && s[i] == "versions") {
      r.version = s[i + 1];
      i += 2;
    }
    if (i == s.size()) {
      r.kind = Route::kModelMetadata;
    } else if (i + 1 == s.size()) {
      if (s[i] == "ready") r.kind = Route::kModelReady;
      if (s[i] == "config") r.kind = Route::kModelConfig;
      if (s[i] == "stats") r.kind = Route::kModelStats;
      if (s[i] == "infer") r.kind = Route::kInfer;
      if (s[i] == "train") r.kind = Route::kTrain;
      if (s[i] == "training") r.kind = Route::kTrainingStatus;
    } else if (i + 2 == s.size() && s[i] == "training") {
      if (s[i + 1] == "checkpoint") r.kind = Route::kCheckpoint;
      if (s[i + 1] == "export") r.kind = Route::kExport;
      if (s[i + 1] == "rollback") r.kind = Route::kRollback;
    }
  } else if (s[1] == "repository") {
    if (s.size() == 3 && s[2] == "index") r.kind = Route::kRepositoryIndex;
    if (s.size() == 5 && s[2] == "models" && (s[4] == "load" || s[4] == "unload")) {
      r.kind = s[4] == "load" ? Route::kLoad : Route::kUnload;
      r.model = s[3];
    }
  }
  if (r.kind == Route::kInfer || r.kind == Route::kRepositoryIndex || r.kind == Route::kLoad ||
      r.kind == Route::kUnload || r.kind == Route::kTrain || r.kind == Route::kCheckpoint ||
      r.kind == Route::kExport || r.kind == Route::kRollback) {
    r.method = http::verb::post;
  }
  return r;
}

// Inflates a gzip or zlib ("deflate" in HTTP) body in place; an error reply
// when it is corrupt or inflates past `limit` bytes.
std::optional<Reply> Inflate(std::string* body, size_t limit) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) {  // 32: detect gzip or zlib headers
    return ErrorReply(http::status::internal_server_error, "cannot start zlib");
  }
  z.next_in = reinterpret_cast<Bytef*>(body->data());
  z.avail_in = static_cast<uInt>(body->size());
  std::string out;
  char chunk[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(chunk, sizeof(chunk) - z.avail_out);
    if (out.size() > limit) {
      inflateEnd(&z);
      return ErrorReply(http::status::payload_too_large,
                        absl::StrCat("the request body inflates to more than ", limit, " bytes"));
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // truncated input
  }
  const std::string why = z.msg != nullptr ? z.msg : "truncated data";
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return ErrorReply(http::status::bad_request,
                      absl::StrCat("the request body is not valid gzip/deflate data: ", why));
  }
  *body = std::move(out);
  return std::nullopt;
}

}  // namespace

class Session;

class HttpServer::Impl {
 public:
  Impl(InferenceService* service, TrainingService* training, const HttpServerOptions& options)
      : service_(service),
        training_(training),
        options_(options),
        acceptor_(net::make_strand(ioc_)) {}
  ~Impl() { Shutdown(absl::Now()); }

  absl::Status Listen(const std::string& address, int port);
  void Run();
  void Shutdown(absl::Time deadline);
  int port() const { return port_; }

  // For sessions. Handle() answers `request` through `respond`, once, on any
  // thread; RequestBegan/RequestEnded bracket each request, from reading it
  // to writing its answer.
  void Handle(Request& request, Respond respond);
  void RequestBegan() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }
  void RequestEnded() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }
  bool stopping() const { return stopping_.load(); }
  const HttpServerOptions& options() const { return options_; }

 private:
  void Accept();
  void Infer(Request& request, const Route& route, Respond respond);
  void RepositoryIndex(const Request& request, Respond respond);
  void LoadOrUnload(const Request& request, const Route& route, Respond respond);
  void ModelReady(const Route& route, Respond respond);
  void Train(Request& request, const Route& route, Respond respond);
  // Checkpoint, export or rollback, whose bodies are optional JSON objects.
  void TrainingControl(const Request& request, const Route& route, Respond respond);
  // Runs `call` (seconds long: loading, draining, checkpointing) on a thread
  // of its own, off the io threads, and answers with its reply.
  void RunAside(Respond respond, std::function<Reply()> call);

  // Service callbacks still due (pending_) keep the io_context alive.
  void CallbackDue() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ++pending_;
  }
  void CallbackDone() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    --pending_;
  }

  InferenceService* const service_;
  TrainingService* const training_;  // null: no training endpoints
  const HttpServerOptions options_;
  net::io_context ioc_;  // declared before what uses it, so destroyed last
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  bool shut_down_ = false;  // Shutdown's caller thread only

  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> aside_ ABSL_GUARDED_BY(mu_);  // RunAside's
};

// One connection: reads a request, has the server answer it, writes the
// answer, and reads the next while the connection is kept alive. Every step
// runs on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {}

  void Start() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::ReadHeader, shared_from_this()));
  }

 private:
  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(server_->options().max_body_bytes);
    stream_.expires_after(absl::ToChronoSeconds(server_->options().idle_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      continue_.emplace(http::status::continue_, parser_->get().version());
      http::async_write(stream_, *continue_,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->Close();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    stream_.expires_never();  // inference may take long; the write sets a timer again
    request_ = parser_->release();
    server_->RequestBegan();
    server_->Handle(request_, [self = shared_from_this()](Reply reply) {
      net::post(self->stream_.get_executor(),
                [self, reply = std::move(reply)]() mutable { self->Write(std::move(reply)); });
    });
  }

  void OnReadError(beast::error_code ec) {
    std::optional<Reply> reply;
    if (ec == http::error::body_limit) {
      reply = ErrorReply(http::status::payload_too_large,
                         absl::StrCat("the request body is over the limit of ",
                                      server_->options().max_body_bytes, " bytes"));
    } else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      reply = ErrorReply(http::status::bad_request,
                         absl::StrCat("malformed HTTP request: ", ec.message()));
    }
    if (!reply.has_value()) return Close();  // closed, reset or timed out
    reply->close = true;
    request_ = {};
    server_->RequestBegan();
    Write(*std::move(reply));
  }

  void Write(Reply reply) {
    response_.emplace(reply.status, request_.version() == 10 ? 10 : 11);
    response_->set(http::field::server, kServerName);
    if (!reply.body.empty()) response_->set(http::field::content_type, reply.content_type);
    if (reply.header_length.has_value()) {
      response_->set("Inference-Header-Content-Length", std::to_string(*reply.header_length));
    }
    if (!reply.allow.empty()) response_->set(http::field::allow, reply.allow);
    response_->body() = std::move(reply.body);
    const bool keep_alive = request_.keep_alive() && !reply.close && !server_->stopping();
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    stream_.expires_after(absl::ToChronoSeconds(server_->options().idle_timeout));
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->server_->RequestEnded();
                        if (ec || !keep_alive) return self->Close();
                        self->request_ = {};
                        self->ReadHeader();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* const server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  Request request_;
  std::optional<http::response<http::string_body>> response_;
};

absl::Status HttpServer::Impl::Listen(const std::string& address, int port) {
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  auto endpoints = resolver.resolve(address, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve '", address, "' for HTTP: ", ec.message()));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on ", address, ":", port, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  return absl::OkStatus();
}

void HttpServer::Impl::Run() {
  Accept();
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { ioc_.run(); });
  }
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;  // shutting down
    if (!ec) std::make_shared<Session>(std::move(socket), this)->Start();
    Accept();
  });
}

void HttpServer::Impl::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  stopping_ = true;
  if (!threads_.empty()) {
    // The acceptor belongs to its strand: close it there.
    std::promise<void> closed;
    net::post(acceptor_.get_executor(), [this, &closed] {
      beast::error_code ec;
      acceptor_.close(ec);
      closed.set_value();
    });
    closed.get_future().wait();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](int* n) { return *n == 0; }, &in_flight_),
                          deadline);
  }
  ioc_.stop();  // open connections are closed when the io_context goes
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  std::vector<std::thread> aside;
  {
    absl::MutexLock lock(&mu_);
    aside.swap(aside_);
  }
  for (std::thread& t : aside) t.join();
  // A callback due would post to the io_context: it must outlive them all.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &pending_));
}

void HttpServer::Impl::Handle(Request& request, Respond respond) {
  if (stopping_) {
    Reply r = ErrorReply(http::status::service_unavailable, "the server is shutting down");
    r.close = true;
    return respond(std::move(r));
  }
  std::optional<std::vector<std::string>> segments = PathSegments(SV(request.target()));
  if (!segments.has_value()) {
    return respond(ErrorReply(http::status::bad_request, absl::StrCat("malformed request target '",
                                                                      SV(request.target()), "'")));
  }
  const Route route = Match(*segments);
  if (route.kind == Route::kNone) {
    return respond(ErrorReply(http::status::not_found,
                              absl::StrCat("no such endpoint: ", SV(request.method_string()), " ",
                                           SV(request.target()))));
  }
  if (request.method() != route.method) {
    const std::string allowed(SV(http::to_string(route.method)));
    Reply r = ErrorReply(http::status::method_not_allowed,
                         absl::StrCat(SV(request.method_string()), " is not allowed on ",
                                      SV(request.target()), "; use ", allowed));
    r.allow = allowed;
    return respond(std::move(r));
  }
  const beast::string_view encoding = request[http::field::content_encoding];
  if (!encoding.empty() && !beast::iequals(encoding, "identity")) {
    if (!beast::iequals(encoding, "gzip") && !beast::iequals(encoding, "deflate")) {
      return respond(ErrorReply(http::status::unsupported_media_type,
                                absl::StrCat("Content-Encoding '", SV(encoding),
                                             "' is not supported; use gzip or deflate")));
    }
    if (std::optional<Reply> error = Inflate(&request.body(), options_.max_body_bytes)) {
      return respond(*std::move(error));
    }
  }
  switch (route.kind) {
    case Route::kServerMetadata:
      return respond(MessageReply(service_->ServerMetadata()));
    case Route::kLive:
      return respond(Reply{});
    case Route::kReady:
      return respond(service_->Ready()
                         ? Reply{}
                         : ErrorReply(http::status::bad_request, "the server is not ready"));
    case Route::kModelMetadata:
      return respond(ProtoReply(service_->ModelMetadata(route.model, route.version)));
    case Route::kModelReady:
      return ModelReady(route, std::move(respond));
    case Route::kModelConfig: {
      auto config = service_->ModelConfig(route.model, route.version);
      return respond(config.ok() ? MessageReply(config->config()) : StatusReply(config.status()));
    }
    case Route::kModelStats:
      return respond(ProtoReply(service_->ModelStatistics(route.model, route.version)));
    case Route::kInfer:
      return Infer(request, route, std::move(respond));
    case Route::kRepositoryIndex:
      return RepositoryIndex(request, std::move(respond));
    case Route::kLoad:
    case Route::kUnload:
      return LoadOrUnload(request, route, std::move(respond));
    case Route::kTrain:
    case Route::kTrainingStatus:
    case Route::kCheckpoint:
    case Route::kExport:
    case Route::kRollback:
      if (training_ == nullptr) {
        return respond(ErrorReply(http::status::not_found, "this server does not train"));
      }
      if (route.kind == Route::kTrain) return Train(request, route, std::move(respond));
      if (route.kind == Route::kTrainingStatus) {
        v1::TrainingStatusRequest q;
        q.set_model_name(route.model);
        q.set_model_version(route.version);
        return respond(ProtoReply(training_->TrainingStatus(q)));
      }
      return TrainingControl(request, route, std::move(respond));
    case Route::kNone:
      break;
  }
}

// An infer-shaped body (JSON, or JSON + binary tensors after
// Inference-Header-Content-Length bytes), for /infer and /train.
absl::StatusOr<RestInferRequest> DecodeBody(Request& request, const Route& route) {
  std::optional<size_t> header_length;
  if (auto it = request.find("Inference-Header-Content-Length"); it != request.end()) {
    size_t n = 0;
    if (!absl::SimpleAtoi(SV(it->value()), &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Inference-Header-Content-Length must be a byte count, not '",
                       SV(it->value()), "'"));
    }
    header_length = n;
  }
  absl::StatusOr<RestInferRequest> decoded = DecodeRestInferRequest(
      request.body(), header_length, route.model, route.version, absl::Now());
  std::string().swap(request.body());  // the decoded request holds copies
  return decoded;
}

void HttpServer::Impl::Train(Request& request, const Route& route, Respond respond) {
  // The body has the infer request's shape: features and labels are inputs.
  absl::StatusOr<RestInferRequest> decoded = DecodeBody(request, route);
  if (!decoded.ok()) return respond(StatusReply(decoded.status()));
  auto q = std::make_shared<v1::ModelTrainRequest>();
  q->set_model_name(route.model);
  q->set_model_version(route.version);
  q->set_id(decoded->request.id());
  *q->mutable_inputs() = std::move(*decoded->request.mutable_inputs());
  *q->mutable_raw_input_contents() = std::move(*decoded->request.mutable_raw_input_contents());
  CallbackDue();
  training_->ModelTrain(*q, decoded->deadline,
                        [this, q, respond](absl::StatusOr<v1::ModelTrainResponse> result) {
                          respond(ProtoReply(std::move(result)));
                          CallbackDone();
                        });
}

void HttpServer::Impl::TrainingControl(const Request& request, const Route& route,
                                       Respond respond) {
  nlohmann::json body = nlohmann::json::object();
  if (!request.body().empty()) {
    absl::StatusOr<nlohmann::json> parsed = ParseJson(request.body(), "the training request");
    if (!parsed.ok()) return respond(StatusReply(parsed.status()));
    if (!parsed->is_object()) {
      return respond(
          ErrorReply(http::status::bad_request, "the training request must be a JSON object"));
    }
    body = *std::move(parsed);
  }
  int64_t export_version = 0;
  std::string checkpoint;
  if (auto it = body.find("export_version"); it != body.end()) {
    if (route.kind != Route::kExport || !it->is_number_integer()) {
      return respond(ErrorReply(http::status::bad_request,
                                "'export_version' is an integer, for .../training/export only"));
    }
    export_version = it->get<int64_t>();
  }
  if (auto it = body.find("checkpoint"); it != body.end()) {
    if (route.kind != Route::kRollback || !it->is_string()) {
      return respond(ErrorReply(http::status::bad_request,
                                "'checkpoint' is a string, for .../training/rollback only"));
    }
    checkpoint = it->get<std::string>();
  }
  RunAside(std::move(respond), [this, route, export_version, checkpoint]() -> Reply {
    switch (route.kind) {
      case Route::kCheckpoint: {
        v1::ModelCheckpointRequest q;
        q.set_model_name(route.model);
        q.set_model_version(route.version);
        return ProtoReply(training_->ModelCheckpoint(q));
      }
      case Route::kExport: {
        v1::ModelExportRequest q;
        q.set_model_name(route.model);
        q.set_model_version(route.version);
        q.set_export_version(export_version);
        return ProtoReply(training_->ModelExport(q));
      }
      default: {
        v1::ModelRollbackRequest q;
        q.set_model_name(route.model);
        q.set_model_version(route.version);
        q.set_checkpoint(checkpoint);
        return ProtoReply(training_->ModelRollback(q));
      }
    }
  });
}

void HttpServer::Impl::RunAside(Respond respond, std::function<Reply()> call) {
  CallbackDue();
  absl::MutexLock lock(&mu_);
  aside_.emplace_back([this, respond = std::move(respond), call = std::move(call)] {
    respond(call());
    CallbackDone();
  });
}

void HttpServer::Impl::ModelReady(const Route& route, Respond respond) {
  absl::StatusOr<bool> ready = service_->ModelReady(route.model, route.version);
  if (!ready.ok()) return respond(StatusReply(ready.status()));
  if (*ready) return respond(Reply{});
  // Not ready: say why (unknown, failed to load, unloaded), as a 400.
  const absl::Status why = service_->manager().Get(route.model, route.version).status();
  respond(ErrorReply(http::status::bad_request,
                     why.ok() ? absl::StrCat("model '", route.model, "' is not ready")
                              : std::string(why.message())));
}

void HttpServer::Impl::Infer(Request& request, const Route& route, Respond respond) {
  absl::StatusOr<RestInferRequest> decoded = DecodeBody(request, route);
  if (!decoded.ok()) return respond(StatusReply(decoded.status()));
  auto rest = std::make_shared<RestInferRequest>(*std::move(decoded));
  CallbackDue();
  service_->ModelInfer(rest->request, rest->deadline,
                       [this, rest, respond](absl::StatusOr<inference::ModelInferResponse> result) {
                         // Encode on an io thread, not on the batcher's.
                         net::post(ioc_, [rest, respond, result = std::move(result)] {
                           if (!result.ok()) return respond(StatusReply(result.status()));
                           absl::StatusOr<RestBody> body = EncodeRestInferResponse(*result, *rest);
                           if (!body.ok()) return respond(StatusReply(body.status()));
                           Reply reply;
                           reply.body = std::move(body->body);
                           reply.header_length = body->header_length;
                           if (reply.header_length.has_value())
                             reply.content_type = "application/octet-stream";
                           respond(std::move(reply));
                         });
                         CallbackDone();
                       });
}

void HttpServer::Impl::RepositoryIndex(const Request& request, Respond respond) {
  bool ready_only = false;
  if (!request.body().empty()) {
    absl::StatusOr<nlohmann::json> body = ParseJson(request.body(), "the index request");
    if (!body.ok()) return respond(StatusReply(body.status()));
    if (!body->is_object()) {
      return respond(
          ErrorReply(http::status::bad_request, "the index request must be a JSON object"));
    }
    if (auto it = body->find("ready"); it != body->end()) {
      if (!it->is_boolean()) {
        return respond(ErrorReply(http::status::bad_request, "'ready' must be a boolean"));
      }
      ready_only = it->get<bool>();
    }
  }
  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  const inference::RepositoryIndexResponse index = service_->RepositoryIndex(ready_only);
  for (const auto& m : index.models()) {
    models.push_back(ProtoToJson(m));
  }
  Reply r;
  r.body = DumpJson(models);
  respond(std::move(r));
}

void HttpServer::Impl::LoadOrUnload(const Request& request, const Route& route, Respond respond) {
  if (!request.body().empty()) {
    absl::StatusOr<nlohmann::json> body = ParseJson(request.body(), "the repository request");
    if (!body.ok()) return respond(StatusReply(body.status()));
    auto params = body->is_object() ? body->find("parameters") : body->end();
    if (!body->is_object() || (params != body->end() && !params->is_object())) {
      return respond(ErrorReply(http::status::bad_request,
                                "the repository request must be a JSON object whose "
                                "'parameters' is an object"));
    }
    if (params != body->end()) {
      for (const auto& [key, value] : params->items()) {
        if (key == "config" || key.rfind("file:", 0) == 0) {
          return respond(
              ErrorReply(http::status::bad_request,
                         absl::StrCat("load parameter '", key,
                                      "' (a model override) is not supported; "
                                      "change the repository and load the model again")));
        }
      }
    }
  }
  RunAside(std::move(respond), [this, route] {
    const absl::Status status =
        route.kind == Route::kLoad ? service_->Load(route.model) : service_->Unload(route.model);
    return status.ok() ? Reply{} : StatusReply(status);
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address, int port,
                                                              InferenceService* service,
                                                              TrainingService* training,
                                                              const HttpServerOptions& options) {
  auto impl = std::make_unique<Impl>(service, training, options);
  absl::Status listening = impl->Listen(address, port);
  if (!listening.ok()) return listening;
  impl->Run();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port(); }

void HttpServer::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }

}  // namespace gradserve::serving
