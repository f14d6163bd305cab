#include "snapshot/snapshotter.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "snapshot/change_matrix.h"
#include "snapshot/extract.h"

namespace slipway::snapshot {
namespace {

using testing::Describe;

void Check(Strategy strategy) {
  for (const testing::Case& c : testing::ChangeMatrix()) {
    CAPTURE(std::string(c.name));
    slipway::testing::TempDir tmp("/tmp");
    const std::string rootfs = tmp.Join("rootfs"), expected = tmp.Join("expected");
    slipway::testing::MakeDirs(rootfs);
    c.before(rootfs);
    REQUIRE(slipway::testing::Run({"/bin/cp", "-a", rootfs, expected}).exit_code == 0);
    slipway::testing::MakeDirs(tmp.Join("scratch"));
    auto snap = StartSnapshot(rootfs, tmp.Join("scratch"), strategy);
    REQUIRE_MESSAGE(snap.ok(), snap.error().ToString());
    if (strategy != Strategy::kAuto) CHECK((*snap)->strategy() == strategy);
    c.change((*snap)->root());
    c.change(expected);
    auto changes = (*snap)->Changes();
    REQUIRE(changes.ok());
    const std::string layer = tmp.Join("layer.tar");
    {
      UniqueFd root(open((*snap)->root().c_str(), O_RDONLY | O_DIRECTORY));
      UniqueFd out(open(layer.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
      auto b = WriteLayer(root.get(), *changes, out.get(), {});
      REQUIRE_MESSAGE(b.ok(), b.error().ToString());
    }
    const auto seen = Describe((*snap)->root());
    REQUIRE((*snap)->Commit(layer).ok());
    CHECK(Describe(rootfs) == seen);
    snap->reset();
    CHECK(std::filesystem::is_empty(tmp.Join("scratch")));  // nothing left behind
  }
}

std::string Show(const std::vector<LayerEntry>& v) {
  std::string s;
  for (const auto& e : v) s += std::to_string(e.kind) + ":" + e.path + " ";
  return s;
}

// Runs one step through a walk snapshotter and commits it.
std::vector<LayerEntry> Step(const std::string& rootfs, const std::string& scratch, WalkMemo* memo,
                             const std::function<void(const std::string&)>& change) {
  auto snap = StartSnapshot(rootfs, scratch, Strategy::kWalk, memo);
  REQUIRE_MESSAGE(snap.ok(), snap.error().ToString());
  change((*snap)->root());
  auto changes = (*snap)->Changes();
  REQUIRE(changes.ok());
  REQUIRE((*snap)->Commit("unused").ok());
  return *changes;
}

TEST_CASE("snapshotter: with a memo, the next walk step starts from the last step's result") {
  for (const testing::Case& c : testing::ChangeMatrix()) {
    CAPTURE(std::string(c.name));
    slipway::testing::TempDir tmp("/tmp");
    const std::string rootfs = tmp.Join("rootfs"), copy = tmp.Join("copy");
    slipway::testing::MakeDirs(rootfs);
    c.before(rootfs);
    const std::string scratch = tmp.Join("scratch");
    slipway::testing::MakeDirs(scratch);
    WalkMemo memo;
    CHECK(Show(Step(rootfs, scratch, &memo, [](const std::string& r) {
            slipway::testing::WriteFile(r + "/step1", "1");
          })) == "0:step1 ");
    REQUIRE(memo.last.has_value());
    REQUIRE(slipway::testing::Run({"/bin/cp", "-a", rootfs, copy}).exit_code == 0);
    // The second step does not walk before it starts; its layer must still turn the tree as
    // the first step left it into the tree as the second step left it.
    const std::vector<LayerEntry> changes = Step(rootfs, scratch, &memo, c.change);
    CHECK(memo.last.has_value());
    if (std::string(c.name) == "nothing changed") CHECK(changes.empty());
    const std::string layer = tmp.Join("layer.tar");
    {
      UniqueFd root(open(rootfs.c_str(), O_RDONLY | O_DIRECTORY));
      UniqueFd out(open(layer.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
      auto b = WriteLayer(root.get(), changes, out.get(), {});
      REQUIRE_MESSAGE(b.ok(), b.error().ToString());
    }
    UniqueFd in(open(layer.c_str(), O_RDONLY));
    UniqueFd copy_fd(open(copy.c_str(), O_RDONLY | O_DIRECTORY));
    ExtractOptions eo;
    eo.allow_devices = true;  // FIFOs
    auto x = ExtractLayer(copy_fd.get(), in.get(), "layer", eo);
    REQUIRE_MESSAGE(x.ok(), x.error().ToString());
    CHECK(Describe(copy) == Describe(rootfs));
  }
}

TEST_CASE("snapshotter: a memo is used once, and only for the tree it was taken of") {
  slipway::testing::TempDir tmp("/tmp");
  const std::string a = tmp.Join("a"), b = tmp.Join("b"), scratch = tmp.Join("scratch");
  slipway::testing::WriteFile(a + "/only-in-a", "a");
  slipway::testing::WriteFile(b + "/only-in-b", "b");
  slipway::testing::MakeDirs(scratch);
  WalkMemo memo;
  Step(a, scratch, &memo, [](const std::string& r) { slipway::testing::WriteFile(r + "/x", ""); });
  REQUIRE(memo.last.has_value());
  // Another rootfs: its own walk, not a's manifest (which would list only-in-b as new).
  CHECK(Show(Step(b, scratch, &memo, [](const std::string& r) {
          slipway::testing::WriteFile(r + "/y", "");
        })) == "0:y ");
  // A step that is started but never committed leaves no memo behind.
  {
    auto snap = StartSnapshot(b, scratch, Strategy::kWalk, &memo);
    REQUIRE(snap.ok());
    CHECK_FALSE(memo.last.has_value());
    slipway::testing::WriteFile(b + "/abandoned", "");
  }
  CHECK_FALSE(memo.last.has_value());
  // So the next step walks again and sees the tree as it is.
  CHECK(Show(Step(b, scratch, &memo, [](const std::string& r) {
          slipway::testing::WriteFile(r + "/z", "");
        })) == "0:z ");
}

TEST_CASE("snapshotter: the walk strategy leaves the step's result in the rootfs") {
  Check(Strategy::kWalk);
}

TEST_CASE("snapshotter: the automatic choice works wherever it runs") { Check(Strategy::kAuto); }

}  // namespace
}  // namespace slipway::snapshot
