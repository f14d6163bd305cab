// Runs the fully static slipway-id inside an empty chroot -- no libc, no ld.so, no
// /etc/nsswitch.conf, nothing but the binary and a generated image root -- to show that identity
// resolution needs nothing from the host. Needs real root for chroot(2) (tagged no-sandbox).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "base/test_util.h"

namespace slipway {
namespace {

struct ChrootRun {
  int status = -1;
  std::string out;
  std::string err;  // a setup failure in the child, as text
};

// Forks; the child chroots into `jail` and execs `argv` there. Output is captured through a pipe.
ChrootRun RunInChroot(const std::string& jail, const std::vector<std::string>& argv) {
  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    if (chroot(jail.c_str()) != 0 || chdir("/") != 0) {
      const char* m = "chroot failed\n";
      (void)!write(2, m, strlen(m));
      _exit(120);
    }
    execve(args[0], args.data(), envp);
    const char* m = "execve failed\n";
    (void)!write(2, m, strlen(m));
    _exit(121);
  }
  close(out[1]);
  ChrootRun r;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) r.out.append(buf, n);
  close(out[0]);
  REQUIRE(waitpid(pid, &r.status, 0) == pid);
  return r;
}

TEST_CASE("userdb: the static CLI resolves users in an empty chroot (no libc, no NSS config)") {
  REQUIRE_MESSAGE(geteuid() == 0, "this test needs real root (chroot)");
  testing::TempDir tmp;
  const std::string jail = tmp.Join("jail");
  testing::MakeDirs(jail);
  std::filesystem::copy_file(testing::Runfile("userdb/slipway-id-static"), jail + "/slipway-id");
  REQUIRE(chmod((jail + "/slipway-id").c_str(), 0755) == 0);
  testing::WriteFile(jail + "/img/etc/passwd",
                     "root:x:0:0:root:/root:/bin/sh\n"
                     "foo:x:10000:10000::/home/foo:/bin/sh\n");
  testing::WriteFile(jail + "/img/etc/group",
                     "root:x:0:\n"
                     "foo:x:10000:\n"
                     "bar:x:20000:foo\n");
  // The jail holds nothing else: no /lib, no /etc/nsswitch.conf, no /etc/passwd of its own.
  for (const char* p : {"/lib", "/lib64", "/usr", "/etc", "/etc/nsswitch.conf"}) {
    CAPTURE(p);
    CHECK_FALSE(std::filesystem::exists(jail + p));
  }

  ChrootRun r = RunInChroot(jail, {"/slipway-id", "--root", "/img", "foo"});
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK(r.out == "uid=10000(foo) gid=10000(foo) groups=10000(foo),20000(bar)\n");

  ChrootRun missing = RunInChroot(jail, {"/slipway-id", "--root", "/img", "ghost"});
  CHECK(WEXITSTATUS(missing.status) == 1);
  CHECK(missing.out.find("user \"ghost\" not found in /etc/passwd") != std::string::npos);
}

}  // namespace
}  // namespace slipway
