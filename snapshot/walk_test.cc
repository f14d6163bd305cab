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
#include "snapshot/change_matrix.h"
#include "snapshot/extract.h"
#include "snapshot/layer_writer.h"

namespace slipway::snapshot {
namespace {

namespace fs = std::filesystem;
using slipway::testing::MakeDirs;
using slipway::testing::ReadFile;
using slipway::testing::WriteFile;
using testing::Base;
using testing::Describe;

TEST_CASE("walk: every kind of change round-trips through a layer") {
  const auto& cases = testing::ChangeMatrix();
  for (const testing::Case& c : cases) {
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
  std::vector<LayerEntry> everything = all->AllPaths();
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
  // Compressing the plain tar afterwards gives exactly what WriteLayer wrote.
  const std::string plain = tmp.Join("plain.tar");
  WriteFile(plain, bytes3);
  for (const LayerOptions& o : {gz, par, zstd}) {
    UniqueFd in(open(plain.c_str(), O_RDONLY));
    const std::string out_path = tmp.Join("c");
    UniqueFd out(open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    auto c = CompressLayer(in.get(), out.get(), o);
    REQUIRE(c.ok());
    CHECK(c->diff_id == b1.diff_id);
    CHECK(c->uncompressed_size == b3.size);
    const std::string expected = o.compression == Compression::kZstd ? bytes4
                                 : o.threads == 1                   ? bytes1
                                                                    : pbytes4;
    CHECK(ReadFile(out_path) == expected);
  }
}

TEST_CASE("walk: entries come in tree order, and Find uses it") {
  slipway::testing::TempDir tmp;
  const std::string tree = tmp.Join("tree");
  for (const char* p : {"a/z", "a-b/x", "a0", "b/c/d/e", "b.txt", "b/c-d"}) WriteFile(tree + "/" + p, p);
  REQUIRE(symlink("a", (tree + "/link").c_str()) == 0);
  UniqueFd fd(open(tree.c_str(), O_RDONLY | O_DIRECTORY));
  auto m = Manifest::Scan(fd.get());
  REQUIRE(m.ok());
  std::string order;
  for (const auto& e : m->entries()) order += std::string(e.path) + " ";
  CHECK(order == " a a/z a-b a-b/x a0 b b/c b/c/d b/c/d/e b/c-d b.txt link ");
  REQUIRE(m->Find("b/c/d/e") != nullptr);
  CHECK(S_ISREG(m->Find("b/c/d/e")->mode));
  CHECK(S_ISLNK(m->Find("link")->mode));  // not followed
  CHECK(m->Find("link/z") == nullptr);
  CHECK(m->Find("b/c/d/f") == nullptr);
  CHECK(m->Find("") == &m->entries().front().meta);
  CHECK(m->AllPaths().size() == m->entries().size() - 1);
}

TEST_CASE("walk: one thread or many give the same manifest") {
  slipway::testing::TempDir tmp;
  const std::string tree = tmp.Join("tree");
  // Lopsided on purpose: one deep, wide subtree (like /usr) next to small ones.
  for (int i = 0; i < 40; ++i) {
    for (int j = 0; j < 10; ++j) {
      WriteFile(tree + "/usr/d" + std::to_string(i) + "/s" + std::to_string(j % 3) + "/f" +
                    std::to_string(j),
                "x");
    }
  }
  WriteFile(tree + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  UniqueFd fd(open(tree.c_str(), O_RDONLY | O_DIRECTORY));
  auto flat = [](const Manifest& m) {
    std::vector<std::pair<std::string, FileMeta>> v;
    for (const auto& e : m.entries()) v.emplace_back(std::string(e.path), e.meta);
    return v;
  };
  auto one = Manifest::Scan(fd.get(), 1);
  REQUIRE(one.ok());
  CHECK(one->entries().size() == 1 + 1 + 40 * (1 + 3 + 10) + 2);
  for (unsigned threads : {2u, 7u, 16u}) {
    CAPTURE(threads);
    auto many = Manifest::Scan(fd.get(), threads);
    REQUIRE(many.ok());
    CHECK(flat(*many) == flat(*one));
  }
}

TEST_CASE("walk: errors name the directory, and nothing is returned") {
  slipway::testing::TempDir tmp;
  const std::string tree = tmp.Join("tree");
  // Deeper than the walk goes: made with *at calls, so no path gets long.
  MakeDirs(tree);
  UniqueFd cur(open(tree.c_str(), O_RDONLY | O_DIRECTORY));
  for (int i = 0; i < 4098; ++i) {
    REQUIRE(mkdirat(cur.get(), "d", 0755) == 0);
    cur = UniqueFd(openat(cur.get(), "d", O_RDONLY | O_DIRECTORY));
    REQUIRE(cur.valid());
  }
  UniqueFd fd(open(tree.c_str(), O_RDONLY | O_DIRECTORY));
  auto deep = Manifest::Scan(fd.get());
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.error().errno_value() == ELOOP);
  CHECK(deep.error().message().find("directory tree deeper than 4096 levels at d/d/d/") == 0);
  // Taken apart from the top (paths this deep are too long for the usual removal).
  for (int i = 1; i < 4098; ++i) {
    REQUIRE(renameat(fd.get(), "d/d", fd.get(), "up") == 0);
    REQUIRE(unlinkat(fd.get(), "d", AT_REMOVEDIR) == 0);
    REQUIRE(renameat(fd.get(), "up", fd.get(), "d") == 0);
  }
  REQUIRE(unlinkat(fd.get(), "d", AT_REMOVEDIR) == 0);
  // Not a directory at all.
  WriteFile(tmp.Join("file"), "x");
  UniqueFd file(open(tmp.Join("file").c_str(), O_RDONLY));
  auto notdir = Manifest::Scan(file.get());
  REQUIRE_FALSE(notdir.ok());
  CHECK(notdir.error().message().find("/") != std::string::npos);
  CHECK(notdir.error().errno_value() == ENOTDIR);
}

TEST_CASE("layer entries: written parents first, whiteouts first in a directory, once each") {
  using E = LayerEntry;
  const std::vector<E> want = {{E::kPath, "a"},      {E::kWhiteout, "a/gone"}, {E::kPath, "a/b"},
                               {E::kPath, "a/b/c"},  {E::kOpaque, "d"},        {E::kPath, "d/x"}};
  std::vector<E> shuffled = {want[5], want[2], want[0], want[4], want[3], want[1], want[2], want[5]};
  SortLayerEntries(shuffled);
  CHECK(shuffled == want);
  std::vector<E> sorted_with_repeats = {want[0], want[1], want[1], want[2], want[3],
                                        want[4], want[5], want[5]};
  SortLayerEntries(sorted_with_repeats);
  CHECK(sorted_with_repeats == want);
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
