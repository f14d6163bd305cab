#include "base/fs.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <algorithm>

#include "base/test_util.h"
#include "base/unique_fd.h"

namespace slipway {
namespace {

TEST_CASE("fs: ListDirectory lists names without . and .., and leaves the fd alone") {
  testing::TempDir tmp;
  testing::WriteFile(tmp.Join("b"), "");
  testing::MakeDirs(tmp.Join("a"));
  UniqueFd fd(open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY));
  auto names = ListDirectory(fd.get());
  REQUIRE(names.ok());
  std::sort(names->begin(), names->end());
  CHECK(*names == std::vector<std::string>{"a", "b"});
  CHECK(ListDirectory(fd.get()).ok());  // still usable
  UniqueFd file(open(tmp.Join("b").c_str(), O_RDONLY));
  CHECK_FALSE(ListDirectory(file.get()).ok());
}

TEST_CASE("fs: ReadWholeFile") {
  testing::TempDir tmp;
  testing::WriteFile(tmp.Join("f"), std::string("a\0b", 3));
  CHECK(*ReadWholeFile(tmp.Join("f")) == std::string("a\0b", 3));
  auto missing = ReadWholeFile(tmp.Join("nope"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().errno_value() == ENOENT);
}

}  // namespace
}  // namespace slipway
