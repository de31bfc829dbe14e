// CPU kernels that assemble an output from rows of several inputs or from
// indexed rows: ConcatV2, Pack, GatherV2, OneHot and SelectV2. Rows are copied
// with memcpy, sharded over the device's threads (Note [Moving bytes] in
// array_kernels.h).
#include <cstring>

#include "absl/strings/str_join.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/array_kernels.h"

namespace gradserve {
namespace {

using array_shape::Ints;

// Writes `out` as `outer` rows, each the concatenation of the matching row of
// every input (input i viewed as [outer, its elements / outer]).
void ConcatRows(OpKernelContext& ctx, const std::vector<const Tensor*>& inputs, int64_t outer,
                Tensor* out) {
  if (out->num_elements() == 0) return;
  const size_t size = DTypeSize(out->dtype());
  std::vector<size_t> row_bytes;
  for (const Tensor* t : inputs) row_bytes.push_back(t->num_elements() / outer * size);
  const size_t out_row = out->bytes() / outer;
  char* dst = static_cast<char*>(out->raw_data());
  ParallelFor(ctx, outer, 2.0 * out_row, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      char* p = dst + r * out_row;
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (row_bytes[i] == 0) continue;
        std::memcpy(p, static_cast<const char*>(inputs[i]->raw_data()) + r * row_bytes[i],
                    row_bytes[i]);
        p += row_bytes[i];
      }
    }
  });
}

class ConcatV2Kernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(ConcatPlan plan, PlanConcatV2(ctx));
    Tensor* out = ctx.allocate_output(0, plan.out_shape, plan.values[0]->dtype());
    ConcatRows(ctx, plan.values, plan.outer, out);
    return absl::OkStatus();
  }
};

class PackKernel final : public OpKernel {
 public:
  explicit PackKernel(const Node& node)
      : OpKernel(node), axis_(node.GetAttr<int64_t>("axis").value_or(0)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(ConcatPlan plan, PlanPack(ctx, axis_));
    if (plan.values.size() == 1) return Relabel(ctx, plan.out_shape);
    Tensor* out = ctx.allocate_output(0, plan.out_shape, plan.values[0]->dtype());
    ConcatRows(ctx, plan.values, plan.outer, out);
    return absl::OkStatus();
  }

 private:
  int64_t axis_;
};

// "[1,0]" for flat index 1 of shape [2,1]: the position TensorFlow's errors name.
std::string IndexString(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.rank());
  for (int i = shape.rank() - 1; i >= 0; --i) {
    idx[i] = flat % shape.dim(i);
    flat /= shape.dim(i);
  }
  return shape.rank() == 0 ? "" : absl::StrCat("[", absl::StrJoin(idx, ","), "]");
}

class GatherV2Kernel final : public OpKernel {
 public:
  explicit GatherV2Kernel(const Node& node)
      : OpKernel(node), batch_dims_(node.GetAttr<int64_t>("batch_dims").value_or(0)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor &params = ctx.input(0), &indices = ctx.input(1);
    GS_ASSIGN_OR_RETURN(GatherPlan plan, PlanGatherV2(ctx, batch_dims_));
    const int64_t outer = plan.outer, limit = plan.limit, inner = plan.inner;
    const int64_t count = indices.num_elements();
    return DispatchIndexType(indices.dtype(), [&]<typename I>() -> absl::Status {
      const I* idx = indices.data<I>();
      // Check every index before writing anything, as TensorFlow's CPU kernel does.
      for (int64_t j = 0; j < count; ++j) {
        if (idx[j] < 0 || idx[j] >= limit) {
          return absl::InvalidArgumentError(absl::StrCat("indices", IndexString(indices.shape(), j),
                                                         " = ", static_cast<int64_t>(idx[j]),
                                                         " is not in [0, ", limit, ")"));
        }
      }
      Tensor* out = ctx.allocate_output(0, plan.out_shape, params.dtype());
      if (out->num_elements() == 0) return absl::OkStatus();
      return DispatchBySize(params.dtype(), [&]<typename U>() -> absl::Status {
        const U* src = params.data<U>();
        U* dst = out->data<U>();
        // One unit = one gathered row of `inner` elements.
        ParallelFor(ctx, outer * count, 2.0 * inner * sizeof(U), [&](int64_t begin, int64_t end) {
          for (int64_t u = begin; u < end; ++u) {
            const U* row = src + ((u / count) * limit + idx[u % count]) * inner;
            if (inner == 1) {
              dst[u] = *row;
            } else {
              std::memcpy(dst + u * inner, row, inner * sizeof(U));
            }
          }
        });
        return absl::OkStatus();
      });
    });
  }

 private:
  int64_t batch_dims_;
};

class OneHotKernel final : public OpKernel {
 public:
  explicit OneHotKernel(const Node& node)
      : OpKernel(node), axis_(node.GetAttr<int64_t>("axis").value_or(-1)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor &indices = ctx.input(0), &on = ctx.input(2), &off = ctx.input(3);
    GS_ASSIGN_OR_RETURN(OneHotPlan plan, PlanOneHot(ctx, axis_));
    const int64_t prefix = plan.prefix, depth = plan.depth, suffix = plan.suffix;
    Tensor* out = ctx.allocate_output(0, plan.out_shape, on.dtype());
    if (out->num_elements() == 0) return absl::OkStatus();
    return DispatchBySize(on.dtype(), [&]<typename U>() -> absl::Status {
      const U on_v = on.data<U>()[0];
      U* dst = out->data<U>();
      out->flat<U>().device(EigenCpu(ctx)) = out->flat<U>().constant(off.data<U>()[0]);
      // Out-of-range indices (negative included) leave their row all off_value.
      return DispatchIndexType(indices.dtype(), [&]<typename I>() -> absl::Status {
        const I* idx = indices.data<I>();
        for (int64_t p = 0; p < prefix; ++p) {
          for (int64_t s = 0; s < suffix; ++s) {
            const int64_t k = static_cast<int64_t>(idx[p * suffix + s]);
            if (k >= 0 && k < depth) dst[(p * depth + k) * suffix + s] = on_v;
          }
        }
        return absl::OkStatus();
      });
    });
  }

 private:
  int64_t axis_;
};

// A three-way broadcast reduced to few dimensions (cf. Note [Broadcast
// collapsing] in cwise.h): per operand its collapsed shape and repeat counts.
struct BCast3 {
  Ints out;
  Ints reshape[3], bcast[3];
};

BCast3 ComputeBCast3(const Shape* shapes[3], const Shape& out_shape) {
  BCast3 b;
  const int rank = out_shape.rank();
  int prev_state = -1;  // bit k: operand k is broadcast along this run
  for (int i = 0; i < rank; ++i) {
    const int64_t od = out_shape.dim(i);
    if (od == 1) continue;
    int64_t sizes[3];
    int state = 0;
    for (int k = 0; k < 3; ++k) {
      const int j = shapes[k]->rank() - rank + i;
      sizes[k] = j >= 0 ? shapes[k]->dim(j) : 1;
      if (sizes[k] != od) state |= 1 << k;
    }
    const bool extend = state == prev_state;
    if (!extend) b.out.push_back(1);
    b.out.back() *= od;
    for (int k = 0; k < 3; ++k) {
      if (!extend) {
        b.reshape[k].push_back(1);
        b.bcast[k].push_back(1);
      }
      b.reshape[k].back() *= sizes[k];
      b.bcast[k].back() *= sizes[k] == od ? 1 : od;
    }
    prev_state = state;
  }
  if (b.out.empty()) {
    b.out = {1};
    for (int k = 0; k < 3; ++k) b.reshape[k] = b.bcast[k] = {1};
  }
  return b;
}

// The path beyond kMaxMoveRank: walks the output, each operand with stride 0
// along the runs where it is broadcast.
template <typename U>
void SelectStrided(const bool* c, const U* t, const U* e, U* out, const BCast3& b) {
  const int rank = static_cast<int>(b.out.size());
  Ints strides[3];
  for (int k = 0; k < 3; ++k) {
    strides[k] = DenseStrides(b.reshape[k]);
    for (int i = 0; i < rank; ++i) {
      if (b.bcast[k][i] != 1) strides[k][i] = 0;
    }
  }
  int64_t n = 1;
  for (int64_t d : b.out) n *= d;
  Ints idx(rank, 0);
  int64_t off[3] = {0, 0, 0};
  for (int64_t f = 0; f < n; ++f) {
    out[f] = c[off[0]] ? t[off[1]] : e[off[2]];
    for (int j = rank - 1; j >= 0; --j) {
      ++idx[j];
      for (int k = 0; k < 3; ++k) off[k] += strides[k][j];
      if (idx[j] < b.out[j]) break;
      for (int k = 0; k < 3; ++k) off[k] -= strides[k][j] * b.out[j];
      idx[j] = 0;
    }
  }
}

class SelectV2Kernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor &cond = ctx.input(0), &t = ctx.input(1), &e = ctx.input(2);
    GS_ASSIGN_OR_RETURN(Shape out_shape, array_shape::SelectV2(cond.shape(), t.shape(), e.shape()));
    if (cond.num_elements() == 1 && t.shape() == out_shape && e.shape() == out_shape) {
      ctx.set_output(0, cond.data<bool>()[0] ? t : e);  // shares the chosen buffer
      return absl::OkStatus();
    }
    Tensor* out = ctx.allocate_output(0, out_shape, t.dtype());
    if (out->num_elements() == 0) return absl::OkStatus();
    const Shape* shapes[3] = {&cond.shape(), &t.shape(), &e.shape()};
    const BCast3 b = ComputeBCast3(shapes, out_shape);
    const int rank = static_cast<int>(b.out.size());
    return DispatchBySize(t.dtype(), [&]<typename U>() -> absl::Status {
      if (rank > kMaxMoveRank) {
        SelectStrided(cond.data<bool>(), t.data<U>(), e.data<U>(), out->data<U>(), b);
        return absl::OkStatus();
      }
      return DispatchRank(rank, [&]<int N>() -> absl::Status {
        Tensor::ConstEigenTensor<bool, N> c(cond.data<bool>(), EigenDims<N>(b.reshape[0]));
        Tensor::ConstEigenTensor<U, N> x(t.data<U>(), EigenDims<N>(b.reshape[1]));
        Tensor::ConstEigenTensor<U, N> y(e.data<U>(), EigenDims<N>(b.reshape[2]));
        Tensor::EigenTensor<U, N> z(out->data<U>(), EigenDims<N>(b.out));
        z.device(EigenCpu(ctx)) = c.broadcast(EigenDims<N>(b.bcast[0]))
                                      .select(x.broadcast(EigenDims<N>(b.bcast[1])),
                                              y.broadcast(EigenDims<N>(b.bcast[2])));
        return absl::OkStatus();
      });
    });
  }
};

}  // namespace

absl::Status RegisterCpuGatherKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<ConcatV2Kernel>(r, "ConcatV2"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<PackKernel>(r, "Pack"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<GatherV2Kernel>(r, "GatherV2", "Tparams"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<OneHotKernel>(r, "OneHot"));
  return RegisterForArrayTypes<SelectV2Kernel>(r, "SelectV2");
}

}  // namespace gradserve
