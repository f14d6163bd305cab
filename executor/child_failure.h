// The wire format of a child-side failure, and the names of the child's stages.
//
// The child (between clone and exec) reports its first failure as one fixed-size ChildFailure
// record written to a close-on-exec pipe, then _exits. The parent reads to EOF: 0 bytes means
// execve succeeded (the pipe closed on exec); a full record says which stage failed, with which
// errno, and at which index (the n-th mount, fd mapping, rlimit or PATH candidate).
//
// Guarantees: ChildFailure is trivially copyable; StageName() returns static strings.
#ifndef SLIPWAY_EXECUTOR_CHILD_FAILURE_H_
#define SLIPWAY_EXECUTOR_CHILD_FAILURE_H_

#include <cstdint>

namespace slipway::executor {

// In the order the child runs them.
enum class Stage : std::int32_t {
  kNone = 0,
  kSetsid,
  kSetpgid,
  kSignals,
  kWaitForIdMaps,
  kMountPrivate,
  kSetHostname,
  kMount,
  kBindRoot,
  kPivotRoot,
  kChroot,
  kChdirRoot,
  kCapBoundingSet,
  kSetGroups,
  kSetGid,
  kSetUid,
  kChdirWorkdir,
  kVerifyWorkdir,
  kParentDeathSignal,
  kParentDied,
  kFdMap,
  kRlimit,
  kNoNewPrivs,
  kSeccomp,
  kPathSearch,
  kPathOnlyRelative,
  kExec,
  kCount,
};

struct ChildFailure {
  Stage stage = Stage::kNone;
  std::int32_t error = 0;   // a positive errno
  std::int32_t index = -1;  // which item of the stage, or -1
};
static_assert(sizeof(ChildFailure) == 12, "the wire record has a fixed size");

// A short description of what the stage does ("setting supplementary groups").
const char* StageName(Stage stage);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_CHILD_FAILURE_H_
