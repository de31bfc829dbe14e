// gradserve-cli's pieces shared between its files: the flags every command
// reads, and the commands that live outside clients/cli.cc (the training
// commands, clients/cli_training.cc). Each command prints "key: value" lines
// named after the response's fields and returns the call's status.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/client.h"

namespace gradserve::client {

// Every command's flag values (program_options writes into them).
struct Flags {
  std::string url = "localhost:8001";
  int64_t timeout_ms = 0;
  std::string model, version, id;
  std::vector<std::string> inputs, outputs;
  std::string json, output_dir;
  bool ready_only = false;
  std::string checkpoint;
  int64_t export_version = 0;
};

// The --input NAME=FILE.npy tensors (infer, train).
absl::StatusOr<std::vector<Tensor>> ReadInputs(const Flags& f);

// gradserve.v1.TrainingService's calls (clients/cli_training.cc).
absl::Status Train(Client& client, const Flags& f, std::ostream& out);
absl::Status Checkpoint(Client& client, const Flags& f, std::ostream& out);
absl::Status Export(Client& client, const Flags& f, std::ostream& out);
absl::Status Rollback(Client& client, const Flags& f, std::ostream& out);
absl::Status TrainingStatus(Client& client, const Flags& f, std::ostream& out);

}  // namespace gradserve::client
