// The image formats against themselves and against the tools users have: umoci unpacks our OCI
// layout into the tree we packed, and skopeo reads both the layout and the docker-archive.
#include "image/oci.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "image/digest.h"
#include "snapshot/layer_writer.h"
#include "snapshot/walk.h"

namespace slipway::image {
namespace {

namespace fs = std::filesystem;
using slipway::testing::ReadFile;
using slipway::testing::Run;
using slipway::testing::WriteFile;

// The tree an image should hold: path -> type, mode, content or target.
std::map<std::string, std::string> Tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = it->path().lexically_relative(root).string();
    struct stat st;
    REQUIRE(lstat(it->path().c_str(), &st) == 0);
    std::string d = std::to_string(st.st_mode & 0170777) + " t=" + std::to_string(st.st_mtime);
    if (S_ISREG(st.st_mode)) d += " c=" + ReadFile(it->path());
    if (S_ISLNK(st.st_mode)) d += " l=" + fs::read_symlink(it->path()).string();
    if (S_ISDIR(st.st_mode)) d = std::to_string(st.st_mode & 0170777);  // umoci sets dir times
    out[rel] = d;
  }
  return out;
}

void MakeRootfs(const std::string& r) {
  WriteFile(r + "/etc/os-release", "ID=slipway\n");
  WriteFile(r + "/bin/tool", "#!/bin/sh\necho tool\n", 0755);
  WriteFile(r + "/usr/share/doc/readme", std::string(100000, 'r'));
  fs::create_symlink("/bin/tool", r + "/usr/bin-tool");
  REQUIRE(link((r + "/bin/tool").c_str(), (r + "/bin/tool-again").c_str()) == 0);
  chmod((r + "/bin/tool").c_str(), 04755);
  fs::create_directories(r + "/var/empty");
  for (const auto& e : fs::recursive_directory_iterator(r)) {
    timespec t[2] = {{1600000000, 0}, {1600000000, 0}};
    utimensat(AT_FDCWD, e.path().c_str(), t, AT_SYMLINK_NOFOLLOW);
  }
}

struct Built {
  std::string layer_gz, layer_tar, config_bytes, manifest_bytes;
  snapshot::LayerBlob gz, tar;
};

Built BuildLayers(const std::string& rootfs, const std::string& dir) {
  UniqueFd root(open(rootfs.c_str(), O_RDONLY | O_DIRECTORY));
  auto scan = snapshot::Manifest::Scan(root.get());
  REQUIRE(scan.ok());
  std::vector<snapshot::LayerEntry> all = scan->AllPaths();
  Built b;
  b.layer_gz = dir + "/layer.tar.gz";
  b.layer_tar = dir + "/layer.tar";
  UniqueFd gz(open(b.layer_gz.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  UniqueFd tar(open(b.layer_tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  auto g = snapshot::WriteLayer(root.get(), all, gz.get(), {});
  snapshot::LayerOptions plain;
  plain.compression = snapshot::Compression::kNone;
  auto t = snapshot::WriteLayer(root.get(), all, tar.get(), plain);
  REQUIRE(g.ok());
  REQUIRE(t.ok());
  b.gz = *g;
  b.tar = *t;
  ImageConfig c;
  c.created = "2026-01-01T00:00:00Z";
  c.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  c.cmd = std::vector<std::string>{"/bin/tool"};
  c.labels = {{"org.opencontainers.image.title", "slipway test"}};
  c.exposed_ports = {"8080/tcp"};
  c.diff_ids = {b.gz.diff_id};
  c.history = {{"2026-01-01T00:00:00Z", "COPY rootfs /", "", "", false},
               {"2026-01-01T00:00:00Z", "CMD [\"/bin/tool\"]", "", "", true}};
  b.config_bytes = Serialize(ToJson(c));
  return b;
}

TEST_CASE("oci: a layout we write is read back, verified, and unpacked by umoci to the same tree") {
  slipway::testing::TempDir tmp("/tmp");
  const std::string rootfs = tmp.Join("rootfs");
  MakeRootfs(rootfs);
  Built b = BuildLayers(rootfs, tmp.path());
  CHECK(b.gz.diff_id == b.tar.diff_id);

  auto w = OciLayoutWriter::Create(tmp.Join("layout"));
  REQUIRE(w.ok());
  auto layer = w->AddBlobFile(b.layer_gz, kMediaTypeLayerGzip);
  REQUIRE(layer.ok());
  CHECK(layer->digest == b.gz.digest);
  auto config = w->AddBlob(b.config_bytes, kMediaTypeConfig);
  REQUIRE(config.ok());
  Manifest m;
  m.config = *config;
  m.layers = {*layer};
  auto manifest = w->AddBlob(Serialize(ToJson(m)), kMediaTypeManifest);
  REQUIRE(manifest.ok());
  w->AddManifest(*manifest, "test");
  const std::string temp = w->temp_path();
  REQUIRE(w->Commit().ok());
  CHECK_FALSE(fs::exists(temp));

  auto in = OciLayout::Open(tmp.Join("layout"));
  REQUIRE_MESSAGE(in.ok(), in.error().ToString());
  auto img = in->Resolve("test", Platform{});
  REQUIRE_MESSAGE(img.ok(), img.error().ToString());
  CHECK(img->config.diff_ids == std::vector<std::string>{b.gz.diff_id});
  CHECK(img->config.cmd == std::optional<std::vector<std::string>>({"/bin/tool"}));
  CHECK(CheckHistory(img->config).ok());
  CHECK(in->Resolve("nope", Platform{}).error().message().find("no image tagged \"nope\"") == 0);

  auto unpack = Run({"/usr/bin/umoci", "unpack", "--rootless", "--image",
                     tmp.Join("layout") + ":test", tmp.Join("bundle")});
  REQUIRE_MESSAGE(unpack.exit_code == 0, unpack.err);
  CHECK(Tree(tmp.Join("bundle/rootfs")) == Tree(rootfs));

  auto inspect = Run({"/usr/bin/skopeo", "inspect", "oci:" + tmp.Join("layout") + ":test"});
  REQUIRE_MESSAGE(inspect.exit_code == 0, inspect.err);
  auto j = nlohmann::json::parse(inspect.out);
  CHECK(j["Layers"][0] == b.gz.digest);
  CHECK(j["Labels"]["org.opencontainers.image.title"] == "slipway test");

  // skopeo copies the layout into a new one that we can read back.
  auto copy = Run({"/usr/bin/skopeo", "copy", "--insecure-policy",
                   "oci:" + tmp.Join("layout") + ":test", "oci:" + tmp.Join("copy") + ":again"});
  REQUIRE_MESSAGE(copy.exit_code == 0, copy.err);
  auto again = OciLayout::Open(tmp.Join("copy"));
  REQUIRE(again.ok());
  auto copied = again->Resolve("again", Platform{});
  REQUIRE_MESSAGE(copied.ok(), copied.error().ToString());
  CHECK(copied->config.diff_ids == img->config.diff_ids);

  // A tampered blob is caught by its digest.
  fs::permissions(in->BlobPath(config->digest), fs::perms::owner_write, fs::perm_options::add);
  WriteFile(in->BlobPath(config->digest), b.config_bytes + " ");
  auto bad = in->Resolve("test", Platform{});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message().find("does not match its digest") != std::string::npos);
}

TEST_CASE("oci: the docker-archive is accepted by skopeo and round-trips into an OCI layout") {
  slipway::testing::TempDir tmp("/tmp");
  const std::string rootfs = tmp.Join("rootfs");
  MakeRootfs(rootfs);
  Built b = BuildLayers(rootfs, tmp.path());
  const std::string archive = tmp.Join("image.tar");
  auto r = WriteDockerArchive(archive, b.config_bytes, {b.layer_tar}, {"slipway/test:latest"});
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  CHECK_FALSE(fs::exists(archive + ".tmp"));

  auto inspect = Run({"/usr/bin/skopeo", "inspect", "docker-archive:" + archive});
  REQUIRE_MESSAGE(inspect.exit_code == 0, inspect.err);
  auto j = nlohmann::json::parse(inspect.out);
  CHECK(j["Layers"][0] == b.tar.diff_id);  // layers are stored uncompressed, named by diff id

  auto copy = Run({"/usr/bin/skopeo", "copy", "--insecure-policy", "docker-archive:" + archive,
                   "oci:" + tmp.Join("copied") + ":copied"});
  REQUIRE_MESSAGE(copy.exit_code == 0, copy.err);
  auto in = OciLayout::Open(tmp.Join("copied"));
  REQUIRE(in.ok());
  auto img = in->Resolve("copied", Platform{});
  REQUIRE_MESSAGE(img.ok(), img.error().ToString());
  CHECK(img->config.diff_ids == std::vector<std::string>{b.tar.diff_id});

  // Mismatches are refused before anything is written.
  auto wrong = WriteDockerArchive(tmp.Join("bad.tar"), b.config_bytes, {b.layer_gz}, {"a:b"});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message().find("invalid diffID for layer 0") == 0);
  CHECK_FALSE(fs::exists(tmp.Join("bad.tar")));
  auto bad_tag =
      WriteDockerArchive(tmp.Join("bad.tar"), b.config_bytes, {b.layer_tar}, {"nocolon"});
  REQUIRE_FALSE(bad_tag.ok());
  CHECK(bad_tag.error().message() == "tag \"nocolon\" is not of the form name:tag");
}

TEST_CASE("oci: JSON models round-trip and reject malformed input") {
  ImageConfig c;
  c.user = "app";
  c.entrypoint = std::vector<std::string>{"/bin/sh", "-c"};
  c.healthcheck = Healthcheck{{"CMD", "true"}, 30000000000, 0, 0, 0, 3};
  c.on_build = {"RUN echo hi"};
  c.shell = {"/bin/bash", "-c"};
  c.stop_signal = "SIGTERM";
  c.volumes = {"/data"};
  c.working_dir = "/srv";
  c.diff_ids = {Sha256Digest("x")};
  c.history = {{"", "RUN x", "", "", false}, {"", "ENV y", "", "", true}};
  const std::string bytes = Serialize(ToJson(c));
  CHECK(bytes == Serialize(ToJson(c)));  // deterministic
  auto back = ConfigFromJson(bytes);
  REQUIRE(back.ok());
  CHECK(Serialize(ToJson(*back)) == bytes);
  CHECK(CheckHistory(*back).ok());
  back->history.push_back({"", "RUN z", "", "", false});
  CHECK(CheckHistory(*back).error().message() ==
        "history has 2 entries with layers but rootfs has 1 diff_ids");
  CHECK(ConfigFromJson("{}").error().message() == "invalid image config (rootfs is not set)");
  CHECK_FALSE(ConfigFromJson("[").ok());
  CHECK(ManifestFromJson(R"({"schemaVersion":1})").error().message() ==
        "manifest schemaVersion is not 2");
  CHECK(ManifestFromJson(R"({"schemaVersion":2,"config":{"digest":"md5:x","size":1}})")
            .error()
            .message() == "descriptor digest \"md5:x\" is not a sha256 digest");
}

}  // namespace
}  // namespace slipway::image
