#include "serving/checkpoint_store.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "graph/file_io.h"
#include "graph/status.h"

namespace gradserve::serving {
namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kPrefix = "ckpt-";
constexpr absl::string_view kSuffix = ".gsckpt";

std::string FileName(int64_t generation) {
  return absl::StrFormat("%s%012d%s", kPrefix, generation, kSuffix);
}

// The generation a checkpoint file name encodes; false for other names.
bool ParseName(absl::string_view name, int64_t* generation) {
  if (!absl::ConsumePrefix(&name, kPrefix) || !absl::ConsumeSuffix(&name, kSuffix)) return false;
  return absl::SimpleAtoi(name, generation) && *generation >= 0;
}

absl::Time ModificationTime(const fs::path& path) {
  std::error_code ec;
  const auto t = fs::last_write_time(path, ec);
  if (ec) return absl::UnixEpoch();
  const auto sys = std::chrono::file_clock::to_sys(t);
  return absl::FromChrono(std::chrono::time_point_cast<std::chrono::microseconds>(sys));
}

}  // namespace

absl::Status CheckpointStore::Init() const {
  GS_RETURN_IF_ERROR(CreateDirectories(dir_));
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(dir_, ec)) {
    const std::string name = file.path().filename().string();
    // Note [Atomic file replacement]: "<path>.tmp-<pid>-<random>".
    if (absl::StartsWith(name, kPrefix) && absl::StrContains(name, ".tmp-")) {
      fs::remove(file.path(), ec);
    }
  }
  return absl::OkStatus();
}

std::vector<CheckpointEntry> CheckpointStore::List() const {
  std::vector<CheckpointEntry> entries;
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(dir_, ec)) {
    CheckpointEntry e;
    e.name = file.path().filename().string();
    if (!ParseName(e.name, &e.generation)) continue;
    e.path = file.path().string();
    e.time = ModificationTime(file.path());
    absl::StatusOr<CheckpointIndex> index = ReadCheckpointIndex(e.path);
    e.step = index.ok() ? index->step() : -1;
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const CheckpointEntry& a, const CheckpointEntry& b) {
              return a.generation > b.generation;
            });
  return entries;
}

absl::StatusOr<CheckpointEntry> CheckpointStore::Write(
    std::vector<std::pair<std::string, Tensor>> tensors, int64_t step, int64_t generation) const {
  Tensor g(DType::kInt64, Shape{});
  g.data<int64_t>()[0] = generation;
  tensors.emplace_back(kGenerationTensor, std::move(g));
  CheckpointEntry entry;
  entry.name = FileName(generation);
  entry.path = absl::StrCat(dir_, "/", entry.name);
  entry.generation = generation;
  entry.step = step;
  GS_RETURN_IF_ERROR(WriteCheckpoint(entry.path, tensors, step));
  entry.time = ModificationTime(entry.path);
  // Retention: the newest keep_ files stay.
  std::vector<CheckpointEntry> all = List();
  for (size_t i = static_cast<size_t>(std::max(keep_, 1)); i < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i].path, ec);
  }
  return entry;
}

absl::StatusOr<std::pair<CheckpointEntry, Checkpoint>> CheckpointStore::ReadEntry(
    const CheckpointEntry& entry) const {
  GS_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(entry.path));
  auto it = ckpt.tensors.find(kGenerationTensor);
  if (it == ckpt.tensors.end() || it->second.dtype() != DType::kInt64 ||
      it->second.num_elements() != 1 || it->second.data<int64_t>()[0] != entry.generation) {
    return absl::DataLossError(absl::StrCat(entry.path, ": its '", kGenerationTensor,
                                            "' tensor is missing or does not match its name"));
  }
  CheckpointEntry e = entry;
  e.step = ckpt.step;
  return std::make_pair(std::move(e), std::move(ckpt));
}

absl::StatusOr<std::pair<CheckpointEntry, Checkpoint>> CheckpointStore::Read(
    const std::string& name) const {
  std::vector<CheckpointEntry> all = List();
  std::vector<std::string> names;
  for (const CheckpointEntry& e : all) {
    if (e.name == name || absl::StripSuffix(e.name, kSuffix) == name) return ReadEntry(e);
    names.push_back(e.name);
  }
  return absl::NotFoundError(
      absl::StrCat("no checkpoint '", name, "' in ", dir_, "; there are: ",
                   names.empty() ? "none" : absl::StrJoin(names, ", ")));
}

absl::StatusOr<std::pair<CheckpointEntry, Checkpoint>> CheckpointStore::ReadNewestValid(
    const std::function<absl::Status(const Checkpoint&)>& accept,
    const std::function<void(const CheckpointEntry&, const absl::Status&)>& skipped) const {
  for (const CheckpointEntry& e : List()) {
    absl::StatusOr<std::pair<CheckpointEntry, Checkpoint>> read = ReadEntry(e);
    absl::Status status = read.ok() ? accept(read->second) : read.status();
    if (status.ok()) return read;
    if (skipped) skipped(e, status);
  }
  return absl::NotFoundError(absl::StrCat("no usable checkpoint in ", dir_));
}

}  // namespace gradserve::serving
