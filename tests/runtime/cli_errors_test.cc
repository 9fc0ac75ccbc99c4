// Bad input to the real kitty-run binary (issue 2, "What it must show", last bullet): each case
// exits nonzero (normally, not by a signal) with exactly one line on stderr that names the file
// or flag and the problem. Fixtures are built in a temporary directory from copies of
// ../shared/data/stories260K/hf, patched at test time.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace kitty::runtime {
namespace {

namespace fs = std::filesystem;
using ::kitty::testing::BinDir;
using ::kitty::testing::ReadFileOrDie;
using ::kitty::testing::TestDataPath;
using ::testing::AllOf;
using ::testing::HasSubstr;

struct RunResult {
  bool exited = false;  // WIFEXITED
  int exit_code = -1;
  int signal = 0;
  std::string out, err;
};

// Runs build/bin/<tool> with `flags`; stdout and stderr go to files under `scratch`.
RunResult RunTool(const std::string& tool, const std::vector<std::string>& flags,
                  const fs::path& scratch) {
  const std::string out_path = (scratch / "stdout.txt").string();
  const std::string err_path = (scratch / "stderr.txt").string();
  std::vector<std::string> args = {BinDir() + "/" + tool};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  RunResult r;
  pid_t pid;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(rc);
    return r;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exited = WIFEXITED(status);
  if (r.exited) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = ReadFileOrDie(out_path);
  r.err = ReadFileOrDie(err_path);
  return r;
}

// kitty-serve, kitty-cli and kitty-bench serve exist only in builds with gRPC
// (KITTY_BUILD_SERVER; the sanitizer build of deploy/run-tests.sh has none).
bool ServerBuilt() { return fs::exists(fs::path(BinDir()) / "kitty-serve"); }

RunResult RunKittyRun(const std::vector<std::string>& flags, const fs::path& scratch) {
  return RunTool("kitty-run", flags, scratch);
}

class CliErrorsTest : public ::testing::Test {
 protected:
  // A fresh copy of stories260K/hf under the scratch directory.
  fs::path CopyModel(const std::string& name) {
    const fs::path dir = scratch_ / name;
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(TestDataPath("stories260K/hf"))) {
      fs::copy_file(e.path(), dir / e.path().filename());
    }
    return dir;
  }
  static void WriteFile(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  static std::string Replace(std::string s, const std::string& from, const std::string& to) {
    const size_t pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    if (pos != std::string::npos) s.replace(pos, from.size(), to);
    return s;
  }

  // Runs `tool` (kitty-run by default) and checks the failure contract: exit `want_code` (any
  // nonzero when -1); returns the stderr line (no newline).
  std::string ExpectOneLineError(const std::vector<std::string>& flags,
                                 const std::string& tool = "kitty-run", int want_code = -1) {
    const RunResult r = RunTool(tool, flags, scratch_);
    EXPECT_TRUE(r.exited) << "killed by signal " << r.signal << "; stderr: " << r.err;
    EXPECT_NE(r.exit_code, 0) << r.err;
    if (want_code >= 0) {
      EXPECT_EQ(r.exit_code, want_code) << r.err;
    }
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
    EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << "stderr: " << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith(tool + ": "));
    EXPECT_TRUE(r.out.empty()) << "stdout: " << r.out;
    std::string line = r.err;
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
  }

  // Each case: `tool` run with `common` then the case's arguments fails with exit 2 and one
  // line containing the case's text.
  using Cases = std::vector<std::pair<std::vector<std::string>, std::string>>;
  void ExpectEachRejected(const std::string& tool, const std::vector<std::string>& common,
                          const Cases& cases) {
    for (const auto& [extra, want] : cases) {
      SCOPED_TRACE(absl::StrJoin(extra, " "));
      std::vector<std::string> args = common;
      args.insert(args.end(), extra.begin(), extra.end());
      EXPECT_THAT(ExpectOneLineError(args, tool, 2), HasSubstr(want));
    }
  }

  std::string Model() const { return TestDataPath("stories260K/hf"); }

  const ::kitty::testing::TempDir tmp_{"kitty_cli_errors_"};  // removed after each test
  const fs::path scratch_ = tmp_.path();
};

TEST_F(CliErrorsTest, MissingDirectory) {
  const std::string dir = (scratch_ / "no_such_model").string();
  EXPECT_THAT(ExpectOneLineError({"--model", dir, "--prompt-token-ids", "1,2"}),
              AllOf(HasSubstr(dir), HasSubstr("does not exist")));
}

TEST_F(CliErrorsTest, MalformedConfigJson) {
  const fs::path dir = CopyModel("malformed");
  WriteFile(dir / "config.json",
            "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"hidden_size\": ");
  EXPECT_THAT(ExpectOneLineError({"--model", dir.string(), "--prompt-token-ids", "1,2"}),
              AllOf(HasSubstr("config.json"), HasSubstr("JSON")));
}

TEST_F(CliErrorsTest, UnsupportedArchitecture) {
  const fs::path dir = CopyModel("gpt2");
  std::string cfg = ReadFileOrDie((dir / "config.json").string());
  cfg = Replace(cfg, "\"LlamaForCausalLM\"", "\"GPT2LMHeadModel\"");
  cfg = Replace(cfg, "\"model_type\": \"llama\"", "\"model_type\": \"gpt2\"");
  WriteFile(dir / "config.json", cfg);
  EXPECT_THAT(ExpectOneLineError({"--model", dir.string(), "--prompt-token-ids", "1,2"}),
              AllOf(HasSubstr("config.json"), HasSubstr("GPT2LMHeadModel")));
}

TEST_F(CliErrorsTest, TruncatedSafetensors) {
  const fs::path dir = CopyModel("truncated");
  const std::string bytes = ReadFileOrDie((dir / "model.safetensors").string());
  WriteFile(dir / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  const std::string line =
      ExpectOneLineError({"--model", dir.string(), "--prompt-token-ids", "1,2"});
  EXPECT_THAT(line, HasSubstr("model.safetensors"));
  EXPECT_THAT(line, ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("beyond the end"),
                                     HasSubstr("past the end"), HasSubstr("file size")));
}

TEST_F(CliErrorsTest, TruncatedSafetensorsInsideHeader) {
  const fs::path dir = CopyModel("truncated_header");
  const std::string bytes = ReadFileOrDie((dir / "model.safetensors").string());
  WriteFile(dir / "model.safetensors", bytes.substr(0, 100));
  EXPECT_THAT(ExpectOneLineError({"--model", dir.string(), "--prompt-token-ids", "1,2"}),
              HasSubstr("model.safetensors"));
}

TEST_F(CliErrorsTest, CorruptSafetensorsHeader) {
  const fs::path dir = CopyModel("corrupt");
  std::string bytes = ReadFileOrDie((dir / "model.safetensors").string());
  // Keep the 8-byte length, garble the JSON header.
  for (size_t i = 8; i < 8 + 64 && i < bytes.size(); ++i) bytes[i] = '#';
  WriteFile(dir / "model.safetensors", bytes);
  EXPECT_THAT(ExpectOneLineError({"--model", dir.string(), "--prompt-token-ids", "1,2"}),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("header")));
}

TEST_F(CliErrorsTest, HugeSafetensorsHeaderLength) {
  const fs::path dir = CopyModel("huge_header");
  std::string bytes = ReadFileOrDie((dir / "model.safetensors").string());
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(0x7f);
  WriteFile(dir / "model.safetensors", bytes);
  EXPECT_THAT(ExpectOneLineError({"--model", dir.string(), "--prompt-token-ids", "1,2"}),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("header")));
}

TEST_F(CliErrorsTest, TensorOfWrongShape) {
  const fs::path dir = CopyModel("wrong_shape");
  std::string cfg = ReadFileOrDie((dir / "config.json").string());
  cfg = Replace(cfg, "\"hidden_size\": 64", "\"hidden_size\": 32");
  WriteFile(dir / "config.json", cfg);
  EXPECT_THAT(ExpectOneLineError({"--model", dir.string(), "--prompt-token-ids", "1,2"}),
              AllOf(HasSubstr("model.safetensors"), HasSubstr("shape"),
                    HasSubstr("model.embed_tokens.weight")));
}

TEST_F(CliErrorsTest, UnknownTokenId) {
  EXPECT_THAT(ExpectOneLineError({"--model", Model(), "--prompt-token-ids", "1,99999"}),
              AllOf(HasSubstr("--prompt-token-ids"), HasSubstr("99999"), HasSubstr("512")));
}

TEST_F(CliErrorsTest, NegativeTokenId) {
  EXPECT_THAT(ExpectOneLineError({"--model", Model(), "--prompt-token-ids", "1,-3"}),
              AllOf(HasSubstr("--prompt-token-ids"), HasSubstr("-3")));
}

TEST_F(CliErrorsTest, NonIntegerTokenId) {
  EXPECT_THAT(ExpectOneLineError({"--model", Model(), "--prompt-token-ids", "1,abc"}),
              AllOf(HasSubstr("--prompt-token-ids"), HasSubstr("abc")));
}

TEST_F(CliErrorsTest, UnknownKvCacheDtype) {
  EXPECT_THAT(ExpectOneLineError(
                  {"--model", Model(), "--prompt-token-ids", "1,2", "--kv-cache-dtype", "int3"}),
              AllOf(HasSubstr("--kv-cache-dtype"), HasSubstr("int3"), HasSubstr("kitty-pro")));
}

TEST_F(CliErrorsTest, GoodInputStillRuns) {
  const RunResult r = RunKittyRun(
      {"--model", Model(), "--prompt-token-ids", "1,2", "--max-tokens", "3", "--json"}, scratch_);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"token_ids\""));
}

// --help listed no flags ("No flags matched.", exit 1): Abseil only took flags from
// <binary name>_main.cc, and kitty-run is built from kitty_run_main.cc. kitty-bench --help
// printed "usage: ... (see --help)" and exited 2.
TEST_F(CliErrorsTest, HelpListsTheFlagsAndExitsZero) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"kitty-run", {"--model", "--prompts_file", "--kv_cache_dtype", "--max_num_seqs"}},
      {"kitty-serve", {"--model", "--kv_cache_dtype", "--max_num_batched_tokens"}},
      {"kitty-cli", {"--server", "--prompt", "--timeout_s"}},
      {"kitty-eval", {"--model", "--text", "--kv_cache_dtype"}},
      {"kitty-bench", {"--model", "--max_concurrency", "--plot", "--max_num_seqs"}},
  };
  for (const auto& [tool, flags] : cases) {
    if ((tool == "kitty-serve" || tool == "kitty-cli") && !ServerBuilt()) continue;
    for (const char* help : {"--help", "--helpshort"}) {
      SCOPED_TRACE(tool + " " + help);
      const RunResult r = RunTool(tool, {help}, scratch_);
      EXPECT_TRUE(r.exited);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_THAT(r.out, ::testing::Not(HasSubstr("No flags matched")));
      EXPECT_THAT(r.out, HasSubstr("Flags from runtime/"));
      for (const std::string& f : flags) EXPECT_THAT(r.out, HasSubstr(f)) << r.out;
    }
  }
  const RunResult r = RunTool("kitty-bench", {"throughput", "--help"}, scratch_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("--input_len"));
}

// kitty-bench serve checks its numbers before it connects (no server is needed here):
// --max-concurrency 0 used to wait forever, --num-prompts -1 died of std::length_error and
// zero lengths silently ran as 1.
TEST_F(CliErrorsTest, BenchServeRejectsBadNumbers) {
  if (!ServerBuilt()) GTEST_SKIP() << "built without gRPC (KITTY_BUILD_SERVER=OFF)";
  ExpectEachRejected("kitty-bench", {"serve", "--server", "127.0.0.1:1"},
                     {
                         {{"--max-concurrency", "0"}, "--max-concurrency"},
                         {{"--max-concurrency", "-2"}, "--max-concurrency"},
                         {{"--num-prompts", "-1"}, "--num-prompts"},
                         {{"--num-prompts", "0"}, "--num-prompts"},
                         {{"--input-len", "0", "--output-len", "0"}, "--input-len"},
                         {{"--output-len", "-1"}, "--output-len"},
                     });
}

// Flags no server can run with fail before it listens or loads a model (a zero token budget
// crashed on a CHECK; out-of-range ports wrapped around; an unknown log level silenced it).
TEST_F(CliErrorsTest, ServeRejectsBadFlagsBeforeListening) {
  if (!ServerBuilt()) GTEST_SKIP() << "built without gRPC (KITTY_BUILD_SERVER=OFF)";
  ExpectEachRejected(
      "kitty-serve", {"--model", "builtin:tiny", "--port", "0", "--http-port", "0"},
      {
          {{"--port", "99999"}, "--port must be in [0, 65535]"},
          {{"--http-port", "-5"}, "--http-port must be in [0, 65535]"},
          {{"--log-level", "bogus"}, "--log-level must be"},
          {{"--drain-timeout-s", "nan"}, "--drain-timeout-s"},
          {{"--max-num-batched-tokens", "0"}, "--max-num-batched-tokens must be at least 1"},
          {{"--max-num-seqs", "0"}, "--max-num-seqs must be at least 1"},
          {{"--max-queued-requests", "-300"}, "--max-queued-requests"},
          {{"--kv-cache-memory", "-100"}, "--kv-cache-memory"},
          {{"--gpu-memory-utilization", "1.5"}, "--gpu-memory-utilization"},
      });
}

// An empty mode list ("" or ",") printed an empty table and exited 0.
TEST_F(CliErrorsTest, EmptyModeListIsAnError) {
  for (const std::string modes : {"", ",", " , "}) {
    SCOPED_TRACE("--kv-cache-dtype '" + modes + "'");
    EXPECT_THAT(ExpectOneLineError({"throughput", "--kv-cache-dtype", modes, "--num-prompts", "1",
                                    "--input-len", "4", "--output-len", "2"},
                                   "kitty-bench", 2),
                HasSubstr("--kv-cache-dtype"));
    EXPECT_THAT(ExpectOneLineError({"--model", Model(), "--kv-cache-dtype", modes, "--memory-only"},
                                   "kitty-eval", 2),
                HasSubstr("--kv-cache-dtype"));
    EXPECT_THAT(ExpectOneLineError({"--model", Model(), "--kv-cache-dtype", modes, "--text",
                                    TestDataPath("stories260K/hf/config.json")},
                                   "kitty-eval", 2),
                HasSubstr("--kv-cache-dtype"));
  }
  EXPECT_THAT(ExpectOneLineError({"throughput", "--max-num-seqs-sweep", ",", "--num-prompts", "1",
                                  "--input-len", "4", "--output-len", "2"},
                                 "kitty-bench", 2),
              HasSubstr("--max-num-seqs-sweep"));
}

// --plot PATH was pasted into std::system("gnuplot -e \"... set output 'PATH' ...\""): a path
// with $(...) ran the command, quotes broke it, and gnuplot itself runs "set output '|cmd'".
TEST_F(CliErrorsTest, BenchPlotPathIsNeverRunAsACommand) {
  const auto bench = [&](const std::string& png) {
    return RunTool("kitty-bench",
                   {"throughput", "--kv-cache-dtype", "auto", "--num-prompts", "1", "--input-len",
                    "4", "--output-len", "2", "--plot", png},
                   scratch_);
  };
  const fs::path pwned = scratch_ / "pwned";
  RunResult r = bench((scratch_ / "x$(touch ").string() + pwned.string() + ").png");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(pwned)) << "the shell ran the --plot path";
  const fs::path piped = scratch_ / "piped";
  r = bench("|touch " + piped.string());  // relative: gnuplot would pipe to `touch`
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(piped)) << "gnuplot ran the --plot path";

  // Quotes, spaces and backslashes are just characters of the file name.
  const fs::path odd = scratch_ / "it's \"odd\" \\ name.png";
  r = bench(odd.string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(odd.string() + ".dat"));
  if (std::system("gnuplot --version >/dev/null 2>&1") == 0) {
    ASSERT_TRUE(fs::exists(odd)) << r.err;
    EXPECT_EQ(ReadFileOrDie(odd.string()).substr(1, 3), "PNG");
  }

  // A line break would end the gnuplot string and command: refused before the run.
  EXPECT_THAT(ExpectOneLineError({"throughput", "--plot", (scratch_ / "a\nb.png").string()},
                                 "kitty-bench", 2),
              HasSubstr("--plot"));
}

// kitty-cli checks these before any call (the server at 127.0.0.1:1 is never reached).
TEST_F(CliErrorsTest, CliRejectsBadInputBeforeTheCall) {
  if (!ServerBuilt()) GTEST_SKIP() << "built without gRPC (KITTY_BUILD_SERVER=OFF)";
  ExpectEachRejected(
      "kitty-cli", {"--server", "127.0.0.1:1"},
      {
          // Invalid UTF-8 reached the server, whose protobuf parsing failed: UNIMPLEMENTED, no
          // text.
          {{"generate", "--prompt", "ab\xff"}, "kitty-cli: --prompt is not valid UTF-8"},
          {{"generate", "--prompt", "ab\xed\xa0\x80"}, "kitty-cli: --prompt is not valid UTF-8"},
          {{"generate", "--prompt", "ab\xc0\xaf"}, "kitty-cli: --prompt is not valid UTF-8"},
          {{"generate", "--prompt", "ab\xe2\x82"}, "kitty-cli: --prompt is not valid UTF-8"},
          {{"generate", "--prompt", "hi", "--stop", "\xff"},
           "kitty-cli: --stop is not valid UTF-8"},
          {{"tokenize", "--text", "ab\xff"}, "kitty-cli: --text is not valid UTF-8"},
          // -5 silently meant "no seed" (only -1 is documented as that).
          {{"generate", "--prompt", "hi", "--seed", "-5"}, "--seed"},
          // Not a deadline.
          {{"--timeout-s", "-1", "info"}, "--timeout-s"},
          {{"--timeout-s", "inf", "info"}, "--timeout-s"},
          {{"--timeout-s", "nan", "generate", "--prompt", "hi"}, "--timeout-s"},
      });
}

}  // namespace
}  // namespace kitty::runtime
