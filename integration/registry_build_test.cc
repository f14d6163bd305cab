// slipway against a real registry (Debian's docker-registry on 127.0.0.1): a base image pulled
// from it, the result pushed to two tags with the base layer mounted instead of re-uploaded, the
// digest files, a rebuild FROM the pushed image by digest, and skopeo reading what we pushed.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "base/test_util.h"
#include "image/registry_test_util.h"
#include "integration/busybox_base.h"

namespace slipway {
namespace {

using testing::ReadFile;
using testing::Run;
using testing::Runfile;
using testing::TempDir;
using testing::WriteFile;

TEST_CASE("registry builds: pull the base, push the result, rebuild from it by digest") {
  TempDir tmp("/var/tmp");
  testing::RegistryServer server(tmp.Join("registry") + "", "", "");
  const std::string host = server.host();
  // The busybox base, pushed with skopeo.
  const std::string busybox = testing::MakeBusyboxImage(tmp.path()).oci;
  auto cp = Run({"/usr/bin/skopeo", "copy", "--dest-tls-verify=false",
                 "oci:" + busybox + ":latest", "docker://" + host + "/base/busybox:latest"});
  REQUIRE_MESSAGE(cp.exit_code == 0, cp.err);

  WriteFile(tmp.Join("ctx/Dockerfile"),
            "FROM " + host + "/base/busybox\nRUN echo built > /built\nCOPY f.txt /f.txt\n");
  WriteFile(tmp.Join("ctx/f.txt"), "context\n");
  std::filesystem::create_directories(tmp.Join("work"));
  auto built = Run({Runfile("executor/slipway"), "-c", tmp.Join("ctx"), "--insecure-registry", host,
                    "--destination", host + "/apps/demo:1", "--destination", host + "/apps/demo:latest",
                    "--digest-file", tmp.Join("digest"), "--image-name-with-digest-file",
                    tmp.Join("names"), "--work-dir", tmp.Join("work"), "--cache-dir", tmp.Join("cache")});
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  CHECK(built.err.find("1 mounted") != std::string::npos);  // the base layer, from base/busybox
  CHECK(std::filesystem::is_empty(tmp.Join("work")));
  const std::string digest = ReadFile(tmp.Join("digest"));
  CHECK(ReadFile(tmp.Join("names")) ==
        host + "/apps/demo@" + digest + "\n" + host + "/apps/demo@" + digest + "\n");
  for (const char* tag : {":1", ":latest"}) {
    auto inspect = Run({"/usr/bin/skopeo", "inspect", "--tls-verify=false",
                        "docker://" + host + "/apps/demo" + tag});
    REQUIRE_MESSAGE(inspect.exit_code == 0, inspect.err);
    CHECK(inspect.out.find("\"Digest\": \"" + digest + "\"") != std::string::npos);
  }

  // FROM the pushed image, by digest.
  WriteFile(tmp.Join("ctx2/Dockerfile"),
            "FROM " + host + "/apps/demo@" + digest + "\nRUN cat /built /f.txt\n");
  auto again = Run({Runfile("executor/slipway"), "-c", tmp.Join("ctx2"), "--insecure-registry", host,
                    "--no-push", "--work-dir", tmp.Join("work"), "--cache-dir", tmp.Join("cache")});
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(again.err.find(" built\n") != std::string::npos);
  CHECK(again.err.find(" context\n") != std::string::npos);

  // The layer cache in the registry: the second build runs nothing.
  WriteFile(tmp.Join("ctx4/Dockerfile"),
            "FROM " + host + "/base/busybox\nRUN echo $RANDOM > /r\nCOPY f.txt /f\n");
  WriteFile(tmp.Join("ctx4/f.txt"), "cached\n");
  auto cached_build = [&](const std::string& cache_repo) {
    return Run({Runfile("executor/slipway"), "-c", tmp.Join("ctx4"), "--insecure-registry", host,
                "--insecure-registry", "127.0.0.1:1", "--cache", "--cache-repo", cache_repo,
                "--no-push", "--work-dir", tmp.Join("work"), "--cache-dir", tmp.Join("cache")});
  };
  auto first = cached_build(host + "/cache/layers");
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  CHECK(first.err.find("CACHED") == std::string::npos);
  auto second = cached_build(host + "/cache/layers");
  REQUIRE_MESSAGE(second.exit_code == 0, second.err);
  int cached = 0;
  for (std::size_t p = 0; (p = second.err.find(" (CACHED)\n", p)) != std::string::npos; ++p) ++cached;
  CHECK_MESSAGE(cached == 2, second.err);  // the RUN and the COPY
  // A cache registry that cannot be reached: warnings, and the build goes on.
  auto unreachable = cached_build("127.0.0.1:1/cache");
  REQUIRE_MESSAGE(unreachable.exit_code == 0, unreachable.err);
  CHECK(unreachable.err.find("layer cache") != std::string::npos);

  // A base that is neither mapped nor reachable: the error names it and says how to map it.
  WriteFile(tmp.Join("ctx3/Dockerfile"), "FROM 127.0.0.1:1/nothing:1\n");
  auto none = Run({Runfile("executor/slipway"), "-c", tmp.Join("ctx3"), "--insecure-registry",
                   "127.0.0.1:1", "--no-push", "--work-dir", tmp.Join("work")});
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("Dockerfile:1:1: FROM 127.0.0.1:1/nothing:1") != std::string::npos);
  CHECK(none.err.find("--image-source 127.0.0.1:1/nothing:1=oci-layout:PATH") != std::string::npos);
}

}  // namespace
}  // namespace slipway
