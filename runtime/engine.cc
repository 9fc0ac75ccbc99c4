#include "runtime/engine.h"

#include <algorithm>
#include <atomic>
#include <random>
#include <string_view>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "block_manager/block_manager.h"
#include "kernels/kitty/kv_format.h"
#include "models/kv_cache.h"
#include "models/model_runner.h"
#include "runtime/offline.h"
#include "scheduler/scheduler.h"
#include "spdlog/spdlog.h"

namespace kitty::runtime {
namespace {

using block_manager::SeqId;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

constexpr int64_t kDefaultCpuKvBytes = int64_t{512} << 20;

// Request ids go into logs, metrics-adjacent lines and responses: bounded, one printable line.
absl::Status ValidateRequestId(std::string_view id) {
  constexpr size_t kMaxBytes = 256;
  if (id.size() > kMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request_id: %d bytes, at most %d", id.size(), kMaxBytes));
  }
  for (const char c : id) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrFormat("request_id: control character 0x%02x (ids must be printable)", u));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEngineConfig(const EngineConfig& c) {
  auto at_least = [](const char* flag, int64_t v, int64_t min) -> absl::Status {
    if (v >= min) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be at least ", min, ", got ", v));
  };
  RETURN_IF_ERROR(at_least("--max-num-seqs", c.max_num_seqs, 1));
  RETURN_IF_ERROR(at_least("--max-num-batched-tokens", c.max_num_batched_tokens, 1));
  RETURN_IF_ERROR(at_least("--kv-cache-memory (bytes; 0: by device)", c.kv_cache_memory_bytes, 0));
  RETURN_IF_ERROR(at_least("--max-model-len (0: the model's context)", c.max_model_len, 0));
  RETURN_IF_ERROR(at_least("--max-queued-requests", c.max_queued_requests, 0));
  RETURN_IF_ERROR(at_least("--cuda-graph-max-batch", c.cuda_graph_max_batch, 0));
  RETURN_IF_ERROR(at_least("expected tokens per sequence", c.expected_tokens_per_seq, 0));
  if (!(c.gpu_memory_utilization > 0 && c.gpu_memory_utilization <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gpu-memory-utilization must be in (0, 1], got ", c.gpu_memory_utilization));
  }
  return absl::OkStatus();
}

// ---- per-request state (engine thread only) ---------------------------------------------------

struct OutputState {
  int32_t index = 0;
  SeqId seq;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<models::IncrementalDetokenizer> detok;
  std::vector<int32_t> tokens;  // generated
  std::string text;             // detokenized so far (stop strings cut)
  size_t emitted_text = 0;      // bytes of `text` already sent
  size_t emitted_tokens = 0;
  size_t emitted_logprobs = 0;
  std::vector<SampleResult> logprobs;
  std::string finish_reason;
  Clock::time_point last_token_time;
};

struct RequestState {
  Request req;
  std::shared_ptr<RequestStream> stream;
  std::vector<OutputState> outputs;  // outputs[0] exists from admission; 1..n-1 after forking
  int32_t max_tokens = 0;            // clipped to the context
  Clock::time_point arrival, first_scheduled, first_token;
  bool scheduled = false;
  bool got_first_token = false;
  bool finished = false;
  int32_t cached_prompt_tokens = 0;
};

class Engine::Impl {
 public:
  Impl(const EngineConfig& config, std::shared_ptr<models::LoadedModel> model)
      : config_(config), model_(std::move(model)) {}

  absl::Status Init();
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }

  absl::StatusOr<std::shared_ptr<RequestStream>> AddRequest(Request request);
  void Abort(const std::string& id) {
    absl::MutexLock lock(&mu_);
    aborts_.push_back(id);
  }
  void StartDrain() {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  bool WaitIdle(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return num_live_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
  }
  void Stop();
  void AddObserver(EngineObserver* o) {
    absl::MutexLock lock(&mu_);
    observers_.push_back(o);
  }
  EngineStats GetStats() const {
    absl::MutexLock lock(&stats_mu_);
    return stats_;
  }
  const CacheInfo& cache_info() const { return cache_info_; }
  const models::LoadedModel& model() const { return *model_; }
  bool draining() const {
    absl::MutexLock lock(&mu_);
    return draining_;
  }

 private:
  void Loop();
  // One engine step; false when there was nothing to do.
  bool Step();
  void DrainInbox();
  void ProcessAborts();
  void HandleToken(RequestState& r, OutputState& o, const SampleResult& s, RequestOutput* delta);
  void FinishOutput(RequestState& r, OutputState& o, const std::string& reason);
  void EmitDelta(RequestState& r, OutputState& o, RequestOutput* delta, bool flush);
  void CompleteRequest(RequestState& r, RequestOutput* delta);
  void RunCopyJobs(const std::vector<block_manager::CopyJob>& jobs);
  void UpdateStats(double step_time_s);
  // The delta of request `r` for this step (created on first use).
  RequestOutput* DeltaFor(RequestState* r);
  // Pushes this step's deltas to their streams and retires finished requests; returns how many
  // requests finished.
  int Publish();
  std::vector<EngineObserver*> Observers() {
    absl::MutexLock lock(&mu_);
    return observers_;
  }

  const EngineConfig config_;
  std::shared_ptr<models::LoadedModel> model_;
  kernels::KvCacheSpec spec_;
  CacheInfo cache_info_;
  int32_t max_model_len_ = 0;
  bool context_capped_by_kv_ = false;  // max_model_len_ is what one sequence fits in the cache
  std::vector<int32_t> eos_ids_;

  // Engine-thread state.
  std::unique_ptr<models::ModelRunner> runner_;
  std::unique_ptr<block_manager::BlockManager> bm_;
  std::unique_ptr<scheduler::Scheduler> scheduler_;
  absl::flat_hash_map<std::string, std::unique_ptr<RequestState>> requests_;
  absl::flat_hash_map<SeqId, std::pair<RequestState*, int32_t>> seq_owner_;
  int64_t next_seq_ = 0;
  int64_t prompt_tokens_total_ = 0, generation_tokens_total_ = 0, steps_ = 0, packs_ = 0;
  double step_time_sum_ = 0;
  bool device_sampling_ = false;  // sample through runner_->ForwardAndSample (set by Init)
  std::mt19937_64 seed_rng_{std::random_device{}()};
  std::vector<RequestOutput> deltas_;
  absl::flat_hash_map<RequestState*, size_t> delta_index_;

  // Edges.
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<RequestState>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> aborts_ ABSL_GUARDED_BY(mu_);
  std::vector<EngineObserver*> observers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, bool> live_ids_ ABSL_GUARDED_BY(mu_);
  int32_t num_live_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_request_ ABSL_GUARDED_BY(mu_) = 0;
  mutable absl::Mutex stats_mu_;
  EngineStats stats_ ABSL_GUARDED_BY(stats_mu_);
  std::thread thread_;
};

absl::Status Engine::Impl::Init() {
  const models::ModelConfig& mc = model_->config;
  RETURN_IF_ERROR(ValidateEngineConfig(config_));
  if (config_.sampling_device != "auto" && config_.sampling_device != "host") {
    return absl::InvalidArgumentError(absl::StrCat("--sampling-device must be auto or host, got '",
                                                   config_.sampling_device, "'"));
  }
  ASSIGN_OR_RETURN(spec_, MakeSpecForModel(mc, config_.kv_cache_dtype, config_.kv_sink_tokens,
                                           config_.kv_boost_fraction));
  max_model_len_ = config_.max_model_len > 0
                       ? std::min(config_.max_model_len, mc.max_position_embeddings)
                       : mc.max_position_embeddings;
  eos_ids_ = EosTokenIds(*model_);

  if (config_.make_runner) {
    ASSIGN_OR_RETURN(runner_, config_.make_runner(*model_));
  } else {
    models::RunnerOptions ro;
    ro.cuda_graph_max_batch = config_.cuda_graph_max_batch;
    ASSIGN_OR_RETURN(runner_, models::MakeRunner(*model_, config_.device, ro));
  }
  device_sampling_ = config_.sampling_device == "auto" && runner_->supports_device_sampling();
  const kernels::DType fp = runner_->kv_dtype();
  const int L = mc.num_layers;
  block_manager::BlockManagerConfig units;
  units.sink_tokens = spec_.sink_tokens;
  units.page_tokens = kernels::KvCacheSpec::kPageTokens;
  units.v_window_tokens = spec_.v_window_tokens;
  units.enable_prefix_caching = config_.enable_prefix_caching;
  // Quantized pages have one format everywhere; auto pages hold the runner's fp dtype (bf16 on
  // the GPU, float32 on the CPU), which KPageBytes (the CPU reference) does not know.
  const int64_t fp_page_bytes = int64_t{spec_.num_kv_heads} * kernels::KvCacheSpec::kPageTokens *
                                spec_.head_dim * kernels::DTypeSize(fp);
  units.k_page_bytes =
      (spec_.quantized() ? static_cast<int64_t>(kernels::KPageBytes(spec_)) : fp_page_bytes) * L;
  units.v_page_bytes =
      (spec_.quantized() ? static_cast<int64_t>(kernels::VPageBytes(spec_)) : fp_page_bytes) * L;
  units.sink_block_bytes = static_cast<int64_t>(kernels::SinkBlockBytes(spec_, fp)) * L;
  units.tail_slot_bytes = static_cast<int64_t>(kernels::TailSlotBytes(spec_, fp)) * L;
  units.elements_per_token = int64_t{2} * L * spec_.num_kv_heads * spec_.head_dim;
  int64_t budget = config_.kv_cache_memory_bytes;
  if (budget <= 0) {
    budget =
        runner_->AvailableKvBytes(config_.gpu_memory_utilization, config_.max_num_batched_tokens);
  }
  if (budget <= 0) budget = kDefaultCpuKvBytes;
  if (spec_.sink_tokens == 0) {
    return absl::InvalidArgumentError("--kv-sink-tokens must be at least 1 for the engine");
  }
  // A sequence of expected_tokens_per_seq tokens ends with the K/V of all but its last token.
  const int pages_per_seq = std::max(
      1, block_manager::PagesForTokens(std::max(0, config_.expected_tokens_per_seq - 1), units));
  ASSIGN_OR_RETURN(
      block_manager::BlockManagerConfig bmc,
      block_manager::SizeBlockManager(budget, config_.max_num_seqs, units, pages_per_seq));
  RETURN_IF_ERROR(runner_->AllocateKv(
      spec_, {bmc.num_k_pages, bmc.num_v_pages, bmc.num_sink_blocks, bmc.num_tail_slots}));
  // A request must never need more KV memory than exists (it could only be aborted): as vLLM,
  // an explicit --max-model-len beyond what one sequence can hold is an error; the model's own
  // context is capped with a warning. +1: the last generated token's K/V is never written.
  const int64_t kv_len = int64_t{block_manager::MaxSequenceTokens(bmc)} + 1;
  if (kv_len < max_model_len_) {
    if (config_.max_model_len > 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--max-model-len %d exceeds the %d tokens one sequence can hold in the KV cache "
          "(%d bytes); raise --kv-cache-memory or lower --max-model-len",
          max_model_len_, kv_len, budget));
    }
    spdlog::warn(
        "the KV cache ({} bytes) holds {} tokens of one sequence, less than the model's context "
        "of {}: max_model_len is {} (raise --kv-cache-memory for more)",
        budget, kv_len, max_model_len_, kv_len);
    max_model_len_ = static_cast<int32_t>(kv_len);
    context_capped_by_kv_ = true;
  }
  bm_ = std::make_unique<block_manager::BlockManager>(bmc);
  scheduler::SchedulerConfig sc;
  sc.max_num_seqs = config_.max_num_seqs;
  sc.max_num_batched_tokens = config_.max_num_batched_tokens;
  scheduler_ = std::make_unique<scheduler::Scheduler>(sc, bm_.get());

  cache_info_.kv_cache_dtype = std::string(kernels::KvCacheModeName(spec_.mode));
  cache_info_.page_tokens = kernels::KvCacheSpec::kPageTokens;
  cache_info_.sink_tokens = spec_.sink_tokens;
  cache_info_.boost_channels = spec_.quantized() ? spec_.boost_channels : 0;
  cache_info_.num_k_pages = bmc.num_k_pages;
  cache_info_.num_v_pages = bmc.num_v_pages;
  cache_info_.num_seq_slots = bmc.num_tail_slots;
  cache_info_.kv_cache_bytes = runner_->kv_bytes();
  cache_info_.capacity_tokens =
      static_cast<int64_t>(bmc.num_k_pages) * kernels::KvCacheSpec::kPageTokens +
      static_cast<int64_t>(bmc.num_tail_slots) * spec_.sink_tokens;
  cache_info_.max_model_len = max_model_len_;
  cache_info_.device = runner_->device_name();
  cache_info_.weight_bytes = runner_->weight_bytes();
  if (config_.measure_bandwidth) {
    cache_info_.copy_bandwidth_bytes_s = runner_->MeasureCopyBandwidth();
    cache_info_.matmul_flops_s = runner_->MeasureMatmulRate();
  }
  cache_info_.kv_bytes_per_token_pages =
      (units.k_page_bytes + units.v_page_bytes) / kernels::KvCacheSpec::kPageTokens;
  cache_info_.fp16_bytes_per_token = 2 * units.elements_per_token;
  const double fp16_per_token = 2.0 * units.elements_per_token;
  const double page_per_token = static_cast<double>(units.k_page_bytes + units.v_page_bytes) /
                                kernels::KvCacheSpec::kPageTokens;
  spdlog::info(
      "KV cache on {}: mode {} ({:.1f} MiB): {} K + {} V pages of {} tokens = {} tokens, {} "
      "sequence "
      "slots; sealed pages {:.1f} B/token vs fp16 {:.1f} B/token ({:.2f}x)",
      runner_->device_name(), cache_info_.kv_cache_dtype, cache_info_.kv_cache_bytes / 1048576.0,
      bmc.num_k_pages, bmc.num_v_pages, kernels::KvCacheSpec::kPageTokens,
      cache_info_.capacity_tokens, bmc.num_tail_slots, page_per_token, fp16_per_token,
      fp16_per_token / page_per_token);
  UpdateStats(0);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RequestStream>> Engine::Impl::AddRequest(Request req) {
  const int32_t V = model_->config.vocab_size;
  const int32_t n = static_cast<int32_t>(req.prompt_token_ids.size());
  if (n == 0) return absl::InvalidArgumentError("prompt: the prompt is empty");
  for (int32_t i = 0; i < n; ++i) {
    const int32_t id = req.prompt_token_ids[i];
    if (id < 0 || id >= V) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "prompt_token_ids[%d] = %d is out of range for a vocabulary of %d", i, id, V));
    }
  }
  if (n >= max_model_len_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "prompt: %d tokens do not fit the context of %d tokens (max_model_len%s; the prompt must "
        "leave room for at least one generated token)",
        n, max_model_len_,
        context_capped_by_kv_ ? ", capped by the KV cache: raise --kv-cache-memory" : ""));
  }
  RETURN_IF_ERROR(ValidateSamplingParams(req.params, V));
  RETURN_IF_ERROR(ValidateRequestId(req.request_id));
  auto state = std::make_unique<RequestState>();
  state->arrival = Clock::now();
  state->max_tokens = std::min(req.params.max_tokens, max_model_len_ - n);
  {
    absl::MutexLock lock(&mu_);
    if (draining_ || stop_) {
      return absl::UnavailableError("the server is shutting down; retry on another replica");
    }
    if (num_live_ >= config_.max_queued_requests + config_.max_num_seqs) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("the request queue is full (%d requests); retry later", num_live_));
    }
    if (req.request_id.empty()) req.request_id = absl::StrCat("req-", next_request_++);
    if (live_ids_.contains(req.request_id)) {
      return absl::AlreadyExistsError(
          absl::StrCat("request_id \"", req.request_id, "\" is already running"));
    }
    state->stream = std::make_shared<RequestStream>(req.request_id);
    state->req = std::move(req);
    live_ids_[state->req.request_id] = true;
    ++num_live_;
    std::shared_ptr<RequestStream> stream = state->stream;
    inbox_.push_back(std::move(state));
    return stream;
  }
}

void Engine::Impl::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Engine::Impl::DrainInbox() {
  std::vector<std::unique_ptr<RequestState>> incoming;
  {
    absl::MutexLock lock(&mu_);
    incoming.swap(inbox_);
  }
  for (auto& r : incoming) {
    const SeqId seq(next_seq_++);
    OutputState o;
    o.index = 0;
    o.seq = seq;
    SamplingParams p = r->req.params;
    o.sampler = std::make_unique<Sampler>(p, seed_rng_());
    if (model_->tokenizer != nullptr && r->req.detokenize) {
      o.detok = std::make_unique<models::IncrementalDetokenizer>(
          *model_->tokenizer, r->req.prompt_token_ids, /*skip_special_tokens=*/true);
    }
    r->outputs.push_back(std::move(o));
    scheduler_->AddSequence(seq, r->req.prompt_token_ids, r->req.priority, r->req.cache_salt);
    RequestState* raw = r.get();
    seq_owner_[seq] = {raw, 0};
    requests_[r->req.request_id] = std::move(r);
  }
}

void Engine::Impl::ProcessAborts() {
  std::vector<std::string> aborts;
  {
    absl::MutexLock lock(&mu_);
    aborts.swap(aborts_);
  }
  for (const std::string& id : aborts) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    RequestState& r = *it->second;
    if (r.finished) continue;
    for (OutputState& o : r.outputs) {
      if (o.finish_reason.empty()) {
        FinishOutput(r, o, "abort");
        EmitDelta(r, o, DeltaFor(&r), /*flush=*/true);
      }
    }
    CompleteRequest(r, DeltaFor(&r));
  }
}

void Engine::Impl::FinishOutput(RequestState& r, OutputState& o, const std::string& reason) {
  o.finish_reason = reason;
  scheduler_->FinishSequence(o.seq);
  seq_owner_.erase(o.seq);
}

void Engine::Impl::EmitDelta(RequestState& r, OutputState& o, RequestOutput* delta, bool flush) {
  // Hold back text that could still become a stop string (vLLM's hold-back).
  size_t hold = 0;
  if (!flush) {
    for (const std::string& s : r.req.params.stop) hold = std::max(hold, s.size() - 1);
  }
  size_t visible = o.text.size() > hold ? o.text.size() - hold : 0;
  // Never end a delta inside a UTF-8 character (the text is valid UTF-8 as a whole): a
  // cut one is invalid in the protobuf string field and the client cannot parse the message.
  while (visible > o.emitted_text && visible < o.text.size() &&
         (static_cast<unsigned char>(o.text[visible]) & 0xC0) == 0x80) {
    --visible;
  }
  CompletionDelta d;
  d.index = o.index;
  if (visible > o.emitted_text) {
    d.text = o.text.substr(o.emitted_text, visible - o.emitted_text);
    o.emitted_text = visible;
  }
  d.token_ids.assign(o.tokens.begin() + o.emitted_tokens, o.tokens.end());
  o.emitted_tokens = o.tokens.size();
  d.logprobs.assign(o.logprobs.begin() + o.emitted_logprobs, o.logprobs.end());
  o.emitted_logprobs = o.logprobs.size();
  d.finish_reason = o.finish_reason;
  if (d.token_ids.empty() && d.text.empty() && d.finish_reason.empty()) return;
  delta->outputs.push_back(std::move(d));
}

void Engine::Impl::HandleToken(RequestState& r, OutputState& o, const SampleResult& s,
                               RequestOutput* delta) {
  const SamplingParams& p = r.req.params;
  const auto now = Clock::now();
  if (!r.got_first_token) {
    r.got_first_token = true;
    r.first_token = now;
    // As vLLM: the whole prompt once per request, when its prefill completes (prefix-cache hits
    // included, recomputation after a preemption not counted again).
    prompt_tokens_total_ += static_cast<int64_t>(r.req.prompt_token_ids.size());
    for (EngineObserver* obs : Observers()) obs->OnFirstToken(Seconds(r.arrival, now));
  } else if (o.tokens.size() > 0) {
    for (EngineObserver* obs : Observers()) {
      obs->OnInterTokenLatency(Seconds(o.last_token_time, now));
    }
  }
  o.last_token_time = now;
  o.tokens.push_back(s.token_id);
  if (p.logprobs > 0) o.logprobs.push_back(s);
  ++generation_tokens_total_;
  const int32_t count = static_cast<int32_t>(o.tokens.size());
  const bool can_stop = count > p.min_tokens;
  std::string reason;
  const bool is_eos =
      !p.ignore_eos && std::find(eos_ids_.begin(), eos_ids_.end(), s.token_id) != eos_ids_.end();
  const bool is_stop_id = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), s.token_id) !=
                          p.stop_token_ids.end();
  if (can_stop && (is_eos || is_stop_id)) {
    reason = "stop";  // the stop token is reported in token_ids, not in the text
  } else {
    if (o.detok != nullptr) o.text += o.detok->Append(s.token_id);
    if (can_stop && !p.stop.empty()) {
      // A stop string may end inside this token's text: search the tail that could hold it.
      size_t max_stop = 0;
      for (const std::string& st : p.stop) max_stop = std::max(max_stop, st.size());
      const size_t from = o.emitted_text > max_stop ? o.emitted_text - max_stop : 0;
      size_t best = std::string::npos;
      for (const std::string& st : p.stop) best = std::min(best, o.text.find(st, from));
      if (best != std::string::npos) {
        o.text.resize(best);
        reason = "stop";
      }
    }
    if (reason.empty() &&
        (count >= r.max_tokens ||
         static_cast<int32_t>(r.req.prompt_token_ids.size()) + count >= max_model_len_)) {
      reason = "length";
    }
  }
  if (!reason.empty()) {
    if (reason == "length" && o.detok != nullptr) o.text += o.detok->Flush();
    FinishOutput(r, o, reason);
    EmitDelta(r, o, delta, /*flush=*/true);
  } else {
    scheduler_->AppendToken(o.seq, s.token_id);
    EmitDelta(r, o, delta, /*flush=*/false);
  }
}

void Engine::Impl::CompleteRequest(RequestState& r, RequestOutput* delta) {
  for (const OutputState& o : r.outputs) {
    if (o.finish_reason.empty()) return;
  }
  // n > 1: outputs not forked yet (aborted before the first token) don't exist; fine.
  r.finished = true;
  delta->finished = true;
  delta->usage.prompt_tokens = static_cast<int32_t>(r.req.prompt_token_ids.size());
  for (const OutputState& o : r.outputs) {
    delta->usage.completion_tokens += static_cast<int32_t>(o.tokens.size());
  }
  delta->usage.cached_prompt_tokens = r.cached_prompt_tokens;
  const auto now = Clock::now();
  FinishedRequestInfo info;
  info.request_id = r.req.request_id;
  info.finish_reason = r.outputs[0].finish_reason;
  info.prompt_tokens = delta->usage.prompt_tokens;
  info.generation_tokens = delta->usage.completion_tokens;
  info.cached_prompt_tokens = r.cached_prompt_tokens;
  info.e2e_s = Seconds(r.arrival, now);
  info.scheduled = r.scheduled;
  info.got_first_token = r.scheduled && r.got_first_token;
  if (r.scheduled) {
    info.queue_time_s = Seconds(r.arrival, r.first_scheduled);
    if (r.got_first_token) {
      info.ttft_s = Seconds(r.arrival, r.first_token);
      info.prefill_time_s = Seconds(r.first_scheduled, r.first_token);
      info.decode_time_s = Seconds(r.first_token, now);
    }
  }
  for (EngineObserver* obs : Observers()) obs->OnRequestFinished(info);
}

void Engine::Impl::RunCopyJobs(const std::vector<block_manager::CopyJob>& jobs) {
  for (const block_manager::CopyJob& j : jobs) {
    if (j.kind == block_manager::CopyJob::kSink) {
      runner_->CopySinkBlock(j.src, j.dst);
    } else {
      runner_->CopyTailSlot(j.src, j.dst);
    }
  }
}

bool Engine::Impl::Step() {
  DrainInbox();
  ProcessAborts();
  const auto t0 = Clock::now();
  scheduler::SchedulerOutput out = scheduler_->Schedule();
  auto delta_for = [this](RequestState* r) { return DeltaFor(r); };

  if (out.empty()) {
    if (scheduler_->num_running() == 0 && scheduler_->num_waiting() > 0) {
      // Nothing can be admitted and nothing runs: the head of the queue, which admission
      // waits for, can never fit (max_model_len keeps one sequence within the cache, so this
      // is a safety net). Abort that one, not whichever request the map yields first.
      const std::optional<SeqId> head = scheduler_->NextWaiting();
      auto owner = head.has_value() ? seq_owner_.find(*head) : seq_owner_.end();
      if (owner != seq_owner_.end()) {
        RequestState& r = *owner->second.first;
        OutputState& o = r.outputs[owner->second.second];
        spdlog::warn("request {}: output {} does not fit the KV cache; aborting", r.req.request_id,
                     o.index);
        FinishOutput(r, o, "abort");
        EmitDelta(r, o, delta_for(&r), true);
        CompleteRequest(r, delta_for(&r));
      }
    }
  } else {
    // Build the batch from the block manager's tables (counters as before this step).
    const size_t B = out.sequences.size();
    std::vector<models::SequenceKvSlots> slots(B);
    std::vector<models::SequenceStep> steps(B);
    for (size_t i = 0; i < B; ++i) {
      const scheduler::ScheduledSequence& ss = out.sequences[i];
      const block_manager::SequencePages& pages = bm_->Get(ss.id);
      models::SequenceKvSlots& sl = slots[i];
      sl.sink_block = pages.sink.value;
      sl.tail_slot = pages.tail.value;
      for (auto k : pages.k_pages) sl.k_pages.push_back(k.value);
      for (auto v : pages.v_pages) sl.v_pages.push_back(v.value);
      sl.counters.sink_tokens = ss.counters_before.sink_tokens;
      sl.counters.num_k_pages = ss.counters_before.num_k_pages;
      sl.counters.k_tail_tokens = ss.counters_before.k_tail_tokens;
      sl.counters.num_v_pages = ss.counters_before.num_v_pages;
      sl.counters.v_tail_tokens = ss.counters_before.v_tail_tokens;
      const scheduler::Sequence* seq = scheduler_->Find(ss.id);
      steps[i].token_ids = absl::MakeConstSpan(seq->token_ids).subspan(ss.start, ss.num_tokens);
      steps[i].kv = &slots[i];
      auto owner = seq_owner_.find(ss.id);
      if (owner != seq_owner_.end()) {
        RequestState* r = owner->second.first;
        if (!r->scheduled) {
          r->scheduled = true;
          r->first_scheduled = t0;
          r->cached_prompt_tokens = seq->num_cached_prompt_tokens;
        }
      }
    }
    // Which outputs sample this step: ordinary ones (each owns its sampler) are sampled in
    // one go (on the device, or on the host in parallel); a prompt's first sample with n > 1
    // forks and samples its row once per output, on the host, below.
    const int V = model_->config.vocab_size;
    std::vector<OutputState*> sampler_of(B, nullptr);
    for (size_t i = 0; i < B; ++i) {
      const scheduler::ScheduledSequence& ss = out.sequences[i];
      if (!ss.samples) continue;
      auto owner = seq_owner_.find(ss.id);
      if (owner == seq_owner_.end()) continue;
      RequestState& r = *owner->second.first;
      const int32_t idx = owner->second.second;
      if (idx == 0 && r.outputs.size() == 1 && r.req.params.n > 1) continue;  // forks below
      sampler_of[i] = &r.outputs[idx];
    }
    std::vector<float> logits;          // host rows, [rows][V]
    std::vector<int64_t> logit_row(B);  // row of sequence i in `logits` (-1: none)
    std::vector<std::optional<SampleResult>> presampled(B);
    const bool on_device = device_sampling_;
    absl::Status st;
    if (on_device) {
      std::vector<models::RowSampling> plan(B);
      int64_t host_rows = 0;
      for (size_t i = 0; i < B; ++i) {
        logit_row[i] = -1;
        if (!out.sequences[i].samples) {
          plan[i].where = models::RowSampling::Where::kSkip;
        } else if (sampler_of[i] == nullptr) {
          plan[i].where = models::RowSampling::Where::kHost;
          logit_row[i] = host_rows++;
        } else {
          const RequestState& r = *seq_owner_.at(out.sequences[i].id).first;
          plan[i] =
              sampler_of[i]->sampler->DeviceRow(r.req.prompt_token_ids, sampler_of[i]->tokens);
        }
      }
      std::vector<models::RowSample> samples;
      st = runner_->ForwardAndSample(steps, plan, &samples, &logits);
      if (st.ok()) {
        for (size_t i = 0; i < B; ++i) {
          if (plan[i].where == models::RowSampling::Where::kDevice) {
            presampled[i] = Sampler::FromDevice(samples[i]);
          }
        }
      }
    } else {
      st = runner_->Forward(steps, &logits);
      for (size_t i = 0; i < B; ++i) logit_row[i] = static_cast<int64_t>(i);
    }
    KITTY_CHECK_OK(st);  // inputs were validated at admission: a failure here is a bug
    bm_->CommitStep();
    scheduler_->OnStepComputed(out);
    packs_ += static_cast<int64_t>(out.pack_jobs.size());
    int num_prompt = 0, num_gen = 0;
    auto row_of = [&](size_t i) {
      KITTY_CHECK(logit_row[i] >= 0);
      return absl::MakeConstSpan(logits).subspan(logit_row[i] * V, V);
    };
    if (!on_device) {
      // A large-vocabulary row costs real time: sample the host rows in parallel.
      std::vector<size_t> jobs;
      for (size_t i = 0; i < B; ++i) {
        if (sampler_of[i] != nullptr) jobs.push_back(i);
      }
#pragma omp parallel for schedule(dynamic, 4) if (jobs.size() > 8)
      for (size_t j = 0; j < jobs.size(); ++j) {
        const size_t i = jobs[j];
        OutputState& o = *sampler_of[i];
        const RequestState& r = *seq_owner_.at(out.sequences[i].id).first;
        presampled[i] = o.sampler->Sample(row_of(i), r.req.prompt_token_ids, o.tokens);
      }
    }
    for (size_t i = 0; i < B; ++i) {
      const scheduler::ScheduledSequence& ss = out.sequences[i];
      const scheduler::Sequence* seq = scheduler_->Find(ss.id);
      const int32_t prompt_part =
          std::max(0, std::min(ss.start + ss.num_tokens, seq->num_prompt_tokens) - ss.start);
      num_prompt += prompt_part;
      if (!ss.samples) continue;
      auto owner = seq_owner_.find(ss.id);
      if (owner == seq_owner_.end()) continue;
      RequestState& r = *owner->second.first;
      const int32_t idx = owner->second.second;
      // n > 1: after the prompt's first sample, fork the other outputs from the same state.
      if (idx == 0 && r.outputs.size() == 1 && r.req.params.n > 1 && r.outputs[0].tokens.empty()) {
        for (int32_t k = 1; k < r.req.params.n; ++k) {
          const SeqId child(next_seq_++);
          std::optional<std::vector<block_manager::CopyJob>> jobs =
              scheduler_->ForkSequence(ss.id, child);
          if (jobs.has_value()) RunCopyJobs(*jobs);
          OutputState o;
          o.index = k;
          o.seq = child;
          SamplingParams p = r.req.params;
          if (p.seed.has_value()) p.seed = *p.seed + k;
          o.sampler = std::make_unique<Sampler>(p, seed_rng_());
          if (r.outputs[0].detok != nullptr) {
            o.detok = std::make_unique<models::IncrementalDetokenizer>(
                *model_->tokenizer, r.req.prompt_token_ids, true);
          }
          r.outputs.push_back(std::move(o));
        }
        for (int32_t k = 0; k < r.req.params.n; ++k) seq_owner_[r.outputs[k].seq] = {&r, k};
        for (int32_t k = 0; k < r.req.params.n; ++k) {
          OutputState& o = r.outputs[k];
          const SampleResult s = o.sampler->Sample(row_of(i), r.req.prompt_token_ids, o.tokens);
          ++num_gen;
          HandleToken(r, o, s, delta_for(&r));
        }
        CompleteRequest(r, delta_for(&r));
        continue;
      }
      OutputState& o = r.outputs[idx];
      const SampleResult s = presampled[i].has_value()
                                 ? *presampled[i]
                                 : o.sampler->Sample(row_of(i), r.req.prompt_token_ids, o.tokens);
      ++num_gen;
      HandleToken(r, o, s, delta_for(&r));
      CompleteRequest(r, delta_for(&r));
    }
    const double dt = Seconds(t0, Clock::now());
    ++steps_;
    step_time_sum_ += dt;
    EngineObserver::StepInfo info;
    info.num_seqs = static_cast<int>(B);
    info.num_tokens = out.num_batched_tokens;
    for (const auto& ss : out.sequences) {
      info.num_decode_seqs += ss.num_tokens == 1 ? 1 : 0;
      info.context_tokens += ss.start + ss.num_tokens;
    }
    const block_manager::BlockManagerStats bs = bm_->GetStats();
    info.kv_bytes_in_use = bs.total_bytes_in_use;
    info.step_time_s = dt;
    for (EngineObserver* obs : Observers()) {
      obs->OnStep(num_prompt, num_gen, dt);
      obs->OnStepInfo(info);
    }
  }

  UpdateStats(0);  // before Publish: whoever sees a request finish sees its pages freed
  const int finished = Publish();
  return !out.empty() || finished > 0;
}

RequestOutput* Engine::Impl::DeltaFor(RequestState* r) {
  auto [it, inserted] = delta_index_.try_emplace(r, deltas_.size());
  if (inserted) {
    deltas_.emplace_back();
    deltas_.back().request_id = r->req.request_id;
  }
  return &deltas_[it->second];
}

int Engine::Impl::Publish() {
  std::vector<RequestOutput> deltas;
  deltas.swap(deltas_);
  delta_index_.clear();
  int finished = 0;
  for (RequestOutput& d : deltas) {
    auto it = requests_.find(d.request_id);
    if (it == requests_.end()) continue;
    std::shared_ptr<RequestStream> stream = it->second->stream;
    const bool done = it->second->finished;
    if (done) {
      requests_.erase(it);
      ++finished;
    }
    if (!d.outputs.empty() || d.finished) stream->Push(std::move(d));
  }
  if (finished > 0) {
    absl::MutexLock lock(&mu_);
    num_live_ -= finished;
    for (const RequestOutput& d : deltas) {
      if (d.finished) live_ids_.erase(d.request_id);
    }
  }
  return finished;
}

void Engine::Impl::UpdateStats(double) {
  const block_manager::BlockManagerStats bs = bm_->GetStats();
  EngineStats s;
  s.num_running = scheduler_->num_running();
  s.num_waiting = scheduler_->num_waiting();
  {
    absl::MutexLock lock(&mu_);
    s.num_waiting += static_cast<int32_t>(inbox_.size());
  }
  s.num_preemptions = scheduler_->num_preemptions();
  s.prompt_tokens_total = prompt_tokens_total_;
  s.generation_tokens_total = generation_tokens_total_;
  s.num_steps = steps_;
  s.pack_jobs_total = packs_;
  const int32_t total = bs.k_pages.num_total + bs.v_pages.num_total;
  s.pages_total = total;
  s.pages_used = bs.k_pages.num_used + bs.v_pages.num_used;
  s.pages_free = bs.k_pages.num_free + bs.v_pages.num_free;
  s.pages_cached = bs.k_pages.num_cached + bs.v_pages.num_cached;
  s.k_pages_used = bs.k_pages.num_used;
  s.k_pages_free = bs.k_pages.num_free;
  s.k_pages_cached = bs.k_pages.num_cached;
  s.v_pages_used = bs.v_pages.num_used;
  s.v_pages_free = bs.v_pages.num_free;
  s.v_pages_cached = bs.v_pages.num_cached;
  s.kv_cache_usage = bs.page_usage;
  s.prefix_cache_queries_tokens = bs.prefix_cache_queries_tokens;
  s.prefix_cache_hit_tokens = bs.prefix_cache_hit_tokens;
  s.prefix_cache_evictions = bs.prefix_cache_evictions;
  s.sink_bytes = bs.sink_bytes_in_use;
  s.tail_bytes = bs.tail_bytes_in_use;
  s.k_page_bytes = bs.k_page_bytes_in_use;
  s.v_page_bytes = bs.v_page_bytes_in_use;
  s.effective_bits_per_element = bs.effective_bits_per_element;
  s.compression_vs_fp16 = bs.compression_vs_fp16;
  s.mean_step_time_s = steps_ > 0 ? step_time_sum_ / steps_ : 0;
  absl::MutexLock lock(&stats_mu_);
  stats_ = s;
}

void Engine::Impl::Loop() {
  while (true) {
    bool stop;
    {
      absl::MutexLock lock(&mu_);
      stop = stop_;
    }
    if (stop) break;
    if (!Step()) {
      // Idle: wait for new work (bounded, so a stop is noticed promptly).
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !inbox_.empty() || !aborts_.empty() || stop_;
      };
      if (scheduler_->idle()) mu_.AwaitWithTimeout(absl::Condition(&work), absl::Milliseconds(50));
    }
  }
  // Abort whatever is left so every stream gets a final message and every page is freed.
  {
    absl::MutexLock lock(&mu_);
    for (auto& r : inbox_) aborts_.push_back(r->req.request_id);
  }
  DrainInbox();
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, r] : requests_) aborts_.push_back(id);
  }
  ProcessAborts();
  Publish();
  requests_.clear();
  absl::MutexLock lock(&mu_);
  num_live_ = 0;
  live_ids_.clear();
}

// ---- Engine ---------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() { Stop(); }

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineConfig& config,
                                                       std::shared_ptr<models::LoadedModel> model) {
  if (model == nullptr) return absl::InvalidArgumentError("Engine::Create: no model");
  auto impl = std::make_unique<Impl>(config, std::move(model));
  RETURN_IF_ERROR(impl->Init());
  impl->Start();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

absl::StatusOr<std::shared_ptr<RequestStream>> Engine::AddRequest(Request request) {
  return impl_->AddRequest(std::move(request));
}
void Engine::Abort(const std::string& request_id) { impl_->Abort(request_id); }
void Engine::StartDrain() { impl_->StartDrain(); }
bool Engine::WaitIdle(absl::Duration timeout) { return impl_->WaitIdle(timeout); }
void Engine::Stop() { impl_->Stop(); }
void Engine::AddObserver(EngineObserver* observer) { impl_->AddObserver(observer); }
EngineStats Engine::GetStats() const { return impl_->GetStats(); }
const CacheInfo& Engine::cache_info() const { return impl_->cache_info(); }
const models::LoadedModel& Engine::model() const { return impl_->model(); }
bool Engine::draining() const { return impl_->draining(); }

}  // namespace kitty::runtime
