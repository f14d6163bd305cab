// Nothing crashes on any input (checklist item 9 of the issue): random bytes, huge lines, deep
// nesting, unterminated everything. Each input must give a plan or an error with a location --
// never a crash, a hang or unbounded memory. Run under --config=asan as well.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "dockerfile/dockerignore.h"
#include "dockerfile/plan.h"
#include "dockerfile/render.h"

namespace slipway::dockerfile {
namespace {

// Plans `text`; returns "" on success or the error text. Either way it must not crash.
std::string Try(const std::string& text) {
  auto p = PlanDockerfile(text, "Dockerfile", BuildOptions{});
  if (p.ok()) {
    RenderPlan(*p);
    return "";
  }
  return p.error().ToString();
}

TEST_CASE("robustness: random bytes and random Dockerfile-ish text") {
  std::mt19937 rng(1123);
  const char* const pieces[] = {
      "FROM ", "RUN ",     "COPY ", "ENV ", "ARG ", "ONBUILD ",     "${",  "}",    "$",
      "\"",    "'",        "\\",    "\n",   " ",    "<<EOF",        "EOF", "[",    "]",
      ",",     "--mount=", "=",     ":-",   "#",    "# escape=`\n", "`",   "\r\n", "AS x"};
  int errors = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      if (rng() % 5 == 0) {
        text += static_cast<char>(rng() % 256);
      } else {
        text += pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
      }
    }
    std::string err = Try(text);
    if (!err.empty()) {
      ++errors;
      // Every error names the file and a line.
      CHECK(err.rfind("Dockerfile:", 0) == 0);
    }
    auto ig = Dockerignore::Parse(text, ".dockerignore");
    if (ig.ok()) ig->Excluded("a/b/c");
  }
  CHECK(errors > 0);
}

TEST_CASE("robustness: pathological inputs give errors or plans, not crashes") {
  const std::string huge_line(1 << 20, 'x');
  CHECK(Try("FROM a\nRUN " + huge_line) ==
        "Dockerfile:2:1: dockerfile line greater than max allowed size of 65535");
  std::string quotes = "FROM a\nENV x=";
  for (int i = 0; i < 10000; ++i) quotes += "\"'";
  CHECK(Try(quotes).find("Dockerfile:2:1:") == 0);
  std::string nested = "FROM a\nENV x=";
  for (int i = 0; i < 10000; ++i) nested += "${a:-";
  CHECK(Try(nested) == "Dockerfile:2:1: substitutions nested too deeply");
  std::string continued = "FROM a\nRUN a";
  for (int i = 0; i < 20000; ++i) continued += " \\\n b";
  CHECK(Try(continued).empty());
  CHECK(Try("FROM a\nRUN <<EOF\n") == "Dockerfile:2:1: unterminated heredoc EOF");
  CHECK(Try("FROM a\nENV x=\"open\n").find("matching double-quote") != std::string::npos);
  CHECK(Try("FROM a\nRUN --mount=\"open x\n").find("Dockerfile:2:") == 0);
  CHECK(Try(std::string("FROM a\0b\n", 9)).empty());
  std::string many_stages;
  for (int i = 0; i < 2000; ++i) many_stages += "FROM a AS s" + std::to_string(i) + "\n";
  CHECK(Try(many_stages).empty());
}

}  // namespace
}  // namespace slipway::dockerfile
