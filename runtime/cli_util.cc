#include "runtime/cli_util.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "models/tokenizer.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace kitty::runtime {
namespace {

// --help lists the flags defined under runtime/ (the tool's own main, engine_flags.cc,
// cache_flags.cc, ...). Abseil's default only takes <binary name>.cc / <binary name>_main.cc,
// which never matches "kitty-run" against kitty_run_main.cc, so --help listed no flags.
bool IsKittyFlagFile(absl::string_view filename) {
  return absl::StartsWith(filename, "runtime/") || absl::StrContains(filename, "/runtime/");
}

// "Flags from runtime/engine_flags.cc:" rather than the build machine's absolute path.
std::string NormalizeFlagFile(absl::string_view filename) {
  if (const size_t pos = filename.rfind("/runtime/"); pos != absl::string_view::npos) {
    filename.remove_prefix(pos + 1);
  }
  while (absl::ConsumePrefix(&filename, "/")) {
  }
  return std::string(filename);
}

}  // namespace

void DieWithStatus(absl::string_view tool, const absl::Status& status) {
  std::string msg(status.message());
  for (char& c : msg) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(tool.size()), tool.data(), msg.c_str());
  std::fflush(stderr);
  std::exit(status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
}

absl::StatusOr<std::vector<int32_t>> ParseTokenIds(absl::string_view text, absl::string_view flag) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": \"", part, "\" is not an integer token id"));
    }
    ids.push_back(id);
  }
  return ids;
}

absl::Status CheckUtf8(absl::string_view value, absl::string_view flag) {
  if (models::IsValidUtf8(std::string_view(value.data(), value.size()))) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(flag, " is not valid UTF-8"));
}

void ParseFlagsOrDie(int argc, char** argv, absl::string_view usage) {
  // Logs go to stderr: stdout carries the tools' results (JSON lines).
  spdlog::set_default_logger(spdlog::stderr_color_mt("kitty"));
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = IsKittyFlagFile;
  config.contains_help_flags = IsKittyFlagFile;
  config.contains_helppackage_flags = IsKittyFlagFile;
  config.normalize_filename = NormalizeFlagFile;
  absl::SetFlagsUsageConfig(config);
  // Accept vLLM-style dashed names (--max-tokens) for Abseil's underscored flags (--max_tokens).
  static std::vector<std::string> storage;
  storage.reserve(argc);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.size() > 2 && a[0] == '-' && a[1] == '-') {
      const size_t end = std::min(a.find('='), a.size());
      for (size_t j = 2; j < end; ++j) {
        if (a[j] == '-') a[j] = '_';
      }
      storage.push_back(std::move(a));
      argv[i] = storage.back().data();
    }
  }
  // absl::ParseCommandLine with the usage flags handled here: Abseil 20220623 exits 1 after
  // --help / --helpfull / --helpshort; asking for help is not an error, so those exit 0.
  std::vector<char*> rest = absl::flags_internal::ParseCommandLineImpl(
      argc, argv, absl::flags_internal::ArgvListAction::kRemoveParsedArgs,
      absl::flags_internal::UsageFlagsAction::kIgnoreUsage,
      absl::flags_internal::OnUndefinedFlag::kAbortIfUndefined);
  if (const int code = absl::flags_internal::HandleUsageFlags(std::cout, usage); code != -1) {
    std::cout.flush();
    std::exit(0);
  }
  if (rest.size() > 1) {
    std::fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", argv[0], rest[1]);
    std::exit(2);
  }
}

}  // namespace kitty::runtime
