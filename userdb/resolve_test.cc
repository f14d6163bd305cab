#include "userdb/resolve.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/test_util.h"

namespace slipway::userdb {
namespace {

using Groups = std::vector<std::uint32_t>;

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "adm:x:42:43:adm:/var/adm:/bin/false\n"
    "111:x:222:333::/var/garbage:/bin/sh\n"  // a user *named* 111
    "odd:x:111:112::/home/odd:/bin/sh\n"
    "foo:x:10000:10000::/home/foo:/bin/sh\n"
    "nohome:x:3000:3000:::/bin/sh\n"
    "bob:x:1500:1500::/home/bob:/bin/sh\n"
    "this is just some garbage data\n";

constexpr char kGroup[] =
    "root:x:0:root\n"
    "adm:x:43:\n"
    "foo:x:10000:\n"
    "bar:x:20000:foo,bobby\n"
    "baz:x:15000:alice, foo\n"
    "again:x:20000:foo\n"  // same gid as bar: deduplicated
    "444:x:555:111\n"
    "odd:x:444:odd\n"
    "garbage line\n";

Databases Db(const char* passwd = kPasswd, const char* group = kGroup) {
  Databases db;
  if (passwd) db.passwd = Passwd::Parse(passwd);
  if (group) db.group = Group::Parse(group);
  return db;
}

struct UserCase {
  const char* spec;
  std::uint32_t uid, gid;
  Groups groups;
  const char* home;
  const char* name;  // nullptr: no passwd entry
};

TEST_CASE("userdb: ResolveUser covers every spec form with Docker's semantics") {
  const UserCase cases[] = {
      // name: uid, primary gid, [gid] + memberships in file order, deduplicated
      {"foo", 10000, 10000, {10000, 20000, 15000}, "/home/foo", "foo"},
      {"root", 0, 0, {0}, "/root", "root"},
      {"", 0, 0, {0}, "/root", "root"},  // empty means root
      // numeric found by uid: that entry's gid and memberships
      {"10000", 10000, 10000, {10000, 20000, 15000}, "/home/foo", "foo"},
      // a numeric spec is only an id: "111" is odd (uid 111), not the user named "111"
      {"111", 111, 112, {112, 444}, "/home/odd", "odd"},
      // numeric absent: gid 0, groups [0], home "/"
      {"1001", 1001, 0, {0}, "/", nullptr},
      // name:group: only that group; memberships ignored
      {"foo:bar", 10000, 20000, {20000}, "/home/foo", "foo"},
      {"foo:0", 10000, 0, {0}, "/home/foo", "foo"},
      {"foo:777", 10000, 777, {777}, "/home/foo", "foo"},  // numeric gid need not exist
      {"1001:2002", 1001, 2002, {2002}, "/", nullptr},
      {"1001:adm", 1001, 43, {43}, "/", nullptr},
      {"root:adm", 0, 43, {43}, "/root", "root"},
      {":adm", 0, 43, {43}, "/root", "root"},
      {"foo:", 10000, 10000, {10000, 20000, 15000}, "/home/foo", "foo"},  // empty group: not given
      {"nohome", 3000, 3000, {3000}, "/", "nohome"},                      // empty home -> "/"
      {"bob", 1500, 1500, {1500}, "/home/bob", "bob"},                    // "bob" is not "bobby"
      {"0007", 7, 0, {0}, "/", nullptr},
  };
  Databases db = Db();
  for (const UserCase& c : cases) {
    CAPTURE(c.spec);
    auto r = ResolveUser(db, c.spec);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(r->uid == c.uid);
    CHECK(r->gid == c.gid);
    CHECK(r->groups == c.groups);
    CHECK(r->home == c.home);
    if (c.name) {
      CHECK(r->name == std::optional<std::string>(c.name));
    } else {
      CHECK_FALSE(r->name.has_value());
    }
  }
}

struct ErrorCase {
  const char* spec;
  const char* message;
};

TEST_CASE("userdb: ResolveUser errors name the spec, the missing name and the file") {
  const ErrorCase cases[] = {
      {"nobody", "USER \"nobody\": user \"nobody\" not found in /etc/passwd"},
      {"foo:nogroup", "USER \"foo:nogroup\": group \"nogroup\" not found in /etc/group"},
      {"-1", "\"-1\": user \"-1\" is not an id in 0..2147483647"},
      {"0:-3", "\"0:-3\": group \"-3\" is not an id in 0..2147483647"},
      {"2147483648", "\"2147483648\": user \"2147483648\" is not an id in 0..2147483647"},
      {"9223372036854775808",
       "\"9223372036854775808\": user \"9223372036854775808\" is not an id in 0..2147483647"},
      {"+5", "\"+5\": user \"+5\" is not an id in 0..2147483647"},
  };
  Databases db = Db();
  for (const ErrorCase& c : cases) {
    CAPTURE(c.spec);
    auto r = ResolveUser(db, c.spec);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == c.message);
  }
}

TEST_CASE("userdb: missing files are fine for numeric specs and errors for names") {
  Databases none = Db(nullptr, nullptr);
  auto numeric = ResolveUser(none, "1234:5678");
  REQUIRE(numeric.ok());
  CHECK(numeric->uid == 1234);
  CHECK(numeric->gid == 5678);
  CHECK(numeric->groups == Groups{5678});
  auto root = ResolveUser(none, "");
  REQUIRE(root.ok());
  CHECK(root->uid == 0);
  CHECK(root->gid == 0);
  CHECK(root->home == "/");

  auto name = ResolveUser(none, "foo");
  REQUIRE_FALSE(name.ok());
  CHECK(name.error().message() ==
        "USER \"foo\": user \"foo\" cannot be looked up: /etc/passwd does not exist in the image");
  auto group = ResolveUser(none, "1:staff");
  REQUIRE_FALSE(group.ok());
  CHECK(group.error().message() ==
        "USER \"1:staff\": group \"staff\" cannot be looked up: /etc/group does not exist in the "
        "image");

  // passwd present, group absent: the user resolves with only the primary group.
  Databases no_group = Db(kPasswd, nullptr);
  auto foo = ResolveUser(no_group, "foo");
  REQUIRE(foo.ok());
  CHECK(foo->groups == Groups{10000});
}

TEST_CASE("userdb: warnings from skipped lines travel with the identity") {
  auto r = ResolveUser(Db(), "foo");
  REQUIRE(r.ok());
  REQUIRE(r->warnings.size() == 2);
  CHECK(r->warnings[0] ==
        "/etc/passwd:8: skipped: 1 fields, expected 7 (name:password:uid:gid:gecos:home:shell)");
  CHECK(r->warnings[1] ==
        "/etc/group:9: skipped: 1 fields, expected 4 (name:password:gid:members)");
}

TEST_CASE("userdb: more groups than NGROUPS_MAX is an error, not a silent truncation") {
  std::string group;
  for (std::uint32_t g = 1; g <= kMaxGroups + 1; ++g) {
    group += "g" + std::to_string(g) + ":x:" + std::to_string(g + 100000) + ":foo\n";
  }
  Databases db = Db(kPasswd, group.c_str());
  auto r = ResolveUser(db, "foo");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message() ==
        "USER \"foo\": the user belongs to 65538 groups in /etc/group; the kernel allows at most "
        "65536");
  // Exactly at the limit is fine: drop the last two lines.
  group.resize(group.rfind('\n', group.size() - 2) + 1);
  group.resize(group.rfind('\n', group.size() - 2) + 1);
  Databases at_limit = Db(kPasswd, group.c_str());
  auto ok = ResolveUser(at_limit, "foo");
  REQUIRE(ok.ok());
  CHECK(ok->groups.size() == kMaxGroups);
}

struct ChownCase {
  const char* spec;
  std::uint32_t uid, gid;
};

TEST_CASE("userdb: ResolveChown follows COPY --chown semantics") {
  const ChownCase cases[] = {
      {"foo", 10000, 10000},      // name: uid and primary gid
      {"1001", 1001, 1001},       // bare number N: N:N
      {"10000", 10000, 10000},    // even when it exists
      {"111", 111, 111},          // numeric is never a name, and never looked up
      {"foo:bar", 10000, 20000},  // group overrides
      {"1001:adm", 1001, 43},    {"1001:55", 1001, 55}, {"adm:0", 42, 0},
  };
  Databases db = Db();
  for (const ChownCase& c : cases) {
    CAPTURE(c.spec);
    auto r = ResolveChown(db, c.spec);
    REQUIRE_MESSAGE(r.ok(), r.error().ToString());
    CHECK(r->uid == c.uid);
    CHECK(r->gid == c.gid);
  }
  const ErrorCase errors[] = {
      {"nobody", "--chown \"nobody\": user \"nobody\" not found in /etc/passwd"},
      {"foo:nogroup", "--chown \"foo:nogroup\": group \"nogroup\" not found in /etc/group"},
      {"", "--chown \"\": the user part is empty"},
      {":adm", "--chown \":adm\": the user part is empty"},
      {"-5", "\"-5\": user \"-5\" is not an id in 0..2147483647"},
  };
  for (const ErrorCase& c : errors) {
    CAPTURE(c.spec);
    auto r = ResolveChown(db, c.spec);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message() == c.message);
  }
  auto missing = ResolveChown(Db(nullptr, nullptr), "foo");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find("/etc/passwd does not exist") != std::string::npos);
  auto numeric = ResolveChown(Db(nullptr, nullptr), "5:6");
  REQUIRE(numeric.ok());
  CHECK(numeric->gid == 6);
}

// ---- Files read from a root directory --------------------------------------------------------

struct Root {
  testing::TempDir tmp;
  std::string root = tmp.Join("rootfs");
  Root() { testing::MakeDirs(root + "/etc"); }
};

TEST_CASE("userdb: ResolveUser(root) reads the image's files inside the root") {
  Root r;
  testing::WriteFile(r.root + "/etc/passwd", kPasswd);
  testing::WriteFile(r.root + "/etc/group", kGroup);
  auto id = ResolveUser(r.root, "foo");
  REQUIRE_MESSAGE(id.ok(), id.error().ToString());
  CHECK(id->groups == Groups{10000, 20000, 15000});
  auto chown = ResolveChown(r.root, "foo:bar");
  REQUIRE(chown.ok());
  CHECK(chown->gid == 20000);
}

TEST_CASE("userdb: an absolute or ../ symlink in the image resolves inside the root") {
  Root r;
  // The "host" files, outside the root, name a user the image does not have.
  testing::WriteFile(r.tmp.Join("host/etc/passwd"), "hostonly:x:4242:4242::/:/bin/sh\n");
  testing::WriteFile(r.tmp.Join("host/etc/group"), "hostgrp:x:4243:hostonly\n");
  testing::WriteFile(r.root + "/srv/passwd", "imageuser:x:5000:5000::/home/i:/bin/sh\n");
  testing::WriteFile(r.root + "/srv/group", "imagegrp:x:5001:imageuser\n");
  SUBCASE("absolute symlink to the host path") {
    REQUIRE(symlink(r.tmp.Join("host/etc/passwd").c_str(), (r.root + "/etc/passwd").c_str()) == 0);
    REQUIRE(symlink("/../../../../../srv/group", (r.root + "/etc/group").c_str()) == 0);
    auto host = ResolveUser(r.root, "hostonly");
    REQUIRE_FALSE(host.ok());  // the host's passwd is never read
    // The absolute target does not exist inside the root: "no such file" means no passwd at all.
    CHECK(host.error().message().find("/etc/passwd does not exist in the image") !=
          std::string::npos);
    auto g = ResolveUser(r.root, "1:imagegrp");
    REQUIRE(g.ok());
    CHECK(g->gid == 5001);
  }
  SUBCASE("relative ../ escape") {
    REQUIRE(symlink("../../../../../../../host/etc/passwd", (r.root + "/etc/passwd").c_str()) == 0);
    auto host = ResolveUser(r.root, "hostonly");
    REQUIRE_FALSE(host.ok());
  }
  SUBCASE("symlink to an in-root file is followed") {
    REQUIRE(symlink("../srv/passwd", (r.root + "/etc/passwd").c_str()) == 0);
    REQUIRE(symlink("/srv/group", (r.root + "/etc/group").c_str()) == 0);
    auto id = ResolveUser(r.root, "imageuser");
    REQUIRE_MESSAGE(id.ok(), id.error().ToString());
    CHECK(id->groups == Groups{5000, 5001});
  }
}

TEST_CASE("userdb: files that are not regular files, or too big, give clear errors") {
  Root r;
  SUBCASE("FIFO") {
    REQUIRE(mkfifo((r.root + "/etc/passwd").c_str(), 0644) == 0);
    auto id = ResolveUser(r.root, "0");
    REQUIRE_FALSE(id.ok());
    CHECK(id.error().message() ==
          "in root " + r.root + ": reading /etc/passwd: not a regular file (it is a FIFO)");
  }
  SUBCASE("directory") {
    testing::MakeDirs(r.root + "/etc/group");
    auto id = ResolveUser(r.root, "0");
    REQUIRE_FALSE(id.ok());
    CHECK(id.error().message() ==
          "in root " + r.root + ": reading /etc/group: not a regular file (it is a directory)");
  }
  SUBCASE("10 MiB + 1") {
    testing::WriteFile(r.root + "/etc/group", std::string(kMaxFileBytes + 1, '#'));
    auto id = ResolveUser(r.root, "0");
    REQUIRE_FALSE(id.ok());
    CHECK(id.error().message() ==
          "in root " + r.root + ": reading /etc/group: file exceeds 10485760 bytes");
  }
  SUBCASE("exactly 10 MiB is accepted") {
    std::string text = "root:x:0:0::/root:/bin/sh\n";
    text += std::string(kMaxFileBytes - text.size(), '#');
    testing::WriteFile(r.root + "/etc/passwd", text);
    auto id = ResolveUser(r.root, "root");
    REQUIRE_MESSAGE(id.ok(), id.error().ToString());
    CHECK(id->home == "/root");
    CHECK(id->warnings.size() == 1);  // the 10 MiB '#' line is longer than the line cap
  }
  SUBCASE("random bytes") {
    std::string junk(1 << 16, '\0');
    for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919) % 251);
    testing::WriteFile(r.root + "/etc/passwd", junk);
    testing::WriteFile(r.root + "/etc/group", junk);
    auto id = ResolveUser(r.root, "1000");
    REQUIRE(id.ok());
    CHECK(id->gid == 0);
    auto name = ResolveUser(r.root, "foo");
    CHECK_FALSE(name.ok());
  }
  SUBCASE("missing root") {
    auto id = ResolveUser(r.tmp.Join("nope"), "0");
    REQUIRE_FALSE(id.ok());
    CHECK(id.error().ToString() ==
          "opening root directory " + r.tmp.Join("nope") + ": No such file or directory");
  }
}

}  // namespace
}  // namespace slipway::userdb
