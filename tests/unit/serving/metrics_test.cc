// The Prometheus metrics: drive the hooks, serialize the registry in the text
// format (what a scrape returns) and read exact sample values back.
#include "serving/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace gradserve::serving {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The value of `series` (name{labels} exactly as serialized: labels sorted by
// name, `le` last) in a text-format scrape; NaN when it is absent.
double Sample(const std::string& scrape, const std::string& series) {
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) != 0) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::unique_ptr<Metrics> NewMetrics(MetricsOptions options = {}) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(options);
  EXPECT_TRUE(m.ok()) << m.status();
  return *std::move(m);
}

TEST(MetricsTest, RequestsCountByOutcomeAndLatenciesObserveSuccesses) {
  auto metrics = NewMetrics();
  ModelManagerOptions options;
  metrics->InstallHooks(&options);
  const auto& on_request = options.observer.on_request;
  on_request("m", 1, "success", absl::Microseconds(3200), absl::Microseconds(700),
             absl::Microseconds(2200));
  on_request("m", 1, "success", absl::Microseconds(40), absl::Microseconds(20),
             absl::Microseconds(15));
  on_request("m", 1, "invalid_argument", absl::Microseconds(90), absl::ZeroDuration(),
             absl::ZeroDuration());
  on_request("m", 2, "resource_exhausted", absl::Microseconds(5), absl::ZeroDuration(),
             absl::ZeroDuration());
  const std::string s = metrics->Scrape();
  SCOPED_TRACE(s);

  const std::string requests = kInferenceRequests.name;
  EXPECT_EQ(Sample(s, requests + R"({model="m",outcome="success",version="1"})"), 2);
  EXPECT_EQ(Sample(s, requests + R"({model="m",outcome="invalid_argument",version="1"})"), 1);
  EXPECT_EQ(Sample(s, requests + R"({model="m",outcome="resource_exhausted",version="2"})"), 1);

  // Only the two successes are observed: 40 µs and 3.2 ms.
  const std::string request = kRequestDuration.name;
  const std::string v1 = R"(model="m",version="1")";
  EXPECT_EQ(Sample(s, request + "_count{" + v1 + "}"), 2);
  EXPECT_DOUBLE_EQ(Sample(s, request + "_sum{" + v1 + "}"), 0.00324);
  EXPECT_EQ(Sample(s, request + "_bucket{" + v1 + R"(,le="0.0001"})"), 1);
  EXPECT_EQ(Sample(s, request + "_bucket{" + v1 + R"(,le="0.0025"})"), 1);
  EXPECT_EQ(Sample(s, request + "_bucket{" + v1 + R"(,le="0.005"})"), 2);
  EXPECT_EQ(Sample(s, request + "_bucket{" + v1 + R"(,le="+Inf"})"), 2);

  const std::string queue = kQueueDuration.name;
  EXPECT_EQ(Sample(s, queue + "_count{" + v1 + "}"), 2);
  EXPECT_DOUBLE_EQ(Sample(s, queue + "_sum{" + v1 + "}"), 0.00072);
  EXPECT_EQ(Sample(s, queue + "_bucket{" + v1 + R"(,le="0.0005"})"), 1);
  EXPECT_EQ(Sample(s, queue + "_bucket{" + v1 + R"(,le="0.001"})"), 2);

  const std::string compute = kComputeDuration.name;
  EXPECT_EQ(Sample(s, compute + "_count{" + v1 + "}"), 2);
  EXPECT_DOUBLE_EQ(Sample(s, compute + "_sum{" + v1 + "}"), 0.002215);
  EXPECT_EQ(Sample(s, compute + "_bucket{" + v1 + R"(,le="0.001"})"), 1);
  EXPECT_EQ(Sample(s, compute + "_bucket{" + v1 + R"(,le="0.0025"})"), 2);

  // Version 2 had only a failure: no latency series.
  EXPECT_THAT(s, Not(HasSubstr(request + R"(_count{model="m",version="2"})")));
}

TEST(MetricsTest, LatencyBucketsSpan100MicrosecondsTo10Seconds) {
  const std::vector<double> b = DefaultLatencyBucketsSeconds();
  ASSERT_EQ(b.size(), 16u);
  EXPECT_EQ(b.front(), 0.0001);
  EXPECT_EQ(b.back(), 10);
  auto metrics = NewMetrics();
  metrics->RecordRequest("m", 1, "success", absl::Seconds(30), absl::Seconds(1), absl::Seconds(2));
  const std::string s = metrics->Scrape();
  const std::string series =
      absl::StrCat(kRequestDuration.name, R"(_bucket{model="m",version="1",)");
  EXPECT_EQ(Sample(s, series + R"(le="10"})"), 0) << s;
  EXPECT_EQ(Sample(s, series + R"(le="+Inf"})"), 1) << s;
}

TEST(MetricsTest, BatchSizeHistogramHasPowerOfTwoBuckets) {
  EXPECT_THAT(BatchSizeBuckets(1), ElementsAre(1));
  EXPECT_THAT(BatchSizeBuckets(8), ElementsAre(1, 2, 4, 8));
  EXPECT_THAT(BatchSizeBuckets(6), ElementsAre(1, 2, 4, 8));
  EXPECT_EQ(BatchSizeBuckets(1024).size(), 11u);

  MetricsOptions options;
  options.max_batch_size_bucket = 64;
  auto metrics = NewMetrics(options);
  ModelManagerOptions manager_options;
  metrics->InstallHooks(&manager_options);
  for (int64_t rows : {1, 3, 64, 100}) manager_options.observer.on_batch("m", 1, rows);
  const std::string s = metrics->Scrape();
  SCOPED_TRACE(s);
  const std::string b = absl::StrCat(kBatchSize.name, R"(_bucket{model="m",version="1",le=")");
  EXPECT_EQ(Sample(s, b + R"(1"})"), 1);
  EXPECT_EQ(Sample(s, b + R"(2"})"), 1);
  EXPECT_EQ(Sample(s, b + R"(4"})"), 2);
  EXPECT_EQ(Sample(s, b + R"(32"})"), 2);
  EXPECT_EQ(Sample(s, b + R"(64"})"), 3);
  EXPECT_EQ(Sample(s, b + R"(+Inf"})"), 4);
  EXPECT_TRUE(std::isnan(Sample(s, b + R"(128"})")));
  EXPECT_EQ(Sample(s, absl::StrCat(kBatchSize.name, R"(_sum{model="m",version="1"})")), 168);
  EXPECT_EQ(Sample(s, absl::StrCat(kBatchSize.name, R"(_count{model="m",version="1"})")), 4);
}

TEST(MetricsTest, LoadAndStateHooksSetLoadDurationAndReadiness) {
  auto metrics = NewMetrics();
  ModelManagerOptions options;
  int logged_loads = 0, logged_states = 0;
  // Hooks set before InstallHooks (main's logging) still run.
  options.on_load = [&](const std::string&, int64_t, double, bool) { ++logged_loads; };
  options.on_state = [&](const std::string&, int64_t, VersionState) { ++logged_states; };
  metrics->InstallHooks(&options);
  options.on_load("m", 2, 0.3, true);
  options.on_load("broken", 1, 0.02, false);
  options.on_state("m", 2, VersionState::kReady);
  options.on_state("broken", 1, VersionState::kUnavailable);
  options.on_state("old", 1, VersionState::kReady);
  options.on_state("old", 1, VersionState::kUnloading);
  EXPECT_EQ(logged_loads, 2);
  EXPECT_EQ(logged_states, 4);

  const std::string s = metrics->Scrape();
  SCOPED_TRACE(s);
  const std::string load = kModelLoadDuration.name;
  EXPECT_EQ(Sample(s, load + R"(_count{model="m",version="2"})"), 1);
  EXPECT_DOUBLE_EQ(Sample(s, load + R"(_sum{model="m",version="2"})"), 0.3);
  EXPECT_EQ(Sample(s, load + R"(_bucket{model="m",version="2",le="0.25"})"), 0);
  EXPECT_EQ(Sample(s, load + R"(_bucket{model="m",version="2",le="0.5"})"), 1);
  EXPECT_TRUE(std::isnan(Sample(s, load + R"(_count{model="broken",version="1"})")));
  const std::string ready = kModelReady.name;
  EXPECT_EQ(Sample(s, ready + R"({model="m",version="2"})"), 1);
  EXPECT_EQ(Sample(s, ready + R"({model="broken",version="1"})"), 0);
  EXPECT_EQ(Sample(s, ready + R"({model="old",version="1"})"), 0);
}

TEST(MetricsTest, RejectedRequestsOnlyNameModelsAndVersionsSeenLoading) {
  auto metrics = NewMetrics();
  InferenceService::RejectObserver reject = metrics->RejectHook();
  reject("made-up", "7", absl::NotFoundError("no model"));
  metrics->RecordState("m", 1, VersionState::kReady);
  reject("m", "", absl::UnavailableError("not ready"));
  reject("m", "1", absl::InvalidArgumentError("bad input"));
  reject("m", "99", absl::NotFoundError("no version"));
  reject("m", "99", absl::NotFoundError("no version"));
  const std::string s = metrics->Scrape();
  SCOPED_TRACE(s);
  const std::string r = kInferenceRequests.name;
  EXPECT_EQ(Sample(s, r + R"({model="",outcome="not_found",version=""})"), 1);
  EXPECT_EQ(Sample(s, r + R"({model="m",outcome="unavailable",version=""})"), 1);
  EXPECT_EQ(Sample(s, r + R"({model="m",outcome="invalid_argument",version="1"})"), 1);
  EXPECT_EQ(Sample(s, r + R"({model="m",outcome="not_found",version=""})"), 2);
  EXPECT_THAT(s, Not(HasSubstr("made-up")));
  EXPECT_THAT(s, Not(HasSubstr(R"(version="99")")));
}

TEST(MetricsTest, InferenceServiceReportsRequestsThatReachNoVersion) {
  const std::string repo = ::testing::TempDir() + "/metrics_repo_" + std::to_string(::getpid());
  std::filesystem::create_directories(repo);
  ModelManagerOptions options;
  options.repository = repo;
  absl::StatusOr<std::unique_ptr<ModelManager>> manager = ModelManager::Create(options);
  ASSERT_TRUE(manager.ok()) << manager.status();
  std::vector<std::pair<std::string, absl::StatusCode>> rejected;
  InferenceService service(manager->get(), [&](const std::string& model, const std::string&,
                                               const absl::Status& status) {
    rejected.emplace_back(model, status.code());
  });

  inference::ModelInferRequest unknown;
  unknown.set_model_name("nope");
  absl::Status answer;
  service.ModelInfer(unknown, absl::InfiniteFuture(),
                     [&](absl::StatusOr<inference::ModelInferResponse> r) { answer = r.status(); });
  EXPECT_EQ(answer.code(), absl::StatusCode::kNotFound) << answer;

  inference::ModelInferRequest undecodable;  // a raw input without its tensor
  undecodable.set_model_name("nope");
  undecodable.add_inputs()->set_name("x");
  undecodable.add_inputs()->set_name("y");
  undecodable.add_raw_input_contents("");
  service.ModelInfer(undecodable, absl::InfiniteFuture(),
                     [&](absl::StatusOr<inference::ModelInferResponse> r) { answer = r.status(); });
  EXPECT_EQ(answer.code(), absl::StatusCode::kInvalidArgument) << answer;

  EXPECT_THAT(
      rejected,
      ElementsAre(
          std::pair<std::string, absl::StatusCode>("nope", absl::StatusCode::kNotFound),
          std::pair<std::string, absl::StatusCode>("nope", absl::StatusCode::kInvalidArgument)));
  std::filesystem::remove_all(repo);
}

TEST(MetricsTest, BuildInfoAndProcessMetricsAreExposed) {
  auto metrics = NewMetrics();
  metrics->RecordRequest("m", 1, "success", absl::Milliseconds(1), absl::ZeroDuration(),
                         absl::ZeroDuration());
  const std::string s = metrics->Scrape();
  SCOPED_TRACE(s);
  EXPECT_EQ(Sample(s, absl::StrCat(kBuildInfo.name, R"({version=")", kServerVersion, R"("})")), 1);
  const double cpu = Sample(s, kProcessCpu.name);
  const double rss = Sample(s, kProcessResidentMemory.name);
  const double vsize = Sample(s, kProcessVirtualMemory.name);
  const double start = Sample(s, kProcessStartTime.name);
  EXPECT_GE(cpu, 0);
  EXPECT_GT(rss, 1 << 20);  // this test binary holds more than 1 MiB
  EXPECT_GE(vsize, rss);
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600);  // started within the last day
  EXPECT_THAT(s, HasSubstr(absl::StrCat("# TYPE ", kProcessCpu.name, " counter")));
  EXPECT_THAT(
      s, HasSubstr(absl::StrCat("# HELP ", kRequestDuration.name, " ", kRequestDuration.help)));
  EXPECT_THAT(s, HasSubstr(absl::StrCat("# TYPE ", kRequestDuration.name, " histogram")));
}

TEST(MetricsTest, QueueCollectorSamplesItsSourceAtEachCollect) {
  std::vector<QueueDepth> depths = {{"m", 1, 3}, {"n", 2, 0}};
  QueueCollector collector([&] { return depths; });
  std::string s = prometheus::TextSerializer().Serialize(collector.Collect());
  const std::string p = kPendingRequests.name;
  EXPECT_EQ(Sample(s, p + R"({model="m",version="1"})"), 3) << s;
  EXPECT_EQ(Sample(s, p + R"({model="n",version="2"})"), 0) << s;
  depths = {{"m", 1, 5}};
  s = prometheus::TextSerializer().Serialize(collector.Collect());
  EXPECT_EQ(Sample(s, p + R"({model="m",version="1"})"), 5) << s;
  EXPECT_TRUE(std::isnan(Sample(s, p + R"({model="n",version="2"})"))) << s;
}

TEST(MetricsTest, CreateRejectsBadBuckets) {
  MetricsOptions options;
  options.latency_buckets_seconds = {0.1, 0.1};
  EXPECT_EQ(Metrics::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = {};
  options.load_buckets_seconds = {};
  EXPECT_EQ(Metrics::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = {};
  options.max_batch_size_bucket = 0;
  EXPECT_EQ(Metrics::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

// The body of GET http://127.0.0.1:`port``path` (HTTP/1.0: the server closes).
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
    }
  }
  close(fd);
  return response;
}

TEST(MetricsTest, ExposerServesEveryCollectableOverHttp) {
  auto metrics = NewMetrics();
  metrics->RecordBatch("m", 1, 2);
  absl::StatusOr<std::unique_ptr<MetricsExposer>> exposer =
      MetricsExposer::Start("127.0.0.1", 0, *metrics, [] {
        return std::vector<QueueDepth>{{"m", 1, 4}};
      });
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  const int port = (*exposer)->port();
  ASSERT_GT(port, 0);
  const std::string body = HttpGet(port, "/metrics");
  EXPECT_THAT(body, HasSubstr("200 OK"));
  EXPECT_EQ(Sample(body, absl::StrCat(kPendingRequests.name, R"({model="m",version="1"})")), 4)
      << body;
  EXPECT_EQ(Sample(body, absl::StrCat(kBatchSize.name, R"(_sum{model="m",version="1"})")), 2)
      << body;
  EXPECT_FALSE(std::isnan(Sample(body, kProcessResidentMemory.name))) << body;

  // The port is taken: a value, not an exception.
  absl::StatusOr<std::unique_ptr<MetricsExposer>> second =
      MetricsExposer::Start("127.0.0.1", port, *metrics, [] { return std::vector<QueueDepth>{}; });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

}  // namespace
}  // namespace gradserve::serving
