// The child side of spawning: a flat, ordered list of stages run between clone and exec.
//
// Everything the child needs is prepared by the parent in a ChildPlan (C strings, arrays, the fd
// plan, the seccomp program); the child only reads it and makes raw system calls (raw_syscall.h).
// Its first failure is written as one ChildFailure record to the status fd, then it _exits.
//
//   ---- no allocation, no locks, no errno, no libc wrappers from here on ----
//
// Stages, in order, each with its reason:
//   setsid / setpgid           own session or group, so the whole step can be signalled at once
//   signals                    every handler back to SIG_DFL, then the requested mask: a parent
//                              handler must never run on the parent's memory in a CLONE_VM child
//   wait for id maps           a new user namespace is usable only once the parent wrote the maps
//   mounts private             systemd makes / shared; our mounts must not propagate to the host
//   hostname, mounts           in the new uts / mount namespace, with host paths
//   root switch, chdir("/")    chroot, or pivot_root of a self-bind-mount (then detach the old
//   root) bounding set               needs CAP_SETPCAP, which is gone after the uid change groups,
//   gid, uid           in that order: after setuid we could no longer change groups workdir +
//   verify           entered as the target user so permissions apply; getcwd must be
//                              inside the root (CVE-2024-21626)
//   parent-death signal        after the uid change (which clears it), then the ppid check
//   fds                        the FdPlan; everything else close-on-exec
//   rlimits, no_new_privs      before seccomp, which may forbid prlimit/prctl
//   seccomp                    last: as few syscalls as possible run under it
//   PATH search + execve       inside the new root, execvp rules
//
// Guarantees: RunChild and SearchAndExec allocate nothing, take no locks, and touch no errno.
#ifndef SLIPWAY_EXECUTOR_CHILD_H_
#define SLIPWAY_EXECUTOR_CHILD_H_

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "executor/child_failure.h"
#include "executor/fd_plan.h"

namespace slipway::executor {

struct ChildMount {
  const char* source;
  const char* target;  // host path (the mount happens before the root switch)
  const char* fstype;
  unsigned long flags;
  const char* data;  // may be null
};

struct ChildRlimit {
  int resource;
  std::uint64_t soft, hard;
};

// How to find and run the command (execvp rules, inside the new root).
struct ExecPlan {
  // Candidate paths, in order; a single one when argv[0] contains '/'.
  const char* const* candidates = nullptr;
  const bool* relative = nullptr;  // candidate came from a relative PATH entry: never run it
  int candidate_count = 0;
  bool searched = false;  // came from a PATH search: ENOEXEC falls back to /bin/sh
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  // "/bin/sh", <slot for the candidate>, argv[1..], nullptr -- filled in on ENOEXEC.
  const char** sh_argv = nullptr;
  // When >= 0: instead of the search, execveat(exec_fd, "", argv, envp, AT_EMPTY_PATH).
  int exec_fd = -1;
};

struct ChildPlan {
  // Which stage groups to run: the spawn child runs everything; in pid-namespace mode the first
  // process only prepares the reaper (kPrelude), the reaper runs kRootSetup, and the command's
  // process runs kIdentityAndExec.
  enum Part : unsigned { kPrelude = 1, kRootSetup = 2, kIdentityAndExec = 4, kAll = 7 };
  unsigned parts = kAll;

  int status_fd = -1;
  bool setsid = false;
  bool setpgid = false;
  std::uint64_t signal_mask = 0;  // the mask the command starts with
  int sync_fd = -1;               // read one byte before going on (user namespace maps)
  int sync_write_fd = -1;         // the other end of that pipe, closed first

  bool mount_private = false;
  const char* hostname = nullptr;
  std::size_t hostname_len = 0;
  const ChildMount* mounts = nullptr;
  std::size_t mount_count = 0;
  const char* root = nullptr;  // null: stay in the parent's root
  bool pivot_root = false;

  bool drop_bounding_set = false;
  std::uint64_t bounding_keep = 0;  // capability bits to keep
  int cap_last = 40;

  bool set_groups = false;
  const gid_t* groups = nullptr;
  std::size_t group_count = 0;
  bool set_ids = false;
  std::uint32_t uid = 0, gid = 0;

  const char* workdir = nullptr;  // null: stay at "/"
  char* cwd_buf = nullptr;        // scratch for getcwd, prepared by the parent
  std::size_t cwd_buf_len = 0;

  int parent_death_signal = 0;
  pid_t parent_pid = 0;  // 0: do not check (a new pid namespace hides the parent)

  const FdPlan* fds = nullptr;  // null: leave fds alone
  // pid-namespace mode: the parent-death signal and the fd plan are applied in the prelude, so
  // the reaper starts with the final fds (and the death signal survives its exec).
  bool fds_in_prelude = false;
  unsigned cloexec_fallback_limit = 1024;

  const ChildRlimit* rlimits = nullptr;
  std::size_t rlimit_count = 0;
  bool no_new_privs = false;
  const sock_fprog* seccomp = nullptr;

  ExecPlan exec;
};

// Runs the stages of plan->parts. Returns only on success when kIdentityAndExec is not among the
// parts; otherwise it execs or reports and _exits. On failure it writes the record and exits 127.
void RunChild(ChildPlan* plan);

// The clone(2) entry point: RunChild(static_cast<ChildPlan*>(arg)).
int ChildEntry(void* arg);

// execvp over the plan's candidates. Returns only on failure, with the failure to report.
ChildFailure SearchAndExec(const ExecPlan& exec);

// Writes the record to fd (raw write) and exits with status 127 (raw exit_group).
[[noreturn]] void ReportAndExit(int fd, Stage stage, long neg_errno, int index);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_CHILD_H_
