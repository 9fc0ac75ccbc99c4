#include "base/status_macros.h"

#include "base/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace kitty {
namespace {

using ::kitty::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

absl::Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesFirstError) {
  EXPECT_EQ(Quarter(8).value(), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("odd")));
  EXPECT_OK(CheckEven(4));
  EXPECT_FALSE(CheckEven(3).ok());
}

TEST(StatusMacrosTest, CheckFailureAbortsWithMessage) {
  EXPECT_DEATH({ KITTY_CHECK_EQ(1, 2) << "page refcount"; }, "CHECK failed.*page refcount");
}

}  // namespace
}  // namespace kitty
