#include "clients/perf_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gradserve::client {
namespace {

ServerDelta Totals(const inference::ModelStatisticsResponse& r) {
  ServerDelta t;
  for (const inference::ModelStatistics& m : r.model_stats()) {
    const inference::InferStatistics& s = m.inference_stats();
    t.requests += s.success().count();
    t.inferences += m.inference_count();
    t.executions += m.execution_count();
    t.request_ns += s.success().ns();
    t.queue_ns += s.queue().ns();
    t.compute_input_ns += s.compute_input().ns();
    t.compute_infer_ns += s.compute_infer().ns();
    t.compute_output_ns += s.compute_output().ns();
  }
  return t;
}

uint64_t Sub(uint64_t after, uint64_t before) { return after >= before ? after - before : 0; }

double P99Us(const Window& w) {
  std::vector<int64_t> sorted = w.latencies_ns;
  std::sort(sorted.begin(), sorted.end());
  return Percentile(sorted, 99) / 1e3;
}

// Whether every value lies within +-pct% of their average.
bool WithinPercent(const std::vector<double>& values, double pct) {
  const double avg = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  for (double v : values) {
    if (v < avg * (1 - pct / 100) || v > avg * (1 + pct / 100)) return false;
  }
  return true;
}

}  // namespace

int64_t Percentile(const std::vector<int64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  // Nearest rank: the smallest value with at least p% of the values <= it.
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted_ns.size()));
  const size_t index = static_cast<size_t>(std::max(rank, 1.0)) - 1;
  return sorted_ns[std::min(index, sorted_ns.size() - 1)];
}

LatencySummary Summarize(std::vector<int64_t> latencies_ns) {
  LatencySummary s;
  s.count = static_cast<int64_t>(latencies_ns.size());
  if (latencies_ns.empty()) return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  s.avg_us = std::accumulate(latencies_ns.begin(), latencies_ns.end(), 0.0) / s.count / 1e3;
  s.p50_us = Percentile(latencies_ns, 50) / 1e3;
  s.p90_us = Percentile(latencies_ns, 90) / 1e3;
  s.p95_us = Percentile(latencies_ns, 95) / 1e3;
  s.p99_us = Percentile(latencies_ns, 99) / 1e3;
  return s;
}

ServerDelta DiffStatistics(const inference::ModelStatisticsResponse& before,
                           const inference::ModelStatisticsResponse& after) {
  const ServerDelta b = Totals(before), a = Totals(after);
  ServerDelta d;
  d.requests = Sub(a.requests, b.requests);
  d.inferences = Sub(a.inferences, b.inferences);
  d.executions = Sub(a.executions, b.executions);
  d.request_ns = Sub(a.request_ns, b.request_ns);
  d.queue_ns = Sub(a.queue_ns, b.queue_ns);
  d.compute_input_ns = Sub(a.compute_input_ns, b.compute_input_ns);
  d.compute_infer_ns = Sub(a.compute_infer_ns, b.compute_infer_ns);
  d.compute_output_ns = Sub(a.compute_output_ns, b.compute_output_ns);
  return d;
}

ServerDelta operator+(const ServerDelta& a, const ServerDelta& b) {
  ServerDelta s;
  s.requests = a.requests + b.requests;
  s.inferences = a.inferences + b.inferences;
  s.executions = a.executions + b.executions;
  s.request_ns = a.request_ns + b.request_ns;
  s.queue_ns = a.queue_ns + b.queue_ns;
  s.compute_input_ns = a.compute_input_ns + b.compute_input_ns;
  s.compute_infer_ns = a.compute_infer_ns + b.compute_infer_ns;
  s.compute_output_ns = a.compute_output_ns + b.compute_output_ns;
  return s;
}

Window Merge(const std::vector<Window>& windows) {
  Window m;
  for (const Window& w : windows) {
    m.seconds += w.seconds;
    m.completed += w.completed;
    m.errors += w.errors;
    m.latencies_ns.insert(m.latencies_ns.end(), w.latencies_ns.begin(), w.latencies_ns.end());
    m.server = m.server + w.server;
  }
  return m;
}

bool IsStable(const std::vector<Window>& windows, double stability_pct, size_t window) {
  if (window == 0 || windows.size() < window) return false;
  std::vector<double> throughput, p99;
  for (size_t i = windows.size() - window; i < windows.size(); ++i) {
    if (windows[i].completed == 0) return false;
    throughput.push_back(windows[i].RequestsPerSecond());
    p99.push_back(P99Us(windows[i]));
  }
  return WithinPercent(throughput, stability_pct) && WithinPercent(p99, stability_pct);
}

absl::StatusOr<std::vector<double>> ParseRange(absl::string_view text, absl::string_view flag) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", text, ": ", why));
  };
  std::vector<double> values;
  auto parse = [&](absl::string_view part, double* out) {
    return absl::SimpleAtod(part, out) && std::isfinite(*out) && *out > 0;
  };
  if (absl::StrContains(text, ',')) {
    for (absl::string_view part : absl::StrSplit(text, ',')) {
      double v;
      if (!parse(part, &v)) return bad(absl::StrCat("'", part, "' is not a positive number"));
      values.push_back(v);
    }
    return values;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() > 3) return bad("expected START:END:STEP");
  double range[3] = {0, 0, 1};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parse(parts[i], &range[i])) {
      return bad(absl::StrCat("'", parts[i], "' is not a positive number"));
    }
  }
  if (parts.size() == 1) range[1] = range[0];
  if (range[1] < range[0]) return bad("END is below START");
  // A small epsilon so that 0.1:0.3:0.1 includes 0.3 despite rounding.
  for (double v = range[0]; v <= range[1] * (1 + 1e-9); v += range[2]) values.push_back(v);
  return values;
}

absl::StatusOr<ShapeSpec> ParseShapeSpec(absl::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat("--shape ", text, ": expected NAME:d1,d2,..."));
  }
  ShapeSpec spec{std::string(text.substr(0, colon)), {}};
  for (absl::string_view part : absl::StrSplit(text.substr(colon + 1), ',')) {
    int64_t d;
    if (!absl::SimpleAtoi(part, &d) || d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shape ", text, ": '", part, "' is not a dimension"));
    }
    spec.dims.push_back(d);
  }
  return spec;
}

}  // namespace gradserve::client
