// File: models/config.h
// -----------------------------------------------------------------------------
// HuggingFace `config.json` → ModelConfig for the Llama family (Llama 2/3, Qwen2, Qwen3,
// Mistral). Both the transformers 4.x keys (`rope_theta`, `rope_scaling`, `torch_dtype`) and the
// transformers 5.x keys (`rope_parameters`, `dtype`) are accepted.
//
//   ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig("/models/Llama-3.2-1B"));
//
// Every error names the file and the problem on one line, e.g.
//   /x/config.json: "num_attention_heads" must be a positive integer
// ParseModelConfig / LoadModelConfig run ValidateModelConfig before returning, so a config they
// return is one the forward pass can run.
#ifndef KITTY_MODELS_CONFIG_H_
#define KITTY_MODELS_CONFIG_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace kitty::models {

// RoPE frequency scaling. Only Llama 3's is implemented; "linear", "dynamic", "yarn", ... are
// rejected with Unimplemented naming the type.
enum class RopeScalingType { kNone, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                             // "MistralForCausalLM"
  std::string model_type;    // "llama" | "qwen2" | "qwen3" | "mistral"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;    // "num_hidden_layers"
  int num_heads = 0;     // "num_attention_heads"
  int num_kv_heads = 0;  // "num_key_value_heads" (default: num_heads)
  int head_dim = 0;      // "head_dim" (absent or null: hidden_size / num_heads)
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;  // true: no lm_head.weight, the LM head is the embedding
  bool attention_bias = false;       // q/k/v projections have a bias (always for qwen2)
  bool qk_norm = false;              // per-head RMSNorm of q and k before RoPE (qwen3)
  kernels::DType dtype = kernels::DType::kBFloat16;  // "dtype" or "torch_dtype"
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;     // "eos_token_id" may be an int or a list
  std::optional<int> sliding_window;  // Mistral's (Qwen's only when "use_sliding_window")
};

// Parses the text of a config.json. `path_for_errors` prefixes every error message.
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text,
                                             std::string_view path_for_errors);

// Reads and parses `model_dir`/config.json. A missing directory or file is NotFound naming it.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

// Checks what the forward pass relies on: positive sizes, num_heads % num_kv_heads == 0, even
// head_dim, positive eps / theta, sane llama3 scaling. A sliding window shorter than
// max_position_embeddings is Unimplemented. Errors are prefixed with `path`.
absl::Status ValidateModelConfig(const ModelConfig& config, std::string_view path);

}  // namespace kitty::models

#endif  // KITTY_MODELS_CONFIG_H_
