// kitty-eval: teacher-forced perplexity of a text file under each KV cache mode, with KL
// divergence and top-1 agreement against mode `auto` (no quantization).
//
//   kitty-eval --model ../shared/data/stories260K/hf --text valid_sample.txt --max-docs 200 \
//       --kv-cache-dtype auto,kivi2,kitty,kitty-pro,k4v2 --json
//
// --json prints {"modes":[{"mode":"auto","tokens":N,"mean_nll":x,"ppl":y,"kl_vs_auto":z,
// "top1_agreement":a},...]} (a contract: scripts depend on these names).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "runtime/cache_flags.h"
#include "runtime/cli_util.h"
#include "runtime/offline.h"
#include "runtime/perplexity.h"

ABSL_FLAG(std::string, text, "", "Text file to score (required)");
ABSL_FLAG(std::string, separator, "<|endoftext|>", "Document separator in --text");
ABSL_FLAG(int, max_docs, 0, "Score at most this many documents (0 = all)");
ABSL_FLAG(int, max_tokens_per_doc, 0, "Truncate documents to this many tokens (0 = context)");
ABSL_FLAG(bool, json, false, "Print JSON");

namespace kitty::runtime {

constexpr char kTool[] = "kitty-eval";
bool g_mode_flag_given = false;  // --kv-cache-dtype on the command line

int Main() {
  const std::string path = absl::GetFlag(FLAGS_text);
  if (path.empty()) DieWithStatus(kTool, absl::InvalidArgumentError("--text FILE is required"));
  std::ifstream in(path, std::ios::binary);
  if (!in) DieWithStatus(kTool, absl::NotFoundError(path + ": cannot open the text file"));
  std::stringstream ss;
  ss << in.rdbuf();

  // Modes: validated before the model loads so a typo fails fast.
  std::vector<std::string> modes =
      absl::StrSplit(absl::GetFlag(FLAGS_kv_cache_dtype), ',', absl::SkipWhitespace());
  if (!g_mode_flag_given) {
    // The flag's default is the serving default; without the flag, evaluate every mode.
    modes = {"auto", "kivi2", "kitty", "kitty-pro", "k4v2"};
  }
  for (const std::string& mode : modes) {
    if (auto m = kernels::ParseKvCacheMode(mode); !m.ok()) DieWithStatus(kTool, m.status());
  }

  absl::StatusOr<models::LoadedModel> loaded = models::LoadModel(absl::GetFlag(FLAGS_model));
  if (!loaded.ok()) DieWithStatus(kTool, loaded.status());
  if (loaded->tokenizer == nullptr) {
    DieWithStatus(kTool, absl::FailedPreconditionError("the model has no tokenizer.json"));
  }
  // specs[0] is always `auto`, the reference for KL and agreement.
  std::vector<kernels::KvCacheSpec> specs;
  std::vector<std::string> all_modes = {"auto"};
  for (const std::string& mode : modes) {
    if (mode != "auto") all_modes.push_back(mode);
  }
  for (const std::string& mode : all_modes) {
    absl::StatusOr<kernels::KvCacheSpec> spec =
        MakeSpecForModel(loaded->config, mode, absl::GetFlag(FLAGS_kv_sink_tokens),
                         absl::GetFlag(FLAGS_kv_boost_fraction));
    if (!spec.ok()) DieWithStatus(kTool, spec.status());
    specs.push_back(*spec);
  }

  int max_tokens = absl::GetFlag(FLAGS_max_tokens_per_doc);
  if (max_tokens <= 0) max_tokens = loaded->config.max_position_embeddings;
  std::vector<std::vector<int32_t>> docs;
  for (const std::string& d :
       SplitDocuments(ss.str(), absl::GetFlag(FLAGS_separator), absl::GetFlag(FLAGS_max_docs))) {
    std::vector<int32_t> ids = loaded->tokenizer->Encode(d, /*add_special_tokens=*/true);
    if (static_cast<int>(ids.size()) > max_tokens) ids.resize(max_tokens);
    docs.push_back(std::move(ids));
  }
  if (docs.empty()) DieWithStatus(kTool, absl::InvalidArgumentError(path + ": no documents"));

  auto progress = [](int done, int total) {
    std::fprintf(stderr, "\rkitty-eval: %d/%d documents", done, total);
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
  absl::StatusOr<std::vector<ModeScore>> scores = EvaluateModes(*loaded, specs, docs, progress);
  if (!scores.ok()) DieWithStatus(kTool, scores.status());

  std::vector<ModeScore> out;
  for (const std::string& mode : modes) {
    for (const ModeScore& s : *scores) {
      if (s.mode == mode) out.push_back(s);
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j;
    j["modes"] = nlohmann::json::array();
    for (const ModeScore& s : out) {
      j["modes"].push_back({{"mode", s.mode},
                            {"tokens", s.tokens},
                            {"mean_nll", s.mean_nll},
                            {"ppl", s.ppl},
                            {"kl_vs_auto", s.kl_vs_auto},
                            {"top1_agreement", s.top1_agreement}});
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%-10s %8s %10s %10s %12s %8s\n", "mode", "tokens", "mean_nll", "ppl", "kl_vs_auto",
                "top1");
    for (const ModeScore& s : out) {
      std::printf("%-10s %8lld %10.6f %10.4f %12.6f %8.4f\n", s.mode.c_str(),
                  static_cast<long long>(s.tokens), s.mean_nll, s.ppl, s.kl_vs_auto,
                  s.top1_agreement);
    }
  }
  return 0;
}

}  // namespace kitty::runtime

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--kv-cache-dtype", 0) == 0 || a.rfind("--kv_cache_dtype", 0) == 0) {
      kitty::runtime::g_mode_flag_given = true;
    }
  }
  kitty::runtime::ParseFlagsOrDie(
      argc, argv, "kitty-eval --model DIR --text FILE [--kv-cache-dtype auto,kitty-pro] [--json]");
  return kitty::runtime::Main();
}
