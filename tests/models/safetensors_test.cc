#include "models/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/testing/status_matchers.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/dtype.h"
#include "nlohmann/json.hpp"

namespace kitty::models {
namespace {

using ::kitty::testing::TempDir;

using ::kitty::testing::ReadFileOrDie;
using ::kitty::testing::StatusIs;
using ::kitty::testing::TestDataPath;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

std::string U64Le(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);  // the tests run on little-endian hosts, as the loader does
  return s;
}

// A safetensors file: 8-byte size, the header text, then `data`.
std::string SafetensorsBytes(const std::string& header, const std::string& data) {
  return U64Le(header.size()) + header + data;
}

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// One F32 tensor "w" of shape [2,3] holding 0..5.
std::string SmallF32File() {
  const std::string header =
      R"({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})";
  return SafetensorsBytes(header, FloatBytes({0, 1, 2, 3, 4, 5}));
}

// ---- real checkpoints -------------------------------------------------------------------------

TEST(SafetensorsTest, TinyLlama3Bf16AllTensors) {
  const std::string dir = TestDataPath("tiny-hf/llama3");
  ASSERT_OK_AND_ASSIGN(auto model, SafetensorsModel::Open(dir));

  // Names, shapes and dtypes agree with what transformers wrote into golden.json.
  const json golden = json::parse(ReadFileOrDie(dir + "/golden.json"));
  const json& expected = golden["weights"]["tensors"];
  std::vector<std::string> names = model->Names();
  ASSERT_EQ(names.size(), expected.size());
  for (const std::string& name : names) {
    ASSERT_TRUE(expected.contains(name)) << name;
    ASSERT_OK_AND_ASSIGN(const TensorInfo* t, model->Get(name));
    EXPECT_EQ(t->name, name);
    EXPECT_EQ(t->dtype, kernels::DType::kBFloat16) << name;
    EXPECT_EQ(t->shape, expected[name]["shape"].get<std::vector<int64_t>>()) << name;
    int64_t elements = 1;
    for (int64_t d : t->shape) elements *= d;
    EXPECT_EQ(t->num_bytes, static_cast<size_t>(elements) * 2) << name;
    EXPECT_EQ(t->file, dir + "/model.safetensors");
    std::vector<float> values(elements);
    ASSERT_OK(model->ReadFloat32(name, t->shape, values.data()));
  }
  EXPECT_TRUE(model->Has("lm_head.weight"));
  EXPECT_TRUE(model->Has("model.layers.2.self_attn.q_proj.weight"));
  EXPECT_FALSE(model->Has("model.layers.3.self_attn.q_proj.weight"));

  ASSERT_OK_AND_ASSIGN(const TensorInfo* q, model->Get("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_THAT(q->shape, ElementsAre(128, 128));
  ASSERT_OK_AND_ASSIGN(const TensorInfo* k, model->Get("model.layers.0.self_attn.k_proj.weight"));
  EXPECT_THAT(k->shape, ElementsAre(32, 128));  // 2 kv heads x head_dim 16

  // model.norm.weight starts with the bf16 words 0x3f29 0x3f03 0x3f62 0x3f4d. By hand:
  // 0x3f29 = sign 0, exponent 0x7e (2^-1), mantissa 0x29/128, so 0.5 * (1 + 41/128) = 0.66015625.
  std::vector<float> norm(128);
  ASSERT_OK(model->ReadFloat32("model.norm.weight", {128}, norm.data()));
  EXPECT_EQ(norm[0], 0.66015625f);
  EXPECT_EQ(norm[1], 0.51171875f);  // 0x3f03: 0.5 * (1 + 3/128)
  EXPECT_EQ(norm[2], 0.8828125f);   // 0x3f62: 0.5 * (1 + 98/128)
  EXPECT_EQ(norm[3], 0.80078125f);  // 0x3f4d: 0.5 * (1 + 77/128)
  ASSERT_OK_AND_ASSIGN(const TensorInfo* n, model->Get("model.norm.weight"));
  uint16_t first_word;
  std::memcpy(&first_word, n->data, 2);
  EXPECT_EQ(first_word, 0x3f29);
}

TEST(SafetensorsTest, Stories260KF32MatchesLlama2cCheckpoint) {
  const std::string dir = TestDataPath("stories260K/hf");
  ASSERT_OK_AND_ASSIGN(auto model, SafetensorsModel::Open(dir));
  EXPECT_EQ(model->Names().size(), 47u);  // tied: no lm_head.weight
  EXPECT_FALSE(model->Has("lm_head.weight"));
  ASSERT_OK_AND_ASSIGN(const TensorInfo* emb, model->Get("model.embed_tokens.weight"));
  EXPECT_EQ(emb->dtype, kernels::DType::kFloat32);
  EXPECT_THAT(emb->shape, ElementsAre(512, 64));
  ASSERT_OK_AND_ASSIGN(const TensorInfo* down, model->Get("model.layers.0.mlp.down_proj.weight"));
  EXPECT_THAT(down->shape, ElementsAre(64, 172));

  // llama2.c's stories260K.bin: 7 int32 header values, then token_embedding[512][64] and
  // rms_att[5][64] as float32; neither is permuted by the HF conversion.
  const std::string bin = ReadFileOrDie(TestDataPath("stories260K/stories260K.bin"));
  std::vector<float> llama2c(512 * 64 + 64);
  ASSERT_GE(bin.size(), 28 + llama2c.size() * 4);
  std::memcpy(llama2c.data(), bin.data() + 28, llama2c.size() * 4);

  std::vector<float> embedding(512 * 64);
  ASSERT_OK(model->ReadFloat32("model.embed_tokens.weight", {512, 64}, embedding.data()));
  EXPECT_TRUE(std::equal(embedding.begin(), embedding.end(), llama2c.begin()));
  std::vector<float> rms_att(64);
  ASSERT_OK(model->ReadFloat32("model.layers.0.input_layernorm.weight", {64}, rms_att.data()));
  EXPECT_TRUE(std::equal(rms_att.begin(), rms_att.end(), llama2c.begin() + 512 * 64));
}

// Splits stories260K into two shards plus an index, as save_pretrained(max_shard_size=...) does.
TEST(SafetensorsTest, ShardedModel) {
  const std::string src_dir = TestDataPath("stories260K/hf");
  ASSERT_OK_AND_ASSIGN(auto original, SafetensorsModel::Open(src_dir));
  const std::vector<std::string> names = original->Names();
  ASSERT_GT(names.size(), 2u);

  TempDir tmp;
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
  const char* shard_files[2] = {"model-00001-of-00002.safetensors",
                                "model-00002-of-00002.safetensors"};
  for (int s = 0; s < 2; ++s) {
    json header = {{"__metadata__", {{"format", "pt"}}}};
    std::string data;
    for (size_t i = s; i < names.size(); i += 2) {  // interleave the tensors over the shards
      ASSERT_OK_AND_ASSIGN(const TensorInfo* t, original->Get(names[i]));
      header[names[i]] = {{"dtype", "F32"},
                          {"shape", t->shape},
                          {"data_offsets", {data.size(), data.size() + t->num_bytes}}};
      data.append(reinterpret_cast<const char*>(t->data), t->num_bytes);
      index["weight_map"][names[i]] = shard_files[s];
    }
    tmp.Write(shard_files[s], SafetensorsBytes(header.dump(), data));
  }
  tmp.Write("model.safetensors.index.json", index.dump(2));

  ASSERT_OK_AND_ASSIGN(auto sharded, SafetensorsModel::Open(tmp.path()));
  EXPECT_EQ(sharded->Names(), names);
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(const TensorInfo* a, original->Get(names[i]));
    ASSERT_OK_AND_ASSIGN(const TensorInfo* b, sharded->Get(names[i]));
    EXPECT_EQ(b->file, tmp.path() + "/" + shard_files[i % 2]);
    EXPECT_EQ(a->shape, b->shape);
    ASSERT_EQ(a->num_bytes, b->num_bytes);
    EXPECT_EQ(std::memcmp(a->data, b->data, a->num_bytes), 0) << names[i];
  }
  std::vector<float> emb(512 * 64);
  EXPECT_OK(sharded->ReadFloat32("model.embed_tokens.weight", {512, 64}, emb.data()));
}

TEST(SafetensorsTest, Float16AndScalarAndEmptyTensors) {
  TempDir tmp;
  const uint16_t halves[3] = {0x3E00, 0xC000, 0x3400};  // IEEE binary16: 1.5, -2.0, 0.25
  std::string data(reinterpret_cast<const char*>(halves), sizeof(halves));
  data += FloatBytes({7.0f});
  const std::string header =
      json{
          {"h", {{"dtype", "F16"}, {"shape", {3}}, {"data_offsets", {0, 6}}}},
          {"s", {{"dtype", "F32"}, {"shape", json::array()}, {"data_offsets", {6, 10}}}},
          {"e", {{"dtype", "BF16"}, {"shape", {0, 4}}, {"data_offsets", {10, 10}}}},
      }
          .dump();
  tmp.Write("model.safetensors", SafetensorsBytes(header, data));
  ASSERT_OK_AND_ASSIGN(auto model, SafetensorsModel::Open(tmp.path()));
  EXPECT_THAT(model->Names(), ElementsAre("e", "h", "s"));
  float h[3];
  ASSERT_OK(model->ReadFloat32("h", {3}, h));
  EXPECT_THAT(h, ElementsAre(1.5f, -2.0f, 0.25f));
  float s = 0;
  ASSERT_OK(model->ReadFloat32("s", {}, &s));  // data at an unaligned offset (6)
  EXPECT_EQ(s, 7.0f);
  ASSERT_OK(model->ReadFloat32("e", {0, 4}, nullptr));
}

TEST(SafetensorsTest, ProgressLineAboveOneGigabyte) {
  // A sparse 1.1 GB file: one U8 tensor, no real disk use.
  TempDir tmp;
  constexpr uint64_t kBytes = 1'100'000'000;
  const std::string header =
      json{{"big", {{"dtype", "U8"}, {"shape", {kBytes}}, {"data_offsets", {0, kBytes}}}}}.dump();
  const std::string path = tmp.Write("model.safetensors", SafetensorsBytes(header, ""));
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(8 + header.size() + kBytes)), 0);
  ::testing::internal::CaptureStderr();
  auto model = SafetensorsModel::Open(tmp.path());
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_OK(model);
  EXPECT_THAT(err, HasSubstr("loading weights: 1/1 shards, 1.1/1.1 GB"));
  ASSERT_OK_AND_ASSIGN(const TensorInfo* t, (*model)->Get("big"));
  EXPECT_EQ(t->dtype, kernels::DType::kUInt8);
  EXPECT_EQ(t->num_bytes, kBytes);
  float f;
  EXPECT_THAT((*model)->ReadFloat32("big", {static_cast<int64_t>(kBytes)}, &f),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("uint8")));
}

TEST(SafetensorsTest, NoProgressLineForSmallModels) {
  ::testing::internal::CaptureStderr();
  auto model = SafetensorsModel::Open(TestDataPath("tiny-hf/qwen2"));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_OK(model);
  EXPECT_FALSE((*model)->Has("lm_head.weight"));  // tied
}

// ---- bad input --------------------------------------------------------------------------------

TEST(SafetensorsErrorTest, MissingDirectory) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/nope";
  EXPECT_THAT(SafetensorsModel::Open(dir), StatusIs(absl::StatusCode::kNotFound, HasSubstr(dir)));
}

TEST(SafetensorsErrorTest, NoWeightsInDirectory) {
  TempDir tmp;
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(tmp.path()), HasSubstr("model.safetensors"))));
}

TEST(SafetensorsErrorTest, MissingTensor) {
  ASSERT_OK_AND_ASSIGN(auto model, SafetensorsModel::Open(TestDataPath("tiny-hf/qwen2")));
  EXPECT_THAT(model->Get("lm_head.weight"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("lm_head.weight"), HasSubstr("tiny-hf/qwen2"))));
  float f;
  EXPECT_THAT(model->ReadFloat32("lm_head.weight", {1024, 128}, &f),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("lm_head.weight")));
}

TEST(SafetensorsErrorTest, TruncatedData) {
  TempDir tmp;
  std::string bytes = SmallF32File();
  bytes.resize(bytes.size() - 4);  // the last float is cut off
  const std::string path = tmp.Write("model.safetensors", bytes);
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("tensor \"w\""),
                             HasSubstr("exceeds file size"), HasSubstr("truncated"))));
}

TEST(SafetensorsErrorTest, CorruptHeaderJson) {
  TempDir tmp;
  const std::string path = tmp.Write(
      "model.safetensors",
      SafetensorsBytes(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24)",
                       std::string(24, '\0')));
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("not a valid JSON"))));
}

TEST(SafetensorsErrorTest, HeaderSizeLargerThanFile) {
  TempDir tmp;
  const std::string path = tmp.Write("model.safetensors", U64Le(1'000'000) + R"({"w": {}})");
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("header size 1000000 exceeds file size"))));
}

TEST(SafetensorsErrorTest, FileShorterThanHeaderSize) {
  TempDir tmp;
  const std::string path = tmp.Write("model.safetensors", "abc");
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path)));
}

TEST(SafetensorsErrorTest, WrongShapeInReadFloat32) {
  TempDir tmp;
  const std::string path = tmp.Write("model.safetensors", SmallF32File());
  ASSERT_OK_AND_ASSIGN(auto model, SafetensorsModel::Open(tmp.path()));
  std::vector<float> out(6);
  EXPECT_THAT(model->ReadFloat32("w", {3, 2}, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(path + ": tensor \"w\" has shape [2,3], expected [3,2]")));
  EXPECT_THAT(model->ReadFloat32("w", {6}, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected [6]")));
  ASSERT_OK(model->ReadFloat32("w", {2, 3}, out.data()));
  EXPECT_THAT(out, ElementsAre(0, 1, 2, 3, 4, 5));
}

TEST(SafetensorsErrorTest, UnsupportedDType) {
  TempDir tmp;
  const std::string path = tmp.Write(
      "model.safetensors",
      SafetensorsBytes(R"({"d": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})",
                       std::string(16, '\0')));
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr(path), HasSubstr("tensor \"d\""), HasSubstr("F64"))));
}

TEST(SafetensorsErrorTest, OffsetsInconsistentWithShape) {
  TempDir tmp;
  const std::string path = tmp.Write(
      "model.safetensors",
      SafetensorsBytes(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 24]}})",
                       std::string(24, '\0')));
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("tensor \"w\""), HasSubstr("needs 16"))));
}

TEST(SafetensorsErrorTest, MalformedEntries) {
  const char* headers[] = {
      R"({"w": 3})",
      R"({"w": {"dtype": 1, "shape": [1], "data_offsets": [0, 4]}})",
      R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
      R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}})",
      R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})",
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})",
      R"([1, 2])",
  };
  for (const char* header : headers) {
    TempDir tmp;
    const std::string path =
        tmp.Write("model.safetensors", SafetensorsBytes(header, std::string(4, '\0')));
    EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path)))
        << header;
  }
}

// Writes a two-shard model of "a" (in shard 1) and "b" (in shard 2) into `tmp`.
void WriteTwoShards(const TempDir& tmp, const std::string& weight_map) {
  tmp.Write("s1.safetensors",
            SafetensorsBytes(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                             FloatBytes({1})));
  tmp.Write("s2.safetensors",
            SafetensorsBytes(R"({"b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                             FloatBytes({2})));
  tmp.Write("model.safetensors.index.json", R"({"weight_map": )" + weight_map + "}");
}

TEST(SafetensorsErrorTest, MissingShard) {
  TempDir tmp;
  WriteTwoShards(tmp, R"({"a": "s1.safetensors", "b": "s2.safetensors",
                          "c": "s3.safetensors"})");
  EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(tmp.path() + "/s3.safetensors"), HasSubstr("missing"))));
}

TEST(SafetensorsErrorTest, IndexProblems) {
  {
    TempDir tmp;
    WriteTwoShards(tmp, R"({"a": "s1.safetensors", "b": "s1.safetensors"})");
    EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("\"b\""))));
  }
  {
    TempDir tmp;
    WriteTwoShards(tmp, R"({"a": "../s1.safetensors"})");
    EXPECT_THAT(
        SafetensorsModel::Open(tmp.path()),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.safetensors.index.json")));
  }
  {
    TempDir tmp;
    WriteTwoShards(tmp, R"([1])");
    EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight_map")));
  }
  {
    TempDir tmp;
    tmp.Write("model.safetensors.index.json", "{not json");
    EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(tmp.path() + "/model.safetensors.index.json")));
  }
  {  // the same tensor in two shards
    TempDir tmp;
    WriteTwoShards(tmp, R"({"a": "s1.safetensors", "b": "s2.safetensors"})");
    tmp.Write("s2.safetensors",
              SafetensorsBytes(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                   "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                               FloatBytes({2})));
    EXPECT_THAT(SafetensorsModel::Open(tmp.path()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"a\" is also in")));
  }
}

TEST(SafetensorsTest, TwoShardsOk) {
  TempDir tmp;
  WriteTwoShards(tmp, R"({"a": "s1.safetensors", "b": "s2.safetensors"})");
  ASSERT_OK_AND_ASSIGN(auto model, SafetensorsModel::Open(tmp.path()));
  EXPECT_THAT(model->Names(), ElementsAre("a", "b"));
  float b = 0;
  ASSERT_OK(model->ReadFloat32("b", {1}, &b));
  EXPECT_EQ(b, 2.0f);
}

}  // namespace
}  // namespace kitty::models
