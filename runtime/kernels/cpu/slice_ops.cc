// CPU kernels that read a strided or permuted view of one input: Slice,
// StridedSlice, Transpose, Tile and Pad. Each merges the dimensions that move
// together and evaluates an Eigen expression over elements of the dtype's size
// (Note [Moving bytes] in array_kernels.h); a result that is a contiguous range of
// the input shares the input's buffer instead of copying it.
#include <algorithm>
#include <cstring>

#include "graph/status.h"
#include "runtime/kernels/cpu/array_kernels.h"

namespace gradserve {
namespace {

using array_shape::Ints;

// Output 0 = input 0's buffer viewed as `shape` (no copy).
absl::Status ForwardInput(OpKernelContext& ctx, const Shape& shape) {
  GS_ASSIGN_OR_RETURN(Tensor out, ctx.input(0).Reshaped(shape));
  ctx.set_output(0, std::move(out));
  return absl::OkStatus();
}

// A strided read after merging: per dimension the input size, the first index,
// the step and the number of elements taken.
struct StridedRead {
  Ints dims, start, stride, count;
};

StridedRead MergeStridedRead(const Shape& in, absl::Span<const int64_t> start,
                             absl::Span<const int64_t> stride, absl::Span<const int64_t> count) {
  StridedRead r;
  for (int i = 0; i < in.rank(); ++i) {
    const int64_t d = in.dim(i);
    if (d == 1) continue;  // one element, index 0: no effect on addresses
    // A single element's stride is irrelevant (and may be huge): make it 1.
    const int64_t step = count[i] == 1 ? 1 : stride[i];
    const bool whole = start[i] == 0 && step == 1 && count[i] == d;
    // A whole dimension extends a unit-stride range of the dimension before it.
    if (whole && !r.dims.empty() && r.stride.back() == 1) {
      r.dims.back() *= d;
      r.start.back() *= d;
      r.count.back() *= d;
      continue;
    }
    r.dims.push_back(d);
    r.start.push_back(start[i]);
    r.stride.push_back(step);
    r.count.push_back(count[i]);
  }
  if (r.dims.empty()) r = StridedRead{{1}, {0}, {1}, {1}};
  return r;
}

// Output 0 (of `out_shape`) = the elements start[i] + k * stride[i], k < count[i],
// of input 0, in row-major order.
absl::Status ReadStrided(OpKernelContext& ctx, absl::Span<const int64_t> start,
                         absl::Span<const int64_t> stride, absl::Span<const int64_t> count,
                         const Shape& out_shape) {
  const Tensor& in = ctx.input(0);
  if (out_shape.num_elements() == 0) {
    ctx.allocate_output(0, out_shape, in.dtype());
    return absl::OkStatus();
  }
  const StridedRead r = MergeStridedRead(in.shape(), start, stride, count);
  const int rank = static_cast<int>(r.dims.size());
  if (rank == 1 && r.stride[0] == 1) {
    GS_ASSIGN_OR_RETURN(Tensor flat, in.Reshaped(Shape{in.num_elements()}));
    GS_ASSIGN_OR_RETURN(Tensor out,
                        flat.Slice(r.start[0], r.start[0] + r.count[0]).Reshaped(out_shape));
    ctx.set_output(0, std::move(out));
    return absl::OkStatus();
  }
  Tensor* out = ctx.allocate_output(0, out_shape, in.dtype());
  if (rank > kMaxMoveRank) {
    const Ints in_strides = DenseStrides(r.dims);
    Ints src_strides(rank);
    int64_t offset = 0;
    for (int i = 0; i < rank; ++i) {
      src_strides[i] = in_strides[i] * r.stride[i];
      offset += r.start[i] * in_strides[i];
    }
    const size_t size = DTypeSize(in.dtype());
    CopyStrided(static_cast<const char*>(in.raw_data()) + offset * size, out->raw_data(), size,
                r.count, src_strides, DenseStrides(r.count));
    return absl::OkStatus();
  }
  bool unit_strides = true;
  for (int64_t s : r.stride) unit_strides &= s == 1;
  return DispatchBySize(in.dtype(), [&]<typename U>() -> absl::Status {
    return DispatchRank(rank, [&]<int N>() -> absl::Status {
      const auto& d = EigenCpu(ctx);
      Tensor::ConstEigenTensor<U, N> src(in.data<U>(), EigenDims<N>(r.dims));
      Tensor::EigenTensor<U, N> dst(out->data<U>(), EigenDims<N>(r.count));
      const auto offsets = EigenDims<N>(r.start);
      // A unit-stride read of one dimension is contiguous and was shared above.
      if constexpr (N > 1) {
        if (unit_strides) {
          dst.device(d) = src.slice(offsets, EigenDims<N>(r.count));
          return absl::OkStatus();
        }
      }
      Ints stop(N);
      for (int i = 0; i < N; ++i) stop[i] = r.start[i] + r.count[i] * r.stride[i];
      dst.device(d) = src.stridedSlice(offsets, EigenDims<N>(stop), EigenDims<N>(r.stride));
      return absl::OkStatus();
    });
  });
}

class SliceKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& begin = ctx.input(1);
    const Tensor& size = ctx.input(2);
    const Ints b = ReadInts(begin);
    GS_ASSIGN_OR_RETURN(Shape out_shape, array_shape::Slice(ctx.input(0).shape(), begin.shape(), b,
                                                            size.shape(), ReadInts(size)));
    return ReadStrided(ctx, b, Ints(b.size(), 1), out_shape.dims(), out_shape);
  }
};

class StridedSliceKernel final : public OpKernel {
 public:
  explicit StridedSliceKernel(const Node& node)
      : OpKernel(node), masks_(StridedSliceMasksOf(node)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(array_shape::StridedSlicePlan plan,
                        PlanStridedSlice(ctx, ctx.input(0).shape(), masks_));
    return ReadStrided(ctx, plan.begin, plan.strides, plan.processing_dims, plan.final_shape);
  }

 private:
  array_shape::StridedSliceMasks masks_;
};

class TransposeKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& in = ctx.input(0);
    GS_ASSIGN_OR_RETURN(TransposePlan plan, PlanTranspose(ctx));
    const Shape& out_shape = plan.out_shape;
    if (out_shape.num_elements() == 0) {
      ctx.allocate_output(0, out_shape, in.dtype());
      return absl::OkStatus();
    }
    // Drop dimensions of size 1, then merge output dimensions that are consecutive
    // input dimensions. Each group is named by its first input dimension.
    std::vector<int> squeezed(in.rank(), -1);
    int kept = 0;
    for (int i = 0; i < in.rank(); ++i) {
      if (in.dim(i) != 1) squeezed[i] = kept++;
    }
    std::vector<int> group_first;  // in output order
    Ints group_size;
    int prev = -2;
    for (int p : plan.perm) {
      const int q = squeezed[p];
      if (q < 0) continue;
      if (q == prev + 1) {
        group_size.back() *= in.dim(p);
      } else {
        group_first.push_back(q);
        group_size.push_back(in.dim(p));
      }
      prev = q;
    }
    const int rank = static_cast<int>(group_first.size());
    if (rank <= 1) return ForwardInput(ctx, out_shape);  // the order of elements is unchanged
    // Input dims of the merged view, and the merged permutation.
    std::vector<int> order(rank);
    for (int i = 0; i < rank; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return group_first[a] < group_first[b]; });
    Ints in_dims(rank), out_dims = group_size;
    std::vector<int> merged_perm(rank);
    for (int k = 0; k < rank; ++k) {
      in_dims[k] = group_size[order[k]];
      merged_perm[order[k]] = k;
    }
    Tensor* out = ctx.allocate_output(0, out_shape, in.dtype());
    if (rank > kMaxMoveRank) {
      const Ints in_strides = DenseStrides(in_dims);
      Ints src_strides(rank);
      for (int i = 0; i < rank; ++i) src_strides[i] = in_strides[merged_perm[i]];
      CopyStrided(in.raw_data(), out->raw_data(), DTypeSize(in.dtype()), out_dims, src_strides,
                  DenseStrides(out_dims));
      return absl::OkStatus();
    }
    return DispatchBySize(in.dtype(), [&]<typename U>() -> absl::Status {
      return DispatchRank(rank, [&]<int N>() -> absl::Status {
        if constexpr (N == 1) {
          return absl::InternalError("a rank-1 transpose is a copy");  // forwarded above
        } else {
          Tensor::ConstEigenTensor<U, N> src(in.data<U>(), EigenDims<N>(in_dims));
          Tensor::EigenTensor<U, N> dst(out->data<U>(), EigenDims<N>(out_dims));
          Eigen::array<int, N> shuffle;
          for (int i = 0; i < N; ++i) shuffle[i] = merged_perm[i];
          dst.device(EigenCpu(ctx)) = src.shuffle(shuffle);
          return absl::OkStatus();
        }
      });
    });
  }
};

class TileKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& in = ctx.input(0);
    const Tensor& multiples_t = ctx.input(1);
    const Ints multiples = ReadInts(multiples_t);
    GS_ASSIGN_OR_RETURN(Shape out_shape,
                        array_shape::Tile(in.shape(), multiples_t.shape(), multiples));
    if (out_shape == in.shape()) return ForwardInput(ctx, out_shape);
    Tensor* out = ctx.allocate_output(0, out_shape, in.dtype());
    if (out_shape.num_elements() == 0) return absl::OkStatus();
    // Merge neighbours that are both untiled (one contiguous run) or both of size 1
    // (one larger repeat); drop untiled dimensions of size 1.
    Ints dims, reps;
    for (int i = 0; i < in.rank(); ++i) {
      const int64_t d = in.dim(i), m = multiples[i];
      if (d == 1 && m == 1) continue;
      if (!dims.empty() && m == 1 && reps.back() == 1) {
        dims.back() *= d;
      } else if (!dims.empty() && d == 1 && dims.back() == 1) {
        reps.back() *= m;
      } else {
        dims.push_back(d);
        reps.push_back(m);
      }
    }
    const int rank = static_cast<int>(dims.size());
    if (rank > kMaxMoveRank) {
      // Output viewed as [m0, d0, m1, d1, ...]: the repeat axes read with stride 0.
      const Ints in_strides = DenseStrides(dims);
      Ints view, src_strides;
      for (int i = 0; i < rank; ++i) {
        view.insert(view.end(), {reps[i], dims[i]});
        src_strides.insert(src_strides.end(), {0, in_strides[i]});
      }
      CopyStrided(in.raw_data(), out->raw_data(), DTypeSize(in.dtype()), view, src_strides,
                  DenseStrides(view));
      return absl::OkStatus();
    }
    return DispatchBySize(in.dtype(), [&]<typename U>() -> absl::Status {
      return DispatchRank(rank, [&]<int N>() -> absl::Status {
        Ints out_dims(N);
        for (int i = 0; i < N; ++i) out_dims[i] = dims[i] * reps[i];
        Tensor::ConstEigenTensor<U, N> src(in.data<U>(), EigenDims<N>(dims));
        Tensor::EigenTensor<U, N> dst(out->data<U>(), EigenDims<N>(out_dims));
        dst.device(EigenCpu(ctx)) = src.broadcast(EigenDims<N>(reps));
        return absl::OkStatus();
      });
    });
  }
};

class PadKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& in = ctx.input(0);
    const Tensor& paddings_t = ctx.input(1);
    const Ints paddings = ReadInts(paddings_t);
    GS_ASSIGN_OR_RETURN(Shape out_shape,
                        array_shape::Pad(in.shape(), paddings_t.shape(), paddings));
    if (out_shape == in.shape()) return ForwardInput(ctx, out_shape);
    Tensor* out = ctx.allocate_output(0, out_shape, in.dtype());
    // An unpadded dimension extends the one before it: padding that one by p rows
    // pads the merged one by p * size elements.
    Ints dims, before, after;
    for (int i = 0; i < in.rank(); ++i) {
      const int64_t d = in.dim(i), b = paddings[2 * i], a = paddings[2 * i + 1];
      if (b == 0 && a == 0 && !dims.empty()) {
        dims.back() *= d;
        before.back() *= d;
        after.back() *= d;
      } else if (!(b == 0 && a == 0 && d == 1)) {
        dims.push_back(d);
        before.push_back(b);
        after.push_back(a);
      }
    }
    const int rank = static_cast<int>(dims.size());
    if (in.num_elements() == 0 || rank > kMaxMoveRank) {
      // Zeros everywhere, then the input into the interior.
      std::memset(out->raw_data(), 0, out->bytes());
      if (in.num_elements() == 0) return absl::OkStatus();
      Ints out_dims(rank);
      for (int i = 0; i < rank; ++i) out_dims[i] = dims[i] + before[i] + after[i];
      const Ints out_strides = DenseStrides(out_dims);
      int64_t offset = 0;
      for (int i = 0; i < rank; ++i) offset += before[i] * out_strides[i];
      const size_t size = DTypeSize(in.dtype());
      CopyStrided(in.raw_data(), static_cast<char*>(out->raw_data()) + offset * size, size, dims,
                  DenseStrides(dims), out_strides);
      return absl::OkStatus();
    }
    return DispatchBySize(in.dtype(), [&]<typename U>() -> absl::Status {
      return DispatchRank(rank, [&]<int N>() -> absl::Status {
        Ints out_dims(N);
        Eigen::array<Eigen::IndexPair<Eigen::DenseIndex>, N> pads;
        for (int i = 0; i < N; ++i) {
          out_dims[i] = dims[i] + before[i] + after[i];
          pads[i] = {before[i], after[i]};
        }
        Tensor::ConstEigenTensor<U, N> src(in.data<U>(), EigenDims<N>(dims));
        Tensor::EigenTensor<U, N> dst(out->data<U>(), EigenDims<N>(out_dims));
        dst.device(EigenCpu(ctx)) = src.pad(pads, U(0));
        return absl::OkStatus();
      });
    });
  }
};

}  // namespace

absl::Status RegisterCpuSliceKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<SliceKernel>(r, "Slice"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<StridedSliceKernel>(r, "StridedSlice"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<TransposeKernel>(r, "Transpose"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<TileKernel>(r, "Tile"));
  return RegisterForArrayTypes<PadKernel>(r, "Pad");
}

}  // namespace gradserve
