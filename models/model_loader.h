// File: models/model_loader.h
// -----------------------------------------------------------------------------
// Resolves a `--model` argument into a ready model and tokenizer:
//   builtin:tiny        a small random-weight Llama with the byte tokenizer (the embedded
//                       default: needs no files, so the server always starts)
//   synthetic:<preset>  real shapes with random weights for throughput work
//                       (llama3-8b, qwen3-8b, qwen3-4b, plus tiny presets for tests)
//   <directory>         a HuggingFace directory: config.json, *.safetensors, tokenizer.json
//                       (optional: without it the model runs on token ids only)
#ifndef KITTY_MODELS_MODEL_LOADER_H_
#define KITTY_MODELS_MODEL_LOADER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/config.h"
#include "models/llama.h"
#include "models/tokenizer.h"

namespace kitty::models {

struct LoadedModel {
  std::string name;  // the --model argument
  ModelConfig config;
  std::unique_ptr<LlamaModel> model;     // null when loaded with host_weights = false
  std::unique_ptr<Tokenizer> tokenizer;  // null when the directory has no tokenizer.json
};

// Seed of the random weights of builtin:* and synthetic:* models (LlamaModel::Random).
inline constexpr uint64_t kRandomWeightSeed = 20251118;

// The config of a built-in or synthetic model name; NotFound for unknown names (the message
// lists the known ones).
absl::StatusOr<ModelConfig> BuiltinModelConfig(const std::string& name);
std::vector<std::string> BuiltinModelNames();

struct LoadModelOptions {
  // false: leave LoadedModel::model null (config and tokenizer only) for device runners that
  // read the checkpoint themselves (the CUDA runner reads bf16/fp16 from the safetensors mmap
  // and generates builtin/synthetic weights on the device), so models too large for float32
  // host weights load. The CPU runner needs host weights.
  bool host_weights = true;
};

absl::StatusOr<LoadedModel> LoadModel(const std::string& name_or_dir);
absl::StatusOr<LoadedModel> LoadModel(const std::string& name_or_dir,
                                      const LoadModelOptions& options);

}  // namespace kitty::models

#endif  // KITTY_MODELS_MODEL_LOADER_H_
