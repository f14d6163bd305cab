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

}  // namespace
}  // namespace slipway
