// End-to-end builds: every YAML case in integration/cases is built by the real `slipway` binary
// and its image checked from the outside -- commands run inside the built image with our own
// sandbox, files, config fields, layers, failures -- and read back by umoci and skopeo.
//
// Case format (all keys but dockerfile optional):
//   dockerfile: |            the Dockerfile (or dockerfile_file: a path in integration/cases)
//   files: {path: text | {content, mode, symlink, dir}}       the build context
//   flags: [--build-arg, X=1]                                 more slipway flags
//   bases: [busybox, debian]   images offered: busybox (and busybox:latest) from an OCI layout,
//                              busybox-archive from a docker-archive, debian (ubuntu:latest,
//                              debian:bookworm) from debootstrap -- cases needing debian are
//                              skipped, with a message, when it cannot be made
//   expect:
//     exit_code: 0
//     output: [text...]         in slipway's stderr
//     run: [{cmd, user, output, exit_code}]   inside the built image (our sandbox)
//     umoci_run: [{cmd, output}]               inside `umoci unpack`'s rootfs
//     exists: [/path]   missing: [/path]
//     stat: {/path: "uid:gid mode"}
//     config: {User, WorkingDir, Env (contains), Cmd, Entrypoint, Labels, ExposedPorts,
//              Volumes, StopSignal, OnBuild, Healthcheck, Shell}
//     layers: N
//     skopeo: true              skopeo inspects the OCI layout and the docker archive
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "executor/run_step.h"
#include "integration/busybox_base.h"
#include "integration/debian_base.h"
#include "image/oci.h"
#include "snapshot/extract.h"

namespace slipway {
namespace {

using testing::ReadFile;
using testing::Run;
using testing::Runfile;
using testing::TempDir;
using testing::WriteFile;

struct Bases {
  std::unique_ptr<TempDir> dir;
  std::string busybox_oci, busybox_archive, debian_oci;
  std::string debian_skip;  // why the Debian base is missing
};

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

Bases& GetBases() {
  static Bases b = [] {
    Bases x;
    x.dir = std::make_unique<TempDir>("/var/tmp");
    const testing::BusyboxImage busybox = testing::MakeBusyboxImage(x.dir->path(), true);
    x.busybox_oci = busybox.oci;
    x.busybox_archive = busybox.archive;
    x.debian_oci = testing::DebianBase(&x.debian_skip);
    return x;
  }();
  return b;
}

// Unpacks the image of an OCI layout into `rootfs` with our safe extraction.
void Unpack(const std::string& layout, const std::string& rootfs) {
  auto l = image::OciLayout::Open(layout);
  REQUIRE_MESSAGE(l.ok(), l.error().ToString());
  auto img = l->Resolve("", {});
  REQUIRE_MESSAGE(img.ok(), img.error().ToString());
  std::filesystem::create_directories(rootfs);
  UniqueFd root(open(rootfs.c_str(), O_RDONLY | O_DIRECTORY));
  for (const image::Descriptor& d : img->manifest.layers) {
    UniqueFd fd(open(l->BlobPath(d.digest).c_str(), O_RDONLY));
    snapshot::ExtractOptions o;
    o.allow_devices = true;
    auto st = snapshot::ExtractLayer(root.get(), fd.get(), d.digest, o);
    REQUIRE_MESSAGE(st.ok(), st.error().ToString());
  }
}

struct CommandResult {
  int code = -1;
  std::string output;
};

// Runs a shell command inside an image root with Slipway's own sandbox.
CommandResult RunInImage(const std::string& rootfs, const nlohmann::json& config,
                         const std::string& cmd, const std::string& user, TempDir& tmp) {
  executor::RunRequest r;
  r.root = rootfs;
  r.argv = {"/bin/sh", "-c", cmd};
  if (config.contains("config") && config["config"].contains("Env")) {
    for (const auto& e : config["config"]["Env"]) r.env.push_back(e.get<std::string>());
  }
  r.user = user;
  if (user.empty() && config.contains("config") && config["config"].contains("User")) {
    r.user = config["config"]["User"].get<std::string>();
  }
  if (config.contains("config") && config["config"].contains("WorkingDir")) {
    r.workdir = config["config"]["WorkingDir"].get<std::string>();
  }
  static int n = 0;
  r.scratch = tmp.Join("run-" + std::to_string(n++));
  std::filesystem::create_directories(r.scratch);
  CommandResult out;
  r.output = [&](std::string_view line) { out.output += std::string(line) + "\n"; };
  auto o = executor::RunStep(r);
  REQUIRE_MESSAGE(o.ok(), o.error().ToString());
  out.code = o->status.ShellStatus();
  return out;
}

nlohmann::json ImageConfig(const std::string& layout) {
  auto l = image::OciLayout::Open(layout);
  REQUIRE(l.ok());
  auto img = l->Resolve("", {});
  REQUIRE(img.ok());
  return nlohmann::json::parse(img->config_bytes);
}

void WriteContext(const YAML::Node& files, const std::string& dir) {
  std::filesystem::create_directories(dir);
  if (!files) return;
  for (const auto& f : files) {
    const std::string path = dir + "/" + f.first.as<std::string>();
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    if (f.second.IsScalar()) {
      WriteFile(path, f.second.as<std::string>());
      continue;
    }
    if (f.second["tar"]) {  // a gzip tarball of a directory of the context
      auto t = Run({"/bin/tar", "-C", dir, "-czf", path, f.second["tar"].as<std::string>()});
      REQUIRE_MESSAGE(t.exit_code == 0, t.err);
      continue;
    }
    if (f.second["symlink"]) {
      std::filesystem::create_symlink(f.second["symlink"].as<std::string>(), path);
      continue;
    }
    if (f.second["dir"]) {
      std::filesystem::create_directories(path);
      if (f.second["mode"]) chmod(path.c_str(), std::stoul(f.second["mode"].as<std::string>(), nullptr, 8));
      continue;
    }
    const mode_t mode =
        f.second["mode"] ? std::stoul(f.second["mode"].as<std::string>(), nullptr, 8) : 0644;
    WriteFile(path, f.second["content"] ? f.second["content"].as<std::string>() : "", mode);
    chmod(path.c_str(), mode);
    if (f.second["owner"]) {
      const std::string o = f.second["owner"].as<std::string>();
      REQUIRE(chown(path.c_str(), std::stoul(o.substr(0, o.find(':'))),
                    std::stoul(o.substr(o.find(':') + 1))) == 0);
    }
  }
}

std::string Flatten(const nlohmann::json& j) { return j.is_null() ? "null" : j.dump(); }

void CheckConfig(const YAML::Node& want, const nlohmann::json& image) {
  const nlohmann::json c = image.value("config", nlohmann::json::object());
  for (const auto& kv : want) {
    const std::string key = kv.first.as<std::string>();
    const nlohmann::json got = c.contains(key) ? c[key] : nlohmann::json();
    INFO("config field " << key << " = " << Flatten(got));
    if (key == "Env") {
      for (const auto& e : kv.second) {
        const std::string s = e.as<std::string>();
        CHECK_MESSAGE(std::find(got.begin(), got.end(), s) != got.end(), "missing " << s);
      }
    } else if (key == "Labels" || key == "Healthcheck") {
      for (const auto& l : kv.second) {
        const std::string k = l.first.as<std::string>();
        REQUIRE_MESSAGE(got.contains(k), "no " << k);
        if (l.second.IsSequence()) {
          std::vector<std::string> v;
          for (const auto& x : l.second) v.push_back(x.as<std::string>());
          CHECK(got[k] == nlohmann::json(v));
        } else if (got[k].is_number()) {
          CHECK(got[k].get<std::int64_t>() == l.second.as<std::int64_t>());
        } else {
          CHECK(got[k] == l.second.as<std::string>());
        }
      }
    } else if (key == "ExposedPorts" || key == "Volumes") {
      std::vector<std::string> keys;
      if (got.is_object()) {
        for (const auto& [k, v] : got.items()) keys.push_back(k);
      }
      std::vector<std::string> expected;
      for (const auto& x : kv.second) expected.push_back(x.as<std::string>());
      std::sort(expected.begin(), expected.end());
      CHECK(keys == expected);
    } else if (kv.second.IsSequence()) {
      std::vector<std::string> v;
      for (const auto& x : kv.second) v.push_back(x.as<std::string>());
      CHECK(got == nlohmann::json(v));
    } else if (kv.second.IsNull() || (kv.second.IsScalar() && kv.second.as<std::string>() == "null")) {
      CHECK(got.is_null());
    } else {
      CHECK(got == kv.second.as<std::string>());
    }
  }
}

void RunCase(const std::string& file) {
  INFO("case " << file);
  YAML::Node c = YAML::LoadFile(file);
  Bases& bases = GetBases();
  bool needs_debian = false;
  std::vector<std::string> base_flags = {
      "--image-source", "busybox=oci-layout:" + bases.busybox_oci,
      "--image-source", "busybox-archive=docker-archive:" + bases.busybox_archive};
  if (c["bases"]) {
    for (const auto& b : c["bases"]) needs_debian |= b.as<std::string>() == "debian";
  }
  if (needs_debian) {
    if (bases.debian_oci.empty()) {
      MESSAGE("SKIPPED " << file << ": needs the Debian base: " << bases.debian_skip);
      return;
    }
    for (const char* ref : {"ubuntu:latest", "debian:bookworm", "debian"}) {
      base_flags.push_back("--image-source");
      base_flags.push_back(std::string(ref) + "=oci-layout:" + bases.debian_oci + ":bookworm");
    }
  }
  TempDir tmp("/var/tmp");
  const std::string ctx = tmp.Join("context");
  WriteContext(c["files"], ctx);
  if (c["dockerfile"]) WriteFile(ctx + "/Dockerfile", c["dockerfile"].as<std::string>());
  const std::string layout = tmp.Join("image-oci");
  const std::string archive = tmp.Join("image.tar");
  std::filesystem::create_directories(tmp.Join("work"));
  std::vector<std::string> argv = {Runfile("executor/slipway"), "--context", "dir://" + ctx,
                                   "--no-push", "--oci-layout-path", layout, "--tar-path",
                                   archive, "--work-dir", tmp.Join("work"), "--cache-dir",
                                   tmp.Join("cache")};
  argv.insert(argv.end(), base_flags.begin(), base_flags.end());
  if (c["context_tar"]) {  // the same context, given as tar://
    const std::string tarball = tmp.Join("context.tar.gz");
    auto t = Run({"/bin/tar", "-C", ctx, "-czf", tarball, "."});
    REQUIRE_MESSAGE(t.exit_code == 0, t.err);
    argv[2] = "tar://" + tarball;
  }
  if (c["flags"]) {
    for (const auto& f : c["flags"]) {
      std::string v = f.as<std::string>();
      // ${CONTEXT} and ${TMP} in flags point into this case's directories.
      for (auto [k, val] : {std::pair<std::string, std::string>{"${CONTEXT}", ctx},
                            {"${TMP}", tmp.path()}}) {
        for (std::size_t p; (p = v.find(k)) != std::string::npos;) v.replace(p, k.size(), val);
      }
      argv.push_back(v);
    }
  }
  auto built = Run(argv);
  INFO("slipway stderr:\n" << built.err);
  const YAML::Node e = c["expect"];
  const int want_code = e && e["exit_code"] ? e["exit_code"].as<int>() : 0;
  REQUIRE(built.exit_code == want_code);
  // Nothing is left in the work directory, whatever happened.
  CHECK(std::filesystem::is_empty(tmp.Join("work")));
  if (e && e["output"]) {
    for (const auto& o : e["output"]) {
      CHECK_MESSAGE(built.err.find(o.as<std::string>()) != std::string::npos,
                    "output lacks: " << o.as<std::string>());
    }
  }
  if (want_code != 0) {
    CHECK_FALSE(std::filesystem::exists(layout));  // no partial image
    CHECK_FALSE(std::filesystem::exists(archive));
    return;
  }
  if (!e) return;
  if (e["reproducible"]) {  // a second build gives the very same image
    std::vector<std::string> again = argv;
    for (std::string& a : again) {
      if (a == layout) a = layout + "2";
      if (a == archive) a = archive + "2";
    }
    sleep(1);
    auto second = Run(again);
    REQUIRE_MESSAGE(second.exit_code == 0, second.err);
    CHECK(ReadFile(layout + "/index.json") == ReadFile(layout + "2/index.json"));
    CHECK(ReadFile(archive) == ReadFile(archive + "2"));
  }
  const nlohmann::json config = ImageConfig(layout);
  if (e["config"]) CheckConfig(e["config"], config);
  if (e["layers"]) CHECK(config["rootfs"]["diff_ids"].size() == e["layers"].as<std::size_t>());
  // History and layers line up.
  std::size_t non_empty = 0;
  for (const auto& h : config["history"]) non_empty += h.value("empty_layer", false) ? 0 : 1;
  CHECK(non_empty == config["rootfs"]["diff_ids"].size());
  const std::string rootfs = tmp.Join("unpacked");
  if (e["run"] || e["exists"] || e["missing"] || e["stat"]) Unpack(layout, rootfs);
  if (e["run"]) {
    for (const auto& r : e["run"]) {
      const std::string cmd = r["cmd"].as<std::string>();
      auto got = RunInImage(rootfs, config, cmd, r["user"] ? r["user"].as<std::string>() : "", tmp);
      INFO("inside the image: " << cmd << "\n" << got.output);
      CHECK(got.code == (r["exit_code"] ? r["exit_code"].as<int>() : 0));
      if (r["output"]) CHECK(Trim(got.output) == Trim(r["output"].as<std::string>()));
    }
  }
  for (const char* key : {"exists", "missing"}) {
    if (!e[key]) continue;
    for (const auto& p : e[key]) {
      std::error_code ec;
      const bool there =
          std::filesystem::symlink_status(rootfs + p.as<std::string>(), ec).type() !=
          std::filesystem::file_type::not_found;
      CHECK_MESSAGE(there == (std::string(key) == "exists"), key << ": " << p.as<std::string>());
    }
  }
  if (e["stat"]) {
    for (const auto& s : e["stat"]) {
      struct stat st;
      const std::string p = rootfs + s.first.as<std::string>();
      REQUIRE_MESSAGE(lstat(p.c_str(), &st) == 0, "stat " << s.first.as<std::string>());
      char got[64];
      std::snprintf(got, sizeof(got), "%u:%u %o", st.st_uid, st.st_gid, st.st_mode & 07777);
      CHECK_MESSAGE(std::string(got) == s.second.as<std::string>(), s.first.as<std::string>());
    }
  }
  if (e["umoci_run"]) {
    const std::string bundle = tmp.Join("bundle");
    auto u = Run({"/usr/bin/umoci", "unpack", "--image", layout + ":latest", bundle});
    REQUIRE_MESSAGE(u.exit_code == 0, u.err);
    for (const auto& r : e["umoci_run"]) {
      auto got = RunInImage(bundle + "/rootfs", config, r["cmd"].as<std::string>(), "", tmp);
      CHECK(got.code == 0);
      CHECK(Trim(got.output) == Trim(r["output"].as<std::string>()));
    }
  }
  if (e["skopeo"]) {
    auto a = Run({"/usr/bin/skopeo", "inspect", "--config", "oci:" + layout});
    REQUIRE_MESSAGE(a.exit_code == 0, a.err);
    CHECK(nlohmann::json::parse(a.out)["rootfs"] == config["rootfs"]);
    auto b = Run({"/usr/bin/skopeo", "inspect", "--config", "docker-archive:" + archive});
    REQUIRE_MESSAGE(b.exit_code == 0, b.err);
    CHECK(nlohmann::json::parse(b.out)["rootfs"] == config["rootfs"]);
    const std::string copy = tmp.Join("copied");
    auto cp = Run({"/usr/bin/skopeo", "copy", "docker-archive:" + archive, "oci:" + copy + ":x"});
    CHECK_MESSAGE(cp.exit_code == 0, cp.err);
  }
}

std::vector<std::string> CaseFiles() {
  std::vector<std::string> files;
  const std::string dir = Runfile("integration/cases");
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".yaml") files.push_back(f.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST_CASE("integration: every case in integration/cases builds and checks out") {
  const auto files = CaseFiles();
  REQUIRE(files.size() >= 10);
  const char* only = getenv("SLIPWAY_CASE");  // run one case: SLIPWAY_CASE=name
  for (const std::string& f : files) {
    if (only && *only && f.find(only) == std::string::npos) continue;
    SUBCASE(std::filesystem::path(f).stem().string().c_str()) { RunCase(f); }
  }
}

}  // namespace
}  // namespace slipway
