// RUN: one build step in the stage's root, isolated the way a container runtime would.
//
//   RunRequest r;
//   r.root = snapshot->root(); r.argv = {"/bin/sh", "-c", "id"}; r.env = image_env;
//   r.user = "foo"; r.scratch = step_tmp; r.output = [](std::string_view l) { ... };
//   SLIPWAY_ASSIGN_OR_RETURN(RunOutcome out, RunStep(r));
//
// The step gets: a private mount namespace with a fresh /proc and a minimal /dev (null, zero,
// full, random, urandom, tty, pts, shm, fd, std{in,out,err}); /etc/hosts, /etc/resolv.conf and
// /etc/hostname bound from the step's scratch directory (so nothing of them lands in a layer);
// new pid, uts and ipc namespaces (and a network namespace for --network=none); the USER
// resolved by userdb against the root *now* -- uid, gid and supplementary groups (set exactly;
// where setgroups is denied, a list that differs from the current one only by the primary gid
// is left alone, since the kernel grants the same access; any other change that cannot be
// made is an error); the
// environment given plus PATH, HOME (the user's, default /) and HOSTNAME when they are unset;
// no_new_privs, Docker's default capability bounding set and a seccomp filter; stdin /dev/null,
// stdout and stderr to `output` line by line. Mount points the image lacks are created and
// removed again afterwards; the directories that held them are reported so that the snapshot can
// leave them out when nothing else changed in them.
//
// RUN --mount: bind (read-only, or a private copy when rw), cache (kept in `cache_dir` by id,
// sharing=locked holds a lock), tmpfs, secret (from `secrets`, as a file or `env=`), ssh (a
// socket of the step's own, owner and mode as asked, forwarded to the agent in `ssh_agents`;
// SSH_AUTH_SOCK points at it).
#ifndef SLIPWAY_EXECUTOR_RUN_STEP_H_
#define SLIPWAY_EXECUTOR_RUN_STEP_H_

#include <sys/stat.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "dockerfile/instructions.h"
#include "executor/seccomp.h"
#include "executor/spawn.h"

namespace slipway::executor {

struct RunRequest {
  std::string root;  // host path of the directory the step sees as /
  std::vector<std::string> argv;
  std::vector<std::string> env;  // KEY=VALUE (image ENV and build args)
  std::string user;              // USER spec; empty: root
  std::string workdir = "/";
  std::string network;  // "", "default", "host" or "none"
  std::vector<dockerfile::Mount> mounts;
  // Host roots for RUN --mount from= (by the value of from=); "" is the build context.
  std::map<std::string, std::string> mount_roots;
  std::map<std::string, std::string> secrets;  // id -> host file
  std::map<std::string, std::string> ssh_agents;  // id -> host SSH agent socket (--ssh)
  std::string cache_dir;                       // RUN --mount=type=cache storage
  std::string scratch;                         // an empty directory for this step
  std::string hostname = "slipway";
  std::string script;  // a heredoc script (#!...) to run instead of argv, or empty
  const SeccompProgram* seccomp = nullptr;
  std::function<void(std::string_view line)> output;
  // Called with the running process after it started, and with nullptr before it is released.
  std::function<void(Process*)> on_process;
};

// A directory of the root that held a mount point we created and removed; its metadata before.
struct TouchedDir {
  std::string path;  // relative to the root
  struct stat before;
};

struct RunOutcome {
  ExitStatus status;
  std::vector<std::string> warnings;
  std::vector<TouchedDir> touched;
};

Result<RunOutcome> RunStep(const RunRequest& request);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_RUN_STEP_H_
