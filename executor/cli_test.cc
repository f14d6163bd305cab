#include "executor/cli.h"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "base/test_util.h"

namespace slipway::executor {
namespace {

Result<CliOptions> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "slipway");
  CliOptions o;
  auto env = [](const char* name) -> const char* {
    if (std::string(name) == "FROM_ENV") return "env-value";
    if (std::string(name) == "TOKEN") return "s3cret";
    if (std::string(name) == "SSH_AUTH_SOCK") return "/tmp/agent.sock";
    return nullptr;
  };
  auto r = ParseCommandLine(static_cast<int>(args.size()), args.data(), &o, env);
  if (!r.ok()) return std::move(r).error();
  return o;
}

std::string ParseError(std::vector<const char*> args) {
  auto r = Parse(std::move(args));
  REQUIRE_FALSE(r.ok());
  return r.error().message();
}

TEST_CASE("cli: kaniko's flags, long and short, = or separate values") {
  auto o = Parse({"-c", "dir:///src", "--context-sub-path", "services/api", "--git",
                  "branch=dev,single-branch=true", "--git", "recurse-submodules=true",
                  "--dockerfile=build/Dockerfile", "-d", "reg/app:1",
                  "--destination", "reg/app:latest", "--no-push", "--tar-path", "out.tar",
                  "--oci-layout-path=out", "--digest-file", "d", "--image-name-with-digest-file",
                  "n", "--build-arg", "A=1", "--build-arg", "FROM_ENV", "--build-arg", "UNSET",
                  "--target", "builder", "--label", "k=v=w", "--custom-platform", "linux/arm64/v8",
                  "--ignore-path", "/var/cache", "--snapshot-mode", "redo", "--single-snapshot",
                  "--reproducible=true", "--compression", "zstd", "--compression-level", "12",
                  "--verbosity", "debug", "--log-format", "json", "--cleanup", "--cache=false",
                  "--image-source", "busybox=oci-layout:/img", "--secret", "id=tok,env=TOKEN",
                  "--secret", "id=f,src=/run/f", "--ssh", "default", "--ssh",
                  "deploy=/run/deploy.sock"});
  REQUIRE_MESSAGE(o.ok(), o.error().ToString());
  const BuildRequest& r = o->request;
  CHECK(r.context == "dir:///src");
  CHECK(r.context_sub_path == "services/api");
  CHECK(r.git.branch == "dev");
  CHECK(r.git.single_branch);
  CHECK(r.git.recurse_submodules);
  CHECK_FALSE(r.git.insecure_skip_tls);
  CHECK(r.dockerfile == "build/Dockerfile");
  CHECK(r.destinations == std::vector<std::string>{"reg/app:1", "reg/app:latest"});
  CHECK(r.no_push);
  CHECK(r.tar_path == "out.tar");
  CHECK(r.oci_layout_path == "out");
  CHECK(r.build_args.at("A") == "1");
  CHECK(r.build_args.at("FROM_ENV") == "env-value");
  CHECK(r.build_args.count("UNSET") == 0);  // KEY alone with no such variable: not set
  CHECK(r.labels.at("k") == "v=w");
  CHECK(r.platform == "linux/arm64/v8");
  CHECK(r.snapshot_mode == snapshot::Strategy::kAuto);
  CHECK(r.single_snapshot);
  CHECK(r.reproducible);
  CHECK(r.compression == snapshot::Compression::kZstd);
  CHECK(r.compression_level == 12);
  CHECK(o->verbosity == Verbosity::kDebug);
  CHECK(o->log_format == LogFormat::kJson);
  CHECK(r.sources.Has("docker.io/library/busybox:latest"));
  CHECK(r.secret_values.at("tok") == "s3cret");
  CHECK(r.secrets.at("f") == "/run/f");
  CHECK(r.ssh_agents.at("default") == "/tmp/agent.sock");  // $SSH_AUTH_SOCK
  CHECK(r.ssh_agents.at("deploy") == "/run/deploy.sock");
}

TEST_CASE("cli: registry flags") {
  auto o = Parse({"--insecure-registry", "localhost:5000", "--insecure-registry", "r:1",
                  "--skip-tls-verify", "--registry-certificate", "reg.example=/ca.pem",
                  "--registry-mirror", "mirror.gcr.io", "--registry-map",
                  "index.docker.io=mirror.example;quay.io=q.example", "--push-retry", "3",
                  "--image-download-retry=2", "--insecure-pull", "--cache", "--cache-repo",
                  "oci:/c", "--cache-ttl", "90m"});
  REQUIRE_MESSAGE(o.ok(), o.error().ToString());
  const auto& r = o->request.registry;
  CHECK(r.insecure_registries == std::set<std::string>{"localhost:5000", "r:1"});
  CHECK(r.skip_tls_verify);
  CHECK(r.insecure);
  CHECK(r.ca_files.at("reg.example") == "/ca.pem");
  CHECK(r.mirrors == std::vector<std::string>{"mirror.gcr.io"});
  CHECK(r.registry_map.at("docker.io") == "mirror.example");
  CHECK(r.registry_map.at("quay.io") == "q.example");
  CHECK(o->request.push_retry == 3);
  CHECK(o->request.pull_retry == 2);
  CHECK(o->request.cache);
  CHECK(o->request.cache_repo == "oci:/c");
  CHECK(o->request.cache_ttl == 5400);
}

TEST_CASE("cli: bad command lines get a message naming the flag") {
  CHECK(ParseError({"--bogus"}) == "unknown flag --bogus (see slipway --help)");
  CHECK(ParseError({"-x"}) == "unknown flag -x (see slipway --help)");
  CHECK(ParseError({"--context"}) == "--context needs a value (see slipway --help)");
  CHECK(ParseError({"--git", "branch=x,depth=1"}) ==
        "--git depth=1: unknown option (branch, single-branch, recurse-submodules, "
        "insecure-skip-tls) (see slipway --help)");
  CHECK(ParseError({"--git", "single-branch=yes"}) ==
        "--git single-branch=yes: expected true or false (see slipway --help)");
  CHECK(ParseError({"--git", "branch=--upload-pack=x"}) ==
        "--git branch=--upload-pack=x: not a branch name (see slipway --help)");
  CHECK(ParseError({"stray"}).find("unexpected argument \"stray\"") == 0);
  CHECK(ParseError({"--no-push=maybe"}).find("--no-push=maybe: expected true or false") == 0);
  CHECK(ParseError({"--label", "novalue"}).find("--label novalue: expected KEY=VALUE") == 0);
  CHECK(ParseError({"--snapshot-mode", "fast"}).find("expected auto, overlay or walk") !=
        std::string::npos);
  CHECK(ParseError({"--compression", "lz4"}).find("expected gzip or zstd") != std::string::npos);
  CHECK(ParseError({"--compression-level", "12"}).find("gzip levels are 1-9") != std::string::npos);
  CHECK(ParseError({"--custom-platform", "amd64"}).find("expected OS/ARCH") != std::string::npos);
  CHECK(ParseError({"--verbosity", "loud"}).find("--verbosity \"loud\"") == 0);
  CHECK(ParseError({"--image-source", "busybox"}).find("expected REF=oci-layout") !=
        std::string::npos);
  CHECK(ParseError({"--image-source", "busybox=http://x"}).find("unknown image source") !=
        std::string::npos);
  CHECK(ParseError({"--secret", "id=x"}).find("expected id=ID,src=FILE") != std::string::npos);
  CHECK(ParseError({"--secret", "id=x,env=NOPE"}).find("$NOPE is not set") != std::string::npos);
  CHECK(ParseError({"--ssh", "=/x.sock"}) == "--ssh =/x.sock: expected ID=SOCKET or ID (see slipway --help)");
  CHECK(ParseError({"--ssh", "deploy="}) == "--ssh deploy=: expected ID=SOCKET or ID (see slipway --help)");
  CHECK(ParseError({"--cache-ttl", "soon"}).find("expected a duration") != std::string::npos);
  CHECK(ParseError({"--cache-ttl", "-5m"}).find("expected a duration") != std::string::npos);
  CHECK(ParseError({"--push-retry", "-1"}).find("expected 0-100") != std::string::npos);
  CHECK(ParseError({"--registry-map", "nope"}).find("expected KEY=VALUE") != std::string::npos);
  CHECK(ParseError({"--config", "/nonexistent.yaml"}).find("--config /nonexistent.yaml") == 0);
}

TEST_CASE("cli: the YAML config maps images; its errors name the file and line") {
  testing::TempDir tmp;
  const std::string good = tmp.Join("good.yaml");
  testing::WriteFile(good, "image-sources:\n  ubuntu:latest: oci-layout:/img:bookworm\n"
                           "  busybox: docker-archive:/b.tar\n");
  auto o = Parse({"--config", good.c_str()});
  REQUIRE_MESSAGE(o.ok(), o.error().ToString());
  CHECK(o->request.sources.Has("ubuntu"));
  CHECK(o->request.sources.Has("busybox:latest"));
  const std::string bad = tmp.Join("bad.yaml");
  testing::WriteFile(bad, "image-sources:\n  ubuntu: ftp://x\n");
  CHECK(ParseError({"--config", bad.c_str()}).find(bad + ":2: unknown image source") !=
        std::string::npos);
  testing::WriteFile(bad, "registries: {}\n");
  CHECK(ParseError({"--config", bad.c_str()}).find("unknown key \"registries\"") !=
        std::string::npos);
}

TEST_CASE("cli: --help mentions every flag it parses") {
  const std::string help = HelpText();
  for (const char* f : {"--context", "--context-sub-path", "--git", "--dockerfile", "--build-arg", "--target", "--label",
                        "--custom-platform", "--ignore-path", "--image-source", "--config",
                        "--secret", "--ssh", "--destination", "--no-push", "--tar-path", "--oci-layout-path",
                        "--digest-file", "--image-name-with-digest-file", "--snapshot-mode",
                        "--single-snapshot", "--reproducible", "--compression",
                        "--compression-level", "--seccomp-profile", "--work-dir", "--cache-dir",
                        "--cleanup", "--verbosity", "--log-format", "--cache-repo", "--insecure-registry",
                        "--skip-tls-verify", "--registry-certificate", "--registry-mirror",
                        "--registry-map", "--push-retry", "--image-download-retry"}) {
    CHECK_MESSAGE(help.find(f) != std::string::npos, f);
  }
}

}  // namespace
}  // namespace slipway::executor
