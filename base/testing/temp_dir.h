// File: base/testing/temp_dir.h
// -----------------------------------------------------------------------------
// A fresh temporary directory per test (mkdtemp under $TMPDIR or /tmp), removed with everything
// in it when the object goes away: tests never share fixed file names, so two runs on one host
// (two checkouts, two CTest jobs) cannot overwrite each other's files.
#ifndef KITTY_BASE_TESTING_TEMP_DIR_H_
#define KITTY_BASE_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace kitty::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "kitty_test_") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror(("mkdtemp " + tmpl).c_str());
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `bytes` to path()/name (binary) and returns that path.
  std::string Write(const std::string& name, const std::string& bytes) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

 private:
  std::string path_;
};

}  // namespace kitty::testing

#endif  // KITTY_BASE_TESTING_TEMP_DIR_H_
