// End-to-end tests of kitty-serve: the real binary on loopback, called with kitty-cli, an
// independent Python grpcio client (serve_python_client.py), curl-free raw HTTP for /metrics,
// a real Prometheus server and promtool. Model: stories260K (../shared/data).
//
// Synchronisation is by polling a condition with a bounded deadline, never by sleeping a fixed
// time and hoping.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace kitty::e2e {
namespace {

namespace fs = std::filesystem;
using ::kitty::testing::TempDir;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr char kPrompt[] = "Once upon a time";
constexpr int kMaxTokens = 16;

std::string Bin(const std::string& name) { return kitty::testing::BinDir() + "/" + name; }
std::string ModelDir() { return kitty::testing::TestDataPath("stories260K/hf"); }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `cond` every 50 ms until it holds or `timeout` passes.
bool PollUntil(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A child process with stdout/stderr in files (and optional stdin from a file).
class Process {
 public:
  Process(std::vector<std::string> argv, const fs::path& dir, const std::string& name,
          const std::string& stdin_path = "")
      : out_(dir / (name + ".out")), err_(dir / (name + ".err")), argv_(argv) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path.empty() ? "/dev/null" : stdin_path.c_str(),
                                     O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Process() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  void Signal(int sig) { ::kill(pid_, sig); }
  // True once exited (collects the exit code: 128+signal when killed).
  bool Exited() {
    if (exit_code_) return true;
    int st;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return true;
    }
    return false;
  }
  // The exit code, or nullopt if still running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    PollUntil([this] { return Exited(); }, timeout);
    return exit_code_;
  }
  std::string out() const { return ReadFile(out_); }
  std::string err() const { return ReadFile(err_); }
  std::string Describe() const {
    return absl::StrCat("`", absl::StrJoin(argv_, " "), "`\nstdout: ", out(), "\nstderr: ", err());
  }

 private:
  fs::path out_, err_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

struct Result {
  int code = -1;
  std::string out, err;
};

Result RunCommand(std::vector<std::string> argv, const fs::path& dir,
                  const std::string& stdin_path = "",
                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  static int counter = 0;
  Process p(std::move(argv), dir, absl::StrCat("run", counter++), stdin_path);
  Result r;
  std::optional<int> code = p.Wait(timeout);
  r.code = code.value_or(-1);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// One HTTP/1.0 GET on 127.0.0.1; returns {status, body} ({-1, ""} when unreachable).
std::pair<int, std::string> HttpGet(int port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return {-1, ""};
  }
  const std::string req =
      absl::StrCat("GET ", target, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t sp = resp.find(' ');
  const size_t body = resp.find("\r\n\r\n");
  int status = -1;
  if (sp == std::string::npos || body == std::string::npos ||
      !absl::SimpleAtoi(resp.substr(sp + 1, 3), &status)) {
    return {-1, ""};
  }
  return {status, resp.substr(body + 4)};
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += absl::StrFormat("%%%02X", c);
    }
  }
  return out;
}

// Sum of every sample of `name` (exact metric name, any labels) whose label text contains all
// of `label_filters`; nullopt if there is none.
std::optional<double> MetricSum(const std::string& text, const std::string& name,
                                const std::vector<std::string>& label_filters = {}) {
  std::optional<double> sum;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == absl::string_view::npos || line.substr(0, name_end) != name) continue;
    const size_t value_at = line.rfind(' ');
    const absl::string_view labels = line.substr(name_end, value_at - name_end);
    bool match = true;
    for (const std::string& f : label_filters) match = match && absl::StrContains(labels, f);
    double v;
    if (!match || !absl::SimpleAtod(line.substr(value_at + 1), &v)) continue;
    sum = sum.value_or(0) + v;
  }
  return sum;
}

// A kitty-serve child on free loopback ports.
class Server {
 public:
  explicit Server(const fs::path& dir, std::vector<std::string> extra = {})
      : grpc_port_(FreePort()), http_port_(FreePort()) {
    std::vector<std::string> argv = {Bin("kitty-serve"),
                                     "--model",
                                     ModelDir(),
                                     "--host",
                                     "127.0.0.1",
                                     absl::StrCat("--port=", grpc_port_),
                                     absl::StrCat("--http-port=", http_port_),
                                     "--kv-cache-memory=67108864",
                                     "--drain-timeout-s=60"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv, dir, absl::StrCat("serve", grpc_port_));
  }

  // Waits for /health 200 (the model is loaded and the engine runs).
  bool WaitReady() {
    return PollUntil([&] { return proc_->Exited() || HttpGet(http_port_, "/health").first == 200; },
                     std::chrono::seconds(60)) &&
           !proc_->Exited();
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }
  int http_port() const { return http_port_; }
  Process& process() { return *proc_; }
  std::string Metrics() const { return HttpGet(http_port_, "/metrics").second; }
  double Metric(const std::string& name, const std::vector<std::string>& filters = {}) const {
    return MetricSum(Metrics(), name, filters).value_or(-1);
  }
  // The engine has nothing live and every KV page is back (free or cached).
  bool Idle() const {
    const std::string m = Metrics();
    return MetricSum(m, "vllm:num_requests_running") == 0 &&
           MetricSum(m, "vllm:num_requests_waiting") == 0 &&
           MetricSum(m, "kitty_kv_pages", {"state=\"used\""}) == 0;
  }

 private:
  int grpc_port_, http_port_;
  std::unique_ptr<Process> proc_;
};

std::vector<std::string> Cli(const Server& s, std::vector<std::string> args) {
  std::vector<std::string> argv = {Bin("kitty-cli"), "--server", s.address()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Concatenation of kitty-cli --json generate lines.
struct Generated {
  std::vector<int> token_ids;
  std::string text;
  std::string finish_reason;
  int messages = 0;
};

Generated ParseCliJson(const std::string& out) {
  Generated g;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line);
    ++g.messages;
    for (const auto& o : j.value("outputs", nlohmann::json::array())) {
      for (int id : o.value("token_ids", std::vector<int>{})) g.token_ids.push_back(id);
      g.text += o.value("text", "");
      if (o.contains("finish_reason")) g.finish_reason = o["finish_reason"];
    }
  }
  return g;
}

// ---- one shared server for most tests ------------------------------------------------------

class ServeE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir("kitty_serve_e2e_");
    dir_ = new fs::path(tmp_->path());
    server_ = new Server(*dir_);
    ready_ = server_->WaitReady();
    // kitty-run's greedy output: the reference for every client.
    Result r =
        RunCommand({Bin("kitty-run"), "--model", ModelDir(), "--prompt", kPrompt, "--max-tokens",
                    std::to_string(kMaxTokens), "--temperature", "0", "--json"},
                   *dir_);
    reference_ = new std::string(r.code == 0 ? r.out : "");
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    delete tmp_;  // removes the directory
    delete reference_;
  }
  void SetUp() override {
    ASSERT_TRUE(ready_) << server_->process().Describe();
    ASSERT_FALSE(reference_->empty()) << "kitty-run failed";
  }

  static TempDir* tmp_;
  static fs::path* dir_;
  static Server* server_;
  static bool ready_;
  static std::string* reference_;
};
TempDir* ServeE2eTest::tmp_ = nullptr;
fs::path* ServeE2eTest::dir_ = nullptr;
Server* ServeE2eTest::server_ = nullptr;
bool ServeE2eTest::ready_ = false;
std::string* ServeE2eTest::reference_ = nullptr;

TEST_F(ServeE2eTest, HealthIsServingAfterLoad) {
  for (const char* service : {"", "kitty.v1.Inference"}) {
    Result r = RunCommand(Cli(*server_, {"health", "--service", service}), *dir_);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "SERVING\n");
  }
  EXPECT_EQ(HttpGet(server_->http_port(), "/health").first, 200);
}

TEST_F(ServeE2eTest, CliStreamingAndUnaryMatchKittyRun) {
  const nlohmann::json want = nlohmann::json::parse(*reference_);
  const std::vector<std::string> common = {
      "generate",      "--prompt", kPrompt, "--max-tokens", std::to_string(kMaxTokens),
      "--temperature", "0",        "--json"};
  std::vector<std::string> stream = common;
  Result r = RunCommand(Cli(*server_, stream), *dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  Generated g = ParseCliJson(r.out);
  EXPECT_EQ(g.token_ids, want["token_ids"].get<std::vector<int>>());
  EXPECT_EQ(g.text, want["text"].get<std::string>());
  EXPECT_EQ(g.finish_reason, want["finish_reason"].get<std::string>());
  // The outbox coalesces what piled up while a write was in flight (or before the reactor saw
  // the stream): a 16-token request can legitimately arrive as one message on a loaded machine.
  // A long one must arrive in pieces.
  {
    std::vector<std::string> long_stream = {"generate",      "--prompt", kPrompt,
                                            "--max-tokens",  "400",      "--ignore-eos",
                                            "--temperature", "0",        "--json"};
    Result lr = RunCommand(Cli(*server_, long_stream), *dir_);
    ASSERT_EQ(lr.code, 0) << lr.err;
    const Generated lg = ParseCliJson(lr.out);
    EXPECT_EQ(lg.token_ids.size(), 400u);
    EXPECT_GT(lg.messages, 1) << "streaming should deliver deltas";
  }

  std::vector<std::string> unary = common;
  unary.push_back("--stream=false");
  r = RunCommand(Cli(*server_, unary), *dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  g = ParseCliJson(r.out);
  EXPECT_EQ(g.messages, 1);
  EXPECT_EQ(g.token_ids, want["token_ids"].get<std::vector<int>>());
  EXPECT_EQ(g.text, want["text"].get<std::string>());

  // Plain mode streams the text itself.
  std::vector<std::string> plain(common.begin(), common.end() - 1);
  r = RunCommand(Cli(*server_, plain), *dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, want["text"].get<std::string>() + "\n");
}

TEST_F(ServeE2eTest, CliTokenizeAndInfo) {
  const nlohmann::json want = nlohmann::json::parse(*reference_);
  Result r = RunCommand(Cli(*server_, {"tokenize", "--text", kPrompt}), *dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> ids;
  for (int id : want["prompt_token_ids"].get<std::vector<int>>()) ids.push_back(absl::StrCat(id));
  EXPECT_EQ(r.out, absl::StrJoin(ids, ",") + "\n");

  r = RunCommand(Cli(*server_, {"info"}), *dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("architecture: LlamaForCausalLM\n"));
  EXPECT_THAT(r.out, HasSubstr("context_length: 512\n"));
  EXPECT_THAT(r.out, HasSubstr("vocab_size: 512\n"));
  EXPECT_THAT(r.out, HasSubstr("kv_cache_dtype: kitty-pro\n"));
  EXPECT_THAT(r.out, HasSubstr("page_size: 128\n"));
}

TEST_F(ServeE2eTest, BadInputsGetInvalidArgumentNamingTheField) {
  std::string too_long;
  for (int i = 0; i < 600; ++i) absl::StrAppend(&too_long, i ? "," : "", 1);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"generate", "--prompt", ""}, "prompt"},
      {{"generate", "--prompt-token-ids", "1,2,99999"}, "prompt_token_ids[2]"},
      {{"generate", "--prompt-token-ids", too_long}, "prompt_token_ids"},
      {{"generate", "--prompt", "hi", "--top-p", "0"}, "top_p"},
      {{"generate", "--prompt", "hi", "--temperature", "-1"}, "temperature"},
      {{"generate", "--prompt", "hi", "--stop-token-ids", "100000"}, "stop_token_ids"},
      {{"generate", "--prompt", "hi", "--prompt-token-ids", "1"}, "not both"},
  };
  for (const auto& [args, field] : cases) {
    Result r = RunCommand(Cli(*server_, args), *dir_);
    EXPECT_EQ(r.code, 2) << args[2] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
    EXPECT_THAT(r.err, HasSubstr(field));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
}

// --timeout-s 1e300 overflowed to a deadline in the past (DEADLINE_EXCEEDED at once).
TEST_F(ServeE2eTest, CliHugeTimeoutStillGenerates) {
  Result r = RunCommand(Cli(*server_, {"--timeout-s", "1e300", "generate", "--prompt", kPrompt,
                                       "--max-tokens", "4", "--temperature", "0"}),
                        *dir_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
}

// Plain-text --n 3 streamed the outputs interleaved ("[0]2[1]x[2]2[0]..."): each output is now
// one block under a header, and every block's text is that output's whole text.
TEST_F(ServeE2eTest, CliPrintsEachOfNOutputsAsOneBlock) {
  const std::vector<std::string> common = {"generate", "--prompt", kPrompt, "--max-tokens",
                                           "12",       "--n",      "3",     "--temperature",
                                           "1",        "--seed",   "7",     "--ignore-eos"};
  Result r = RunCommand(Cli(*server_, common), *dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> json_args = common;
  json_args.push_back("--json");
  Result j = RunCommand(Cli(*server_, json_args), *dir_);
  ASSERT_EQ(j.code, 0) << j.err;
  std::map<int, std::string> texts;
  for (absl::string_view line : absl::StrSplit(j.out, '\n', absl::SkipEmpty())) {
    for (const auto& o : nlohmann::json::parse(line).value("outputs", nlohmann::json::array())) {
      texts[o.value("index", 0)] += o.value("text", "");
    }
  }
  ASSERT_EQ(texts.size(), 3u) << j.out;
  // Blocks come in the order the outputs finish; compare them as a set.
  std::map<int, std::string> blocks;
  for (absl::string_view block : absl::StrSplit(r.out, "--- output ", absl::SkipEmpty())) {
    int index = -1;
    const size_t header_end = block.find(" ---\n");
    ASSERT_NE(header_end, absl::string_view::npos) << r.out;
    ASSERT_TRUE(absl::SimpleAtoi(block.substr(0, header_end), &index)) << r.out;
    absl::string_view text = block.substr(header_end + 5);
    ASSERT_TRUE(absl::ConsumeSuffix(&text, "\n")) << r.out;
    blocks[index] = std::string(text);
  }
  EXPECT_EQ(blocks, texts) << r.out;
}

TEST_F(ServeE2eTest, UnreachableServerIsOneLineUnavailable) {
  Result r = RunCommand({Bin("kitty-cli"), "--server", absl::StrCat("127.0.0.1:", FreePort()),
                         "--timeout-s=5", "info"},
                        *dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, ::testing::StartsWith("kitty-cli: UNAVAILABLE: "));
}

TEST_F(ServeE2eTest, PythonGrpcioClient) {
  const std::string python = "/usr/bin/python3";
  if (RunCommand({python, "-c", "import grpc, google.protobuf"}, *dir_).code != 0) {
    GTEST_SKIP() << "python3-grpcio / python3-protobuf not installed";
  }
  const std::string root = KITTY_SOURCE_DIR;
  Result r = RunCommand({python, root + "/tests/e2e/serve_python_client.py", "--server",
                         server_->address(), "--proto-root", root + "/proto", "--prompt", kPrompt,
                         "--max-tokens", std::to_string(kMaxTokens), "--expect", *reference_},
                        *dir_, "", std::chrono::seconds(150));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("PASS"));
  // The cancelled and timed-out streams were aborted and their pages released.
  EXPECT_TRUE(PollUntil([&] { return server_->Idle(); }, std::chrono::seconds(30)))
      << server_->Metrics();
  EXPECT_GE(server_->Metric("vllm:request_success_total", {"finished_reason=\"abort\""}), 2);
}

TEST_F(ServeE2eTest, KilledClientMidStreamFreesItsPages) {
  // A 300-token prompt seals K and V pages at prefill (sink 32 + 128-token pages).
  std::string ids;
  for (int i = 0; i < 300; ++i) absl::StrAppend(&ids, i ? "," : "", 3 + (i * 11) % 500);
  Process cli(Cli(*server_, {"generate", "--prompt-token-ids", ids, "--max-tokens", "200",
                             "--ignore-eos", "--cache-salt", "killed", "--json"}),
              *dir_, "killed_cli");
  // Mid-way: tokens arrived and pages are held.
  ASSERT_TRUE(PollUntil([&] { return !cli.out().empty(); }, std::chrono::seconds(30)))
      << cli.Describe();
  EXPECT_GT(server_->Metric("kitty_kv_pages", {"state=\"used\""}), 0) << server_->Metrics();
  EXPECT_GT(server_->Metric("vllm:num_requests_running"), 0);
  cli.Signal(SIGKILL);
  ASSERT_TRUE(cli.Wait(std::chrono::seconds(10)).has_value());
  EXPECT_TRUE(PollUntil([&] { return server_->Idle(); }, std::chrono::seconds(30)))
      << server_->Metrics();
}

TEST_F(ServeE2eTest, PromtoolReportsOnlyTheVllmColons) {
  const std::string metrics = server_->Metrics();
  const fs::path file = *dir_ / "metrics.txt";
  std::ofstream(file) << metrics;
  Result r = RunCommand({"/usr/bin/promtool", "check", "metrics"}, *dir_, file.string());
  ASSERT_GE(r.code, 0) << "promtool did not run: " << r.err;
  int colons = 0;  // the vllm:* names: promtool must have read the metrics to list them
  for (absl::string_view line : absl::StrSplit(r.out + r.err, '\n', absl::SkipEmpty())) {
    const bool colon = absl::StartsWith(line, "vllm:") &&
                       absl::EndsWith(line, "metric names should not contain ':'");
    EXPECT_TRUE(colon) << "promtool: " << line;
    colons += colon ? 1 : 0;
  }
  EXPECT_GT(colons, 0) << "promtool reported nothing (exit " << r.code << ")";
}

TEST_F(ServeE2eTest, KittyBenchServeCompletesEveryRequest) {
  // The load generator of issue 8 against the real server: Poisson arrivals, then all at once.
  Result r = RunCommand({Bin("kitty-bench"), "serve", "--server", server_->address(),
                         "--num-prompts", "12", "--input-len", "24", "--output-len", "12",
                         "--range-ratio", "0.5", "--request-rate", "40,0", "--json"},
                        *dir_, "", std::chrono::seconds(120));
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object() && j.contains("serve")) << r.out;
  ASSERT_EQ(j["serve"].size(), 2u);
  for (const nlohmann::json& run : j["serve"]) {
    EXPECT_EQ(run["completed"], 12);
    EXPECT_EQ(run["errors"], 0);
    EXPECT_GT(run["output_throughput"].get<double>(), 0);
    EXPECT_GT(run["ttft_s"]["p50"].get<double>(), 0);
    EXPECT_LE(run["ttft_s"]["p50"].get<double>(), run["ttft_s"]["p99"].get<double>());
    EXPECT_GT(run["e2e_s"]["p99"].get<double>(), 0);
  }
}

// Failed requests made kitty-bench serve print "err 2" and exit 1 with no reason unless --json.
TEST_F(ServeE2eTest, KittyBenchServeSaysWhyRequestsFailed) {
  // 600-token prompts do not fit stories260K's 512-token context.
  Result r = RunCommand({Bin("kitty-bench"), "serve", "--server", server_->address(),
                         "--num-prompts", "2", "--input-len", "600", "--output-len", "4"},
                        *dir_, "", std::chrono::seconds(120));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("kitty-bench: rate 0.00: 2 of 2 requests failed; first error: "
                               "INVALID_ARGUMENT: prompt_token_ids: 600 tokens"));
}

TEST_F(ServeE2eTest, MetricsExposeTheContract) {
  const std::string m = server_->Metrics();
  for (const char* name : {"vllm:num_requests_running",
                           "vllm:num_requests_waiting",
                           "vllm:kv_cache_usage_perc",
                           "vllm:prefix_cache_queries_total",
                           "vllm:prefix_cache_hits_total",
                           "vllm:num_preemptions_total",
                           "vllm:prompt_tokens_total",
                           "vllm:generation_tokens_total",
                           "vllm:request_success_total",
                           "vllm:time_to_first_token_seconds",
                           "vllm:inter_token_latency_seconds",
                           "vllm:e2e_request_latency_seconds",
                           "vllm:request_queue_time_seconds",
                           "vllm:request_prompt_tokens",
                           "vllm:request_generation_tokens",
                           "vllm:cache_config_info",
                           "kitty_kv_cache_bytes",
                           "kitty_kv_pages",
                           "kitty_kv_bytes_per_element",
                           "kitty_kv_compression_ratio",
                           "kitty_kv_capacity_tokens",
                           "kitty_pack_jobs_total",
                           "kitty_prefix_cache_evictions_total"}) {
    EXPECT_THAT(m, HasSubstr(absl::StrCat("# TYPE ", name, " "))) << name;
  }
  EXPECT_THAT(m, HasSubstr("vllm:time_to_first_token_seconds_bucket{model_name=\"" + ModelDir() +
                           "\",le=\"2560.0\"}"));
  EXPECT_THAT(m, HasSubstr("le=\"+Inf\""));
  EXPECT_GT(MetricSum(m, "kitty_kv_capacity_tokens").value_or(0), 0);
}

// A real Prometheus scrapes /metrics every second; its HTTP API shows the counters move.
TEST_F(ServeE2eTest, PrometheusScrapesAndSeesCountersMove) {
  const fs::path prom_dir = *dir_ / "prometheus";
  fs::create_directories(prom_dir / "data");
  const int prom_port = FreePort();
  std::ofstream(prom_dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: kitty\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << server_->http_port() << "']\n";
  Process prom({"/usr/bin/prometheus", "--config.file=" + (prom_dir / "prometheus.yml").string(),
                "--storage.tsdb.path=" + (prom_dir / "data").string(),
                absl::StrCat("--web.listen-address=127.0.0.1:", prom_port)},
               prom_dir, "prometheus");
  ASSERT_TRUE(prom.started());

  // Instant query → the value of the first sample (nullopt when empty or unreachable).
  auto query = [&](const std::string& q) -> std::optional<double> {
    auto [status, body] = HttpGet(prom_port, "/api/v1/query?query=" + UrlEncode(q));
    if (status != 200) return std::nullopt;
    nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || j.value("status", "") != "success") return std::nullopt;
    const auto& result = j["data"]["result"];
    if (result.empty()) return std::nullopt;
    double v;
    if (!absl::SimpleAtod(result[0]["value"][1].get<std::string>(), &v)) return std::nullopt;
    return v;
  };
  ASSERT_TRUE(
      PollUntil([&] { return query("up{job=\"kitty\"}") == 1.0; }, std::chrono::seconds(60)))
      << prom.Describe();

  const char* kCounters[] = {"sum(vllm:prompt_tokens_total)", "sum(vllm:generation_tokens_total)",
                             "sum(vllm:prefix_cache_hits_total)",
                             "sum(vllm:time_to_first_token_seconds_count)"};
  std::map<std::string, double> before;
  for (const char* q : kCounters) {
    ASSERT_TRUE(PollUntil([&] { return query(q).has_value(); }, std::chrono::seconds(30))) << q;
    before[q] = *query(q);
  }

  // Two requests sharing a 320-token prefix: the second hits the prefix cache (a hit of j
  // segments needs S + 128 j <= prompt_len - 128, here 32 + 128 <= 320 - 128).
  std::string ids;
  for (int i = 0; i < 320; ++i) absl::StrAppend(&ids, i ? "," : "", 1 + (i * 37) % 500);
  for (int i = 0; i < 2; ++i) {
    Result r = RunCommand(Cli(*server_, {"generate", "--prompt-token-ids", ids, "--max-tokens", "4",
                                         "--temperature", "0", "--json"}),
                          *dir_);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  EXPECT_GT(server_->Metric("vllm:prefix_cache_hits_total"), 0) << "no prefix-cache hit";

  for (const char* q : kCounters) {
    EXPECT_TRUE(
        PollUntil([&] { return query(q).value_or(-1) > before[q]; }, std::chrono::seconds(30)))
        << q << " stayed at " << before[q];
  }
  prom.Signal(SIGTERM);
  EXPECT_TRUE(prom.Wait(std::chrono::seconds(30)).has_value());
}

// ---- servers of their own ------------------------------------------------------------------

TEST(ServeE2eOwnServerTest, FullQueueIsResourceExhausted) {
  const TempDir tmp("kitty_serve_queue_");
  const fs::path dir = tmp.path();
  Server server(dir, {"--max-num-seqs=1", "--max-queued-requests=1"});
  ASSERT_TRUE(server.WaitReady()) << server.process().Describe();
  const std::vector<std::string> long_gen = {"generate", "--prompt",     kPrompt, "--max-tokens",
                                             "400",      "--ignore-eos", "--json"};
  Process a(Cli(server, long_gen), dir, "a");
  Process b(Cli(server, long_gen), dir, "b");
  ASSERT_TRUE(PollUntil(
      [&] {
        return server.Metric("vllm:num_requests_running") +
                   server.Metric("vllm:num_requests_waiting") ==
               2;
      },
      std::chrono::seconds(30)))
      << server.Metrics();
  Result r = RunCommand(Cli(server, {"generate", "--prompt", kPrompt}), dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("RESOURCE_EXHAUSTED"));
  a.Signal(SIGKILL);
  b.Signal(SIGKILL);
  EXPECT_TRUE(PollUntil([&] { return server.Idle(); }, std::chrono::seconds(30)))
      << server.Metrics();
  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(std::chrono::seconds(30)), 0);
}

TEST(ServeE2eOwnServerTest, SigtermDrainsActiveStreamsThenExitsZero) {
  const TempDir tmp("kitty_serve_drain_");
  const fs::path dir = tmp.path();
  // One sequence at a time: the eight streams run one after another, so the drain lasts
  // ~8 x 400 decode steps (seconds) — long after the SIGTERM and the refused call below.
  Server server(dir, {"--max-num-seqs=1"});
  ASSERT_TRUE(server.WaitReady()) << server.process().Describe();
  constexpr int kStreams = 8;
  constexpr int kTokens = 400;
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(
        std::make_unique<Process>(Cli(server, {"generate", "--prompt", kPrompt, "--max-tokens",
                                               std::to_string(kTokens), "--ignore-eos", "--json"}),
                                  dir, absl::StrCat("drain", i)));
  }
  // The first stream has delivered tokens and every stream has reached the server (finished,
  // running or queued; each runs ~0.5 s, so most are still queued when SIGTERM comes).
  ASSERT_TRUE(PollUntil(
      [&] {
        return !clients[0]->out().empty() &&
               server.Metric("vllm:request_success_total", {}) +
                       server.Metric("vllm:num_requests_running", {}) +
                       server.Metric("vllm:num_requests_waiting", {}) >=
                   kStreams;
      },
      std::chrono::seconds(60)));
  server.process().Signal(SIGTERM);

  // Health goes NOT_SERVING; new calls are UNAVAILABLE while the streams finish.
  ASSERT_TRUE(PollUntil([&] { return HttpGet(server.http_port(), "/health").first == 503; },
                        std::chrono::seconds(10)));
  Result r = RunCommand(Cli(server, {"generate", "--prompt", kPrompt}), dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE: the server is draining"));
  EXPECT_FALSE(server.process().Exited()) << "exited before the streams finished";

  for (auto& c : clients) {
    ASSERT_EQ(c->Wait(std::chrono::seconds(120)), 0) << c->Describe();
    Generated g = ParseCliJson(c->out());
    EXPECT_EQ(g.token_ids.size(), static_cast<size_t>(kTokens));
    EXPECT_EQ(g.finish_reason, "length");
  }
  EXPECT_EQ(server.process().Wait(std::chrono::seconds(30)), 0) << server.process().Describe();
  // One structured log line per request.
  EXPECT_THAT(server.process().out() + server.process().err(), HasSubstr("request_finished id="));
}

// A second SIGTERM while draining stops waiting for the streams (the drain timeout is 60 s
// here): the server exits 0 and the streams not finished by then end with "abort" (one
// sequence at a time: 16 streams of ~0.5 s would otherwise drain for seconds, none aborted).
TEST(ServeE2eOwnServerTest, SecondSigtermAbortsTheDrain) {
  const TempDir tmp("kitty_serve_second_signal_");
  const fs::path dir = tmp.path();
  Server server(dir, {"--max-num-seqs=1"});
  ASSERT_TRUE(server.WaitReady()) << server.process().Describe();
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(std::make_unique<Process>(
        Cli(server,
            {"generate", "--prompt", kPrompt, "--max-tokens", "100000", "--ignore-eos", "--json"}),
        dir, absl::StrCat("second", i)));
  }
  ASSERT_TRUE(PollUntil([&] { return !clients[0]->out().empty(); }, std::chrono::seconds(30)));
  server.process().Signal(SIGTERM);
  ASSERT_TRUE(PollUntil([&] { return HttpGet(server.http_port(), "/health").first == 503; },
                        std::chrono::seconds(10)));
  server.process().Signal(SIGTERM);
  EXPECT_EQ(server.process().Wait(std::chrono::seconds(20)), 0) << server.process().Describe();
  EXPECT_THAT(server.process().out() + server.process().err(), HasSubstr("second signal"));
  int aborted = 0;
  for (auto& c : clients) {
    const std::optional<int> code = c->Wait(std::chrono::seconds(20));
    ASSERT_TRUE(code.has_value()) << c->Describe();
    aborted += *code == 1 && absl::StrContains(c->err(), "aborted by the server");
  }
  EXPECT_GT(aborted, 0);
}

// gRPC's default SO_REUSEPORT let a second server start on a busy port and take part of the
// first one's calls (answering for another model); a busy port must stop the second server.
TEST(ServeE2eOwnServerTest, BusyGrpcPortIsAnError) {
  const TempDir tmp("kitty_serve_busy_");
  const fs::path dir = tmp.path();
  Server first(dir);
  ASSERT_TRUE(first.WaitReady()) << first.process().Describe();
  const std::string port = first.address().substr(first.address().rfind(':') + 1);
  Result r = RunCommand({Bin("kitty-serve"), "--model", "builtin:tiny", "--host", "127.0.0.1",
                         "--port=" + port, "--http-port=0"},
                        dir);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("kitty-serve: cannot listen on 127.0.0.1:" + port));
  first.process().Signal(SIGTERM);
  EXPECT_EQ(first.process().Wait(std::chrono::seconds(30)), 0);
}

// A generation the server aborts (here: cut off when a SIGTERM's drain timeout runs out)
// printed the truncated text and exited 0. (A request asking for more tokens than the KV cache
// holds no longer aborts: max_model_len is capped to the cache, so it ends with "length".)
TEST(ServeE2eOwnServerTest, CliSaysTheServerAbortedTheGeneration) {
  const TempDir tmp("kitty_serve_abort_");
  const fs::path dir = tmp.path();
  for (const bool json : {false, true}) {
    SCOPED_TRACE(json ? "--json" : "plain");
    // builtin:tiny's 4096-token context: the stream runs for seconds, far past the drain.
    Server server(dir, {"--drain-timeout-s=0.05", "--model=builtin:tiny"});
    ASSERT_TRUE(server.WaitReady()) << server.process().Describe();
    std::vector<std::string> args = {"generate", "--prompt",     kPrompt,         "--max-tokens",
                                     "100000",   "--ignore-eos", "--temperature", "0"};
    if (json) args.push_back("--json");
    Process cli(Cli(server, args), dir, json ? "abort_json" : "abort_plain");
    ASSERT_TRUE(PollUntil([&] { return !cli.out().empty(); }, std::chrono::seconds(30)))
        << cli.Describe();
    server.process().Signal(SIGTERM);
    EXPECT_EQ(cli.Wait(std::chrono::seconds(30)), 1) << cli.Describe();
    if (json) {
      EXPECT_THAT(cli.out(), HasSubstr("\"finish_reason\":\"abort\""));
    }
    EXPECT_THAT(cli.err(),
                ::testing::MatchesRegex(
                    "kitty-cli: generation aborted by the server after [0-9]+ tokens\n"));
    EXPECT_EQ(server.process().Wait(std::chrono::seconds(30)), 0) << server.process().Describe();
  }
}

}  // namespace
}  // namespace kitty::e2e
