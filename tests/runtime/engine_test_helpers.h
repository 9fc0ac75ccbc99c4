// Helpers shared by the engine tests: a model from ../shared/data loaded once per test binary,
// and running a batch of requests to completion.
#ifndef KITTY_TESTS_RUNTIME_ENGINE_TEST_HELPERS_H_
#define KITTY_TESTS_RUNTIME_ENGINE_TEST_HELPERS_H_

#include <memory>
#include <string>
#include <vector>

#include "base/status_macros.h"
#include "base/testing/test_data.h"
#include "gtest/gtest.h"
#include "models/model_loader.h"
#include "runtime/engine.h"

namespace kitty::runtime::testing {

// Loads TestDataPath(relative); dies on failure. Callers keep it in a function-local static.
inline std::shared_ptr<models::LoadedModel> LoadTestModel(
    const std::string& relative, const models::LoadModelOptions& options = {}) {
  auto loaded = models::LoadModel(::kitty::testing::TestDataPath(relative), options);
  KITTY_CHECK_OK(loaded.status());
  return std::make_shared<models::LoadedModel>(*std::move(loaded));
}

// Submits every request at once, waits for all of them, then expects the engine to go idle.
inline std::vector<RequestOutput> RunAll(Engine& e, const std::vector<Request>& reqs,
                                         absl::Duration idle_timeout = absl::Seconds(10)) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const Request& r : reqs) {
    absl::StatusOr<std::shared_ptr<RequestStream>> s = e.AddRequest(r);
    KITTY_CHECK_OK(s.status());
    streams.push_back(*s);
  }
  std::vector<RequestOutput> outs;
  for (auto& s : streams) outs.push_back(s->WaitFinished());
  EXPECT_TRUE(e.WaitIdle(idle_timeout));
  return outs;
}

}  // namespace kitty::runtime::testing

#endif  // KITTY_TESTS_RUNTIME_ENGINE_TEST_HELPERS_H_
