#include "image/docker_archive.h"

#include <doctest/doctest.h>

#include <string>

#include "base/test_util.h"
#include "image/digest.h"
#include "image/oci.h"
#include "snapshot/tar_builder.h"

namespace slipway::image {
namespace {

using snapshot::testing::BuildTar;
using snapshot::testing::Compression;
using snapshot::testing::File;
using snapshot::testing::Symlink;
using snapshot::testing::TarEntry;

struct Fixture {
  slipway::testing::TempDir tmp;
  std::string layer = BuildTar({File("etc/hello", "hi\n")});
  std::string layer_gz = BuildTar({File("etc/hello", "hi\n")}, Compression::kGzip);
  std::string config;
  Fixture() {
    ImageConfig c;
    c.diff_ids = {Sha256Digest(layer)};
    c.history = {{"", "ADD hello", "", "", false}};
    config = Serialize(ToJson(c));
  }
  std::string Archive(const std::string& manifest, bool gz_layer, bool with_link = false) {
    std::vector<TarEntry> e = {File("abc/VERSION", "1.0"),
                               File("abc/json", "{}"),
                               File("abc/layer.tar", gz_layer ? layer_gz : layer),
                               File("cfg.json", config),
                               File("manifest.json", manifest),
                               File("repositories", "{}")};
    if (with_link) e.push_back(Symlink("def/layer.tar", "../abc/layer.tar"));
    const std::string path = tmp.Join("legacy-" + std::to_string(++n) + ".tar");
    slipway::testing::WriteFile(path, BuildTar(e));
    return path;
  }
  std::string Work() {
    const std::string w = tmp.Join("work-" + std::to_string(++n));
    slipway::testing::MakeDirs(w);
    return w;
  }
  int n = 0;
};

const char kOne[] =
    R"([{"Config":"cfg.json","RepoTags":["busybox:latest"],"Layers":["abc/layer.tar"]}])";

TEST_CASE("docker-archive: legacy v1.2 tarballs, plain or gzip layers, symlinked members") {
  Fixture f;
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    auto img = ReadDockerArchive(f.Archive(kOne, gz), "busybox:latest", f.Work());
    REQUIRE_MESSAGE(img.ok(), img.error().ToString());
    CHECK(img->repo_tags == std::vector<std::string>{"busybox:latest"});
    CHECK(img->config.diff_ids == std::vector<std::string>{Sha256Digest(f.layer)});
    REQUIRE(img->layer_files.size() == 1);
    CHECK(*UncompressedDigest(img->layer_files[0]) == Sha256Digest(f.layer));
  }
  const std::string two =
      R"([{"Config":"cfg.json","RepoTags":["a:1"],"Layers":["abc/layer.tar"]},)"
      R"( {"Config":"cfg.json","RepoTags":["b:2"],"Layers":["def/layer.tar"]}])";
  const std::string archive = f.Archive(two, false, true);
  auto second = ReadDockerArchive(archive, "@1", f.Work());
  REQUIRE_MESSAGE(second.ok(), second.error().ToString());
  CHECK(second->repo_tags == std::vector<std::string>{"b:2"});
  auto none = ReadDockerArchive(archive, "", f.Work());
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message().find("holds 2 images; choose one by name:tag or @index") !=
        std::string::npos);
  CHECK(ReadDockerArchive(archive, "c:3", f.Work()).error().message().find("no image tagged c:3") !=
        std::string::npos);
}

TEST_CASE("docker-archive: what WriteDockerArchive writes reads back") {
  Fixture f;
  const std::string layer_file = f.tmp.Join("layer.tar");
  slipway::testing::WriteFile(layer_file, f.layer);
  const std::string out = f.tmp.Join("out.tar");
  REQUIRE(
      WriteDockerArchive(out, f.config, {layer_file}, {"slipway/x:1", "slipway/x:latest"}).ok());
  auto img = ReadDockerArchive(out, "slipway/x:latest", f.Work());
  REQUIRE_MESSAGE(img.ok(), img.error().ToString());
  CHECK(img->config_bytes == f.config);
  CHECK(img->repo_tags.size() == 2);
}

TEST_CASE("docker-archive: malformed archives are refused with the reason") {
  Fixture f;
  struct Case {
    std::string manifest;
    bool gz;
    const char* error;
  };
  const Case cases[] = {
      {"null", false, "manifest.json is not a non-empty JSON array"},
      {"[]", false, "manifest.json is not a non-empty JSON array"},
      {R"([{"RepoTags":[]}])", false, "a manifest.json item has no Config"},
      {R"([{"Config":"cfg.json","Layers":[]}])", false,
       "layers length mismatch (0 layers, 1 diff_ids)"},
      {R"([{"Config":"cfg.json","Layers":["abc/json"]}])", false,
       "invalid diffID for layer 0 (abc/json)"},
      {R"([{"Config":"nope.json","Layers":[]}])", false,
       "no regular file \"nope.json\" in the archive"},
      {R"([{"Config":"abc/json","Layers":[]}])", false, "invalid image config (rootfs is not set)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.manifest);
    auto r = ReadDockerArchive(f.Archive(c.manifest, c.gz), "", f.Work());
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.error().message().find(c.error) != std::string::npos, r.error().message());
  }
  const std::string no_manifest = f.tmp.Join("empty.tar");
  slipway::testing::WriteFile(no_manifest, BuildTar({File("x", "y")}));
  auto r = ReadDockerArchive(no_manifest, "", f.Work());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message().find("no regular file \"manifest.json\"") != std::string::npos);
}

}  // namespace
}  // namespace slipway::image
