#include <algorithm>

#include "runtime/engine.h"

namespace kitty::runtime {

void RequestStream::SetNotifier(std::function<void()> notify) {
  bool pending;
  std::function<void()> copy;
  {
    absl::MutexLock lock(&mu_);
    notify_ = std::move(notify);
    pending = !queue_.empty();
    copy = notify_;
  }
  if (pending && copy) copy();
}

std::optional<RequestOutput> RequestStream::TryPop() {
  absl::MutexLock lock(&mu_);
  if (queue_.empty()) return std::nullopt;
  RequestOutput out = std::move(queue_.front());
  queue_.pop_front();
  return out;
}

std::optional<RequestOutput> RequestStream::Pop(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return std::nullopt;
  RequestOutput out = std::move(queue_.front());
  queue_.pop_front();
  return out;
}

RequestOutput RequestStream::WaitFinished() {
  RequestOutput merged;
  merged.request_id = request_id_;
  while (true) {
    std::optional<RequestOutput> o = Pop(absl::InfiniteDuration());
    for (CompletionDelta& d : o->outputs) {
      CompletionDelta* dst = nullptr;
      for (CompletionDelta& m : merged.outputs) {
        if (m.index == d.index) dst = &m;
      }
      if (dst == nullptr) {
        merged.outputs.push_back(std::move(d));
        continue;
      }
      dst->token_ids.insert(dst->token_ids.end(), d.token_ids.begin(), d.token_ids.end());
      dst->text += d.text;
      dst->logprobs.insert(dst->logprobs.end(), d.logprobs.begin(), d.logprobs.end());
      if (!d.finish_reason.empty()) dst->finish_reason = d.finish_reason;
    }
    if (o->finished) {
      merged.finished = true;
      merged.usage = o->usage;
      std::sort(
          merged.outputs.begin(), merged.outputs.end(),
          [](const CompletionDelta& a, const CompletionDelta& b) { return a.index < b.index; });
      return merged;
    }
  }
}

void RequestStream::Push(RequestOutput out) {
  std::function<void()> notify;
  {
    absl::MutexLock lock(&mu_);
    if (out.finished) finished_ = true;
    queue_.push_back(std::move(out));
    notify = notify_;
  }
  if (notify) notify();
}

}  // namespace kitty::runtime
