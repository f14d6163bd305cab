// Extraction with real root: ownership, set-id bits surviving the chown, device nodes when
// allowed, and file capabilities.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "snapshot/extract.h"
#include "snapshot/tar_builder.h"

namespace slipway::snapshot {
namespace {

using testing::BuildTar;
using testing::File;
using testing::Symlink;
using testing::TarEntry;

TEST_CASE("extract (root): owners, then modes, set-id bits kept, devices, capabilities") {
  REQUIRE_MESSAGE(geteuid() == 0, "needs real root");
  slipway::testing::TempDir tmp;
  const std::string root = tmp.Join("root");
  slipway::testing::MakeDirs(root);
  UniqueFd root_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY));
  TarEntry suid = File("bin/su", "x", 06755);
  suid.uid = 1000;
  suid.gid = 2000;
  TarEntry link = Symlink("bin/link", "su");
  link.uid = 3000;
  link.gid = 3001;
  TarEntry null;
  null.name = "dev/null";
  null.type = TarEntry::kCharDevice;
  null.major = 1;
  null.minor = 3;
  null.mode = 0666;
  TarEntry cap = File("bin/ping", "p", 0755);
  // VFS_CAP_REVISION_2 with CAP_NET_RAW (13) permitted and effective.
  std::string capbytes(
      "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  cap.xattrs = {{"security.capability", capbytes}};
  const std::string layer = tmp.Join("layer.tar");
  slipway::testing::WriteFile(layer, BuildTar({suid, link, null, cap}));
  UniqueFd fd(open(layer.c_str(), O_RDONLY));
  ExtractOptions o;
  o.allow_devices = true;
  auto r = ExtractLayer(root_fd.get(), fd.get(), "layer", o);
  REQUIRE_MESSAGE(r.ok(), r.error().ToString());

  struct stat st;
  REQUIRE(lstat((root + "/bin/su").c_str(), &st) == 0);
  CHECK(st.st_uid == 1000);
  CHECK(st.st_gid == 2000);
  CHECK((st.st_mode & 07777) == 06755);  // chown cleared them; the mode set after restored them
  REQUIRE(lstat((root + "/bin/link").c_str(), &st) == 0);
  CHECK(st.st_uid == 3000);  // lchown: the link itself
  REQUIRE(lstat((root + "/dev/null").c_str(), &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
  CHECK(major(st.st_rdev) == 1);
  CHECK(minor(st.st_rdev) == 3);
  char buf[64];
  ssize_t n = getxattr((root + "/bin/ping").c_str(), "security.capability", buf, sizeof(buf));
  REQUIRE(n == 20);
  CHECK(std::string(buf, n) == capbytes);
}

}  // namespace
}  // namespace slipway::snapshot
