#include "runtime/session.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "unsupported/Eigen/CXX11/ThreadPool"

namespace gradserve {

Session::~Session() = default;

absl::StatusOr<std::unique_ptr<Session>> Session::Create(const GraphDef& graph_def,
                                                         const SessionOptions& options) {
  GS_ASSIGN_OR_RETURN(std::unique_ptr<Graph> graph, Graph::FromGraphDef(graph_def));
  return Create(std::move(graph), options);
}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(std::unique_ptr<Graph> graph,
                                                         const SessionOptions& options) {
  if (options.inter_op_threads < 0 || options.intra_op_threads < 0) {
    return absl::InvalidArgumentError("thread counts must be >= 0");
  }
  std::unique_ptr<Session> session(new Session);
  session->graph_ = std::move(graph);
  session->on_placement_ = options.on_placement;
  if (options.gpu.has_value()) {
    GS_ASSIGN_OR_RETURN(std::unique_ptr<Device> gpu, CreateGpuDevice(*options.gpu));
    session->devices_.Add(std::move(gpu));
  }
  GS_ASSIGN_OR_RETURN(std::unique_ptr<CpuDevice> cpu,
                      CpuDevice::Create({.intra_op_threads = options.intra_op_threads}));
  session->devices_.Add(std::move(cpu));
  int inter = options.inter_op_threads;
  if (inter == 0) inter = std::max(1u, std::thread::hardware_concurrency());
  if (inter > 1) session->inter_op_pool_ = std::make_unique<Eigen::ThreadPool>(inter);
  return session;
}

absl::StatusOr<std::shared_ptr<const Executor>> Session::GetExecutor(
    const FeedList& feeds, const std::vector<std::string>& fetches,
    const std::vector<std::string>& targets, const std::vector<std::string>& fetch_devices) {
  // Feeds outside host memory and fetches wanted on a device (RunSignature::
  // feed_devices, fetch_devices) are part of the plan, so of the key.
  std::vector<Device*> feed_on(feeds.size(), nullptr), fetch_on(fetches.size(), nullptr);
  std::string key;
  for (size_t i = 0; i < feeds.size(); ++i) {
    const auto& [name, t] = feeds[i];
    absl::StrAppend(&key, name, ",");
    if (t.host_accessible()) continue;
    feed_on[i] = devices_.Find(t.device());
    if (feed_on[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("feed '", name, "' is on ", t.device(),
                                                     ", which this session does not use"));
    }
    absl::StrAppend(&key, "@", t.device(), ",");
  }
  key += "|";
  for (const auto& name : fetches) absl::StrAppend(&key, name, ",");
  key += "|";
  for (const auto& name : targets) absl::StrAppend(&key, name, ",");
  key += "|";
  GS_CHECK_ARG(fetch_devices.size() <= fetches.size(), fetch_devices.size(), " fetch devices for ",
               fetches.size(), " fetches");
  for (size_t k = 0; k < fetch_devices.size(); ++k) {
    if (fetch_devices[k].empty()) continue;
    fetch_on[k] = devices_.Find(fetch_devices[k]);
    GS_CHECK_ARG(fetch_on[k] != nullptr, "fetch '", fetches[k], "' is wanted on ", fetch_devices[k],
                 ", which this session does not use");
    absl::StrAppend(&key, k, "@", fetch_devices[k], ",");
  }

  const CachedExecutor* cached = nullptr;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = executors_.find(key);
    if (it != executors_.end()) cached = &it->second;
  }
  if (cached == nullptr) {
    RunSignature sig{
        .fetches = fetches, .targets = targets, .feed_devices = feed_on, .fetch_devices = fetch_on};
    for (const auto& [name, t] : feeds) sig.feeds.push_back(name);
    GS_ASSIGN_OR_RETURN(ExecutionPlan plan, BuildExecutionPlan(*graph_, devices_, sig));
    if (on_placement_) on_placement_(sig, plan);
    GS_ASSIGN_OR_RETURN(
        std::unique_ptr<Executor> executor,
        Executor::Create(plan, {.inter_op_pool = inter_op_pool_.get(), .resources = &resources_}));
    absl::MutexLock lock(&mu_);
    // Another thread may have built the same one meanwhile; keep the first.
    auto [it, inserted] = executors_.try_emplace(
        key, CachedExecutor{std::shared_ptr<const Executor>(std::move(executor)), plan.feeds});
    cached = &it->second;
  }
  // Validate feeds against what the graph declares.
  for (size_t i = 0; i < feeds.size(); ++i) {
    const NodeOut& out = cached->feeds[i];
    const Tensor& t = feeds[i].second;
    if (t.dtype() != out.node->output_type(out.index)) {
      return absl::InvalidArgumentError(
          absl::StrCat("feed '", feeds[i].first, "' is ", DTypeName(t.dtype()),
                       " but the graph expects ", DTypeName(out.node->output_type(out.index))));
    }
    const Shape& want = out.node->output_shape(out.index);
    if (!want.IsCompatibleWith(t.shape())) {
      return absl::InvalidArgumentError(
          absl::StrCat("feed '", feeds[i].first, "' has shape ", t.shape().DebugString(),
                       " but the graph expects ", want.DebugString()));
    }
  }
  return cached->executor;
}

absl::Status Session::Run(const FeedList& feeds, const std::vector<std::string>& fetches,
                          const std::vector<std::string>& targets, std::vector<Tensor>* outputs) {
  return Run(feeds, fetches, targets, outputs, RunOptions{}, nullptr);
}

absl::Status Session::Run(const FeedList& feeds, const std::vector<std::string>& fetches,
                          const std::vector<std::string>& targets, std::vector<Tensor>* outputs,
                          const RunOptions& options, RunMetadata* metadata) {
  GS_ASSIGN_OR_RETURN(std::shared_ptr<const Executor> executor,
                      GetExecutor(feeds, fetches, targets, options.fetch_devices));
  std::vector<Tensor> feed_values;
  feed_values.reserve(feeds.size());
  for (const auto& [name, t] : feeds) feed_values.push_back(t);
  return executor->Run(feed_values, outputs, options, metadata);
}

DeviceGraphStats Session::device_graph_stats() const {
  DeviceGraphStats total;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [key, cached] : executors_) {
    const DeviceGraphStats s = cached.executor->device_graph_stats();
    total.graphs += s.graphs;
    total.captures += s.captures;
    total.capture_failures += s.capture_failures;
    total.replays += s.replays;
    if (!s.last_failure.empty()) total.last_failure = s.last_failure;
  }
  return total;
}

}  // namespace gradserve
