#include "dockerfile/dockerignore.h"

#include <doctest/doctest.h>

#include <set>
#include <string>

namespace slipway::dockerfile {
namespace {

Dockerignore Must(const std::string& text) {
  auto r = Dockerignore::Parse(text, ".dockerignore");
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return *r;
}

TEST_CASE("dockerignore: which file applies (65)") {
  std::set<std::string> files = {"/ctx/.dockerignore", "/ctx/sub/Dockerfile.dockerignore"};
  auto exists = [&](const std::string& p) { return files.count(p) > 0; };
  CHECK(ChooseIgnoreFile("/ctx/sub/Dockerfile", "/ctx", exists) ==
        "/ctx/sub/Dockerfile.dockerignore");
  CHECK(ChooseIgnoreFile("/ctx/Dockerfile", "/ctx", exists) == "/ctx/.dockerignore");
  CHECK(ChooseIgnoreFile("/ctx/Dockerfile", "/other", exists) == "");
}

TEST_CASE("dockerignore: line rules (66)") {
  Dockerignore ig = Must(
      "\xEF\xBB\xBF# comment\n"
      "   \n"
      "  spaced  \n"
      " # not a comment: the # is not at column 0\n"
      "/rooted\n"
      "a//b/../c/\n"
      "! keep\n");
  std::vector<std::string> texts;
  for (const auto& p : ig.patterns()) texts.push_back((p.exception ? "!" : "") + p.text);
  CHECK(texts == std::vector<std::string>{"spaced", "# not a comment: the # is not at column 0",
                                          "rooted", "a/c", "!keep"});
  auto bang = Dockerignore::Parse("a\n!\n", ".dockerignore");
  REQUIRE_FALSE(bang.ok());
  CHECK(bang.error().message() == ".dockerignore:2: illegal exclusion pattern: \"!\"");
  auto bad = Dockerignore::Parse("[unterminated\n", ".dockerignore");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() == ".dockerignore:1: syntax error in pattern \"[unterminated\"");
}

struct MatchCase {
  const char* patterns;
  const char* path;
  bool excluded;
};

TEST_CASE("dockerignore: matching and evaluation (67-68)") {
  const MatchCase cases[] = {
      {"*.md", "README.md", true},
      {"*.md", "docs/README.md", false},  // * stays within one segment
      {"*/*.md", "docs/README.md", true},
      {"**/*.md", "docs/a/b/README.md", true},
      {"**/*.md", "README.md", true},  // ** matches zero segments
      {"a/**", "a/b/c", true},
      {"a/**", "a", true},
      {"a/**/z", "a/z", true},
      {"a/**/z", "a/b/c/z", true},
      {"?.txt", "a.txt", true},
      {"?.txt", "ab.txt", false},
      {"[a-c].txt", "b.txt", true},
      {"[^a-c].txt", "b.txt", false},
      {"[^a-c].txt", "d.txt", true},
      {"\\*.txt", "*.txt", true},
      {"\\*.txt", "a.txt", false},
      {"a.+(x)", "a.+(x)", true},                     // regex metacharacters are literal
      {"node_modules", "node_modules/x/y.js", true},  // a parent match excludes everything below
      {"build\n!build/keep.txt", "build/keep.txt", false},
      {"build\n!build/keep.txt", "build/other.txt", true},
      {"*.log\n!important.log\nimportant.log", "important.log", true},  // last match wins
      {"/secret", "secret", true},
      {"*", ".", false},  // "." is never excluded
      {"a/../b", "b", true},
  };
  for (const MatchCase& c : cases) {
    CAPTURE(std::string(c.patterns));
    CAPTURE(std::string(c.path));
    CHECK(Must(c.patterns).Excluded(c.path) == c.excluded);
  }
  CHECK(Must("a\n!b").HasExceptions());
  CHECK_FALSE(Must("a\nb").HasExceptions());
}

}  // namespace
}  // namespace slipway::dockerfile
