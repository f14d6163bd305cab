#include "userdb/id_format.h"

#include <doctest/doctest.h>

namespace slipway::userdb {
namespace {

TEST_CASE("userdb: FormatIdLine prints like id, primary first then ascending, bare unknown ids") {
  Databases db;
  db.passwd = Passwd::Parse(
      "foo:x:10000:10000::/home/foo:/bin/sh\n"
      "nogrp:x:3000:3333::/:/bin/sh\n");
  db.group = Group::Parse(
      "foo:x:10000:\n"
      "zed:x:30000:foo\n"
      "bar:x:20000:foo\n"
      "root:x:0:\n");
  struct Case {
    const char* spec;
    const char* line;
  };
  const Case cases[] = {
      {"foo", "uid=10000(foo) gid=10000(foo) groups=10000(foo),20000(bar),30000(zed)"},
      {"foo:bar", "uid=10000(foo) gid=20000(bar) groups=20000(bar)"},
      {"1001", "uid=1001 gid=0(root) groups=0(root)"},
      {"nogrp", "uid=3000(nogrp) gid=3333 groups=3333"},
      {"foo:5", "uid=10000(foo) gid=5 groups=5"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.spec);
    auto id = ResolveUser(db, c.spec);
    REQUIRE(id.ok());
    CHECK(FormatIdLine(db, *id) == c.line);
  }
}

}  // namespace
}  // namespace slipway::userdb
