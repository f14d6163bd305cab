// The fork/exec core with real root: credentials for other users, supplementary groups in their
// three states, permission checks as the target user. Tagged no-sandbox.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "executor/spawn.h"
#include "executor/spawn_test_util.h"

namespace slipway::executor {
namespace {

using testing::Captured;
using testing::ProbePath;
using testing::ProbeRoot;
using testing::RunCaptured;

// "Uid:\t1000\t1000\t1000\t1000" -> {1000, 1000, 1000, 1000}
std::vector<std::string> Field(const std::string& status, const std::string& name) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + ":", 0) != 0) continue;
    std::istringstream words(line.substr(name.size() + 1));
    std::vector<std::string> out;
    for (std::string w; words >> w;) out.push_back(w);
    return out;
  }
  return {"<missing>"};
}

using Words = std::vector<std::string>;

// A copy of the probe that other users can reach ($TEST_TMPDIR and the runfiles live under
// /root, which uid 1000 cannot enter).
struct PublicProbe {
  slipway::testing::TempDir tmp{"/tmp"};
  std::string path = tmp.Join("probe");
  PublicProbe() {
    std::filesystem::copy_file(ProbePath(), path);
    ::chmod(path.c_str(), 0755);
  }
};

Captured Status(std::optional<Credentials> creds) {
  PublicProbe probe;
  SpawnOptions o;
  o.argv = {probe.path, "status"};
  o.credentials = std::move(creds);
  auto r = RunCaptured(o);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  REQUIRE(r->status.code == 0);
  return *r;
}

TEST_CASE("spawn (root): /proc/self/status shows exactly the requested uid, gid and groups") {
  REQUIRE_MESSAGE(geteuid() == 0, "needs real root");
  std::string why;
  REQUIRE_MESSAGE(CanSetGroups(&why), "root here cannot setgroups: ", why);

  SUBCASE("Set") {
    Captured c = Status(Credentials{1000, 1001, GroupsMode::kSet, {1001, 20000, 30000}});
    CHECK(Field(c.out, "Uid") == Words{"1000", "1000", "1000", "1000"});
    CHECK(Field(c.out, "Gid") == Words{"1001", "1001", "1001", "1001"});
    CHECK(Field(c.out, "Groups") == Words{"1001", "20000", "30000"});
  }
  SUBCASE("Clear") {
    Captured c = Status(Credentials{1000, 1000, GroupsMode::kClear, {}});
    CHECK(Field(c.out, "Uid") == Words{"1000", "1000", "1000", "1000"});
    CHECK(Field(c.out, "Groups").empty());
  }
  SUBCASE("Keep inherits the parent's groups, untouched") {
    gid_t mine[] = {4242, 4343};
    std::vector<gid_t> saved(getgroups(0, nullptr));
    REQUIRE(getgroups(static_cast<int>(saved.size()), saved.data()) >= 0);
    REQUIRE(setgroups(2, mine) == 0);
    Captured c = Status(Credentials{1000, 1000, GroupsMode::kKeep, {}});
    REQUIRE(setgroups(saved.size(), saved.data()) == 0);
    CHECK(Field(c.out, "Groups") == Words{"4242", "4343"});
    CHECK(Field(c.out, "Gid") == Words{"1000", "1000", "1000", "1000"});
  }
  SUBCASE("no credentials: the child is root like us") {
    Captured c = Status(std::nullopt);
    CHECK(Field(c.out, "Uid") == Words{"0", "0", "0", "0"});
  }
}

TEST_CASE("spawn (root): the workdir is entered as the target user") {
  REQUIRE(geteuid() == 0);
  ProbeRoot r;
  slipway::testing::MakeDirs(r.root + "/private", 0700);
  slipway::testing::MakeDirs(r.root + "/open", 0755);
  SpawnOptions o;
  o.argv = {"/probe", "cwd"};
  o.root = r.root;
  o.credentials = Credentials{1000, 1000, GroupsMode::kClear, {}};
  o.workdir = "/private";
  auto e = Spawn(o);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().ToString() ==
        "entering the working directory /private: Permission denied (the user cannot enter it)");
  o.workdir = "/open";
  auto ok = RunCaptured(o);
  REQUIRE(ok.ok());
  CHECK(ok->out == "/open\n");
}

TEST_CASE("spawn (root): seccomp without no_new_privs as a non-root user fails at its stage") {
  REQUIRE(geteuid() == 0);
  auto prog = SeccompProgram::Default();
  REQUIRE(prog.ok());
  PublicProbe probe;
  SpawnOptions o;
  o.argv = {probe.path, "ids"};
  o.credentials = Credentials{1000, 1000, GroupsMode::kClear, {}};
  o.seccomp = &*prog;
  auto e = Spawn(o);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().errno_value() == EACCES);
  CHECK(e.error().message() == "installing the seccomp filter");
  CHECK(e.error().hint() == "installing a filter without no_new_privs needs CAP_SYS_ADMIN");
  o.no_new_privs = true;
  auto ok = RunCaptured(o);
  REQUIRE_MESSAGE(ok.ok(), ok.error().ToString());
  CHECK(ok->out == "1000 1000\n");
}

TEST_CASE("spawn (root): a uid change in a pid namespace keeps the reaper as root, the step not") {
  REQUIRE(geteuid() == 0);
  ProbeRoot r;
  SpawnOptions o;
  o.argv = {"/probe", "ids"};
  o.root = r.root;
  o.namespaces = CLONE_NEWPID | CLONE_NEWNS;
  o.credentials = Credentials{1000, 1000, GroupsMode::kSet, {1000, 27}};
  auto c = RunCaptured(o);
  REQUIRE_MESSAGE(c.ok(), c.error().ToString());
  CHECK(c->out == "1000 1000 27 1000\n");  // getgroups() returns the kernel's sorted list
}

TEST_CASE("spawn (root): dropping the bounding set removes capabilities for the step") {
  REQUIRE(geteuid() == 0);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "grep CapBnd /proc/self/status"};
  o.env = {"PATH=/bin:/usr/bin"};
  o.capability_bounding_set = (1ull << 0) | (1ull << 1);  // CAP_CHOWN, CAP_DAC_OVERRIDE
  auto c = RunCaptured(o);
  REQUIRE(c.ok());
  CHECK(c->out == "CapBnd:\t0000000000000003\n");
}

}  // namespace
}  // namespace slipway::executor
