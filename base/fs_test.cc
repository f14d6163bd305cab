#include "base/fs.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

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

TEST_CASE("fs: WriteFileAtomic replaces the whole file, with the mode asked for") {
  testing::TempDir tmp;
  const std::string f = tmp.Join("f");
  REQUIRE(WriteFileAtomic(f, "first").ok());
  REQUIRE(WriteFileAtomic(f, "second", 0600).ok());
  CHECK(*ReadWholeFile(f) == "second");
  struct stat st;
  REQUIRE(stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto nodir = WriteFileAtomic(tmp.Join("missing/f"), "x");
  REQUIRE_FALSE(nodir.ok());
  CHECK(nodir.error().errno_value() == ENOENT);
  auto names = ListDirectory(UniqueFd(open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY)).get());
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"f"});  // no temporary left behind
}

}  // namespace
}  // namespace slipway
