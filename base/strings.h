// File: base/strings.h
// -----------------------------------------------------------------------------
// Debian's Abseil 20220623 is built with its own absl::string_view, which std::string_view does
// not convert to. kitty::StrCat is absl::StrCat that also takes std::string_view arguments.
#ifndef KITTY_BASE_STRINGS_H_
#define KITTY_BASE_STRINGS_H_

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace kitty {

inline absl::string_view ToAbsl(std::string_view v) {
  return absl::string_view(v.data(), v.size());
}

namespace internal {
template <typename T>
decltype(auto) StrCatArg(const T& v) {
  if constexpr (std::is_same_v<T, std::string_view>) {
    return ToAbsl(v);
  } else {
    return (v);
  }
}
}  // namespace internal

template <typename... Args>
std::string StrCat(const Args&... args) {
  return absl::StrCat(internal::StrCatArg(args)...);
}

}  // namespace kitty

#endif  // KITTY_BASE_STRINGS_H_
