#include "tests/unit/autodiff/grad_check_util.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "autodiff/gradients.h"
#include "graph/builder/ops.h"
#include "graph/status.h"
#include "runtime/session.h"

namespace gradserve::testing {
namespace {

// The dtype of the wrt inputs and of the outputs in L.
DType CheckedType(const GradCase& c) { return c.reference ? DType::kFloat : DType::kDouble; }

// The graph under test: placeholders (float64 for wrt inputs), the op, the
// symbolic gradient of L = sum_k <W_k, out_k>, and for order 2 the gradient of
// L2 = sum_i <V_i, dL/dx_i>. Evaluate() runs it at given input values.
class Harness {
 public:
  static absl::StatusOr<std::unique_ptr<Harness>> Create(const GradCase& c) {
    std::unique_ptr<Harness> h(new Harness);
    GS_RETURN_IF_ERROR(h->Build(c));
    return h;
  }

  // The scalar under test at `inputs` (its value) and its symbolic gradient.
  absl::Status Evaluate(const std::vector<Tensor>& inputs, double* value,
                        std::vector<RefTensor>* grads) {
    FeedList feeds;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!feed_names_[i].empty()) feeds.emplace_back(feed_names_[i], inputs[i]);
    }
    std::vector<Tensor> out;
    GS_RETURN_IF_ERROR(session_->Run(feeds, fetches_, {}, &out));
    // out: scalar-part tensors first (with their weights), then the gradients.
    *value = 0;
    for (size_t k = 0; k < weights_.size(); ++k) {
      const RefTensor t = FromTensor(out[k]);
      for (int64_t j = 0; j < t.size(); ++j) *value += t.v[j] * weights_[k].v[j];
    }
    grads->clear();
    for (size_t k = weights_.size(); k < out.size(); ++k) grads->push_back(FromTensor(out[k]));
    return absl::OkStatus();
  }

  // L = sum_k <W_k, out_k> from the float64 reference's outputs (order 1 only).
  double ReferenceLoss(const std::vector<RefTensor>& ref_outputs) const {
    double value = 0;
    for (size_t k = 0; k < weights_.size(); ++k) {
      const RefTensor& t = ref_outputs[outputs_[k]];
      for (int64_t j = 0; j < t.size(); ++j) value += t.v[j] * weights_[k].v[j];
    }
    return value;
  }

 private:
  absl::Status Build(const GradCase& c) {
    // Output shapes come from one forward run (they may depend on values).
    std::vector<Tensor> values;
    for (size_t i = 0; i < c.inputs.size(); ++i) values.push_back(ToTensor(c.inputs[i], InputType(c, i)));
    GS_ASSIGN_OR_RETURN(OpResult forward, RunOp(c.op, values, c.attrs, c.constant));

    auto graph = std::make_unique<Graph>();
    Scope s(graph.get());
    std::vector<Output> in;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      const bool is_const = i < c.constant.size() && c.constant[i];
      const std::string name = absl::StrCat("in", i);
      in.push_back(is_const ? ops::Const(s.WithName(name), values[i])
                            : ops::Placeholder(s.WithName(name), values[i].dtype(), values[i].shape()));
      feed_names_.push_back(is_const ? "" : name + ":0");
    }
    Node* node = s.WithName("op").AddNode(c.op, in, c.attrs);
    GS_RETURN_IF_ERROR(s.status());
    outputs_ = c.outputs;
    if (outputs_.empty()) {
      for (int o = 0; o < node->num_outputs(); ++o)
        if (node->output_type(o) == CheckedType(c)) outputs_.push_back(o);
    }
    std::vector<Output> ys, seeds, xs;
    for (int o : outputs_) {
      // Rounded to the output's dtype, so that the seed and W_k agree exactly.
      const Tensor w = ToTensor(Random(forward.outputs[o].shape()), node->output_type(o));
      ys.push_back(Output(node, o));
      seeds.push_back(ops::Const(s, w));
      weights_.push_back(FromTensor(w));
    }
    for (int i : c.wrt) xs.push_back(in[i]);
    GS_ASSIGN_OR_RETURN(std::vector<Output> grads, AddGradients(s, ys, xs, seeds));
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!grads[i].valid()) return absl::InternalError(absl::StrCat("input ", c.wrt[i], " not connected"));
    }
    if (c.order == 2) {
      // The scalar becomes L2 = sum_i <V_i, dL/dx_i>; differentiate it again.
      weights_.clear();
      ys = grads;
      seeds.clear();
      for (const Output& g : grads) {
        const RefTensor v = Random(values[c.wrt[seeds.size()]].shape());
        seeds.push_back(ops::Const(s, ToTensor(v, DType::kDouble)));
        weights_.push_back(v);
      }
      GS_ASSIGN_OR_RETURN(grads, AddGradients(s, ys, xs, seeds));
      // A gradient that does not depend on x (linear ops) has a zero second
      // derivative: "not connected" then means zeros, which the numeric side checks.
      for (size_t i = 0; i < grads.size(); ++i) {
        if (!grads[i].valid()) grads[i] = ops::ZerosLike(s, xs[i]);
      }
    }
    for (const Output& y : ys) fetches_.push_back(y.name());
    for (const Output& g : grads) fetches_.push_back(g.name());
    GS_ASSIGN_OR_RETURN(session_, Session::Create(std::move(graph), {.intra_op_threads = 1,
                                                                     .inter_op_threads = 1}));
    return absl::OkStatus();
  }

  static DType InputType(const GradCase& c, size_t i) {
    return i < c.input_dtypes.size() && c.input_dtypes[i] != DType::kInvalid ? c.input_dtypes[i]
                                                                             : DType::kDouble;
  }

  std::unique_ptr<Session> session_;
  std::vector<std::string> feed_names_;
  std::vector<std::string> fetches_;
  std::vector<int> outputs_;  // the op's outputs in L
  std::vector<RefTensor> weights_;
};

}  // namespace

absl::Status CheckGradient(const GradCase& c) {
  if (c.reference && c.order != 1) {
    return absl::InvalidArgumentError("the float32 path checks first order only");
  }
  GS_ASSIGN_OR_RETURN(auto harness, Harness::Create(c));
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const DType d = i < c.input_dtypes.size() && c.input_dtypes[i] != DType::kInvalid
                        ? c.input_dtypes[i]
                        : DType::kDouble;
    inputs.push_back(ToTensor(c.inputs[i], d));
  }
  double value;
  std::vector<RefTensor> symbolic;
  GS_RETURN_IF_ERROR(harness->Evaluate(inputs, &value, &symbolic));

  // L with element j of input i moved by `delta`: from the graph itself (float64),
  // or on the float32 path from the reference at the inputs as fed.
  std::vector<RefTensor> fed;
  for (const Tensor& t : inputs) fed.push_back(FromTensor(t));
  auto loss_at = [&](int i, int64_t j, double delta) -> absl::StatusOr<double> {
    if (c.reference) {
      std::vector<RefTensor> at = fed;
      at[i].v[j] += delta;
      return harness->ReferenceLoss(c.reference(at));
    }
    Tensor x = inputs[i].DeepCopy();
    x.data<double>()[j] += delta;
    std::vector<Tensor> at = inputs;
    at[i] = std::move(x);
    double loss;
    std::vector<RefTensor> unused;
    GS_RETURN_IF_ERROR(harness->Evaluate(at, &loss, &unused));
    return loss;
  };

  // Central differences; h scaled to the element so relative steps stay similar.
  double worst = 0;
  std::string detail;
  for (size_t w = 0; w < c.wrt.size(); ++w) {
    const int i = c.wrt[w];
    for (int64_t j = 0; j < fed[i].size(); ++j) {
      const double h = 1e-5 * std::max(1.0, std::abs(fed[i].v[j]));
      GS_ASSIGN_OR_RETURN(const double plus, loss_at(i, j, h));
      GS_ASSIGN_OR_RETURN(const double minus, loss_at(i, j, -h));
      const double numeric = (plus - minus) / (2 * h);
      const double sym = symbolic[w].v[j];
      const double err = std::abs(sym - numeric) / std::max(std::abs(numeric), 1.0);
      if (!(err <= worst)) {
        worst = std::isnan(err) ? INFINITY : err;
        detail = absl::StrCat("input ", i, " element ", j, ": symbolic ", sym, ", numeric ", numeric);
      }
    }
  }
  if (worst > c.tolerance) {
    return absl::InternalError(absl::StrCat("gradient error ", worst, " > ", c.tolerance, " at ", detail));
  }
  return absl::OkStatus();
}

}  // namespace gradserve::testing
