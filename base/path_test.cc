#include "base/path.h"

#include <doctest/doctest.h>

namespace slipway {
namespace {

TEST_CASE("path: CleanPath is Go's path.Clean") {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {{"", "."},       {"a//b/./c/..", "a/b"},
                        {"/../x", "/x"}, {"../x/../../y", "../../y"},
                        {"/", "/"},      {"./", "."},
                        {"a/b/", "a/b"}, {"//a", "/a"},
                        {"..", ".."}};
  for (const Case& c : cases) {
    CAPTURE(std::string(c.in));
    CHECK(CleanPath(c.in) == c.out);
  }
}

TEST_CASE("path: TreeLess puts a directory's contents right after it") {
  CHECK(TreeLess("", "a"));
  CHECK(TreeLess("a", "a/z"));
  CHECK(TreeLess("a/z", "a-b"));  // byte order would put "a-b" first ('-' < '/')
  CHECK(TreeLess("a-b", "a0"));
  CHECK(TreeLess("a/b/c", "a/b-"));
  CHECK(TreeLess("a/b", "a/b/c"));
  CHECK_FALSE(TreeLess("a", "a"));
  CHECK_FALSE(TreeLess("a-b", "a/z"));
  CHECK_FALSE(TreeLess("a/z", "a"));
}

}  // namespace
}  // namespace slipway
