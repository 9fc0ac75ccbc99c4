#include "runtime/bench_throughput.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"

namespace kitty::runtime {
namespace {

// Collects per-step facts on the engine thread.
// FLOPs of one step: 2 per weight of every matrix (lm_head included, embedding excluded) per
// token, plus QK^T and PV (4 Hq D per attended token per layer).
struct FlopModel {
  double per_token = 0, per_context_token = 0;
  explicit FlopModel(const models::ModelConfig& c) {
    const double H = c.hidden_size, D = c.head_dim, Hq = c.num_heads, Hkv = c.num_kv_heads,
                 I = c.intermediate_size, V = c.vocab_size, L = c.num_layers;
    per_token = 2.0 * (L * (H * (Hq + 2 * Hkv) * D + Hq * D * H + 3 * H * I) + V * H);
    per_context_token = 4.0 * Hq * D * L;
  }
};

class StepRecorder : public EngineObserver {
 public:
  StepRecorder(const CacheInfo& info, const FlopModel& flops) : info_(info), flops_(flops) {}
  void OnStepInfo(const StepInfo& s) override {
    absl::MutexLock lock(&mu_);
    peak_ = std::max(peak_, s.num_seqs);
    if (s.num_decode_seqs == s.num_seqs && s.num_seqs > 0) {
      ++decode_steps_;
      decode_time_ += s.step_time_s;
      double mem = 0, compute = 0;
      if (info_.copy_bandwidth_bytes_s > 0) {
        mem = static_cast<double>(info_.weight_bytes + s.kv_bytes_in_use) /
              info_.copy_bandwidth_bytes_s;
      }
      if (info_.matmul_flops_s > 0) {
        compute = (flops_.per_token * s.num_tokens +
                   flops_.per_context_token * static_cast<double>(s.context_tokens)) /
                  info_.matmul_flops_s;
      }
      roofline_ += mem;
      compute_ += compute;
      floor_ += std::max(mem, compute);
    }
  }
  int peak() const {
    absl::MutexLock lock(&mu_);
    return peak_;
  }
  // Means per decode-only step.
  double mean_step() const { return PerStep(&StepRecorder::decode_time_); }
  double mean_roofline() const { return PerStep(&StepRecorder::roofline_); }
  double mean_compute() const { return PerStep(&StepRecorder::compute_); }
  double mean_floor() const { return PerStep(&StepRecorder::floor_); }

 private:
  const CacheInfo& info_;
  const FlopModel flops_;
  mutable absl::Mutex mu_;
  int peak_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t decode_steps_ ABSL_GUARDED_BY(mu_) = 0;
  double decode_time_ ABSL_GUARDED_BY(mu_) = 0;
  double roofline_ ABSL_GUARDED_BY(mu_) = 0;
  double compute_ ABSL_GUARDED_BY(mu_) = 0;
  double floor_ ABSL_GUARDED_BY(mu_) = 0;

  double PerStep(double StepRecorder::*total) const {
    absl::MutexLock lock(&mu_);
    return decode_steps_ ? this->*total / decode_steps_ : 0;
  }
};

}  // namespace

absl::StatusOr<std::vector<ThroughputResult>> RunThroughput(
    std::shared_ptr<models::LoadedModel> model, const ThroughputOptions& o) {
  if (o.input_len < 1 || o.output_len < 1 || o.num_prompts < 0) {
    return absl::InvalidArgumentError(
        "--input-len and --output-len must be >= 1 and --num-prompts >= 0 (0: fill the cache)");
  }
  if (o.modes.empty() || o.max_num_seqs.empty()) {
    return absl::InvalidArgumentError("no cache mode or no --max-num-seqs value to run");
  }
  // Random prompts (ids in [10, vocab)), the same for every mode: prompt i is the same whatever
  // the number of prompts.
  auto make_prompts = [&](int n) {
    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<int32_t> tok(10, model->config.vocab_size - 1);
    std::vector<std::vector<int32_t>> prompts(n);
    for (auto& p : prompts) {
      p.resize(o.input_len);
      for (int32_t& t : p) t = tok(rng);
    }
    return prompts;
  };
  const FlopModel flops(model->config);
  std::vector<ThroughputResult> results;
  for (const std::string& mode : o.modes) {
    for (int seqs : o.max_num_seqs) {
      EngineConfig ec = o.engine;
      ec.kv_cache_dtype = mode;
      ec.max_num_seqs = seqs;
      ec.measure_bandwidth = true;
      ec.expected_tokens_per_seq = o.input_len + o.output_len;
      ec.enable_prefix_caching = false;  // random prompts: nothing to share; no hash work
      ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(ec, model));
      StepRecorder rec(engine->cache_info(), flops);
      engine->AddObserver(&rec);
      // --num-prompts 0: one wave that fills the cache (as many requests as sequence slots,
      // at most max-num-seqs).
      const int num_prompts = o.num_prompts > 0
                                  ? o.num_prompts
                                  : std::max(1, std::min(seqs, engine->cache_info().num_seq_slots));
      const std::vector<std::vector<int32_t>> prompts = make_prompts(num_prompts);
      if (o.progress) {
        std::fprintf(stderr, "[%s seqs=%d] %d requests of %d + %d tokens\n", mode.c_str(), seqs,
                     num_prompts, o.input_len, o.output_len);
      }
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::shared_ptr<RequestStream>> streams;
      for (int i = 0; i < num_prompts; ++i) {
        Request r;
        r.prompt_token_ids = prompts[i];
        r.params.max_tokens = o.output_len;
        r.params.temperature = 0;
        r.params.ignore_eos = true;
        r.detokenize = false;
        ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> s, engine->AddRequest(std::move(r)));
        streams.push_back(std::move(s));
      }
      // Drain every stream as its outputs arrive (not one stream after another), so a request
      // counts as done when the engine finished it, not when this loop got to its backlog.
      int64_t out_tokens = 0;
      double last_print = -1;
      std::vector<bool> done(num_prompts, false);
      int num_done = 0;
      auto consume = [&](int i, const RequestOutput& out) {
        for (const CompletionDelta& d : out.outputs) out_tokens += d.token_ids.size();
        if (!out.finished) return;
        done[i] = true;
        ++num_done;
        const double el =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (o.progress && (el - last_print >= 0.5 || num_done == num_prompts)) {
          last_print = el;
          std::fprintf(stderr, "\r[%s seqs=%d] %d/%d requests, %.1f s, %.0f output tok/s   ",
                       mode.c_str(), seqs, num_done, num_prompts, el, out_tokens / el);
          std::fflush(stderr);
        }
      };
      while (num_done < num_prompts) {
        bool any = false;
        int first_open = -1;
        for (int i = 0; i < num_prompts; ++i) {
          if (done[i]) continue;
          if (first_open < 0) first_open = i;
          while (!done[i]) {
            std::optional<RequestOutput> out = streams[i]->TryPop();
            if (!out.has_value()) break;
            any = true;
            consume(i, *out);
          }
        }
        if (!any && first_open >= 0) {  // nothing queued anywhere: wait a little on one stream
          std::optional<RequestOutput> out = streams[first_open]->Pop(absl::Milliseconds(2));
          if (out.has_value()) consume(first_open, *out);
        }
      }
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o.progress) std::fprintf(stderr, "\n");
      const CacheInfo& ci = engine->cache_info();
      ThroughputResult r;
      r.mode = mode;
      r.max_num_seqs = seqs;
      r.num_prompts = num_prompts;
      r.input_len = o.input_len;
      r.output_len = o.output_len;
      r.elapsed_s = elapsed;
      r.output_tokens_per_s = out_tokens / elapsed;
      r.total_tokens_per_s = (out_tokens + int64_t{num_prompts} * o.input_len) / elapsed;
      r.peak_running = rec.peak();
      r.kv_cache_bytes = ci.kv_cache_bytes;
      r.capacity_tokens = ci.capacity_tokens;
      r.kv_bytes_per_token = static_cast<double>(ci.kv_bytes_per_token_pages);
      r.fp16_bytes_per_token = static_cast<double>(ci.fp16_bytes_per_token);
      r.mean_step_time_s = rec.mean_step();
      r.mean_roofline_step_s = rec.mean_roofline();
      r.roofline_ratio =
          r.mean_roofline_step_s > 0 ? r.mean_step_time_s / r.mean_roofline_step_s : 0;
      r.mean_compute_floor_step_s = rec.mean_compute();
      r.mean_floor_step_s = rec.mean_floor();
      r.floor_ratio = r.mean_floor_step_s > 0 ? r.mean_step_time_s / r.mean_floor_step_s : 0;
      r.matmul_flops_s = ci.matmul_flops_s;
      r.num_preemptions = engine->GetStats().num_preemptions;
      r.device = ci.device;
      r.copy_bandwidth_bytes_s = ci.copy_bandwidth_bytes_s;
      engine->Stop();
      results.push_back(r);
    }
  }
  return results;
}

}  // namespace kitty::runtime
