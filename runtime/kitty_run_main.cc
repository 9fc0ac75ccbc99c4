// kitty-run: offline in-process generation.
//
//   kitty-run --model builtin:tiny --prompt "Once upon a time" --max-tokens 32
//   kitty-run --model DIR --prompt-token-ids 1,2,3 --temperature 0 --json
//
// With --json it prints one object:
//   {"prompt_token_ids":[...],"token_ids":[...],"text":"...","finish_reason":"length"|"stop"}
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "nlohmann/json.hpp"
#include "runtime/cache_flags.h"
#include "runtime/cli_util.h"
#include "runtime/offline.h"

ABSL_FLAG(std::string, prompt, "", "Prompt text (encoded with the model's tokenizer, with BOS)");
ABSL_FLAG(std::string, prompt_token_ids, "", "Prompt as comma-separated token ids");
ABSL_FLAG(int, max_tokens, 16, "Maximum number of tokens to generate");
ABSL_FLAG(double, temperature, 0.0, "Sampling temperature (0 = greedy)");
ABSL_FLAG(int64_t, seed, 0, "Sampling seed");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating after the end-of-sequence token");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of text");

namespace kitty::runtime {
namespace {

constexpr char kTool[] = "kitty-run";

int Main() {
  absl::StatusOr<models::LoadedModel> loaded = models::LoadModel(absl::GetFlag(FLAGS_model));
  if (!loaded.ok()) DieWithStatus(kTool, loaded.status());
  absl::StatusOr<kernels::KvCacheSpec> spec =
      MakeSpecForModel(loaded->config, absl::GetFlag(FLAGS_kv_cache_dtype),
                       absl::GetFlag(FLAGS_kv_sink_tokens), absl::GetFlag(FLAGS_kv_boost_fraction));
  if (!spec.ok()) DieWithStatus(kTool, spec.status());

  std::vector<int32_t> prompt_ids;
  const std::string text = absl::GetFlag(FLAGS_prompt);
  const std::string ids = absl::GetFlag(FLAGS_prompt_token_ids);
  if (!text.empty() && !ids.empty()) {
    DieWithStatus(kTool,
                  absl::InvalidArgumentError("give --prompt or --prompt-token-ids, not both"));
  }
  if (!ids.empty()) {
    absl::StatusOr<std::vector<int32_t>> parsed = ParseTokenIds(ids, "--prompt-token-ids");
    if (!parsed.ok()) DieWithStatus(kTool, parsed.status());
    prompt_ids = *std::move(parsed);
  } else {
    if (loaded->tokenizer == nullptr) {
      DieWithStatus(kTool,
                    absl::FailedPreconditionError(
                        "the model directory has no tokenizer.json: use --prompt-token-ids"));
    }
    prompt_ids = loaded->tokenizer->Encode(text, /*add_special_tokens=*/true);
  }

  SamplingParams params;
  params.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  params.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  params.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  params.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  absl::StatusOr<GenerationResult> r = GenerateOffline(*loaded, *spec, prompt_ids, params);
  if (!r.ok()) DieWithStatus(kTool, r.status());

  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j;
    j["prompt_token_ids"] = r->prompt_token_ids;
    j["token_ids"] = r->token_ids;
    j["text"] = r->text;
    j["finish_reason"] = r->finish_reason;
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s%s\n", text.c_str(), r->text.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace kitty::runtime

int main(int argc, char** argv) {
  kitty::runtime::ParseFlagsOrDie(argc, argv,
                                  "kitty-run --model DIR|builtin:tiny --prompt TEXT [--json]");
  return kitty::runtime::Main();
}
