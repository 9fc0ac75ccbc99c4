// File: runtime/cache_flags.h
// -----------------------------------------------------------------------------
// Flags shared by every binary that runs a model: --model, --kv-cache-dtype,
// --kv-sink-tokens, --kv-boost-fraction (vLLM names where vLLM has one).
#ifndef KITTY_RUNTIME_CACHE_FLAGS_H_
#define KITTY_RUNTIME_CACHE_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, kv_cache_dtype);
ABSL_DECLARE_FLAG(int, kv_sink_tokens);
ABSL_DECLARE_FLAG(double, kv_boost_fraction);

#endif  // KITTY_RUNTIME_CACHE_FLAGS_H_
