#include "runtime/cache_flags.h"

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_split.h"

ABSL_FLAG(std::string, model, "builtin:tiny",
          "Model: a HuggingFace directory (config.json, *.safetensors, tokenizer.json), "
          "builtin:tiny, or synthetic:<llama3-8b|qwen3-8b|qwen3-4b>");
ABSL_FLAG(std::string, kv_cache_dtype, "kitty-pro",
          "KV cache mode: auto (no quantization), kivi2, kitty, kitty-pro, k4v2");
ABSL_FLAG(int, kv_sink_tokens, -1, "Full-precision sink tokens (default 32)");
ABSL_FLAG(double, kv_boost_fraction, -1,
          "Fraction of Key channels boosted to 4 bits (default: by mode; kitty 0.125, "
          "kitty-pro 0.25)");

namespace kitty::runtime {

absl::StatusOr<std::vector<std::string>> KvCacheModesFromFlag() {
  std::vector<std::string> modes =
      absl::StrSplit(absl::GetFlag(FLAGS_kv_cache_dtype), ',', absl::SkipWhitespace());
  if (modes.empty()) {
    return absl::InvalidArgumentError(
        "--kv-cache-dtype: no mode given (e.g. --kv-cache-dtype auto,kitty-pro)");
  }
  return modes;
}

}  // namespace kitty::runtime
