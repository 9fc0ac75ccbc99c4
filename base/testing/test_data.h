// File: base/testing/test_data.h
// -----------------------------------------------------------------------------
// Where tests find the shared golden data (../shared/data relative to the repository root;
// KITTY_TEST_DATA overrides) and the built binaries (KITTY_BIN_DIR, set by CTest).
#ifndef KITTY_BASE_TESTING_TEST_DATA_H_
#define KITTY_BASE_TESTING_TEST_DATA_H_

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace kitty::testing {

inline std::string TestDataDir() {
  if (const char* env = std::getenv("KITTY_TEST_DATA"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef KITTY_SOURCE_DIR
  return std::string(KITTY_SOURCE_DIR) + "/../shared/data";
#else
  return "../shared/data";
#endif
}

inline std::string TestDataPath(const std::string& relative) {
  return TestDataDir() + "/" + relative;
}

inline std::string BinDir() {
  if (const char* env = std::getenv("KITTY_BIN_DIR"); env != nullptr && *env != '\0') return env;
#ifdef KITTY_BINARY_DIR
  return std::string(KITTY_BINARY_DIR) + "/bin";
#else
  return "build/bin";
#endif
}

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read test file %s\n", path.c_str());
    std::abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace kitty::testing

#endif  // KITTY_BASE_TESTING_TEST_DATA_H_
