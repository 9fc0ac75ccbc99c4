// File: runtime/batch_run.h
// -----------------------------------------------------------------------------
// `kitty-run --prompts-file FILE`: every line of FILE is one JSON request,
//   {"prompt": "..."} or {"prompt_token_ids": [...]}, plus any sampling field
//   (max_tokens, temperature, top_p, top_k, min_p, seed, stop, stop_token_ids, ignore_eos,
//    presence_penalty, frequency_penalty, repetition_penalty, n, logprobs, min_tokens),
//   and optionally priority, cache_salt, and abort_after_tokens (aborts the request once it has
//   generated that many tokens: a test knob for the abort path).
// All are submitted at once and run concurrently through the engine. Output: one JSON line per
// request (per output for n > 1, with "index") in input order, as `kitty-run --json` prints,
// then one line {"stats":{...}} (prefix_cache_queries_tokens, prefix_cache_hit_tokens,
// num_preemptions, pages_in_use_at_exit, ...). These names are a contract.
#ifndef KITTY_RUNTIME_BATCH_RUN_H_
#define KITTY_RUNTIME_BATCH_RUN_H_

#include <string>

#include "absl/status/statusor.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "runtime/engine.h"

namespace kitty::runtime {

// Parses one request line; errors name the line and the field.
absl::StatusOr<Request> RequestFromJson(const nlohmann::json& j, const models::Tokenizer* tok,
                                        int line);

// Runs the file through `engine`; writes the output lines to stdout.
absl::Status RunPromptsFile(Engine& engine, const std::string& path, SamplingParams defaults);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_BATCH_RUN_H_
