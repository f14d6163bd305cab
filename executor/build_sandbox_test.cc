// The slipway binary inside Bazel's sandbox: uid 0 of a user namespace that maps root alone, with
// setgroups denied -- the unprivileged case, tested here on purpose. Builds that need nothing
// else work; a step that needs another identity fails with a clear message, never silently as
// the wrong user.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "executor/spawn.h"
#include "executor/fake_agent.h"
#include "executor/git_test_repo.h"
#include "executor/tiny_http_server.h"
#include "integration/busybox_base.h"

namespace slipway {
namespace {

using testing::Run;
using testing::Runfile;
using testing::TempDir;
using testing::WriteFile;

struct Env {
  TempDir tmp;
  std::string layout = testing::MakeBusyboxImage(tmp.path()).oci;
  testing::RunResult Build(const std::string& dockerfile, std::vector<std::string> extra = {}) {
    const std::string ctx = tmp.Join("ctx-" + std::to_string(n));
    const std::string work = tmp.Join("work-" + std::to_string(n++));
    std::filesystem::create_directories(work);
    WriteFile(ctx + "/Dockerfile", dockerfile);
    WriteFile(ctx + "/f.txt", "from the context\n");
    std::vector<std::string> argv = {Runfile("executor/slipway"), "-c", ctx, "--image-source",
                                     "busybox=oci-layout:" + layout, "--work-dir", work,
                                     "--cache-dir", tmp.Join("cache")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = Run(argv);
    CHECK_MESSAGE(std::filesystem::is_empty(work), "the work directory was left behind");
    return r;
  }
  int n = 0;
};

TEST_CASE("slipway in an unprivileged user namespace: a root build works") {
  std::string why;
  const bool can = executor::CanSetGroups(&why);
  INFO("setgroups here: " << (can ? "allowed" : why));
  Env env;
  const std::string out = env.tmp.Join("out");
  auto r = env.Build("FROM busybox\nRUN echo hi > /x && id -u\nCOPY f.txt /f\nRUN cat /f /x\n",
                     {"--no-push", "--oci-layout-path", out, "--log-format", "json"});
  INFO(r.err);
  // Root's groups [0] and the sandbox's [] with gid 0 are the same identity: no setgroups needed.
  REQUIRE(r.exit_code == 0);
  CHECK(std::filesystem::exists(out + "/index.json"));
  CHECK(r.err.find(R"("line":"from the context")") != std::string::npos);
  CHECK(r.err.find(R"("event":"summary")") != std::string::npos);
}

TEST_CASE("slipway in an unprivileged user namespace: another USER fails clearly") {
  Env env;
  auto r = env.Build("FROM busybox\nUSER nobody\nRUN id\n", {"--no-push"});
  CHECK(r.exit_code == 1);
  INFO(r.err);
  CHECK(r.err.find("Dockerfile:3:1: RUN id") != std::string::npos);
  // Either the groups or the uid cannot be had here; both say what and why.
  const bool groups = r.err.find("setgroups") != std::string::npos;
  const bool uid = r.err.find("65534") != std::string::npos;
  CHECK((groups || uid));
}

TEST_CASE("slipway: usage errors exit 2, build errors 1, and nothing is left behind") {
  Env env;
  auto usage = Run({Runfile("executor/slipway"), "--nope"});
  CHECK(usage.exit_code == 2);
  CHECK(usage.err == "slipway: unknown flag --nope (see slipway --help): Invalid argument\n");
  auto help = Run({Runfile("executor/slipway"), "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("Usage: slipway [flags]") != std::string::npos);
  // A push that cannot reach its registry fails the build, and no digest file is written.
  const std::string digest_file = env.tmp.Join("digest");
  auto push = env.Build("FROM busybox\n", {"--destination", "127.0.0.1:1/x:1", "--insecure-registry",
                                            "127.0.0.1:1", "--digest-file", digest_file});
  CHECK(push.exit_code == 1);
  CHECK(push.err.find("pushing to 127.0.0.1:1/x:1") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(digest_file));
  auto bad_dest = env.Build("FROM busybox\n", {"--destination", "UPPER/case:1"});
  CHECK(bad_dest.exit_code == 1);
  CHECK(bad_dest.err.find("--destination: invalid image reference") != std::string::npos);
  auto syntax = env.Build("FROM busybox\nRUN\n", {"--no-push"});
  CHECK(syntax.exit_code == 1);
  CHECK(syntax.err.find("Dockerfile:2") != std::string::npos);
  auto ctx = Run({Runfile("executor/slipway"), "-c", "s3://bucket/x", "--no-push", "--work-dir",
                  env.tmp.path()});
  CHECK(ctx.exit_code == 1);
  CHECK(ctx.err.find("s3://: unsupported --context scheme (supported: dir://PATH, tar://PATH, "
                     "tar://stdin, git://HOST/PATH[#REF[#COMMIT]], or a plain path)") !=
        std::string::npos);
  auto secret = env.Build("FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n",
                          {"--no-push"});
  CHECK(secret.exit_code == 1);
  CHECK(secret.err.find("secret \"tok\" is required but was not given") != std::string::npos);
  auto ssh = env.Build("FROM busybox\nRUN --mount=type=ssh,required=true true\n", {"--no-push"});
  CHECK(ssh.exit_code == 1);
  CHECK(ssh.err.find("SSH agent \"default\" is required but was not given (--ssh default=SOCKET)") !=
        std::string::npos);
  // An existing path that is not an OCI layout is never replaced.
  const std::string file = env.tmp.Join("not-a-layout");
  WriteFile(file, "precious");
  auto clobber = env.Build("FROM busybox\n", {"--no-push", "--oci-layout-path", file});
  CHECK(clobber.exit_code == 1);
  CHECK(clobber.err.find("is not an OCI layout: not replacing it") != std::string::npos);
  CHECK(testing::ReadFile(file) == "precious");
}

TEST_CASE("slipway: --context-sub-path builds one directory of the context, never outside it") {
  Env env;
  const std::string ctx = env.tmp.Join("monorepo");
  WriteFile(ctx + "/Dockerfile", "FROM busybox\nRUN echo the top-level Dockerfile; false\n");
  WriteFile(ctx + "/top.txt", "not part of the sub context\n");
  WriteFile(ctx + "/services/api/Dockerfile",
            "FROM busybox\nCOPY . /app\nRUN cat /app/api.txt && ls -A /app | tr '\\n' ' '\n");
  WriteFile(ctx + "/services/api/api.txt", "api here\n");
  WriteFile(ctx + "/services/api/secret.txt", "ignored\n");
  WriteFile(ctx + "/services/api/.dockerignore", "secret.txt\n");
  std::filesystem::create_symlink("/services/api", ctx + "/link");  // absolute: inside the context
  std::filesystem::create_symlink("/etc", ctx + "/escape");         // the host's /etc: not followed
  const std::string tarball = env.tmp.Join("monorepo.tar.gz");
  REQUIRE(Run({"/bin/tar", "-C", ctx, "-czf", tarball, "."}).exit_code == 0);
  int n = 0;
  auto build = [&](const std::string& context, const std::string& sub) {
    const std::string work = env.tmp.Join("subwork-" + std::to_string(n++));
    std::filesystem::create_directories(work);
    auto r = Run({Runfile("executor/slipway"), "-c", context, "--context-sub-path", sub,
                  "--image-source", "busybox=oci-layout:" + env.layout, "--work-dir", work,
                  "--cache-dir", env.tmp.Join("cache"), "--no-push"});
    CHECK_MESSAGE(std::filesystem::is_empty(work), "the work directory was left behind");
    return r;
  };
  for (const auto& [context, sub] : {std::pair<std::string, std::string>{"dir://" + ctx, "services/api"},
                                     {"tar://" + tarball, "services/api/"},
                                     {"tar://" + tarball, "link"}}) {
    CAPTURE(context);
    CAPTURE(sub);
    auto r = build(context, sub);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("api here") != std::string::npos);
    CHECK(r.err.find(".dockerignore Dockerfile api.txt") != std::string::npos);  // no secret.txt
    CHECK(r.err.find("top-level") == std::string::npos);
  }
  auto up = build("dir://" + ctx + "/services", "../..");
  CHECK(up.exit_code == 1);
  CHECK(up.err.find("--context-sub-path ../..: leads out of the context") != std::string::npos);
  auto escape = build("tar://" + tarball, "escape");
  CHECK(escape.exit_code == 1);
  CHECK(escape.err.find("--context-sub-path escape: not a directory in the context") !=
        std::string::npos);
  auto missing = build("dir://" + ctx, "services/web");
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("--context-sub-path services/web: not a directory in the context: No "
                         "such file or directory") != std::string::npos);
  auto file = build("dir://" + ctx, "top.txt");
  CHECK(file.exit_code == 1);
  CHECK(file.err.find("--context-sub-path top.txt: not a directory in the context") !=
        std::string::npos);
}

TEST_CASE("slipway: a git:// context, a ref and a sub path, as kaniko takes them") {
  Env env;
  testing::GitTestRepo repo;
  testing::TinyHttpServer server(testing::ServeFiles(repo.tmp.Join("srv"), "ci:pw"));
  int n = 0;
  auto build = [&](const std::string& context, std::vector<std::string> extra,
                   std::vector<std::string> vars) {
    const std::string work = env.tmp.Join("gitwork-" + std::to_string(n++));
    std::filesystem::create_directories(work);
    std::vector<std::string> argv = {"/usr/bin/env", "GIT_PULL_METHOD=http"};
    argv.insert(argv.end(), vars.begin(), vars.end());
    argv.insert(argv.end(), {Runfile("executor/slipway"), "-c", context, "--image-source",
                             "busybox=oci-layout:" + env.layout, "--work-dir", work, "--cache-dir",
                             env.tmp.Join("cache"), "--no-push"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = Run(argv);
    CHECK_MESSAGE(std::filesystem::is_empty(work), "the work directory was left behind");
    return r;
  };
  const std::string repo_url = "git://" + server.HostPort() + "/repo.git";
  auto ok = build(repo_url + "#refs/heads/main", {"--context-sub-path", "sub"},
                  {"GIT_USERNAME=ci", "GIT_PASSWORD=pw"});
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.err.find("COPY dir/inner.txt /inner") != std::string::npos);
  CHECK(ok.err.find(" inner\n") != std::string::npos);  // the RUN step's output
  // The first commit has no sub/: the sub path is not there.
  auto old = build(repo_url + "#" + repo.first, {"--context-sub-path", "sub"},
                   {"GIT_USERNAME=ci", "GIT_PASSWORD=pw"});
  CHECK(old.exit_code == 1);
  CHECK(old.err.find("--context-sub-path sub: not a directory in the context") != std::string::npos);
  // Without credentials the clone fails, clearly, and the build stops before anything else.
  auto denied = build(repo_url, {}, {});
  CHECK(denied.exit_code == 1);
  CHECK(denied.err.find("--context " + repo_url + ": git clone failed") != std::string::npos);
  auto bad_flag = build(repo_url, {"--git", "depth=1"}, {});
  CHECK(bad_flag.exit_code == 2);
}

TEST_CASE("slipway: ADD of a git repository (a ref, a subdirectory, .git, modes, --checksum)") {
  Env env;
  testing::GitTestRepo repo;
  testing::TinyHttpServer server(testing::ServeFiles(repo.tmp.Join("srv"), "ci:pw"));
  const std::string url = "http://ci:pw@" + server.HostPort() + "/repo.git";
  const std::string out = env.tmp.Join("out");
  auto ok = env.Build("FROM busybox\n"
                      "ADD " + url + "#v1 /src/\n"
                      "ADD " + url + "#:sub /sub/\n"
                      "ADD --keep-git-dir=true --checksum=" + repo.second + " " + url + " /withgit/\n"
                      "RUN cat /src/file.txt && stat -c '%a %u:%g %n' /src/tool.sh /src/file.txt"
                      " /sub/dir/inner.txt && ls -A /sub /src | tr '\\n' ' ' && test -d /withgit/.git"
                      " && echo has-git\n",
                      {"--no-push", "--oci-layout-path", out});
  INFO(ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK(ok.err.find(" one\n") != std::string::npos);
  CHECK(ok.err.find("755 0:0 /src/tool.sh") != std::string::npos);
  CHECK(ok.err.find("644 0:0 /src/file.txt") != std::string::npos);
  CHECK(ok.err.find("644 0:0 /sub/dir/inner.txt") != std::string::npos);
  CHECK(ok.err.find("/src: Dockerfile file.txt tool.sh  /sub: Dockerfile dir has-git") !=
        std::string::npos);  // no .git unless --keep-git-dir
  // The credentials are neither in the log nor anywhere in the image (history included).
  CHECK(ok.err.find("ci:pw") == std::string::npos);
  CHECK(Run({"/bin/grep", "-r", "-l", "ci:pw", out}).exit_code == 1);
  CHECK(Run({"/bin/grep", "-r", "-l", "ADD http://" + server.HostPort() + "/repo.git#v1 /src/", out})
            .exit_code == 0);

  auto wrong = env.Build("FROM busybox\nADD --checksum=" + repo.second + " " + url + "#v1 /x/\n",
                         {"--no-push"});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find("does not match the commit checked out (" + repo.first + ")") !=
        std::string::npos);
  auto denied = env.Build("FROM busybox\nADD http://" + server.HostPort() + "/repo.git /x/\n",
                          {"--no-push"});
  CHECK(denied.exit_code == 1);
  CHECK(denied.err.find("Dockerfile:2:1: ADD http://" + server.HostPort() + "/repo.git /x/: ADD http://" +
                        server.HostPort() + "/repo.git: git clone failed") != std::string::npos);
  auto ssh = env.Build("FROM busybox\nADD git@github.com:acme/app.git /x/\n", {"--no-push"});
  CHECK(ssh.exit_code == 1);
  CHECK(ssh.err.find("git over ssh is not supported (use an https URL)") != std::string::npos);
}

TEST_CASE("slipway: RUN --mount=type=ssh gets its own socket, forwarded to the --ssh agent") {
  Env env;
  TempDir short_tmp("/tmp");
  const std::string sock = short_tmp.Join("agent.sock");
  testing::FakeAgent agent(sock);
  auto r = env.Build(
      "FROM busybox\n"
      "RUN --mount=type=ssh stat -c '%a %u:%g %F' $SSH_AUTH_SOCK && echo at $SSH_AUTH_SOCK\n"
      "RUN --mount=type=ssh,id=deploy,mode=0666,target=/keys/agent.sock stat -c '%a %F' "
      "/keys/agent.sock && echo at $SSH_AUTH_SOCK\n"
      "RUN --mount=type=ssh,id=absent echo ${SSH_AUTH_SOCK:-no-agent}\n"
      "RUN ls /run/buildkit /keys 2>&1 | tr '\\n' ' '; echo\n",
      {"--no-push", "--ssh", "default=" + sock, "--ssh", "deploy=" + sock});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("600 0:0 socket") != std::string::npos);
  CHECK(r.err.find("at /run/buildkit/ssh_agent.0") != std::string::npos);
  CHECK(r.err.find("666 socket") != std::string::npos);
  CHECK(r.err.find("at /keys/agent.sock") != std::string::npos);
  CHECK(r.err.find("no-agent") != std::string::npos);
  // The mount points were the step's only: nothing of them is left in the image.
  CHECK(r.err.find("ls: /run/buildkit: No such file or directory ls: /keys: No such file or directory") !=
        std::string::npos);
  CHECK(r.err.find(sock) == std::string::npos);  // the host's socket path is never shown to a step
  auto gone = env.Build("FROM busybox\nRUN --mount=type=ssh true\n",
                        {"--no-push", "--ssh", "default=" + short_tmp.Join("missing.sock")});
  CHECK(gone.exit_code == 1);
  CHECK(gone.err.find("the SSH agent socket " + short_tmp.Join("missing.sock")) != std::string::npos);
  auto usage = Run({Runfile("executor/slipway"), "--ssh", "=x"});
  CHECK(usage.exit_code == 2);
}

TEST_CASE("slipway: SIGTERM reaches the running step; the build stops and cleans up") {
  Env env;
  const std::string ctx = env.tmp.Join("sig-ctx"), work = env.tmp.Join("sig-work");
  const std::string log = env.tmp.Join("sig.log");
  std::filesystem::create_directories(work);
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox\nRUN trap 'echo got-term; exit 7' TERM; echo ready; "
            "while true; do sleep 0.1; done\nRUN echo never\n");
  const std::string bin = Runfile("executor/slipway");
  const std::string src = "busybox=oci-layout:" + env.layout;
  std::vector<const char*> argv = {bin.c_str(), "-c", ctx.c_str(), "--image-source", src.c_str(),
                                   "--work-dir", work.c_str(), "--no-push", nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  char* envp[] = {nullptr};
  REQUIRE(posix_spawn(&pid, bin.c_str(), &fa, nullptr, const_cast<char**>(argv.data()), envp) == 0);
  posix_spawn_file_actions_destroy(&fa);
  bool ready = false;
  for (int i = 0; i < 200 && !ready; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ready = testing::ReadFile(log).find(" ready\n") != std::string::npos;
  }
  REQUIRE_MESSAGE(ready, testing::ReadFile(log));
  REQUIRE(kill(pid, SIGTERM) == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  const std::string out = testing::ReadFile(log);
  INFO(out);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);  // the step's own answer to SIGTERM is the build's status
  CHECK(out.find("got-term") != std::string::npos);
  CHECK(out.find("never") == std::string::npos);
  CHECK(std::filesystem::is_empty(work));
}

TEST_CASE("slipway: tar://stdin, a seccomp profile, and nothing a step starts outlives it") {
  Env env;
  const std::string ctx = env.tmp.Join("stdin-ctx"), work = env.tmp.Join("stdin-work");
  std::filesystem::create_directories(work);
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox\nCOPY f.txt /f\n"
            "RUN (sleep 1234 </dev/null >/dev/null 2>&1 &) ; echo left-a-daemon\n");
  WriteFile(ctx + "/f.txt", "via stdin\n");
  const std::string cmd = "tar -C " + ctx + " -c . | " + Runfile("executor/slipway") +
                          " -c tar://stdin --no-push --work-dir " + work +
                          " --image-source busybox=oci-layout:" + env.layout;
  auto r = Run({"/bin/sh", "-c", cmd});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("left-a-daemon") != std::string::npos);
  CHECK(std::filesystem::is_empty(work));
  // The daemon died with the step's pid namespace.
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string cmdline = e.path().string() + "/cmdline";
    if (!std::filesystem::exists(cmdline)) continue;
    std::string c = testing::ReadFile(cmdline);
    const bool daemon = c.find("sleep") != std::string::npos && c.find("1234") != std::string::npos;
    CHECK_MESSAGE(!daemon, "left running: " << c);
  }
  // A seccomp profile that forbids mkdir: the step sees EPERM.
  const std::string profile = env.tmp.Join("no-mkdir.json");
  WriteFile(profile, R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[)"
                     R"({"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]})");
  auto denied = env.Build("FROM busybox\nRUN mkdir /nope\n",
                          {"--no-push", "--seccomp-profile", profile});
  CHECK(denied.exit_code == 1);
  CHECK(denied.err.find("Operation not permitted") != std::string::npos);
  auto allowed = env.Build("FROM busybox\nRUN mkdir /yes\n", {"--no-push"});
  CHECK(allowed.exit_code == 0);
}

TEST_CASE("slipway: ADD from http(s) with --checksum") {
  Env env;
  testing::TinyHttpServer server;
  const std::string good =
      "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";  // hello world\n
  const std::string out = env.tmp.Join("add-out");
  auto r = env.Build("FROM busybox\nADD --checksum=" + good + " " + server.Url("/files/app.txt") +
                         " /srv/\nADD " + server.Url("/moved") + " /moved.txt\n",
                     {"--no-push", "--oci-layout-path", out});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // Checked from the layers: mode 0600 and Last-Modified as mtime, like Docker.
  auto t = Run({"/bin/sh", "-c",
                "for b in " + out + "/blobs/sha256/*; do tar -tvzf $b 2>/dev/null; done"});
  CHECK(t.out.find("-rw------- 0/0              12 2015-10-21 07:28 srv/app.txt") !=
        std::string::npos);
  CHECK(t.out.find("moved.txt") != std::string::npos);
  auto bad = env.Build("FROM busybox\nADD --checksum=sha256:" + std::string(64, '0') + " " +
                           server.Url("/files/app.txt") + " /x\n",
                       {"--no-push"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("checksum mismatch: got " + good) != std::string::npos);
  auto missing = env.Build("FROM busybox\nADD " + server.Url("/gone") + " /x\n", {"--no-push"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("HTTP status 404") != std::string::npos);
  auto commit = env.Build("FROM busybox\nADD --checksum=abc1234 " + server.Url("/files/app.txt") +
                              " /x\n",
                          {"--no-push"});
  CHECK(commit.exit_code == 1);
  CHECK(commit.err.find("--checksum for an http(s) source is sha256:<hex>") != std::string::npos);
}

TEST_CASE("slipway: a base layer whose bytes do not match its digest is refused") {
  Env env;
  const std::string copy = env.tmp.Join("corrupt-oci");
  REQUIRE(Run({"/bin/cp", "-a", env.layout, copy}).exit_code == 0);
  // The largest blob is the layer; flip a byte in the middle, keeping its size.
  std::string biggest;
  std::uintmax_t size = 0;
  for (const auto& e : std::filesystem::directory_iterator(copy + "/blobs/sha256")) {
    if (e.file_size() > size) {
      size = e.file_size();
      biggest = e.path().string();
    }
  }
  std::string bytes = testing::ReadFile(biggest);
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFile(biggest, bytes);
  const std::string ctx = env.tmp.Join("corrupt-ctx"), work = env.tmp.Join("corrupt-work");
  std::filesystem::create_directories(work);
  WriteFile(ctx + "/Dockerfile", "FROM busybox\nRUN true\n");
  auto r = Run({Runfile("executor/slipway"), "-c", ctx, "--image-source",
                "busybox=oci-layout:" + copy, "--work-dir", work, "--cache-dir",
                env.tmp.Join("corrupt-cache"), "--no-push"});
  CHECK(r.exit_code == 1);
  INFO(r.err);
  // Either the inflater notices the damage or the digest does; both name the problem.
  CHECK((r.err.find("not the sha256:") != std::string::npos ||
         r.err.find("corrupt gzip data") != std::string::npos));
  CHECK(std::filesystem::is_empty(work));
  // Nothing half-unpacked was published to the cache.
  const std::string base = env.tmp.Join("corrupt-cache") + "/base";
  if (std::filesystem::exists(base)) CHECK(std::filesystem::is_empty(base));
}

TEST_CASE("slipway: the layer cache reuses what did not change, and never fails a build") {
  Env env;
  const std::string ctx = env.tmp.Join("cache-ctx"), work = env.tmp.Join("cache-work");
  const std::string repo = "oci:" + env.tmp.Join("layer-cache");
  std::filesystem::create_directories(work);
  WriteFile(ctx + "/Dockerfile",
            "FROM busybox\nARG NAME=a\nCOPY ${NAME}.txt /data/\nRUN echo $RANDOM > /stamp\n"
            "RUN true\nWORKDIR /app\n");
  WriteFile(ctx + "/a.txt", "A\n");
  WriteFile(ctx + "/b.txt", "B\n");
  auto build = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {Runfile("executor/slipway"), "-c", ctx, "--image-source",
                                     "busybox=oci-layout:" + env.layout, "--work-dir", work,
                                     "--cache-dir", env.tmp.Join("cache"), "--no-push", "--cache",
                                     "--cache-repo", repo, "--oci-layout-path",
                                     env.tmp.Join("out-" + std::to_string(env.n++))};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto r = Run(argv);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return r.err;
  };
  auto cached = [](const std::string& log) {
    int n = 0;
    for (std::size_t p = 0; (p = log.find("(CACHED", p)) != std::string::npos; ++p) ++n;
    return n;
  };
  CHECK(cached(build({})) == 0);
  const std::string second = build({});
  CHECK(cached(second) == 4);  // COPY, both RUNs (one of them an empty layer), WORKDIR
  // The same stored layers: the stamp written by the first build is the one in the second.
  // A different ARG changes the COPY source: that step and everything after it run again.
  CHECK(cached(build({"--build-arg", "NAME=b"})) == 0);
  // A source's mode is part of the key.
  chmod((ctx + "/a.txt").c_str(), 0600);
  CHECK(cached(build({})) == 0);
  CHECK(cached(build({})) == 4);
  // A corrupt entry is noticed by its digest and ignored, with a warning.
  for (const auto& e : std::filesystem::recursive_directory_iterator(env.tmp.Join("layer-cache/blobs"))) {
    if (e.is_regular_file() && e.file_size() > 100) {
      std::string b = testing::ReadFile(e.path());
      b[b.size() / 2] ^= 1;
      WriteFile(e.path(), b);
    }
  }
  const std::string corrupt = build({});
  CHECK(corrupt.find("layer cache: ignoring the entry") != std::string::npos);
  // An unusable cache repository is a warning, not a failure.
  const std::string bad = build({"--cache-repo", "oci:/proc/no-such-dir/cache"});
  CHECK(bad.find("is not usable, building without it") != std::string::npos);
  // Entries older than the TTL are not used.
  sleep(2);
  CHECK(cached(build({"--cache-ttl", "1s"})) == 0);
  CHECK(std::filesystem::is_empty(work));
}

TEST_CASE("slipway: RUN --mount=type=secret (file and env) and --network=none") {
  Env env;
  const std::string secret = env.tmp.Join("token.txt");
  WriteFile(secret, "s3cr3t");
  const std::string out = env.tmp.Join("secret-out");
  auto r = env.Build(
      "FROM busybox\n"
      "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen-file; "
      "stat -c %a /run/secrets/tok >> /seen-file\n"
      "RUN --mount=type=secret,id=tok,env=TOKEN echo \"$TOKEN\" > /seen-env\n"
      "RUN --network=none grep -c : /proc/net/dev > /interfaces\n",
      {"--no-push", "--oci-layout-path", out, "--secret", "id=tok,src=" + secret});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto t = Run({"/bin/sh", "-c",
                "cd " + env.tmp.path() + " && mkdir -p x && for b in " + out +
                    "/blobs/sha256/*; do tar -xzf $b -C x 2>/dev/null; done; cat x/seen-file "
                    "x/seen-env x/interfaces; ls x/run 2>&1 | head -1"});
  // The secret was readable (mode 0400) and in the environment, and is in no layer; the step
  // with --network=none saw the loopback interface only.
  CHECK(t.out.find("s3cr3t400\ns3cr3t\n1\n") == 0);
  CHECK(t.out.find("No such file") != std::string::npos);  // /run/secrets left no trace
}

}  // namespace
}  // namespace slipway
