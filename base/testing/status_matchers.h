// File: base/testing/status_matchers.h
// -----------------------------------------------------------------------------
// gMock matchers for absl::Status / absl::StatusOr, shaped like absl's later status_matchers:
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("config.json")));
//   ASSERT_OK_AND_ASSIGN(auto x, MakeX());
#ifndef KITTY_BASE_TESTING_STATUS_MATCHERS_H_
#define KITTY_BASE_TESTING_STATUS_MATCHERS_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::kitty::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher, "has the status code and a matching message") {
  const absl::Status& s = ::kitty::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

}  // namespace kitty::testing

#define KITTY_TESTING_CONCAT_INNER_(a, b) a##b
#define KITTY_TESTING_CONCAT_(a, b) KITTY_TESTING_CONCAT_INNER_(a, b)
#define ASSERT_OK(expr) ASSERT_THAT(expr, ::kitty::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::kitty::testing::IsOk())
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                               \
  auto KITTY_TESTING_CONCAT_(kitty_sor_, __LINE__) = (expr);                          \
  ASSERT_THAT(KITTY_TESTING_CONCAT_(kitty_sor_, __LINE__), ::kitty::testing::IsOk()); \
  lhs = std::move(KITTY_TESTING_CONCAT_(kitty_sor_, __LINE__)).value()

#endif  // KITTY_BASE_TESTING_STATUS_MATCHERS_H_
