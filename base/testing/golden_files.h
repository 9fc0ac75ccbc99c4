// File: base/testing/golden_files.h
// -----------------------------------------------------------------------------
// Readers and comparisons for the peers' golden outputs in ../shared/data: raw little-endian
// float32 files, JSON-lines files, and the relative L2 distance the logits tests use.
// Test-only; needs nlohmann_json (every model test links it through kitty::models).
#ifndef KITTY_BASE_TESTING_GOLDEN_FILES_H_
#define KITTY_BASE_TESTING_GOLDEN_FILES_H_

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "base/testing/test_data.h"
#include "nlohmann/json.hpp"

namespace kitty::testing {

// A raw float32 file (no header) as a vector.
inline std::vector<float> ReadF32(const std::string& path) {
  const std::string bytes = ReadFileOrDie(path);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

// One JSON value per non-empty line.
inline std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::istringstream in(ReadFileOrDie(path));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// ||a - b|| / ||b|| over n values, in double.
inline double RelL2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace kitty::testing

#endif  // KITTY_BASE_TESTING_GOLDEN_FILES_H_
