// Spawn: start a command in a root directory, as a user, with exactly the environment, fds,
// namespaces and limits asked for -- the heart of RUN.
//
//   SpawnOptions o;
//   o.argv = {"sh", "-c", "id"};                 // argv[0] is searched in o.env's PATH, in the
//   root o.env = {"PATH=/usr/bin:/bin", "HOME=/"};    // exactly this: nothing is inherited o.root
//   = "/var/lib/slipway/rootfs"; o.credentials = Credentials{1000, 1000, GroupsMode::kSet, {1000,
//   20}}; o.namespaces = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC; o.fds = {{0,
//   devnull}, {1, out}, {2, out}}; SLIPWAY_ASSIGN_OR_RETURN(Process p, Spawn(o));
//   SLIPWAY_ASSIGN_OR_RETURN(ExitStatus st, p.Wait());
//
// How: everything is validated and prepared first (C strings, arrays, the fd plan, PATH
// candidates, id maps); then clone(CLONE_VM|CLONE_VFORK) on a private stack with every signal
// blocked, and the child runs child.h's stages with raw syscalls only. A child failure comes back
// as (stage, errno, index) and becomes an Error such as
//   setting supplementary groups [10000 20000]: Operation not permitted (no CAP_SETGID ...)
// A new user namespace needs the parent to write the id maps while the child waits: then the
// clone is without CLONE_VM, with a sync pipe.
//
// With CLONE_NEWPID the first process is a tiny reaper (pid 1): our own binary re-executed through
// an fd of /proc/self/exe opened at start-up (so a replaced or deleted binary still works), with
// argv[0] "slipway-reaper" and a sealed memfd holding the plan -- nothing a user can type. It sets
// up the root, forks the command, forwards SIGHUP/INT/QUIT/TERM/USR1/USR2, reaps orphans, and
// exits with the command's status (128+signal for a signal); the kernel then kills whatever the
// step left behind. Without a pid namespace, a step in its own process group is killed as a group
// after it exits.
//
// Guarantees: no allocation between clone and exec; nothing of the parent (fds, signal
// dispositions, environment) leaks into the command; Spawn is thread-safe.
#ifndef SLIPWAY_EXECUTOR_SPAWN_H_
#define SLIPWAY_EXECUTOR_SPAWN_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "executor/fd_plan.h"
#include "executor/seccomp.h"

namespace slipway::executor {

// The largest id we accept (moby's rule; (uint32)-1 means "unchanged" to the kernel).
inline constexpr std::uint32_t kMaxSpawnId = 2147483647u;

// Supplementary groups have three states, and they are not interchangeable:
//   kKeep  -- do not call setgroups (works without CAP_SETGID);
//   kClear -- setgroups(0, NULL): drop every inherited group;
//   kSet   -- setgroups(list).
enum class GroupsMode { kKeep, kClear, kSet };

struct Credentials {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  GroupsMode groups_mode = GroupsMode::kKeep;
  std::vector<std::uint32_t> groups;  // for kSet
};

struct IdMap {
  std::uint32_t inside, outside, count;
};

struct MountSpec {
  std::string source;
  std::string target;  // a host path; the mount happens before the root switch
  std::string fstype;
  unsigned long flags = 0;
  std::string data;
};

struct RlimitSpec {
  int resource;  // RLIMIT_*
  std::uint64_t soft, hard;
};

enum class RootSwitch { kChroot, kPivotRoot };

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0]: a path (with '/') or a name searched in env's PATH
  std::vector<std::string> env;   // the command's whole environment
  std::string root;               // empty: the parent's root
  RootSwitch root_switch = RootSwitch::kChroot;  // kPivotRoot needs CLONE_NEWNS
  std::string workdir;                           // absolute, inside the root; empty: "/"
  std::optional<Credentials> credentials;
  int namespaces = 0;  // CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | ...
  std::vector<IdMap> uid_map, gid_map;  // with CLONE_NEWUSER
  bool userns_allow_setgroups = false;  // writes "allow" (needs CAP_SETGID outside) or "deny"
  std::string hostname;                 // needs CLONE_NEWUTS
  std::vector<MountSpec> mounts;        // need CLONE_NEWNS
  std::vector<FdMapping> fds;           // child fd <- parent fd; every other fd is closed
  bool new_session = false;
  bool new_process_group = false;
  int parent_death_signal = 0;
  bool no_new_privs = false;
  std::optional<std::uint64_t> capability_bounding_set;  // bits of the capabilities to keep
  std::vector<RlimitSpec> rlimits;
  const SeccompProgram* seccomp = nullptr;  // must outlive Spawn()
  // Refuse, before cloning, a groups change this process cannot make (see GroupsMode). Tests turn
  // it off to reach the child's own setgroups failure.
  bool preflight_groups_check = true;
};

struct ExitStatus {
  int code = 0;    // exit code when the process exited
  int signal = 0;  // the terminating signal, or 0
  bool timed_out = false;
  // What a shell would report: the code, or 128 + signal.
  int ShellStatus() const { return signal ? 128 + signal : code; }
  std::string ToString() const;
};

class Process {
 public:
  Process(Process&&) = default;
  Process& operator=(Process&&) = default;
  ~Process();  // kills and reaps a step that is still running

  pid_t pid() const { return pid_; }
  // Waits for the step to end; with a timeout, kills it when the time is up (timed_out is set).
  // Afterwards nothing of the step is left running (pid namespace or process group killed).
  Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Sends a signal to the step (to the reaper in a pid namespace, which forwards it).
  Result<void> Signal(int sig);

 private:
  friend Result<Process> Spawn(const SpawnOptions& options);

// Starts pid-namespace reapers from `elf` -- a static executable linked with this library, e.g.
// //executor:reaper_bin -- held in a sealed memfd, instead of re-executing /proc/self/exe. A
// large dynamically linked program saves its own start-up (tens of milliseconds of loading
// shared libraries) on every step. Call once, early, before any Spawn.
Result<void> UseReaperImage(std::string_view elf);
  Process(pid_t pid, UniqueFd pidfd, bool kill_group)
      : pid_(pid), pidfd_(std::move(pidfd)), kill_group_(kill_group) {}
  void KillRest();

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool kill_group_ = false;
  bool done_ = false;
};

Result<Process> Spawn(const SpawnOptions& options);

// Starts pid-namespace reapers from `elf` -- a static executable linked with this library, e.g.
// //executor:reaper_bin -- held in a sealed memfd, instead of re-executing /proc/self/exe. A
// large dynamically linked program saves its own start-up (tens of milliseconds of loading
// shared libraries) on every step. Call once, early, before any Spawn.
Result<void> UseReaperImage(std::string_view elf);

// Whether this process could call setgroups(2) now, and if not, why ("no CAP_SETGID in this user
// namespace", "setgroups is denied in this user namespace").
bool CanSetGroups(std::string* why);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_SPAWN_H_
