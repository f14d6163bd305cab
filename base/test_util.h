// Test helpers: a self-deleting temporary directory, file creation, and running a program with
// its output captured. For tests only (testonly in BUILD); they abort on setup failures, which
// makes a broken fixture loud instead of a silently passing test.
#ifndef SLIPWAY_BASE_TEST_UTIL_H_
#define SLIPWAY_BASE_TEST_UTIL_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace slipway::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  // A fresh directory under `base` (e.g. "/tmp", reachable by other users when TEST_TMPDIR is not).
  explicit TempDir(const std::string& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(std::string_view rel) const { return path_ + "/" + std::string(rel); }

 private:
  std::string path_;
};

// Writes `content` to `path`, creating parent directories.
void WriteFile(const std::string& path, std::string_view content, mode_t mode = 0644);
// Creates `path` and its parents.
void MakeDirs(const std::string& path, mode_t mode = 0755);
std::string ReadFile(const std::string& path);
// Removes a tree (no symlinks followed).
void RemoveTree(const std::string& path);

struct RunResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with argv, an empty-ish environment, and captures stdout/stderr.
RunResult Run(const std::vector<std::string>& argv);

// The path of a data dependency, given its workspace-relative path ("userdb/slipway-id").
std::string Runfile(std::string_view workspace_path);

}  // namespace slipway::testing

#endif  // SLIPWAY_BASE_TEST_UTIL_H_
