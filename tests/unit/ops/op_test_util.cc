#include "tests/unit/ops/op_test_util.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "graph/builder/array_ops.h"
#include "graph/status.h"
#include "runtime/session.h"

namespace gradserve::testing {

uint64_t Seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("GRADSERVE_TEST_SEED");
    const uint64_t s = env != nullptr
                           ? std::strtoull(env, nullptr, 10)
                           : static_cast<uint64_t>(
                                 std::chrono::steady_clock::now().time_since_epoch().count());
    std::printf("random seed: GRADSERVE_TEST_SEED=%llu\n", static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

std::mt19937_64& Rng() {
  static std::mt19937_64 rng(Seed());
  return rng;
}

RefTensor Random(const Shape& shape, double lo, double hi) {
  RefTensor r{shape, std::vector<double>(shape.num_elements())};
  std::uniform_real_distribution<double> dist(lo, hi);
  for (double& x : r.v) x = dist(Rng());
  return r;
}

RefTensor RandomInt(const Shape& shape, int64_t lo, int64_t hi) {
  RefTensor r{shape, std::vector<double>(shape.num_elements())};
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  for (double& x : r.v) x = static_cast<double>(dist(Rng()));
  return r;
}

RefTensor Values(const Shape& shape, std::vector<double> v) { return RefTensor{shape, std::move(v)}; }
RefTensor Scalar(double v) { return RefTensor{Shape{}, {v}}; }

RefTensor Map(const RefTensor& x, const std::function<double(double)>& f) {
  RefTensor out = x;
  for (double& v : out.v) v = f(v);
  return out;
}

std::vector<int64_t> Strides(const Shape& shape) {
  std::vector<int64_t> s(shape.rank(), 1);
  for (int i = shape.rank() - 2; i >= 0; --i) s[i] = s[i + 1] * shape.dim(i + 1);
  return s;
}

RefTensor Broadcast2(const RefTensor& x, const RefTensor& y,
                     const std::function<double(double, double)>& f) {
  const Shape out_shape = BroadcastShapes(x.shape, y.shape).value();
  const int rank = out_shape.rank();
  RefTensor out{out_shape, std::vector<double>(out_shape.num_elements())};
  const auto os = Strides(out_shape), xs = Strides(x.shape), ys = Strides(y.shape);
  for (int64_t i = 0; i < out.size(); ++i) {
    int64_t xi = 0, yi = 0, rem = i;
    for (int d = 0; d < rank; ++d) {
      const int64_t idx = rem / os[d];
      rem %= os[d];
      const int dx = x.rank() - rank + d, dy = y.rank() - rank + d;
      if (dx >= 0 && x.dim(dx) != 1) xi += idx * xs[dx];
      if (dy >= 0 && y.dim(dy) != 1) yi += idx * ys[dy];
    }
    out.v[i] = f(x.v[xi], y.v[yi]);
  }
  return out;
}

Tensor ToTensor(const RefTensor& r, DType dtype) {
  Tensor t(dtype, r.shape);
  (void)DispatchDType(dtype, [&]<typename T>() -> absl::Status {
    T* p = t.data<T>();
    for (int64_t i = 0; i < r.size(); ++i) p[i] = static_cast<T>(r.v[i]);
    return absl::OkStatus();
  });
  return t;
}

RefTensor FromTensor(const Tensor& t) {
  RefTensor r{t.shape(), std::vector<double>(t.num_elements())};
  (void)DispatchDType(t.dtype(), [&]<typename T>() -> absl::Status {
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.num_elements(); ++i) r.v[i] = static_cast<double>(p[i]);
    return absl::OkStatus();
  });
  return r;
}

absl::StatusOr<OpResult> RunOp(const std::string& op, const std::vector<Tensor>& inputs,
                               const AttrMap& attrs, const std::vector<bool>& constant,
                               const SessionOptions& options) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  std::vector<Output> in;
  FeedList feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool is_const = i < constant.size() && constant[i];
    const std::string name = "in" + std::to_string(i);
    if (is_const) {
      in.push_back(ops::Const(s.WithName(name), inputs[i]));
    } else {
      in.push_back(ops::Placeholder(s.WithName(name), inputs[i].dtype(), inputs[i].shape()));
      feeds.emplace_back(name + ":0", inputs[i]);
    }
  }
  Node* node = s.WithName("op").AddNode(op, in, attrs);
  GS_RETURN_IF_ERROR(s.status());
  OpResult result;
  std::vector<std::string> fetches;
  for (int i = 0; i < node->num_outputs(); ++i) {
    fetches.push_back("op:" + std::to_string(i));
    result.inferred_shapes.push_back(node->output_shape(i));
  }
  GS_ASSIGN_OR_RETURN(auto session, Session::Create(std::move(graph), options));
  GS_RETURN_IF_ERROR(session->Run(feeds, fetches, {}, &result.outputs));
  return result;
}

}  // namespace gradserve::testing
