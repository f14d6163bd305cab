// The fork/exec core, unprivileged: Bazel's sandbox runs this as uid 0 in a user namespace where
// only root is mapped and setgroups is denied. Everything that does not need real root is here.
#define DOCTEST_CONFIG_IMPLEMENT
#include "executor/spawn.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/test_util.h"
#include "executor/spawn_test_util.h"

namespace slipway::executor {
namespace {

using testing::Captured;
using testing::ProbePath;
using testing::ProbeRoot;
using testing::RunCaptured;

SpawnOptions Probe(std::vector<std::string> args) {
  SpawnOptions o;
  o.argv = {ProbePath()};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return o;
}

Captured MustRun(const SpawnOptions& o) {
  auto r = RunCaptured(o);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return *r;
}

Error MustFail(const SpawnOptions& o) {
  auto r = Spawn(o);
  REQUIRE_FALSE(r.ok());
  return r.error();
}

TEST_CASE("spawn: runs a command with exactly the given environment and arguments") {
  SpawnOptions o = Probe({"env"});
  o.env = {"A=1", "PATH=/nowhere", "EMPTY="};
  Captured c = MustRun(o);
  CHECK(c.status.code == 0);
  CHECK(c.out == "A=1\nPATH=/nowhere\nEMPTY=\n");
  Captured args = MustRun(Probe({"args", "with space", "", "$HOME"}));
  CHECK(args.out == "with space\n\n$HOME\n");
}

TEST_CASE("spawn: exit codes and signals come back; ShellStatus is 128+signal") {
  Captured c = MustRun(Probe({"exit", "7"}));
  CHECK(c.status.code == 7);
  CHECK(c.status.signal == 0);
  Captured k = MustRun(Probe({"kill", "9"}));
  CHECK(k.status.signal == 9);
  CHECK(k.status.ShellStatus() == 137);
}

TEST_CASE("spawn: only mapped fds reach the child, even fds opened without CLOEXEC") {
  int leaked = open("/dev/null", O_RDONLY);  // deliberately not O_CLOEXEC
  REQUIRE(leaked >= 0);
  int dup_high = fcntl(leaked, F_DUPFD, 50);  // neither is this
  SpawnOptions o = Probe({"fds"});
  UniqueFd extra(open("/dev/null", O_RDONLY | O_CLOEXEC));
  o.fds = {{7, extra.get()}};
  Captured c = MustRun(o);
  CHECK(c.out == "0 1 2 7\n");
  close(leaked);
  close(dup_high);
}

TEST_CASE("spawn: signal dispositions are reset: an ignored SIGPIPE is not inherited") {
  auto old = signal(SIGPIPE, SIG_IGN);
  Captured c = MustRun(Probe({"sigdisp"}));
  signal(SIGPIPE, old);
  CHECK(c.out == "default\n");
}

TEST_CASE("spawn: PATH search happens in the command's env and inside the root") {
  ProbeRoot r;
  std::filesystem::copy_file(ProbePath(), r.root + "/bin/probe-in-bin");
  SpawnOptions o;
  o.argv = {"probe-in-bin", "args", "found"};
  o.env = {"PATH=/missing:/bin"};
  o.root = r.root;
  Captured c = MustRun(o);
  CHECK(c.status.code == 0);
  CHECK(c.out == "found\n");
}

TEST_CASE("spawn: PATH search skips EACCES entries, falls back to /bin/sh on ENOEXEC") {
  ProbeRoot r;
  // /a/tool is not executable, /b/tool is a script without #! line: run by /bin/sh, which here is
  // the probe printing its arguments.
  slipway::testing::WriteFile(r.root + "/a/tool", "x", 0644);
  slipway::testing::WriteFile(r.root + "/b/tool", "echo hi\n", 0755);
  std::filesystem::copy_file(ProbePath(), r.root + "/bin/sh");
  SpawnOptions o;
  o.argv = {"tool", "one"};
  o.env = {"PATH=/a:/b"};
  o.root = r.root;
  Captured c = MustRun(o);
  // /bin/sh (the probe) got argv {"/bin/sh", "/b/tool", "one"}: mode "/b/tool" is unknown -> 2.
  CHECK(c.status.code == 2);
}

TEST_CASE("spawn: exec failures name the stage, the file and the errno") {
  ProbeRoot r;
  slipway::testing::WriteFile(r.root + "/noexec", "x", 0644);
  slipway::testing::WriteFile(r.root + "/garbage", std::string(64, '\x01'), 0755);
  slipway::testing::WriteFile(r.root + "/a/tool", "x", 0644);
  SUBCASE("ENOENT in PATH") {
    SpawnOptions o;
    o.argv = {"nope"};
    o.env = {"PATH=/bin:/usr/bin"};
    o.root = r.root;
    Error e = MustFail(o);
    CHECK(e.errno_value() == ENOENT);
    CHECK(e.ToString() == "finding \"nope\" in PATH=/bin:/usr/bin inside " + r.root +
                              ": No such file or directory (no such file in the root)");
  }
  SUBCASE("EACCES for a non-executable path") {
    SpawnOptions o;
    o.argv = {"/noexec"};
    o.root = r.root;
    Error e = MustFail(o);
    CHECK(e.errno_value() == EACCES);
    CHECK(e.message() == "executing the command /noexec");
  }
  SUBCASE("EACCES wins over ENOENT in a search") {
    SpawnOptions o;
    o.argv = {"tool"};
    o.env = {"PATH=/a:/b"};
    o.root = r.root;
    CHECK(MustFail(o).errno_value() == EACCES);
  }
  SUBCASE("ENOEXEC for an explicit path is not retried with /bin/sh") {
    SpawnOptions o;
    o.argv = {"/garbage"};
    o.root = r.root;
    Error e = MustFail(o);
    CHECK(e.errno_value() == ENOEXEC);
    CHECK(e.hint() == "not an executable format this kernel can run");
  }
  SUBCASE("a command found only through a relative PATH entry is refused") {
    std::filesystem::copy_file(ProbePath(), r.root + "/tmp/rel");
    SpawnOptions o;
    o.argv = {"rel"};
    o.env = {"PATH=.:/bin"};
    o.root = r.root;
    o.workdir = "/tmp";
    Error e = MustFail(o);
    CHECK(e.message() ==
          "finding \"rel\": it is only found as ./rel, relative to the working directory; "
          "refusing to run it");
  }
}

TEST_CASE("spawn: root and workdir failures are reported with their stage") {
  ProbeRoot r;
  SUBCASE("missing root") {
    SpawnOptions o = Probe({"cwd"});
    o.argv[0] = "/probe";
    o.root = r.tmp.Join("no-such-root");
    Error e = MustFail(o);
    CHECK(e.errno_value() == ENOENT);
    CHECK(e.message() == "switching to the root directory (chroot) " + o.root);
  }
  SUBCASE("missing workdir") {
    SpawnOptions o;
    o.argv = {"/probe", "cwd"};
    o.root = r.root;
    o.workdir = "/no/such/dir";
    Error e = MustFail(o);
    CHECK(e.errno_value() == ENOENT);
    CHECK(e.ToString() ==
          "entering the working directory /no/such/dir: No such file or directory "
          "(no such directory in the root)");
  }
  SUBCASE("workdir is entered inside the root") {
    slipway::testing::MakeDirs(r.root + "/work/dir");
    SpawnOptions o;
    o.argv = {"/probe", "cwd"};
    o.root = r.root;
    o.workdir = "/work/dir";
    CHECK(MustRun(o).out == "/work/dir\n");
  }
  SUBCASE("relative workdir is refused before cloning") {
    SpawnOptions o = Probe({"cwd"});
    o.workdir = "relative";
    CHECK(MustFail(o).message() == "spawn: working directory \"relative\" is not absolute");
  }
}

TEST_CASE("spawn: invalid plans are refused before cloning") {
  SpawnOptions o = Probe({"ids"});
  SUBCASE("uid -1") {
    o.credentials = Credentials{0xffffffffu, 0, GroupsMode::kKeep, {}};
    CHECK(MustFail(o).message() == "uid 4294967295 is out of range (0..2147483647)");
  }
  SUBCASE("gid above 2^31-1") {
    o.credentials = Credentials{0, 2147483648u, GroupsMode::kKeep, {}};
    CHECK(MustFail(o).message() == "gid 2147483648 is out of range (0..2147483647)");
  }
  SUBCASE("mounts without a mount namespace") {
    o.mounts = {{"proc", "/tmp/x", "proc", 0, ""}};
    CHECK(MustFail(o).message().find("refusing to mount on the host") != std::string::npos);
  }
  SUBCASE("a closed parent fd") {
    o.fds = {{3, 999}};
    CHECK(MustFail(o).message() == "spawn: parent fd 999 (for child fd 3) is not open");
  }
  SUBCASE("NUL in an argument") {
    o.argv.push_back(std::string("a\0b", 3));
    CHECK(MustFail(o).errno_value() == EINVAL);
  }
}

// ---- Groups, unprivileged -------------------------------------------------------------------

std::vector<std::uint32_t> MyGroups() {
  int n = getgroups(0, nullptr);
  std::vector<gid_t> g(n);
  REQUIRE(getgroups(n, g.data()) >= 0);
  return std::vector<std::uint32_t>(g.begin(), g.end());
}

TEST_CASE("spawn: unprivileged, Keep works and an impossible Set fails before cloning") {
  std::string why;
  const bool can = CanSetGroups(&why);
  if (can) {
    MESSAGE(
        "this process can call setgroups; the unprivileged path is covered where it cannot "
        "(Bazel's sandbox)");
  }
  // Keep never calls setgroups: always fine.
  SpawnOptions keep = Probe({"ids"});
  keep.credentials = Credentials{getuid(), getgid(), GroupsMode::kKeep, {}};
  Captured c = MustRun(keep);
  CHECK(c.status.code == 0);

  if (!can) {
    // Set to exactly the current groups: nothing to change, so it behaves as Keep.
    SpawnOptions same = keep;
    same.credentials->groups_mode = GroupsMode::kSet;
    same.credentials->groups = MyGroups();
    CHECK(MustRun(same).status.code == 0);

    // Set to something else: a clear error before any process starts.
    SpawnOptions differ = keep;
    differ.credentials->groups_mode = GroupsMode::kSet;
    differ.credentials->groups = {10000, 20000};
    Error e = MustFail(differ);
    CHECK(e.errno_value() == EPERM);
    CHECK(e.message().find("setting supplementary groups [10000 20000] is not possible") == 0);
    CHECK(e.hint() == why);

    // Clear when groups are not empty is impossible too -- and must not be skipped silently.
    if (!MyGroups().empty()) {
      SpawnOptions clear = keep;
      clear.credentials->groups_mode = GroupsMode::kClear;
      CHECK(MustFail(clear).message().find("clearing supplementary groups is not possible") == 0);
    }

    // Without the pre-flight check the child's own setgroups fails, reported as its stage.
    SpawnOptions raw = differ;
    raw.preflight_groups_check = false;
    Error child = MustFail(raw);
    CHECK(child.errno_value() == EPERM);
    CHECK(child.message() == "setting supplementary groups [10000 20000]");
    CHECK(child.hint() == why);
  }
}

TEST_CASE("spawn: setuid to an unmapped uid fails in the child with a hint") {
  std::ifstream m("/proc/self/uid_map");
  std::string line, all;
  while (std::getline(m, line)) all += line + "\n";
  // Only meaningful where uid 12345 is not mapped (Bazel's sandbox maps root alone).
  std::istringstream in(all);
  std::uint64_t inside, outside, count;
  bool mapped = false;
  while (in >> inside >> outside >> count) mapped |= 12345 >= inside && 12345 < inside + count;
  if (mapped) {
    MESSAGE("uid 12345 is mapped here; the unmapped-uid path runs in Bazel's sandbox");
    CHECK(mapped);
    return;
  }
  SpawnOptions o = Probe({"ids"});
  o.credentials = Credentials{12345, 0, GroupsMode::kKeep, {}};
  Error e = MustFail(o);
  CHECK(e.errno_value() == EINVAL);
  CHECK(e.message() == "setting the user id to 12345");
  CHECK(e.hint() == "the id is not mapped in this user namespace");
}

// ---- Seccomp, rlimits, no_new_privs ---------------------------------------------------------

TEST_CASE("spawn: the default seccomp profile makes a denied syscall fail with EPERM") {
  auto prog = SeccompProgram::Default();
  REQUIRE(prog.ok());
  SpawnOptions o = Probe({"unshare"});
  o.no_new_privs = true;
  o.seccomp = &*prog;
  Captured c = MustRun(o);
  CHECK(c.out == std::to_string(EPERM) + "\n");
  // Without the filter the same call is allowed here (we hold CAP_SYS_ADMIN in our namespace)
  // or fails for another reason -- but never because of seccomp's EPERM when we are root.
  SpawnOptions plain = Probe({"unshare"});
  std::string out = MustRun(plain).out;
  if (geteuid() == 0) CHECK(out == "ok\n");
}

TEST_CASE("spawn: a resource limit the process may not raise is a reported stage failure") {
  SpawnOptions o = Probe({"ids"});
  o.rlimits = {{RLIMIT_NOFILE, 1u << 30, 1u << 30}};  // above the kernel's nr_open: EPERM
  Error e = MustFail(o);
  CHECK(e.message() == "setting a resource limit (resource " + std::to_string(RLIMIT_NOFILE) + ")");
}

TEST_CASE("spawn: rlimits are applied") {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "ulimit -n"};
  o.env = {"PATH=/bin:/usr/bin"};
  o.rlimits = {{RLIMIT_NOFILE, 77, 77}};
  CHECK(MustRun(o).out == "77\n");
}

TEST_CASE("spawn: a custom Docker-format profile is enforced with its errnoRet") {
  auto prog = SeccompProgram::FromProfile(
      R"({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]})",
      "custom.json");
  REQUIRE_MESSAGE(prog.ok(), prog.error().ToString());
  SpawnOptions o = Probe({"unshare"});
  o.no_new_privs = true;
  o.seccomp = &*prog;
  CHECK(MustRun(o).out == "13\n");
}

// ---- User namespaces ------------------------------------------------------------------------

TEST_CASE("spawn: a new user namespace gets the parent-written id maps") {
  SpawnOptions o = Probe({"ids"});
  o.namespaces = CLONE_NEWUSER;
  o.uid_map = {{0, getuid(), 1}};
  o.gid_map = {{0, getgid(), 1}};
  Captured c = MustRun(o);
  CHECK(c.status.code == 0);
  CHECK(c.out.rfind("0 0", 0) == 0);

  SUBCASE("setgid to a gid the map does not contain") {
    SpawnOptions bad = o;
    bad.credentials = Credentials{0, 5, GroupsMode::kKeep, {}};
    Error e = MustFail(bad);
    CHECK(e.errno_value() == EINVAL);
    CHECK(e.message() == "setting the group id to 5");
    CHECK(e.hint() == "the id is not mapped in this user namespace");
  }
  SUBCASE("Set groups with setgroups denied in the new namespace: refused before cloning") {
    SpawnOptions bad = o;
    bad.credentials = Credentials{0, 0, GroupsMode::kSet, {0}};
    Error e = MustFail(bad);
    CHECK(e.message().find("setting supplementary groups [0] is not possible") == 0);
    CHECK(e.hint() == "the new user namespace is created with setgroups denied");
  }
  SUBCASE("an impossible map is reported") {
    SpawnOptions bad = o;
    bad.uid_map = {{0, 4000000000u, 1}};
    Error e = MustFail(bad);
    CHECK(e.message().find("writing the user namespace id maps: writing /proc/") == 0);
  }
}

// ---- Pid namespace and the reaper -----------------------------------------------------------

SpawnOptions InPidNamespace(std::vector<std::string> args) {
  SpawnOptions o = Probe(std::move(args));
  o.namespaces = CLONE_NEWPID | CLONE_NEWNS;
  return o;
}

TEST_CASE("spawn: in a pid namespace the command runs under a reaper") {
  Captured pid = MustRun(InPidNamespace({"pid"}));
  CHECK(pid.status.code == 0);
  CHECK(pid.out == "2\n");  // the reaper is 1
  CHECK(MustRun(InPidNamespace({"exit", "9"})).status.code == 9);
  Captured killed = MustRun(InPidNamespace({"kill", "15"}));
  CHECK(killed.status.code == 128 + 15);
  CHECK(killed.status.ShellStatus() == 143);
}

TEST_CASE("spawn: orphans are reaped inside the pid namespace") {
  CHECK(MustRun(InPidNamespace({"orphan"})).out == "reaped\n");
}

// Whether `pid` is gone (or a zombie nobody will run again), waiting up to two seconds.
bool GoneSoon(pid_t pid) {
  for (int i = 0; i < 100; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    const auto close_paren = line.rfind(')');
    if (close_paren != std::string::npos && line.size() > close_paren + 2 &&
        line[close_paren + 2] == 'Z') {
      return true;
    }
    usleep(20 * 1000);
  }
  return false;
}

TEST_CASE("spawn: a background daemon does not survive the step") {
  SUBCASE("pid namespace: even a daemon that left the process group is killed") {
    // RunCaptured reads stdout to EOF: it returns only because the daemon, which holds stdout,
    // died with the namespace.
    Captured c = MustRun(InPidNamespace({"daemon-setsid"}));
    CHECK(c.status.code == 0);
    int left = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::ifstream cmd(e.path() / "cmdline");
      std::string s;
      std::getline(cmd, s, '\0');
      if (s == ProbePath()) ++left;
    }
    CHECK(left == 0);
  }
  SUBCASE("process group: the group is killed after the command exits") {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    UniqueFd rd(p[0]), wr(p[1]);
    SpawnOptions o = Probe({"daemon"});
    o.new_process_group = true;
    o.fds = {{1, wr.get()}};
    auto proc = Spawn(o);
    REQUIRE(proc.ok());
    wr.Reset();
    char buf[32] = {};
    REQUIRE(read(rd.get(), buf, sizeof(buf) - 1) > 0);
    const pid_t daemon = std::atoi(buf);
    REQUIRE(daemon > 0);
    auto st = proc->Wait();
    REQUIRE(st.ok());
    CHECK(st->code == 0);
    CHECK(GoneSoon(daemon));
  }
}

TEST_CASE("spawn: SIGTERM sent to the step reaches the command through the reaper") {
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  UniqueFd rd(p[0]), wr(p[1]);
  SpawnOptions o = InPidNamespace({"sigterm"});
  o.fds = {{1, wr.get()}};
  auto proc = Spawn(o);
  REQUIRE_MESSAGE(proc.ok(), proc.error().ToString());
  wr.Reset();
  char buf[16] = {};
  REQUIRE(read(rd.get(), buf, 6) == 6);  // "ready\n"
  REQUIRE(proc->Signal(SIGTERM).ok());
  auto st = proc->Wait();
  REQUIRE(st.ok());
  CHECK(st->code == 42);
}

TEST_CASE("spawn: a timeout kills the step") {
  auto proc = Spawn(InPidNamespace({"sigterm"}));
  REQUIRE(proc.ok());
  auto st = proc->Wait(std::chrono::milliseconds(200));
  REQUIRE(st.ok());
  CHECK(st->timed_out);
  CHECK(st->signal == SIGKILL);
}

TEST_CASE("spawn: stage failures inside the pid namespace are reported too") {
  ProbeRoot r;
  SpawnOptions o;
  o.argv = {"/probe", "cwd"};
  o.root = r.root;
  o.workdir = "/missing";
  o.namespaces = CLONE_NEWPID | CLONE_NEWNS;
  Error e = MustFail(o);
  CHECK(e.message() == "entering the working directory /missing");
  o.workdir = "";
  o.argv = {"/nothing-here"};
  CHECK(MustFail(o).errno_value() == ENOENT);
  o.argv = {"/probe", "cwd"};
  o.root_switch = RootSwitch::kPivotRoot;
  Captured c = MustRun(o);
  CHECK(c.out == "/\n");
}

TEST_CASE("spawn: mounts, hostname and a fresh /proc in new namespaces") {
  ProbeRoot r;
  slipway::testing::MakeDirs(r.root + "/proc");
  SpawnOptions o;
  o.argv = {"/probe", "pid"};
  o.root = r.root;
  o.namespaces = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  o.hostname = "buildhost";
  o.mounts = {{"proc", r.root + "/proc", "proc", 0, ""}};
  Captured c = MustRun(o);
  CHECK(c.out == "2\n");
  // The mount happened in the step's namespace only.
  CHECK_FALSE(std::filesystem::exists(r.root + "/proc/self"));
  o.mounts = {{"none", r.root + "/nonexistent", "tmpfs", 0, ""}};
  Error e = MustFail(o);
  CHECK(e.errno_value() == ENOENT);
  CHECK(e.message() == "mounting tmpfs on " + r.root + "/nonexistent");
}

}  // namespace
}  // namespace slipway::executor

// The re-exec test: a copy of this binary deletes itself and then starts a pid-namespace step,
// whose reaper is this very (deleted) binary.
int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--deleted-self") {
    std::filesystem::remove("/proc/self/exe" == std::string() ? "" : argv[0]);
    slipway::executor::SpawnOptions o;
    o.argv = {"/bin/true"};
    o.namespaces = CLONE_NEWPID;
    auto r = slipway::executor::testing::RunCaptured(o);
    if (!r.ok()) {
      std::printf("error: %s\n", r.error().ToString().c_str());
      return 1;
    }
    std::printf("exists=%d code=%d\n", std::filesystem::exists(argv[0]) ? 1 : 0, r->status.code);
    return 0;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}

namespace slipway::executor {
namespace {

TEST_CASE("spawn: the reaper is re-executed even after the binary on disk is deleted") {
  slipway::testing::TempDir tmp;
  const std::string copy = tmp.Join("spawn_test_copy");
  std::filesystem::copy_file("/proc/self/exe", copy);
  ::chmod(copy.c_str(), 0755);
  auto r = slipway::testing::Run({copy, "--deleted-self"});
  CHECK(r.out == "exists=0 code=0\n");
  CHECK(r.exit_code == 0);
}

}  // namespace
}  // namespace slipway::executor
