// Spawn benchmark: latency of starting /bin/true and waiting for it, with Slipway's core vs
// posix_spawn vs fork+execve, each with the parent at ~0 and at 1 GiB resident, in one run; plus
// the cost of a full sandbox (chroot + mount/pid/uts/ipc namespaces + credentials + seccomp).
//
//   bazel run -c opt //bench:spawn_bench [-- --iterations N]
//
// The sandbox figure needs root (namespaces, chroot); without it that line says so.
#include <fcntl.h>
#include <linux/sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "executor/spawn.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using slipway::executor::SpawnOptions;

// Median of per-call times in microseconds.
template <typename F>
double MedianMicros(int iterations, F&& f) {
  std::vector<double> t;
  t.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto a = Clock::now();
    if (!f()) {
      std::fprintf(stderr, "a spawn failed\n");
      std::exit(1);
    }
    t.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

bool Slipway(const SpawnOptions& o) {
  auto p = slipway::executor::Spawn(o);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", p.error().ToString().c_str());
    return false;
  }
  auto st = p->Wait();
  return st.ok() && st->code == 0;
}

bool PosixSpawn() {
  pid_t pid;
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  char* envp[] = {nullptr};
  if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, envp) != 0) return false;
  int st;
  return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool ForkExec() {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  char* envp[] = {nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    execve("/bin/true", argv, envp);
    _exit(127);
  }
  int st;
  return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

void Row(const char* label, double ours, double posix, double forked) {
  std::printf(
      "%-22s slipway %8.1f us   posix_spawn %8.1f us   fork+execve %8.1f us   "
      "slipway/posix_spawn %.2fx\n",
      label, ours, posix, forked, ours / posix);
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 400;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--iterations")) iterations = std::atoi(argv[i + 1]);
  }
  SpawnOptions plain;
  plain.argv = {"/bin/true"};

  std::printf("spawn benchmark: median of %d runs of /bin/true (start + wait)\n", iterations);
  // Warm up the page cache and the dynamic loader's caches.
  MedianMicros(20, [&] { return Slipway(plain); });
  MedianMicros(20, PosixSpawn);

  double ours = MedianMicros(iterations, [&] { return Slipway(plain); });
  double posix = MedianMicros(iterations, PosixSpawn);
  double forked = MedianMicros(iterations, ForkExec);
  Row("parent ~0 resident:", ours, posix, forked);

  // 1 GiB resident: touch every page so fork has page tables to copy.
  const std::size_t kBig = std::size_t{1} << 30;
  char* big = static_cast<char*>(
      mmap(nullptr, kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (big == MAP_FAILED) return 1;
  for (std::size_t i = 0; i < kBig; i += 4096) big[i] = 1;
  ours = MedianMicros(iterations, [&] { return Slipway(plain); });
  posix = MedianMicros(iterations, PosixSpawn);
  forked = MedianMicros(iterations / 4, ForkExec);
  Row("parent 1 GiB resident:", ours, posix, forked);
  munmap(big, kBig);

  // The full sandbox: a root holding a static busybox, every namespace RUN uses, credentials,
  // no_new_privs and the default seccomp profile.
  if (geteuid() != 0) {
    std::printf("full sandbox: not measured (needs root for namespaces and chroot)\n");
    return 0;
  }
  char tmpl[] = "/tmp/slipway-spawn-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string root = tmpl;
  std::filesystem::create_directories(root + "/bin");
  std::filesystem::permissions(root, std::filesystem::perms(0755));
  std::filesystem::copy_file("/bin/busybox", root + "/bin/true");
  auto prog = slipway::executor::SeccompProgram::Default();
  if (!prog.ok()) return 1;
  SpawnOptions sandbox;
  sandbox.argv = {"/bin/true"};
  sandbox.env = {"PATH=/bin"};
  sandbox.root = root;
  sandbox.namespaces = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  sandbox.hostname = "bench";
  sandbox.credentials = slipway::executor::Credentials{
      1000, 1000, slipway::executor::GroupsMode::kSet, {1000, 20000}};
  sandbox.no_new_privs = true;
  sandbox.seccomp = &*prog;
  SpawnOptions chroot_only;
  chroot_only.argv = {"/bin/true"};
  chroot_only.root = root;
  const int n = std::max(20, iterations / 4);
  double chroot_us = MedianMicros(n, [&] { return Slipway(chroot_only); });
  double sandbox_us = MedianMicros(n, [&] { return Slipway(sandbox); });
  std::printf("chroot only:            slipway %8.1f us\n", chroot_us);
  std::printf(
      "full sandbox:           slipway %8.1f us   (chroot + mount/pid/uts/ipc namespaces"
      " + reaper + credentials + seccomp; %.1f us over posix_spawn at ~0)\n",
      sandbox_us, sandbox_us - posix);
  std::filesystem::remove_all(root);
  return 0;
}
