// No allocation between clone and exec: this binary replaces malloc and friends with versions
// that abort when called in a process other than the test's own main process while sharing its
// memory -- that is, in a spawned child before exec (CLONE_VM), or in a fork-style child that
// still carries the test's globals. A child that allocated would die of SIGABRT instead of
// running the command.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <new>

#include "base/test_util.h"
#include "executor/spawn.h"
#include "executor/spawn_test_util.h"

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {
volatile long g_main_pid = 0;  // set in main(); 0 in a re-executed reaper
// The exit status of a child that allocated (a plain exit: doctest's own signal handlers must not
// get a say in the child).
constexpr int kAllocatedInChild = 99;

void CheckNotInChild() {
  if (g_main_pid != 0 && syscall(SYS_getpid) != g_main_pid) {
    static const char msg[] = "allocation in a spawned child before exec\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    syscall(SYS_exit_group, kAllocatedInChild);
  }
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  CheckNotInChild();
  return __libc_malloc(n);
}
void free(void* p) {
  CheckNotInChild();
  __libc_free(p);
}
void* calloc(size_t a, size_t b) {
  CheckNotInChild();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  CheckNotInChild();
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
  CheckNotInChild();
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  CheckNotInChild();
  *out = __libc_memalign(a, n);
  return *out ? 0 : ENOMEM;
}
void* aligned_alloc(size_t a, size_t n) {
  CheckNotInChild();
  return __libc_memalign(a, n);
}
}

namespace slipway::executor {
namespace {

using testing::ProbePath;
using testing::ProbeRoot;
using testing::RunCaptured;

TEST_CASE("noalloc: the trap fires when a child allocates") {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    void* volatile p = malloc(16);
    _exit(p ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == kAllocatedInChild);
}

// Every child-side path: each spawn must run its command (exit 0) or report its failure, and
// never exit with kAllocatedInChild.
TEST_CASE("noalloc: spawning allocates nothing in the child, on success and failure paths") {
  ProbeRoot r;
  std::filesystem::copy_file(ProbePath(), r.root + "/bin/probe");
  slipway::testing::WriteFile(r.root + "/bin/script", "exit 0\n", 0755);
  std::filesystem::copy_file(ProbePath(), r.root + "/bin/sh");
  slipway::testing::MakeDirs(r.root + "/work");
  auto prog = SeccompProgram::Default();
  REQUIRE(prog.ok());
  UniqueFd a(open("/dev/null", O_RDONLY | O_CLOEXEC)), b(open("/dev/zero", O_RDONLY | O_CLOEXEC));

  auto base = [&]() {
    SpawnOptions o;
    o.argv = {"probe", "exit", "0"};
    o.env = {"PATH=/nope:/also-nope:/bin", "X=1"};
    o.root = r.root;
    o.workdir = "/work";
    o.credentials = Credentials{getuid(), getgid(), GroupsMode::kKeep, {}};
    o.rlimits = {{RLIMIT_CORE, 0, 0}};
    o.no_new_privs = true;
    o.seccomp = &*prog;
    o.new_process_group = true;
    o.parent_death_signal = SIGKILL;
    o.fds = {{5, a.get()}, {6, b.get()}, {7, a.get()}};
    return o;
  };
  SUBCASE("full plan, plain clone") {
    auto c = RunCaptured(base());
    REQUIRE_MESSAGE(c.ok(), c.error().ToString());
    CHECK(c->status.code == 0);
    CHECK(c->status.signal == 0);
  }
  SUBCASE("ENOEXEC falls back to /bin/sh") {
    SpawnOptions o = base();
    o.argv = {"script"};
    auto c = RunCaptured(o);
    REQUIRE(c.ok());
    // /bin/sh here is the probe, which exits 2 for the unknown mode "/bin/script".
    CHECK(c->status.code == 2);
  }
  SUBCASE("pid and mount namespaces, pivot_root") {
    SpawnOptions o = base();
    o.namespaces = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
    o.hostname = "noalloc";
    o.root_switch = RootSwitch::kPivotRoot;
    auto c = RunCaptured(o);
    REQUIRE_MESSAGE(c.ok(), c.error().ToString());
    CHECK(c->status.code == 0);
  }
  SUBCASE("user namespace (clone without CLONE_VM)") {
    SpawnOptions o = base();
    o.namespaces = CLONE_NEWUSER | CLONE_NEWNS;
    o.uid_map = {{0, getuid(), 1}};
    o.gid_map = {{0, getgid(), 1}};
    o.credentials = Credentials{0, 0, GroupsMode::kKeep, {}};
    auto c = RunCaptured(o);
    REQUIRE_MESSAGE(c.ok(), c.error().ToString());
    CHECK(c->status.code == 0);
  }
  SUBCASE("failure paths report instead of aborting") {
    SpawnOptions missing = base();
    missing.argv = {"no-such-command"};
    auto e1 = Spawn(missing);
    REQUIRE_FALSE(e1.ok());
    CHECK(e1.error().errno_value() == ENOENT);
    SpawnOptions bad_dir = base();
    bad_dir.workdir = "/missing";
    auto e2 = Spawn(bad_dir);
    REQUIRE_FALSE(e2.ok());
    CHECK(e2.error().errno_value() == ENOENT);
  }
}

}  // namespace
}  // namespace slipway::executor

int main(int argc, char** argv) {
  g_main_pid = syscall(SYS_getpid);
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
