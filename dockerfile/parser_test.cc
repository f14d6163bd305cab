#include "dockerfile/parser.h"

#include <doctest/doctest.h>

#include <string>

namespace slipway::dockerfile {
namespace {

ParseResult MustParse(const std::string& text) {
  auto r = Parse(text, "Dockerfile");
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());
  return *r;
}

std::string ParseError(const std::string& text) {
  auto r = Parse(text, "Dockerfile");
  REQUIRE_FALSE(r.ok());
  return r.error().ToString();
}

TEST_CASE("parser: BOM, CRLF, case-insensitive keywords, leading whitespace (1-3)") {
  ParseResult r = MustParse(
      "\xEF\xBB\xBF"
      "from alpine\r\n   Run echo hi\r\n\tcmd [\"x\"]\r\n");
  REQUIRE(r.nodes.size() == 3);
  CHECK(r.nodes[0].keyword == "from");
  CHECK(r.nodes[0].args == "alpine");
  CHECK(r.nodes[1].keyword == "run");
  CHECK(r.nodes[1].args == "echo hi");
  CHECK(r.nodes[1].at.line == 2);
  CHECK(r.nodes[1].at.column == 4);
  CHECK(r.nodes[2].keyword == "cmd");
}

TEST_CASE("parser: a physical line over 65535 bytes is an error naming its line (2)") {
  std::string ok = "FROM a\nRUN " + std::string(65531, 'x') + "\n";
  CHECK(Parse(ok, "Dockerfile").ok());
  CHECK(ParseError("FROM a\nRUN " + std::string(65532, 'x') + "\n") ==
        "Dockerfile:2:1: dockerfile line greater than max allowed size of 65535");
}

TEST_CASE("parser: comments, and # inside an instruction is literal (4)") {
  ParseResult r =
      MustParse("# top\nFROM a\n  # indented comment\nRUN echo 'a # b' # not a comment\n");
  REQUIRE(r.nodes.size() == 2);
  CHECK(r.nodes[1].args == "echo 'a # b' # not a comment");
}

TEST_CASE("parser: continuations (5-8)") {
  SUBCASE("comment lines inside a continuation are dropped") {
    ParseResult r = MustParse("FROM a\nRUN echo hello \\\n# comment\nworld\n");
    CHECK(r.nodes[1].args == "echo hello world");
    CHECK(r.nodes[1].end_line == 4);
  }
  SUBCASE("trailing blanks after the escape still continue") {
    ParseResult r = MustParse("FROM a\nRUN a \\  \t\n b\n");
    CHECK(r.nodes[1].args == "a  b");
  }
  SUBCASE("an escaped escape at the end does not continue") {
    ParseResult r = MustParse("FROM a\nRUN echo \\\\\nRUN x\n");
    REQUIRE(r.nodes.size() == 3);
    CHECK(r.nodes[1].args == "echo \\\\");
  }
  SUBCASE("continuation at EOF is accepted") {
    ParseResult r = MustParse("FROM a\nRUN echo \\");
    CHECK(r.nodes[1].args == "echo ");
  }
  SUBCASE("empty continuation lines are skipped with a warning") {
    ParseResult r = MustParse("FROM a\nRUN a \\\n\n   \nb\n");
    CHECK(r.nodes[1].args == "a b");
    REQUIRE(r.warnings.size() == 2);
    CHECK(r.warnings[0].ToString() ==
          "Dockerfile:3:1: NoEmptyContinuation: Empty continuation lines will become errors in a "
          "future release");
  }
  SUBCASE("continuation lines keep their leading whitespace") {
    ParseResult r = MustParse("FROM a\nRUN echo \"\\\n     hello\\\n     world\"\n");
    CHECK(r.nodes[1].args == "echo \"     hello     world\"");
  }
}

TEST_CASE("parser: no instructions is an error; unknown keywords parse (9)") {
  CHECK(ParseError("# only a comment\n\n") == "Dockerfile:1:1: file with no instructions");
  CHECK(ParseError("") == "Dockerfile:1:1: file with no instructions");
  ParseResult r = MustParse("FROM a\nFROBNICATE x\n");
  CHECK(r.nodes[1].keyword == "frobnicate");
}

TEST_CASE("parser: leading --flags are split off, quotes honoured, -- ends them (10)") {
  ParseResult r = MustParse(
      "FROM --platform=linux/arm64 a\n"
      "RUN --mount=type=cache,target=/c --network=none echo --not-a-flag\n"
      "COPY --chown=\"a b\" -- --weird-name /d\n");
  CHECK(r.nodes[0].flags == std::vector<std::string>{"--platform=linux/arm64"});
  CHECK(r.nodes[1].flags ==
        std::vector<std::string>{"--mount=type=cache,target=/c", "--network=none"});
  CHECK(r.nodes[1].args == "echo --not-a-flag");
  CHECK(r.nodes[2].flags == std::vector<std::string>{"--chown=a b"});
  CHECK(r.nodes[2].args == "--weird-name /d");
}

TEST_CASE("parser: directives only at the top; unknown key ends them; duplicates fail (11-16)") {
  SUBCASE("escape and syntax") {
    ParseResult r = MustParse("# syntax=docker/dockerfile:1\n#escape=`\nFROM a\nRUN a `\n b\n");
    CHECK(r.directives.syntax == std::optional<std::string>("docker/dockerfile:1"));
    CHECK(r.directives.escape == '`');
    CHECK(r.nodes[1].args == "a  b");
  }
  SUBCASE("case-insensitive key, spaces around =") {
    ParseResult r = MustParse("#  ESCAPE =  `\nFROM a\n");
    CHECK(r.directives.escape == '`');
  }
  SUBCASE("after an instruction it is a comment") {
    ParseResult r = MustParse("FROM a\n# escape=`\nRUN a \\\n b\n");
    CHECK(r.directives.escape == '\\');
    CHECK(r.nodes[1].args == "a  b");
  }
  SUBCASE("an empty line ends directives") {
    ParseResult r = MustParse("\n# escape=`\nFROM a\n");
    CHECK(r.directives.escape == '\\');
  }
  SUBCASE("an unknown key ends directives") {
    ParseResult r = MustParse("# foo=bar\n# escape=`\nFROM a\n");
    CHECK(r.directives.escape == '\\');
  }
  SUBCASE("check directive") {
    ParseResult r =
        MustParse("# check=skip=JSONArgsRecommended, StageNameCasing;error=true\nFROM a\n");
    CHECK(r.directives.check ==
          std::optional<std::string>("skip=JSONArgsRecommended, StageNameCasing;error=true"));
    CHECK(r.directives.check_skip ==
          std::vector<std::string>{"JSONArgsRecommended", "StageNameCasing"});
    CHECK(r.directives.check_error);
  }
  SUBCASE("only the first word of syntax is the frontend image") {
    ParseResult r = MustParse("# syntax=docker/dockerfile:1.7 extra words\nFROM a\n");
    CHECK(r.directives.syntax == std::optional<std::string>("docker/dockerfile:1.7"));
  }
  SUBCASE("a shebang line is skipped") {
    ParseResult r = MustParse("#!/usr/bin/env docker\n# escape=`\nFROM a\n");
    CHECK(r.directives.escape == '`');
  }
  CHECK(ParseError("# escape=`\n# escape=\\\nFROM a\n") ==
        "Dockerfile:2:1: only one escape parser directive can be used");
  CHECK(ParseError("# syntax=a\n# SYNTAX=b\nFROM a\n") ==
        "Dockerfile:2:1: only one syntax parser directive can be used");
  CHECK(ParseError("# check=error=maybe\nFROM a\n") ==
        "Dockerfile:1:1: check directive: error must be true or false, not \"maybe\"");
  CHECK(ParseError("# check=frob=1\nFROM a\n") ==
        "Dockerfile:1:1: check directive: unknown option \"frob\"");
  CHECK(ParseError("# escape=x\nFROM a\n") ==
        "Dockerfile:1:1: invalid escape token 'x' does not match ^[\\\\`]$");
}

TEST_CASE("parser: heredocs for RUN, COPY and ADD (22-26)") {
  SUBCASE("plain, quoted, chomped, with fd, several") {
    ParseResult r = MustParse(
        "FROM a\n"
        "RUN <<EOF\n"
        "echo $HOME\n"
        "EOF\n"
        "COPY <<'ONE' <<-TWO /dest/\n"
        "raw $x\n"
        "ONE\n"
        "\t\tchomped\n"
        "\tTWO\n"
        "RUN 3<<X cat /dev/fd/3\n"
        "fd\n"
        "X\n"
        "RUN echo done\n");
    REQUIRE(r.nodes.size() == 5);
    REQUIRE(r.nodes[1].heredocs.size() == 1);
    CHECK(r.nodes[1].heredocs[0].name == "EOF");
    CHECK(r.nodes[1].heredocs[0].content == "echo $HOME\n");
    CHECK(r.nodes[1].heredocs[0].expand);
    CHECK(r.nodes[1].end_line == 4);
    REQUIRE(r.nodes[2].heredocs.size() == 2);
    CHECK(r.nodes[2].heredocs[0].name == "ONE");
    CHECK_FALSE(r.nodes[2].heredocs[0].expand);
    CHECK(r.nodes[2].heredocs[0].content == "raw $x\n");
    CHECK(r.nodes[2].heredocs[1].name == "TWO");
    CHECK(r.nodes[2].heredocs[1].chomp);
    CHECK(r.nodes[2].heredocs[1].content == "chomped\n");
    CHECK(r.nodes[3].heredocs[0].fd == 3);
    CHECK(r.nodes[3].heredocs[0].content == "fd\n");
    CHECK(r.nodes[4].args == "echo done");
  }
  SUBCASE("any quoting of the delimiter disables expansion") {
    ParseResult r = MustParse("FROM a\nRUN <<E\"O\"F\nx\nEOF\n");
    CHECK(r.nodes[1].heredocs[0].name == "EOF");
    CHECK_FALSE(r.nodes[1].heredocs[0].expand);
  }
  SUBCASE("not in JSON form, not for other instructions") {
    ParseResult r = MustParse("FROM a\nRUN [\"cat\", \"<<EOF\"]\nENV A <<EOF\n");
    CHECK(r.nodes[1].heredocs.empty());
    CHECK(r.nodes[2].heredocs.empty());
  }
  SUBCASE("ONBUILD-wrapped") {
    ParseResult r = MustParse("FROM a\nONBUILD RUN <<EOF\nhi\nEOF\n");
    REQUIRE(r.nodes[1].heredocs.size() == 1);
    CHECK(r.nodes[1].heredocs[0].content == "hi\n");
  }
  CHECK(ParseError("FROM a\nRUN <<EOF\nno end\n") == "Dockerfile:2:1: unterminated heredoc EOF");
}

TEST_CASE("parser: SplitFlags and HeredocWords in isolation") {
  std::vector<std::string> flags;
  auto rest = SplitFlags("  --a=1 --b='x y' rest --c", '\\', &flags);
  REQUIRE(rest.ok());
  CHECK(flags == std::vector<std::string>{"--a=1", "--b=x y"});
  CHECK(*rest == "rest --c");
  std::vector<std::string> none;
  auto bad = SplitFlags("--a='open", '\\', &none);
  CHECK_FALSE(bad.ok());
  auto docs = HeredocWords("cat <<A <<-\"B\" '<<C' x<<D", '\\');
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].name == "A");
  CHECK(docs[1].name == "B");
  CHECK(docs[1].chomp);
  CHECK_FALSE(docs[1].expand);
}

}  // namespace
}  // namespace slipway::dockerfile
