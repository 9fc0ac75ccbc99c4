// kitty-eval (issue 3): teacher-forced perplexity under each cache mode on stories260K,
// the --json contract of the binary, and the memory accounting against KITTY.md §4.
#include "runtime/perplexity.h"

#include <fcntl.h>
#include <omp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "base/testing/status_matchers.h"
#include "base/testing/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/kv_cache.h"
#include "models/model_loader.h"
#include "nlohmann/json.hpp"
#include "runtime/offline.h"

extern char** environ;

namespace kitty::runtime {
namespace {

using ::kitty::testing::BinDir;
using ::kitty::testing::ReadFileOrDie;
using ::kitty::testing::TestDataPath;

// Single-threaded CPU backend, in this process and in the kitty-eval it spawns. The CPU
// attention opens an OpenMP region per layer and decode step (kernels/kitty/kv_cache.cc); on a
// shared, oversubscribed 2-core machine the spin-waits of its threads make a tiny-model step
// ~100x slower than one thread. These tests check numerics, which do not depend on the thread
// count (each query head is computed by one thread).
[[maybe_unused]] const bool kSingleThreaded = [] {
  setenv("OMP_NUM_THREADS", "1", /*overwrite=*/1);
  setenv("OPENBLAS_NUM_THREADS", "1", /*overwrite=*/1);
  omp_set_num_threads(1);
  return true;
}();

constexpr int kStories = 20;
constexpr int kMaxTokens = 512;
const std::vector<std::string> kModes = {"auto", "kivi2", "kitty", "kitty-pro", "k4v2"};

std::string ModelDir() { return TestDataPath("stories260K/hf"); }
std::string TextPath() { return TestDataPath("tinystories/valid_sample.txt"); }

// Runs argv[0] (a path) with the given arguments; returns true if it exited normally with 0.
// stdout is captured into *out; stderr is discarded.
bool RunBinary(const std::vector<std::string>& args, std::string* out) {
  char tmpl[] = "/tmp/kitty_eval_test_XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return false;
  close(fd);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, tmpl, O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    unlink(tmpl);
    return false;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  *out = ReadFileOrDie(tmpl);
  unlink(tmpl);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// One evaluation of the first 20 stories under all five modes, shared by the tests below.
class Stories260KEvalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<models::LoadedModel> m = models::LoadModel(ModelDir());
    ASSERT_OK(m);
    ASSERT_NE(m->tokenizer, nullptr);
    std::vector<kernels::KvCacheSpec> specs;
    for (const std::string& mode : kModes) {
      absl::StatusOr<kernels::KvCacheSpec> spec = MakeSpecForModel(m->config, mode, -1, -1);
      ASSERT_OK(spec);
      specs.push_back(*spec);
    }
    std::vector<std::vector<int32_t>> docs;
    for (const std::string& d :
         SplitDocuments(ReadFileOrDie(TextPath()), "<|endoftext|>", kStories)) {
      std::vector<int32_t> ids = m->tokenizer->Encode(d, /*add_special_tokens=*/true);
      if (static_cast<int>(ids.size()) > kMaxTokens) ids.resize(kMaxTokens);
      docs.push_back(std::move(ids));
    }
    ASSERT_EQ(docs.size(), static_cast<size_t>(kStories));
    absl::StatusOr<std::vector<ModeScore>> s = EvaluateModes(*m, specs, docs, nullptr);
    ASSERT_OK(s);
    scores_ = new std::map<std::string, ModeScore>;
    for (const ModeScore& sc : *s) (*scores_)[sc.mode] = sc;
  }
  static void TearDownTestSuite() {
    delete scores_;
    scores_ = nullptr;
  }
  static const ModeScore& Score(const std::string& mode) { return scores_->at(mode); }

  static std::map<std::string, ModeScore>* scores_;
};
std::map<std::string, ModeScore>* Stories260KEvalTest::scores_ = nullptr;

TEST_F(Stories260KEvalTest, AutoReproducesGoldenPerplexity) {
  ASSERT_NE(scores_, nullptr);
  const nlohmann::json golden =
      nlohmann::json::parse(ReadFileOrDie(TestDataPath("stories260K/golden_ppl.json")));
  const ModeScore& a = Score("auto");
  const double want_nll = golden["first20"]["mean_nll"].get<double>();
  EXPECT_EQ(a.tokens, golden["first20"]["n_predicted_tokens"].get<int64_t>());
  EXPECT_NEAR(a.mean_nll, want_nll, 1e-4 * want_nll);
  const double want_ppl = golden["first20"]["perplexity"].get<double>();
  EXPECT_NEAR(a.ppl, want_ppl, 1e-4 * want_ppl);
  ASSERT_EQ(a.doc_sum_nll.size(), static_cast<size_t>(kStories));
  for (int i = 0; i < kStories; ++i) {
    const nlohmann::json& g = golden["per_story"][i];
    ASSERT_EQ(g["story"].get<int>(), i);
    EXPECT_EQ(a.doc_tokens[i], g["n_predicted"].get<int64_t>()) << "story " << i;
    const double want = g["sum_nll"].get<double>();
    EXPECT_NEAR(a.doc_sum_nll[i], want, 1e-4 * want) << "story " << i;
  }
}

TEST_F(Stories260KEvalTest, ModesOrderAsExpected) {
  ASSERT_NE(scores_, nullptr);
  const ModeScore& a = Score("auto");
  const ModeScore& k4v2 = Score("k4v2");
  const ModeScore& pro = Score("kitty-pro");
  const ModeScore& kitty = Score("kitty");
  const ModeScore& kivi2 = Score("kivi2");
  for (const std::string& mode : kModes) {
    EXPECT_EQ(Score(mode).tokens, a.tokens) << mode;
    EXPECT_GT(Score(mode).top1_agreement, 0.5) << mode;
    EXPECT_LE(Score(mode).top1_agreement, 1.0) << mode;
  }
  EXPECT_LE(k4v2.ppl, pro.ppl);
  EXPECT_LE(pro.ppl, kitty.ppl);
  EXPECT_LE(kitty.ppl, kivi2.ppl);
  // Quantization hurts: every quantized mode is above auto (k4v2 only slightly).
  EXPECT_GT(k4v2.ppl, a.ppl * 0.999);
  EXPECT_LT(k4v2.ppl, a.ppl * 1.02);
  EXPECT_GT(kivi2.ppl, a.ppl * 1.05);

  EXPECT_EQ(a.kl_vs_auto, 0.0);
  EXPECT_EQ(a.top1_agreement, 1.0);
  for (const char* mode : {"kivi2", "kitty", "kitty-pro", "k4v2"}) {
    EXPECT_GT(Score(mode).kl_vs_auto, 0.0) << mode;
  }
  // KL follows the same order as the perplexity.
  EXPECT_LE(k4v2.kl_vs_auto, pro.kl_vs_auto);
  EXPECT_LE(pro.kl_vs_auto, kivi2.kl_vs_auto);
}

TEST(KittyEvalBinaryTest, JsonHasContractFields) {
  std::string out;
  ASSERT_TRUE(RunBinary(
      {BinDir() + "/kitty-eval", "--model", ModelDir(), "--text", TextPath(), "--max-docs", "2",
       "--max-tokens-per-doc", "200", "--kv-cache-dtype", "auto,kitty-pro,kivi2", "--json"},
      &out))
      << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_TRUE(j.contains("modes"));
  ASSERT_TRUE(j["modes"].is_array());
  ASSERT_EQ(j["modes"].size(), 3u);
  const std::vector<std::string> want = {"auto", "kitty-pro", "kivi2"};
  for (size_t i = 0; i < want.size(); ++i) {
    const nlohmann::json& m = j["modes"][i];
    EXPECT_EQ(m["mode"], want[i]);
    ASSERT_TRUE(m["tokens"].is_number_integer());
    EXPECT_GT(m["tokens"].get<int64_t>(), 100);
    for (const char* key : {"mean_nll", "ppl", "kl_vs_auto", "top1_agreement"}) {
      ASSERT_TRUE(m.contains(key)) << key;
      EXPECT_TRUE(m[key].is_number()) << key;
    }
    EXPECT_NEAR(m["ppl"].get<double>(), std::exp(m["mean_nll"].get<double>()), 1e-9);
    ASSERT_TRUE(m.contains("memory"));
    EXPECT_EQ(m["memory"]["head_dim"], 8);
  }
  EXPECT_EQ(j["modes"][0]["kl_vs_auto"].get<double>(), 0.0);
  EXPECT_EQ(j["modes"][0]["top1_agreement"].get<double>(), 1.0);
  EXPECT_GT(j["modes"][1]["kl_vs_auto"].get<double>(), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Memory accounting (issue 3 item 6) against KITTY.md §4's table.

ModeMemory MemoryFor(const std::string& model, const std::string& mode) {
  absl::StatusOr<models::ModelConfig> c = models::BuiltinModelConfig(model);
  EXPECT_OK(c);
  absl::StatusOr<kernels::KvCacheSpec> spec = MakeSpecForModel(*c, mode, -1, -1);
  EXPECT_OK(spec);
  return ComputeModeMemory(*spec, kernels::DType::kFloat16);
}

struct TableRow {
  const char* model;
  const char* mode;
  int head_dim, db;
  double k, v, k_bits, v_bits, ratio;  // ratio to 2 decimals as printed in KITTY.md
};

TEST(MemoryAccountingTest, MatchesKittyMdTable) {
  const TableRow rows[] = {
      {"synthetic:qwen3-8b", "kivi2", 128, 0, 37, 36, 2.3125, 2.25, 7.01},
      {"synthetic:qwen3-8b", "kitty", 128, 16, 41, 36, 2.5625, 2.25, 6.65},
      {"synthetic:qwen3-8b", "kitty-pro", 128, 32, 45, 36, 2.8125, 2.25, 6.32},
      {"synthetic:tiny-gqa", "kitty", 64, 8, 20.5, 20, 2.5625, 2.5, 6.32},
      {"synthetic:tiny-gqa", "kitty-pro", 64, 16, 22.5, 20, 2.8125, 2.5, 6.02},
  };
  for (const TableRow& r : rows) {
    SCOPED_TRACE(std::string(r.model) + " " + r.mode);
    const ModeMemory m = MemoryFor(r.model, r.mode);
    EXPECT_EQ(m.head_dim, r.head_dim);
    EXPECT_EQ(m.boost_channels, r.db);
    EXPECT_DOUBLE_EQ(m.sealed_k, r.k);
    EXPECT_DOUBLE_EQ(m.sealed_v, r.v);
    EXPECT_DOUBLE_EQ(m.k_bits_per_element, r.k_bits);
    EXPECT_DOUBLE_EQ(m.v_bits_per_element, r.v_bits);
    EXPECT_NEAR(m.ratio_vs_fp16, r.ratio, 0.005);
    EXPECT_DOUBLE_EQ(m.fp16_kv, 4.0 * r.head_dim);
    // Full-precision parts at fp16: 2 bytes per element.
    EXPECT_DOUBLE_EQ(m.sink, 4.0 * r.head_dim);
    EXPECT_DOUBLE_EQ(m.k_tail, 2.0 * r.head_dim);
    EXPECT_DOUBLE_EQ(m.v_tail, 2.0 * r.head_dim);
  }
  // auto: fp16 pages, ratio 1; k4v2 at D=128: 2 + 2 + 8/128 + 32/128 bits.
  const ModeMemory a = MemoryFor("synthetic:qwen3-8b", "auto");
  EXPECT_DOUBLE_EQ(a.sealed_k, 256);
  EXPECT_DOUBLE_EQ(a.ratio_vs_fp16, 1.0);
  const ModeMemory k4 = MemoryFor("synthetic:qwen3-8b", "k4v2");
  EXPECT_DOUBLE_EQ(k4.sealed_k, 69);
  EXPECT_DOUBLE_EQ(k4.k_bits_per_element, 4.3125);
}

TEST(MemoryAccountingTest, AgreesWithTheCachePools) {
  // The per-token figures are the pool allocations divided by tokens: KvCache sizes its pools
  // with KPageBytes / VPageBytes.
  const models::ModelConfig c = models::BuiltinModelConfig("synthetic:qwen3-8b").value();
  const kernels::KvCacheSpec spec = MakeSpecForModel(c, "kitty-pro", -1, -1).value();
  const models::KvCache pools(spec, 3, 2, 2, 1, 1);
  const ModeMemory m = ComputeModeMemory(spec, kernels::DType::kFloat16);
  EXPECT_EQ(pools.k_page_bytes_all_layers(), 3 * m.k_page_bytes);
  EXPECT_EQ(pools.v_page_bytes_all_layers(), 3 * m.v_page_bytes);
  EXPECT_EQ(m.k_page_bytes, 8 * 5760);
  EXPECT_EQ(m.v_page_bytes, 8 * 4608);
  // Occupancy at 32K tokens equals KITTY.md §4's 32K table (D=128, DB=32): 2,737,536 bytes.
  const ModeMemory occ = ComputeModeMemory(spec, kernels::DType::kFloat16, {32768});
  EXPECT_NEAR(occ.docs_bytes_per_token * 32768, 2737536, 0.5);
  EXPECT_EQ(kernels::SequenceKvBytesPerKvHead(spec, 32768, kernels::DType::kFloat16), 2737536);
}

TEST(MemoryAccountingTest, Stories260KHeadDim8PadsTo16Bytes) {
  // D=8: K head block = 256 dense + 32*DB sparse + 8 idx + 32 meta, rounded up to 16 bytes.
  absl::StatusOr<models::ModelConfig> c = models::LoadModelConfig(ModelDir());
  ASSERT_OK(c);
  const std::map<std::string, double> want_k = {{"kivi2", 304 / 128.0},
                                                {"kitty", 336 / 128.0},
                                                {"kitty-pro", 368 / 128.0},
                                                {"k4v2", 560 / 128.0}};
  for (const auto& [mode, k] : want_k) {
    const ModeMemory m =
        ComputeModeMemory(MakeSpecForModel(*c, mode, -1, -1).value(), kernels::DType::kFloat16);
    EXPECT_DOUBLE_EQ(m.sealed_k, k) << mode;
    EXPECT_DOUBLE_EQ(m.sealed_v, 6.0) << mode;  // 256 codes + 512 meta per 128 tokens
  }
}

TEST(KittyEvalBinaryTest, MemoryOnlyJsonMatchesTable) {
  for (const auto& [model, d, k_pro, v] : std::vector<std::tuple<std::string, int, double, double>>{
           {"synthetic:qwen3-8b", 128, 45.0, 36.0}, {"synthetic:tiny-gqa", 64, 22.5, 20.0}}) {
    std::string out;
    ASSERT_TRUE(
        RunBinary({BinDir() + "/kitty-eval", "--model", model, "--memory-only", "--json"}, &out))
        << out;
    const nlohmann::json j = nlohmann::json::parse(out);
    ASSERT_EQ(j["modes"].size(), kModes.size());
    bool found = false;
    for (const nlohmann::json& m : j["modes"]) {
      const nlohmann::json& mem = m["memory"];
      EXPECT_EQ(mem["head_dim"], d);
      EXPECT_EQ(mem["bytes_per_token_per_kv_head"]["sealed_v"].get<double>(),
                m["mode"] == "auto" ? 2.0 * d : v);
      if (m["mode"] == "kitty-pro") {
        found = true;
        EXPECT_EQ(mem["bytes_per_token_per_kv_head"]["sealed_k"].get<double>(), k_pro);
      }
    }
    EXPECT_TRUE(found) << model;
  }
}

}  // namespace
}  // namespace kitty::runtime
