#include "models/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/testing/status_matchers.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::models {
namespace {

using ::kitty::testing::TempDir;

using ::kitty::testing::IsOk;
using ::kitty::testing::StatusIs;
using ::kitty::testing::TestDataPath;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPath[] = "/x/config.json";

// A minimal valid Llama config with `extra` spliced in (later keys override earlier ones
// in nlohmann's parser, so `extra` can replace defaults).
std::string LlamaJson(const std::string& extra = "") {
  return R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
             "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
             "max_position_embeddings": 256)" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

TEST(ModelConfigTest, TinyLlama3) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadModelConfig(TestDataPath("tiny-hf/llama3")));
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.intermediate_size, 160);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.vocab_size, 1024);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 256);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.dtype, kernels::DType::kBFloat16);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(2));
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(ModelConfigTest, TinyQwen2IsTiedWithBias) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadModelConfig(TestDataPath("tiny-hf/qwen2")));
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 32);  // no head_dim key: hidden / heads
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(ModelConfigTest, TinyQwen3HeadDimDiffersFromHiddenOverHeads) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadModelConfig(TestDataPath("tiny-hf/qwen3")));
  EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c.model_type, "qwen3");
  EXPECT_EQ(c.hidden_size, 96);
  EXPECT_EQ(c.intermediate_size, 192);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
}

TEST(ModelConfigTest, TinyMistralHasOneKvHead) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadModelConfig(TestDataPath("tiny-hf/mistral")));
  EXPECT_EQ(c.architecture, "MistralForCausalLM");
  EXPECT_EQ(c.model_type, "mistral");
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FALSE(c.sliding_window.has_value());  // "sliding_window": null
  EXPECT_FALSE(c.attention_bias);
}

TEST(ModelConfigTest, Stories260KOldStyleKeys) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, LoadModelConfig(TestDataPath("stories260K/hf")));
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.dtype, kernels::DType::kFloat32);
}

TEST(ModelConfigTest, OldStyleKeysParseLikeNewStyle) {
  // tiny-hf/llama3/config.json as transformers 4.x would have written it.
  const std::string old_style = R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1,
    "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu", "hidden_size": 128,
    "intermediate_size": 160, "max_position_embeddings": 2048, "mlp_bias": false,
    "model_type": "llama", "num_attention_heads": 8, "num_hidden_layers": 3,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 256, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0", "vocab_size": 1024})";
  ASSERT_OK_AND_ASSIGN(ModelConfig o, ParseModelConfig(old_style, kPath));
  ASSERT_OK_AND_ASSIGN(ModelConfig n, LoadModelConfig(TestDataPath("tiny-hf/llama3")));
  EXPECT_EQ(o.architecture, n.architecture);
  EXPECT_EQ(o.model_type, n.model_type);
  EXPECT_EQ(o.hidden_size, n.hidden_size);
  EXPECT_EQ(o.intermediate_size, n.intermediate_size);
  EXPECT_EQ(o.num_layers, n.num_layers);
  EXPECT_EQ(o.num_heads, n.num_heads);
  EXPECT_EQ(o.num_kv_heads, n.num_kv_heads);
  EXPECT_EQ(o.head_dim, n.head_dim);
  EXPECT_EQ(o.vocab_size, n.vocab_size);
  EXPECT_EQ(o.max_position_embeddings, n.max_position_embeddings);
  EXPECT_EQ(o.rms_norm_eps, n.rms_norm_eps);
  EXPECT_EQ(o.rope_theta, n.rope_theta);
  EXPECT_EQ(o.rope_scaling.type, n.rope_scaling.type);
  EXPECT_EQ(o.rope_scaling.factor, n.rope_scaling.factor);
  EXPECT_EQ(o.rope_scaling.low_freq_factor, n.rope_scaling.low_freq_factor);
  EXPECT_EQ(o.rope_scaling.high_freq_factor, n.rope_scaling.high_freq_factor);
  EXPECT_EQ(o.rope_scaling.original_max_position_embeddings,
            n.rope_scaling.original_max_position_embeddings);
  EXPECT_EQ(o.tie_word_embeddings, n.tie_word_embeddings);
  EXPECT_EQ(o.attention_bias, n.attention_bias);
  EXPECT_EQ(o.qk_norm, n.qk_norm);
  EXPECT_EQ(o.dtype, n.dtype);
  EXPECT_EQ(o.bos_token_id, n.bos_token_id);
  EXPECT_EQ(o.eos_token_ids, n.eos_token_ids);
  EXPECT_EQ(o.sliding_window, n.sliding_window);
}

TEST(ModelConfigTest, OldStyleRopeScalingTypeKey) {
  ASSERT_OK_AND_ASSIGN(
      ModelConfig c, ParseModelConfig(LlamaJson(R"("rope_scaling": {"type": "llama3", "factor": 32,
          "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192},
          "rope_theta": 500000)"),
                                      kPath));
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 32);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000);
}

TEST(ModelConfigTest, Defaults) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c,
                       ParseModelConfig(LlamaJson(R"("num_key_value_heads": null)"), kPath));
  EXPECT_EQ(c.num_kv_heads, 4);  // defaults to num_attention_heads
  EXPECT_EQ(c.head_dim, 16);     // hidden / heads
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_EQ(c.dtype, kernels::DType::kBFloat16);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_TRUE(c.eos_token_ids.empty());
}

TEST(ModelConfigTest, EosTokenIdList) {
  ASSERT_OK_AND_ASSIGN(
      ModelConfig c,
      ParseModelConfig(LlamaJson(R"("eos_token_id": [7, 8, 9], "bos_token_id": null)"), kPath));
  EXPECT_THAT(c.eos_token_ids, ElementsAre(7, 8, 9));
  EXPECT_FALSE(c.bos_token_id.has_value());
}

TEST(ModelConfigTest, NullHeadDimMeansHiddenOverHeads) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(LlamaJson(R"("head_dim": null)"), kPath));
  EXPECT_EQ(c.head_dim, 16);
}

TEST(ModelConfigTest, ArchitectureFromModelTypeAlone) {
  ASSERT_OK_AND_ASSIGN(
      ModelConfig c,
      ParseModelConfig(R"({"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
          "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
          "max_position_embeddings": 32})",
                       kPath));
  EXPECT_EQ(c.architecture, "Qwen2ForCausalLM");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.tie_word_embeddings);  // HF's Qwen2Config default
}

TEST(ModelConfigTest, QwenSlidingWindowOnlyWhenEnabled) {
  const std::string qwen = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
      "num_attention_heads": 4, "vocab_size": 10, "max_position_embeddings": 32768,
      "sliding_window": 4096, "use_sliding_window": )";
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(qwen + "false}", kPath));
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_THAT(ParseModelConfig(qwen + "true}", kPath),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr(kPath), HasSubstr("sliding window attention"))));
}

TEST(ModelConfigTest, MistralSlidingWindow) {
  const std::string base = R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral",
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
      "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 10,
      "max_position_embeddings": 8192, "sliding_window": )";
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(base + "8192}", kPath));
  EXPECT_EQ(c.sliding_window, 8192);  // covers every position: plain attention
  EXPECT_THAT(
      ParseModelConfig(base + "4096}", kPath),
      StatusIs(absl::StatusCode::kUnimplemented,
               AllOf(HasSubstr(kPath), HasSubstr("sliding window attention is not supported"))));
}

// ---- bad input --------------------------------------------------------------------------------

TEST(ModelConfigErrorTest, MissingDirectory) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/no_such_model";
  EXPECT_THAT(LoadModelConfig(dir), StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir)));
}

TEST(ModelConfigErrorTest, MissingConfigJson) {
  TempDir tmp;
  EXPECT_THAT(LoadModelConfig(tmp.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(tmp.path() + "/config.json")));
}

TEST(ModelConfigErrorTest, MalformedJson) {
  TempDir tmp;
  const std::string path = tmp.Write("config.json", R"({"hidden_size": 64,)");
  EXPECT_THAT(LoadModelConfig(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("not valid JSON"))));
}

TEST(ModelConfigErrorTest, TopLevelNotAnObject) {
  EXPECT_THAT(ParseModelConfig("[1, 2]", kPath),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kPath)));
}

TEST(ModelConfigErrorTest, UnsupportedArchitecture) {
  TempDir tmp;
  const std::string path =
      tmp.Write("config.json", R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})");
  EXPECT_THAT(LoadModelConfig(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("unsupported architecture"),
                             HasSubstr("GPT2LMHeadModel"), HasSubstr("LlamaForCausalLM"))));
}

TEST(ModelConfigErrorTest, UnsupportedModelType) {
  EXPECT_THAT(
      ParseModelConfig(R"({"model_type": "gemma"})", kPath),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr(kPath), HasSubstr("unsupported architecture"), HasSubstr("gemma"))));
}

TEST(ModelConfigErrorTest, ModelTypeArchitectureMismatch) {
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("model_type": "qwen2")"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(kPath), HasSubstr("does not match"))));
}

TEST(ModelConfigErrorTest, ZeroHeads) {
  TempDir tmp;
  const std::string path = tmp.Write("config.json", LlamaJson(R"("num_attention_heads": 0)"));
  EXPECT_THAT(LoadModelConfig(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path),
                             HasSubstr("\"num_attention_heads\" must be a positive integer"))));
}

TEST(ModelConfigErrorTest, WrongTypeIsAnErrorNotAnException) {
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("hidden_size": "64")"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(kPath), HasSubstr("\"hidden_size\""))));
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("tie_word_embeddings": 1)"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tie_word_embeddings")));
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("rope_scaling": 3)"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rope_scaling")));
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("eos_token_id": [1, "x"])"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eos_token_id")));
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("architectures": "LlamaForCausalLM")"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("architectures")));
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("vocab_size": 1e12)"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab_size")));
}

TEST(ModelConfigErrorTest, MissingRequiredKey) {
  EXPECT_THAT(ParseModelConfig(R"({"model_type": "llama", "hidden_size": 64})", kPath),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(kPath), HasSubstr("\"intermediate_size\" is missing"))));
}

TEST(ModelConfigErrorTest, HeadsNotDivisibleByKvHeads) {
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("num_key_value_heads": 3)"), kPath),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(kPath), HasSubstr("num_key_value_heads"))));
}

TEST(ModelConfigErrorTest, OddHeadDim) {
  EXPECT_THAT(
      ParseModelConfig(LlamaJson(R"("head_dim": 15)"), kPath),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr(kPath), HasSubstr("head_dim"))));
}

TEST(ModelConfigErrorTest, HiddenNotDivisibleByHeadsWithoutHeadDim) {
  EXPECT_THAT(
      ParseModelConfig(LlamaJson(R"("num_attention_heads": 6, "num_key_value_heads": 6)"), kPath),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr(kPath), HasSubstr("head_dim"))));
}

TEST(ModelConfigErrorTest, UnsupportedRopeScaling) {
  for (const char* type : {"linear", "dynamic", "yarn"}) {
    EXPECT_THAT(
        ParseModelConfig(LlamaJson(std::string(R"("rope_scaling": {"rope_type": ")") + type +
                                   R"(", "factor": 2.0})"),
                         kPath),
        StatusIs(absl::StatusCode::kUnimplemented, AllOf(HasSubstr(kPath), HasSubstr(type))));
  }
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("rope_parameters": {"rope_type": "yarn",
                                             "rope_theta": 1e6, "factor": 4.0})"),
                               kPath),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("yarn")));
}

TEST(ModelConfigErrorTest, Llama3ScalingMissingParameter) {
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("rope_parameters": {"rope_type": "llama3",
                                             "rope_theta": 5e5, "factor": 8.0,
                                             "low_freq_factor": 1.0})"),
                               kPath),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(kPath), HasSubstr("rope_parameters.high_freq_factor"))));
}

TEST(ModelConfigErrorTest, UnsupportedDType) {
  EXPECT_THAT(
      ParseModelConfig(LlamaJson(R"("torch_dtype": "float64")"), kPath),
      StatusIs(absl::StatusCode::kUnimplemented, AllOf(HasSubstr(kPath), HasSubstr("float64"))));
}

TEST(ModelConfigErrorTest, UnsupportedFeatures) {
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("mlp_bias": true)"), kPath),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("mlp_bias")));
  EXPECT_THAT(ParseModelConfig(LlamaJson(R"("hidden_act": "gelu")"), kPath),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("gelu")));
  EXPECT_THAT(
      ParseModelConfig(LlamaJson(R"("quantization_config": {"quant_method": "gptq"})"), kPath),
      StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("quantization_config")));
}

TEST(ModelConfigErrorTest, ValidateHandBuiltConfig) {
  ASSERT_OK_AND_ASSIGN(ModelConfig c, ParseModelConfig(LlamaJson(), kPath));
  EXPECT_OK(ValidateModelConfig(c, "cfg"));
  ModelConfig bad = c;
  bad.num_kv_heads = 0;
  EXPECT_THAT(ValidateModelConfig(bad, "cfg"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cfg: ")));
  bad = c;
  bad.architecture = "Foo";
  EXPECT_THAT(ValidateModelConfig(bad, "cfg"), Not(IsOk()));
}

}  // namespace
}  // namespace kitty::models
