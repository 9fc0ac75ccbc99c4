// kitty-bench: benchmarks of the whole runtime.
//
//   kitty-bench throughput --model synthetic:qwen3-4b --kv-cache-dtype auto,kitty-pro \
//       --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --num-prompts 512 \
//       --max-num-seqs 32,64,128,256 --json --plot sweep.png
//
// Offline and in-process (like `vllm bench throughput`): every mode runs with the same KV
// budget, one after another, and prints output/total tokens/s, peak concurrent sequences, KV
// bytes per token, mean decode step time against its memory roofline, and preemptions.
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "runtime/bench_throughput.h"
#include "runtime/cli_util.h"
#include "runtime/engine_flags.h"

ABSL_FLAG(int, input_len, 128, "Prompt tokens per request");
ABSL_FLAG(int, output_len, 128, "Generated tokens per request (EOS ignored)");
ABSL_FLAG(int, num_prompts, 64, "Requests, all submitted at once");
ABSL_FLAG(std::string, max_num_seqs_sweep, "",
          "Comma-separated --max-num-seqs values to sweep (default: --max-num-seqs)");
ABSL_FLAG(bool, json, false, "Print JSON");
ABSL_FLAG(std::string, plot, "", "Write a PNG plot of the sweep (gnuplot)");
ABSL_FLAG(int64_t, seed, 0, "Seed of the random prompts");

namespace kitty::runtime {
namespace {

constexpr char kTool[] = "kitty-bench";

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
  std::string script = "set terminal png size 900,560; set output '" + png +
                       "'; set title 'kitty-bench throughput (" + rs[0].device +
                       ")'; set xlabel 'max-num-seqs'; set ylabel 'output tokens/s'; "
                       "set logscale x 2; set grid; set key left top; plot ";
  for (size_t i = 0; i < modes.size(); ++i) {
    script += "'" + dat + "' index " + std::to_string(i) + " with linespoints lw 2 title '" +
              modes[i] + "'" + (i + 1 < modes.size() ? ", " : "");
  }
  const std::string cmd = "gnuplot -e \"" + script + "\"";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "%s: gnuplot failed; data left in %s\n", kTool, dat.c_str());
  }
}

int Throughput() {
  ThroughputOptions o;
  o.engine = EngineConfigFromFlags();
  o.modes = absl::StrSplit(absl::GetFlag(FLAGS_kv_cache_dtype), ',', absl::SkipWhitespace());
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
  }
  o.input_len = absl::GetFlag(FLAGS_input_len);
  o.output_len = absl::GetFlag(FLAGS_output_len);
  o.num_prompts = absl::GetFlag(FLAGS_num_prompts);
  o.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  absl::StatusOr<models::LoadedModel> loaded = models::LoadModel(absl::GetFlag(FLAGS_model));
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
                   {"copy_bandwidth_bytes_s", r.copy_bandwidth_bytes_s}});
    }
    std::printf("%s\n", nlohmann::json{{"throughput", j}}.dump().c_str());
  } else {
    std::printf("%-10s %6s %10s %10s %6s %10s %9s %10s %10s %6s %7s\n", "mode", "seqs", "out tok/s",
                "tot tok/s", "peak", "cap tok", "KV B/tok", "step ms", "roof ms", "x roof",
                "preempt");
    for (const auto& r : *rs) {
      std::printf("%-10s %6d %10.1f %10.1f %6d %10lld %9.1f %10.3f %10.3f %6.2f %7lld\n",
                  r.mode.c_str(), r.max_num_seqs, r.output_tokens_per_s, r.total_tokens_per_s,
                  r.peak_running, static_cast<long long>(r.capacity_tokens), r.kv_bytes_per_token,
                  r.mean_step_time_s * 1e3, r.mean_roofline_step_s * 1e3, r.roofline_ratio,
                  static_cast<long long>(r.num_preemptions));
    }
  }
  if (const std::string png = absl::GetFlag(FLAGS_plot); !png.empty()) Plot(*rs, png);
  return 0;
}

}  // namespace
}  // namespace kitty::runtime

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]).rfind("-", 0) == 0) {
    std::fprintf(stderr, "usage: kitty-bench throughput|serve [flags] (see --help)\n");
    return 2;
  }
  const std::string sub = argv[1];
  argv[1] = argv[0];
  kitty::runtime::ParseFlagsOrDie(argc - 1, argv + 1, "kitty-bench throughput|serve [flags]");
  if (sub == "throughput") return kitty::runtime::Throughput();
  std::fprintf(stderr, "kitty-bench: unknown subcommand \"%s\" (throughput|serve)\n", sub.c_str());
  return 2;
}
