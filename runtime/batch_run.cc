#include "runtime/batch_run.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace kitty::runtime {
namespace {

// Whether the JSON integer `v` fits T (nlohmann's get<T>() would wrap it silently).
template <typename T>
bool FitsIn(const nlohmann::json& v) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= kMax;
  const int64_t x = v.get<int64_t>();
  if (x >= 0) return static_cast<uint64_t>(x) <= kMax;
  return std::is_signed_v<T> && x >= static_cast<int64_t>(std::numeric_limits<T>::min());
}

template <typename T>
absl::Status Read(const nlohmann::json& j, const char* key, int line, T* out) {
  if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
  const nlohmann::json& v = j[key];
  bool ok;
  if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean();
  } else if constexpr (std::is_integral_v<T>) {
    ok = v.is_number_integer();
  } else if constexpr (std::is_floating_point_v<T>) {
    ok = v.is_number();
  } else if constexpr (std::is_same_v<T, std::string>) {
    ok = v.is_string();
  } else {
    ok = v.is_array();
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line, ": \"", key, "\" has the wrong type"));
  }
  auto out_of_range = [&](const nlohmann::json& x, auto limits) {
    using L = decltype(limits);
    return absl::InvalidArgumentError(absl::StrCat("line ", line, ": \"", key, "\": ", x.dump(),
                                                   " is out of range (", L::min(), "..", L::max(),
                                                   ")"));
  };
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!FitsIn<T>(v)) return out_of_range(v, std::numeric_limits<T>());
  } else if constexpr (std::is_same_v<T, std::vector<int32_t>>) {
    for (const nlohmann::json& x : v) {
      if (!x.is_number_integer()) {  // 3.7 or 1e300 would be truncated or overflow silently
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line, ": \"", key, "\": ", x.dump(), " is not an integer"));
      }
      if (!FitsIn<int32_t>(x)) return out_of_range(x, std::numeric_limits<int32_t>());
    }
  }
  try {
    *out = v.get<T>();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("line ", line, ": \"", key, "\": ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Request> RequestFromJson(const nlohmann::json& j, const models::Tokenizer* tok,
                                        int line) {
  if (!j.is_object())
    return absl::InvalidArgumentError(absl::StrCat("line ", line, ": not a JSON object"));
  Request r;
  const bool has_text = j.contains("prompt"), has_ids = j.contains("prompt_token_ids");
  if (has_text == has_ids) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line, ": give exactly one of \"prompt\" or \"prompt_token_ids\""));
  }
  if (has_ids) {
    RETURN_IF_ERROR(Read(j, "prompt_token_ids", line, &r.prompt_token_ids));
  } else {
    std::string text;
    RETURN_IF_ERROR(Read(j, "prompt", line, &text));
    if (tok == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("line ", line, ": the model has no tokenizer: use \"prompt_token_ids\""));
    }
    r.prompt_token_ids = tok->Encode(text, /*add_special_tokens=*/true);
  }
  SamplingParams& p = r.params;
  RETURN_IF_ERROR(Read(j, "max_tokens", line, &p.max_tokens));
  RETURN_IF_ERROR(Read(j, "min_tokens", line, &p.min_tokens));
  RETURN_IF_ERROR(Read(j, "temperature", line, &p.temperature));
  RETURN_IF_ERROR(Read(j, "top_p", line, &p.top_p));
  RETURN_IF_ERROR(Read(j, "top_k", line, &p.top_k));
  RETURN_IF_ERROR(Read(j, "min_p", line, &p.min_p));
  RETURN_IF_ERROR(Read(j, "presence_penalty", line, &p.presence_penalty));
  RETURN_IF_ERROR(Read(j, "frequency_penalty", line, &p.frequency_penalty));
  RETURN_IF_ERROR(Read(j, "repetition_penalty", line, &p.repetition_penalty));
  RETURN_IF_ERROR(Read(j, "stop", line, &p.stop));
  RETURN_IF_ERROR(Read(j, "stop_token_ids", line, &p.stop_token_ids));
  RETURN_IF_ERROR(Read(j, "ignore_eos", line, &p.ignore_eos));
  RETURN_IF_ERROR(Read(j, "n", line, &p.n));
  RETURN_IF_ERROR(Read(j, "logprobs", line, &p.logprobs));
  if (j.contains("seed") && !j["seed"].is_null()) {
    uint64_t seed = 0;
    RETURN_IF_ERROR(Read(j, "seed", line, &seed));
    p.seed = seed;
  }
  RETURN_IF_ERROR(Read(j, "priority", line, &r.priority));
  RETURN_IF_ERROR(Read(j, "cache_salt", line, &r.cache_salt));
  return r;
}

absl::Status RunPromptsFile(Engine& engine, const std::string& path, SamplingParams defaults) {
  // An ifstream opens a directory and then reads nothing: that ran zero requests and exited 0.
  if (std::error_code ec; std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not a prompts file"));
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the prompts file"));
  struct Item {
    Request req;
    int abort_after = -1;
    std::shared_ptr<RequestStream> stream;
    RequestOutput result;
  };
  std::vector<Item> items;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": line ", line_no, ": invalid JSON"));
    }
    if (!j.is_object()) {  // before the defaults below index it as an object
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": line ", line_no, ": not a JSON object"));
    }
    // Defaults from the command line, then the line's own fields.
    nlohmann::json merged = j;
    if (!merged.contains("max_tokens")) merged["max_tokens"] = defaults.max_tokens;
    if (!merged.contains("temperature")) merged["temperature"] = defaults.temperature;
    if (!merged.contains("ignore_eos")) merged["ignore_eos"] = defaults.ignore_eos;
    absl::StatusOr<Request> req = RequestFromJson(merged, engine.model().tokenizer.get(), line_no);
    if (!req.ok())
      return absl::Status(req.status().code(), absl::StrCat(path, ": ", req.status().message()));
    Item item;
    item.req = *std::move(req);
    item.req.request_id = absl::StrCat("line-", line_no);
    if (absl::Status st = Read(j, "abort_after_tokens", line_no, &item.abort_after); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
    }
    items.push_back(std::move(item));
  }
  for (Item& it : items) {
    absl::StatusOr<std::shared_ptr<RequestStream>> s = engine.AddRequest(it.req);
    if (!s.ok()) {
      return absl::Status(s.status().code(),
                          absl::StrCat(path, ": ", it.req.request_id, ": ", s.status().message()));
    }
    it.stream = *s;
  }
  // Collect (aborting where asked once enough tokens arrived).
  for (Item& it : items) {
    it.result.request_id = it.req.request_id;
    bool aborted = false;
    while (true) {
      std::optional<RequestOutput> o = it.stream->Pop(absl::InfiniteDuration());
      for (CompletionDelta& d : o->outputs) {
        CompletionDelta* dst = nullptr;
        for (CompletionDelta& m : it.result.outputs) {
          if (m.index == d.index) dst = &m;
        }
        if (dst == nullptr) {
          it.result.outputs.push_back(d);
          dst = &it.result.outputs.back();
        } else {
          dst->token_ids.insert(dst->token_ids.end(), d.token_ids.begin(), d.token_ids.end());
          dst->text += d.text;
          if (!d.finish_reason.empty()) dst->finish_reason = d.finish_reason;
        }
        if (!aborted && it.abort_after >= 0 &&
            static_cast<int>(dst->token_ids.size()) >= it.abort_after) {
          engine.Abort(it.req.request_id);
          aborted = true;
        }
      }
      if (o->finished) {
        it.result.usage = o->usage;
        break;
      }
    }
    std::sort(it.result.outputs.begin(), it.result.outputs.end(),
              [](const CompletionDelta& a, const CompletionDelta& b) { return a.index < b.index; });
  }
  for (const Item& it : items) {
    for (const CompletionDelta& d : it.result.outputs) {
      nlohmann::json j;
      j["prompt_token_ids"] = it.req.prompt_token_ids;
      j["token_ids"] = d.token_ids;
      j["text"] = d.text;
      j["finish_reason"] = d.finish_reason;
      if (it.req.params.n > 1) j["index"] = d.index;
      j["cached_prompt_tokens"] = it.result.usage.cached_prompt_tokens;
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
  }
  // Wait for the engine to retire everything, then report.
  engine.WaitIdle(absl::Seconds(30));
  const EngineStats s = engine.GetStats();
  nlohmann::json stats;
  stats["prefix_cache_queries_tokens"] = s.prefix_cache_queries_tokens;
  stats["prefix_cache_hit_tokens"] = s.prefix_cache_hit_tokens;
  stats["num_preemptions"] = s.num_preemptions;
  stats["pages_in_use_at_exit"] = s.pages_used;
  stats["prompt_tokens"] = s.prompt_tokens_total;
  stats["generation_tokens"] = s.generation_tokens_total;
  stats["num_steps"] = s.num_steps;
  stats["pack_jobs"] = s.pack_jobs_total;
  stats["kv_cache_dtype"] = engine.cache_info().kv_cache_dtype;
  stats["kv_capacity_tokens"] = engine.cache_info().capacity_tokens;
  std::printf("%s\n", nlohmann::json{{"stats", stats}}.dump().c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace kitty::runtime
