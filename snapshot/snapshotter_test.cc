#include "snapshot/snapshotter.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "snapshot/change_matrix.h"

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

TEST_CASE("snapshotter: the walk strategy leaves the step's result in the rootfs") {
  Check(Strategy::kWalk);
}

TEST_CASE("snapshotter: the automatic choice works wherever it runs") { Check(Strategy::kAuto); }

}  // namespace
}  // namespace slipway::snapshot
