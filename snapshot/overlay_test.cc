// The overlay strategy against the metadata walk, on the same change matrix: each must turn a
// copy of the "before" tree into the changed tree, and -- except where the walk's answer depends
// on inode reuse -- both must write the same layer, byte for byte (mtimes clamped, since the two
// runs happen at different times).
#include "snapshot/overlay.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "snapshot/change_matrix.h"
#include "snapshot/extract.h"
#include "snapshot/layer_writer.h"
#include "snapshot/snapshotter.h"
#include "snapshot/walk.h"

namespace slipway::snapshot {
namespace {

namespace fs = std::filesystem;

using slipway::testing::MakeDirs;
using slipway::testing::ReadFile;
using testing::Describe;

std::string Cp(const std::string& from, const std::string& to) {
  auto r = slipway::testing::Run({"/bin/cp", "-a", from, to});
  REQUIRE(r.exit_code == 0);
  return to;
}

// Writes the layer of `changes` read from `root` (clamped or not) and returns its bytes.
std::string Layer(const std::string& root, const std::vector<LayerEntry>& changes,
                  const std::string& path, bool clamp) {
  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY));
  UniqueFd out(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  LayerOptions o;
  o.compression = Compression::kNone;
  if (clamp) o.clamp_mtime = 1;
  auto b = WriteLayer(fd.get(), changes, out.get(), o);
  REQUIRE_MESSAGE(b.ok(), b.error().ToString());
  return ReadFile(path);
}

void Extract(const std::string& layer, const std::string& onto) {
  UniqueFd in(open(layer.c_str(), O_RDONLY));
  UniqueFd root(open(onto.c_str(), O_RDONLY | O_DIRECTORY));
  ExtractOptions eo;
  eo.allow_devices = true;
  auto r = ExtractLayer(root.get(), in.get(), "layer", eo);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
}

TEST_CASE("overlay: the upper directory gives the same layer as the walk") {
  REQUIRE_MESSAGE(geteuid() == 0, "mounting overlayfs needs real root");
  int identical = 0;
  for (const testing::Case& c : testing::ChangeMatrix()) {
    CAPTURE(std::string(c.name));
    slipway::testing::TempDir tmp("/tmp");
    const std::string walk_tree = tmp.Join("walk");
    MakeDirs(walk_tree);
    c.before(walk_tree);
    const std::string lower = Cp(walk_tree, tmp.Join("lower"));
    const std::string walk_copy = Cp(walk_tree, tmp.Join("walk-copy"));
    const std::string ovl_copy = Cp(walk_tree, tmp.Join("ovl-copy"));

    // The walk.
    UniqueFd wfd(open(walk_tree.c_str(), O_RDONLY | O_DIRECTORY));
    auto before = Manifest::Scan(wfd.get());
    c.change(walk_tree);
    auto after = Manifest::Scan(wfd.get());
    const std::vector<LayerEntry> walk_changes = Diff(*before, *after);
    const std::string walk_clamped = Layer(walk_tree, walk_changes, tmp.Join("w1"), true);
    Layer(walk_tree, walk_changes, tmp.Join("w2"), false);

    // The overlay.
    MakeDirs(tmp.Join("scratch"));
    auto s = OverlaySession::Mount(lower, tmp.Join("scratch"));
    REQUIRE_MESSAGE(s.ok(), s.error().ToString());
    c.change(s->merged());
    auto ovl_changes = s->Changes();
    REQUIRE_MESSAGE(ovl_changes.ok(), ovl_changes.error().ToString());
    const std::string ovl_clamped = Layer(s->merged(), *ovl_changes, tmp.Join("o1"), true);
    Layer(s->merged(), *ovl_changes, tmp.Join("o2"), false);
    const auto merged_view = Describe(s->merged());
    REQUIRE(s->Unmount().ok());
    // Moving the upper directory into the lower one gives the merged view too.
    auto merge = MergeUpper(s->upper(), lower);
    REQUIRE_MESSAGE(merge.ok(), merge.error().ToString());
    CHECK(Describe(lower) == merged_view);

    // Both layers rebuild the changed tree.
    Extract(tmp.Join("w2"), walk_copy);
    Extract(tmp.Join("o2"), ovl_copy);
    CHECK(Describe(walk_copy) == Describe(walk_tree));
    CHECK(Describe(ovl_copy) == merged_view);
    CHECK(Describe(lower, false) == Describe(walk_tree, false));  // the two runs agree
    if (!c.inode_dependent) {
      CHECK(ovl_clamped == walk_clamped);
      identical += ovl_clamped == walk_clamped;
    }
  }
  MESSAGE(identical, " of the matrix's cases gave byte-identical layers");
}

TEST_CASE("overlay: a session cleans up after itself, and refuses a missing lower") {
  REQUIRE(geteuid() == 0);
  slipway::testing::TempDir tmp("/tmp");
  MakeDirs(tmp.Join("lower"));
  MakeDirs(tmp.Join("scratch"));
  std::string base;
  {
    auto s = OverlaySession::Mount(tmp.Join("lower"), tmp.Join("scratch"));
    REQUIRE(s.ok());
    base = std::filesystem::path(s->merged()).parent_path();
    CHECK(std::filesystem::exists(base));
  }  // destroyed while mounted
  CHECK_FALSE(std::filesystem::exists(base));
  auto bad = OverlaySession::Mount(tmp.Join("missing"), tmp.Join("scratch"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message().find("mounting an overlay on ") == 0);
  CHECK(std::filesystem::is_empty(tmp.Join("scratch")));
}

TEST_CASE("layered: a stage as an upper directory over a read-only base, step after step") {
  REQUIRE_MESSAGE(geteuid() == 0, "mounting overlayfs needs real root");
  for (const testing::Case& c : testing::ChangeMatrix()) {
    CAPTURE(std::string(c.name));
    slipway::testing::TempDir tmp("/tmp");
    const std::string expected = tmp.Join("expected");
    MakeDirs(expected);
    c.before(expected);
    const std::string base = Cp(expected, tmp.Join("base"));
    const auto base_before = Describe(base);
    const std::string stage = tmp.Join("stage");
    MakeDirs(stage);
    MakeDirs(tmp.Join("scratch"));
    // Step 1: the case's change, whose layer is the one the plain overlay gives.
    auto snap = StartLayeredSnapshot({stage, base}, tmp.Join("scratch"));
    REQUIRE_MESSAGE(snap.ok(), snap.error().ToString());
    c.change((*snap)->root());
    auto changes = (*snap)->Changes();
    REQUIRE(changes.ok());
    const std::string layered = Layer((*snap)->root(), *changes, tmp.Join("l1"), true);
    REQUIRE((*snap)->Commit("").ok());
    snap->reset();
    {
      const std::string lower = Cp(expected, tmp.Join("plain-lower"));
      auto s = OverlaySession::Mount(lower, tmp.Join("scratch"));
      REQUIRE(s.ok());
      c.change(s->merged());
      auto plain = s->Changes();
      REQUIRE(plain.ok());
      if (!c.inode_dependent) CHECK(Layer(s->merged(), *plain, tmp.Join("p1"), true) == layered);
    }
    c.change(expected);
    // Step 2: delete and recreate on top of step 1, through the merged upper.
    auto snap2 = StartLayeredSnapshot({stage, base}, tmp.Join("scratch"));
    REQUIRE(snap2.ok());
    fs::remove_all((*snap2)->root() + "/etc");
    slipway::testing::WriteFile((*snap2)->root() + "/etc/new", "second step");
    REQUIRE((*snap2)->Changes().ok());
    REQUIRE((*snap2)->Commit("").ok());
    snap2->reset();
    fs::remove_all(expected + "/etc");
    slipway::testing::WriteFile(expected + "/etc/new", "second step");
    // The view of the stage is the expected tree; the base was never written.
    MakeDirs(tmp.Join("view"));
    auto view = OverlayView::Mount({stage, base}, tmp.Join("view"));
    REQUIRE_MESSAGE(view.ok(), view.error().ToString());
    CHECK(Describe(view->path(), false) == Describe(expected, false));
    CHECK(Describe(base) == base_before);
  }
}

}  // namespace
}  // namespace slipway::snapshot
