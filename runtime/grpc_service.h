// File: runtime/grpc_service.h
// -----------------------------------------------------------------------------
// The kitty.v1.Inference gRPC service (proto/kitty/v1/inference.proto) over the Engine, on the
// gRPC callback API (STYLE.md §4), as raw methods: requests arrive as bytes and are parsed by
// grpc_messages.h, because the typed callback API answers an unparsable request (a string
// field that is not UTF-8, a truncated message) with UNIMPLEMENTED and no message.
//
//   Generate: one ServerWriteReactor per call. The constructor validates the request and
//   queues it (Engine::AddRequest); the engine thread's notifier and OnWriteDone both "pump"
//   the request's outbox (RequestStream::TryPop) into StartWrite, one write in flight at a
//   time; the final output goes out with StartWriteAndFinish. Nothing in a reaction blocks.
//   Client cancellation and deadlines (OnCancel) call Engine::Abort, which releases the
//   request's pages at the next engine step. With `stream` false the reactor merges every
//   delta and writes exactly one response.
//
// Status codes: validation, an unparsable request → INVALID_ARGUMENT naming the field; full queue →
// RESOURCE_EXHAUSTED; model loading or draining → UNAVAILABLE; duplicate live request_id →
// ALREADY_EXISTS (absl codes equal gRPC codes).
//
// Thread safety: the service is thread-safe; SetEngine() publishes the engine once loaded.
#ifndef KITTY_RUNTIME_GRPC_SERVICE_H_
#define KITTY_RUNTIME_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kitty/v1/inference.grpc.pb.h"
#include "runtime/engine.h"

namespace kitty::runtime {

struct InferenceServiceOptions {
  std::string served_model_name;
  int32_t max_num_seqs = 0;  // reported by GetModelInfo
};

using RawInferenceService = kitty::v1::Inference::WithRawCallbackMethod_Generate<
    kitty::v1::Inference::WithRawCallbackMethod_Tokenize<
        kitty::v1::Inference::WithRawCallbackMethod_GetModelInfo<kitty::v1::Inference::Service>>>;

class InferenceService final : public RawInferenceService {
 public:
  explicit InferenceService(InferenceServiceOptions options);

  // Publishes the loaded engine; until then every RPC is UNAVAILABLE. `engine` must outlive
  // the gRPC server (shut the server down before destroying it).
  void SetEngine(Engine* engine);

  // Requests are serialized kitty.v1.GenerateRequest / TokenizeRequest / GetModelInfoRequest,
  // responses serialized GenerateResponse / TokenizeResponse / GetModelInfoResponse.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

 private:
  std::string NextRequestId();

  const InferenceServiceOptions options_;
  std::atomic<Engine*> engine_{nullptr};
  std::atomic<uint64_t> next_id_{0};
  const std::string id_prefix_;
};

// Converts and validates a GenerateRequest against the model (exposed for tests). Errors are
// InvalidArgument naming the field: neither or both of prompt/prompt_token_ids, an empty
// prompt, a token id outside the vocabulary, a prompt of max_model_len tokens or more, bad
// sampling parameters. `request_id` is used when the request carries none.
absl::StatusOr<Request> ToEngineRequest(const kitty::v1::GenerateRequest& proto,
                                        const models::LoadedModel& model, int32_t max_model_len,
                                        std::string request_id);

// absl → gRPC status (the codes are numerically equal).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_GRPC_SERVICE_H_
