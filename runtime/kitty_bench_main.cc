// kitty-bench: benchmarks of the whole runtime.
//
//   kitty-bench throughput --model synthetic:qwen3-4b --device cuda
//       --kv-cache-dtype auto,kitty-pro --kv-cache-memory 60000000000 --input-len 65
//       --output-len 8127 --num-prompts 512 --max-num-seqs-sweep 32,64,128,256 --json
//       --plot sweep.png
//   kitty-bench serve --server 127.0.0.1:50051 --request-rate 5,10,20 --num-prompts 200
//
// Offline and in-process (like `vllm bench throughput`): every mode runs with the same KV
// budget, one after another, and prints output/total tokens/s, peak concurrent sequences, KV
// bytes per token, mean decode step time against its memory roofline, and preemptions.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "runtime/bench_throughput.h"
#ifdef KITTY_BENCH_SERVE
#include "runtime/bench_serve.h"
#endif
#include "runtime/cache_flags.h"
#include "runtime/cli_util.h"
#include "runtime/engine_flags.h"

ABSL_FLAG(int, input_len, 128, "Prompt tokens per request");
ABSL_FLAG(int, output_len, 128, "Generated tokens per request (EOS ignored)");
ABSL_FLAG(int, num_prompts, 64,
          "Requests, all submitted at once (throughput: 0 = as many as the cache has sequence "
          "slots)");
ABSL_FLAG(std::string, max_num_seqs_sweep, "",
          "Comma-separated --max-num-seqs values to sweep (default: --max-num-seqs)");
ABSL_FLAG(bool, json, false, "Print JSON");
ABSL_FLAG(std::string, plot, "", "Write a PNG plot of the sweep (gnuplot)");
ABSL_FLAG(int64_t, seed, 0, "Seed of the random prompts");
ABSL_FLAG(std::string, server, "127.0.0.1:50051", "serve: kitty-serve address host:port");
ABSL_FLAG(std::string, request_rate, "0",
          "serve: requests/s of the Poisson arrivals; comma-separated to sweep (0 = all at once)");
ABSL_FLAG(int, max_concurrency, 64, "serve: requests in flight at most");
ABSL_FLAG(double, range_ratio, 0.0, "serve: lengths uniform in len*(1-r) .. len*(1+r)");

extern char** environ;

namespace kitty::runtime {
namespace {

constexpr char kTool[] = "kitty-bench";

// --plot PATH goes into gnuplot commands: a newline there would end the string and the
// command (gnuplot has `system`), so such paths are refused before the benchmark runs.
absl::Status CheckPlotPath(const std::string& png) {
  if (png.find_first_of("\n\r") != std::string::npos) {
    return absl::InvalidArgumentError("--plot: the path must not contain a line break");
  }
  return absl::OkStatus();
}

// `s` as a gnuplot single-quoted string: no escapes inside but '' for a quote.
std::string GnuplotString(absl::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out + "'";
}

// A file name for gnuplot: a relative name starting with '|' (set output) or '<' (plot) would
// be run as a shell command, so relative names get "./".
std::string GnuplotFile(const std::string& path) {
  return GnuplotString(absl::StartsWith(path, "/") ? path : "./" + path);
}

// Runs gnuplot on `script` without a shell: the script is written to a temporary file whose
// name is gnuplot's only argument (std::system pasted --plot into a shell command line).
absl::Status RunGnuplot(const std::string& script) {
  std::error_code ec;  // TMPDIR naming no directory must not throw after a whole benchmark
  std::filesystem::path dir = std::filesystem::temp_directory_path(ec);
  if (ec) dir = "/tmp";
  std::string path = (dir / "kitty_bench_plot_XXXXXX").string();
  const int fd = mkstemp(path.data());
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path));
  const bool wrote = write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
  close(fd);
  absl::Status status;
  if (!wrote) {
    status = absl::InternalError(absl::StrCat("cannot write ", path));
  } else {
    char* argv[] = {const_cast<char*>("gnuplot"), path.data(), nullptr};
    pid_t pid;
    if (const int rc = posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv, environ); rc != 0) {
      status = absl::UnavailableError(absl::StrCat("cannot run gnuplot: ", std::strerror(rc)));
    } else {
      int ws = 0;
      pid_t waited;
      while ((waited = waitpid(pid, &ws, 0)) < 0 && errno == EINTR) {
      }
      if (waited < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        status = absl::InternalError("gnuplot failed");
      }
    }
  }
  unlink(path.c_str());
  return status;
}

void Plot(const std::vector<ThroughputResult>& rs, const std::string& png) {
  const std::string dat = png + ".dat";
  std::ofstream d(dat);
  std::vector<std::string> modes;
  for (const auto& r : rs) {
    if (std::find(modes.begin(), modes.end(), r.mode) == modes.end()) modes.push_back(r.mode);
  }
  for (const std::string& m : modes) {
    d << "# " << m << "\n";
    for (const auto& r : rs) {
      if (r.mode == m) d << r.max_num_seqs << " " << r.output_tokens_per_s << "\n";
    }
    d << "\n\n";
  }
  d.close();
  std::string script = "set terminal png size 900,560; set output " + GnuplotFile(png) +
                       "; set title " +
                       GnuplotString("kitty-bench throughput (" + rs[0].device + ")") +
                       "; set xlabel 'max-num-seqs'; set ylabel 'output tokens/s'; "
                       "set logscale x 2; set grid; set key left top; plot ";
  for (size_t i = 0; i < modes.size(); ++i) {
    script += GnuplotFile(dat) + " index " + std::to_string(i) + " with linespoints lw 2 title " +
              GnuplotString(modes[i]) + (i + 1 < modes.size() ? ", " : "");
  }
  if (absl::Status s = RunGnuplot(script + "\n"); !s.ok()) {
    std::fprintf(stderr, "%s: %s; data left in %s\n", kTool, std::string(s.message()).c_str(),
                 dat.c_str());
  }
}

int Throughput() {
  if (absl::Status s = CheckPlotPath(absl::GetFlag(FLAGS_plot)); !s.ok()) DieWithStatus(kTool, s);
  ThroughputOptions o;
  o.engine = EngineConfigFromFlags();
  absl::StatusOr<std::vector<std::string>> modes = KvCacheModesFromFlag();
  if (!modes.ok()) DieWithStatus(kTool, modes.status());
  o.modes = *std::move(modes);
  const std::string sweep = absl::GetFlag(FLAGS_max_num_seqs_sweep);
  if (sweep.empty()) {
    o.max_num_seqs = {absl::GetFlag(FLAGS_max_num_seqs)};
  } else {
    for (absl::string_view v : absl::StrSplit(sweep, ',', absl::SkipWhitespace())) {
      int x;
      if (!absl::SimpleAtoi(v, &x) || x < 1) {
        DieWithStatus(kTool, absl::InvalidArgumentError("--max-num-seqs-sweep: bad value"));
      }
      o.max_num_seqs.push_back(x);
    }
    if (o.max_num_seqs.empty()) {
      DieWithStatus(kTool, absl::InvalidArgumentError("--max-num-seqs-sweep: no value given"));
    }
  }
  o.input_len = absl::GetFlag(FLAGS_input_len);
  o.output_len = absl::GetFlag(FLAGS_output_len);
  o.num_prompts = absl::GetFlag(FLAGS_num_prompts);
  o.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  absl::StatusOr<models::LoadedModel> loaded =
      models::LoadModel(absl::GetFlag(FLAGS_model), LoadOptionsFromFlags());
  if (!loaded.ok()) DieWithStatus(kTool, loaded.status());
  auto model = std::make_shared<models::LoadedModel>(*std::move(loaded));
  absl::StatusOr<std::vector<ThroughputResult>> rs = RunThroughput(model, o);
  if (!rs.ok()) DieWithStatus(kTool, rs.status());
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : *rs) {
      j.push_back({{"mode", r.mode},
                   {"max_num_seqs", r.max_num_seqs},
                   {"num_prompts", r.num_prompts},
                   {"input_len", r.input_len},
                   {"output_len", r.output_len},
                   {"elapsed_s", r.elapsed_s},
                   {"output_tokens_per_s", r.output_tokens_per_s},
                   {"total_tokens_per_s", r.total_tokens_per_s},
                   {"peak_running", r.peak_running},
                   {"kv_cache_bytes", r.kv_cache_bytes},
                   {"capacity_tokens", r.capacity_tokens},
                   {"kv_bytes_per_token", r.kv_bytes_per_token},
                   {"fp16_bytes_per_token", r.fp16_bytes_per_token},
                   {"mean_step_time_s", r.mean_step_time_s},
                   {"mean_roofline_step_s", r.mean_roofline_step_s},
                   {"roofline_ratio", r.roofline_ratio},
                   {"num_preemptions", r.num_preemptions},
                   {"device", r.device},
                   {"copy_bandwidth_bytes_s", r.copy_bandwidth_bytes_s},
                   {"mean_compute_floor_step_s", r.mean_compute_floor_step_s},
                   {"mean_floor_step_s", r.mean_floor_step_s},
                   {"floor_ratio", r.floor_ratio},
                   {"matmul_flops_s", r.matmul_flops_s}});
    }
    std::printf("%s\n", nlohmann::json{{"throughput", j}}.dump().c_str());
  } else {
    std::printf("%-10s %6s %10s %10s %6s %10s %9s %10s %10s %6s %10s %6s %7s\n", "mode", "seqs",
                "out tok/s", "tot tok/s", "peak", "cap tok", "KV B/tok", "step ms", "roof ms",
                "x roof", "floor ms", "x flr", "preempt");
    for (const auto& r : *rs) {
      std::printf(
          "%-10s %6d %10.1f %10.1f %6d %10lld %9.1f %10.3f %10.3f %6.2f %10.3f %6.2f %7lld\n",
          r.mode.c_str(), r.max_num_seqs, r.output_tokens_per_s, r.total_tokens_per_s,
          r.peak_running, static_cast<long long>(r.capacity_tokens), r.kv_bytes_per_token,
          r.mean_step_time_s * 1e3, r.mean_roofline_step_s * 1e3, r.roofline_ratio,
          r.mean_floor_step_s * 1e3, r.floor_ratio, static_cast<long long>(r.num_preemptions));
    }
  }
  if (const std::string png = absl::GetFlag(FLAGS_plot); !png.empty()) Plot(*rs, png);
  return 0;
}

#ifdef KITTY_BENCH_SERVE
void PlotServe(const std::vector<ServeBenchResult>& rs, const std::string& png) {
  const std::string dat = png + ".dat";
  std::ofstream d(dat);
  for (const auto& r : rs) {
    d << r.request_rate << " " << r.ttft_s.p50 * 1e3 << " " << r.ttft_s.p99 * 1e3 << " "
      << r.tpot_s.p50 * 1e3 << " " << r.tpot_s.p99 * 1e3 << " " << r.output_throughput << "\n";
  }
  d.close();
  const std::string script =
      "set terminal png size 900,560; set output " + GnuplotFile(png) +
      "; set title 'kitty-bench serve'; set xlabel 'request rate (req/s; 0 = all at once)';"
      " set ylabel 'ms'; set y2label 'output tokens/s'; set y2tics; set grid; set key left top;"
      " plot " +
      GnuplotFile(dat) +
      " u 1:2 w lp lw 2 t 'TTFT p50', '' u 1:3 w lp lw 2 t 'TTFT p99', '' u "
      "1:4 w lp lw 2 t 'TPOT p50', '' u 1:5 w lp lw 2 t 'TPOT p99', '' u 1:6 axes x1y2 w lp lw "
      "2 dt 2 t 'output tok/s'\n";
  if (absl::Status s = RunGnuplot(script); !s.ok()) {
    std::fprintf(stderr, "%s: %s; data left in %s\n", kTool, std::string(s.message()).c_str(),
                 dat.c_str());
  }
}

int Serve() {
  if (absl::Status s = CheckPlotPath(absl::GetFlag(FLAGS_plot)); !s.ok()) DieWithStatus(kTool, s);
  ServeBenchOptions o;
  o.server = absl::GetFlag(FLAGS_server);
  o.max_concurrency = absl::GetFlag(FLAGS_max_concurrency);
  o.num_prompts = absl::GetFlag(FLAGS_num_prompts);
  o.input_len = absl::GetFlag(FLAGS_input_len);
  o.output_len = absl::GetFlag(FLAGS_output_len);
  o.range_ratio = absl::GetFlag(FLAGS_range_ratio);
  o.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  std::vector<ServeBenchResult> results;
  for (absl::string_view v :
       absl::StrSplit(absl::GetFlag(FLAGS_request_rate), ',', absl::SkipWhitespace())) {
    if (!absl::SimpleAtod(v, &o.request_rate) || o.request_rate < 0) {
      DieWithStatus(kTool, absl::InvalidArgumentError("--request-rate: bad value"));
    }
    absl::StatusOr<ServeBenchResult> r = RunServeBench(o);
    if (!r.ok()) DieWithStatus(kTool, r.status());
    results.push_back(*r);
  }
  auto pct = [](const Percentiles& p) {
    return nlohmann::json{{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}};
  };
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : results) {
      j.push_back({{"request_rate", r.request_rate},
                   {"completed", r.completed},
                   {"errors", r.errors},
                   {"error_samples", r.error_samples},
                   {"duration_s", r.duration_s},
                   {"request_throughput", r.request_throughput},
                   {"output_throughput", r.output_throughput},
                   {"total_throughput", r.total_throughput},
                   {"ttft_s", pct(r.ttft_s)},
                   {"tpot_s", pct(r.tpot_s)},
                   {"itl_s", pct(r.itl_s)},
                   {"e2e_s", pct(r.e2e_s)}});
    }
    std::printf("%s\n", nlohmann::json{{"serve", j}}.dump().c_str());
  } else {
    std::printf("%8s %6s %5s %8s %10s %9s %9s %9s %9s %9s %9s\n", "rate", "done", "err", "req/s",
                "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "ITL p99", "E2E p99");
    for (const auto& r : results) {
      std::printf("%8.2f %6d %5d %8.2f %10.1f %8.1fms %8.1fms %8.2fms %8.2fms %8.2fms %8.2fs\n",
                  r.request_rate, r.completed, r.errors, r.request_throughput, r.output_throughput,
                  r.ttft_s.p50 * 1e3, r.ttft_s.p99 * 1e3, r.tpot_s.p50 * 1e3, r.tpot_s.p99 * 1e3,
                  r.itl_s.p99 * 1e3, r.e2e_s.p99);
    }
  }
  if (const std::string png = absl::GetFlag(FLAGS_plot); !png.empty()) PlotServe(results, png);
  // Failed requests make the exit status 1: say why on stderr (the table only counts them).
  int status = 0;
  for (const auto& r : results) {
    if (r.errors == 0) continue;
    status = 1;
    std::fprintf(stderr, "%s: rate %.2f: %d of %d requests failed; first error: %s\n", kTool,
                 r.request_rate, r.errors, r.errors + r.completed,
                 r.error_samples.empty() ? "?" : r.error_samples[0].c_str());
  }
  return status;
}
#endif

}  // namespace
}  // namespace kitty::runtime

int main(int argc, char** argv) {
  constexpr char kUsage[] = "kitty-bench throughput|serve [flags]";
  if (argc >= 2 && (absl::StartsWith(argv[1], "--help") || absl::StartsWith(argv[1], "-help"))) {
    kitty::runtime::ParseFlagsOrDie(argc, argv, kUsage);  // prints the help and exits 0
  }
  if (argc < 2 || std::string(argv[1]).rfind("-", 0) == 0) {
    std::fprintf(stderr, "usage: %s (see --help)\n", kUsage);
    return 2;
  }
  const std::string sub = argv[1];
  argv[1] = argv[0];
  kitty::runtime::ParseFlagsOrDie(argc - 1, argv + 1, kUsage);
  if (sub == "throughput") return kitty::runtime::Throughput();
#ifdef KITTY_BENCH_SERVE
  if (sub == "serve") return kitty::runtime::Serve();
#else
  if (sub == "serve") {
    std::fprintf(stderr, "kitty-bench: serve needs a build with gRPC (KITTY_BUILD_SERVER=ON)\n");
    return 2;
  }
#endif
  std::fprintf(stderr, "kitty-bench: unknown subcommand \"%s\" (throughput|serve)\n", sub.c_str());
  return 2;
}
