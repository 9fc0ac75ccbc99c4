#include "models/model_loader.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "models/safetensors.h"

namespace kitty::models {
namespace {

ModelConfig Llama(int hidden, int inter, int layers, int heads, int kv_heads, int head_dim,
                  int vocab, int ctx) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.vocab_size = vocab;
  c.max_position_embeddings = ctx;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000;
  c.dtype = kernels::DType::kBFloat16;
  return c;
}

ModelConfig Qwen3(int hidden, int inter, int layers, int heads, int kv_heads, int vocab, int ctx,
                  bool tied) {
  ModelConfig c = Llama(hidden, inter, layers, heads, kv_heads, 128, vocab, ctx);
  c.architecture = "Qwen3ForCausalLM";
  c.model_type = "qwen3";
  c.qk_norm = true;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1e6;
  c.tie_word_embeddings = tied;
  c.eos_token_ids = {151645, 151643};
  c.bos_token_id = 151643;
  return c;
}

}  // namespace

std::vector<std::string> BuiltinModelNames() {
  return {"builtin:tiny", "synthetic:llama3-8b", "synthetic:qwen3-8b", "synthetic:qwen3-4b",
          "synthetic:tiny-gqa"};
}

absl::StatusOr<ModelConfig> BuiltinModelConfig(const std::string& name) {
  if (name == "builtin:tiny") {
    // Byte tokenizer: ids 0..255 bytes, 256 BOS, 257 EOS.
    ModelConfig c = Llama(128, 256, 4, 4, 2, 32, 258, 4096);
    c.bos_token_id = 256;
    c.eos_token_ids = {257};
    c.dtype = kernels::DType::kFloat32;
    return c;
  }
  if (name == "synthetic:llama3-8b") {
    ModelConfig c = Llama(4096, 14336, 32, 32, 8, 128, 128256, 131072);
    c.rope_theta = 500000;
    c.rope_scaling = {RopeScalingType::kLlama3, 8.0, 1.0, 4.0, 8192};
    c.bos_token_id = 128000;
    c.eos_token_ids = {128001, 128009};
    return c;
  }
  if (name == "synthetic:qwen3-8b") return Qwen3(4096, 12288, 36, 32, 8, 151936, 40960, false);
  if (name == "synthetic:qwen3-4b") return Qwen3(2560, 9728, 36, 32, 8, 151936, 40960, true);
  if (name == "synthetic:tiny-gqa") {
    // Small but with head_dim 64 and GQA 4, for tests of the cache modes at a real head size.
    ModelConfig c = Llama(256, 512, 2, 8, 2, 64, 512, 8192);
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    c.dtype = kernels::DType::kFloat32;
    return c;
  }
  return absl::NotFoundError(absl::StrCat("unknown built-in model \"", name, "\" (known: ",
                                          absl::StrJoin(BuiltinModelNames(), ", "), ")"));
}

absl::StatusOr<LoadedModel> LoadModel(const std::string& name_or_dir) {
  return LoadModel(name_or_dir, LoadModelOptions{});
}

absl::StatusOr<LoadedModel> LoadModel(const std::string& name_or_dir,
                                      const LoadModelOptions& options) {
  LoadedModel out;
  out.name = name_or_dir;
  if (absl::StartsWith(name_or_dir, "builtin:") || absl::StartsWith(name_or_dir, "synthetic:")) {
    ASSIGN_OR_RETURN(out.config, BuiltinModelConfig(name_or_dir));
    if (options.host_weights) {
      ASSIGN_OR_RETURN(out.model, LlamaModel::Random(out.config, kRandomWeightSeed));
    }
    if (name_or_dir == "builtin:tiny") out.tokenizer = Tokenizer::ByteLevelBuiltin();
    return out;
  }
  ASSIGN_OR_RETURN(out.config, LoadModelConfig(name_or_dir));
  if (options.host_weights) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsModel> weights,
                     SafetensorsModel::Open(name_or_dir));
    ASSIGN_OR_RETURN(out.model, LlamaModel::Load(out.config, *weights));
  }
  const std::string tok_path = name_or_dir + "/tokenizer.json";
  if (std::filesystem::exists(tok_path)) {
    ASSIGN_OR_RETURN(out.tokenizer, Tokenizer::FromFile(tok_path));
  }
  return out;
}

}  // namespace kitty::models
