// Status helpers shared by every layer. Errors are values (absl::Status); user
// mistakes are InvalidArgument/NotFound/..., broken invariants are Internal.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define GS_CONCAT_INNER_(a, b) a##b
#define GS_CONCAT_(a, b) GS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` is not OK.
#define GS_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::absl::Status gs_status_ = (expr);           \
    if (!gs_status_.ok()) return gs_status_;      \
  } while (0)

// `GS_ASSIGN_OR_RETURN(auto x, MakeX());` assigns the value or returns the error.
#define GS_ASSIGN_OR_RETURN(lhs, rexpr) \
  GS_ASSIGN_OR_RETURN_IMPL_(GS_CONCAT_(gs_statusor_, __LINE__), lhs, rexpr)
#define GS_ASSIGN_OR_RETURN_IMPL_(var, lhs, rexpr) \
  auto var = (rexpr);                              \
  if (!var.ok()) return std::move(var).status();   \
  lhs = std::move(var).value()

// Bad user input: returns InvalidArgument with the concatenated message.
#define GS_CHECK_ARG(cond, ...)                                              \
  do {                                                                       \
    if (!(cond)) return ::absl::InvalidArgumentError(absl::StrCat(__VA_ARGS__)); \
  } while (0)

namespace gradserve {

// Prefixes `status`'s message with `context` (e.g. the node name), keeping the code.
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace gradserve
