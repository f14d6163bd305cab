#include "executor/seccomp.h"

#include <doctest/doctest.h>

#include <string>

#include "base/test_util.h"

namespace slipway::executor {
namespace {

TEST_CASE("seccomp: the default profile compiles to a BPF program") {
  auto p = SeccompProgram::Default();
  REQUIRE_MESSAGE(p.ok(), p.error().ToString());
  CHECK(p->instruction_count() > 20);
  CHECK(p->fprog()->len == p->instruction_count());
  SeccompProgram moved = std::move(*p);
  CHECK(moved.fprog()->filter != nullptr);
}

const char kProfile[] = R"({
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "syscalls": [
    {"names": ["read", "write", "exit_group", "no_such_syscall_anywhere"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
  ]
})";

TEST_CASE("seccomp: Docker's JSON format, with args, unknown names skipped, includes/excludes") {
  auto plain = SeccompProgram::FromProfile(kProfile, "p.json");
  REQUIRE_MESSAGE(plain.ok(), plain.error().ToString());
  auto admin = SeccompProgram::FromProfile(kProfile, "p.json", {"CAP_SYS_ADMIN"});
  REQUIRE(admin.ok());
  // mount is in one, ptrace in the other: same size, different programs.
  CHECK(plain->instruction_count() == admin->instruction_count());
  CHECK(std::string(reinterpret_cast<const char*>(plain->fprog()->filter),
                    plain->instruction_count() * sizeof(sock_filter)) !=
        std::string(reinterpret_cast<const char*>(admin->fprog()->filter),
                    admin->instruction_count() * sizeof(sock_filter)));
  // YAML works too.
  auto yaml = SeccompProgram::FromProfile(
      "defaultAction: SCMP_ACT_ALLOW\nsyscalls:\n  - names: [reboot]\n    action: SCMP_ACT_ERRNO\n",
      "p.yaml");
  CHECK(yaml.ok());
}

struct BadCase {
  const char* text;
  const char* message;
};

TEST_CASE("seccomp: bad profiles give errors with file, line and column") {
  const BadCase cases[] = {
      {"[1, 2]", "bad.json: a seccomp profile must be a JSON object"},
      {"{\"syscalls\": []}", "bad.json: the profile has no \"defaultAction\""},
      {"{\"defaultAction\": \"SCMP_ACT_NOPE\"}",
       "bad.json:1:19: unknown seccomp action \"SCMP_ACT_NOPE\""},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{\"names\": [\"read\"]}]}",
       "bad.json:2:15: a rule has no \"action\""},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{\"action\": "
       "\"SCMP_ACT_ERRNO\"}]}",
       "bad.json:2:15: a rule names no syscall"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
       "\"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 9, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
       "bad.json:1:107: argument index above 5"},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], \"action\": "
       "\"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_SOON\"}]}]}",
       "bad.json:1:138: unknown seccomp comparison \"SCMP_CMP_SOON\""},
      {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": 5}",
       "bad.json:1:49: \"syscalls\" must be a list"},
  };
  for (const BadCase& c : cases) {
    CAPTURE(std::string(c.text));
    auto p = SeccompProgram::FromProfile(c.text, "bad.json");
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().message() == c.message);
  }
  auto syntax = SeccompProgram::FromProfile("{\"defaultAction\": [", "bad.json");
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.error().message().rfind("bad.json:1:", 0) == 0);
  auto missing = SeccompProgram::FromProfileFile("/no/such/profile.json");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().ToString() ==
        "reading seccomp profile /no/such/profile.json: No such file or directory");
}

}  // namespace
}  // namespace slipway::executor
