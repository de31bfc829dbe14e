#include "serving/batcher.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve::serving {
namespace {

// Same input names, dtypes and dimensions after the first.
bool Compatible(const BatchTask& a, const BatchTask& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (auto ia = a.inputs.begin(), ib = b.inputs.begin(); ia != a.inputs.end(); ++ia, ++ib) {
    const Tensor& x = ia->second;
    const Tensor& y = ib->second;
    if (ia->first != ib->first || x.dtype() != y.dtype() || x.rank() != y.rank()) return false;
    for (int d = 1; d < x.rank(); ++d) {
      if (x.dim(d) != y.dim(d)) return false;
    }
  }
  return true;
}

// A tensor from `allocator`, or from host memory when it has none left
// (pinned memory is a bounded resource; pageable memory only slows the copy).
Tensor NewTensor(Allocator* allocator, DType dtype, const Shape& shape) {
  if (allocator != nullptr) {
    try {
      return Tensor(allocator, dtype, shape);
    } catch (const std::bad_alloc&) {
    }
  }
  return Tensor(dtype, shape);
}

// Concatenates each input of `tasks` along dimension 0, in `allocator`'s
// memory (nullptr: host memory, and one task's inputs as they are).
TensorMap Concatenate(const std::vector<BatchTask>& tasks, int64_t rows, Allocator* allocator) {
  if (tasks.size() == 1 && allocator == nullptr) return tasks[0].inputs;
  TensorMap out;
  for (const auto& [name, first] : tasks[0].inputs) {
    std::vector<int64_t> dims(first.shape().dims().begin(), first.shape().dims().end());
    if (tasks.size() > 1) dims[0] = rows;  // one task: as it is (maybe no batch dimension)
    Tensor t = NewTensor(allocator, first.dtype(), Shape(dims));
    char* dst = static_cast<char*>(t.raw_data());
    for (const BatchTask& task : tasks) {
      const Tensor& part = task.inputs.at(name);
      std::memcpy(dst, part.raw_data(), part.bytes());
      dst += part.bytes();
    }
    out.emplace(name, std::move(t));
  }
  return out;
}

}  // namespace

std::string RequestOutcome(const absl::Status& status) {
  if (status.ok()) return "success";
  return absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
}

TensorMap PadBatch(const TensorMap& inputs, int64_t rows, Allocator* allocator) {
  TensorMap out;
  for (const auto& [name, t] : inputs) {
    std::vector<int64_t> dims(t.shape().dims().begin(), t.shape().dims().end());
    dims[0] = rows;
    Tensor padded = NewTensor(allocator, t.dtype(), Shape(dims));
    char* dst = static_cast<char*>(padded.raw_data());
    std::memcpy(dst, t.raw_data(), t.bytes());
    std::memset(dst + t.bytes(), 0, padded.bytes() - t.bytes());
    out.emplace(name, std::move(padded));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<DynamicBatcher>> DynamicBatcher::Create(
    const BatcherOptions& options, BatchRunFn run) {
  GS_CHECK_ARG(options.max_batch_size >= 0, "max_batch_size must be >= 0, got ",
               options.max_batch_size);
  GS_CHECK_ARG(options.num_workers >= 1, "the instance count must be >= 1, got ",
               options.num_workers);
  GS_CHECK_ARG(options.max_queue_size >= 0, "max_queue_size must be >= 0, got ",
               options.max_queue_size);
  GS_CHECK_ARG(options.max_queue_delay >= absl::ZeroDuration(), "max_queue_delay must be >= 0");
  for (int64_t p : options.preferred_batch_sizes) {
    GS_CHECK_ARG(p >= 1 && p <= options.max_batch_size, "preferred batch size ", p,
                 " is outside [1, max_batch_size = ", options.max_batch_size, "]");
  }
  return std::unique_ptr<DynamicBatcher>(new DynamicBatcher(options, std::move(run)));
}

DynamicBatcher::DynamicBatcher(const BatcherOptions& options, BatchRunFn run)
    : options_(options), run_(std::move(run)) {
  for (int i = 0; i < options_.num_workers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

DynamicBatcher::~DynamicBatcher() {
  Drain();
  for (std::thread& t : workers_) t.join();
}

absl::Status DynamicBatcher::Enqueue(BatchTask task) {
  if (options_.max_batch_size > 0) {
    int64_t rows = -1;
    for (const auto& [name, t] : task.inputs) {
      GS_CHECK_ARG(t.rank() >= 1, "input '", name,
                   "' has no batch dimension, but the model batches (max_batch_size ",
                   options_.max_batch_size, ")");
      GS_CHECK_ARG(rows < 0 || t.dim(0) == rows, "inputs disagree on the batch size: '", name,
                   "' has ", t.dim(0), " rows, others ", rows);
      rows = t.dim(0);
    }
    GS_CHECK_ARG(rows <= options_.max_batch_size, "the request has a batch of ", rows,
                 " rows; the model's max_batch_size is ", options_.max_batch_size);
    task.rows = std::max<int64_t>(rows, 0);
  }
  task.enqueue_time = absl::Now();
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the model is being unloaded");
  if (options_.max_queue_size > 0 &&
      static_cast<int64_t>(queue_.size()) >= options_.max_queue_size) {
    return absl::ResourceExhaustedError(absl::StrCat("the model's queue is full (max_queue_size ",
                                                     options_.max_queue_size, "); retry later"));
  }
  queue_.push_back(std::move(task));
  work_cv_.Signal();
  return absl::OkStatus();
}

void DynamicBatcher::Drain() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  work_cv_.SignalAll();
  while (!queue_.empty() || running_ > 0) idle_cv_.Wait(&mu_);
}

int64_t DynamicBatcher::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

int64_t DynamicBatcher::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

std::vector<BatchTask> DynamicBatcher::NextBatch(std::vector<BatchTask>* expired,
                                                 absl::Time* wake_at) {
  const absl::Time now = absl::Now();
  while (!queue_.empty() && queue_.front().deadline <= now) {
    expired->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  *wake_at = absl::InfiniteFuture();
  if (queue_.empty()) return {};
  size_t take = 1;  // tasks in the batch
  bool closed = options_.max_batch_size == 0 || !options_.combine_requests;
  if (!closed) {
    std::set<int64_t> preferred(options_.preferred_batch_sizes.begin(),
                                options_.preferred_batch_sizes.end());
    int64_t rows = queue_[0].rows;
    size_t preferred_take = preferred.contains(rows) ? 1 : 0;
    while (take < queue_.size()) {
      const BatchTask& next = queue_[take];
      if (rows + next.rows > options_.max_batch_size || !Compatible(queue_[0], next)) {
        closed = true;
        break;
      }
      rows += next.rows;
      ++take;
      if (preferred.contains(rows)) preferred_take = take;
    }
    if (rows == options_.max_batch_size) closed = true;
    if (!closed && preferred_take > 0) {
      take = preferred_take;
      closed = true;
    }
  }
  const absl::Time due = queue_.front().enqueue_time + options_.max_queue_delay;
  if (!closed && !stopping_ && now < due) {
    *wake_at = due;
    return {};
  }
  std::vector<BatchTask> batch;
  for (size_t i = 0; i < take; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void DynamicBatcher::WorkerLoop() {
  while (true) {
    std::vector<BatchTask> batch, expired;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        absl::Time wake_at;
        batch = NextBatch(&expired, &wake_at);
        if (!batch.empty() || !expired.empty()) break;
        if (stopping_ && queue_.empty()) {
          idle_cv_.SignalAll();
          return;
        }
        work_cv_.WaitWithDeadline(&mu_, wake_at);
      }
      running_ += static_cast<int64_t>(batch.size() + expired.size());
    }
    const absl::Time now = absl::Now();
    for (BatchTask& task : expired) {
      task.done(absl::DeadlineExceededError(absl::StrCat(
          "the request's deadline passed after ", absl::FormatDuration(now - task.enqueue_time),
          " in the queue; it was not run")));
    }
    const int64_t n = static_cast<int64_t>(batch.size() + expired.size());
    if (!batch.empty()) RunBatch(std::move(batch));
    absl::MutexLock lock(&mu_);
    running_ -= n;
    idle_cv_.SignalAll();
  }
}

void DynamicBatcher::RunBatch(std::vector<BatchTask> tasks) {
  const absl::Time start = absl::Now();
  int64_t rows = 0;
  std::set<std::string> wanted;
  for (const BatchTask& t : tasks) {
    rows += t.rows;
    wanted.insert(t.outputs.begin(), t.outputs.end());
  }
  absl::StatusOr<BatchOutput> out = run_(Concatenate(tasks, rows, options_.batch_allocator),
                                         std::vector<std::string>(wanted.begin(), wanted.end()));
  const absl::Duration compute = absl::Now() - start;
  const bool split = options_.max_batch_size > 0 && options_.split_outputs;
  if (out.ok() && split) {
    for (const auto& [name, t] : out->outputs) {
      if (t.rank() < 1 || t.dim(0) != rows) {
        out = absl::InternalError(absl::StrCat("output '", name, "' has shape ",
                                               t.shape().DebugString(), " for a batch of ", rows,
                                               " rows; the model does not batch along dim 0"));
        break;
      }
    }
  }
  int64_t offset = 0;
  for (BatchTask& task : tasks) {
    if (!out.ok()) {
      task.done(out.status());
      continue;
    }
    TaskResult r;
    r.batch_size = options_.max_batch_size > 0 ? rows : 1;  // rows of the batch it ran in
    r.generation = out->generation;
    r.queue_time = start - task.enqueue_time;
    r.compute_time = compute;
    for (const std::string& name : task.outputs) {
      auto it = out->outputs.find(name);
      if (it == out->outputs.end()) continue;
      r.outputs.emplace(name, split && tasks.size() > 1
                                  ? it->second.Slice(offset, offset + task.rows)
                                  : it->second);
    }
    offset += task.rows;
    task.done(std::move(r));
  }
}

}  // namespace gradserve::serving
