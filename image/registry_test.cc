// The registry client against Debian's real docker-registry on 127.0.0.1, with and without
// htpasswd auth, behind a fault-injecting proxy where needed; skopeo reads what we pushed.
#include "image/registry.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "image/digest.h"
#include "image/oci.h"
#include "image/registry_test_util.h"

namespace slipway::image {
namespace {

using slipway::testing::FaultProxy;
using slipway::testing::RegistryServer;
using slipway::testing::Run;
using slipway::testing::TempDir;
using slipway::testing::WriteFile;

struct LocalImage {
  std::vector<PushBlob> blobs;  // layers, then the config
  std::string manifest;
  std::string manifest_digest;
};

// A two-file image made by mkimage, read back from its OCI layout.
LocalImage MakeImage(TempDir& tmp, const std::string& name, const std::string& content) {
  const std::string rootfs = tmp.Join(name + "-rootfs");
  WriteFile(rootfs + "/etc/hello", content);
  WriteFile(rootfs + "/bin/tool", std::string(300000, 'x') + name, 0755);
  const std::string layout = tmp.Join(name + "-oci");
  auto m = Run({testing::Runfile("integration/mkimage"), "--rootfs", rootfs, "--oci-layout", layout});
  REQUIRE_MESSAGE(m.exit_code == 0, m.err);
  auto l = OciLayout::Open(layout);
  REQUIRE(l.ok());
  auto img = l->Resolve("", {});
  REQUIRE(img.ok());
  LocalImage out;
  for (const Descriptor& d : img->manifest.layers) {
    out.blobs.push_back({d.digest, d.media_type, l->BlobPath(d.digest), d.size, ""});
  }
  const Descriptor& c = img->manifest.config;
  out.blobs.push_back({c.digest, c.media_type, l->BlobPath(c.digest), c.size, ""});
  auto bytes = l->ReadBlob(img->manifest_descriptor.digest);
  REQUIRE(bytes.ok());
  out.manifest = *bytes;
  out.manifest_digest = img->manifest_descriptor.digest;
  return out;
}

Reference Ref(const std::string& text) {
  auto r = ParseReference(text);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return *r;
}

RegistryOptions Insecure(const std::string& host) {
  RegistryOptions o;
  o.insecure_registries = {host};
  o.retries = 3;
  return o;
}

TEST_CASE("reference: Docker's parsing rules") {
  CHECK(Ref("ubuntu").ToString() == "docker.io/library/ubuntu:latest");
  CHECK(Ref("me/app:1.0").ToString() == "docker.io/me/app:1.0");
  CHECK(Ref("localhost:5000/a/b").registry == "localhost:5000");
  CHECK(Ref("ghcr.io/x/y@sha256:" + std::string(64, 'a')).Target() == "sha256:" + std::string(64, 'a'));
  CHECK(Ref("ubuntu").ApiHost() == "registry-1.docker.io");
  CHECK(Ref("docker.io/library/ubuntu:22.04").FamiliarName() == "ubuntu");
  CHECK(Ref("me/app").FamiliarName() == "me/app");
  CHECK(Ref("localhost:5000/a/b:1").FamiliarName() == "localhost:5000/a/b");
  for (const char* bad : {"", "UPPER/case", "a:b:c", "x@sha256:zz", "a/-b", "a:"}) {
    CHECK_MESSAGE(!ParseReference(bad).ok(), bad);
  }
  Challenge c = ParseChallenge(R"(Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull,push")");
  CHECK(c.scheme == "bearer");
  CHECK(c.params["realm"] == "https://auth.example/token");
  CHECK(c.params["scope"] == "repository:a:pull,push");
  CHECK(ParseChallenge("Basic realm=\"x\"").scheme == "basic");
}

TEST_CASE("registry: push, pull by tag and digest, no re-upload, cross-repo mount; skopeo agrees") {
  TempDir tmp("/var/tmp");
  RegistryServer server(tmp.path(), "", "");
  LocalImage img = MakeImage(tmp, "one", "hello\n");
  Registry reg(Insecure(server.host()));
  auto digest = reg.Push(Ref(server.host() + "/team/app:1.0"), img.blobs, img.manifest,
                         kMediaTypeManifest);
  REQUIRE_MESSAGE(digest.ok(), digest.error().ToString());
  CHECK(*digest == img.manifest_digest);
  CHECK(reg.stats().blobs_uploaded == 2);

  auto inspect = Run({"/usr/bin/skopeo", "inspect", "--tls-verify=false",
                      "docker://" + server.host() + "/team/app:1.0"});
  REQUIRE_MESSAGE(inspect.exit_code == 0, inspect.err);
  CHECK(inspect.out.find(img.manifest_digest) != std::string::npos);

  // The same image again: every blob is already there.
  Registry again(Insecure(server.host()));
  REQUIRE(again.Push(Ref(server.host() + "/team/app:1.1"), img.blobs, img.manifest,
                     kMediaTypeManifest).ok());
  CHECK(again.stats().blobs_uploaded == 0);
  CHECK(again.stats().blobs_skipped == 2);

  // Into another repository: mounted, not uploaded.
  std::vector<PushBlob> mounted = img.blobs;
  for (PushBlob& b : mounted) b.mount_from = "team/app";
  Registry other(Insecure(server.host()));
  REQUIRE(other.Push(Ref(server.host() + "/elsewhere/app:1"), mounted, img.manifest,
                     kMediaTypeManifest).ok());
  CHECK(other.stats().blobs_mounted == 2);
  CHECK(other.stats().blobs_uploaded == 0);

  // Pull by tag and by digest into a blob cache; a second pull downloads nothing.
  const std::string cache = tmp.Join("blobs");
  Registry puller(Insecure(server.host()));
  auto pulled = puller.Pull(Ref(server.host() + "/team/app:1.0"), {}, cache);
  REQUIRE_MESSAGE(pulled.ok(), pulled.error().ToString());
  CHECK(pulled->manifest_digest == img.manifest_digest);
  REQUIRE(pulled->layers.size() == 1);
  CHECK(pulled->layers[0].digest == img.blobs[0].digest);
  CHECK(slipway::testing::ReadFile(pulled->layers[0].path) ==
        slipway::testing::ReadFile(img.blobs[0].path));
  const int before = puller.stats().requests;
  auto by_digest = puller.Pull(Ref(server.host() + "/team/app@" + img.manifest_digest), {}, cache);
  REQUIRE_MESSAGE(by_digest.ok(), by_digest.error().ToString());
  CHECK(puller.stats().requests - before == 1);  // the manifest only

  // Errors quote the registry.
  auto missing = puller.Pull(Ref(server.host() + "/team/app:nope"), {}, cache);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find("MANIFEST_UNKNOWN") != std::string::npos);
}

TEST_CASE("registry: an image index is resolved to the platform asked for") {
  TempDir tmp("/var/tmp");
  RegistryServer server(tmp.path(), "", "");
  LocalImage amd = MakeImage(tmp, "amd", "amd64\n");
  LocalImage arm = MakeImage(tmp, "arm", "arm64\n");
  Registry reg(Insecure(server.host()));
  REQUIRE(reg.Push(Ref(server.host() + "/multi:amd"), amd.blobs, amd.manifest, kMediaTypeManifest).ok());
  REQUIRE(reg.Push(Ref(server.host() + "/multi:arm"), arm.blobs, arm.manifest, kMediaTypeManifest).ok());
  Index index;
  index.manifests = {{kMediaTypeManifest, amd.manifest_digest, static_cast<std::int64_t>(amd.manifest.size()), {}, Platform{"linux", "amd64", ""}},
                     {kMediaTypeManifest, arm.manifest_digest, static_cast<std::int64_t>(arm.manifest.size()), {}, Platform{"linux", "arm64", "v8"}}};
  const std::string index_bytes = Serialize(ToJson(index));
  REQUIRE(reg.Push(Ref(server.host() + "/multi:latest"), {}, index_bytes, kMediaTypeIndex).ok());
  auto got = reg.Pull(Ref(server.host() + "/multi:latest"), {"linux", "arm64", ""}, tmp.Join("c"));
  REQUIRE_MESSAGE(got.ok(), got.error().ToString());
  CHECK(got->manifest_digest == arm.manifest_digest);
  auto none = reg.Pull(Ref(server.host() + "/multi:latest"), {"linux", "s390x", ""}, tmp.Join("c"));
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message().find("has no image for linux/s390x") != std::string::npos);
}

TEST_CASE("registry: Basic auth from the docker config.json; failures say why") {
  TempDir tmp("/var/tmp");
  RegistryServer server(tmp.path(), "alice", "s3cret");
  LocalImage img = MakeImage(tmp, "auth", "private\n");
  RegistryOptions o = Insecure(server.host());
  o.docker_config = tmp.Join("none.json");
  Registry anonymous(o);
  auto denied = anonymous.Push(Ref(server.host() + "/p/app:1"), img.blobs, img.manifest, kMediaTypeManifest);
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.error().message().find("has no credentials for " + server.host()) != std::string::npos);
  WriteFile(tmp.Join("wrong.json"), R"({"auths":{")" + server.host() + R"(":{"username":"alice","password":"nope"}}})");
  o.docker_config = tmp.Join("wrong.json");
  Registry wrong(o);
  auto bad = wrong.Push(Ref(server.host() + "/p/app:1"), img.blobs, img.manifest, kMediaTypeManifest);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message().find("HTTP 401") != std::string::npos);
  CHECK(bad.error().ToString().find("nope") == std::string::npos);  // never the password
  // "auth": base64(user:password), under the https:// form of the key.
  WriteFile(tmp.Join("good.json"), R"({"auths":{"https://)" + server.host() +
                                       R"(":{"auth":"YWxpY2U6czNjcmV0"}}})");
  o.docker_config = tmp.Join("good.json");
  Registry good(o);
  auto ok = good.Push(Ref(server.host() + "/p/app:1"), img.blobs, img.manifest, kMediaTypeManifest);
  REQUIRE_MESSAGE(ok.ok(), ok.error().ToString());
  auto pulled = good.Pull(Ref(server.host() + "/p/app:1"), {}, tmp.Join("c"));
  CHECK(pulled.ok());
}

TEST_CASE("registry: Bearer tokens from the realm, and no credentials sent to another host") {
  TempDir tmp("/var/tmp");
  RegistryServer server(tmp.path(), "", "");
  FaultProxy front(server.port());
  front.RequireBearer("bob", "pw", "tok-123");
  LocalImage img = MakeImage(tmp, "bearer", "bearer\n");
  RegistryOptions o = Insecure(front.host());
  WriteFile(tmp.Join("cfg.json"), R"({"auths":{")" + front.host() + R"(":{"username":"bob","password":"pw"}}})");
  o.docker_config = tmp.Join("cfg.json");
  Registry reg(o);
  auto pushed = reg.Push(Ref(front.host() + "/b/app:1"), img.blobs, img.manifest, kMediaTypeManifest);
  REQUIRE_MESSAGE(pushed.ok(), pushed.error().ToString());
  bool token_asked = false;
  for (const auto& s : front.seen()) token_asked |= s.path.rfind("/token?service=slipway-test&scope=", 0) == 0;
  CHECK(token_asked);

  // Blob downloads redirected to another host get no Authorization header.
  FaultProxy cdn(server.port());
  front.RedirectBlobs("http://" + cdn.host());
  Registry puller(o);
  auto pulled = puller.Pull(Ref(front.host() + "/b/app:1"), {}, tmp.Join("c"));
  REQUIRE_MESSAGE(pulled.ok(), pulled.error().ToString());
  const auto at_cdn = cdn.seen();
  REQUIRE_FALSE(at_cdn.empty());
  for (const auto& s : at_cdn) CHECK_MESSAGE(s.authorization.empty(), s.path);
}

TEST_CASE("registry: 500s are retried; a connection dropped mid-upload restarts the upload") {
  TempDir tmp("/var/tmp");
  RegistryServer server(tmp.path(), "", "");
  FaultProxy proxy(server.port());
  LocalImage img = MakeImage(tmp, "faults", "faults\n");
  proxy.FailNext(2, "/blobs/uploads/");
  Registry reg(Insecure(proxy.host()));
  auto pushed = reg.Push(Ref(proxy.host() + "/f/app:1"), img.blobs, img.manifest, kMediaTypeManifest);
  REQUIRE_MESSAGE(pushed.ok(), pushed.error().ToString());
  CHECK(reg.stats().retries >= 2);

  LocalImage img2 = MakeImage(tmp, "drop", "dropped\n");
  proxy.DropNext("PUT /v2/f/app2/blobs/uploads/");
  Registry reg2(Insecure(proxy.host()));
  auto again = reg2.Push(Ref(proxy.host() + "/f/app2:1"), img2.blobs, img2.manifest, kMediaTypeManifest);
  REQUIRE_MESSAGE(again.ok(), again.error().ToString());
  CHECK(reg2.stats().retries >= 1);
  auto inspect = Run({"/usr/bin/skopeo", "inspect", "--tls-verify=false",
                      "docker://" + server.host() + "/f/app2:1"});
  CHECK_MESSAGE(inspect.exit_code == 0, inspect.err);

  // Chunked uploads with a drop in the middle resume where the registry says it is.
  LocalImage img3 = MakeImage(tmp, "chunks", "chunked\n");
  RegistryOptions chunked = Insecure(proxy.host());
  chunked.chunk_size = 4096;
  proxy.DropNext("PATCH /v2/f/app3/blobs/uploads/");
  Registry reg3(chunked);
  auto third = reg3.Push(Ref(proxy.host() + "/f/app3:1"), img3.blobs, img3.manifest, kMediaTypeManifest);
  REQUIRE_MESSAGE(third.ok(), third.error().ToString());
  Registry check(Insecure(server.host()));
  auto pulled = check.Pull(Ref(server.host() + "/f/app3:1"), {}, tmp.Join("c3"));
  REQUIRE_MESSAGE(pulled.ok(), pulled.error().ToString());

  // Something that is not a registry says so.
  FaultProxy not_registry(1);  // forwards nowhere: every answer is 502
  RegistryOptions nr = Insecure(not_registry.host());
  nr.retries = 0;
  Registry confused(nr);
  auto what = confused.Pull(Ref(not_registry.host() + "/x:1"), {}, tmp.Join("c5"));
  REQUIRE_FALSE(what.ok());
  CHECK(what.error().message().find("GET http://" + not_registry.host() + "/v2/: HTTP 502") !=
        std::string::npos);

  // Retries run out: a clean failure that quotes the registry, and no manifest was pushed.
  proxy.FailNext(100, "");
  RegistryOptions few = Insecure(proxy.host());
  few.retries = 1;
  LocalImage img4 = MakeImage(tmp, "never", "never\n");
  Registry reg4(few);
  auto fail = reg4.Push(Ref(proxy.host() + "/f/app4:1"), img4.blobs, img4.manifest, kMediaTypeManifest);
  REQUIRE_FALSE(fail.ok());
  CHECK(fail.error().message().find("injected failure") != std::string::npos);
  proxy.FailNext(0, "");
  Registry look(Insecure(server.host()));
  CHECK_FALSE(look.Pull(Ref(server.host() + "/f/app4:1"), {}, tmp.Join("c4")).ok());
}

TEST_CASE("registry: TLS with --registry-certificate or --skip-tls-verify; mirrors and maps") {
  TempDir tmp("/var/tmp");
  RegistryServer server(tmp.Join("tls"), "", "", /*tls=*/true);
  LocalImage img = MakeImage(tmp, "tls", "tls\n");
  RegistryOptions plain;  // https, the system's CAs: our self-signed certificate is refused
  plain.retries = 0;
  Registry untrusted(plain);
  auto refused = untrusted.Push(Ref(server.host() + "/t/app:1"), img.blobs, img.manifest, kMediaTypeManifest);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message().find("certificate") != std::string::npos);
  RegistryOptions trusted;
  trusted.ca_files[server.host()] = server.ca_file();
  Registry with_ca(trusted);
  auto pushed = with_ca.Push(Ref(server.host() + "/library/busybox:latest"), img.blobs, img.manifest,
                             kMediaTypeManifest);
  REQUIRE_MESSAGE(pushed.ok(), pushed.error().ToString());
  RegistryOptions skip;
  skip.skip_tls_verify = true;
  Registry skipping(skip);
  CHECK(skipping.Pull(Ref(server.host() + "/library/busybox:latest"), {}, tmp.Join("c1")).ok());
  // docker.io pulls through a mirror, or a map: never leaving this machine.
  RegistryOptions mirror = trusted;
  mirror.mirrors = {server.host()};
  Registry mirrored(mirror);
  auto m = mirrored.Pull(Ref("busybox"), {}, tmp.Join("c2"));
  REQUIRE_MESSAGE(m.ok(), m.error().ToString());
  CHECK(m->manifest_digest == img.manifest_digest);
  RegistryOptions mapped = trusted;
  mapped.registry_map["docker.io"] = server.host();
  Registry remapped(mapped);
  auto r = remapped.Pull(Ref("docker.io/library/busybox:latest"), {}, tmp.Join("c3"));
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  CHECK(r->manifest_digest == img.manifest_digest);
}

}  // namespace
}  // namespace slipway::image
