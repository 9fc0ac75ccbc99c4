// File: runtime/cache_flags.h
// -----------------------------------------------------------------------------
// Flags shared by every binary that runs a model: --model, --kv-cache-dtype,
// --kv-sink-tokens, --kv-boost-fraction (vLLM names where vLLM has one); the mode list of the
// tools that run several modes one after another.
#ifndef KITTY_RUNTIME_CACHE_FLAGS_H_
#define KITTY_RUNTIME_CACHE_FLAGS_H_

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"

ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, kv_cache_dtype);
ABSL_DECLARE_FLAG(int, kv_sink_tokens);
ABSL_DECLARE_FLAG(double, kv_boost_fraction);

namespace kitty::runtime {

// --kv-cache-dtype as a comma-separated list of modes (kitty-bench, kitty-eval); InvalidArgument
// when it names none ("" or ","), which ran nothing and exited 0.
absl::StatusOr<std::vector<std::string>> KvCacheModesFromFlag();

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_CACHE_FLAGS_H_
