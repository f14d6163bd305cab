#include "executor/child_failure.h"

namespace slipway::executor {

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kNone:
      return "no failure";
    case Stage::kSetsid:
      return "creating a new session (setsid)";
    case Stage::kSetpgid:
      return "creating a process group (setpgid)";
    case Stage::kSignals:
      return "resetting signal handlers";
    case Stage::kWaitForIdMaps:
      return "waiting for the parent to write the user namespace id maps";
    case Stage::kMountPrivate:
      return "making all mounts private";
    case Stage::kSetHostname:
      return "setting the hostname";
    case Stage::kMount:
      return "mounting";
    case Stage::kBindRoot:
      return "bind-mounting the root directory onto itself";
    case Stage::kPivotRoot:
      return "switching to the root directory (pivot_root)";
    case Stage::kChroot:
      return "switching to the root directory (chroot)";
    case Stage::kChdirRoot:
      return "entering the new root";
    case Stage::kCapBoundingSet:
      return "dropping capabilities from the bounding set";
    case Stage::kSetGroups:
      return "setting supplementary groups";
    case Stage::kSetGid:
      return "setting the group id";
    case Stage::kSetUid:
      return "setting the user id";
    case Stage::kChdirWorkdir:
      return "entering the working directory";
    case Stage::kVerifyWorkdir:
      return "verifying the working directory is inside the root";
    case Stage::kParentDeathSignal:
      return "setting the parent-death signal";
    case Stage::kParentDied:
      return "checking the parent is still alive";
    case Stage::kFdMap:
      return "arranging file descriptors";
    case Stage::kRlimit:
      return "setting a resource limit";
    case Stage::kNoNewPrivs:
      return "setting no_new_privs";
    case Stage::kSeccomp:
      return "installing the seccomp filter";
    case Stage::kPathSearch:
      return "finding the command in PATH";
    case Stage::kPathOnlyRelative:
      return "finding the command in PATH";
    case Stage::kExec:
      return "executing the command";
    case Stage::kCount:
      break;
  }
  return "unknown stage";
}

}  // namespace slipway::executor
