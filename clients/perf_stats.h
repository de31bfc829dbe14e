// The figures of gradserve-perf (clients/perf.cc): latency percentiles, one
// measurement window's client and server figures, the stability rule that
// ends a load level, and the parsing of its range and shape flags. Kept apart
// from the load generator so they can be tested without a server.
//
// Conventions follow Triton's perf_analyzer: percentiles are nearest-rank;
// a level is stable when, over the last `window` measurements, each one's
// throughput and p99 latency lie within +-stability_pct% of those windows'
// average; the level's figures then merge those windows.
//
// Thread-safe (no state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/grpc_service.pb.h"

namespace gradserve::client {

// Client-side latency figures, in microseconds.
struct LatencySummary {
  int64_t count = 0;
  double avg_us = 0, p50_us = 0, p90_us = 0, p95_us = 0, p99_us = 0;
};

// Nearest-rank percentile `p` (0 < p <= 100) of `sorted_ns` (ascending); 0
// when empty.
int64_t Percentile(const std::vector<int64_t>& sorted_ns, double p);
// Sorts `latencies_ns` and summarizes them.
LatencySummary Summarize(std::vector<int64_t> latencies_ns);

// The server's side of a window: differences of two ModelStatistics snapshots
// of the same model version (the later minus the earlier).
struct ServerDelta {
  uint64_t requests = 0;    // successful requests (inference_stats.success.count)
  uint64_t inferences = 0;  // rows (inference_count)
  uint64_t executions = 0;  // model runs (execution_count)
  uint64_t request_ns = 0, queue_ns = 0, compute_input_ns = 0, compute_infer_ns = 0,
           compute_output_ns = 0;

  double AvgRequestUs() const { return PerRequestUs(request_ns); }
  double AvgQueueUs() const { return PerRequestUs(queue_ns); }
  // compute input + infer + output.
  double AvgComputeUs() const {
    return PerRequestUs(compute_input_ns + compute_infer_ns + compute_output_ns);
  }
  double AvgComputeInferUs() const { return PerRequestUs(compute_infer_ns); }
  // Rows per model run; 0 when nothing ran.
  double AvgBatchSize() const {
    return executions == 0 ? 0 : static_cast<double>(inferences) / executions;
  }
  double PerRequestUs(uint64_t ns) const { return requests == 0 ? 0 : ns / 1e3 / requests; }
};

// Sums the statistics of every version in each response (one model's), then
// subtracts. Counters that went backwards (a reload reset them) give 0.
ServerDelta DiffStatistics(const inference::ModelStatisticsResponse& before,
                           const inference::ModelStatisticsResponse& after);
ServerDelta operator+(const ServerDelta& a, const ServerDelta& b);

// One measurement window.
struct Window {
  double seconds = 0;
  int64_t completed = 0;              // successful requests that finished in the window
  int64_t errors = 0;                 // failed requests that finished in the window
  std::vector<int64_t> latencies_ns;  // of the successful ones
  ServerDelta server;

  double RequestsPerSecond() const { return seconds > 0 ? completed / seconds : 0; }
};

// The merge of several windows (their counts, latencies and deltas pooled).
Window Merge(const std::vector<Window>& windows);

// Whether the last `window` entries of `windows` agree within stability_pct
// on throughput and on p99 latency (false with fewer entries).
bool IsStable(const std::vector<Window>& windows, double stability_pct, size_t window = 3);

// "START:END:STEP" (END and STEP optional: "4" = 4:4:1, "1:8" = 1:8:1) or a
// comma list "1,8,64". Values must be positive, END >= START, STEP > 0.
// InvalidArgument naming `flag` otherwise.
absl::StatusOr<std::vector<double>> ParseRange(absl::string_view text, absl::string_view flag);

// "NAME:d1,d2,..." (perf_analyzer's --shape): the input's dimensions other
// than the batch dimension.
struct ShapeSpec {
  std::string name;
  std::vector<int64_t> dims;
};
absl::StatusOr<ShapeSpec> ParseShapeSpec(absl::string_view text);

}  // namespace gradserve::client
