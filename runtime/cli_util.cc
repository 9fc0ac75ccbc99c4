#include "runtime/cli_util.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace kitty::runtime {

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

void ParseFlagsOrDie(int argc, char** argv, absl::string_view usage) {
  // Logs go to stderr: stdout carries the tools' results (JSON lines).
  spdlog::set_default_logger(spdlog::stderr_color_mt("kitty"));
  absl::SetProgramUsageMessage(usage);
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
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", argv[0], rest[1]);
    std::exit(2);
  }
}

}  // namespace kitty::runtime
