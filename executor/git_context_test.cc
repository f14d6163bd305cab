// Git contexts against a real git (the one in PATH) and a local "dumb" HTTP server: every way of
// naming what to check out, credentials (never shown), and each failure with its message.
#include "executor/git_context.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "executor/git_test_repo.h"
#include "executor/tiny_http_server.h"

namespace slipway::executor {
namespace {

using testing::ReadFile;
using testing::GitTestRepo;
using testing::TempDir;

// The test repository behind a local server, and fresh destinations for checkouts.
struct Served {
  GitTestRepo repo;
  testing::TinyHttpServer server;
  TempDir out;
  int n = 0;
  explicit Served(const std::string& credentials = "")
      : server(testing::ServeFiles(repo.tmp.Join("srv"), credentials)) {}
  std::string Dest() { return out.Join("d-" + std::to_string(n++)); }
};

GitEnvironment Env(const std::string& method = "http") {
  GitEnvironment e = GitEnvironment::FromProcess();
  e.username = e.password = e.token = "";
  e.pull_method = method;
  return e;
}

TEST_CASE("git context: the forms of git://HOST/PATH[#REF[#COMMIT]]") {
  auto s = ParseGitContext("git://github.com/acme/app.git#refs/heads/dev#0123abc", "");
  REQUIRE(s.ok());
  CHECK(s->url == "https://github.com/acme/app.git");
  CHECK(s->ref == "refs/heads/dev");
  CHECK(s->commit == "0123abc");
  CHECK(s->shown == "git://github.com/acme/app.git#refs/heads/dev#0123abc");
  auto creds = ParseGitContext("git://me:p%40ss@example.com:8443/x/y", "http");
  REQUIRE(creds.ok());
  CHECK(creds->url == "http://example.com:8443/x/y");
  CHECK(creds->username == "me");
  CHECK(creds->password == "p@ss");
  CHECK(creds->shown == "git://example.com:8443/x/y");  // no credentials in messages

  auto error = [](const std::string& c, const std::string& method = "") {
    auto r = ParseGitContext(c, method);
    REQUIRE_FALSE(r.ok());
    return r.error().message();
  };
  CHECK(error("git:///x") == "--context git:///x: no host (expected git://HOST/PATH[#REF[#COMMIT]])");
  CHECK(error("git://host") ==
        "--context git://host: no repository path (expected git://HOST/PATH[#REF[#COMMIT]])");
  CHECK(error("git://h/p#a#b#c") == "--context git://h/p#a#b#c: expected git://HOST/PATH[#REF[#COMMIT]]");
  CHECK(error("git://h/p#--upload-pack=x") ==
        "--context git://h/p#--upload-pack=x: \"--upload-pack=x\" is neither a ref nor a commit id");
  CHECK(error("git://h/p#main#xyz") == "--context git://h/p#main#xyz: \"xyz\" is not a commit id");
  CHECK(error("git://h/p q") ==
        "--context git://h/p q: the repository address has spaces or control characters");
  CHECK(error("git://h/p", "ftp") == "GIT_PULL_METHOD=ftp: expected https or http");
  CHECK(error("git://u:%zz@h/p").find("bad %-escape") != std::string::npos);
}

TEST_CASE("git context: --git options") {
  GitOptions o;
  REQUIRE(ParseGitOptions("branch=release/1.2,single-branch=true", &o).ok());
  REQUIRE(ParseGitOptions("recurse-submodules=1,insecure-skip-tls=false", &o).ok());
  CHECK(o.branch == "release/1.2");
  CHECK(o.single_branch);
  CHECK(o.recurse_submodules);
  CHECK_FALSE(o.insecure_skip_tls);
  CHECK(ParseGitOptions("branch=a b", &o).error().message() == "--git branch=a b: not a branch name");
  CHECK(ParseGitOptions("depth=1", &o).error().message().find("unknown option") != std::string::npos);
}

TEST_CASE("git context: clone what the context names") {
  Served s;
  const GitTestRepo& repo = s.repo;
  const std::string base = "git://" + s.server.HostPort() + "/repo.git";
  struct Case {
    std::string suffix;
    GitOptions options;
    std::string file;
  };
  GitOptions feature_branch;
  feature_branch.branch = "feature";
  GitOptions single;
  single.single_branch = true;
  const std::vector<Case> cases = {
      {"", {}, "two\n"},
      {"#refs/heads/feature", {}, "feature\n"},
      {"#feature", {}, "feature\n"},
      {"", feature_branch, "feature\n"},
      {"#refs/tags/v1", {}, "one\n"},
      {"#v1", single, "one\n"},
      {"#" + repo.first, {}, "one\n"},
      {"#refs/heads/main#" + repo.first, {}, "one\n"},
      {"#refs/heads/main#" + repo.first.substr(0, 10), {}, "one\n"},
      {"#refs/pull/1/head", {}, "pull\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.suffix);
    CAPTURE(c.options.branch);
    const std::string dest = s.Dest();
    auto r = CloneGitContext(base + c.suffix, c.options, Env(), dest);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(ReadFile(dest + "/file.txt") == c.file);
    CHECK(std::filesystem::exists(dest + "/Dockerfile"));
    CHECK(std::filesystem::is_directory(dest + "/.git"));  // kept, as kaniko keeps it
  }
}

TEST_CASE("git context: failures say which step failed and what git said") {
  Served s;
  const std::string base = "git://" + s.server.HostPort() + "/repo.git";
  auto fail = [&](const std::string& context, const GitOptions& o = {},
                  const GitEnvironment& env = Env()) {
    auto r = CloneGitContext(context, o, env, s.Dest());
    REQUIRE_FALSE(r.ok());
    return r.error().message();
  };
  const std::string missing = fail("git://" + s.server.HostPort() + "/nothing.git");
  CHECK(missing.find("--context git://" + s.server.HostPort() + "/nothing.git: git clone failed (exit code 128): ") == 0);
  CHECK(missing.find("not found") != std::string::npos);
  CHECK(fail(base + "#refs/heads/nope").find(": git clone failed (exit code 128): ") != std::string::npos);
  const std::string commit = fail(base + "#" + std::string(40, 'a'));
  CHECK(commit.find(": git checkout failed (exit code 128): ") != std::string::npos);
  CHECK(fail(base + "#refs/pull/9/head").find(": git fetch failed (exit code 128): ") !=
        std::string::npos);
  GitOptions other;
  other.branch = "main";
  CHECK(fail(base + "#refs/heads/feature", other) ==
        "--context " + base + "#refs/heads/feature: --git branch=main names another branch");
  GitEnvironment no_git = Env();
  no_git.variables = {"PATH=/nonexistent"};
  CHECK(fail(base, {}, no_git) ==
        "--context " + base + ": git sources need the git program, and it is not in PATH");
  // https (the default) to a plain-HTTP server fails as a TLS error, it does not fall back.
  CHECK(fail(base, {}, Env("https")).find(": git clone failed") != std::string::npos);
}

TEST_CASE("git context: credentials reach the server, and never a message") {
  Served s("builder:s3cret-pw");
  const std::string host = s.server.HostPort();
  const std::string base = "git://" + host + "/repo.git";
  auto clone = [&](const std::string& context, const GitEnvironment& env) {
    return CloneGitContext(context, {}, env, s.Dest());
  };
  GitEnvironment userpass = Env();
  userpass.username = "builder";
  userpass.password = "s3cret-pw";
  auto ok = clone(base, userpass);
  CHECK_MESSAGE(ok.ok(), ok.error().ToString());
  auto in_url = clone("git://builder:s3cret-pw@" + host + "/repo.git", Env());
  CHECK_MESSAGE(in_url.ok(), in_url.error().ToString());
  // GIT_TOKEN wins over the others and goes as the user name (kaniko's rule): this server wants
  // builder:s3cret-pw, so a token is refused.
  GitEnvironment token = userpass;
  token.token = "tok-123";
  auto refused = clone(base, token);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message().find("git clone failed") != std::string::npos);
  CHECK(refused.error().message().find("tok-123") == std::string::npos);
  GitEnvironment broken = Env();
  broken.username = "builder";
  broken.password = "pw\nhost=elsewhere";
  auto injected = clone(base, broken);
  REQUIRE_FALSE(injected.ok());
  CHECK(injected.error().message() == "--context " + base + ": the git credentials contain a line break");
  // No credentials: git must not prompt (it would hang), it fails.
  auto none = clone(base, Env());
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message().find("git clone failed") != std::string::npos);
  // Wrong ones, in the URL: the message shows neither.
  auto wrong = clone("git://builder:wrong-pw@" + host + "/repo.git", Env());
  REQUIRE_FALSE(wrong.ok());
  INFO(wrong.error().message());
  CHECK(wrong.error().message().find("wrong-pw") == std::string::npos);
  CHECK(wrong.error().message().find("--context git://" + host + "/repo.git: ") == 0);
}

TEST_CASE("git source of ADD: the forms of URL#REF:SUBDIR") {
  auto a = ParseGitAddSource("https://u:pw@github.com/acme/app.git#v1.2:docs/site");
  REQUIRE(a.ok());
  CHECK(a->source.url == "https://github.com/acme/app.git");
  CHECK(a->source.username == "u");
  CHECK(a->source.password == "pw");
  CHECK(a->source.shown == "https://github.com/acme/app.git#v1.2:docs/site");
  CHECK(a->source.ref == "v1.2");
  CHECK(a->subdir == "docs/site");
  auto bare = ParseGitAddSource("git://example.com/x.git");
  REQUIRE(bare.ok());
  CHECK(bare->source.url == "git://example.com/x.git");
  CHECK(bare->source.ref.empty());
  CHECK(bare->subdir.empty());
  auto sub_only = ParseGitAddSource("http://h/r.git#:sub");
  REQUIRE(sub_only.ok());
  CHECK(sub_only->source.ref.empty());
  CHECK(sub_only->subdir == "sub");
  auto error = [](const std::string& src) {
    auto r = ParseGitAddSource(src);
    REQUIRE_FALSE(r.ok());
    return r.error().message();
  };
  CHECK(error("git@github.com:acme/app.git") ==
        "ADD git@github.com:acme/app.git: git over ssh is not supported (use an https URL)");
  CHECK(error("ftp://h/r.git") == "ADD ftp://h/r.git: not a git URL (https://, http:// or git://)");
  CHECK(error("https://h/r.git#-x") == "ADD https://h/r.git#-x: \"-x\" is neither a ref nor a commit id");
  CHECK(error("https://u:pw@/r.git") ==
        "ADD https:///r.git: no host (expected SCHEME://HOST/PATH[#REF][:SUBDIR])");
}

TEST_CASE("git source of ADD: checkout, checksum, .git, modes and subdirectories") {
  Served s;
  const GitTestRepo& repo = s.repo;
  const std::string url = "http://" + s.server.HostPort() + "/repo.git";
  auto fetch = [&](const std::string& src, const std::string& checksum = "", bool keep = false) {
    return FetchGitSource(src, checksum, keep, Env(), s.Dest());
  };
  // A restrictive umask must not leak into the files: modes are Docker's, not the checkout's.
  const mode_t old_umask = umask(077);
  auto whole = fetch(url);
  umask(old_umask);
  REQUIRE_MESSAGE(whole.ok(), whole.error().ToString());
  CHECK(ReadFile(*whole + "/file.txt") == "two\n");
  CHECK_FALSE(std::filesystem::exists(*whole + "/.git"));
  struct stat st;
  REQUIRE(stat((*whole + "/file.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
  REQUIRE(stat((*whole + "/tool.sh").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  REQUIRE(stat((*whole + "/sub/dir").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);

  auto tag = fetch(url + "#v1", repo.first.substr(0, 12), true);
  REQUIRE_MESSAGE(tag.ok(), tag.error().ToString());
  CHECK(ReadFile(*tag + "/file.txt") == "one\n");
  CHECK(std::filesystem::is_directory(*tag + "/.git"));  // --keep-git-dir
  auto sub = fetch(url + "#feature:sub/dir");
  REQUIRE_MESSAGE(sub.ok(), sub.error().ToString());
  CHECK(ReadFile(*sub + "/inner.txt") == "inner\n");
  CHECK(std::filesystem::path(*sub).filename() == "dir");

  auto mismatch = fetch(url + "#v1", repo.second);
  REQUIRE_FALSE(mismatch.ok());
  CHECK(mismatch.error().message() == "ADD " + url + "#v1: --checksum " + repo.second +
                                          " does not match the commit checked out (" + repo.first + ")");
  auto sha = fetch(url, "sha256:" + std::string(64, 'a'));
  REQUIRE_FALSE(sha.ok());
  CHECK(sha.error().message() ==
        "ADD " + url + ": --checksum for a git source is a commit id (7 to 64 hex digits)");
  auto no_sub = fetch(url + "#v1:sub");  // sub/ came later
  REQUIRE_FALSE(no_sub.ok());
  CHECK(no_sub.error().message() ==
        "ADD " + url + "#v1:sub: sub is not a directory of the repository: No such file or directory");
  auto no_repo = fetch("http://" + s.server.HostPort() + "/missing.git");
  REQUIRE_FALSE(no_repo.ok());
  CHECK(no_repo.error().message().find("ADD http://" + s.server.HostPort() +
                                       "/missing.git: git clone failed (exit code 128): ") == 0);
}

}  // namespace
}  // namespace slipway::executor
