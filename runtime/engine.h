// File: runtime/engine.h
// -----------------------------------------------------------------------------
// The engine: one thread that owns the scheduler, the block manager, the KV cache memory and
// the model, and runs the step loop of DESIGN.md §2:
//
//   drain inbox + aborts → Scheduler::Schedule() → copy jobs → Model::Forward(batch) (attend,
//   append, seal pages) → BlockManager::CommitStep() → sample → append tokens, check stops,
//   free finished sequences → push deltas to each request's stream → update stats.
//
// The rest of the program talks to it only through AddRequest() (a bounded inbox), Abort(),
// the per-request RequestStream outboxes, Drain()/Stop(), and the stats snapshot.
//
// Thread safety: every public method may be called from any thread. Internally, the scheduler,
// block manager, cache and model are touched only by the engine thread; the inbox, abort list,
// streams and stats snapshot are guarded by mutexes.
#ifndef KITTY_RUNTIME_ENGINE_H_
#define KITTY_RUNTIME_ENGINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "models/model_loader.h"
#include "models/model_runner.h"
#include "runtime/sampling.h"

namespace kitty::runtime {

struct EngineConfig {
  std::string device;  // "cuda", "cpu", or "" (cuda when present)
  std::string kv_cache_dtype = "kitty-pro";
  int kv_sink_tokens = -1;            // < 0: 32
  double kv_boost_fraction = -1;      // < 0: by mode
  int64_t kv_cache_memory_bytes = 0;  // KV budget; 0: from gpu_memory_utilization (GPU) or
                                      // 1 GiB (CPU)
  double gpu_memory_utilization = 0.9;
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_model_len = 0;           // 0: the model's context
  int max_queued_requests = 1024;  // inbox + waiting bound → RESOURCE_EXHAUSTED beyond
  bool enable_prefix_caching = true;
  bool measure_bandwidth = false;  // measure the device copy bandwidth at start (benchmarks)
  // Typical tokens per sequence, for sizing: each sequence slot (fixed full-precision sink and
  // tails) is reserved together with the pages such a sequence needs. 0: one page pair per
  // slot (the most concurrent sequences; growth beyond that preempts).
  int expected_tokens_per_seq = 0;
  // "auto": sample on the device when the runner can (only ids and requested logprobs come
  // back); "host": every logits row comes to the host and runtime::Sampler draws there.
  std::string sampling_device = "auto";
  // CUDA: decode steps of up to this many sequences replay CUDA graphs; 0: always eager.
  int cuda_graph_max_batch = models::kDefaultCudaGraphMaxBatch;
  // Tests: build the runner with this instead of models::MakeRunner(model, device).
  std::function<absl::StatusOr<std::unique_ptr<models::ModelRunner>>(const models::LoadedModel&)>
      make_runner;
};

// The sizes and limits of `c` that no engine can run with (InvalidArgument naming the flag).
// Engine::Create checks them; binaries may call it before loading a model to fail fast.
absl::Status ValidateEngineConfig(const EngineConfig& c);

struct Request {
  std::string request_id;                 // unique among live requests
  std::vector<int32_t> prompt_token_ids;  // validated by AddRequest
  SamplingParams params;
  int32_t priority = 0;    // lower runs first; FCFS within a priority
  std::string cache_salt;  // tenant isolation of the prefix cache
  bool detokenize = true;  // produce text deltas (needs a tokenizer)
};

// One of the n outputs of a request, as a delta since the previous RequestOutput.
struct CompletionDelta {
  int32_t index = 0;
  std::vector<int32_t> token_ids;      // new tokens
  std::string text;                    // new text (stop strings are never emitted)
  std::string finish_reason;           // "" while running, then "length" | "stop" | "abort"
  std::vector<SampleResult> logprobs;  // per new token, when params.logprobs > 0
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;  // over all n outputs
  int32_t cached_prompt_tokens = 0;
};

struct RequestOutput {
  std::string request_id;
  std::vector<CompletionDelta> outputs;  // only outputs that changed
  bool finished = false;                 // every output has a finish_reason
  Usage usage;                           // filled on the last message
};

// The outbox of one request. The engine pushes; one consumer pops.
// Thread safety: thread-safe.
class RequestStream {
 public:
  explicit RequestStream(std::string request_id) : request_id_(std::move(request_id)) {}
  const std::string& request_id() const { return request_id_; }

  // Called (on the engine thread, without locks held) after each push; must not block.
  // Set it before the first output can arrive (i.e. right after AddRequest returns it is
  // fine: pushes that happened earlier are still queued, and SetNotifier calls it once if the
  // queue is non-empty).
  void SetNotifier(std::function<void()> notify) ABSL_LOCKS_EXCLUDED(mu_);
  // Non-blocking: the next output, or nullopt.
  std::optional<RequestOutput> TryPop() ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until an output is available or `timeout` passes (then nullopt).
  std::optional<RequestOutput> Pop(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // Merges all queued outputs into one (for unary responses). Blocks until finished.
  RequestOutput WaitFinished() ABSL_LOCKS_EXCLUDED(mu_);

  // Engine side.
  void Push(RequestOutput out) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::string request_id_;
  absl::Mutex mu_;
  std::deque<RequestOutput> queue_ ABSL_GUARDED_BY(mu_);  // O(1) pops: a slow reader's backlog
  std::function<void()> notify_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Per-request timings and counts reported when a request finishes (for metrics and logs).
struct FinishedRequestInfo {
  std::string request_id;
  std::string finish_reason;  // of output 0 (vLLM's finished_reason label): stop|length|abort
  int32_t prompt_tokens = 0;
  int32_t generation_tokens = 0;
  int32_t cached_prompt_tokens = 0;
  double queue_time_s = 0;       // arrival → first scheduled
  double ttft_s = 0;             // arrival → first token (0 if none)
  double e2e_s = 0;              // arrival → finish
  double prefill_time_s = 0;     // first scheduled → first token
  double decode_time_s = 0;      // first token → finish
  bool scheduled = false;        // ever scheduled (else queue_time_s means nothing)
  bool got_first_token = false;  // else ttft, prefill and decode times mean nothing
};

// Observer of engine events; called on the engine thread, must not block. Metrics and the
// per-request log line implement it.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnFirstToken(double ttft_s) {}
  virtual void OnInterTokenLatency(double itl_s) {}  // per decode token after the first
  virtual void OnRequestFinished(const FinishedRequestInfo& info) {}
  virtual void OnStep(int num_prompt_tokens, int num_generation_tokens, double step_time_s) {}
  // Richer per-step facts for benchmarks (sequences in the batch, KV bytes the step read).
  struct StepInfo {
    int num_seqs = 0;
    int num_tokens = 0;
    int num_decode_seqs = 0;
    int64_t kv_bytes_in_use = 0;  // sink + tails + sealed pages held by sequences
    int64_t context_tokens = 0;   // tokens the step's sequences attend over (sum of lengths)
    double step_time_s = 0;
  };
  virtual void OnStepInfo(const StepInfo& info) {}
};

// A point-in-time snapshot for metrics.
struct EngineStats {
  int32_t num_running = 0;
  int32_t num_waiting = 0;
  int64_t num_preemptions = 0;
  int64_t prompt_tokens_total = 0;
  int64_t generation_tokens_total = 0;
  int64_t num_steps = 0;
  int64_t pack_jobs_total = 0;
  double kv_cache_usage = 0;  // fraction of the fuller page pool (K or V) in use (0..1)
  int64_t prefix_cache_queries_tokens = 0;
  int64_t prefix_cache_hit_tokens = 0;
  int64_t prefix_cache_evictions = 0;
  // KV memory by storage kind (bytes in use) and pool occupancy.
  int64_t sink_bytes = 0, tail_bytes = 0, k_page_bytes = 0, v_page_bytes = 0;
  int32_t pages_used = 0, pages_free = 0, pages_cached = 0, pages_total = 0;  // K+V pages
  int32_t k_pages_used = 0, k_pages_free = 0, k_pages_cached = 0;             // per pool
  int32_t v_pages_used = 0, v_pages_free = 0, v_pages_cached = 0;
  double effective_bits_per_element = 0;
  double compression_vs_fp16 = 0;
  double mean_step_time_s = 0;
};

// Static facts about the engine's cache (GetModelInfo, cache_config_info, start-up log).
struct CacheInfo {
  std::string kv_cache_dtype;
  int32_t page_tokens = 128;
  int32_t sink_tokens = 32;
  int32_t boost_channels = 0;
  int32_t num_k_pages = 0, num_v_pages = 0, num_seq_slots = 0;
  int64_t kv_cache_bytes = 0;
  int64_t capacity_tokens = 0;  // tokens that fit in the pages (+ sinks/tails)
  int32_t max_model_len = 0;
  std::string device;                    // the runner's device name
  int64_t weight_bytes = 0;              // weights read per forward step
  double copy_bandwidth_bytes_s = 0;     // measured when EngineConfig::measure_bandwidth
  double matmul_flops_s = 0;             // likewise: a large GEMM in the weights' dtype
  int64_t kv_bytes_per_token_pages = 0;  // K+V sealed-page bytes of one token (all layers)
  int64_t fp16_bytes_per_token = 0;      // what an fp16 cache stores per token (all layers)
};

class Engine {
 public:
  // Sizes the KV cache from the config, logs how many tokens and sequences fit, and starts
  // the engine thread.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineConfig& config,
                                                        std::shared_ptr<models::LoadedModel> model);
  ~Engine();  // Stop()s
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates (InvalidArgument naming the field: empty prompt, token id out of range, prompt
  // + max_tokens beyond max_model_len is clipped; prompt alone >= max_model_len is an error),
  // then queues. ResourceExhausted when the queue is full; Unavailable while draining;
  // AlreadyExists for a live duplicate request_id.
  absl::StatusOr<std::shared_ptr<RequestStream>> AddRequest(Request request);
  // Aborts a live request (no-op if unknown/finished): its streams get finish_reason "abort"
  // and its pages are released at the next step.
  void Abort(const std::string& request_id);

  // Stops accepting requests (AddRequest → Unavailable) and lets running/waiting ones finish.
  void StartDrain();
  // Waits until no request is live or `timeout` passes; true if idle.
  bool WaitIdle(absl::Duration timeout);
  // Aborts what is left and joins the thread.
  void Stop();

  void AddObserver(EngineObserver* observer);  // before requests arrive; not owned
  EngineStats GetStats() const;
  const CacheInfo& cache_info() const;
  const models::LoadedModel& model() const;
  bool draining() const;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_ENGINE_H_
