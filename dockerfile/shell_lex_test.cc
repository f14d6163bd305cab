#include "dockerfile/shell_lex.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace slipway::dockerfile {
namespace {

const Env kEnv = {{"PWD", "/home"},
                  {"SHELL", "bash"},
                  {"KOREAN", "한국어"},
                  {"space", "abc  def"},
                  {"empty", ""},
                  {"s", "S"},
                  {"path", "/usr/local/lib/x.tar.gz"}};

struct WordCase {
  const char* in;
  const char* out;
};

TEST_CASE("lex: ProcessWord expansion, quoting and escapes (checklist 28, 32-35)") {
  const WordCase cases[] = {
      // 28: $name, ${name}, positional and special parameters, literal $
      {"$PWD", "/home"},
      {"${PWD}", "/home"},
      {"he$1x", "hex"},
      {"a$@b", "ab"},
      {"$.", "$."},
      {"cost $", "cost $"},
      {"$KOREAN", "한국어"},
      {"${SHELL}x", "bashx"},
      {"$SHELLx", ""},  // the name runs on: $SHELLx is unset
      {"$unset", ""},
      // 32: quotes
      {"'$PWD'", "$PWD"},
      {"\"$PWD\"", "/home"},
      {"\"abc\\tdef\"", "abc\\tdef"},
      {"abc\\tdef", "abctdef"},
      {"\"a\\\"b\"", "a\"b"},
      {"\"a\\$PWD\"", "a$PWD"},
      {"\"a\\\\b\"", "a\\b"},
      {"'a\\b'", "a\\b"},
      {"trailing\\", "trailing"},
      {"mix'ed'\"quo\"tes", "mixedquotes"},
      // 33: escaped dollar
      {"\\$PWD", "$PWD"},
      {"\\${PWD}", "${PWD}"},
      // spaces kept by ProcessWord
      {"a  b", "a  b"},
      {"$space", "abc  def"},
  };
  ShellLex lex('\\');
  for (const WordCase& c : cases) {
    CAPTURE(std::string(c.in));
    auto r = lex.ProcessWord(c.in, kEnv);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(*r == c.out);
  }
}

TEST_CASE("lex: modifiers (checklist 30-31)") {
  const Env env = {
      {"set", "value"}, {"empty", ""}, {"path", "/usr/local/lib/x.tar.gz"}, {"star", "a*b*c"}};
  const WordCase cases[] = {
      {"${set:-w}", "value"},
      {"${empty:-w}", "w"},
      {"${unset:-w}", "w"},
      {"${set-w}", "value"},
      {"${empty-w}", ""},
      {"${unset-w}", "w"},
      {"${set:+w}", "w"},
      {"${empty:+w}", ""},
      {"${unset:+w}", ""},
      {"${set+w}", "w"},
      {"${empty+w}", "w"},
      {"${unset+w}", ""},
      {"${set:?boom}", "value"},
      {"${set?boom}", "value"},
      {"${empty?boom}", ""},
      {"${unset:-$set}", "value"},
      {"${unset:-${set:-x}y}", "valuey"},
      {"${unset:-a b}", "a b"},
      {"${unset:-'q w'}", "q w"},
      {"${path#*/}", "usr/local/lib/x.tar.gz"},
      {"${path##*/}", "x.tar.gz"},
      {"${path%.*}", "/usr/local/lib/x.tar"},
      {"${path%%.*}", "/usr/local/lib/x"},
      {"${path#nomatch}", "/usr/local/lib/x.tar.gz"},
      {"${path/l/L}", "/usr/Local/lib/x.tar.gz"},
      {"${path//l/L}", "/usr/LocaL/Lib/x.tar.gz"},
      {"${path/lo*/X}", "/usr/X"},
      {"${path/?/_}", "_usr/local/lib/x.tar.gz"},
      {"${path//[/X}", "/usr/local/lib/x.tar.gz"},  // no bracket expressions: '[' is literal
      {"${star/\\*/+}", "a+b*c"},
      {"${star//\\*/+}", "a+b+c"},
      {"${path/usr}", "//local/lib/x.tar.gz"},
      {"${unset#x}", ""},
      {"${1:-d}", "d"},
  };
  ShellLex lex('\\');
  for (const WordCase& c : cases) {
    CAPTURE(std::string(c.in));
    auto r = lex.ProcessWord(c.in, env);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(*r == c.out);
  }
}

TEST_CASE("lex: bad substitutions are errors (checklist 29-30)") {
  const WordCase cases[] = {
      {"${}", "bad substitution"},
      {"${:-x}", "bad substitution"},
      {"${{x}", "bad substitution"},
      {"${x", "syntax error: missing '}'"},
      {"${x:-abc", "syntax error: missing '}'"},
      {"${x:#a}", "unsupported modifier (:#) in substitution"},
      {"${x:%a}", "unsupported modifier (:%) in substitution"},
      {"${XXX:YYY}", "unsupported modifier (:Y) in substitution"},
      {"${x^}", "unsupported modifier (^) in substitution"},
      {"${unset:?boom}", "unset: boom"},
      {"${unset?}", "unset: is not allowed to be unset"},
      {"${empty:?}", "empty: is not allowed to be empty"},
      {"'open", "unexpected end of statement while looking for matching single-quote"},
      {"\"open", "unexpected end of statement while looking for matching double-quote"},
  };
  ShellLex lex('\\');
  for (const WordCase& c : cases) {
    CAPTURE(std::string(c.in));
    auto r = lex.ProcessWord(c.in, kEnv);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == c.out);
  }
}

TEST_CASE("lex: ProcessWords splits after expansion (checklist 34)") {
  struct Case {
    const char* in;
    std::vector<std::string> out;
  };
  const Case cases[] = {
      {"hello${space}bye", {"helloabc", "defbye"}},
      {"\"hello${space}bye\"", {"helloabc  defbye"}},
      {"a b  c", {"a", "b", "c"}},
      {"  lead", {"lead"}},
      {"$empty", {}},
      {"x $empty y", {"x", "y"}},
      {"''", {""}},
      {"a\\ b c", {"a b", "c"}},
      {"'a b' \"c d\"", {"a b", "c d"}},
  };
  ShellLex lex('\\');
  for (const Case& c : cases) {
    CAPTURE(std::string(c.in));
    auto r = lex.ProcessWords(c.in, kEnv);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(*r == c.out);
  }
}

TEST_CASE("lex: the backtick escape token works the same way") {
  ShellLex lex('`');
  CHECK(*lex.ProcessWord("a`$PWD", kEnv) == "a$PWD");
  CHECK(*lex.ProcessWord("c:\\windows", kEnv) == "c:\\windows");
  CHECK(*lex.ProcessWord("\"q`\"q\"", kEnv) == "q\"q");
}

TEST_CASE("lex: env keys are case-sensitive; unset plain references are reported") {
  ShellLex lex('\\');
  CHECK(*lex.ProcessWord("$pwd$PWD", kEnv) == "/home");
  CHECK(lex.unset_names() == std::set<std::string>{"pwd"});
  CHECK(*lex.ProcessWord("${nope:-x}${also}", kEnv) == "x");
  CHECK(lex.unset_names() == std::set<std::string>{"also"});
}

TEST_CASE("lex: raw and skip-unset modes keep the text for heredoc and flag detection") {
  ShellLex raw('\\');
  raw.set_raw(true);
  raw.set_skip_unset(true);
  auto w = raw.ProcessWords("cat <<\"EOF\" $X ${Y:-z} 'a b'", Env{});
  REQUIRE(w.ok());
  CHECK(*w == std::vector<std::string>{"cat", "<<\"EOF\"", "$X", "${Y:-z}", "'a b'"});
}

TEST_CASE("lex: deep nesting is refused instead of exhausting the stack") {
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "${a:-";
  deep += "x";
  for (int i = 0; i < 10000; ++i) deep += "}";
  ShellLex lex('\\');
  auto r = lex.ProcessWord(deep, Env{});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message() == "substitutions nested too deeply");
}

}  // namespace
}  // namespace slipway::dockerfile
