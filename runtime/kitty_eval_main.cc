// kitty-eval: teacher-forced perplexity of a text file under each KV cache mode, with KL
// divergence and top-1 agreement against mode `auto` (no quantization).
//
//   kitty-eval --model ../shared/data/stories260K/hf --text valid_sample.txt --max-docs 200
//       --kv-cache-dtype auto,kivi2,kitty,kitty-pro,k4v2 --json
//
// --json prints {"modes":[{"mode":"auto","tokens":N,"mean_nll":x,"ppl":y,"kl_vs_auto":z,
// "top1_agreement":a,"memory":{...}},...]} (the names other than "memory" are a contract:
// scripts depend on them). "memory" holds the bytes per token per kv-head by storage kind
// (runtime::ModeMemory; full-precision parts counted at fp16, the serving layout).
//
//   kitty-eval --model synthetic:qwen3-8b --memory-only [--json]
//
// prints only the memory table of each mode (needs just the model's config: no weights and no
// --text).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
ABSL_FLAG(bool, memory_only, false,
          "Print only the KV memory accounting of each mode (reads the model config, no text)");

namespace kitty::runtime {

constexpr char kTool[] = "kitty-eval";
bool g_mode_flag_given = false;  // --kv-cache-dtype on the command line

// The full-precision parts (sink, tails, `auto` pages) are counted at fp16, the element type
// of the serving cache and of KITTY.md §4's table (the CPU backend keeps them in float32).
constexpr kernels::DType kMemoryFpDType = kernels::DType::kFloat16;

nlohmann::json MemoryJson(const ModeMemory& m) {
  return {{"head_dim", m.head_dim},
          {"boost_channels", m.boost_channels},
          {"sink_tokens", m.sink_tokens},
          {"fp_dtype", m.fp_dtype},
          {"k_page_bytes", m.k_page_bytes},
          {"v_page_bytes", m.v_page_bytes},
          {"bytes_per_token_per_kv_head",
           {{"sealed_k", m.sealed_k},
            {"sealed_v", m.sealed_v},
            {"sink", m.sink},
            {"k_tail", m.k_tail},
            {"v_tail", m.v_tail},
            {"fp16_kv", m.fp16_kv}}},
          {"k_bits_per_element", m.k_bits_per_element},
          {"v_bits_per_element", m.v_bits_per_element},
          {"bits_per_element", m.bits_per_element},
          {"ratio_vs_fp16", m.ratio_vs_fp16},
          {"docs_bytes_per_token", m.docs_bytes_per_token},
          {"docs_ratio_vs_fp16", m.docs_ratio_vs_fp16}};
}

void PrintMemoryTable(const std::vector<ModeMemory>& mems) {
  std::printf("KV memory, bytes per token per kv-head (D=%d, sink %d; sink/tails/auto at %s)\n",
              mems.empty() ? 0 : mems[0].head_dim, mems.empty() ? 0 : mems[0].sink_tokens,
              mems.empty() ? "" : mems[0].fp_dtype.c_str());
  // x_fp16: fp16 / sealed pages; docs_x: fp16 / everything the evaluated documents occupy at
  // their final length (sink + sealed pages + tails).
  std::printf("%-10s %4s %9s %9s %8s %8s %8s %7s %7s %7s %8s %9s\n", "mode", "DB", "sealed_K",
              "sealed_V", "sink_KV", "K_tail", "V_tail", "K_bits", "V_bits", "bits", "x_fp16",
              "docs_x");
  for (const ModeMemory& m : mems) {
    std::printf("%-10s %4d %9.4f %9.4f %8.2f %8.2f %8.2f %7.4f %7.4f %7.4f %8.3f ", m.mode.c_str(),
                m.boost_channels, m.sealed_k, m.sealed_v, m.sink, m.k_tail, m.v_tail,
                m.k_bits_per_element, m.v_bits_per_element, m.bits_per_element, m.ratio_vs_fp16);
    if (m.docs_bytes_per_token > 0) {
      std::printf("%9.3f\n", m.docs_ratio_vs_fp16);
    } else {
      std::printf("%9s\n", "-");
    }
  }
}

// --memory-only: needs the config only (built-in names or config.json), never the weights.
int MemoryOnly(const std::vector<std::string>& modes) {
  const std::string model = absl::GetFlag(FLAGS_model);
  absl::StatusOr<models::ModelConfig> config =
      absl::StartsWith(model, "builtin:") || absl::StartsWith(model, "synthetic:")
          ? models::BuiltinModelConfig(model)
          : models::LoadModelConfig(model);
  if (!config.ok()) DieWithStatus(kTool, config.status());
  std::vector<ModeMemory> mems;
  for (const std::string& mode : modes) {
    absl::StatusOr<kernels::KvCacheSpec> spec = MakeSpecForModel(
        *config, mode, absl::GetFlag(FLAGS_kv_sink_tokens), absl::GetFlag(FLAGS_kv_boost_fraction));
    if (!spec.ok()) DieWithStatus(kTool, spec.status());
    mems.push_back(ComputeModeMemory(*spec, kMemoryFpDType));
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j;
    j["modes"] = nlohmann::json::array();
    for (const ModeMemory& m : mems) {
      j["modes"].push_back({{"mode", m.mode}, {"memory", MemoryJson(m)}});
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    PrintMemoryTable(mems);
  }
  return 0;
}

int Main() {
  // Modes: validated before the model loads so a typo fails fast.
  // The flag's default is the serving default; without the flag, evaluate every mode.
  std::vector<std::string> modes = {"auto", "kivi2", "kitty", "kitty-pro", "k4v2"};
  if (g_mode_flag_given) {
    absl::StatusOr<std::vector<std::string>> given = KvCacheModesFromFlag();
    if (!given.ok()) DieWithStatus(kTool, given.status());
    modes = *std::move(given);
  }
  for (const std::string& mode : modes) {
    if (auto m = kernels::ParseKvCacheMode(mode); !m.ok()) {
      DieWithStatus(kTool, absl::InvalidArgumentError(
                               absl::StrCat("--kv-cache-dtype: ", m.status().message())));
    }
  }
  if (absl::GetFlag(FLAGS_memory_only)) return MemoryOnly(modes);

  const std::string path = absl::GetFlag(FLAGS_text);
  if (path.empty()) DieWithStatus(kTool, absl::InvalidArgumentError("--text FILE is required"));
  std::ifstream in(path, std::ios::binary);
  if (!in) DieWithStatus(kTool, absl::NotFoundError(path + ": cannot open the text file"));
  std::stringstream ss;
  ss << in.rdbuf();

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

  std::vector<int64_t> doc_lengths;
  for (const std::vector<int32_t>& d : docs) doc_lengths.push_back(static_cast<int64_t>(d.size()));
  std::vector<ModeScore> out;
  std::vector<ModeMemory> mems;
  for (const std::string& mode : modes) {
    for (size_t i = 0; i < scores->size(); ++i) {
      if ((*scores)[i].mode != mode) continue;
      out.push_back((*scores)[i]);
      mems.push_back(ComputeModeMemory(specs[i], kMemoryFpDType, doc_lengths));
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
                            {"top1_agreement", s.top1_agreement},
                            {"memory", MemoryJson(mems[&s - out.data()])}});
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
    std::printf("\n");
    PrintMemoryTable(mems);
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
      argc, argv,
      "kitty-eval --model DIR --text FILE [--kv-cache-dtype auto,kitty-pro] [--json] | "
      "kitty-eval --model DIR --memory-only");
  return kitty::runtime::Main();
}
