// Safe extraction: the ordinary rules, and an attack corpus proving that nothing outside the root
// is read, written or deleted. Runs unprivileged (Bazel's sandbox); see extract_root_test.cc for
// ownership, devices and capabilities.
#include "snapshot/extract.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "image/digest.h"
#include "snapshot/tar_builder.h"

namespace slipway::snapshot {
namespace {

namespace fs = std::filesystem;
using testing::BuildTar;
using testing::Compression;
using testing::Dir;
using testing::File;
using testing::Hardlink;
using testing::Symlink;
using testing::TarEntry;

// A root next to an "outside" that holds a secret; every attack is checked against both.
struct Sandbox {
  slipway::testing::TempDir tmp;
  std::string root = tmp.Join("root");
  std::string outside = tmp.Join("outside");
  UniqueFd root_fd;
  Sandbox() {
    slipway::testing::MakeDirs(root);
    slipway::testing::WriteFile(outside + "/secret", "host secret");
    slipway::testing::MakeDirs(outside + "/dir");
    root_fd.Reset(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(root_fd.valid());
  }
  Result<ExtractStats> Apply(const std::string& tar, ExtractOptions o = {}) {
    const std::string layer = tmp.Join("layer-" + std::to_string(++layers_));
    slipway::testing::WriteFile(layer, tar);
    UniqueFd fd(open(layer.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd.valid());
    auto r = ExtractLayer(root_fd.get(), fd.get(), "layer" + std::to_string(layers_), o);
    fs::remove(layer);
    return r;
  }
  // Everything outside the root: path -> content (or "<dir>"/"<link:target>").
  std::map<std::string, std::string> Outside() const {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(tmp.path())) {
      const std::string p = e.path().string();
      if (p.rfind(root + "/", 0) == 0 || p == root) continue;
      if (e.is_symlink()) {
        out[p] = "<link:" + fs::read_symlink(e.path()).string() + ">";
      } else if (e.is_directory()) {
        out[p] = "<dir>";
      } else {
        out[p] = slipway::testing::ReadFile(p);
      }
    }
    return out;
  }
  std::string In(const std::string& rel) const { return root + "/" + rel; }

 private:
  int layers_ = 0;
};

ExtractStats MustApply(Sandbox& s, const std::vector<TarEntry>& entries,
                       Compression c = Compression::kNone) {
  auto r = s.Apply(BuildTar(entries, c));
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return *r;
}

// ---- Ordinary rules -------------------------------------------------------------------------

TEST_CASE("extract: files, directories, symlinks and hardlinks land with their modes and times") {
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    CAPTURE(static_cast<int>(c));
    Sandbox s;
    TarEntry d = Dir("usr/bin", 0750);
    d.mtime = 1600000000;
    TarEntry exe = File("usr/bin/tool", "#!/bin/sh\n", 04755);
    exe.mtime = 1500000000;
    ExtractStats st =
        MustApply(s,
                  {Dir("usr", 0755), d, exe, Symlink("usr/bin/alias", "tool"),
                   Symlink("abs", "/usr/bin/tool"), Hardlink("usr/bin/hard", "usr/bin/tool"),
                   File("/leading/slash", "x"), File("./dot/slash", "y")},
                  c);
    CHECK(st.entries == 8);
    CHECK(slipway::testing::ReadFile(s.In("usr/bin/tool")) == "#!/bin/sh\n");
    struct stat sb;
    REQUIRE(lstat(s.In("usr/bin/tool").c_str(), &sb) == 0);
    CHECK((sb.st_mode & 07777) == 04755);
    CHECK(sb.st_nlink == 2);
    CHECK(sb.st_mtime == 1500000000);
    REQUIRE(lstat(s.In("usr/bin").c_str(), &sb) == 0);
    CHECK((sb.st_mode & 07777) == 0750);
    CHECK(sb.st_mtime == 1600000000);  // set after its children were created
    CHECK(fs::read_symlink(s.In("usr/bin/alias")) == "tool");
    CHECK(fs::read_symlink(s.In("abs")) == "/usr/bin/tool");  // stored verbatim
    CHECK(slipway::testing::ReadFile(s.In("leading/slash")) == "x");
    CHECK(slipway::testing::ReadFile(s.In("dot/slash")) == "y");
  }
}

TEST_CASE("extract: an entry replaces what was there, unless both are directories") {
  Sandbox s;
  MustApply(s, {Dir("d"), File("d/keep", "k"), File("f", "old"), Dir("x"), File("x/child", "c"),
                Symlink("l", s.outside + "/secret")});
  MustApply(s,
            {Dir("d", 0700), File("f", "new"), File("x", "now a file"), File("l", "not via link")});
  CHECK(slipway::testing::ReadFile(s.In("d/keep")) == "k");  // directory merged, not replaced
  CHECK(slipway::testing::ReadFile(s.In("f")) == "new");
  CHECK(slipway::testing::ReadFile(s.In("x")) == "now a file");
  CHECK(slipway::testing::ReadFile(s.In("l")) == "not via link");
  CHECK(slipway::testing::ReadFile(s.outside + "/secret") == "host secret");
  MustApply(s, {Dir("x"), Symlink("f", "x")});  // file -> dir, file -> symlink
  CHECK(fs::is_directory(s.In("x")));
  CHECK(fs::is_symlink(s.In("f")));
}

TEST_CASE("extract: whiteouts hide lower entries; opaque keeps this layer's own") {
  Sandbox s;
  MustApply(s, {Dir("a"), File("a/1", "1"), File("a/2", "2"), Dir("b"), File("b/old", "o"),
                Dir("c"), Dir("c/deep"), File("c/deep/f", "f")});
  ExtractStats st =
      MustApply(s, {File("a/.wh.1", ""), Dir("b"), File("b/new", "n"), File("b/.wh..wh..opq", ""),
                    File(".wh.c", ""), File(".wh.never-existed", "")});
  CHECK(st.whiteouts == 4);
  CHECK_FALSE(fs::exists(s.In("a/1")));
  CHECK(fs::exists(s.In("a/2")));
  CHECK_FALSE(fs::exists(s.In("b/old")));
  CHECK(slipway::testing::ReadFile(s.In("b/new")) == "n");
  CHECK_FALSE(fs::exists(s.In("c")));
  CHECK_FALSE(fs::exists(s.In(".wh.never-existed")));
}

TEST_CASE("extract: devices and FIFOs are skipped with a warning when not allowed") {
  Sandbox s;
  TarEntry fifo;
  fifo.name = "run/fifo";
  fifo.type = TarEntry::kFifo;
  TarEntry null;
  null.name = "dev/null";
  null.type = TarEntry::kCharDevice;
  null.major = 1;
  null.minor = 3;
  ExtractStats st = MustApply(s, {fifo, null});
  CHECK(st.skipped_special == 2);
  REQUIRE(st.warnings.size() == 2);
  CHECK(st.warnings[0] == "entry \"run/fifo\": device or FIFO not created (not allowed here)");
  CHECK_FALSE(fs::exists(s.In("run/fifo")));
}

TEST_CASE("extract: user.* xattrs are restored, trusted.* and overlay names are not") {
  Sandbox s;
  TarEntry f = File("f", "x");
  f.xattrs = {{"user.comment", "hello"}, {"trusted.overlay.opaque", "y"}, {"trusted.x", "z"}};
  ExtractStats st = MustApply(s, {f});
  char buf[64] = {};
  ssize_t n = getxattr(s.In("f").c_str(), "user.comment", buf, sizeof(buf));
  if (n < 0 && errno == ENOTSUP) {
    MESSAGE("this filesystem has no user xattrs");
  } else {
    CHECK(std::string(buf, n) == "hello");
  }
  CHECK(std::count(st.warnings.begin(), st.warnings.end(),
                   "xattr trusted.overlay.opaque not restored") == 1);
  CHECK(std::count(st.warnings.begin(), st.warnings.end(), "xattr trusted.x not restored") == 1);
}

TEST_CASE("extract: duplicate entries: the last wins, with a warning") {
  Sandbox s;
  ExtractStats st = MustApply(s, {File("f", "one"), File("f", "two")});
  CHECK(slipway::testing::ReadFile(s.In("f")) == "two");
  CHECK(st.warnings ==
        std::vector<std::string>{"entry \"f\" appears twice in the layer; the last wins"});
}

// ---- The attack corpus ----------------------------------------------------------------------

struct Attack {
  const char* what;
  std::vector<TarEntry> entries;
  const char* error;  // nullptr: must succeed (contained)
};

TEST_CASE("extract: attacks fail clearly or stay inside the root; nothing outside changes") {
  Sandbox probe;  // only for the outside path, which every Sandbox shapes the same way
  std::vector<Attack> attacks;
  auto outside_of = [](const Sandbox& s) { return s.outside; };
  (void)outside_of;
  attacks.push_back({"dot-dot name", {File("../escape", "x")}, "\"../escape\" leaves the root"});
  attacks.push_back({"dot-dot inside", {File("a/../../escape", "x")}, "leaves the root"});
  attacks.push_back({"dot-dot only", {Dir("..")}, "leaves the root"});
  attacks.push_back(
      {"root replaced by a symlink", {Symlink(".", "/")}, "cannot replace the root directory"});
  attacks.push_back(
      {"root replaced by a file", {File(".", "x")}, "cannot replace the root directory"});
  attacks.push_back(
      {"hardlink out by ..", {Hardlink("h", "../outside/secret")}, "leaves the root"});
  attacks.push_back({"whiteout of ..", {File("a/.wh...", "")}, "invalid whiteout name \".wh...\""});
  attacks.push_back({"whiteout of .", {File(".wh..", "")}, "invalid whiteout name \".wh..\""});
  attacks.push_back(
      {"hardlink to a missing file", {Hardlink("h", "nope")}, "does not exist in the root"});
  attacks.push_back({"hardlink to a directory", {Dir("d"), Hardlink("h", "d")}, "is a directory"});
  attacks.push_back({"empty name", {File("", "x")}, "empty entry name"});

  for (const Attack& a : attacks) {
    CAPTURE(std::string(a.what));
    Sandbox s;
    const auto before = s.Outside();
    auto r = s.Apply(BuildTar(a.entries));
    if (a.error) {
      REQUIRE_FALSE(r.ok());
      CHECK_MESSAGE(r.error().message().find(a.error) != std::string::npos, r.error().message());
      CHECK(r.error().message().rfind("layer1: entry \"", 0) == 0);  // names layer and entry
    } else {
      CHECK(r.ok());
    }
    CHECK(s.Outside() == before);
  }
}

TEST_CASE("extract: symlinked parents resolve inside the root, never outside") {
  Sandbox s;
  const auto before = s.Outside();
  // Absolute and relative symlinks pointing at the host's "outside" directory.
  MustApply(s, {Symlink("abs", s.outside), Symlink("rel", "../../../../../../../.." + s.outside),
                Symlink("up", ".."), Symlink("dotdot", "../..")});
  MustApply(s, {File("abs/pwn", "1"), File("rel/pwn", "2"), File("up/up/pwn3", "3"),
                File("dotdot/dir/pwn4", "4"), Hardlink("abs/pwn-link", "abs/pwn")});
  CHECK(s.Outside() == before);
  CHECK(slipway::testing::ReadFile(s.In(s.outside.substr(1) + "/pwn")) == "2");  // rel wrote last
  CHECK(slipway::testing::ReadFile(s.In("pwn3")) == "3");
  CHECK(slipway::testing::ReadFile(s.In("dir/pwn4")) == "4");
  // A hardlink whose target sits behind a symlink to the host resolves in-root, and is missing.
  auto r = s.Apply(BuildTar({Symlink("hostdir", s.outside), Hardlink("steal", "hostdir/secret")}));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message().find("does not exist in the root") != std::string::npos);
  CHECK(s.Outside() == before);
}

TEST_CASE("extract: whiteouts never follow symlinks out of the root") {
  Sandbox s;
  const auto before = s.Outside();
  MustApply(s, {Symlink("link", s.outside), Symlink("rootlink", "/"), File("keep", "k")});
  // Removing the symlink removes the link, not what it points to.
  MustApply(s, {File(".wh.link", "")});
  CHECK_FALSE(fs::exists(s.In("link")));
  MustApply(s, {Symlink("link", s.outside)});
  // A whiteout "inside" the link resolves in-root, where there is nothing to delete.
  MustApply(s, {File("link/.wh.secret", ""), File("link/dir/.wh..wh..opq", "")});
  // An opaque whiteout through a link to "/" clears the image root's lower entries only.
  MustApply(s, {File("new", "n"), File("rootlink/.wh..wh..opq", "")});
  CHECK(s.Outside() == before);
  CHECK_FALSE(fs::exists(s.In("keep")));
  CHECK(fs::exists(s.In("new")));
}

TEST_CASE("extract: limits stop bombs and floods with clear errors") {
  SUBCASE("decompression ratio") {
    Sandbox s;
    ExtractOptions o;
    o.max_ratio = 50;
    o.max_ratio_floor = 1 << 20;
    auto r = s.Apply(BuildTar({File("zeros", std::string(32 << 20, '\0'))}, Compression::kGzip), o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() ==
          "layer1: decompresses to more than 50 times its size; refusing a likely decompression "
          "bomb");
  }
  SUBCASE("entry count") {
    Sandbox s;
    ExtractOptions o;
    o.max_entries = 100;
    std::vector<TarEntry> many;
    for (int i = 0; i < 101; ++i) many.push_back(File("f" + std::to_string(i), ""));
    auto r = s.Apply(BuildTar(many), o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "layer1: more than 100 entries; refusing to go on");
  }
  SUBCASE("a 1M-entry tar stops at the cap, early") {
    Sandbox s;
    ExtractOptions o;
    o.max_entries = 1000;
    std::vector<TarEntry> million;
    million.reserve(1000000);
    for (int i = 0; i < 1000000; ++i) million.push_back(File("d/f" + std::to_string(i), ""));
    auto r = s.Apply(BuildTar(million, Compression::kGzip), o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == "layer1: more than 1000 entries; refusing to go on");
    std::size_t created = 0;
    for (const auto& e : fs::directory_iterator(s.In("d"))) created += e.is_regular_file();
    CHECK(created == 1000);
  }
  SUBCASE("bytes written") {
    Sandbox s;
    ExtractOptions o;
    o.max_bytes = 1000;
    auto r = s.Apply(BuildTar({File("big", std::string(2000, 'x'))}), o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("writes more than 1000 bytes") != std::string::npos);
  }
  SUBCASE("depth and name length") {
    Sandbox s;
    std::string deep;
    for (int i = 0; i < 1100; ++i) deep += "d/";
    auto r = s.Apply(BuildTar({File(deep + "f", "x")}));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().find("more than 1024 path components") != std::string::npos);
    auto longname = s.Apply(BuildTar({File(std::string(5000, 'n'), "x")}));
    REQUIRE_FALSE(longname.ok());
    CHECK(longname.error().message().find("longer than PATH_MAX") != std::string::npos);
  }
  SUBCASE("not a tar at all") {
    Sandbox s;
    std::mt19937 rng(3);
    std::string junk(100000, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    auto r = s.Apply(junk);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message().rfind("layer1: ", 0) == 0);
  }
  SUBCASE("truncated stream") {
    Sandbox s;
    std::string tar = BuildTar({File("f", std::string(100000, 'x'))});
    auto r = s.Apply(tar.substr(0, 5000));
    REQUIRE_FALSE(r.ok());
  }
}

TEST_CASE("extract: a layer file decompressed on a second thread gives the same tree and its digest") {
  const std::vector<TarEntry> entries = {Dir("d"), File("d/a", std::string(3 << 20, 'a')),
                                         File("d/b", "bee"), Symlink("l", "d/b"),
                                         Hardlink("d/h", "d/b")};
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    CAPTURE(static_cast<int>(c));
    Sandbox s;
    const std::string tar = BuildTar(entries, c);
    const std::string file = s.tmp.Join("layer.blob");
    slipway::testing::WriteFile(file, tar);
    std::string digest;
    auto r = ExtractLayerFile(s.root_fd.get(), file, "blob", {}, &digest);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(digest == image::Sha256Digest(tar));
    CHECK(r->entries == 5);
    CHECK(slipway::testing::ReadFile(s.In("d/a")).size() == (3u << 20));
    CHECK(fs::read_symlink(s.In("l")) == "d/b");
    CHECK(fs::equivalent(s.In("d/h"), s.In("d/b")));
  }
  SUBCASE("several gzip members, as parallel compressors write them") {
    Sandbox s;
    const std::string one = BuildTar({File("x", "1")}, Compression::kGzip);
    // A tar split in two gzip members: still one stream to gunzip and to us.
    const std::string plain = BuildTar({File("x", "1"), File("y", "2")});
    const std::string half1 = plain.substr(0, 1024), half2 = plain.substr(1024);
    const std::string g1 = s.tmp.Join("g1"), g2 = s.tmp.Join("g2");
    slipway::testing::WriteFile(g1, half1);
    slipway::testing::WriteFile(g2, half2);
    auto z = slipway::testing::Run({"/bin/sh", "-c", "gzip -c " + g1 + " > " + g1 + ".gz && gzip -c " +
                                                     g2 + " >> " + g1 + ".gz"});
    REQUIRE(z.exit_code == 0);
    auto r = ExtractLayerFile(s.root_fd.get(), g1 + ".gz", "members", {}, nullptr);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(slipway::testing::ReadFile(s.In("y")) == "2");
    (void)one;
  }
  SUBCASE("bombs, corruption and truncation are errors naming the layer") {
    Sandbox s;
    ExtractOptions o;
    o.max_ratio = 50;
    o.max_ratio_floor = 1 << 20;
    const std::string bomb = s.tmp.Join("bomb");
    slipway::testing::WriteFile(
        bomb, BuildTar({File("zeros", std::string(32 << 20, '\0'))}, Compression::kGzip));
    auto b = ExtractLayerFile(s.root_fd.get(), bomb, "bomb", o, nullptr);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message().find("bomb: decompresses to more than 50 times its size") == 0);
    std::string gz = BuildTar({File("f", std::string(100000, 'q'))}, Compression::kGzip);
    const std::string cut = s.tmp.Join("cut");
    slipway::testing::WriteFile(cut, gz.substr(0, gz.size() / 2));
    auto t = ExtractLayerFile(s.root_fd.get(), cut, "cut", {}, nullptr);
    REQUIRE_FALSE(t.ok());
    gz[gz.size() / 2] ^= 0x5a;
    gz[gz.size() / 2 + 1] ^= 0x5a;
    const std::string bad = s.tmp.Join("bad");
    slipway::testing::WriteFile(bad, gz);
    const auto outside = s.Outside();
    auto c = ExtractLayerFile(s.root_fd.get(), bad, "bad", {}, nullptr);
    CHECK_FALSE(c.ok());
    CHECK(s.Outside() == outside);  // nothing escaped
  }
}

TEST_CASE("extract: CleanEntryName") {
  CHECK(*CleanEntryName("/a//b/./c/") == "a/b/c");
  CHECK(*CleanEntryName("a/b/../c") == "a/c");
  CHECK(*CleanEntryName("./") == ".");
  CHECK_FALSE(CleanEntryName("a/../../b").ok());
  CHECK_FALSE(CleanEntryName("").ok());
}

}  // namespace
}  // namespace slipway::snapshot
