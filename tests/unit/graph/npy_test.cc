#include "graph/npy.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "graph/file_io.h"
#include "gtest/gtest.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;

const std::vector<DType>& NpyDTypes() {
  static const std::vector<DType> types = {DType::kHalf,  DType::kFloat, DType::kDouble,
                                           DType::kInt8,  DType::kUInt8, DType::kInt16,
                                           DType::kInt32, DType::kInt64, DType::kBool};
  return types;
}

Tensor RandomTensor(DType dtype, const Shape& shape) {
  switch (dtype) {
    case DType::kBool:
      return testing::ToTensor(testing::RandomInt(shape, 0, 1), dtype);
    case DType::kUInt8:
      return testing::ToTensor(testing::RandomInt(shape, 0, 255), dtype);
    case DType::kInt8:
      return testing::ToTensor(testing::RandomInt(shape, -128, 127), dtype);
    default:
      if (IsIntegerDType(dtype)) {
        return testing::ToTensor(testing::RandomInt(shape, -30000, 30000), dtype);
      }
      return testing::ToTensor(testing::Random(shape, -100, 100), dtype);
  }
}

std::string Bytes(const Tensor& t) {
  return t.bytes() == 0 ? "" : std::string(static_cast<const char*>(t.raw_data()), t.bytes());
}

// A .npy file with a hand-written header (padded as numpy does).
std::string NpyWithHeader(absl::string_view dict, absl::string_view data, int major = 1) {
  std::string header(dict);
  const size_t preamble = major == 1 ? 10 : 12;
  while ((preamble + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (size_t i = 0; i < preamble - 8; ++i)
    out.push_back(static_cast<char>(header.size() >> (8 * i)));
  return out + header + std::string(data);
}

TEST(NpyTest, RoundTripsEveryDtypeAndShape) {
  const std::vector<Shape> shapes = {Shape{},     Shape{0},       Shape{7},
                                     Shape{3, 4}, Shape{2, 0, 3}, Shape{2, 3, 4, 5}};
  for (DType dtype : NpyDTypes()) {
    for (const Shape& shape : shapes) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), shape.DebugString()));
      const Tensor t = RandomTensor(dtype, shape);
      absl::StatusOr<std::string> bytes = SerializeNpy(t);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      absl::StatusOr<Tensor> back = ParseNpy(*bytes);
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->dtype(), dtype);
      EXPECT_EQ(back->shape(), shape);
      EXPECT_EQ(Bytes(*back), Bytes(t));
    }
  }
}

TEST(NpyTest, WritesNumpyStyleAlignedHeader) {
  absl::StatusOr<std::string> bytes = SerializeNpy(Tensor::FromVector<float>({1, 2, 3}));
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len =
      static_cast<unsigned char>((*bytes)[8]) | static_cast<unsigned char>((*bytes)[9]) << 8;
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ((*bytes)[10 + header_len - 1], '\n');
  EXPECT_THAT(bytes->substr(10, header_len),
              HasSubstr("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"));
  EXPECT_EQ(bytes->size(), 10 + header_len + 12);
}

TEST(NpyTest, BFloat16IsWrittenAsFloat32) {
  const Tensor t =
      testing::ToTensor(testing::Values(Shape{2, 2}, {1.5, -2, 0.25, 1024}), DType::kBFloat16);
  absl::StatusOr<Tensor> back = ParseNpy(*SerializeNpy(t));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dtype(), DType::kFloat);
  EXPECT_EQ(back->shape(), (Shape{2, 2}));
  EXPECT_THAT(back->span<float>(), ::testing::ElementsAre(1.5f, -2.0f, 0.25f, 1024.0f));
}

TEST(NpyTest, ReadsVersion2And3Headers) {
  const std::string data("\x01\x00\x02\x00\x03\x00", 6);
  for (int major : {2, 3}) {
    absl::StatusOr<Tensor> t = ParseNpy(
        NpyWithHeader("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", data, major));
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_THAT(t->span<int16_t>(), ::testing::ElementsAre(1, 2, 3));
  }
}

TEST(NpyTest, AcceptsDoubleQuotesAndAnyKeyOrder) {
  absl::StatusOr<Tensor> t = ParseNpy(NpyWithHeader(
      "{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"|u1\"}", "\x07\x09"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{1, 2}));
  EXPECT_THAT(t->span<uint8_t>(), ::testing::ElementsAre(7, 9));
}

TEST(NpyTest, RejectsWhatItCannotRepresent) {
  const std::string four(4, '\0');
  struct Case {
    std::string dict;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "Fortran order"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "big-endian"},
      {"{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }", "unsupported .npy dtype '<u4'"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "unsupported .npy dtype"},
      {"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "unsupported .npy dtype"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "structured"},
      {"{'descr': '<f4', 'shape': (1,), }", "'descr', 'fortran_order' and 'shape' are required"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unexpected key 'x'"},
      {"{'descr': '<f4', 'fortran_order': Nope, 'shape': (1,), }", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "non-negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,) ", "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", "after the dict"},
      {"{'descr: '<f4'}", "malformed .npy header"},
      {"[1, 2]", "malformed .npy header"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dict);
    absl::StatusOr<Tensor> t = ParseNpy(NpyWithHeader(c.dict, four));
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(), HasSubstr(c.error));
  }
}

TEST(NpyTest, RejectsBadPreambles) {
  const std::string good = *SerializeNpy(Tensor::FromVector<int32_t>({1, 2, 3}));
  EXPECT_THAT(ParseNpy("").status().message(), HasSubstr("not a .npy file"));
  EXPECT_THAT(ParseNpy("PK\x03\x04 a zip file").status().message(), HasSubstr("not a .npy file"));
  std::string v4 = good;
  v4[6] = 4;
  EXPECT_THAT(ParseNpy(v4).status().message(), HasSubstr("unsupported .npy format version 4.0"));
  std::string long_header = good;
  long_header[9] = 0x7f;  // header length far beyond the file
  EXPECT_THAT(ParseNpy(long_header).status().message(), HasSubstr("truncated .npy header"));
}

TEST(NpyTest, RejectsEveryTruncationAndTrailingBytes) {
  const std::string good = *SerializeNpy(RandomTensor(DType::kDouble, Shape{3, 5}));
  for (size_t n = 0; n < good.size(); ++n) {
    absl::StatusOr<Tensor> t = ParseNpy(absl::string_view(good).substr(0, n));
    ASSERT_FALSE(t.ok()) << "accepted a file truncated to " << n << " of " << good.size();
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(ParseNpy(good.substr(0, good.size() - 3)).status().message(),
              HasSubstr("(truncated file)"));
  EXPECT_THAT(ParseNpy(good + "xyz").status().message(), HasSubstr("(trailing bytes)"));
}

TEST(NpyTest, RejectsHugeShapesWithoutAllocating) {
  absl::StatusOr<Tensor> t = ParseNpy(NpyWithHeader(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", ""));
  EXPECT_THAT(t.status().message(), HasSubstr("too large"));
  t = ParseNpy(
      NpyWithHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000), }", ""));
  EXPECT_THAT(t.status().message(), HasSubstr("(truncated file)"));
}

TEST(NpyTest, NonZeroBoolBytesReadAsTrue) {
  absl::StatusOr<Tensor> t = ParseNpy(NpyWithHeader(
      "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\x00\x01\x07", 3)));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->span<bool>(), ::testing::ElementsAre(false, true, true));
}

TEST(NpyTest, FileErrorsNameThePath) {
  const std::string dir = ::testing::TempDir() + "/npy_file_errors";
  ASSERT_TRUE(CreateDirectories(dir).ok());
  absl::StatusOr<Tensor> t = ReadNpy(dir + "/missing.npy");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr("missing.npy"));
  ASSERT_TRUE(WriteFileAtomically(dir + "/bad.npy", "garbage").ok());
  EXPECT_THAT(ReadNpy(dir + "/bad.npy").status().message(), HasSubstr("bad.npy: not a .npy"));
  const Tensor resource(DType::kResource, Shape{});
  EXPECT_THAT(WriteNpy(dir + "/r.npy", resource).message(), HasSubstr("no .npy representation"));
  const Tensor v = RandomTensor(DType::kInt64, Shape{4});
  ASSERT_TRUE(WriteNpy(dir + "/v.npy", v).ok());
  EXPECT_EQ(Bytes(*ReadNpy(dir + "/v.npy")), Bytes(v));
}

// Interop with real NumPy. The interpreter: $GRADSERVE_PYTHON, else the project's
// .venv (next to tests/ as ctest's GRADSERVE_TEST_DATA says, or two levels above
// the test binary's build directory), else python3; skipped without NumPy.
constexpr char kNumpyScript[] = R"py(
import sys
import numpy as np

mode, d = sys.argv[1], sys.argv[2]
CODES = ['<f2', '<f4', '<f8', '|i1', '|u1', '<i2', '<i4', '<i8', '|b1']
SHAPES = [(), (0,), (7,), (3, 4), (2, 0, 3), (2, 3, 4, 5)]


def rand(rng, code, shape):
    dt = np.dtype(code)
    if dt.kind == 'f':
        return (rng.standard_normal(shape) * 100).astype(dt)
    if dt.kind == 'b':
        return rng.integers(0, 2, shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, endpoint=True, dtype=dt)


if mode == 'write':
    rng = np.random.default_rng(int(sys.argv[3]))
    lines = []

    def save(name, a, expect, version=None):
        path = f'{d}/{name}.npy'
        if version is None:
            np.save(path, a)
        else:
            with open(path, 'wb') as f:
                np.lib.format.write_array(f, a, version=version)
        with open(f'{d}/{name}.bin', 'wb') as f:
            f.write(np.ascontiguousarray(a).tobytes())
        lines.append(' '.join([name, expect, a.dtype.str] + [str(s) for s in a.shape]))

    for i, (code, shape) in enumerate((c, s) for c in CODES for s in SHAPES):
        save(f'a{i}', rand(rng, code, shape), 'ok')
    save('v2', rand(rng, '<f4', (5, 3)), 'ok', (2, 0))
    save('v3', rand(rng, '<i8', (4,)), 'ok', (3, 0))
    save('fortran', np.asfortranarray(rand(rng, '<f4', (3, 4))), 'Fortran')
    save('bigendian', rand(rng, '<f4', (3,)).astype('>f4'), 'big-endian')
    save('uint32', rand(rng, '<u4', (3,)), 'unsupported')
    save('complex', rng.standard_normal(3).astype('<c8'), 'unsupported')
    with open(f'{d}/manifest.txt', 'w') as f:
        f.write('\n'.join(lines) + '\n')
else:
    bad = 0
    for line in open(f'{d}/manifest.txt'):
        name, descr, *shape = line.split()
        a = np.load(f'{d}/{name}.npy')
        want = open(f'{d}/{name}.bin', 'rb').read()
        shape = tuple(int(s) for s in shape)
        if a.dtype.str != descr or a.shape != shape or a.tobytes() != want:
            print(f'{name}: numpy read {a.dtype.str}{a.shape}, expected {descr}{shape}, '
                  f'bytes equal: {a.tobytes() == want}')
            bad += 1
    sys.exit(1 if bad else 0)
)py";

// Runs `command`, returning its exit status and output.
std::pair<int, std::string> RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string FindNumpyPython() {
  std::vector<std::string> candidates;
  if (const char* p = std::getenv("GRADSERVE_PYTHON")) candidates.push_back(p);
  if (const char* d = std::getenv("GRADSERVE_TEST_DATA")) {
    candidates.push_back(std::string(d) + "/../.venv/bin/python");
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back((exe.parent_path() / "../../.venv/bin/python").string());
  candidates.push_back("python3");
  for (const std::string& python : candidates) {
    if (RunCommand("'" + python + "' -c 'import numpy'").first == 0) return python;
  }
  return "";
}

class NpyNumpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    python_ = FindNumpyPython();
    if (python_.empty()) {
      GTEST_SKIP() << "no Python with NumPy found (set GRADSERVE_PYTHON or run scripts/setup.sh)";
    }
    dir_ = ::testing::TempDir() + "/npy_numpy_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(CreateDirectories(dir_).ok());
    ASSERT_TRUE(WriteFileAtomically(dir_ + "/npy_check.py", kNumpyScript).ok());
  }
  std::pair<int, std::string> Python(const std::string& args) {
    return RunCommand("'" + python_ + "' '" + dir_ + "/npy_check.py' " + args);
  }

  std::string python_;
  std::string dir_;
};

TEST_F(NpyNumpyTest, ReadsWhatNumpySaves) {
  const uint64_t seed = testing::Rng()() % 1000000007;
  std::printf("numpy fixture seed: %llu\n", static_cast<unsigned long long>(seed));
  const auto [rc, output] = Python("write '" + dir_ + "' " + std::to_string(seed));
  ASSERT_EQ(rc, 0) << output;
  std::ifstream manifest(dir_ + "/manifest.txt");
  std::string line;
  int ok = 0, rejected = 0;
  while (std::getline(manifest, line)) {
    const std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_GE(f.size(), 3u) << line;
    SCOPED_TRACE(line);
    absl::StatusOr<Tensor> t = ReadNpy(dir_ + "/" + f[0] + ".npy");
    if (f[1] != "ok") {
      ASSERT_FALSE(t.ok());
      EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(t.status().message(), HasSubstr(f[1]));
      ++rejected;
      continue;
    }
    ASSERT_TRUE(t.ok()) << t.status();
    Shape shape;
    for (size_t i = 3; i < f.size(); ++i) shape.AddDim(std::stoll(f[i]));
    EXPECT_EQ(t->shape(), shape);
    EXPECT_EQ(Bytes(*t), *ReadFileToString(dir_ + "/" + f[0] + ".bin"));
    ++ok;
  }
  EXPECT_EQ(ok, 9 * 6 + 2);
  EXPECT_EQ(rejected, 4);
}

TEST_F(NpyNumpyTest, NumpyLoadsWhatWeWrite) {
  const std::vector<Shape> shapes = {Shape{},     Shape{0},       Shape{5},
                                     Shape{4, 3}, Shape{2, 0, 2}, Shape{2, 3, 1, 4}};
  std::string manifest;
  int i = 0;
  for (DType dtype : NpyDTypes()) {
    for (const Shape& shape : shapes) {
      const Tensor t = RandomTensor(dtype, shape);
      const std::string name = absl::StrCat("t", i++);
      ASSERT_TRUE(WriteNpy(dir_ + "/" + name + ".npy", t).ok());
      ASSERT_TRUE(WriteFileAtomically(dir_ + "/" + name + ".bin", Bytes(t)).ok());
      const std::string descr = std::string(DTypeSize(dtype) == 1 ? "|" : "<") +
                                (dtype == DType::kBool    ? "b"
                                 : IsFloatingDType(dtype) ? "f"
                                 : dtype == DType::kUInt8 ? "u"
                                                          : "i") +
                                std::to_string(DTypeSize(dtype));
      absl::StrAppend(&manifest, name, " ", descr);
      for (int64_t d : shape.dims()) absl::StrAppend(&manifest, " ", d);
      manifest += "\n";
    }
  }
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/manifest.txt", manifest).ok());
  const auto [rc, output] = Python("check '" + dir_ + "'");
  EXPECT_EQ(rc, 0) << output;
}

}  // namespace
}  // namespace gradserve
