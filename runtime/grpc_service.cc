#include "runtime/grpc_service.h"

#include <memory>
#include <random>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "runtime/grpc_messages.h"
#include "spdlog/spdlog.h"

namespace kitty::runtime {

using kitty::v1::GenerateRequest;
using kitty::v1::GenerateResponse;

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<Request> ToEngineRequest(const GenerateRequest& proto,
                                        const models::LoadedModel& model, int32_t max_model_len,
                                        std::string request_id) {
  Request r;
  r.request_id = proto.request_id().empty() ? std::move(request_id) : proto.request_id();
  const int32_t vocab = model.config.vocab_size;
  const bool has_text = !proto.prompt().empty();
  const bool has_ids = proto.prompt_token_ids_size() > 0;
  if (has_text && has_ids) {
    return absl::InvalidArgumentError("prompt, prompt_token_ids: give one of them, not both");
  }
  if (!has_text && !has_ids) {
    return absl::InvalidArgumentError("prompt: empty (give prompt or prompt_token_ids)");
  }
  if (has_text) {
    if (model.tokenizer == nullptr) {
      return absl::InvalidArgumentError(
          "prompt: the model has no tokenizer.json; send prompt_token_ids instead");
    }
    r.prompt_token_ids = model.tokenizer->Encode(proto.prompt(), /*add_special_tokens=*/true);
    if (r.prompt_token_ids.empty()) {
      return absl::InvalidArgumentError("prompt: encodes to no tokens");
    }
  } else {
    r.prompt_token_ids.assign(proto.prompt_token_ids().begin(), proto.prompt_token_ids().end());
    for (int i = 0; i < proto.prompt_token_ids_size(); ++i) {
      const int32_t id = proto.prompt_token_ids(i);
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(absl::StrCat("prompt_token_ids[", i, "]: token id ", id,
                                                       " is outside the vocabulary [0, ", vocab,
                                                       ")"));
      }
    }
  }
  const int32_t prompt_len = static_cast<int32_t>(r.prompt_token_ids.size());
  if (max_model_len > 0 && prompt_len >= max_model_len) {
    return absl::InvalidArgumentError(
        absl::StrCat(has_text ? "prompt" : "prompt_token_ids", ": ", prompt_len,
                     " tokens, but the context (max_model_len) is ", max_model_len,
                     " tokens; the prompt must be shorter"));
  }

  const kitty::v1::SamplingParams& sp = proto.sampling_params();
  SamplingParams& p = r.params;
  if (sp.has_max_tokens()) p.max_tokens = sp.max_tokens();
  if (sp.has_min_tokens()) p.min_tokens = sp.min_tokens();
  if (sp.has_temperature()) p.temperature = sp.temperature();
  if (sp.has_top_p()) p.top_p = sp.top_p();
  if (sp.has_top_k()) p.top_k = sp.top_k();
  if (sp.has_min_p()) p.min_p = sp.min_p();
  if (sp.has_presence_penalty()) p.presence_penalty = sp.presence_penalty();
  if (sp.has_frequency_penalty()) p.frequency_penalty = sp.frequency_penalty();
  if (sp.has_repetition_penalty()) p.repetition_penalty = sp.repetition_penalty();
  if (sp.has_seed()) p.seed = sp.seed();
  p.stop.assign(sp.stop().begin(), sp.stop().end());
  p.stop_token_ids.assign(sp.stop_token_ids().begin(), sp.stop_token_ids().end());
  p.ignore_eos = sp.ignore_eos();
  if (sp.has_n()) p.n = sp.n();
  if (sp.has_logprobs()) p.logprobs = sp.logprobs();
  if (absl::Status s = ValidateSamplingParams(p, vocab); !s.ok()) return s;

  r.priority = proto.priority();
  r.cache_salt = proto.cache_salt();
  r.detokenize = model.tokenizer != nullptr;
  return r;
}

namespace {

// Appends one engine delta to a response (merging by output index).
void AppendOutput(const RequestOutput& out, GenerateResponse* resp) {
  resp->set_request_id(out.request_id);
  for (const CompletionDelta& d : out.outputs) {
    kitty::v1::CompletionOutput* o = nullptr;
    for (auto& existing : *resp->mutable_outputs()) {
      if (existing.index() == d.index) o = &existing;
    }
    if (o == nullptr) {
      o = resp->add_outputs();
      o->set_index(d.index);
    }
    o->mutable_text()->append(d.text);
    for (int32_t id : d.token_ids) o->add_token_ids(id);
    if (!d.finish_reason.empty()) o->set_finish_reason(d.finish_reason);
    for (const SampleResult& lp : d.logprobs) {
      kitty::v1::Logprob* l = o->add_logprobs();
      l->set_token_id(lp.token_id);
      l->set_logprob(lp.logprob);
      for (const TokenLogprob& t : lp.top) {
        kitty::v1::TokenLogprob* tl = l->add_top();
        tl->set_token_id(t.token_id);
        tl->set_logprob(t.logprob);
      }
    }
  }
  if (out.finished) {
    kitty::v1::Usage* u = resp->mutable_usage();
    u->set_prompt_tokens(out.usage.prompt_tokens);
    u->set_completion_tokens(out.usage.completion_tokens);
    u->set_cached_prompt_tokens(out.usage.cached_prompt_tokens);
  }
}

// One Generate call. Lifetime: reference counted; gRPC holds one reference until OnDone, and
// the engine-side notifier takes one for the duration of each notification (through Link, which
// outlives the reactor inside the RequestStream's notifier).
//
// Locking: mu_ guards the write state; it is never held while calling into gRPC (Start*,
// Finish), because gRPC may run reactions such as OnWriteDone inline on the calling thread.
class GenerateReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  GenerateReactor(Engine* engine, bool stream) : engine_(engine), stream_mode_(stream) {}

  // Finishes without ever queuing a request.
  void FinishNow(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      finish_called_ = true;
    }
    Finish(status);
  }

  // Queues `request` in the engine and starts forwarding its outputs.
  void Start(Request request) {
    request_id_ = request.request_id;
    absl::StatusOr<std::shared_ptr<RequestStream>> stream = engine_->AddRequest(std::move(request));
    if (!stream.ok()) {
      FinishNow(ToGrpcStatus(stream.status()));
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      stream_ = *stream;
    }
    link_ = std::make_shared<Link>();
    {
      absl::MutexLock lock(&link_->mu);
      link_->reactor = this;
    }
    std::shared_ptr<Link> link = link_;
    (*stream)->SetNotifier([link] { link->Notify(); });
  }

  void OnWriteDone(bool ok) override {
    bool abort = false;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      if (!ok && !broken_) {
        broken_ = true;
        abort = stream_ != nullptr;
      }
    }
    if (abort) engine_->Abort(request_id_);
    Pump();
  }

  void OnCancel() override {
    bool abort = false;
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      abort = stream_ != nullptr;
    }
    // Non-blocking: the engine releases the pages at its next step.
    if (abort) engine_->Abort(request_id_);
    Pump();
  }

  void OnDone() override {
    if (link_ != nullptr) {
      absl::MutexLock lock(&link_->mu);
      link_->reactor = nullptr;
    }
    Unref();
  }

 private:
  struct Link {
    absl::Mutex mu;
    GenerateReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;

    // Engine thread: must not block (the lock is only held to take a reference).
    void Notify() {
      GenerateReactor* r;
      {
        absl::MutexLock lock(&mu);
        r = reactor;
        if (r == nullptr) return;
        r->Ref();
      }
      r->Pump();
      r->Unref();
    }
  };

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Moves whatever the outbox holds into the next write, if none is in flight.
  void Pump() {
    enum class Action { kNone, kWrite, kWriteAndFinish, kFinishCancelled };
    Action action = Action::kNone;
    {
      absl::MutexLock lock(&mu_);
      if (finish_called_ || write_in_flight_) return;
      if (broken_) {
        action = Action::kFinishCancelled;
        finish_called_ = true;
      } else if (stream_ != nullptr) {
        if (stream_mode_) pending_.Clear();
        bool finished = false;
        bool any = false;
        while (std::optional<RequestOutput> out = stream_->TryPop()) {
          AppendOutput(*out, &pending_);
          any = true;
          if (out->finished) {
            finished = true;
            break;
          }
        }
        if (finished) {
          action = Action::kWriteAndFinish;
          finish_called_ = true;
          write_in_flight_ = true;
        } else if (any && stream_mode_) {
          action = Action::kWrite;
          write_in_flight_ = true;
        }
        if (action != Action::kNone) SerializeResponse(pending_, &pending_bytes_);
      }
    }
    // `pending_bytes_` is only touched again after OnWriteDone, so it is safe to hand out
    // unlocked.
    switch (action) {
      case Action::kNone:
        break;
      case Action::kWrite:
        StartWrite(&pending_bytes_);
        break;
      case Action::kWriteAndFinish:
        StartWriteAndFinish(&pending_bytes_, grpc::WriteOptions(), grpc::Status::OK);
        break;
      case Action::kFinishCancelled:
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled"));
        break;
    }
  }

  Engine* const engine_;
  const bool stream_mode_;
  std::string request_id_;
  std::shared_ptr<Link> link_;
  std::atomic<int> refs_{1};

  absl::Mutex mu_;
  std::shared_ptr<RequestStream> stream_ ABSL_GUARDED_BY(mu_);
  GenerateResponse pending_ ABSL_GUARDED_BY(mu_);  // the message being built (see Pump)
  grpc::ByteBuffer pending_bytes_;                 // pending_ serialized: the write in flight
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // cancelled, past deadline, or a write failed
};

// A raw unary call: `request_bytes` parsed as Req (INVALID_ARGUMENT if they do not parse),
// handle(request, &response) -> status, the response serialized on OK.
template <typename Req, typename Resp, typename Handle>
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request_bytes,
                                      grpc::ByteBuffer* response_bytes, Handle handle) {
  Req request;
  Resp response;
  grpc::Status status = ToGrpcStatus(ParseRequestMessage(*request_bytes, &request));
  if (status.ok()) status = handle(request, &response);
  if (status.ok()) SerializeResponse(response, response_bytes);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

std::string RandomHex() {
  std::random_device rd;
  return absl::StrFormat("%08x", rd());
}

}  // namespace

InferenceService::InferenceService(InferenceServiceOptions options)
    : options_(std::move(options)), id_prefix_(absl::StrCat("req-", RandomHex(), "-")) {}

void InferenceService::SetEngine(Engine* engine) { engine_.store(engine); }

std::string InferenceService::NextRequestId() {
  return absl::StrCat(id_prefix_, next_id_.fetch_add(1, std::memory_order_relaxed));
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes) {
  Engine* engine = engine_.load();
  GenerateRequest request;
  const absl::Status parsed = ParseRequestMessage(*request_bytes, &request);
  auto* reactor = new GenerateReactor(engine, request.stream());
  if (!parsed.ok()) {
    reactor->FinishNow(ToGrpcStatus(parsed));
    return reactor;
  }
  if (engine == nullptr) {
    reactor->FinishNow(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is loading"));
    return reactor;
  }
  if (engine->draining()) {
    reactor->FinishNow(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is draining"));
    return reactor;
  }
  absl::StatusOr<Request> r = ToEngineRequest(request, engine->model(),
                                              engine->cache_info().max_model_len, NextRequestId());
  if (!r.ok()) {
    reactor->FinishNow(ToGrpcStatus(r.status()));
    return reactor;
  }
  reactor->Start(*std::move(r));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request_bytes,
                                                     grpc::ByteBuffer* response_bytes) {
  return FinishUnary<kitty::v1::TokenizeRequest, kitty::v1::TokenizeResponse>(
      context, request_bytes, response_bytes,
      [this](const kitty::v1::TokenizeRequest& request, kitty::v1::TokenizeResponse* response) {
        Engine* engine = engine_.load();
        if (engine == nullptr) {
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is loading");
        }
        const models::LoadedModel& model = engine->model();
        if (model.tokenizer == nullptr) {
          return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              "the model has no tokenizer.json");
        }
        for (int32_t id : model.tokenizer->Encode(request.text(), request.add_special_tokens())) {
          response->add_token_ids(id);
        }
        return grpc::Status::OK;
      });
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request_bytes,
                                                         grpc::ByteBuffer* response_bytes) {
  return FinishUnary<kitty::v1::GetModelInfoRequest, kitty::v1::GetModelInfoResponse>(
      context, request_bytes, response_bytes,
      [this](const kitty::v1::GetModelInfoRequest&, kitty::v1::GetModelInfoResponse* response) {
        Engine* engine = engine_.load();
        if (engine == nullptr) {
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is loading");
        }
        const models::LoadedModel& model = engine->model();
        const CacheInfo& cache = engine->cache_info();
        response->set_model_name(options_.served_model_name);
        response->set_architecture(model.config.architecture);
        response->set_context_length(cache.max_model_len);
        response->set_vocab_size(model.config.vocab_size);
        response->set_kv_cache_dtype(cache.kv_cache_dtype);
        response->set_page_size(cache.page_tokens);
        response->set_kv_capacity_tokens(cache.capacity_tokens);
        response->set_max_num_seqs(options_.max_num_seqs);
        return grpc::Status::OK;
      });
}

}  // namespace kitty::runtime
