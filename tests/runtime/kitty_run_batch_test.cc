// `kitty-run --prompts-file` contract (issue 5): one JSON line per request (plus "index" for
// n > 1), then {"stats":{...}} with prefix_cache_queries_tokens, prefix_cache_hit_tokens,
// num_preemptions and pages_in_use_at_exit; in every Kitty mode a shared long prefix is hit
// and no page stays in use after finished, stopped and aborted requests.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/testing/temp_dir.h"
#include "base/testing/test_data.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kitty::runtime {
namespace {

using ::kitty::testing::BinDir;
using ::kitty::testing::TempDir;
using ::kitty::testing::TestDataPath;

struct RunResult {
  int exit_code = -1;
  std::vector<nlohmann::json> lines;
};

RunResult RunKittyRun(const std::string& args) {
  RunResult r;
  const std::string cmd = BinDir() + "/kitty-run " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) r.lines.push_back(nlohmann::json::parse(line));
  }
  return r;
}

// Writes a prompts file into this process's own temporary directory (removed at exit).
std::string WritePrompts(const std::string& name, const std::vector<std::string>& lines) {
  static const TempDir dir("kitty_run_batch_test_");
  std::string text;
  for (const auto& l : lines) text.append(l).push_back('\n');
  return dir.Write(name, text);
}

std::string Ids(int n, int base) {
  std::string s = "[1";
  for (int i = 1; i < n; ++i) s += "," + std::to_string(base + (i * 7) % 200);
  return s + "]";
}

TEST(KittyRunBatchTest, SharedPrefixHitsAndNoPageLeftInEveryMode) {
  // 400 shared tokens then distinct endings; a stop, an abort, an n=4 and a length finish.
  const std::string prefix = Ids(400, 260);
  auto with_suffix = [&](int s) {
    return prefix.substr(0, prefix.size() - 1) + "," + std::to_string(300 + s) + "]";
  };
  const std::string file = WritePrompts(
      "kitty_run_batch.jsonl",
      {"{\"prompt_token_ids\":" + prefix + ",\"max_tokens\":4}",
       "{\"prompt_token_ids\":" + with_suffix(1) + ",\"max_tokens\":6}",
       "{\"prompt_token_ids\":" + with_suffix(2) + ",\"max_tokens\":50,\"abort_after_tokens\":2}",
       "{\"prompt_token_ids\":" + with_suffix(3) + ",\"max_tokens\":8,\"stop\":[\"e\"]}",
       "{\"prompt_token_ids\":" + with_suffix(4) +
           ",\"max_tokens\":5,\"n\":4,\"temperature\":1.0,\"seed\":3}",
       "{\"prompt\":\"Once upon a time\",\"max_tokens\":5}"});
  for (const std::string mode : {"kivi2", "kitty", "kitty-pro", "k4v2", "auto"}) {
    SCOPED_TRACE(mode);
    const RunResult r =
        RunKittyRun("--model " + TestDataPath("stories260K/hf") + " --kv-cache-dtype " + mode +
                    " --prompts-file " + file + " --max-num-batched-tokens 256");
    ASSERT_EQ(r.exit_code, 0);
    ASSERT_EQ(r.lines.size(), 1u + 1 + 1 + 1 + 4 + 1 + 1);  // n=4 gives four lines
    int indexed = 0;
    for (size_t i = 0; i + 1 < r.lines.size(); ++i) {
      const nlohmann::json& j = r.lines[i];
      ASSERT_TRUE(j.contains("prompt_token_ids") && j.contains("token_ids") && j.contains("text") &&
                  j.contains("finish_reason"));
      if (j.contains("index")) ++indexed;
    }
    EXPECT_EQ(indexed, 4);
    EXPECT_EQ(r.lines[2]["finish_reason"], "abort");
    const nlohmann::json& stats = r.lines.back()["stats"];
    EXPECT_EQ(stats["pages_in_use_at_exit"], 0);
    EXPECT_GT(stats["prefix_cache_queries_tokens"].get<int64_t>(), 0);
    // The 400-token prefix is computed by whichever request runs first; the other four hit
    // its sink and first two segments (32 + 2*128 = 288 tokens) once they are committed.
    EXPECT_GE(stats["prefix_cache_hit_tokens"].get<int64_t>(), 288);
    EXPECT_TRUE(stats.contains("num_preemptions"));
  }
}

TEST(KittyRunBatchTest, TinyBudgetForcesPreemptionAndFreesEverything) {
  std::vector<std::string> lines;
  // 260..271-token prompts hold one sealed page after prefill and seal a second one while
  // decoding 40 tokens; 8 sequence slots but only ~8 K/V page pairs fit in 3 MB.
  for (int i = 0; i < 12; ++i) {
    lines.push_back("{\"prompt_token_ids\":" + Ids(260 + i, 270 + i) +
                    ",\"max_tokens\":40,\"ignore_eos\":true}");
  }
  const std::string file = WritePrompts("kitty_run_preempt.jsonl", lines);
  const RunResult r =
      RunKittyRun("--model " + TestDataPath("stories260K/hf") +
                  " --kv-cache-dtype auto --kv-cache-memory 3000000 --max-num-seqs 8"
                  " --prompts-file " +
                  file);
  ASSERT_EQ(r.exit_code, 0);
  ASSERT_EQ(r.lines.size(), 13u);
  const nlohmann::json& stats = r.lines.back()["stats"];
  EXPECT_GT(stats["num_preemptions"].get<int64_t>(), 0);
  EXPECT_EQ(stats["pages_in_use_at_exit"], 0);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(r.lines[i]["token_ids"].size(), 40u);
}

struct BatchError {
  int exit_code = -1;                    // -1: not a normal exit
  std::vector<std::string> error_lines;  // the "kitty-run: ..." lines of stderr (logs aside)
  std::string err;
};

BatchError RunBadPromptsFile(const std::string& file) {
  const std::string cmd =
      BinDir() + "/kitty-run --model builtin:tiny --prompts-file " + file + " 2>&1 >/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  BatchError r;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.err.append(buf, n);
  const int status = pclose(p);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  std::istringstream in(r.err);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("kitty-run:", 0) == 0) r.error_lines.push_back(line);
  }
  return r;
}

TEST(KittyRunBatchTest, BadLineIsAOneLineErrorNamingTheLine) {
  const std::string file = WritePrompts("kitty_run_bad.jsonl", {"{\"prompt\":\"a\"}", "{oops"});
  const BatchError r = RunBadPromptsFile(file);
  ASSERT_NE(r.exit_code, -1) << r.err;
  EXPECT_NE(r.exit_code, 0);
  // Exactly one error line (log lines aside), naming the line.
  ASSERT_EQ(r.error_lines.size(), 1u) << r.err;
  EXPECT_NE(r.error_lines[0].find("line 2"), std::string::npos) << r.error_lines[0];
}

// Valid JSON that is not an object used to die of an uncaught nlohmann type_error (the
// command-line defaults were written into it as if it were an object).
TEST(KittyRunBatchTest, LineThatIsNotAnObjectIsAnError) {
  for (const std::string bad : {"[1,2]", "\"text\"", "3", "null"}) {
    SCOPED_TRACE(bad);
    const BatchError r =
        RunBadPromptsFile(WritePrompts("kitty_run_not_object.jsonl", {"{\"prompt\":\"a\"}", bad}));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    ASSERT_EQ(r.error_lines.size(), 1u) << r.err;
    EXPECT_NE(r.error_lines[0].find("line 2: not a JSON object"), std::string::npos)
        << r.error_lines[0];
  }
}

// A directory opened as an ifstream reads as empty: it ran nothing and exited 0.
TEST(KittyRunBatchTest, DirectoryIsAnError) {
  const std::string dir = std::filesystem::temp_directory_path().string();
  const BatchError r = RunBadPromptsFile(dir);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_EQ(r.error_lines.size(), 1u) << r.err;
  EXPECT_NE(r.error_lines[0].find("directory"), std::string::npos) << r.error_lines[0];
}

// 4294967297 = 2^32 + 1 was narrowed to max_tokens = 1 without a word.
TEST(KittyRunBatchTest, OutOfRangeIntegerIsAnError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"prompt\":\"a\",\"max_tokens\":4294967297}", "\"max_tokens\""},
      {"{\"prompt\":\"a\",\"top_k\":-4294967296}", "\"top_k\""},
      {"{\"prompt_token_ids\":[1,4294967298]}", "\"prompt_token_ids\""},
      {"{\"prompt\":\"a\",\"seed\":-5}", "\"seed\""},
  };
  for (const auto& [line, field] : cases) {
    SCOPED_TRACE(line);
    const BatchError r = RunBadPromptsFile(WritePrompts("kitty_run_range.jsonl", {line}));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    ASSERT_EQ(r.error_lines.size(), 1u) << r.err;
    EXPECT_NE(r.error_lines[0].find("line 1: " + field), std::string::npos) << r.error_lines[0];
    EXPECT_NE(r.error_lines[0].find("out of range"), std::string::npos) << r.error_lines[0];
  }
}

// Non-integer ids were truncated (3.7 -> 3) or overflowed (1e300) silently.
TEST(KittyRunBatchTest, NonIntegerTokenIdIsAnError) {
  for (const std::string line : {"{\"prompt_token_ids\":[1,3.7]}", "{\"prompt_token_ids\":[1e300]}",
                                 "{\"prompt\":\"a\",\"stop_token_ids\":[2.5]}"}) {
    SCOPED_TRACE(line);
    const BatchError r = RunBadPromptsFile(WritePrompts("kitty_run_float.jsonl", {line}));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    ASSERT_EQ(r.error_lines.size(), 1u) << r.err;
    EXPECT_NE(r.error_lines[0].find("is not an integer"), std::string::npos) << r.error_lines[0];
  }
}

}  // namespace
}  // namespace kitty::runtime
