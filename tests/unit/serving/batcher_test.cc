#include "serving/batcher.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::serving {
namespace {

using ::testing::HasSubstr;

// out = 2 * in + 1, and the batch's row count recorded.
struct DoublingModel {
  std::atomic<int> batches{0};
  std::atomic<int64_t> max_rows{0};
  absl::Notification* gate = nullptr;  // runs wait for it when set

  BatchRunFn Fn() {
    return [this](const TensorMap& in,
                  const std::vector<std::string>& outputs) -> absl::StatusOr<BatchOutput> {
      if (gate != nullptr) gate->WaitForNotification();
      const Tensor& x = in.at("x");
      Tensor y(DType::kFloat, x.shape());
      for (int64_t i = 0; i < x.num_elements(); ++i)
        y.data<float>()[i] = 2 * x.data<float>()[i] + 1;
      ++batches;
      int64_t rows = x.rank() > 0 ? x.dim(0) : 1;
      int64_t prev = max_rows.load();
      while (rows > prev && !max_rows.compare_exchange_weak(prev, rows)) {
      }
      BatchOutput out;
      out.outputs["y"] = y;
      out.generation = 7;
      return out;
    };
  }
};

BatchTask Task(Tensor x, std::function<void(absl::StatusOr<TaskResult>)> done) {
  BatchTask t;
  t.inputs["x"] = std::move(x);
  t.outputs = {"y"};
  t.done = std::move(done);
  return t;
}

Tensor Rows(int64_t rows, int64_t cols, float base) {
  Tensor t(DType::kFloat, Shape{rows, cols});
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = base + static_cast<float>(i);
  return t;
}

TEST(DynamicBatcherTest, ConcurrentClientsGetExactlyTheirOwnRows) {
  DoublingModel model;
  auto batcher = DynamicBatcher::Create(
      {.max_batch_size = 32, .max_queue_delay = absl::Milliseconds(5), .num_workers = 2},
      model.Fn());
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  constexpr int kClients = 64;
  std::vector<std::thread> clients;
  std::atomic<int> wrong{0}, batched{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int r = 0; r < 5; ++r) {
        const int64_t rows = 1 + (c + r) % 3;
        Tensor x = Rows(rows, 4, static_cast<float>(1000 * c + 100 * r));
        absl::Notification done;
        absl::StatusOr<TaskResult> result;
        ASSERT_TRUE((*batcher)
                        ->Enqueue(Task(x,
                                       [&](absl::StatusOr<TaskResult> res) {
                                         result = std::move(res);
                                         done.Notify();
                                       }))
                        .ok());
        done.WaitForNotification();
        ASSERT_TRUE(result.ok()) << result.status();
        const Tensor& y = result->outputs.at("y");
        if (y.shape() != x.shape()) ++wrong;
        for (int64_t i = 0; i < x.num_elements(); ++i) {
          if (y.data<float>()[i] != 2 * x.data<float>()[i] + 1) ++wrong;
        }
        if (result->batch_size > rows) ++batched;
        EXPECT_EQ(result->generation, 7);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(batched.load(), 0) << "no request ever shared a batch";
  EXPECT_LE(model.max_rows.load(), 32);
  EXPECT_LT(model.batches.load(), kClients * 5);
}

TEST(DynamicBatcherTest, FullQueueRejectsAtOnce) {
  DoublingModel model;
  absl::Notification gate;
  model.gate = &gate;
  auto batcher = DynamicBatcher::Create({.max_batch_size = 1, .max_queue_size = 2}, model.Fn());
  ASSERT_TRUE(batcher.ok());
  std::atomic<int> ok{0};
  auto count = [&](absl::StatusOr<TaskResult> r) { ok += r.ok(); };
  ASSERT_TRUE((*batcher)->Enqueue(Task(Rows(1, 2, 0), count)).ok());
  while ((*batcher)->running() == 0) absl::SleepFor(absl::Milliseconds(1));  // first one runs
  ASSERT_TRUE((*batcher)->Enqueue(Task(Rows(1, 2, 0), count)).ok());
  ASSERT_TRUE((*batcher)->Enqueue(Task(Rows(1, 2, 0), count)).ok());
  absl::Status full = (*batcher)->Enqueue(Task(Rows(1, 2, 0), count));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("queue is full (max_queue_size 2)"));
  gate.Notify();
  (*batcher)->Drain();
  EXPECT_EQ(ok.load(), 3);
}

TEST(DynamicBatcherTest, ExpiredRequestIsDroppedBeforeItRuns) {
  DoublingModel model;
  absl::Notification gate;
  model.gate = &gate;
  auto batcher = DynamicBatcher::Create({.max_batch_size = 1}, model.Fn());
  ASSERT_TRUE(batcher.ok());
  ASSERT_TRUE((*batcher)->Enqueue(Task(Rows(1, 2, 0), [](auto) {})).ok());
  while ((*batcher)->running() == 0) absl::SleepFor(absl::Milliseconds(1));
  absl::StatusOr<TaskResult> late;
  absl::Notification done;
  BatchTask t = Task(Rows(1, 2, 0), [&](absl::StatusOr<TaskResult> r) {
    late = std::move(r);
    done.Notify();
  });
  t.deadline = absl::Now() + absl::Milliseconds(20);
  ASSERT_TRUE((*batcher)->Enqueue(std::move(t)).ok());
  absl::SleepFor(absl::Milliseconds(40));
  gate.Notify();
  done.WaitForNotification();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(late.status().message(), HasSubstr("it was not run"));
  (*batcher)->Drain();
  EXPECT_EQ(model.batches.load(), 1);  // only the first request ran
}

TEST(DynamicBatcherTest, RejectsMalformedBatches) {
  DoublingModel model;
  auto batcher = DynamicBatcher::Create({.max_batch_size = 4}, model.Fn());
  ASSERT_TRUE(batcher.ok());
  absl::Status big = (*batcher)->Enqueue(Task(Rows(5, 2, 0), [](auto) {}));
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.message(), HasSubstr("batch of 5 rows; the model's max_batch_size is 4"));
  BatchTask ragged = Task(Rows(2, 2, 0), [](auto) {});
  ragged.inputs["z"] = Rows(3, 2, 0);
  EXPECT_THAT((*batcher)->Enqueue(std::move(ragged)).message(),
              HasSubstr("inputs disagree on the batch size"));
  EXPECT_THAT((*batcher)->Enqueue(Task(Tensor::Scalar<float>(1), [](auto) {})).message(),
              HasSubstr("has no batch dimension"));
  EXPECT_FALSE(
      DynamicBatcher::Create({.max_batch_size = 4, .preferred_batch_sizes = {8}}, model.Fn()).ok());
  EXPECT_FALSE(DynamicBatcher::Create({.num_workers = 0}, model.Fn()).ok());
}

TEST(DynamicBatcherTest, PreferredBatchSizeRunsWithoutWaitingForTheDelay) {
  DoublingModel model;
  absl::Notification gate;
  model.gate = &gate;
  // A delay no test waits out: only the preferred size can start these batches.
  auto batcher = DynamicBatcher::Create(
      {.max_batch_size = 8, .max_queue_delay = absl::Hours(1), .preferred_batch_sizes = {3}},
      model.Fn());
  ASSERT_TRUE(batcher.ok());
  std::atomic<int> done{0};
  std::vector<int64_t> sizes(3);
  absl::Mutex mu;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*batcher)
                    ->Enqueue(Task(Rows(1, 2, i),
                                   [&, i](absl::StatusOr<TaskResult> r) {
                                     ASSERT_TRUE(r.ok());
                                     sizes[i] = r->batch_size;
                                     ++done;
                                   }))
                    .ok());
  }
  gate.Notify();
  for (int i = 0; i < 5000 && done.load() < 3; ++i) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(sizes, std::vector<int64_t>({3, 3, 3}));
}

TEST(DynamicBatcherTest, DrainRunsQueuedWorkAndThenRefuses) {
  DoublingModel model;
  auto batcher =
      DynamicBatcher::Create({.max_batch_size = 8, .max_queue_delay = absl::Hours(1)}, model.Fn());
  ASSERT_TRUE(batcher.ok());
  std::atomic<int> ok{0};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE((*batcher)->Enqueue(Task(Rows(1, 2, i), [&](auto r) { ok += r.ok(); })).ok());
  }
  (*batcher)->Drain();
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ((*batcher)->Enqueue(Task(Rows(1, 2, 0), [](auto) {})).code(),
            absl::StatusCode::kUnavailable);
}

TEST(DynamicBatcherTest, IncompatibleShapesAreNotBatchedTogether) {
  DoublingModel model;
  absl::Notification gate;
  model.gate = &gate;
  auto batcher = DynamicBatcher::Create({.max_batch_size = 8}, model.Fn());
  ASSERT_TRUE(batcher.ok());
  std::vector<int64_t> sizes(3, -1);
  std::atomic<int> done{0};
  const int64_t cols[] = {2, 3, 3};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*batcher)
                    ->Enqueue(Task(Rows(1, cols[i], 0),
                                   [&, i](absl::StatusOr<TaskResult> r) {
                                     ASSERT_TRUE(r.ok()) << r.status();
                                     EXPECT_EQ(r->outputs.at("y").dim(1), cols[i]);
                                     sizes[i] = r->batch_size;
                                     ++done;
                                   }))
                    .ok());
  }
  gate.Notify();
  (*batcher)->Drain();
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(sizes[0], 1);
}

TEST(DynamicBatcherTest, ModelWithoutBatchDimensionRunsEachRequestAlone) {
  DoublingModel model;
  auto batcher = DynamicBatcher::Create({.max_batch_size = 0, .num_workers = 2}, model.Fn());
  ASSERT_TRUE(batcher.ok());
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE((*batcher)
                    ->Enqueue(Task(Rows(3, 2, i),
                                   [&](absl::StatusOr<TaskResult> r) {
                                     ok += r.ok() && r->batch_size == 1 &&
                                           r->outputs.at("y").dim(0) == 3;
                                   }))
                    .ok());
  }
  (*batcher)->Drain();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(model.batches.load(), 6);
}

TEST(DynamicBatcherTest, WithoutCombiningEachRequestRunsAsSent) {
  DoublingModel model;
  absl::Notification gate;
  model.gate = &gate;
  auto batcher =
      DynamicBatcher::Create({.max_batch_size = 8, .combine_requests = false}, model.Fn());
  ASSERT_TRUE(batcher.ok());
  std::vector<int64_t> sizes(4, -1);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*batcher)
                    ->Enqueue(Task(Rows(1 + i % 2, 2, i),
                                   [&, i](absl::StatusOr<TaskResult> r) {
                                     ASSERT_TRUE(r.ok());
                                     sizes[i] = r->batch_size;
                                   }))
                    .ok());
  }
  gate.Notify();
  (*batcher)->Drain();
  EXPECT_EQ(sizes, std::vector<int64_t>({1, 2, 1, 2}));
  EXPECT_EQ(model.batches.load(), 4);
}

TEST(DynamicBatcherTest, ModelErrorsReachEveryTaskOfTheBatch) {
  auto batcher = DynamicBatcher::Create(
      {.max_batch_size = 8, .max_queue_delay = absl::Milliseconds(50)},
      [](const TensorMap&, const std::vector<std::string>&) -> absl::StatusOr<BatchOutput> {
        return absl::InvalidArgumentError("node 'x': bad value");
      });
  ASSERT_TRUE(batcher.ok());
  std::atomic<int> errors{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*batcher)
                    ->Enqueue(Task(Rows(1, 2, i),
                                   [&](absl::StatusOr<TaskResult> r) {
                                     errors += r.status().message() == "node 'x': bad value";
                                   }))
                    .ok());
  }
  (*batcher)->Drain();
  EXPECT_EQ(errors.load(), 3);
}

// Note [Graph batch sizes]: a batch grown to a graph's size keeps its rows and
// gets zero rows, for any dtype (bytes are copied), in the given memory.
TEST(PadBatchTest, KeepsTheRowsAndAddsZeroRows) {
  TensorMap batch;
  batch["x"] = Rows(2, 3, 1.0f);
  batch["ids"] = Tensor::FromVector<int64_t>({7, -8});
  batch["flags"] = Tensor::FromVector<uint8_t>({1, 1, 1, 1}, Shape{2, 1, 2});
  for (Allocator* allocator : {static_cast<Allocator*>(nullptr), HostAllocator()}) {
    TensorMap padded = PadBatch(batch, 5, allocator);
    ASSERT_EQ(padded.size(), 3u);
    const Tensor& x = padded.at("x");
    EXPECT_EQ(x.dtype(), DType::kFloat);
    EXPECT_EQ(x.shape(), Shape({5, 3}));
    if (allocator != nullptr) {
      EXPECT_EQ(x.allocator(), allocator);
    }
    for (int64_t i = 0; i < 15; ++i) EXPECT_EQ(x.data<float>()[i], i < 6 ? 1.0f + i : 0.0f) << i;
    EXPECT_EQ(padded.at("ids").shape(), Shape({5}));
    EXPECT_THAT(padded.at("ids").span<int64_t>(), ::testing::ElementsAre(7, -8, 0, 0, 0));
    const Tensor& flags = padded.at("flags");
    EXPECT_EQ(flags.shape(), Shape({5, 1, 2}));
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(flags.data<uint8_t>()[i], i < 4 ? 1 : 0) << i;
    // The batch itself is untouched.
    EXPECT_EQ(batch.at("x").dim(0), 2);
  }
}

TEST(PadBatchTest, ABatchAlreadyAtTheSizeIsCopiedAsItIs) {
  TensorMap batch;
  batch["x"] = Rows(4, 2, 0.5f);
  TensorMap padded = PadBatch(batch, 4, nullptr);
  const Tensor& x = padded.at("x");
  EXPECT_FALSE(x.SharesBufferWith(batch.at("x")));
  EXPECT_EQ(x.shape(), Shape({4, 2}));
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(x.data<float>()[i], 0.5f + i);
}

}  // namespace
}  // namespace gradserve::serving
