// gradserve-perf's figures: percentiles, server deltas, the stability rule and
// the range and shape flags.
#include "clients/perf_stats.h"

#include <numeric>

#include "gtest/gtest.h"

namespace gradserve::client {
namespace {

TEST(PerfStatsTest, PercentilesAreNearestRank) {
  std::vector<int64_t> v(100);
  std::iota(v.begin(), v.end(), 1);  // 1..100
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile({7}, 99), 7);
  EXPECT_EQ(Percentile({}, 50), 0);
  EXPECT_EQ(Percentile({10, 20, 30}, 50), 20);
  EXPECT_EQ(Percentile({10, 20, 30, 40}, 50), 20);
}

TEST(PerfStatsTest, SummarizeSortsAndConvertsToMicroseconds) {
  LatencySummary s = Summarize({3000, 1000, 2000, 4000});
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.avg_us, 2.5);
  EXPECT_DOUBLE_EQ(s.p50_us, 2.0);
  EXPECT_DOUBLE_EQ(s.p99_us, 4.0);
}

inference::ModelStatisticsResponse Stats(uint64_t requests, uint64_t inferences,
                                         uint64_t executions, uint64_t queue_ns,
                                         uint64_t infer_ns) {
  inference::ModelStatisticsResponse r;
  inference::ModelStatistics* m = r.add_model_stats();
  m->set_inference_count(inferences);
  m->set_execution_count(executions);
  m->mutable_inference_stats()->mutable_success()->set_count(requests);
  m->mutable_inference_stats()->mutable_success()->set_ns(queue_ns + infer_ns);
  m->mutable_inference_stats()->mutable_queue()->set_ns(queue_ns);
  m->mutable_inference_stats()->mutable_compute_infer()->set_ns(infer_ns);
  return r;
}

TEST(PerfStatsTest, ServerDeltaAveragesPerRequest) {
  ServerDelta d =
      DiffStatistics(Stats(10, 10, 10, 1000, 5000), Stats(110, 410, 50, 201000, 405000));
  EXPECT_EQ(d.requests, 100u);
  EXPECT_DOUBLE_EQ(d.AvgQueueUs(), 2.0);
  EXPECT_DOUBLE_EQ(d.AvgComputeUs(), 4.0);
  EXPECT_DOUBLE_EQ(d.AvgRequestUs(), 6.0);
  EXPECT_DOUBLE_EQ(d.AvgBatchSize(), 10.0);
  // A reload resets the counters: no negative deltas.
  EXPECT_EQ(DiffStatistics(Stats(5, 5, 5, 1, 1), Stats(1, 1, 1, 1, 1)).requests, 0u);
  EXPECT_DOUBLE_EQ(ServerDelta().AvgBatchSize(), 0.0);
}

Window MakeWindow(int64_t completed, int64_t latency_ns) {
  Window w;
  w.seconds = 1;
  w.completed = completed;
  w.latencies_ns.assign(completed, latency_ns);
  return w;
}

TEST(PerfStatsTest, StableNeedsThreeWindowsWithinPercent) {
  std::vector<Window> w = {MakeWindow(100, 1000), MakeWindow(105, 1000)};
  EXPECT_FALSE(IsStable(w, 10));  // only two
  w.push_back(MakeWindow(95, 1050));
  EXPECT_TRUE(IsStable(w, 10));
  w.push_back(MakeWindow(150, 1000));  // throughput jumps
  EXPECT_FALSE(IsStable(w, 10));
  std::vector<Window> slow = {MakeWindow(100, 1000), MakeWindow(100, 1000), MakeWindow(100, 2000)};
  EXPECT_FALSE(IsStable(slow, 10));  // p99 differs
  EXPECT_TRUE(IsStable(slow, 60));
}

TEST(PerfStatsTest, MergePoolsWindows) {
  Window m = Merge({MakeWindow(10, 1000), MakeWindow(30, 3000)});
  EXPECT_DOUBLE_EQ(m.seconds, 2);
  EXPECT_EQ(m.completed, 40);
  EXPECT_DOUBLE_EQ(m.RequestsPerSecond(), 20);
  EXPECT_EQ(m.latencies_ns.size(), 40u);
}

TEST(PerfStatsTest, ParsesRanges) {
  EXPECT_EQ(*ParseRange("1:4:3", "--c"), (std::vector<double>{1, 4}));
  EXPECT_EQ(*ParseRange("2:8:2", "--c"), (std::vector<double>{2, 4, 6, 8}));
  EXPECT_EQ(*ParseRange("3", "--c"), (std::vector<double>{3}));
  EXPECT_EQ(*ParseRange("1:3", "--c"), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(*ParseRange("1,8,64", "--c"), (std::vector<double>{1, 8, 64}));
  EXPECT_EQ(ParseRange("0.1:0.3:0.1", "--r")->size(), 3u);
  for (const char* bad : {"", "0", "4:1", "1:2:0", "a", "1:2:3:4", "1,,2"}) {
    absl::StatusOr<std::vector<double>> r = ParseRange(bad, "--concurrency-range");
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--concurrency-range"), std::string::npos);
  }
}

TEST(PerfStatsTest, ParsesShapes) {
  absl::StatusOr<ShapeSpec> s = ParseShapeSpec("pixels:8,8,1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name, "pixels");
  EXPECT_EQ(s->dims, (std::vector<int64_t>{8, 8, 1}));
  EXPECT_FALSE(ParseShapeSpec("pixels").ok());
  EXPECT_FALSE(ParseShapeSpec("pixels:8,x").ok());
  EXPECT_FALSE(ParseShapeSpec(":8").ok());
}

}  // namespace
}  // namespace gradserve::client
