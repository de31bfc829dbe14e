#include "graph/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "graph/file_io.h"
#include "graph/status.h"

namespace gradserve {
namespace {

static_assert(std::endian::native == std::endian::little);

uint32_t Crc32(const void* data, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc32_z(0, nullptr, 0), static_cast<const Bytef*>(data), n));
}

template <typename T>
void AppendInt(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}
template <typename T>
T LoadInt(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

bool IsCheckpointDType(DType dtype) {
  switch (dtype) {
    case DType::kFloat:
    case DType::kDouble:
    case DType::kHalf:
    case DType::kBFloat16:
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64:
    case DType::kBool:
      return true;
    default:
      return false;
  }
}

// A read-only file read at offsets; closes on destruction.
class FileReader {
 public:
  static absl::StatusOr<FileReader> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int error = errno;
      ::close(fd);
      return absl::ErrnoToStatus(error, absl::StrCat("cannot stat ", path));
    }
    return FileReader(path, fd, static_cast<uint64_t>(st.st_size));
  }
  FileReader(FileReader&& other) noexcept
      : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), size_(other.size_) {}
  ~FileReader() {
    if (fd_ >= 0) ::close(fd_);
  }

  uint64_t size() const { return size_; }
  absl::Status ReadAt(uint64_t offset, uint64_t n, char* out) const {
    while (n > 0) {
      const ssize_t r = ::pread(fd_, out, n, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path_));
      if (r == 0) {
        return absl::DataLossError(absl::StrCat("checkpoint ", path_, ": unexpected end of file"));
      }
      out += r;
      offset += r;
      n -= r;
    }
    return absl::OkStatus();
  }

 private:
  FileReader(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  uint64_t size_;
};

struct Located {
  CheckpointIndex index;
  uint64_t index_offset = 0;
};

absl::Status Corrupt(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("checkpoint ", path, ": ", what));
}

// Checks one entry's metadata against the file's geometry.
absl::Status CheckEntry(const CheckpointEntry& e, uint64_t data_end, const std::string& path) {
  const auto bad = [&](absl::string_view why) {
    return Corrupt(path, absl::StrCat("tensor '", e.name(), "': ", why));
  };
  const DType dtype = static_cast<DType>(e.dtype());
  if (!IsCheckpointDType(dtype)) return bad(absl::StrCat("unsupported dtype ", e.dtype()));
  const Shape shape = Shape::FromProto(e.shape());
  if (shape.unknown_rank()) return bad("shape of unknown rank");
  uint64_t bytes = DTypeSize(dtype);
  for (const auto& d : e.shape().dim()) {
    if (d.size() < 0 || __builtin_mul_overflow(bytes, static_cast<uint64_t>(d.size()), &bytes)) {
      return bad(absl::StrCat("invalid shape ", shape.DebugString()));
    }
  }
  if (bytes != e.size()) {
    return bad(absl::StrCat("size ", e.size(), " does not match ", DTypeName(dtype),
                            shape.DebugString(), " (", bytes, " bytes)"));
  }
  if (e.offset() % kCheckpointAlignment != 0 || e.offset() < kCheckpointMagic.size() ||
      e.offset() > data_end || e.size() > data_end - e.offset()) {
    return bad(absl::StrCat("bytes [", e.offset(), ", +", e.size(),
                            ") lie outside the data section [8, ", data_end, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Located> ReadIndex(const FileReader& file, const std::string& path) {
  const uint64_t size = file.size();
  if (size < kCheckpointMagic.size() + kCheckpointTrailerSize) {
    return Corrupt(path, absl::StrCat("file is only ", size, " bytes (truncated)"));
  }
  char magic[8];
  GS_RETURN_IF_ERROR(file.ReadAt(0, sizeof(magic), magic));
  if (absl::string_view(magic, 8) != kCheckpointMagic) {
    return Corrupt(path, "bad header magic (not a gradserve checkpoint, or corrupt)");
  }
  char trailer[kCheckpointTrailerSize];
  GS_RETURN_IF_ERROR(file.ReadAt(size - kCheckpointTrailerSize, sizeof(trailer), trailer));
  if (absl::string_view(trailer + 20, 8) != kCheckpointMagic) {
    return Corrupt(path, "trailer magic missing (file truncated, incompletely written or corrupt)");
  }
  const uint64_t index_offset = LoadInt<uint64_t>(trailer);
  const uint64_t index_size = LoadInt<uint64_t>(trailer + 8);
  const uint32_t index_crc = LoadInt<uint32_t>(trailer + 16);
  const uint64_t index_end = size - kCheckpointTrailerSize;
  if (index_offset < kCheckpointMagic.size() || index_offset > index_end ||
      index_size != index_end - index_offset) {
    return Corrupt(path, absl::StrCat("trailer is corrupt or the file was truncated: index at ",
                                      index_offset, " (+", index_size,
                                      " bytes) but the index "
                                      "must end at ",
                                      index_end));
  }
  std::string index_bytes(index_size, '\0');
  GS_RETURN_IF_ERROR(file.ReadAt(index_offset, index_size, index_bytes.data()));
  if (Crc32(index_bytes.data(), index_bytes.size()) != index_crc) {
    return Corrupt(path, "index is corrupt (crc32 mismatch)");
  }
  Located out;
  if (!out.index.ParseFromString(index_bytes)) return Corrupt(path, "index does not parse");
  out.index_offset = index_offset;
  absl::flat_hash_set<std::string> names;
  for (const CheckpointEntry& e : out.index.entry()) {
    if (e.name().empty()) return Corrupt(path, "index has an entry with no name");
    if (!names.insert(e.name()).second) {
      return Corrupt(path, absl::StrCat("tensor '", e.name(), "' appears twice in the index"));
    }
    GS_RETURN_IF_ERROR(CheckEntry(e, index_offset, path));
  }
  return out;
}

// Every byte of the data section outside the tensors must be zero padding, so a
// flipped bit anywhere in the file is caught.
absl::Status CheckPadding(const FileReader& file, const Located& located, const std::string& path) {
  std::vector<std::pair<uint64_t, uint64_t>> regions;  // [begin, end)
  for (const CheckpointEntry& e : located.index.entry()) {
    regions.emplace_back(e.offset(), e.offset() + e.size());
  }
  std::sort(regions.begin(), regions.end());
  uint64_t pos = kCheckpointMagic.size();
  regions.emplace_back(located.index_offset, located.index_offset);
  std::string gap;
  for (const auto& [begin, end] : regions) {
    if (begin < pos) {
      return Corrupt(path, absl::StrCat("tensor data regions overlap at offset ", begin));
    }
    gap.resize(begin - pos);
    GS_RETURN_IF_ERROR(file.ReadAt(pos, gap.size(), gap.data()));
    const size_t nonzero = gap.find_first_not_of('\0');
    if (nonzero != std::string::npos) {
      return Corrupt(path, absl::StrCat("padding byte at offset ", pos + nonzero, " is not zero"));
    }
    pos = end;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteCheckpoint(const std::string& path,
                             const std::vector<std::pair<std::string, Tensor>>& tensors,
                             int64_t step) {
  absl::flat_hash_set<absl::string_view> names;
  for (const auto& [name, t] : tensors) {
    GS_CHECK_ARG(!name.empty(), "checkpoint tensors need a name");
    GS_CHECK_ARG(names.insert(name).second, "tensor '", name, "' is given twice");
    GS_CHECK_ARG(t.initialized(), "tensor '", name, "' has no value");
    GS_CHECK_ARG(IsCheckpointDType(t.dtype()), "tensor '", name, "' has dtype ",
                 DTypeName(t.dtype()), ", which checkpoints cannot hold");
    GS_CHECK_ARG(t.host_accessible(), "tensor '", name, "' is on ", t.device(),
                 "; copy it to the host first");
  }
  GS_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file, AtomicFileWriter::Create(path));
  GS_RETURN_IF_ERROR(file->Append(kCheckpointMagic));
  CheckpointIndex index;
  index.set_step(step);
  for (const auto& [name, t] : tensors) {
    GS_RETURN_IF_ERROR(file->PadTo(kCheckpointAlignment));
    CheckpointEntry* e = index.add_entry();
    e->set_name(name);
    e->set_dtype(static_cast<DataType>(t.dtype()));
    t.shape().ToProto(e->mutable_shape());
    e->set_offset(file->size());
    e->set_size(t.bytes());
    e->set_crc32(Crc32(t.raw_data(), t.bytes()));
    if (t.bytes() > 0) {
      GS_RETURN_IF_ERROR(
          file->Append(absl::string_view(static_cast<const char*>(t.raw_data()), t.bytes())));
    }
  }
  std::string index_bytes;
  if (!index.SerializeToString(&index_bytes)) {
    return absl::InternalError("cannot serialize the checkpoint index");
  }
  std::string trailer;
  AppendInt<uint64_t>(trailer, file->size());
  AppendInt<uint64_t>(trailer, index_bytes.size());
  AppendInt<uint32_t>(trailer, Crc32(index_bytes.data(), index_bytes.size()));
  trailer.append(kCheckpointMagic.data(), kCheckpointMagic.size());
  GS_RETURN_IF_ERROR(file->Append(index_bytes));
  GS_RETURN_IF_ERROR(file->Append(trailer));
  return file->Commit();
}

absl::StatusOr<CheckpointIndex> ReadCheckpointIndex(const std::string& path) {
  GS_ASSIGN_OR_RETURN(FileReader file, FileReader::Open(path));
  GS_ASSIGN_OR_RETURN(Located located, ReadIndex(file, path));
  return std::move(located.index);
}

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path) {
  GS_ASSIGN_OR_RETURN(FileReader file, FileReader::Open(path));
  GS_ASSIGN_OR_RETURN(Located located, ReadIndex(file, path));
  GS_RETURN_IF_ERROR(CheckPadding(file, located, path));
  Checkpoint ckpt;
  ckpt.step = located.index.step();
  for (const CheckpointEntry& e : located.index.entry()) {
    // Sizes were checked against the file, so this allocation is bounded by it.
    Tensor t(static_cast<DType>(e.dtype()), Shape::FromProto(e.shape()));
    GS_RETURN_IF_ERROR(file.ReadAt(e.offset(), e.size(), static_cast<char*>(t.raw_data())));
    const uint32_t crc = Crc32(t.raw_data(), t.bytes());
    if (crc != e.crc32()) {
      return Corrupt(path, absl::StrCat("tensor '", e.name(), "' is corrupt (crc32 ",
                                        absl::Hex(crc), ", expected ", absl::Hex(e.crc32()), ")"));
    }
    if (t.dtype() == DType::kBool) {
      auto* raw = static_cast<unsigned char*>(t.raw_data());
      for (int64_t i = 0; i < t.num_elements(); ++i) raw[i] = raw[i] != 0;
    }
    ckpt.tensors.emplace(e.name(), std::move(t));
  }
  return ckpt;
}

}  // namespace gradserve
