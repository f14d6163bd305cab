// The change matrix. For each kind of change: a "before" tree and a copy of it; the change is
// made to the tree; the walk lists what changed; the layer writer writes it; extracting that
// layer onto the copy must give exactly the changed tree (types, modes, owners, times, contents,
// link targets, xattrs).
#include "snapshot/walk.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "snapshot/extract.h"
#include "snapshot/layer_writer.h"

namespace slipway::snapshot {
namespace {

namespace fs = std::filesystem;
using slipway::testing::MakeDirs;
using slipway::testing::ReadFile;
using slipway::testing::WriteFile;

// What must match between the changed tree and the extracted copy.
std::map<std::string, std::string> Describe(const std::string& root) {
  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY));
  REQUIRE(fd.valid());
  auto m = Manifest::Scan(fd.get());
  REQUIRE(m.ok());
  std::map<std::string, std::string> out;
  for (const auto& [path, meta] : m->entries()) {
    if (path.empty()) continue;
    std::string d = std::to_string(meta.mode) + " " + std::to_string(meta.uid) + ":" +
                    std::to_string(meta.gid) + " t=" + std::to_string(meta.mtime_ns / 1000000000) +
                    " s=" + std::to_string(meta.size) + " r=" + std::to_string(meta.rdev);
    const std::string full = root + "/" + path;
    if (S_ISREG(meta.mode)) d += " c=" + ReadFile(full);
    if (S_ISLNK(meta.mode)) d += " l=" + fs::read_symlink(full).string();
    char names[1024];
    ssize_t n = llistxattr(full.c_str(), names, sizeof(names));
    for (ssize_t i = 0; i < n;) {
      std::string xn(names + i);
      i += static_cast<ssize_t>(xn.size()) + 1;
      char value[256];
      ssize_t v = lgetxattr(full.c_str(), xn.c_str(), value, sizeof(value));
      d += " x:" + xn + "=" + std::string(value, v > 0 ? v : 0);
    }
    out[path] = d;
  }
  return out;
}

struct Case {
  const char* name;
  std::function<void(const std::string&)> before;
  std::function<void(const std::string&)> change;
  std::vector<LayerEntry> expect;  // empty: not checked
};

void SetMtime(const std::string& p, long sec) {
  timespec t[2] = {{sec, 0}, {sec, 0}};
  REQUIRE(utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW) == 0);
}

void Base(const std::string& r) {
  MakeDirs(r + "/etc");
  WriteFile(r + "/etc/conf", "a=1\n");
  MakeDirs(r + "/usr/lib/deep/er");
  WriteFile(r + "/usr/lib/deep/er/f", "deep");
  WriteFile(r + "/usr/lib/keep", "keep");
  fs::create_symlink("usr/lib", r + "/lib");
  MakeDirs(r + "/empty");
  for (const char* p : {"/etc/conf", "/usr/lib/deep/er/f", "/usr/lib/keep"})
    SetMtime(r + p, 1600000000);
}

using E = LayerEntry;

TEST_CASE("walk: every kind of change round-trips through a layer") {
  const std::vector<Case> cases = {
      {"create a file in a new directory",
       Base,
       [](const std::string& r) { WriteFile(r + "/opt/app/bin", "new"); },
       {{E::kPath, "opt"}, {E::kPath, "opt/app"}, {E::kPath, "opt/app/bin"}}},
      {"modify in place with the mtime put back",
       Base,
       [](const std::string& r) {
         WriteFile(r + "/etc/conf", "a=2\n");
         SetMtime(r + "/etc/conf", 1600000000);
       },
       {{E::kPath, "etc"}, {E::kPath, "etc/conf"}}},
      {"chmod", Base, [](const std::string& r) { chmod((r + "/usr/lib/keep").c_str(), 0600); }, {}},
      {"delete a file",
       Base,
       [](const std::string& r) { fs::remove(r + "/etc/conf"); },
       {{E::kPath, "etc"}, {E::kWhiteout, "etc/conf"}}},
      {"delete a tree: one whiteout at the top",
       Base,
       [](const std::string& r) { fs::remove_all(r + "/usr/lib/deep"); },
       {{E::kPath, "usr"}, {E::kPath, "usr/lib"}, {E::kWhiteout, "usr/lib/deep"}}},
      {"delete and recreate a directory: opaque",
       Base,
       [](const std::string& r) {
         fs::remove_all(r + "/usr/lib");
         WriteFile(r + "/usr/lib/fresh", "f");
       },
       // An opaque marker when the new directory has a new inode, or whiteouts for each old child
       // when the filesystem reused the inode: either extracts to the same tree (checked below).
       {}},
      {"delete and recreate a directory, inode kept busy: opaque",
       Base,
       [](const std::string& r) {
         // Hold the old directory open so its inode cannot be reused by the new one.
         static int hold = -1;
         hold = open((r + "/usr/lib").c_str(), O_RDONLY | O_DIRECTORY);
         fs::remove_all(r + "/usr/lib");
         WriteFile(r + "/usr/lib/fresh", "f");
         close(hold);
       },
       {{E::kPath, "usr"},
        {E::kPath, "usr/lib"},
        {E::kOpaque, "usr/lib"},
        {E::kPath, "usr/lib/fresh"}}},
      {"replace a directory with a file",
       Base,
       [](const std::string& r) {
         fs::remove_all(r + "/usr/lib/deep");
         WriteFile(r + "/usr/lib/deep", "now a file");
       },
       {}},
      {"replace a file with a directory",
       Base,
       [](const std::string& r) {
         fs::remove(r + "/etc/conf");
         WriteFile(r + "/etc/conf/inner", "x");
       },
       {}},
      {"replace a file with a symlink and a symlink with a file",
       Base,
       [](const std::string& r) {
         fs::remove(r + "/usr/lib/keep");
         fs::create_symlink("/etc/conf", r + "/usr/lib/keep");
         fs::remove(r + "/lib");
         WriteFile(r + "/lib", "was a link");
       },
       {}},
      {"replace a directory with a symlink and back",
       Base,
       [](const std::string& r) {
         fs::remove_all(r + "/empty");
         fs::create_symlink("etc", r + "/empty");
       },
       {}},
      {"new hardlinks inside the layer",
       Base,
       [](const std::string& r) {
         WriteFile(r + "/h1", "shared");
         REQUIRE(link((r + "/h1").c_str(), (r + "/h2").c_str()) == 0);
       },
       {{E::kPath, "h1"}, {E::kPath, "h2"}}},
      {"a hardlink to an unchanged file",
       Base,
       [](const std::string& r) {
         REQUIRE(link((r + "/usr/lib/keep").c_str(), (r + "/keep-link").c_str()) == 0);
       },
       {}},
      {"xattrs",
       Base,
       [](const std::string& r) {
         if (setxattr((r + "/etc/conf").c_str(), "user.note", "v", 1, 0) != 0) {
           MESSAGE("no user xattrs on this filesystem");
         }
       },
       {}},
      {"empty directories and a FIFO",
       Base,
       [](const std::string& r) {
         MakeDirs(r + "/var/empty/too");
         REQUIRE(mkfifo((r + "/var/fifo").c_str(), 0640) == 0);
       },
       {}},
      {"nothing changed", Base, [](const std::string&) {}, {}},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.name));
    slipway::testing::TempDir tmp;
    const std::string tree = tmp.Join("tree"), copy = tmp.Join("copy");
    MakeDirs(tree);
    c.before(tree);
    REQUIRE(slipway::testing::Run({"/bin/cp", "-a", tree, copy}).exit_code == 0);
    UniqueFd tree_fd(open(tree.c_str(), O_RDONLY | O_DIRECTORY));
    auto before = Manifest::Scan(tree_fd.get());
    REQUIRE(before.ok());
    c.change(tree);
    auto after = Manifest::Scan(tree_fd.get());
    REQUIRE(after.ok());
    std::vector<LayerEntry> changes = Diff(*before, *after);
    auto show = [](const std::vector<LayerEntry>& v) {
      std::string s;
      for (const auto& e : v) s += std::to_string(e.kind) + ":" + e.path + " ";
      return s;
    };
    if (!c.expect.empty()) CHECK(show(changes) == show(c.expect));
    if (std::string(c.name) == "nothing changed") CHECK(changes.empty());

    const std::string layer = tmp.Join("layer.tar");
    UniqueFd out(open(layer.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    LayerOptions lo;
    lo.compression = Compression::kGzip;
    auto blob = WriteLayer(tree_fd.get(), changes, out.get(), lo);
    REQUIRE_MESSAGE(blob.ok(), blob.error().ToString());
    UniqueFd in(open(layer.c_str(), O_RDONLY));
    UniqueFd copy_fd(open(copy.c_str(), O_RDONLY | O_DIRECTORY));
    ExtractOptions eo;
    eo.allow_devices = true;  // FIFOs; no device nodes appear in these cases
    auto st = ExtractLayer(copy_fd.get(), in.get(), "layer", eo);
    REQUIRE_MESSAGE(st.ok(), st.error().ToString());
    CHECK(Describe(copy) == Describe(tree));
    if (std::string(c.name) == "new hardlinks inside the layer") {
      struct stat s1;
      REQUIRE(stat((copy + "/h2").c_str(), &s1) == 0);
      CHECK(s1.st_nlink == 2);
    }
  }
}

TEST_CASE("walk: the same tree gives byte-identical layers, and clamping applies") {
  slipway::testing::TempDir tmp;
  const std::string tree = tmp.Join("tree");
  MakeDirs(tree);
  Base(tree);
  std::string big(3'500'000, '\0');  // several 1 MiB gzip blocks
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 31 % 26));
  WriteFile(tree + "/big", big);
  UniqueFd fd(open(tree.c_str(), O_RDONLY | O_DIRECTORY));
  auto all = Manifest::Scan(fd.get());
  REQUIRE(all.ok());
  std::vector<LayerEntry> everything;
  for (const auto& [p, m] : all->entries()) {
    if (!p.empty()) everything.push_back({LayerEntry::kPath, p});
  }
  auto write = [&](const LayerOptions& o) {
    const std::string path = tmp.Join("l");
    UniqueFd out(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    auto b = WriteLayer(fd.get(), everything, out.get(), o);
    REQUIRE(b.ok());
    return std::make_pair(*b, ReadFile(path));
  };
  LayerOptions gz;
  gz.threads = 1;
  auto [b1, bytes1] = write(gz);
  auto [b2, bytes2] = write(gz);
  CHECK(bytes1 == bytes2);
  // Parallel gzip: the same bytes with 2 or 4 threads, a valid gzip of the same tar.
  LayerOptions par = gz;
  par.threads = 2;
  auto [p2, pbytes2] = write(par);
  par.threads = 4;
  auto [p4, pbytes4] = write(par);
  CHECK(pbytes2 == pbytes4);
  CHECK(p2.diff_id == b1.diff_id);
  const std::string gz_path = tmp.Join("p.gz");
  WriteFile(gz_path, pbytes4);
  auto gunzip = slipway::testing::Run(
      {"/bin/sh", "-c", "gzip -dc " + gz_path + " | sha256sum | cut -d' ' -f1"});
  CHECK_MESSAGE(gunzip.exit_code == 0, gunzip.err);
  CHECK("sha256:" + gunzip.out == b1.diff_id + "\n");
  CHECK(b1.digest == b2.digest);
  CHECK(b1.diff_id != b1.digest);
  CHECK(bytes1.substr(0, 2) == "\x1f\x8b");
  CHECK(bytes1.substr(4, 4) == std::string(4, '\0'));  // gzip MTIME is zero
  LayerOptions none;
  none.compression = Compression::kNone;
  auto [b3, bytes3] = write(none);
  CHECK(b3.digest == b3.diff_id);
  CHECK(b3.diff_id == b1.diff_id);  // the same tar underneath
  LayerOptions zstd;
  zstd.compression = Compression::kZstd;
  auto [b4, bytes4] = write(zstd);
  CHECK(b4.diff_id == b1.diff_id);
  CHECK(bytes4.substr(0, 4) == "\x28\xb5\x2f\xfd");
  LayerOptions clamped = none;
  clamped.clamp_mtime = 1000;
  auto [b5, bytes5] = write(clamped);
  CHECK(b5.diff_id != b3.diff_id);
}

TEST_CASE("walk: a regular file named .wh.* cannot be stored") {
  slipway::testing::TempDir tmp;
  const std::string tree = tmp.Join("tree");
  WriteFile(tree + "/dir/.wh.sneaky", "x");
  UniqueFd fd(open(tree.c_str(), O_RDONLY | O_DIRECTORY));
  UniqueFd out(open(tmp.Join("l").c_str(), O_WRONLY | O_CREAT, 0644));
  auto r = WriteLayer(fd.get(), {{LayerEntry::kPath, "dir"}, {LayerEntry::kPath, "dir/.wh.sneaky"}},
                      out.get());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message() ==
        "\"dir/.wh.sneaky\" cannot be stored in an image: names starting with .wh. are whiteouts");
}

}  // namespace
}  // namespace slipway::snapshot
