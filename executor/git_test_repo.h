// A git repository for tests (testonly), made with the git in /usr/bin and laid out for git's
// "dumb" HTTP protocol under tmp.Join("srv") -- serve it with TinyHttpServer(ServeFiles(...)) as
// http://127.0.0.1:PORT/repo.git. History: "one" (tagged v1) then "two" and "sub" on main,
// "feature" on branch feature, and "pull" (from "one") as refs/pull/1/head. file.txt holds the
// name of the commit; a Dockerfile ("FROM busybox") and an executable tool.sh are there too,
// and from "sub" on,
// sub/Dockerfile (COPY dir/inner.txt /inner, RUN cat /inner) with sub/dir/inner.txt ("inner").
#ifndef SLIPWAY_EXECUTOR_GIT_TEST_REPO_H_
#define SLIPWAY_EXECUTOR_GIT_TEST_REPO_H_

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/test_util.h"

namespace slipway::testing {

inline std::string Git(const std::string& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/git", "-C", dir, "-c", "user.name=t", "-c",
                                   "user.email=t@example.com"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = testing::Run(argv);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

struct GitTestRepo {
  TempDir tmp;
  std::string first, second, pull;  // commit ids
  GitTestRepo() {
    const std::string work = tmp.Join("work");
    std::filesystem::create_directories(work);
    Git(work, {"init", "--quiet", "--initial-branch=main"});
    WriteFile(work + "/Dockerfile", "FROM busybox\n");
    WriteFile(work + "/file.txt", "one\n");
    WriteFile(work + "/tool.sh", "#!/bin/sh\necho tool\n");
    std::filesystem::permissions(work + "/tool.sh", std::filesystem::perms(0755));
    Git(work, {"add", "."});
    Git(work, {"commit", "--quiet", "-m", "one"});
    first = Git(work, {"rev-parse", "HEAD"});
    Git(work, {"tag", "v1"});
    WriteFile(work + "/file.txt", "two\n");
    WriteFile(work + "/sub/dir/inner.txt", "inner\n");
    WriteFile(work + "/sub/Dockerfile", "FROM busybox\nCOPY dir/inner.txt /inner\nRUN cat /inner\n");
    Git(work, {"commit", "--quiet", "-am", "two"});
    Git(work, {"add", "."});
    Git(work, {"commit", "--quiet", "-m", "sub"});
    second = Git(work, {"rev-parse", "HEAD"});
    Git(work, {"checkout", "--quiet", "-b", "feature"});
    WriteFile(work + "/file.txt", "feature\n");
    Git(work, {"commit", "--quiet", "-am", "feature"});
    Git(work, {"checkout", "--quiet", "--detach", first});
    WriteFile(work + "/file.txt", "pull\n");
    Git(work, {"commit", "--quiet", "-am", "pull"});
    pull = Git(work, {"rev-parse", "HEAD"});
    Git(work, {"checkout", "--quiet", "main"});
    const std::string bare = tmp.Join("srv/repo.git");
    std::filesystem::create_directories(tmp.Join("srv"));
    Git(tmp.path(), {"clone", "--quiet", "--bare", work, bare});
    Git(bare, {"update-ref", "refs/pull/1/head", pull});
    Git(bare, {"update-server-info"});
  }
};

}  // namespace slipway::testing

#endif  // SLIPWAY_EXECUTOR_GIT_TEST_REPO_H_
