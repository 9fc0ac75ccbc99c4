// kitty-cli: a command-line client of kitty-serve (DESIGN.md §6).
//
//   kitty-cli [--server host:port] generate --prompt TEXT [--max-tokens N] [--temperature T]
//             [--json] [--stream=false]
//   kitty-cli tokenize --text TEXT [--add-special-tokens]
//   kitty-cli info
//   kitty-cli health [--service kitty.v1.Inference]
//
// generate streams the text to stdout as it arrives (with --n > 1, each output as one block
// "--- output I ---" once it finishes); with --json it prints each GenerateResponse as one JSON
// line (proto field names). Every gRPC error ends the program with one line
// "kitty-cli: <CODE>: <message>" on stderr and exit status 2 for INVALID_ARGUMENT, 1
// otherwise; so does bad input caught before the call (exit 2). A generation the server
// aborted (finish_reason "abort") prints what arrived, then a note on stderr, and exits 1.
// health prints SERVING / NOT_SERVING / ... and exits 0 only when SERVING.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kitty/v1/inference.grpc.pb.h"
#include "runtime/cli_util.h"

ABSL_FLAG(std::string, server, "localhost:50051", "kitty-serve gRPC address host:port");
ABSL_FLAG(double, timeout_s, 0, "Deadline of the call in seconds (0, or more than 1e9: none)");
// generate
ABSL_FLAG(std::string, prompt, "", "generate: prompt text");
ABSL_FLAG(std::string, prompt_token_ids, "", "generate: prompt as comma-separated token ids");
ABSL_FLAG(std::string, request_id, "", "generate: request id (default: assigned by the server)");
ABSL_FLAG(int, max_tokens, 16, "generate: maximum number of tokens to generate");
ABSL_FLAG(int, min_tokens, 0, "generate: minimum number of tokens before a stop");
ABSL_FLAG(double, temperature, 1.0, "generate: sampling temperature (0 = greedy)");
ABSL_FLAG(double, top_p, 1.0, "generate: nucleus sampling mass");
ABSL_FLAG(int, top_k, 0, "generate: top-k (0 = off)");
ABSL_FLAG(double, min_p, 0.0, "generate: min-p");
ABSL_FLAG(int64_t, seed, -1, "generate: sampling seed >= 0 (-1: none)");
ABSL_FLAG(std::vector<std::string>, stop, {}, "generate: stop strings (comma-separated)");
ABSL_FLAG(std::string, stop_token_ids, "", "generate: comma-separated stop token ids");
ABSL_FLAG(bool, ignore_eos, false, "generate: keep generating after end-of-sequence");
ABSL_FLAG(double, presence_penalty, 0.0, "generate: presence penalty");
ABSL_FLAG(double, frequency_penalty, 0.0, "generate: frequency penalty");
ABSL_FLAG(double, repetition_penalty, 1.0, "generate: repetition penalty");
ABSL_FLAG(int, n, 1, "generate: number of outputs");
ABSL_FLAG(int, logprobs, 0, "generate: top-N logprobs per token");
ABSL_FLAG(int, priority, 0, "generate: priority (lower runs first)");
ABSL_FLAG(std::string, cache_salt, "", "generate: prefix-cache isolation salt");
ABSL_FLAG(bool, stream, true, "generate: stream deltas (false: one response)");
ABSL_FLAG(bool, json, false, "Print responses as JSON lines");
// tokenize
ABSL_FLAG(std::string, text, "", "tokenize: text");
ABSL_FLAG(bool, add_special_tokens, true, "tokenize: add BOS etc.");
// health
ABSL_FLAG(std::string, service, "", "health: service name (\"\" = the whole server)");

namespace kitty::runtime {
namespace {

constexpr char kTool[] = "kitty-cli";
constexpr char kUsage[] =
    "kitty-cli [--server host:port] generate|tokenize|info|health [flags]\n"
    "  generate --prompt TEXT | --prompt-token-ids 1,2,3 [--max-tokens N] [--temperature T]"
    " [--json] [--stream=false]\n"
    "  tokenize --text TEXT [--add-special-tokens=false]\n"
    "  info\n"
    "  health [--service kitty.v1.Inference]";

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::UNKNOWN:
      return "UNKNOWN";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::ABORTED:
      return "ABORTED";
    case grpc::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

[[noreturn]] void DieWithGrpcStatus(const grpc::Status& s) {
  DieWithStatus(kTool,
                absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                             absl::StrCat(CodeName(s.error_code()), ": ", s.error_message())));
}

// Longer than this is no deadline (1e9 s is about 32 years; t * 1e6 microseconds overflowed
// int64 for 1e300 and the call failed at once with DEADLINE_EXCEEDED).
constexpr double kMaxTimeoutS = 1e9;

absl::Status CheckTimeout(double t) {
  if (!std::isfinite(t) || t < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout-s must be a number of seconds >= 0 (0: none), got ", t));
  }
  return absl::OkStatus();
}

void SetDeadline(grpc::ClientContext* ctx) {
  const double t = absl::GetFlag(FLAGS_timeout_s);
  if (t > 0 && t <= kMaxTimeoutS) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::microseconds(static_cast<int64_t>(t * 1e6)));
  }
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

int Generate(kitty::v1::Inference::Stub& stub) {
  kitty::v1::GenerateRequest req;
  req.set_request_id(absl::GetFlag(FLAGS_request_id));
  const std::string prompt = absl::GetFlag(FLAGS_prompt);
  const std::string ids = absl::GetFlag(FLAGS_prompt_token_ids);
  // Proto string fields must be UTF-8: the server cannot parse the request otherwise and gRPC
  // answers UNIMPLEMENTED with no message.
  for (const auto& [value, flag] : {std::pair{prompt, "--prompt"},
                                    {absl::GetFlag(FLAGS_request_id), "--request-id"},
                                    {absl::GetFlag(FLAGS_cache_salt), "--cache-salt"}}) {
    if (absl::Status s = CheckUtf8(value, flag); !s.ok()) DieWithStatus(kTool, s);
  }
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) {
    if (absl::Status s = CheckUtf8(stop, "--stop"); !s.ok()) DieWithStatus(kTool, s);
  }
  const int64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed < -1) {  // used to mean "no seed" silently
    DieWithStatus(kTool, absl::InvalidArgumentError(
                             absl::StrCat("--seed must be >= 0, or -1 for no seed; got ", seed)));
  }
  if (!ids.empty()) {
    absl::StatusOr<std::vector<int32_t>> parsed = ParseTokenIds(ids, "--prompt-token-ids");
    if (!parsed.ok()) DieWithStatus(kTool, parsed.status());
    for (int32_t id : *parsed) req.add_prompt_token_ids(id);
  }
  if (!prompt.empty()) req.set_prompt(prompt);
  kitty::v1::SamplingParams* sp = req.mutable_sampling_params();
  sp->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  sp->set_min_tokens(absl::GetFlag(FLAGS_min_tokens));
  sp->set_temperature(static_cast<float>(absl::GetFlag(FLAGS_temperature)));
  sp->set_top_p(static_cast<float>(absl::GetFlag(FLAGS_top_p)));
  sp->set_top_k(absl::GetFlag(FLAGS_top_k));
  sp->set_min_p(static_cast<float>(absl::GetFlag(FLAGS_min_p)));
  if (seed >= 0) sp->set_seed(static_cast<uint64_t>(seed));
  for (const std::string& s : absl::GetFlag(FLAGS_stop)) sp->add_stop(s);
  if (const std::string stop_ids = absl::GetFlag(FLAGS_stop_token_ids); !stop_ids.empty()) {
    absl::StatusOr<std::vector<int32_t>> parsed = ParseTokenIds(stop_ids, "--stop-token-ids");
    if (!parsed.ok()) DieWithStatus(kTool, parsed.status());
    for (int32_t id : *parsed) sp->add_stop_token_ids(id);
  }
  sp->set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));
  sp->set_presence_penalty(static_cast<float>(absl::GetFlag(FLAGS_presence_penalty)));
  sp->set_frequency_penalty(static_cast<float>(absl::GetFlag(FLAGS_frequency_penalty)));
  sp->set_repetition_penalty(static_cast<float>(absl::GetFlag(FLAGS_repetition_penalty)));
  sp->set_n(absl::GetFlag(FLAGS_n));
  sp->set_logprobs(absl::GetFlag(FLAGS_logprobs));
  req.set_priority(absl::GetFlag(FLAGS_priority));
  req.set_cache_salt(absl::GetFlag(FLAGS_cache_salt));
  req.set_stream(absl::GetFlag(FLAGS_stream));

  const bool json = absl::GetFlag(FLAGS_json);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  std::unique_ptr<grpc::ClientReader<kitty::v1::GenerateResponse>> reader =
      stub.Generate(&ctx, req);
  // Plain text with n > 1: each output is kept until it finishes, then printed as one block
  // under a header (streaming them as they came interleaved the outputs token by token).
  const bool blocks = !json && absl::GetFlag(FLAGS_n) > 1;
  struct Output {
    std::string text;
    int tokens = 0;
    std::string finish_reason;
  };
  std::map<int, Output> outputs;
  auto print_block = [](int index, const Output& o) {
    std::printf("--- output %d ---\n%s\n", index, o.text.c_str());
  };
  kitty::v1::GenerateResponse resp;
  bool wrote_text = false;
  while (reader->Read(&resp)) {
    for (const auto& o : resp.outputs()) {
      Output& out = outputs[o.index()];
      out.tokens += o.token_ids_size();
      if (!o.finish_reason().empty()) out.finish_reason = o.finish_reason();
      if (blocks) {
        out.text += o.text();
        if (!o.finish_reason().empty()) print_block(o.index(), out);
      } else if (!json) {
        std::fwrite(o.text().data(), 1, o.text().size(), stdout);
        wrote_text = wrote_text || !o.text().empty();
      }
    }
    if (json) std::printf("%s\n", ToJson(resp).c_str());
    std::fflush(stdout);
  }
  if (blocks) {  // outputs cut off without a finish reason (the call failed)
    for (const auto& [index, o] : outputs) {
      if (o.finish_reason.empty()) print_block(index, o);
    }
  }
  if (!json && !blocks && wrote_text) std::printf("\n");
  std::fflush(stdout);
  grpc::Status status = reader->Finish();
  if (!status.ok()) DieWithGrpcStatus(status);
  // The server cut the generation short (its drain timed out, or it ran out of KV memory): the
  // text above is truncated, so say so and fail.
  std::vector<std::string> aborted;
  int aborted_tokens = 0;
  for (const auto& [index, o] : outputs) {
    if (o.finish_reason != "abort") continue;
    aborted.push_back(absl::StrCat(index));
    aborted_tokens += o.tokens;
  }
  if (!aborted.empty()) {
    std::fprintf(
        stderr, "%s: generation aborted by the server after %d tokens%s\n", kTool, aborted_tokens,
        outputs.size() > 1 ? absl::StrCat(" (output ", absl::StrJoin(aborted, ", "), ")").c_str()
                           : "");
    return 1;
  }
  return 0;
}

int Tokenize(kitty::v1::Inference::Stub& stub) {
  if (absl::Status s = CheckUtf8(absl::GetFlag(FLAGS_text), "--text"); !s.ok()) {
    DieWithStatus(kTool, s);
  }
  kitty::v1::TokenizeRequest req;
  req.set_text(absl::GetFlag(FLAGS_text));
  req.set_add_special_tokens(absl::GetFlag(FLAGS_add_special_tokens));
  kitty::v1::TokenizeResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status status = stub.Tokenize(&ctx, req, &resp);
  if (!status.ok()) DieWithGrpcStatus(status);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", ToJson(resp).c_str());
  } else {
    std::string line;
    for (int i = 0; i < resp.token_ids_size(); ++i) {
      absl::StrAppend(&line, i ? "," : "", resp.token_ids(i));
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

int Info(kitty::v1::Inference::Stub& stub) {
  kitty::v1::GetModelInfoResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status status = stub.GetModelInfo(&ctx, kitty::v1::GetModelInfoRequest(), &resp);
  if (!status.ok()) DieWithGrpcStatus(status);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", ToJson(resp).c_str());
  } else {
    std::printf(
        "model_name: %s\narchitecture: %s\ncontext_length: %d\nvocab_size: %d\n"
        "kv_cache_dtype: %s\npage_size: %d\nkv_capacity_tokens: %lld\nmax_num_seqs: %d\n",
        resp.model_name().c_str(), resp.architecture().c_str(), resp.context_length(),
        resp.vocab_size(), resp.kv_cache_dtype().c_str(), resp.page_size(),
        static_cast<long long>(resp.kv_capacity_tokens()), resp.max_num_seqs());
  }
  return 0;
}

// grpc.health.v1.Health/Check through the generic stub: the two messages are one field each
// (HealthCheckRequest.service = 1, HealthCheckResponse.status = 1), so they are encoded here
// rather than generating the health proto.
int Health(const std::shared_ptr<grpc::Channel>& channel) {
  static const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  const std::string service = absl::GetFlag(FLAGS_service);
  if (absl::Status s = CheckUtf8(service, "--service"); !s.ok()) DieWithStatus(kTool, s);
  std::string wire;
  if (!service.empty()) {
    wire.push_back(0x0a);
    size_t len = service.size();
    do {
      wire.push_back(static_cast<char>((len & 0x7f) | (len > 0x7f ? 0x80 : 0)));
      len >>= 7;
    } while (len != 0);
    wire += service;
  }
  grpc::Slice slice(wire);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) DieWithGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  (void)response.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  int value = 0;  // proto3 default: UNKNOWN
  if (bytes.size() >= 2 && bytes[0] == 0x08) value = static_cast<unsigned char>(bytes[1]) & 0x7f;
  const char* name = value >= 0 && value < 4 ? kNames[value] : "UNKNOWN";
  std::printf("%s\n", name);
  return value == 1 ? 0 : 1;
}

int Main(const std::string& command) {
  if (absl::Status s = CheckTimeout(absl::GetFlag(FLAGS_timeout_s)); !s.ok()) {
    DieWithStatus(kTool, s);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(), args);
  if (command == "health") return Health(channel);
  kitty::v1::Inference::Stub stub(channel);
  if (command == "generate") return Generate(stub);
  if (command == "tokenize") return Tokenize(stub);
  if (command == "info") return Info(stub);
  std::fprintf(stderr, "%s: unknown command \"%s\"\n%s\n", kTool, command.c_str(), kUsage);
  return 2;
}

}  // namespace
}  // namespace kitty::runtime

int main(int argc, char** argv) {
  // The command is the first argument that is not a flag; the rest are flags.
  static const char* kCommands[] = {"generate", "tokenize", "info", "health"};
  std::string command;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    bool is_command = false;
    if (i > 0 && command.empty()) {
      for (const char* c : kCommands) is_command = is_command || std::string(argv[i]) == c;
    }
    if (is_command) {
      command = argv[i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  kitty::runtime::ParseFlagsOrDie(static_cast<int>(rest.size()), rest.data(),
                                  kitty::runtime::kUsage);
  if (command.empty()) {
    std::fprintf(stderr, "kitty-cli: missing command\n%s\n", kitty::runtime::kUsage);
    return 2;
  }
  return kitty::runtime::Main(command);
}
