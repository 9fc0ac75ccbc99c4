// File: base/status_macros.h
// -----------------------------------------------------------------------------
// Small local replacements for the status/check macros that Abseil 20220623 (Debian 12) lacks.
// They are shaped like the later Abseil / absl::log ones so they can be swapped 1:1.
//
//   RETURN_IF_ERROR(expr);                 // expr yields absl::Status
//   ASSIGN_OR_RETURN(auto x, expr);        // expr yields absl::StatusOr<T>
//   KITTY_CHECK(cond) << "message";        // broken invariant: abort naming the bug
//   KITTY_CHECK_EQ(a, b) / _NE / _LT / _LE / _GT / _GE
//   KITTY_DCHECK(cond)                     // only in debug builds
//
// Expected outcomes (bad input, no free pages) never use CHECK: they return a Status or an
// optional (STYLE.md §3).
#ifndef KITTY_BASE_STATUS_MACROS_H_
#define KITTY_BASE_STATUS_MACROS_H_

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KITTY_STATUS_CONCAT_INNER_(a, b) a##b
#define KITTY_STATUS_CONCAT_(a, b) KITTY_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                                          \
  do {                                                                 \
    ::absl::Status kitty_status_ = (expr);                             \
    if (ABSL_PREDICT_FALSE(!kitty_status_.ok())) return kitty_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  KITTY_ASSIGN_OR_RETURN_IMPL_(KITTY_STATUS_CONCAT_(kitty_statusor_, __LINE__), lhs, expr)

#define KITTY_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)                      \
  auto statusor = (expr);                                                      \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

namespace kitty::internal {

// Collects the message of a failed CHECK and aborts when destroyed.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": CHECK failed: " << condition << " ";
  }
  [[noreturn]] ~CheckFailure() {
    std::fprintf(stderr, "%s\n", stream_.str().c_str());
    std::fflush(stderr);
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Turns the `CheckFailure(...).stream() << ...` expression into void for the ?: in CHECK.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace kitty::internal

#define KITTY_CHECK(cond)          \
  ABSL_PREDICT_TRUE(cond)          \
  ? (void)0                        \
  : ::kitty::internal::Voidify() & \
          ::kitty::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define KITTY_CHECK_OP_(a, b, op) KITTY_CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define KITTY_CHECK_EQ(a, b) KITTY_CHECK_OP_(a, b, ==)
#define KITTY_CHECK_NE(a, b) KITTY_CHECK_OP_(a, b, !=)
#define KITTY_CHECK_LT(a, b) KITTY_CHECK_OP_(a, b, <)
#define KITTY_CHECK_LE(a, b) KITTY_CHECK_OP_(a, b, <=)
#define KITTY_CHECK_GT(a, b) KITTY_CHECK_OP_(a, b, >)
#define KITTY_CHECK_GE(a, b) KITTY_CHECK_OP_(a, b, >=)
#define KITTY_CHECK_OK(expr)                                      \
  do {                                                            \
    ::absl::Status kitty_check_status_ = (expr);                  \
    KITTY_CHECK(kitty_check_status_.ok()) << kitty_check_status_; \
  } while (0)

#ifdef NDEBUG
#define KITTY_DCHECK(cond) \
  while (false) KITTY_CHECK(cond)
#else
#define KITTY_DCHECK(cond) KITTY_CHECK(cond)
#endif

#endif  // KITTY_BASE_STATUS_MACROS_H_
