#include "userdb/database.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace slipway::userdb {
namespace {

TEST_CASE("userdb: ParseId accepts plain decimals in 0..2^31-1 only") {
  struct Case {
    const char* text;
    bool ok;
    std::uint32_t id;
  };
  const Case cases[] = {
      {"0", true, 0},
      {"1000", true, 1000},
      {"007", true, 7},
      {"2147483647", true, kMaxId},
      {"2147483648", false, 0},
      {"4294967295", false, 0},
      {"99999999999", false, 0},
      {"-1", false, 0},
      {"+5", false, 0},
      {"", false, 0},
      {" 5", false, 0},
      {"5 ", false, 0},
      {"1e3", false, 0},
      {"0x10", false, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::uint32_t id = 12345;
    CHECK(ParseId(c.text, &id) == c.ok);
    if (c.ok) CHECK(id == c.id);
  }
}

TEST_CASE("userdb: passwd blank and comment lines are skipped silently, CRLF tolerated") {
  Passwd pw = Passwd::Parse(
      "# comment\r\n"
      "\r\n"
      "   \t\n"
      "  # indented comment\n"
      "root:x:0:0:root:/root:/bin/sh\r\n"
      "  app:x:1000:1001:App:/home/app:/bin/sh  \n"
      "last:x:5:6::/:/bin/false");  // no final newline
  REQUIRE(pw.entries().size() == 3);
  CHECK(pw.warnings().empty());
  CHECK(pw.skipped_lines() == 0);
  const PasswdEntry* root = pw.FindByName("root");
  REQUIRE(root != nullptr);
  CHECK(root->shell == "/bin/sh");  // no stray \r
  CHECK(root->line == 5);
  const PasswdEntry* app = pw.FindByUid(1000);
  REQUIRE(app != nullptr);
  CHECK(app->name == "app");
  CHECK(app->gid == 1001);
  CHECK(app->home == "/home/app");
  CHECK(app->shell == "/bin/sh");
  CHECK(pw.FindByName("last")->line == 7);
}

TEST_CASE("userdb: malformed passwd lines are skipped with a warning, never aliased to 0") {
  Passwd pw = Passwd::Parse(
      "this is just some garbage data\n"
      "odd:x:111:112::/home/odd:::::\n"
      "short:x:1:1\n"
      "neg:x:-42:13::/:/bin/sh\n"
      "big:x:2147483648:1::/:/bin/sh\n"
      "badgid:x:5:abc::/:/bin/sh\n"
      ":x:9:9::/:/bin/sh\n"
      "good:x:1:2::/:/bin/sh\n",
      "/etc/passwd");
  REQUIRE(pw.entries().size() == 1);
  CHECK(pw.entries()[0].name == "good");
  CHECK(pw.skipped_lines() == 7);
  REQUIRE(pw.warnings().size() == 7);
  CHECK(pw.warnings()[0].ToString() ==
        "/etc/passwd:1: skipped: 1 fields, expected 7 (name:password:uid:gid:gecos:home:shell)");
  CHECK(pw.warnings()[1].line == 2);
  CHECK(pw.warnings()[1].reason.find("11 fields") == 0);
  CHECK(pw.warnings()[3].reason == "uid \"-42\" is not a decimal in 0..2147483647");
  CHECK(pw.warnings()[4].reason == "uid \"2147483648\" is not a decimal in 0..2147483647");
  CHECK(pw.warnings()[5].reason == "gid \"abc\" is not a decimal in 0..2147483647");
  CHECK(pw.warnings()[6].reason == "empty user name");
  CHECK(pw.FindByUid(0) == nullptr);  // nothing became root
}

TEST_CASE("userdb: first match wins for duplicate names and ids") {
  Passwd pw = Passwd::Parse(
      "dup:x:10:10::/first:/bin/sh\n"
      "dup:x:20:20::/second:/bin/sh\n"
      "other:x:10:30::/third:/bin/sh\n");
  CHECK(pw.FindByName("dup")->uid == 10);
  CHECK(pw.FindByUid(10)->home == "/first");
  Group gr = Group::Parse(
      "g:x:100:\n"
      "g:x:200:\n"
      "h:x:100:\n");
  CHECK(gr.FindByName("g")->gid == 100);
  CHECK(gr.FindByGid(100)->name == "g");
}

TEST_CASE("userdb: group members are compared exactly after trimming") {
  Group gr = Group::Parse(
      "a:x:1:bobby,alice\n"
      "b:x:2: bob , carol\n"
      "c:x:3:\n"
      "d:x:4:xbob,bobx,,\n");
  CHECK_FALSE(gr.FindByGid(1)->HasMember("bob"));
  CHECK(gr.FindByGid(1)->HasMember("bobby"));
  CHECK(gr.FindByGid(1)->HasMember("alice"));
  CHECK(gr.FindByGid(2)->HasMember("bob"));
  CHECK(gr.FindByGid(2)->HasMember("carol"));
  CHECK_FALSE(gr.FindByGid(3)->HasMember("bob"));
  CHECK_FALSE(gr.FindByGid(3)->HasMember(""));
  CHECK_FALSE(gr.FindByGid(4)->HasMember("bob"));
  CHECK_FALSE(gr.FindByGid(4)->HasMember(""));
}

TEST_CASE("userdb: malformed group lines are skipped with warnings") {
  Group gr = Group::Parse(
      "ok:x:1:a\n"
      "three:x:2\n"
      "five:x:3:a:b\n"
      "neg:x:-1:\n"
      "ok2:x:4:\n",
      "/etc/group");
  CHECK(gr.entries().size() == 2);
  REQUIRE(gr.warnings().size() == 3);
  CHECK(gr.warnings()[0].ToString() ==
        "/etc/group:2: skipped: 3 fields, expected 4 (name:password:gid:members)");
  CHECK(gr.warnings()[1].line == 3);
  CHECK(gr.warnings()[2].line == 4);
}

TEST_CASE("userdb: over-long lines and NUL bytes are skipped, the rest still parses") {
  std::string long_line = "x:x:1:" + std::string(kMaxGroupLineBytes, 'm') + "\n";
  std::string text = long_line + std::string("nul:x:2:a\0b\n", 12) + "fine:x:3:\n";
  Group gr = Group::Parse(text);
  REQUIRE(gr.entries().size() == 1);
  CHECK(gr.entries()[0].name == "fine");
  REQUIRE(gr.warnings().size() == 2);
  CHECK(gr.warnings()[0].reason.find("longer than the limit of 1048576") != std::string::npos);
  CHECK(gr.warnings()[1].reason == "line contains a NUL byte");

  std::string pw_text = "u:x:1:1::/:" + std::string(kMaxPasswdLineBytes, 's') + "\nv:x:2:2::/:\n";
  Passwd pw = Passwd::Parse(pw_text);
  REQUIRE(pw.entries().size() == 1);
  CHECK(pw.entries()[0].name == "v");
  CHECK(pw.skipped_lines() == 1);
}

TEST_CASE("userdb: warnings are capped in storage but every skipped line is counted") {
  std::string text;
  for (int i = 0; i < 250; ++i) text += "garbage\n";
  Passwd pw = Passwd::Parse(text);
  CHECK(pw.warnings().size() == kMaxStoredWarnings);
  CHECK(pw.skipped_lines() == 250);
}

TEST_CASE("userdb: random bytes never crash the parsers") {
  std::mt19937 rng(42);
  const char alphabet[] = "a:b:0:1:\n\r#,\0 9-x";
  for (int round = 0; round < 300; ++round) {
    std::string text(rng() % 4096, '\0');
    for (char& c : text) {
      c = (rng() % 4) ? alphabet[rng() % (sizeof(alphabet) - 1)] : static_cast<char>(rng());
    }
    Passwd pw = Passwd::Parse(text);
    Group gr = Group::Parse(text);
    // Every entry that survived satisfies the invariants.
    for (const PasswdEntry& e : pw.entries()) {
      CHECK_FALSE(e.name.empty());
      CHECK(e.uid <= kMaxId);
      CHECK(e.name.find(':') == std::string_view::npos);
    }
    for (const GroupEntry& e : gr.entries()) CHECK(e.gid <= kMaxId);
  }
}

TEST_CASE("userdb: entries stay valid after the database is moved") {
  Passwd pw = Passwd::Parse("root:x:0:0:root:/root:/bin/sh\n");
  Passwd moved = std::move(pw);
  Passwd again = Passwd::Parse("");
  again = std::move(moved);
  REQUIRE(again.entries().size() == 1);
  CHECK(again.entries()[0].home == "/root");
}

}  // namespace
}  // namespace slipway::userdb
