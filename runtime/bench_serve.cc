#include "runtime/bench_serve.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "kitty/v1/inference.grpc.pb.h"

namespace kitty::runtime {
namespace {

using Clock = std::chrono::steady_clock;

Percentiles Summarize(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / v.size();
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  return p;
}

struct Sample {
  bool ok = false;
  std::string error;
  int prompt_tokens = 0, output_tokens = 0;
  double ttft = 0, e2e = 0;
  std::vector<double> itl;
};

Sample OneRequest(v1::Inference::Stub& stub, const std::vector<int32_t>& prompt, int max_tokens,
                  double timeout_s) {
  Sample s;
  s.prompt_tokens = static_cast<int>(prompt.size());
  v1::GenerateRequest req;
  for (int32_t t : prompt) req.add_prompt_token_ids(t);
  req.set_stream(true);
  req.mutable_sampling_params()->set_max_tokens(max_tokens);
  req.mutable_sampling_params()->set_ignore_eos(true);
  req.mutable_sampling_params()->set_temperature(0);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  const auto t0 = Clock::now();
  auto last = t0;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub.Generate(&ctx, req);
  v1::GenerateResponse resp;
  while (reader->Read(&resp)) {
    int n = 0;
    for (const auto& o : resp.outputs()) n += o.token_ids_size();
    if (n == 0) continue;
    const auto now = Clock::now();
    const double gap = std::chrono::duration<double>(now - last).count();
    if (s.output_tokens == 0) {
      s.ttft = std::chrono::duration<double>(now - t0).count();
      // Tokens after the first that arrived in the same message share the gap (0).
      for (int i = 1; i < n; ++i) s.itl.push_back(0);
    } else {
      // A message carrying n tokens spreads its gap over them (vLLM does the same).
      for (int i = 0; i < n; ++i) s.itl.push_back(gap / n);
    }
    s.output_tokens += n;
    last = now;
  }
  const grpc::Status st = reader->Finish();
  s.e2e = std::chrono::duration<double>(Clock::now() - t0).count();
  s.ok = st.ok();
  if (!st.ok()) {
    s.error = absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(st.error_code())),
                           ": ", st.error_message());
  }
  return s;
}

}  // namespace

absl::StatusOr<ServeBenchResult> RunServeBench(const ServeBenchOptions& o) {
  // --max-concurrency 0 waited forever for room; --num-prompts -1 threw std::length_error;
  // lengths of 0 were silently raised to 1.
  if (o.max_concurrency < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-concurrency must be >= 1, got ", o.max_concurrency));
  }
  if (o.num_prompts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--num-prompts must be >= 1 for serve, got ", o.num_prompts));
  }
  if (o.input_len < 1 || o.output_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--input-len and --output-len must be >= 1, got ", o.input_len, " and ", o.output_len));
  }
  auto channel = grpc::CreateChannel(o.server, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", o.server));
  }
  auto stub = v1::Inference::NewStub(channel);
  int vocab = o.vocab_size;
  if (vocab <= 0) {
    grpc::ClientContext ctx;
    v1::GetModelInfoResponse info;
    const grpc::Status st = stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
    if (!st.ok()) return absl::UnavailableError(absl::StrCat("GetModelInfo: ", st.error_message()));
    vocab = info.vocab_size();
  }
  std::mt19937_64 rng(o.seed);
  auto length = [&](int base) {
    const int lo = std::max(1, static_cast<int>(base * (1 - o.range_ratio)));
    const int hi = std::max(lo, static_cast<int>(base * (1 + o.range_ratio)));
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  std::uniform_int_distribution<int32_t> tok(10, std::max(11, vocab - 1));
  std::vector<std::vector<int32_t>> prompts(o.num_prompts);
  std::vector<int> outputs(o.num_prompts);
  for (int i = 0; i < o.num_prompts; ++i) {
    prompts[i].resize(length(o.input_len));
    for (int32_t& t : prompts[i]) t = tok(rng);
    outputs[i] = length(o.output_len);
  }
  // Arrival offsets: Poisson (exponential gaps) at request_rate, else all at t=0.
  std::vector<double> arrival(o.num_prompts, 0.0);
  if (o.request_rate > 0) {
    std::exponential_distribution<double> gap(o.request_rate);
    double t = 0;
    for (double& a : arrival) a = (t += gap(rng));
  }

  absl::Mutex mu;
  std::vector<Sample> samples(o.num_prompts);
  int in_flight = 0, done = 0;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.num_prompts; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(arrival[i])));
    {
      absl::MutexLock lock(&mu);
      auto has_room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return in_flight < o.max_concurrency;
      };
      mu.Await(absl::Condition(&has_room));
      ++in_flight;
    }
    threads.emplace_back([&, i] {
      Sample s = OneRequest(*stub, prompts[i], outputs[i], o.timeout_s);
      absl::MutexLock lock(&mu);
      samples[i] = std::move(s);
      --in_flight;
      ++done;
      std::fprintf(stderr, "\rkitty-bench serve: %d/%d requests", done, o.num_prompts);
    });
  }
  for (std::thread& t : threads) t.join();
  std::fprintf(stderr, "\n");
  ServeBenchResult r;
  r.request_rate = o.request_rate;
  r.duration_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t out_tokens = 0, in_tokens = 0;
  for (const Sample& s : samples) {
    if (!s.ok) {
      ++r.errors;
      if (r.error_samples.size() < 5) r.error_samples.push_back(s.error);
      continue;
    }
    ++r.completed;
    out_tokens += s.output_tokens;
    in_tokens += s.prompt_tokens;
    ttft.push_back(s.ttft);
    e2e.push_back(s.e2e);
    if (s.output_tokens > 1) tpot.push_back((s.e2e - s.ttft) / (s.output_tokens - 1));
    itl.insert(itl.end(), s.itl.begin(), s.itl.end());
  }
  r.request_throughput = r.completed / r.duration_s;
  r.output_throughput = out_tokens / r.duration_s;
  r.total_throughput = (out_tokens + in_tokens) / r.duration_s;
  r.ttft_s = Summarize(ttft);
  r.tpot_s = Summarize(tpot);
  r.itl_s = Summarize(itl);
  r.e2e_s = Summarize(e2e);
  return r;
}

}  // namespace kitty::runtime
