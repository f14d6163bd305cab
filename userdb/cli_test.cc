#include <doctest/doctest.h>

#include <string>

#include "base/test_util.h"

namespace slipway {
namespace {

using testing::Run;

struct Image {
  testing::TempDir tmp;
  std::string root = tmp.Join("rootfs");
  std::string cli = testing::Runfile("userdb/slipway-id");
  Image() {
    testing::WriteFile(root + "/etc/passwd",
                       "root:x:0:0:root:/root:/bin/sh\n"
                       "foo:x:10000:10000::/home/foo:/bin/sh\n"
                       "broken line\n");
    testing::WriteFile(root + "/etc/group",
                       "root:x:0:\n"
                       "foo:x:10000:\n"
                       "zed:x:30000:foo\n"
                       "bar:x:20000:foo\n");
  }
};

TEST_CASE("slipway-id: prints the id line of a user, with warnings on stderr") {
  Image img;
  auto r = Run({img.cli, "--root", img.root, "foo"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "uid=10000(foo) gid=10000(foo) groups=10000(foo),20000(bar),30000(zed)\n");
  CHECK(r.err ==
        "slipway-id: warning: /etc/passwd:3: skipped: 1 fields, expected 7 "
        "(name:password:uid:gid:gecos:home:shell)\n");
}

TEST_CASE("slipway-id: numeric and group forms, --root= and --chown") {
  Image img;
  CHECK(Run({img.cli, "--root=" + img.root, "1001"}).out ==
        "uid=1001 gid=0(root) groups=0(root)\n");
  CHECK(Run({img.cli, "--root", img.root, "foo:bar"}).out ==
        "uid=10000(foo) gid=20000(bar) groups=20000(bar)\n");
  CHECK(Run({img.cli, "--root", img.root, "--chown", "1001"}).out == "1001:1001\n");
  CHECK(Run({img.cli, "--root", img.root, "--chown", "foo:zed"}).out == "10000:30000\n");
  CHECK(Run({img.cli, "--root", img.root, ""}).out == "uid=0(root) gid=0(root) groups=0(root)\n");
}

TEST_CASE("slipway-id: resolution errors go to stderr with exit status 1") {
  Image img;
  auto r = Run({img.cli, "--root", img.root, "nobody"});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err.find("slipway-id: USER \"nobody\": user \"nobody\" not found in /etc/passwd\n") !=
        std::string::npos);
  auto neg = Run({img.cli, "--root", img.root, "-1"});
  CHECK(neg.exit_code == 1);
  CHECK(neg.err.find("\"-1\": user \"-1\" is not an id in 0..2147483647") != std::string::npos);
  auto missing = Run({img.cli, "--root", img.tmp.Join("missing"), "0"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("opening root directory") != std::string::npos);
}

TEST_CASE("slipway-id: usage errors exit 2, --help exits 0") {
  Image img;
  auto help = Run({img.cli, "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("Usage: slipway-id --root DIR [--chown] SPEC") == 0);
  auto no_root = Run({img.cli, "foo"});
  CHECK(no_root.exit_code == 2);
  CHECK(no_root.err.find("--root is required") != std::string::npos);
  auto no_spec = Run({img.cli, "--root", img.root});
  CHECK(no_spec.exit_code == 2);
  CHECK(no_spec.err.find("SPEC is required") != std::string::npos);
  auto unknown = Run({img.cli, "--frobnicate", "--root", img.root, "x"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("unknown option --frobnicate") != std::string::npos);
  auto two = Run({img.cli, "--root", img.root, "a", "b"});
  CHECK(two.exit_code == 2);
}

}  // namespace
}  // namespace slipway
