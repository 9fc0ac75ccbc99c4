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
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runtime/batch_run.h"
#include "runtime/cache_flags.h"
#include "runtime/cli_util.h"
#include "runtime/engine_flags.h"
#include "runtime/offline.h"

ABSL_FLAG(std::string, prompt, "", "Prompt text (encoded with the model's tokenizer, with BOS)");
ABSL_FLAG(std::string, prompt_token_ids, "", "Prompt as comma-separated token ids");
ABSL_FLAG(int, max_tokens, 16, "Maximum number of tokens to generate");
ABSL_FLAG(double, temperature, 0.0, "Sampling temperature (0 = greedy)");
ABSL_FLAG(int64_t, seed, 0, "Sampling seed");
ABSL_FLAG(bool, ignore_eos, false, "Keep generating after the end-of-sequence token");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of text");
ABSL_FLAG(std::string, prompts_file, "",
          "Run every JSON line of this file concurrently through the engine (see "
          "runtime/batch_run.h); prints one JSON line per request, then a stats line");

namespace kitty::runtime {
namespace {

constexpr char kTool[] = "kitty-run";

int Main() {
  absl::StatusOr<models::LoadedModel> loaded =
      models::LoadModel(absl::GetFlag(FLAGS_model), LoadOptionsFromFlags());
  if (!loaded.ok()) DieWithStatus(kTool, loaded.status());
  absl::StatusOr<kernels::KvCacheSpec> spec =
      MakeSpecForModel(loaded->config, absl::GetFlag(FLAGS_kv_cache_dtype),
                       absl::GetFlag(FLAGS_kv_sink_tokens), absl::GetFlag(FLAGS_kv_boost_fraction));
  if (!spec.ok()) DieWithStatus(kTool, spec.status());

  if (const std::string file = absl::GetFlag(FLAGS_prompts_file); !file.empty()) {
    SamplingParams defaults;
    defaults.max_tokens = absl::GetFlag(FLAGS_max_tokens);
    defaults.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
    defaults.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
    auto shared = std::make_shared<models::LoadedModel>(*std::move(loaded));
    absl::StatusOr<std::unique_ptr<Engine>> engine =
        Engine::Create(EngineConfigFromFlags(), std::move(shared));
    if (!engine.ok()) DieWithStatus(kTool, engine.status());
    const absl::Status st = RunPromptsFile(**engine, file, defaults);
    (*engine)->Stop();
    if (!st.ok()) DieWithStatus(kTool, st);
    return 0;
  }

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
    for (int32_t id : prompt_ids) {
      if (id < 0 || id >= loaded->config.vocab_size) {
        DieWithStatus(kTool, absl::InvalidArgumentError(absl::StrFormat(
                                 "--prompt-token-ids: token id %d is out of range for the "
                                 "model's vocabulary of %d (valid ids: 0..%d)",
                                 id, loaded->config.vocab_size, loaded->config.vocab_size - 1)));
      }
    }
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
  // One request through the engine, on --device (the same path a server request takes).
  Request req;
  req.prompt_token_ids = prompt_ids;
  req.params = params;
  auto shared = std::make_shared<models::LoadedModel>(*std::move(loaded));
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(EngineConfigFromFlags(), std::move(shared));
  if (!engine.ok()) DieWithStatus(kTool, engine.status());
  absl::StatusOr<std::shared_ptr<RequestStream>> stream = (*engine)->AddRequest(std::move(req));
  if (!stream.ok()) DieWithStatus(kTool, stream.status());
  const RequestOutput out = (*stream)->WaitFinished();
  (*engine)->Stop();
  const CompletionDelta& r = out.outputs.at(0);

  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j;
    j["prompt_token_ids"] = prompt_ids;
    j["token_ids"] = r.token_ids;
    j["text"] = r.text;
    j["finish_reason"] = r.finish_reason;
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s%s\n", text.c_str(), r.text.c_str());
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
