// Conformance cases for the math op family (see op_test_util.h).
#include <cmath>

#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

using Ins = std::vector<RefTensor>;

const std::vector<DType> kFloats = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16};
const std::vector<DType> kSigned = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16,
                                    DType::kInt8,  DType::kInt16,  DType::kInt32, DType::kInt64};
const std::vector<DType> kReal = {DType::kFloat, DType::kDouble, DType::kHalf,
                                  DType::kBFloat16, DType::kInt8, DType::kInt16,
                                  DType::kInt32, DType::kInt64, DType::kUInt8};
const std::vector<DType> kAll = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16,
                                 DType::kInt8,  DType::kInt16,  DType::kInt32, DType::kInt64,
                                 DType::kUInt8, DType::kBool};

Reference BinaryRef(std::function<double(double, double)> f) {
  return [f](const Ins& in) { return Ins{Broadcast2(in[0], in[1], f)}; };
}
Reference UnaryRef(std::function<double(double)> f) {
  return [f](const Ins& in) { return Ins{Map(in[0], f)}; };
}

RefTensor MatMulRef(const RefTensor& a, const RefTensor& b, bool ta, bool tb) {
  const int64_t m = a.dim(ta ? 1 : 0), k = a.dim(ta ? 0 : 1), n = b.dim(tb ? 0 : 1);
  RefTensor c{Shape{m, n}, std::vector<double>(m * n, 0.0)};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a.v[p * m + i] : a.v[i * k + p];
        const double bv = tb ? b.v[j * k + p] : b.v[p * n + j];
        acc += av * bv;
      }
      c.v[i * n + j] = acc;
    }
  return c;
}

// The last two dims are matrices; the leading ones broadcast.
RefTensor BatchMatMulRef(const RefTensor& x, const RefTensor& y, bool adj_x, bool adj_y) {
  const int rx = x.rank(), ry = y.rank();
  const Shape xb(x.shape.dims().subspan(0, rx - 2)), yb(y.shape.dims().subspan(0, ry - 2));
  const Shape batch = BroadcastShapes(xb, yb).value();
  const int64_t xr = x.dim(rx - 2), xc = x.dim(rx - 1), yr = y.dim(ry - 2), yc = y.dim(ry - 1);
  // Batch index of each output matrix into x and y, via a broadcast of indices.
  RefTensor xi{xb, std::vector<double>(xb.num_elements())};
  RefTensor yi{yb, std::vector<double>(yb.num_elements())};
  for (int64_t i = 0; i < xi.size(); ++i) xi.v[i] = static_cast<double>(i);
  for (int64_t i = 0; i < yi.size(); ++i) yi.v[i] = static_cast<double>(i);
  const RefTensor xmap = Broadcast2(xi, Values(batch, std::vector<double>(batch.num_elements())),
                                    [](double a, double) { return a; });
  const RefTensor ymap = Broadcast2(Values(batch, std::vector<double>(batch.num_elements())), yi,
                                    [](double, double b) { return b; });
  Shape out_shape = batch;
  const int64_t m = adj_x ? xc : xr, n = adj_y ? yr : yc;
  out_shape.AddDim(m);
  out_shape.AddDim(n);
  RefTensor out{out_shape, {}};
  for (int64_t b = 0; b < batch.num_elements(); ++b) {
    const auto xo = x.v.begin() + static_cast<int64_t>(xmap.v[b]) * xr * xc;
    const auto yo = y.v.begin() + static_cast<int64_t>(ymap.v[b]) * yr * yc;
    const RefTensor c = MatMulRef(RefTensor{Shape{xr, xc}, std::vector<double>(xo, xo + xr * xc)},
                                  RefTensor{Shape{yr, yc}, std::vector<double>(yo, yo + yr * yc)},
                                  adj_x, adj_y);
    out.v.insert(out.v.end(), c.v.begin(), c.v.end());
  }
  return out;
}

void AddBinaryCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* op;
    std::function<double(double, double)> f;
    std::vector<DType> types;
    // Integer operands that keep every result in range of int8 and uint8.
    int64_t xlo, xhi, ylo, yhi;
    // Float operands (y away from zero for RealDiv, x > 0 for Pow).
    double fxlo, fxhi, fylo, fyhi;
  };
  const std::vector<Spec> specs = {
      {"Add", [](double a, double b) { return a + b; }, kReal, 0, 60, 0, 60, -1, 1, -1, 1},
      {"AddV2", [](double a, double b) { return a + b; }, kReal, 0, 60, 0, 60, -1, 1, -1, 1},
      {"Sub", [](double a, double b) { return a - b; }, kReal, 30, 60, 0, 30, -1, 1, -1, 1},
      {"Mul", [](double a, double b) { return a * b; }, kReal, 0, 11, 0, 11, -2, 2, -2, 2},
      {"Maximum", [](double a, double b) { return std::max(a, b); }, kReal, 0, 99, 0, 99, -1, 1,
       -1, 1},
      {"Minimum", [](double a, double b) { return std::min(a, b); }, kReal, 0, 99, 0, 99, -1, 1,
       -1, 1},
      {"RealDiv", [](double a, double b) { return a / b; }, kFloats, -50, 50, 1, 9, -2, 2, 0.5, 2},
      {"Pow", [](double a, double b) { return std::pow(a, b); }, kFloats, 1, 5, 0, 3, 0.5, 2, -2,
       2},
  };
  for (const Spec& s : specs) {
    const std::string op = s.op;
    const Reference ref = BinaryRef(s.f);
    cases.push_back({.name = op + "_same_shape", .op = op,
                     .inputs = {RandomInt(Shape{3, 5}, s.xlo, s.xhi),
                                RandomInt(Shape{3, 5}, s.ylo, s.yhi)},
                     .dtypes = s.types, .reference = ref});
    cases.push_back({.name = op + "_broadcast_int", .op = op,
                     .inputs = {RandomInt(Shape{4, 1, 3}, s.xlo, s.xhi),
                                RandomInt(Shape{2, 1}, s.ylo, s.yhi)},
                     .dtypes = s.types, .reference = ref});
    cases.push_back({.name = op + "_broadcast", .op = op,
                     .inputs = {Random(Shape{2, 1, 4}, s.fxlo, s.fxhi),
                                Random(Shape{3, 1}, s.fylo, s.fyhi)},
                     .dtypes = kFloats, .reference = ref});
    cases.push_back({.name = op + "_rank5_broadcast", .op = op,
                     .inputs = {Random(Shape{2, 1, 3, 1, 2}, s.fxlo, s.fxhi),
                                Random(Shape{1, 4, 1, 5, 1}, s.fylo, s.fyhi)},
                     .reference = ref});
    cases.push_back({.name = op + "_scalar_y", .op = op,
                     .inputs = {Random(Shape{7}, s.fxlo, s.fxhi), Random(Shape{}, s.fylo, s.fyhi)},
                     .reference = ref});
    cases.push_back({.name = op + "_scalar_x", .op = op,
                     .inputs = {Random(Shape{}, s.fxlo, s.fxhi), Random(Shape{2, 3}, s.fylo, s.fyhi)},
                     .reference = ref});
    cases.push_back({.name = op + "_scalars", .op = op,
                     .inputs = {Random(Shape{}, s.fxlo, s.fxhi), Random(Shape{}, s.fylo, s.fyhi)},
                     .reference = ref});
    cases.push_back({.name = op + "_empty", .op = op,
                     .inputs = {Random(Shape{0, 3}), Random(Shape{3}, s.fylo, s.fyhi)},
                     .reference = ref});
    cases.push_back({.name = op + "_incompatible", .op = op,
                     .inputs = {Random(Shape{2, 3}), Random(Shape{4})},
                     .expect_error = "cannot be broadcast"});
  }
  cases.push_back({.name = "AddV2_too_many_collapsed_dims", .op = "AddV2",
                   .inputs = {Random(Shape{2, 1, 2, 1, 2, 1}), Random(Shape{1, 2, 1, 2, 1, 2})},
                   .expect_error = "collapsed dimensions"});
  cases.push_back({.name = "RealDiv_int_rejected", .op = "RealDiv",
                   .inputs = {RandomInt(Shape{2}, 1, 5), RandomInt(Shape{2}, 1, 5)},
                   .dtypes = {DType::kInt32}, .expect_error = "attr 'T' = int32 is not one of"});
  const Reference pow = BinaryRef([](double a, double b) { return std::pow(a, b); });
  cases.push_back({.name = "Pow_int", .op = "Pow",
                   .inputs = {RandomInt(Shape{4, 5}, -5, 5), RandomInt(Shape{4, 5}, 0, 6)},
                   .dtypes = {DType::kInt32, DType::kInt64}, .reference = pow});
  cases.push_back({.name = "Pow_int_broadcast", .op = "Pow",
                   .inputs = {RandomInt(Shape{3, 1}, -9, 9), RandomInt(Shape{4}, 0, 5)},
                   .dtypes = {DType::kInt32, DType::kInt64}, .reference = pow});
  cases.push_back({.name = "Pow_int_negative_exponent", .op = "Pow",
                   .inputs = {RandomInt(Shape{3}, 1, 5), Values(Shape{3}, {2, -1, 0})},
                   .dtypes = {DType::kInt32, DType::kInt64},
                   .expect_error = "negative integer powers"});
}

void AddComparisonCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* op;
    std::function<double(double, double)> f;
    std::vector<DType> types;
  };
  const std::vector<Spec> specs = {
      {"Equal", [](double a, double b) { return a == b ? 1.0 : 0.0; }, kAll},
      {"Less", [](double a, double b) { return a < b ? 1.0 : 0.0; }, kReal},
      {"Greater", [](double a, double b) { return a > b ? 1.0 : 0.0; }, kReal},
      {"LogicalAnd", [](double a, double b) { return a != 0 && b != 0 ? 1.0 : 0.0; },
       {DType::kBool}},
  };
  for (const Spec& s : specs) {
    const std::string op = s.op;
    const Reference ref = BinaryRef(s.f);
    // Few distinct values, so equal pairs are common.
    cases.push_back({.name = op + "_same_shape", .op = op,
                     .inputs = {RandomInt(Shape{4, 6}, 0, 3), RandomInt(Shape{4, 6}, 0, 3)},
                     .dtypes = s.types, .reference = ref});
    cases.push_back({.name = op + "_broadcast", .op = op,
                     .inputs = {RandomInt(Shape{2, 1, 4}, 0, 2), RandomInt(Shape{3, 1}, 0, 2)},
                     .dtypes = s.types, .reference = ref});
    cases.push_back({.name = op + "_scalar", .op = op,
                     .inputs = {RandomInt(Shape{5}, 0, 2), RandomInt(Shape{}, 0, 2)},
                     .dtypes = s.types, .reference = ref});
    cases.push_back({.name = op + "_empty", .op = op,
                     .inputs = {RandomInt(Shape{0, 2}, 0, 2), RandomInt(Shape{1}, 0, 2)},
                     .dtypes = s.types, .reference = ref});
    cases.push_back({.name = op + "_incompatible", .op = op,
                     .inputs = {RandomInt(Shape{2, 3}, 0, 2), RandomInt(Shape{2}, 0, 2)},
                     .dtypes = s.types, .expect_error = "cannot be broadcast"});
  }
  cases.push_back({.name = "Equal_lenient_incompatible", .op = "Equal",
                   .inputs = {RandomInt(Shape{2, 3}, 0, 2), RandomInt(Shape{2}, 0, 2)},
                   .attrs = {{"incompatible_shape_error", MakeAttr(false)}},
                   .dtypes = {DType::kFloat, DType::kInt32, DType::kBool},
                   .reference = [](const Ins&) { return Ins{Scalar(0)}; }});
  cases.push_back({.name = "Equal_lenient_compatible", .op = "Equal",
                   .inputs = {RandomInt(Shape{2, 3}, 0, 2), RandomInt(Shape{3}, 0, 2)},
                   .attrs = {{"incompatible_shape_error", MakeAttr(false)}},
                   .dtypes = {DType::kFloat, DType::kInt64},
                   .reference = BinaryRef([](double a, double b) { return a == b ? 1.0 : 0.0; })});
  cases.push_back({.name = "LogicalAnd_float_rejected", .op = "LogicalAnd",
                   .inputs = {Random(Shape{2}), Random(Shape{2})},
                   .dtypes = {DType::kFloat}, .expect_error = "but the op expects bool"});
}

void AddUnaryCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* op;
    std::function<double(double)> f;
    std::vector<DType> types;
    double lo, hi;  // float inputs; Log/Sqrt/Rsqrt need positive ones
  };
  const std::vector<Spec> specs = {
      {"Neg", [](double x) { return -x; }, kSigned, -3, 3},
      {"Abs", [](double x) { return std::abs(x); }, kSigned, -3, 3},
      {"Square", [](double x) { return x * x; }, kSigned, -3, 3},
      {"Exp", [](double x) { return std::exp(x); }, kFloats, -3, 3},
      {"Log", [](double x) { return std::log(x); }, kFloats, 0.1, 10},
      {"Sqrt", [](double x) { return std::sqrt(x); }, kFloats, 0.1, 10},
      {"Rsqrt", [](double x) { return 1 / std::sqrt(x); }, kFloats, 0.1, 10},
  };
  for (const Spec& s : specs) {
    const std::string op = s.op;
    const Reference ref = UnaryRef(s.f);
    cases.push_back({.name = op, .op = op, .inputs = {Random(Shape{4, 7}, s.lo, s.hi)},
                     .dtypes = kFloats, .reference = ref});
    if (s.types.size() > kFloats.size()) {
      cases.push_back({.name = op + "_int", .op = op, .inputs = {RandomInt(Shape{3, 4}, -11, 11)},
                       .dtypes = s.types, .reference = ref});
    }
    cases.push_back({.name = op + "_scalar", .op = op, .inputs = {Random(Shape{}, s.lo, s.hi)},
                     .reference = ref});
    cases.push_back({.name = op + "_empty", .op = op, .inputs = {Random(Shape{2, 0})},
                     .reference = ref});
    cases.push_back({.name = op + "_uint8_rejected", .op = op,
                     .inputs = {RandomInt(Shape{2}, 1, 5)}, .dtypes = {DType::kUInt8},
                     .expect_error = "attr 'T' = uint8 is not one of"});
  }
}

// C++'s conversion of a double to `to`: truncation toward zero for integers,
// wrapping modulo 2^bits, != 0 for bool; floating types keep the value (the
// harness's tolerance covers the rounding).
double ConvertRef(double v, DType to) {
  auto wrap = [](double x, int bits, bool is_signed) {
    const double m = std::ldexp(1.0, bits);
    double r = std::fmod(std::trunc(x), m);
    if (r < 0) r += m;
    if (is_signed && r >= m / 2) r -= m;
    return r;
  };
  switch (to) {
    case DType::kBool: return v != 0 ? 1 : 0;
    case DType::kInt8: return wrap(v, 8, true);
    case DType::kUInt8: return wrap(v, 8, false);
    case DType::kInt16: return wrap(v, 16, true);
    case DType::kInt32: return wrap(v, 32, true);
    case DType::kInt64: return std::trunc(v);
    default: return v;
  }
}

// Rounds toward zero to `bits` significant bits (Cast's Truncate).
double TruncateMantissa(double v, int bits) {
  if (v == 0) return v;
  int e;
  const double m = std::frexp(v, &e);
  return std::ldexp(std::trunc(std::ldexp(m, bits)), e - bits);
}

void AddCastCases(std::vector<OpCase>& cases) {
  // Values every type holds (0..120); zeros and fractions matter for bool and ints.
  RefTensor x = Random(Shape{4, 4}, 0, 120);
  const std::vector<double> fixed = {0, 1, 0.5, 2.75, 99.9, 120.2, 7, 0};
  std::copy(fixed.begin(), fixed.end(), x.v.begin());
  for (DType to : kAll) {
    cases.push_back({.name = absl::StrCat("Cast_to_", DTypeName(to)), .op = "Cast",
                     .inputs = {x}, .attrs = {{"DstT", MakeAttr(to)}}, .dtypes = kAll,
                     .reference = [to](const Ins& in) {
                       return Ins{Map(in[0], [to](double v) { return ConvertRef(v, to); })};
                     }});
  }
  RefTensor neg = Random(Shape{3, 4}, -100, 100);
  neg.v[0] = -2.7;
  neg.v[1] = -0.5;
  for (DType to : {DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64}) {
    cases.push_back({.name = absl::StrCat("Cast_negative_to_", DTypeName(to)), .op = "Cast",
                     .inputs = {neg}, .attrs = {{"DstT", MakeAttr(to)}}, .dtypes = kFloats,
                     .reference = [to](const Ins& in) {
                       return Ins{Map(in[0], [to](double v) { return ConvertRef(v, to); })};
                     }});
  }
  RefTensor wide = RandomInt(Shape{2, 5}, -1000, 1000);
  const std::vector<double> edges = {300, -200, 127, 128, -129};
  std::copy(edges.begin(), edges.end(), wide.v.begin());
  for (DType to : {DType::kInt8, DType::kUInt8, DType::kInt16}) {
    cases.push_back({.name = absl::StrCat("Cast_wraps_to_", DTypeName(to)), .op = "Cast",
                     .inputs = {wide}, .attrs = {{"DstT", MakeAttr(to)}},
                     .dtypes = {DType::kInt32, DType::kInt64},
                     .reference = [to](const Ins& in) {
                       return Ins{Map(in[0], [to](double v) { return ConvertRef(v, to); })};
                     }});
  }
  for (auto [to, bits] : {std::pair{DType::kBFloat16, 8}, std::pair{DType::kHalf, 11}}) {
    cases.push_back({.name = absl::StrCat("Cast_truncate_to_", DTypeName(to)), .op = "Cast",
                     .inputs = {Random(Shape{3, 5}, -100, 100)},
                     .attrs = {{"DstT", MakeAttr(to)}, {"Truncate", MakeAttr(true)}},
                     .dtypes = {DType::kFloat, DType::kDouble},
                     .reference = [bits](const Ins& in) {
                       return Ins{Map(in[0], [bits](double v) { return TruncateMantissa(v, bits); })};
                     },
                     .tolerance = 1e-12});
  }
  cases.push_back({.name = "Cast_scalar", .op = "Cast", .inputs = {Random(Shape{}, -9, 9)},
                   .attrs = {{"DstT", MakeAttr(DType::kInt32)}},
                   .reference = [](const Ins& in) { return Ins{Map(in[0], [](double v) { return std::trunc(v); })}; }});
  cases.push_back({.name = "Cast_empty", .op = "Cast", .inputs = {Random(Shape{0, 4})},
                   .attrs = {{"DstT", MakeAttr(DType::kHalf)}},
                   .reference = [](const Ins& in) { return Ins{in[0]}; }});
  cases.push_back({.name = "Cast_to_string_rejected", .op = "Cast", .inputs = {Random(Shape{2})},
                   .attrs = {{"DstT", MakeAttr(DType::kString)}},
                   .expect_error = "attr 'DstT' = string is not one of"});
}

void AddMatMulCases(std::vector<OpCase>& cases) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const int64_t m = 5, k = 7, n = 3;
      cases.push_back({.name = absl::StrCat("MatMul_ta", ta, "_tb", tb), .op = "MatMul",
                       .inputs = {Random(ta ? Shape{k, m} : Shape{m, k}),
                                  Random(tb ? Shape{n, k} : Shape{k, n})},
                       .attrs = {{"transpose_a", MakeAttr(ta)}, {"transpose_b", MakeAttr(tb)}},
                       .dtypes = kFloats,
                       .reference = [ta, tb](const Ins& in) {
                         return Ins{MatMulRef(in[0], in[1], ta, tb)};
                       }});
      cases.push_back({.name = absl::StrCat("BatchMatMulV2_adjx", ta, "_adjy", tb),
                       .op = "BatchMatMulV2",
                       .inputs = {Random(ta ? Shape{2, 3, k, m} : Shape{2, 3, m, k}),
                                  Random(tb ? Shape{2, 3, n, k} : Shape{2, 3, k, n})},
                       .attrs = {{"adj_x", MakeAttr(ta)}, {"adj_y", MakeAttr(tb)}},
                       .dtypes = kFloats,
                       .reference = [ta, tb](const Ins& in) {
                         return Ins{BatchMatMulRef(in[0], in[1], ta, tb)};
                       }});
    }
  }
  const Reference mm = [](const Ins& in) { return Ins{MatMulRef(in[0], in[1], false, false)}; };
  const Reference bmm = [](const Ins& in) { return Ins{BatchMatMulRef(in[0], in[1], false, false)}; };
  const std::vector<DType> ints = {DType::kInt32, DType::kInt64};
  cases.push_back({.name = "MatMul_int", .op = "MatMul",
                   .inputs = {RandomInt(Shape{4, 6}, -9, 9), RandomInt(Shape{6, 2}, -9, 9)},
                   .dtypes = ints, .reference = mm});
  cases.push_back({.name = "MatMul_empty_k", .op = "MatMul",
                   .inputs = {Random(Shape{3, 0}), Random(Shape{0, 4})},
                   .dtypes = {DType::kFloat, DType::kDouble, DType::kInt32}, .reference = mm});
  cases.push_back({.name = "MatMul_empty_m", .op = "MatMul",
                   .inputs = {Random(Shape{0, 3}), Random(Shape{3, 4})}, .reference = mm});
  cases.push_back({.name = "MatMul_inner_mismatch", .op = "MatMul",
                   .inputs = {Random(Shape{2, 3}), Random(Shape{4, 2})},
                   .expect_error = "inner dimensions differ"});
  cases.push_back({.name = "MatMul_not_matrix", .op = "MatMul",
                   .inputs = {Random(Shape{2, 3, 4}), Random(Shape{4, 2})},
                   .expect_error = "must have rank 2"});
  cases.push_back({.name = "BatchMatMulV2_broadcast", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{2, 1, 4, 3}), Random(Shape{3, 3, 5})},
                   .dtypes = kFloats, .reference = bmm});
  cases.push_back({.name = "BatchMatMulV2_matrix_x", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{4, 3}), Random(Shape{2, 3, 5})}, .reference = bmm});
  cases.push_back({.name = "BatchMatMulV2_rank2", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{4, 3}), Random(Shape{3, 5})}, .reference = bmm});
  cases.push_back({.name = "BatchMatMulV2_int", .op = "BatchMatMulV2",
                   .inputs = {RandomInt(Shape{3, 2, 4}, -9, 9), RandomInt(Shape{1, 4, 3}, -9, 9)},
                   .dtypes = ints, .reference = bmm});
  cases.push_back({.name = "BatchMatMulV2_empty_batch", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{0, 2, 3}), Random(Shape{3, 4})}, .reference = bmm});
  cases.push_back({.name = "BatchMatMulV2_empty_k", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{2, 3, 0}), Random(Shape{2, 0, 4})},
                   .dtypes = {DType::kFloat, DType::kHalf, DType::kInt64}, .reference = bmm});
  cases.push_back({.name = "BatchMatMulV2_inner_mismatch", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{2, 2, 3}), Random(Shape{2, 4, 2})},
                   .expect_error = "inner dimensions differ"});
  cases.push_back({.name = "BatchMatMulV2_batch_mismatch", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{2, 2, 3}), Random(Shape{3, 3, 2})},
                   .expect_error = "batch dimensions"});
  cases.push_back({.name = "BatchMatMulV2_vector", .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{3}), Random(Shape{3, 2})},
                   .expect_error = "must have rank >= 2"});
}

}  // namespace

void AddAddNCases(std::vector<OpCase>& cases) {
  auto sum = [](const std::vector<RefTensor>& in) {
    RefTensor out = in[0];
    for (size_t i = 1; i < in.size(); ++i)
      for (int64_t j = 0; j < out.size(); ++j) out.v[j] += in[i].v[j];
    return std::vector<RefTensor>{out};
  };
  const std::vector<DType> types = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16,
                                    DType::kInt8,  DType::kInt16,  DType::kInt32, DType::kInt64,
                                    DType::kUInt8};
  cases.push_back({.name = "AddN_three", .op = "AddN",
                   .inputs = {RandomInt(Shape{3, 4}, 0, 40), RandomInt(Shape{3, 4}, 0, 40),
                              RandomInt(Shape{3, 4}, 0, 40)},
                   .attrs = {{"N", MakeAttr(3)}}, .dtypes = types, .reference = sum});
  cases.push_back({.name = "AddN_one", .op = "AddN", .inputs = {Random(Shape{5})},
                   .attrs = {{"N", MakeAttr(1)}}, .reference = sum});
  cases.push_back({.name = "AddN_empty", .op = "AddN", .inputs = {Random(Shape{0, 2}), Random(Shape{0, 2})},
                   .attrs = {{"N", MakeAttr(2)}}, .reference = sum});
  cases.push_back({.name = "AddN_shape_mismatch", .op = "AddN",
                   .inputs = {Random(Shape{2, 3}), Random(Shape{3, 2})},
                   .attrs = {{"N", MakeAttr(2)}}, .expect_error = "incompatible"});
}

// Backward helper ops (math_grad_ops_cases.cc).
void AddMathGradOpCases(std::vector<OpCase>& cases);

std::vector<OpCase> MathOpCases() {
  std::vector<OpCase> cases;
  AddMathGradOpCases(cases);
  AddAddNCases(cases);
  AddBinaryCases(cases);
  AddComparisonCases(cases);
  AddUnaryCases(cases);
  AddCastCases(cases);
  AddMatMulCases(cases);
  return cases;
}

}  // namespace gradserve::testing
