// Everything in this file runs between clone and exec. Raw syscalls only: no allocation, no
// locks, no errno, no libc wrappers (see child.h for the stage list and the reasons).
#include "executor/child.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cerrno>
#include <csignal>

#include "executor/raw_syscall.h"

namespace slipway::executor {
namespace {

using raw::Call;

// The kernel's struct sigaction (not glibc's).
struct KernelSigaction {
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  std::uint64_t mask;
};

class RawFdOps : public FdOps {
 public:
  explicit RawFdOps(unsigned fallback_limit) : fallback_limit_(fallback_limit) {}
  int DupAbove(int fd, int min_fd) override {
    return static_cast<int>(Call(SYS_fcntl, fd, F_DUPFD_CLOEXEC, min_fd));
  }
  int DupTo(int from, int to) override { return static_cast<int>(Call(SYS_dup3, from, to, 0)); }
  int ClearCloexec(int fd) override { return static_cast<int>(Call(SYS_fcntl, fd, F_SETFD, 0)); }
  int CloexecRange(unsigned lo, unsigned hi) override {
    long r = Call(SYS_close_range, lo, hi, CLOSE_RANGE_CLOEXEC);
    if (r != -ENOSYS && r != -EINVAL) return static_cast<int>(r);
    // Kernels before 5.11: walk the numbers up to the fd limit the parent read for us.
    const unsigned end = hi < fallback_limit_ ? hi : fallback_limit_ - 1;
    for (unsigned fd = lo; fd <= end && fd < fallback_limit_; ++fd) {
      Call(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);  // EBADF for closed numbers: nothing to do
    }
    return 0;
  }

 private:
  unsigned fallback_limit_;
};

bool IsSkippableExecError(long r) {
  // execvp keeps searching after these; anything else is a real failure of that candidate.
  return r == -ENOENT || r == -ENOTDIR || r == -ESTALE || r == -ENODEV || r == -ETIMEDOUT;
}

#define CHILD_CHECK(expr, stage, index)                               \
  do {                                                                \
    long r_ = (expr);                                                 \
    if (r_ < 0) ReportAndExit(plan->status_fd, (stage), r_, (index)); \
  } while (0)

void ApplyDeathSignalAndFds(ChildPlan* plan) {
  if (plan->parent_death_signal) {
    CHILD_CHECK(Call(SYS_prctl, PR_SET_PDEATHSIG, plan->parent_death_signal, 0, 0, 0),
                Stage::kParentDeathSignal, -1);
    // The parent may have died before the prctl: then no signal would ever come.
    if (plan->parent_pid != 0 && Call(SYS_getppid) != plan->parent_pid) {
      ReportAndExit(plan->status_fd, Stage::kParentDied, -ESRCH, -1);
    }
  }
  if (plan->fds) {
    RawFdOps ops(plan->cloexec_fallback_limit);
    int index = -1;
    int reserved[2] = {plan->status_fd, plan->exec.exec_fd};
    int r = plan->fds->Apply(ops, reserved, 2, &index);
    plan->status_fd = reserved[0];
    plan->exec.exec_fd = reserved[1];
    if (r < 0) ReportAndExit(plan->status_fd, Stage::kFdMap, r, index);
  }
}

void RunPrelude(ChildPlan* plan) {
  if (plan->setsid) CHILD_CHECK(Call(SYS_setsid), Stage::kSetsid, -1);
  if (plan->setpgid) CHILD_CHECK(Call(SYS_setpgid, 0, 0), Stage::kSetpgid, -1);
  // Reset every disposition (SIG_IGN too: a RUN step must not inherit an ignored SIGPIPE), then
  // unblock. Signals stayed blocked since before clone, so no parent handler ever ran here.
  KernelSigaction dfl{};
  for (int sig = 1; sig < 65; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    long r = Call(SYS_rt_sigaction, sig, &dfl, 0, 8);
    if (r < 0 && r != -EINVAL) ReportAndExit(plan->status_fd, Stage::kSignals, r, sig);
  }
  CHILD_CHECK(Call(SYS_rt_sigprocmask, SIG_SETMASK, &plan->signal_mask, 0, 8), Stage::kSignals, 0);
  if (plan->sync_fd >= 0) {
    // Without CLONE_VM we hold a copy of the pipe's write end too: close it, or the parent
    // giving up (closing its end) would never reach us as EOF.
    if (plan->sync_write_fd >= 0) Call(SYS_close, plan->sync_write_fd);
    char byte = 0;
    long r;
    do {
      r = Call(SYS_read, plan->sync_fd, &byte, 1);
    } while (r == -EINTR);
    if (r == 0) r = -EPIPE;  // the parent closed without writing: it gave up on the maps
    CHILD_CHECK(r, Stage::kWaitForIdMaps, -1);
    if (byte != 1) ReportAndExit(plan->status_fd, Stage::kWaitForIdMaps, -EINVAL, -1);
    Call(SYS_close, plan->sync_fd);
  }
  if (plan->fds_in_prelude) ApplyDeathSignalAndFds(plan);
}

void RunRootSetup(ChildPlan* plan) {
  if (plan->mount_private) {
    CHILD_CHECK(Call(SYS_mount, "none", "/", 0, MS_REC | MS_PRIVATE, 0), Stage::kMountPrivate, -1);
  }
  if (plan->hostname) {
    CHILD_CHECK(Call(SYS_sethostname, plan->hostname, plan->hostname_len), Stage::kSetHostname, -1);
  }
  for (std::size_t i = 0; i < plan->mount_count; ++i) {
    const ChildMount& m = plan->mounts[i];
    CHILD_CHECK(Call(SYS_mount, m.source, m.target, m.fstype, m.flags, m.data), Stage::kMount,
                static_cast<int>(i));
  }
  if (plan->root) {
    if (plan->pivot_root) {
      // pivot_root needs a mount point: bind the root onto itself, pivot with "." as both new and
      // old root, then detach the old root stacked underneath.
      CHILD_CHECK(Call(SYS_mount, plan->root, plan->root, 0, MS_BIND | MS_REC, 0), Stage::kBindRoot,
                  -1);
      CHILD_CHECK(Call(SYS_chdir, plan->root), Stage::kPivotRoot, 0);
      CHILD_CHECK(Call(SYS_pivot_root, ".", "."), Stage::kPivotRoot, 1);
      CHILD_CHECK(Call(SYS_umount2, ".", MNT_DETACH), Stage::kPivotRoot, 2);
    } else {
      CHILD_CHECK(Call(SYS_chroot, plan->root), Stage::kChroot, -1);
    }
    CHILD_CHECK(Call(SYS_chdir, "/"), Stage::kChdirRoot, -1);
  }
}

void RunIdentityAndExec(ChildPlan* plan) {
  if (plan->drop_bounding_set) {
    for (int cap = 0; cap <= plan->cap_last; ++cap) {
      if (plan->bounding_keep & (std::uint64_t{1} << cap)) continue;
      CHILD_CHECK(Call(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0), Stage::kCapBoundingSet, cap);
    }
  }
  if (plan->set_groups) {
    CHILD_CHECK(Call(SYS_setgroups, plan->group_count, plan->groups), Stage::kSetGroups, -1);
  }
  if (plan->set_ids) {
    CHILD_CHECK(Call(SYS_setresgid, plan->gid, plan->gid, plan->gid), Stage::kSetGid, -1);
    CHILD_CHECK(Call(SYS_setresuid, plan->uid, plan->uid, plan->uid), Stage::kSetUid, -1);
  }
  if (plan->workdir) {
    CHILD_CHECK(Call(SYS_chdir, plan->workdir), Stage::kChdirWorkdir, -1);
    long n = Call(SYS_getcwd, plan->cwd_buf, plan->cwd_buf_len);
    CHILD_CHECK(n, Stage::kVerifyWorkdir, -1);
    // Outside the root the kernel answers "(unreachable)/...": a leaked directory fd trick.
    if (plan->cwd_buf[0] != '/') ReportAndExit(plan->status_fd, Stage::kVerifyWorkdir, -EPERM, -1);
  }
  if (!plan->fds_in_prelude) ApplyDeathSignalAndFds(plan);
  for (std::size_t i = 0; i < plan->rlimit_count; ++i) {
    struct {
      std::uint64_t cur, max;
    } lim = {plan->rlimits[i].soft, plan->rlimits[i].hard};
    CHILD_CHECK(Call(SYS_prlimit64, 0, plan->rlimits[i].resource, &lim, 0), Stage::kRlimit,
                static_cast<int>(i));
  }
  if (plan->no_new_privs) {
    CHILD_CHECK(Call(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), Stage::kNoNewPrivs, -1);
  }
  if (plan->seccomp) {
    long r = Call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, plan->seccomp);
    if (r == -ENOSYS) r = Call(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, plan->seccomp, 0, 0);
    CHILD_CHECK(r, Stage::kSeccomp, -1);
  }
  ChildFailure f = SearchAndExec(plan->exec);
  ReportAndExit(plan->status_fd, f.stage, -static_cast<long>(f.error), f.index);
}

}  // namespace

void ReportAndExit(int fd, Stage stage, long neg_errno, int index) {
  ChildFailure f;
  f.stage = stage;
  f.error = static_cast<std::int32_t>(-neg_errno);
  f.index = index;
  long r;
  do {
    r = Call(SYS_write, fd, &f, sizeof(f));
  } while (r == -EINTR);
  for (;;) Call(SYS_exit_group, 127);
}

ChildFailure SearchAndExec(const ExecPlan& exec) {
  ChildFailure f;
  if (exec.exec_fd >= 0) {
    long r = Call(SYS_execveat, exec.exec_fd, "", exec.argv, exec.envp, AT_EMPTY_PATH);
    f.stage = Stage::kExec;
    f.error = static_cast<std::int32_t>(-r);
    return f;
  }
  bool saw_eacces = false;
  int relative_hit = -1;
  for (int i = 0; i < exec.candidate_count; ++i) {
    const char* path = exec.candidates[i];
    if (exec.relative && exec.relative[i]) {
      // Go's ErrDot rule: a command found only through a relative PATH entry is not run.
      if (relative_hit < 0 && Call(SYS_faccessat, AT_FDCWD, path, X_OK) == 0) relative_hit = i;
      continue;
    }
    long r = Call(SYS_execve, path, exec.argv, exec.envp);
    if (r == -ENOEXEC && exec.searched) {
      // No #! line and not a binary: run it with /bin/sh, as execvp does.
      exec.sh_argv[1] = path;
      r = Call(SYS_execve, "/bin/sh", exec.sh_argv, exec.envp);
    }
    if (r == -EACCES) {
      saw_eacces = true;
      continue;
    }
    if (exec.searched && IsSkippableExecError(r)) continue;
    f.stage = Stage::kExec;
    f.error = static_cast<std::int32_t>(-r);
    f.index = i;
    return f;
  }
  if (relative_hit >= 0 && !saw_eacces) {
    f.stage = Stage::kPathOnlyRelative;
    f.error = ENOENT;
    f.index = relative_hit;
    return f;
  }
  f.stage = exec.searched ? Stage::kPathSearch : Stage::kExec;
  f.error = saw_eacces ? EACCES : ENOENT;
  f.index = exec.searched ? -1 : 0;
  return f;
}

void RunChild(ChildPlan* plan) {
  if (plan->parts & ChildPlan::kPrelude) RunPrelude(plan);
  if (plan->parts & ChildPlan::kRootSetup) RunRootSetup(plan);
  if (plan->parts & ChildPlan::kIdentityAndExec) RunIdentityAndExec(plan);
}

int ChildEntry(void* arg) {
  auto* plan = static_cast<ChildPlan*>(arg);
  RunChild(plan);
  // Only the prelude-only plan (pid-namespace mode) gets here: exec the reaper.
  ChildFailure f = SearchAndExec(plan->exec);
  ReportAndExit(plan->status_fd, f.stage, -static_cast<long>(f.error), f.index);
}

}  // namespace slipway::executor
