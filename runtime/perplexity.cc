#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "models/kv_cache.h"

namespace kitty::runtime {
namespace {

absl::string_view StripSpaceNewline(absl::string_view s) {
  auto is_ws = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// Log-softmax of one row in float64.
void LogSoftmax(const float* x, int n, std::vector<double>* out) {
  out->resize(n);
  double mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max<double>(mx, x[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(x[i] - mx);
  const double lse = std::log(sum) + mx;
  for (int i = 0; i < n; ++i) (*out)[i] = x[i] - lse;
}

// Decode-style logits of every position of `ids` (rows [n-1][V]: position p predicts p+1).
absl::Status DocumentLogits(const models::LoadedModel& m, const kernels::KvCacheSpec& spec,
                            const std::vector<int32_t>& ids, std::vector<float>* rows) {
  const int V = m.config.vocab_size;
  models::SingleSequenceKv kv(spec, m.config.num_layers, static_cast<int32_t>(ids.size()));
  rows->assign(static_cast<size_t>(ids.size() - 1) * V, 0.0f);
  std::vector<float> logits;
  for (size_t p = 0; p + 1 < ids.size(); ++p) {
    kv.Reserve(1);
    const int32_t tok = ids[p];
    models::SequenceStep step{{&tok, 1}, &kv.slots(), false};
    RETURN_IF_ERROR(m.model->Forward({&step, 1}, kv.cache(), &logits));
    kv.Advance(1);
    std::copy(logits.begin(), logits.end(), rows->begin() + p * V);
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> SplitDocuments(const std::string& text, const std::string& separator,
                                        int max_docs) {
  std::vector<std::string> docs;
  for (absl::string_view part : absl::StrSplit(text, separator)) {
    absl::string_view d = StripSpaceNewline(part);
    if (d.empty()) continue;
    docs.emplace_back(d);
    if (max_docs > 0 && static_cast<int>(docs.size()) >= max_docs) break;
  }
  return docs;
}

absl::StatusOr<std::vector<ModeScore>> EvaluateModes(
    const models::LoadedModel& m, const std::vector<kernels::KvCacheSpec>& specs,
    const std::vector<std::vector<int32_t>>& docs,
    const std::function<void(int done, int total)>& progress) {
  const int V = m.config.vocab_size;
  std::vector<ModeScore> scores(specs.size());
  std::vector<double> nll(specs.size(), 0), kl(specs.size(), 0), agree(specs.size(), 0);
  for (ModeScore& sc : scores) {
    sc.doc_tokens.assign(docs.size(), 0);
    sc.doc_sum_nll.assign(docs.size(), 0.0);
  }
  int64_t positions = 0;
  std::vector<float> ref_rows, rows;
  std::vector<double> ref_lp, lp;
  for (size_t d = 0; d < docs.size(); ++d) {
    const std::vector<int32_t>& ids = docs[d];
    if (ids.size() < 2) continue;
    const int n = static_cast<int>(ids.size()) - 1;
    positions += n;
    RETURN_IF_ERROR(DocumentLogits(m, specs[0], ids, &ref_rows));
    for (size_t s = 0; s < specs.size(); ++s) {
      if (s == 0) {
        rows = ref_rows;
      } else {
        RETURN_IF_ERROR(DocumentLogits(m, specs[s], ids, &rows));
      }
      double doc_nll = 0;
      for (int p = 0; p < n; ++p) {
        const float* r = rows.data() + static_cast<size_t>(p) * V;
        const float* rr = ref_rows.data() + static_cast<size_t>(p) * V;
        LogSoftmax(r, V, &lp);
        LogSoftmax(rr, V, &ref_lp);
        doc_nll -= lp[ids[p + 1]];
        double k = 0;
        for (int i = 0; i < V; ++i) k += std::exp(ref_lp[i]) * (ref_lp[i] - lp[i]);
        kl[s] += k;
        const int a1 = static_cast<int>(std::max_element(r, r + V) - r);
        const int a2 = static_cast<int>(std::max_element(rr, rr + V) - rr);
        agree[s] += (a1 == a2) ? 1 : 0;
      }
      nll[s] += doc_nll;
      scores[s].doc_tokens[d] = n;
      scores[s].doc_sum_nll[d] = doc_nll;
    }
    if (progress) progress(static_cast<int>(d) + 1, static_cast<int>(docs.size()));
  }
  if (positions == 0) return absl::InvalidArgumentError("no document has two or more tokens");
  for (size_t s = 0; s < specs.size(); ++s) {
    ModeScore& sc = scores[s];
    sc.mode = std::string(kernels::KvCacheModeName(specs[s].mode));
    sc.tokens = positions;
    sc.mean_nll = nll[s] / positions;
    sc.ppl = std::exp(sc.mean_nll);
    sc.kl_vs_auto = kl[s] / positions;
    sc.top1_agreement = agree[s] / positions;
  }
  return scores;
}

ModeMemory ComputeModeMemory(const kernels::KvCacheSpec& spec, kernels::DType fp,
                             const std::vector<int64_t>& doc_lengths) {
  ModeMemory mm;
  mm.mode = std::string(kernels::KvCacheModeName(spec.mode));
  mm.head_dim = spec.head_dim;
  mm.boost_channels = spec.quantized() ? spec.boost_channels : 0;
  mm.sink_tokens = spec.sink_tokens;
  mm.fp_dtype = std::string(kernels::DTypeName(fp));
  const double hkv = spec.num_kv_heads;
  const double P = kernels::KvCacheSpec::kPageTokens;
  const double D = spec.head_dim;
  const double fp_size = static_cast<double>(kernels::DTypeSize(fp));
  // The pools of a one-layer cache with one unit of each kind: the page sizes the runtime
  // allocates. The CPU pools hold the full-precision parts (sink, tails, `auto` pages) in
  // float32; they are rescaled to `fp`, the element type the serving cache uses for them.
  const models::KvCache pools(spec, /*num_layers=*/1, 1, 1, 1, 1);
  const double cpu_to_fp = fp_size / 4.0;
  if (spec.quantized()) {
    mm.k_page_bytes = pools.k_page_bytes_all_layers();
    mm.v_page_bytes = pools.v_page_bytes_all_layers();
  } else {
    mm.k_page_bytes = std::llround(pools.k_page_bytes_all_layers() * cpu_to_fp);
    mm.v_page_bytes = std::llround(pools.v_page_bytes_all_layers() * cpu_to_fp);
  }
  mm.sealed_k = mm.k_page_bytes / (hkv * P);
  mm.sealed_v = mm.v_page_bytes / (hkv * P);
  mm.sink = spec.sink_tokens > 0
                ? pools.sink_block_bytes_all_layers() * cpu_to_fp / (hkv * spec.sink_tokens)
                : 2 * D * fp_size;
  // One tail slot = K tail [Hkv][128][D] + V tail [Hkv][128+W][D].
  const double tail_tokens = spec.k_tail_capacity() + spec.v_tail_capacity();
  const double tail_per_token =
      pools.tail_slot_bytes_all_layers() * cpu_to_fp / (hkv * tail_tokens);
  mm.k_tail = tail_per_token;
  mm.v_tail = tail_per_token;
  mm.fp16_kv = 4 * D;
  mm.k_bits_per_element = 8 * mm.sealed_k / D;
  mm.v_bits_per_element = 8 * mm.sealed_v / D;
  mm.bits_per_element = 8 * (mm.sealed_k + mm.sealed_v) / (2 * D);
  mm.ratio_vs_fp16 = mm.fp16_kv / (mm.sealed_k + mm.sealed_v);

  // Occupancy at each document's final length (KITTY.md §1.2 placement).
  double bytes = 0, tokens = 0;
  for (int64_t n : doc_lengths) {
    const int64_t sink = std::min<int64_t>(n, spec.sink_tokens);
    const int64_t x = n - sink;
    const int64_t pk = x / kernels::KvCacheSpec::kPageTokens;
    const int64_t ck = x % kernels::KvCacheSpec::kPageTokens;
    const int64_t w = spec.v_window_tokens;
    const int64_t pv = x < w ? 0 : (x - w) / kernels::KvCacheSpec::kPageTokens;
    const int64_t v_tail = x - kernels::KvCacheSpec::kPageTokens * pv;
    bytes += sink * mm.sink + pk * P * mm.sealed_k + pv * P * mm.sealed_v + ck * mm.k_tail +
             v_tail * mm.v_tail;
    tokens += static_cast<double>(n);
  }
  if (tokens > 0) {
    mm.docs_bytes_per_token = bytes / tokens;
    mm.docs_ratio_vs_fp16 = mm.fp16_kv / mm.docs_bytes_per_token;
  }
  return mm;
}

}  // namespace kitty::runtime
