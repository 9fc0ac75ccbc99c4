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
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;  // null when the directory has no tokenizer.json
};

// The config of a built-in or synthetic model name; NotFound for unknown names (the message
// lists the known ones).
absl::StatusOr<ModelConfig> BuiltinModelConfig(const std::string& name);
std::vector<std::string> BuiltinModelNames();

absl::StatusOr<LoadedModel> LoadModel(const std::string& name_or_dir);

}  // namespace kitty::models

#endif  // KITTY_MODELS_MODEL_LOADER_H_
