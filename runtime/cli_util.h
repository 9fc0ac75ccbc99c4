// File: runtime/cli_util.h
// -----------------------------------------------------------------------------
// Shared bits of the command-line tools: the one-line error exit, token-id list parsing and
// JSON output helpers.
#ifndef KITTY_RUNTIME_CLI_UTIL_H_
#define KITTY_RUNTIME_CLI_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kitty::runtime {

// Prints "<tool>: <message>" on one line to stderr and exits with status 1 (2 for usage).
[[noreturn]] void DieWithStatus(absl::string_view tool, const absl::Status& status);

// Parses "1,2,3" (spaces allowed) into ids; the error names `flag`.
absl::StatusOr<std::vector<int32_t>> ParseTokenIds(absl::string_view text, absl::string_view flag);

// OK if `value` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF,
// as protobuf requires of string fields); else InvalidArgument "<flag> is not valid UTF-8".
absl::Status CheckUtf8(absl::string_view value, absl::string_view flag);

// Sets up the tool's name for usage messages and parses flags; positional args are rejected.
void ParseFlagsOrDie(int argc, char** argv, absl::string_view usage);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_CLI_UTIL_H_
