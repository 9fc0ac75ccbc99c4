// File: tests/models/tokenizer_test.cc
// -----------------------------------------------------------------------------
// Golden tests against HF tokenizers outputs (see ../shared/data/README.md).
#include "models/tokenizer.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "base/testing/status_matchers.h"
#include "base/testing/temp_dir.h"
#include "base/testing/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/tokenizer_unicode.h"
#include "nlohmann/json.hpp"

namespace kitty::models {
namespace {

using ::kitty::testing::StatusIs;
using ::kitty::testing::TestDataPath;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

std::vector<Json> ReadJsonl(const std::string& relative) {
  std::ifstream in(TestDataPath(relative));
  EXPECT_TRUE(in) << "cannot open " << TestDataPath(relative);
  std::vector<Json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(Json::parse(line));
  }
  return lines;
}

std::vector<int32_t> Ids(const Json& j) { return j.get<std::vector<int32_t>>(); }

// Streams `ids` through an IncrementalDetokenizer and checks the pieces.
std::string Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  IncrementalDetokenizer detok(tok, {}, skip_special);
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = detok.Append(id);
    EXPECT_TRUE(tokenizer_internal::IsValidUtf8(piece)) << "invalid UTF-8 piece for id " << id;
    out += piece;
  }
  const std::string tail = detok.Flush();
  EXPECT_TRUE(tokenizer_internal::IsValidUtf8(tail));
  return out + tail;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EncodeDecodeAndStreamMatchHf) {
  const std::string dir = "tokenizers/" + GetParam();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromFile(TestDataPath(dir + "/tokenizer.json")));
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: loaded in %.3f s, vocab_size %d\n", GetParam().c_str(), load_s,
              tok->vocab_size());
  const std::vector<Json> lines = ReadJsonl(dir + "/golden_encodings.jsonl");
  ASSERT_EQ(lines.size(), 43u);
  for (const Json& line : lines) {
    const std::string text = line["text"];
    SCOPED_TRACE("text: " + text);
    const std::vector<int32_t> ids = Ids(line["ids"]);
    EXPECT_EQ(tok->Encode(text, false), ids);
    EXPECT_EQ(tok->Encode(text, true), Ids(line["ids_with_special"]));
    EXPECT_EQ(tok->Decode(ids, false), line["decoded"].get<std::string>());
    EXPECT_EQ(tok->Decode(ids, true), line["decoded_skip_special"].get<std::string>());
    EXPECT_EQ(Stream(*tok, ids, false), tok->Decode(ids, false));
    EXPECT_EQ(Stream(*tok, ids, true), tok->Decode(ids, true));
  }
}

INSTANTIATE_TEST_SUITE_P(AllTokenizers, GoldenTest,
                         ::testing::Values("llama3", "qwen3", "mistral"));

TEST(TokenizerTest, SpecialTokenIds) {
  ASSERT_OK_AND_ASSIGN(auto llama3,
                       Tokenizer::FromFile(TestDataPath("tokenizers/llama3/tokenizer.json")));
  EXPECT_EQ(llama3->vocab_size(), 128256);
  EXPECT_EQ(llama3->bos_token_id(), 128000);
  EXPECT_EQ(llama3->eos_token_id(), 128001);
  EXPECT_TRUE(llama3->IsSpecial(128009));
  EXPECT_FALSE(llama3->IsSpecial(9906));
  EXPECT_EQ(llama3->TokenToId("<|eot_id|>"), 128009);
  EXPECT_EQ(llama3->TokenToId("Hello"), 9906);
  EXPECT_EQ(llama3->TokenToId("no-such-token-xyz"), std::nullopt);

  ASSERT_OK_AND_ASSIGN(auto qwen3,
                       Tokenizer::FromFile(TestDataPath("tokenizers/qwen3/tokenizer.json")));
  EXPECT_EQ(qwen3->vocab_size(), 151669);
  EXPECT_EQ(qwen3->bos_token_id(), std::nullopt);
  EXPECT_EQ(qwen3->eos_token_id(), 151643);
  EXPECT_TRUE(qwen3->IsSpecial(151645));
  EXPECT_FALSE(qwen3->IsSpecial(qwen3->TokenToId("<think>").value()));  // added, not special

  ASSERT_OK_AND_ASSIGN(auto mistral,
                       Tokenizer::FromFile(TestDataPath("tokenizers/mistral/tokenizer.json")));
  EXPECT_EQ(mistral->vocab_size(), 32000);
  EXPECT_EQ(mistral->bos_token_id(), 1);
  EXPECT_EQ(mistral->eos_token_id(), 2);
}

TEST(TokenizerTest, Stories260KMatchesHfColumn) {
  ASSERT_OK_AND_ASSIGN(auto tok,
                       Tokenizer::FromFile(TestDataPath("stories260K/hf/tokenizer.json")));
  const std::vector<Json> lines = ReadJsonl("stories260K/golden_tok512_encodings.jsonl");
  ASSERT_EQ(lines.size(), 63u);
  for (const Json& line : lines) {
    const std::string text = line["text"];
    SCOPED_TRACE("text: " + text);
    const std::vector<int32_t> ids = Ids(line["ids_hf_tokenizer_json"]);
    EXPECT_EQ(tok->Encode(text, false), ids);
    EXPECT_EQ(Stream(*tok, ids, true), tok->Decode(ids, true));
    // Every text decodes back, except literal <s>/</s>, which HF splits as special tokens.
    if (text == "<s> hello </s>") {
      EXPECT_EQ(tok->Decode(ids, true), " hello ");
      EXPECT_EQ(tok->Decode(ids, false), "<s>  hello </s>");
    } else {
      EXPECT_EQ(tok->Decode(ids, true), text);
    }
  }
}

TEST(TokenizerTest, Stories260KDecodesBackForCleanText) {
  // Text without leading/trailing/double spaces and without literal <s> round-trips.
  ASSERT_OK_AND_ASSIGN(auto tok,
                       Tokenizer::FromFile(TestDataPath("stories260K/hf/tokenizer.json")));
  const std::string text = "Once upon a time, there was a little girl named Lily. 中文 😀";
  EXPECT_EQ(tok->Decode(tok->Encode(text, false), true), text);
  EXPECT_EQ(tok->Decode(tok->Encode(text, true), true), text);
}

TEST(TokenizerTest, Stories260KGreedyPromptsAndOutputs) {
  ASSERT_OK_AND_ASSIGN(auto tok,
                       Tokenizer::FromFile(TestDataPath("stories260K/hf/tokenizer.json")));
  const std::vector<Json> lines = ReadJsonl("stories260K/golden_greedy.jsonl");
  ASSERT_EQ(lines.size(), 5u);
  for (const Json& line : lines) {
    const std::string prompt = line["prompt"];
    SCOPED_TRACE("prompt: " + prompt);
    EXPECT_EQ(tok->Encode(prompt, true), Ids(line["prompt_token_ids"]));
    const std::vector<int32_t> all = Ids(line["all_token_ids"]);
    EXPECT_EQ(tok->Decode(all, true), line["output_text"].get<std::string>());
    // Streaming the generated part after the prompt gives the rest of the text.
    const std::vector<int32_t> prompt_ids = Ids(line["prompt_token_ids"]);
    IncrementalDetokenizer detok(*tok, prompt_ids, true);
    std::string streamed;
    for (size_t i = prompt_ids.size(); i < all.size(); ++i) streamed += detok.Append(all[i]);
    streamed += detok.Flush();
    EXPECT_EQ(tok->Decode(prompt_ids, true) + streamed, line["output_text"].get<std::string>());
  }
}

TEST(TokenizerTest, BuiltinByteTokenizer) {
  auto tok = Tokenizer::ByteLevelBuiltin();
  EXPECT_EQ(tok->vocab_size(), 258);
  EXPECT_EQ(tok->bos_token_id(), 256);
  EXPECT_EQ(tok->eos_token_id(), 257);
  EXPECT_THAT(tok->Encode("hi", false), ElementsAre('h', 'i'));
  EXPECT_THAT(tok->Encode("hi", true), ElementsAre(256, 'h', 'i'));
  EXPECT_THAT(tok->Encode("\xC3\xA9", false), ElementsAre(0xC3, 0xA9));
  EXPECT_EQ(tok->Decode({256, 'h', 'i', 257}, false), "<s>hi</s>");
  EXPECT_EQ(tok->Decode({256, 'h', 'i', 257}, true), "hi");
  EXPECT_TRUE(tok->IsSpecial(256));
  EXPECT_FALSE(tok->IsSpecial(255));
  EXPECT_EQ(tok->TokenToId("</s>"), 257);

  // A two-byte character streamed byte by byte comes out whole.
  IncrementalDetokenizer detok(*tok, {256}, true);
  EXPECT_EQ(detok.Append(0xC3), "");
  EXPECT_EQ(detok.Append(0xA9), "\xC3\xA9");
  EXPECT_EQ(detok.Append(0xE4), "");
  EXPECT_EQ(detok.Flush(), "\xEF\xBF\xBD");  // an unfinished character is flushed as U+FFFD
}

TEST(TokenizerTest, StreamingHoldsBackPartialCharacters) {
  ASSERT_OK_AND_ASSIGN(auto tok,
                       Tokenizer::FromFile(TestDataPath("tokenizers/mistral/tokenizer.json")));
  // "▁", <0xF0>, <0x9F>, <0x91>, <0xA8> (👨 through byte fallback).
  IncrementalDetokenizer detok(*tok, {}, true);
  EXPECT_EQ(detok.Append(28705), "");  // the leading space is stripped at the start
  EXPECT_EQ(detok.Append(243), "");
  EXPECT_EQ(detok.Append(162), "");
  EXPECT_EQ(detok.Append(148), "");
  EXPECT_EQ(detok.Append(171), "\xF0\x9F\x91\xA8");
  EXPECT_EQ(detok.Flush(), "");
}

TEST(TokenizerTest, NfcComposesLatinAccentsAndHangul) {
  using tokenizer_internal::NfcNormalize;
  EXPECT_EQ(NfcNormalize("e\xCC\x81"), "\xC3\xA9");                     // e + U+0301 -> é
  EXPECT_EQ(NfcNormalize("A\xCC\x8A"), "\xC3\x85");                     // A + ring -> Å
  EXPECT_EQ(NfcNormalize("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // ᄀ + ᅡ -> 가
  EXPECT_EQ(NfcNormalize("\xE2\x84\xAB"), "\xC3\x85");                  // Angstrom sign -> Å
  EXPECT_EQ(NfcNormalize("plain ascii"), "plain ascii");
  EXPECT_EQ(NfcNormalize("bad \xFF byte"), "bad \xFF byte");
}

// Prints the encode time of each tokenizer (for a reader of the log; speed is not asserted).
TEST(TokenizerTest, LongTextRoundTrips) {
  const std::string text =
      ::kitty::testing::ReadFileOrDie(TestDataPath("tinystories/valid_sample.txt"));
  for (const char* name : {"llama3", "qwen3", "mistral"}) {
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromFile(TestDataPath(std::string("tokenizers/") +
                                                                    name + "/tokenizer.json")));
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tok->Encode(text, false);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: encoded %zu bytes into %zu tokens in %.3f s\n", name, text.size(), ids.size(),
                s);
    // The sample is NFC already and starts without a space, so all three round-trip.
    EXPECT_EQ(tok->Decode(ids, false), text);
  }
}

TEST(TokenizerTest, MissingFileNamesTheFile) {
  EXPECT_THAT(Tokenizer::FromFile("/nonexistent/dir/tokenizer.json"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/dir/tokenizer.json")));
}

TEST(TokenizerTest, InvalidJsonNamesTheFile) {
  const ::kitty::testing::TempDir dir("kitty_tokenizer_test_");
  const std::string path = dir.path() + "/bad_tokenizer.json";
  std::ofstream(path) << "{\"model\": {\"type\": \"BPE\", ";
  EXPECT_THAT(Tokenizer::FromFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path)));
}

TEST(TokenizerTest, UnsupportedModelTypeNamesTheFile) {
  const ::kitty::testing::TempDir dir("kitty_tokenizer_test_");
  const std::string path = dir.path() + "/unigram_tokenizer.json";
  std::ofstream(path) << R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})";
  EXPECT_THAT(Tokenizer::FromFile(path),
              StatusIs(absl::StatusCode::kUnimplemented,
                       ::testing::AllOf(HasSubstr(path), HasSubstr("Unigram"))));
}

TEST(TokenizerTest, WrongFieldTypesAreErrorsNotCrashes) {
  for (
      const char* json : {
          R"j([1, 2])j",
          R"j({"model": {"type": "BPE", "vocab": [], "merges": []}})j",
          R"j({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a zz"]}})j",
          R"j({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "CTC"}})j",
          R"j({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
               "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "a(?=b)"}}})j",
          R"j({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"id": "x"}]})j",
      }) {
    SCOPED_TRACE(json);
    auto tok = Tokenizer::FromJson(json, "inline.json");
    ASSERT_FALSE(tok.ok());
    EXPECT_THAT(std::string(tok.status().message()), HasSubstr("inline.json"));
  }
}

TEST(TokenizerTest, LookaheadEmulationMatchesGpt2Semantics) {
  // Minimal byte-level tokenizer whose vocab holds every byte: ids are then the pieces' bytes,
  // and the split is visible through Encode of single-byte merges-free tokens.
  Json vocab = Json::object();
  const auto& table = tokenizer_internal::ByteToUnicode();
  for (int b = 0; b < 256; ++b) vocab[table[b]] = b;
  vocab["\xC4\xA0\xC4\xA0"] = 256;  // "ĠĠ" = two spaces
  Json root = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\xC4\xA0 \xC4\xA0"}}}},
               {"pre_tokenizer",
                {{"type", "Sequence"},
                 {"pretokenizers",
                  {{{"type", "Split"},
                    {"pattern", {{"Regex", R"(\s+(?!\S)|\s+|\S+)"}}},
                    {"behavior", "Isolated"}},
                   {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
               {"decoder", {{"type", "ByteLevel"}}}};
  ASSERT_OK_AND_ASSIGN(auto tok, Tokenizer::FromJson(root.dump(), "inline.json"));
  // "a   b": "a", "  " (merged: the third space is given back), " ", "b" -> no merge across.
  EXPECT_THAT(tok->Encode("a   b", false), ElementsAre('a', 256, ' ', 'b'));
  // Trailing whitespace run keeps all of it.
  EXPECT_THAT(tok->Encode("a  ", false), ElementsAre('a', 256));
  EXPECT_EQ(tok->Decode({'a', 256, ' ', 'b'}, false), "a   b");
}

}  // namespace
}  // namespace kitty::models
