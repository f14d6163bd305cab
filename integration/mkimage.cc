// mkimage: turns a directory into a one-layer base image, as an OCI layout and/or a
// docker-archive tarball, keeping every owner, mode, time, link and xattr. Tests and the demo
// use it to make base images (busybox-static, debootstrap) without a registry.
//
//   mkimage --rootfs DIR [--oci-layout PATH [--tag TAG]] [--docker-archive FILE [--name N:T]]
//           [--env K=V]... [--onbuild INSTRUCTION]... [--user SPEC] [--cmd ARG]...
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "image/oci.h"
#include "snapshot/layer_writer.h"
#include "snapshot/walk.h"

using namespace slipway;

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "mkimage: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string rootfs, oci, tag = "latest", archive, name;
  image::ImageConfig config;
  std::vector<std::string> cmd;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Fail("missing value for " + a);
    const std::string v = argv[++i];
    if (a == "--rootfs") {
      rootfs = v;
    } else if (a == "--oci-layout") {
      oci = v;
    } else if (a == "--tag") {
      tag = v;
    } else if (a == "--docker-archive") {
      archive = v;
    } else if (a == "--name") {
      name = v;
    } else if (a == "--env") {
      config.env.push_back(v);
    } else if (a == "--onbuild") {
      config.on_build.push_back(v);
    } else if (a == "--user") {
      config.user = v;
    } else if (a == "--cmd") {
      cmd.push_back(v);
    } else {
      return Fail("unknown flag " + a);
    }
  }
  if (rootfs.empty() || (oci.empty() && archive.empty())) {
    return Fail("usage: mkimage --rootfs DIR [--oci-layout PATH [--tag T]] "
                "[--docker-archive FILE [--name N:T]] [--env K=V]... [--onbuild I]...");
  }
  if (!cmd.empty()) config.cmd = cmd;
  UniqueFd root(open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return Fail("opening " + rootfs + ": " + std::strerror(errno));
  auto all = snapshot::Manifest::Scan(root.get());
  if (!all.ok()) return Fail(all.error().ToString());
  std::vector<snapshot::LayerEntry> entries = all->AllPaths();
  char tmpl[] = "/tmp/mkimage-XXXXXX";
  if (!mkdtemp(tmpl)) return Fail("mkdtemp");
  const std::string tmp = tmpl;
  const std::string tar = tmp + "/layer.tar", gz = tmp + "/layer.tar.gz";
  auto cleanup = [&] {
    unlink(tar.c_str());
    unlink(gz.c_str());
    rmdir(tmp.c_str());
  };
  snapshot::LayerOptions plain;
  plain.compression = snapshot::Compression::kNone;
  plain.clamp_mtime = 0;  // a fixed image: the same rootfs gives the same digests
  snapshot::LayerBlob blob;
  {
    UniqueFd out(open(tar.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    auto b = snapshot::WriteLayer(root.get(), entries, out.get(), plain);
    if (!b.ok()) {
      cleanup();
      return Fail(b.error().ToString());
    }
    blob = *b;
  }
  config.created = "1970-01-01T00:00:00Z";
  config.diff_ids = {blob.diff_id};
  config.history = {{"1970-01-01T00:00:00Z", "mkimage --rootfs " + rootfs, "", "", false}};
  if (config.env.empty()) {
    config.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  }
  const std::string config_bytes = image::Serialize(image::ToJson(config));
  if (!oci.empty()) {
    {
      UniqueFd in(open(tar.c_str(), O_RDONLY | O_CLOEXEC));
      UniqueFd out(open(gz.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      auto c = snapshot::CompressLayer(in.get(), out.get(), {});
      if (!c.ok()) {
        cleanup();
        return Fail(c.error().ToString());
      }
    }
    auto w = image::OciLayoutWriter::Create(oci);
    if (!w.ok()) {
      cleanup();
      return Fail(w.error().ToString());
    }
    auto layer = w->AddBlobFile(gz, image::kMediaTypeLayerGzip);
    auto cfg = w->AddBlob(config_bytes, image::kMediaTypeConfig);
    if (!layer.ok() || !cfg.ok()) {
      cleanup();
      return Fail("writing blobs");
    }
    image::Manifest m;
    m.config = *cfg;
    m.layers = {*layer};
    auto md = w->AddBlob(image::Serialize(image::ToJson(m)), image::kMediaTypeManifest);
    if (!md.ok()) {
      cleanup();
      return Fail(md.error().ToString());
    }
    w->AddManifest(*md, tag);
    auto c = w->Commit();
    if (!c.ok()) {
      cleanup();
      return Fail(c.error().ToString());
    }
  }
  if (!archive.empty()) {
    auto r = image::WriteDockerArchive(archive, config_bytes, {tar},
                                       name.empty() ? std::vector<std::string>{}
                                                    : std::vector<std::string>{name});
    if (!r.ok()) {
      cleanup();
      return Fail(r.error().ToString());
    }
  }
  cleanup();
  return 0;
}
