// Whole-file reads and crash-safe writes (POSIX), shared by the checkpoint, .npy
// and saved-model code.
//
// Note [Atomic file replacement]: a file is written to "<path>.tmp-<pid>-<random>"
// in the same directory, fsync'd, renamed over <path>, and then the directory is
// fsync'd so the rename itself is durable. A crash at any point leaves either the
// old file or the new one under <path>, never a mix; at worst a stray .tmp- file
// remains. Readers therefore never need to handle a half-written file that was
// produced by us (but still verify checksums: disks and copies can corrupt).
//
// Errors carry the path and the system's reason (absl::ErrnoToStatus codes:
// NotFound for a missing file, PermissionDenied, ...).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gradserve {

absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Like `mkdir -p`; OK when the directory already exists.
absl::Status CreateDirectories(const std::string& path);

// Streams a new version of one file (see Note [Atomic file replacement]).
// Destroying the writer before Commit() removes the temporary file and leaves
// <path> untouched. Not thread-safe.
class AtomicFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  absl::Status Append(absl::string_view data);
  // Appends zero bytes until size() is a multiple of `alignment`.
  absl::Status PadTo(uint64_t alignment);
  // Bytes appended so far.
  uint64_t size() const { return size_; }
  // fsync, close, rename over the destination, fsync the directory.
  absl::Status Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  void Abandon();

  std::string path_;
  std::string temp_path_;
  int fd_;  // -1 once closed
  uint64_t size_ = 0;
  bool committed_ = false;
};

// Replaces `path` with `contents` (see Note [Atomic file replacement]).
// fsyncs directory `dir`, making renames and creations in it durable.
absl::Status SyncDirectory(const std::string& dir);

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace gradserve
