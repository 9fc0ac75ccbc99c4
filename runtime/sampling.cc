#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"

namespace kitty::runtime {

absl::Status ValidateSamplingParams(const SamplingParams& p, int32_t vocab_size) {
  auto bad = [](const std::string& msg) { return absl::InvalidArgumentError(msg); };
  if (p.max_tokens < 1) return bad("sampling_params.max_tokens must be at least 1");
  if (p.min_tokens < 0 || p.min_tokens > p.max_tokens) {
    return bad("sampling_params.min_tokens must be in [0, max_tokens]");
  }
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    return bad("sampling_params.temperature must be >= 0");
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return bad("sampling_params.top_p must be in (0, 1]");
  if (p.top_k < -1) return bad("sampling_params.top_k must be -1, 0 (off) or positive");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return bad("sampling_params.min_p must be in [0, 1]");
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return bad("sampling_params.presence_penalty must be in [-2, 2]");
  }
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return bad("sampling_params.frequency_penalty must be in [-2, 2]");
  }
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    return bad("sampling_params.repetition_penalty must be > 0");
  }
  if (p.n < 1 || p.n > 64) return bad("sampling_params.n must be in [1, 64]");
  if (p.logprobs < 0 || p.logprobs > 20) return bad("sampling_params.logprobs must be in [0, 20]");
  if (p.stop_token_ids.size() > kMaxStopTokenIds) {
    return bad(absl::StrFormat("sampling_params.stop_token_ids: %d ids, at most %d",
                               p.stop_token_ids.size(), kMaxStopTokenIds));
  }
  if (p.stop.size() > kMaxStopStrings) {
    return bad(absl::StrFormat("sampling_params.stop: %d strings, at most %d", p.stop.size(),
                               kMaxStopStrings));
  }
  for (int32_t id : p.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return bad(
          absl::StrFormat("sampling_params.stop_token_ids: %d is not in [0, %d)", id, vocab_size));
    }
  }
  for (const std::string& s : p.stop) {
    if (s.empty()) return bad("sampling_params.stop must not contain empty strings");
    if (s.size() > kMaxStopStringBytes) {
      return bad(absl::StrFormat("sampling_params.stop: a string of %d bytes, at most %d", s.size(),
                                 kMaxStopStringBytes));
    }
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingParams& params, uint64_t fallback_seed)
    : params_(params), rng_(params.seed.value_or(fallback_seed)) {
  // Host and device rows then agree on "greedy" as exactly 0 (and draw no uniform for it).
  if (params_.temperature < kGreedyTemperature) params_.temperature = 0.0f;
}

SampleResult Sampler::Sample(absl::Span<const float> logits_in, absl::Span<const int32_t> prompt,
                             absl::Span<const int32_t> output) {
  const int V = static_cast<int>(logits_in.size());
  const bool penalties = params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                         params_.frequency_penalty != 0.0f;
  // Log-softmax normalizer of the raw logits: only needed for reported logprobs.
  double lse = 0;
  if (params_.logprobs > 0) {
    double mx = logits_in[0];
    for (float x : logits_in) mx = std::max<double>(mx, x);
    double sum = 0;
    for (float x : logits_in) sum += std::exp(x - mx);
    lse = std::log(sum) + mx;
  }
  // Fast path: plain greedy reads the logits in place (no copy of a 150k-entry row).
  if (params_.temperature <= 0.0f && !penalties && params_.logprobs == 0) {
    SampleResult r;
    r.token_id = static_cast<int32_t>(std::max_element(logits_in.begin(), logits_in.end()) -
                                      logits_in.begin());  // first max on ties
    r.logprob = 0;
    return r;
  }

  std::vector<float> logits(logits_in.begin(), logits_in.end());
  // Penalties (vLLM semantics): repetition over prompt + output; presence/frequency over output.
  if (params_.repetition_penalty != 1.0f) {
    auto apply = [&](int32_t id) {
      if (id < 0 || id >= V) return;
      float& l = logits[id];
      l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    };
    absl::flat_hash_map<int32_t, bool> seen;
    for (int32_t id : prompt) seen.emplace(id, true);
    for (int32_t id : output) seen.emplace(id, true);
    for (const auto& [id, unused] : seen) apply(id);
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    absl::flat_hash_map<int32_t, int> counts;
    for (int32_t id : output) ++counts[id];
    for (const auto& [id, cnt] : counts) {
      if (id < 0 || id >= V) continue;
      logits[id] -= params_.frequency_penalty * cnt + params_.presence_penalty;
    }
  }

  SampleResult r;
  if (params_.temperature <= 0.0f) {
    r.token_id = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                      logits.begin());  // first max on ties
  } else {
    const float inv_t = 1.0f / params_.temperature;
    for (float& l : logits) l *= inv_t;
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    int keep = V;
    if (params_.top_k > 0) keep = std::min(keep, params_.top_k);
    const double top = logits[order[0]];
    std::vector<double> probs(keep);
    double z = 0;
    for (int i = 0; i < keep; ++i) z += probs[i] = std::exp(logits[order[i]] - top);
    for (double& p : probs) p /= z;
    if (params_.min_p > 0.0f) {
      const double thr = params_.min_p * probs[0];
      int k2 = 0;
      while (k2 < keep && probs[k2] >= thr) ++k2;
      keep = std::max(1, k2);
    }
    if (params_.top_p < 1.0f) {
      double cum = 0;
      int k2 = 0;
      while (k2 < keep) {
        cum += probs[k2++];
        if (cum >= params_.top_p) break;
      }
      keep = std::max(1, k2);
    }
    double total = 0;
    for (int i = 0; i < keep; ++i) total += probs[i];
    std::uniform_real_distribution<double> uni(0.0, total);
    double u = uni(rng_);
    int pick = keep - 1;
    for (int i = 0; i < keep; ++i) {
      u -= probs[i];
      if (u < 0) {
        pick = i;
        break;
      }
    }
    r.token_id = order[pick];
  }
  if (params_.logprobs > 0) {
    r.logprob = static_cast<float>(logits_in[r.token_id] - lse);
    std::vector<int32_t> idx(V);
    std::iota(idx.begin(), idx.end(), 0);
    const int n = std::min(params_.logprobs, V);
    std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int32_t a, int32_t b) {
      return logits_in[a] > logits_in[b] || (logits_in[a] == logits_in[b] && a < b);
    });
    for (int i = 0; i < n; ++i) {
      r.top.push_back({idx[i], static_cast<float>(logits_in[idx[i]] - lse)});
    }
  }
  return r;
}

models::RowSampling Sampler::DeviceRow(absl::Span<const int32_t> prompt,
                                       absl::Span<const int32_t> output) {
  models::RowSampling r;
  r.where = models::RowSampling::Where::kDevice;
  r.temperature = params_.temperature;
  r.top_k = params_.top_k;
  r.top_p = params_.top_p;
  r.min_p = params_.min_p;
  r.repetition_penalty = params_.repetition_penalty;
  r.presence_penalty = params_.presence_penalty;
  r.frequency_penalty = params_.frequency_penalty;
  r.num_logprobs = params_.logprobs;
  if (params_.temperature > 0.0f) {
    r.uniform = static_cast<float>(std::uniform_real_distribution<double>(0.0, 1.0)(rng_));
  }
  const bool rep = params_.repetition_penalty != 1.0f;
  if (rep || params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    absl::flat_hash_map<int32_t, int32_t> counts;  // token → count in the output
    if (rep) {
      for (int32_t id : prompt) counts.try_emplace(id, 0);
    }
    for (int32_t id : output) ++counts[id];
    r.penalty_tokens.assign(counts.begin(), counts.end());
  }
  return r;
}

SampleResult Sampler::FromDevice(const models::RowSample& s) {
  SampleResult r;
  r.token_id = s.token_id;
  r.logprob = s.logprob;
  for (const auto& [id, lp] : s.top) r.top.push_back({id, lp});
  return r;
}

}  // namespace kitty::runtime
