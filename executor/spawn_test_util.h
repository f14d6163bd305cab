// Helpers for the spawn tests: run a SpawnOptions with stdout+stderr captured, and build a root
// directory that holds only the static probe program.
#ifndef SLIPWAY_EXECUTOR_SPAWN_TEST_UTIL_H_
#define SLIPWAY_EXECUTOR_SPAWN_TEST_UTIL_H_

#include <string>

#include "base/test_util.h"
#include "executor/spawn.h"

namespace slipway::executor::testing {

struct Captured {
  ExitStatus status;
  std::string out;
};

// Maps child fds 0 <- /dev/null and 1, 2 <- a pipe (plus whatever o.fds already has), spawns,
// reads the pipe to EOF and waits.
Result<Captured> RunCaptured(SpawnOptions o);

// The static probe (testdata/probe.cc).
std::string ProbePath();

// A temporary root: <tmp>/root with /probe (static), /bin and /tmp.
struct ProbeRoot {
  slipway::testing::TempDir tmp;
  std::string root = tmp.Join("root");
  ProbeRoot();
};

}  // namespace slipway::executor::testing

#endif  // SLIPWAY_EXECUTOR_SPAWN_TEST_UTIL_H_
