// kitty-serve: the gRPC server (DESIGN.md §6).
//
//   kitty-serve --model DIR --port 50051 --http-port 8000
//
// Serves kitty.v1.Inference, grpc.health.v1.Health ("" and "kitty.v1.Inference") and server
// reflection on --host:--port, and /metrics (Prometheus text format) and /health on
// --host:--http-port. Both listeners come up first, NOT_SERVING / 503 while the model loads;
// then SERVING / 200. SIGTERM or SIGINT drains: health goes NOT_SERVING, new requests get
// UNAVAILABLE, in-flight ones finish (at most --drain-timeout-s, then they are aborted), and
// the process exits 0. Engine and cache flags: runtime/engine_flags.h.
#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/cache_flags.h"
#include "runtime/cli_util.h"
#include "runtime/engine.h"
#include "runtime/engine_flags.h"
#include "runtime/engine_metrics.h"
#include "runtime/grpc_service.h"
#include "runtime/http_server.h"
#include "runtime/metrics.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on (gRPC and HTTP)");
ABSL_FLAG(int, port, 50051, "gRPC port");
ABSL_FLAG(int, http_port, 8000, "HTTP port for /metrics and /health (0: off)");
ABSL_FLAG(std::string, served_model_name, "",
          "Model name in GetModelInfo and the model_name metric label (default: --model)");
ABSL_FLAG(double, drain_timeout_s, 30.0,
          "On SIGTERM, how long in-flight requests may run before they are aborted");
ABSL_FLAG(std::string, log_level, "info", "spdlog level: trace, debug, info, warn, error");

namespace kitty::runtime {
namespace {

constexpr char kTool[] = "kitty-serve";
constexpr char kServiceName[] = "kitty.v1.Inference";

std::string HostPort(const std::string& host, int port) {
  // IPv6 literals need brackets in a gRPC address.
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

int g_signal_pipe[2] = {-1, -1};

extern "C" void OnStopSignal(int sig) {
  const int saved_errno = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  (void)!::write(g_signal_pipe[1], &b, 1);  // async-signal-safe; a full pipe drops a repeat
  errno = saved_errno;
}

absl::Status InstallSignalPipe() {
  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (const int sig : {SIGTERM, SIGINT}) {
    if (::sigaction(sig, &sa, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("sigaction: ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// The next SIGTERM / SIGINT received (its number), waiting up to `timeout_ms` (-1: forever);
// 0 if none came.
int NextSignal(int timeout_ms) {
  pollfd p = {g_signal_pipe[0], POLLIN, 0};
  while (true) {
    const int n = ::poll(&p, 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    unsigned char b = 0;
    if (::read(g_signal_pipe[0], &b, 1) == 1) return b;
    if (timeout_ms >= 0) return 0;
  }
}

// The serve-only flags that no server can run with (the engine checks its own).
absl::Status ValidateServeFlags() {
  for (const auto& [flag, port] : {std::pair<const char*, int>{"--port", absl::GetFlag(FLAGS_port)},
                                   {"--http-port", absl::GetFlag(FLAGS_http_port)}}) {
    if (port < 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " must be in [0, 65535], got ", port));
    }
  }
  const double drain = absl::GetFlag(FLAGS_drain_timeout_s);
  if (!(drain >= 0) || !std::isfinite(drain)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--drain-timeout-s must be a finite number of seconds >= 0, got ", drain));
  }
  const std::string level = absl::GetFlag(FLAGS_log_level);
  // spdlog maps unknown names to "off": a typo would silence the server.
  if (spdlog::level::from_str(level) == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-level must be trace, debug, info, warn, error, critical or off, got \"",
                     level, "\""));
  }
  return absl::OkStatus();
}

int Main() {
  if (absl::Status s = ValidateServeFlags(); !s.ok()) DieWithStatus(kTool, s);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l kitty-serve %v");
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  const std::string model_arg = absl::GetFlag(FLAGS_model);
  std::string served_name = absl::GetFlag(FLAGS_served_model_name);
  if (served_name.empty()) served_name = model_arg;

  const EngineConfig config = EngineConfigFromFlags();
  if (absl::Status s = ValidateEngineConfig(config); !s.ok()) DieWithStatus(kTool, s);
  const absl::Duration drain_timeout = absl::Seconds(absl::GetFlag(FLAGS_drain_timeout_s));

  // ---- listeners first, not serving until the model is loaded ----
  const std::string host = absl::GetFlag(FLAGS_host);
  InferenceService service(InferenceServiceOptions{.served_model_name = served_name,
                                                   .max_num_seqs = config.max_num_seqs});
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second server on a busy port would start and take
  // half of its connections. A busy port must be an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int grpc_port = 0;
  builder.AddListeningPort(HostPort(host, absl::GetFlag(FLAGS_port)),
                           grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    DieWithStatus(kTool,
                  absl::UnavailableError(absl::StrCat(
                      "cannot listen on ", HostPort(host, absl::GetFlag(FLAGS_port)),
                      " (the port is in use, or the host is not an address of this machine)")));
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  auto set_serving = [&](bool serving) {
    health->SetServingStatus("", serving);
    health->SetServingStatus(kServiceName, serving);
  };
  set_serving(false);

  std::atomic<bool> ready{false};
  MetricsRegistry registry;
  HttpServer http;
  http.Handle("/metrics", [&registry] {
    return HttpServer::Response{200, MetricsRegistry::kContentType, registry.Serialize()};
  });
  http.Handle("/health", [&ready] {
    return ready.load() ? HttpServer::Response{200, "text/plain; charset=utf-8", "ok\n"}
                        : HttpServer::Response{503, "text/plain; charset=utf-8", "not ready\n"};
  });
  if (absl::GetFlag(FLAGS_http_port) > 0) {
    if (absl::Status s = http.Start(host, absl::GetFlag(FLAGS_http_port)); !s.ok()) {
      DieWithStatus(kTool, s);
    }
  }
  spdlog::info("listening grpc={} http={} (not serving until the model is loaded)",
               HostPort(host, grpc_port), http.port());

  // ---- model and engine ----
  const absl::Time load_start = absl::Now();
  absl::StatusOr<models::LoadedModel> loaded = models::LoadModel(model_arg, LoadOptionsFromFlags());
  if (!loaded.ok()) DieWithStatus(kTool, loaded.status());
  auto model = std::make_shared<models::LoadedModel>(*std::move(loaded));
  absl::StatusOr<std::unique_ptr<Engine>> engine_or = Engine::Create(config, model);
  if (!engine_or.ok()) DieWithStatus(kTool, engine_or.status());
  std::unique_ptr<Engine> engine = *std::move(engine_or);
  const CacheInfo& cache = engine->cache_info();

  CacheConfigLabels labels;
  labels.cache_dtype = cache.kv_cache_dtype;
  labels.block_size = cache.page_tokens;
  labels.num_gpu_blocks = cache.num_k_pages;
  labels.enable_prefix_caching = config.enable_prefix_caching;
  labels.gpu_memory_utilization = config.gpu_memory_utilization;
  labels.sink_tokens = cache.sink_tokens;
  labels.boost_channels = cache.boost_channels;
  labels.kv_cache_bytes = cache.kv_cache_bytes;
  EngineMetrics metrics(&registry, served_name, cache.max_model_len, labels);
  RequestLogObserver request_log;
  engine->AddObserver(&metrics);
  engine->AddObserver(&request_log);
  metrics.Attach(engine.get());

  // From here on SIGTERM / SIGINT only write their number to a pipe that this thread reads, and
  // drain; while the model loads they keep their default action (nothing to drain: the process
  // ends at once). Blocking them and sigwait()ing was not enough: a thread started before main,
  // e.g. OpenBLAS's pool, keeps them unblocked, and a signal arriving while this thread was not
  // in sigwait killed the process.
  if (absl::Status s = InstallSignalPipe(); !s.ok()) DieWithStatus(kTool, s);
  service.SetEngine(engine.get());
  ready.store(true);
  set_serving(true);
  spdlog::info(
      "serving model={} name={} load_s={:.2f} kv_cache_dtype={} page_tokens={} k_pages={} "
      "v_pages={} seq_slots={} kv_cache_bytes={} capacity_tokens={} max_model_len={}",
      model_arg, served_name, absl::ToDoubleSeconds(absl::Now() - load_start), cache.kv_cache_dtype,
      cache.page_tokens, cache.num_k_pages, cache.num_v_pages, cache.num_seq_slots,
      cache.kv_cache_bytes, cache.capacity_tokens, cache.max_model_len);

  // ---- wait for SIGTERM / SIGINT, then drain ----
  const int sig = NextSignal(-1);
  spdlog::info("signal={} draining (timeout {}s)", sig, absl::ToDoubleSeconds(drain_timeout));
  ready.store(false);
  set_serving(false);
  engine->StartDrain();
  // Until idle or the timeout; a second SIGTERM / SIGINT stops waiting (as vLLM's second
  // Ctrl-C), aborting what still runs.
  const absl::Time drain_deadline = absl::Now() + drain_timeout;
  bool idle = false, again = false;
  auto slice = [&] {  // at most 100 ms, never past the deadline
    return std::min(absl::Milliseconds(100),
                    std::max(absl::ZeroDuration(), drain_deadline - absl::Now()));
  };
  while (!(idle = engine->WaitIdle(slice())) && absl::Now() < drain_deadline) {
    if (NextSignal(0) != 0) {
      again = true;
      break;
    }
  }
  if (again) {
    spdlog::warn("second signal: aborting the requests still running");
  } else if (!idle) {
    spdlog::warn("drain timeout: aborting the requests still running");
  }
  engine->Stop();  // aborts what is left; their streams get finish_reason "abort"
  // In-flight RPCs now only have their last message to write; give them a moment.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server.reset();  // every reactor is done before the engine goes
  http.Stop();
  spdlog::info("stopped drained={}", idle);
  return 0;
}

}  // namespace
}  // namespace kitty::runtime

int main(int argc, char** argv) {
  kitty::runtime::ParseFlagsOrDie(
      argc, argv,
      "kitty-serve --model DIR|builtin:tiny [--host 0.0.0.0] [--port 50051] [--http-port 8000]");
  return kitty::runtime::Main();
}
