#include "base/in_root.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "base/test_util.h"

namespace slipway {
namespace {

using testing::TempDir;
using testing::WriteFile;

std::string ReadAll(int fd) {
  std::string s;
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) s.append(buf, n);
  return s;
}

// A root with an /etc/passwd of its own, and a "host" file outside it that every escape attempt
// aims at.
struct Fixture {
  TempDir tmp;
  std::string root = tmp.Join("root");
  UniqueFd root_fd;
  Fixture() {
    WriteFile(tmp.Join("host/etc/passwd"), "HOST\n");
    WriteFile(root + "/etc/passwd", "IMAGE\n");
    WriteFile(root + "/real/file", "REAL\n");
    testing::MakeDirs(root + "/a/b");
    root_fd.Reset(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(root_fd.valid());
  }
  void Link(const std::string& target, const std::string& rel) {
    testing::MakeDirs(std::string(root + "/" + rel).substr(0, (root + "/" + rel).rfind('/')));
    REQUIRE(symlink(target.c_str(), (root + "/" + rel).c_str()) == 0);
  }
};

const InRootMode kModes[] = {InRootMode::kAuto, InRootMode::kUserspace};

std::string Open(Fixture& f, const std::string& path, InRootMode mode, int* err = nullptr) {
  auto r = OpenInRoot(f.root_fd.get(), path, O_RDONLY, mode);
  if (!r.ok()) {
    if (err) *err = r.error().errno_value();
    return "<error>";
  }
  return ReadAll(r->get());
}

TEST_CASE("in_root: symlinks and .. resolve inside the root, never outside") {
  for (InRootMode mode : kModes) {
    CAPTURE(static_cast<int>(mode));
    Fixture f;
    const std::string host = f.tmp.Join("host/etc/passwd");
    f.Link(host, "abs_escape");  // absolute host path: read as in-root
    f.Link("../../../../../../host/etc/passwd", "a/rel_escape");
    f.Link("/etc/passwd", "a/b/abs_in_root");
    f.Link("../../real/file", "a/b/rel_ok");
    f.Link("/a/b", "dirlink");
    f.Link("/../../..", "a/up");

    // The host file does not exist under the root, so the escape attempts find nothing.
    int err = 0;
    CHECK(Open(f, "/abs_escape", mode, &err) == "<error>");
    CHECK(err == ENOENT);
    CHECK(Open(f, "a/rel_escape", mode, &err) == "<error>");
    CHECK(err == ENOENT);
    CHECK(Open(f, "/../../../../etc/passwd", mode) == "IMAGE\n");
    CHECK(Open(f, "/a/b/abs_in_root", mode) == "IMAGE\n");
    CHECK(Open(f, "/a/b/rel_ok", mode) == "REAL\n");
    CHECK(Open(f, "/dirlink/../../etc/passwd", mode) == "IMAGE\n");
    CHECK(Open(f, "/a/up/etc/passwd", mode) == "IMAGE\n");
    CHECK(Open(f, "etc//./passwd", mode) == "IMAGE\n");
  }
}

TEST_CASE("in_root: symlink loops and non-directories fail with ELOOP and ENOTDIR") {
  for (InRootMode mode : kModes) {
    CAPTURE(static_cast<int>(mode));
    Fixture f;
    f.Link("loop2", "loop1");
    f.Link("loop1", "loop2");
    int err = 0;
    CHECK(Open(f, "/loop1", mode, &err) == "<error>");
    CHECK(err == ELOOP);
    CHECK(Open(f, "/real/file/x", mode, &err) == "<error>");
    CHECK(err == ENOTDIR);
  }
}

TEST_CASE("in_root: a path with a NUL byte is refused") {
  Fixture f;
  auto r = OpenInRoot(f.root_fd.get(), std::string_view("etc\0passwd", 10), O_RDONLY);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().errno_value() == EINVAL);
}

TEST_CASE("in_root: ReadRegularFileInRoot refuses FIFOs, directories and oversized files") {
  for (InRootMode mode : kModes) {
    CAPTURE(static_cast<int>(mode));
    Fixture f;
    REQUIRE(mkfifo((f.root + "/fifo").c_str(), 0644) == 0);
    WriteFile(f.root + "/big", std::string(101, 'x'));
    WriteFile(f.root + "/exact", std::string(100, 'x'));

    auto fifo = ReadRegularFileInRoot(f.root_fd.get(), "/fifo", 100, mode);  // must not block
    REQUIRE_FALSE(fifo.ok());
    CHECK(fifo.error().message().find("a FIFO") != std::string::npos);

    auto dir = ReadRegularFileInRoot(f.root_fd.get(), "/a", 100, mode);
    REQUIRE_FALSE(dir.ok());
    CHECK(dir.error().message().find("a directory") != std::string::npos);

    auto big = ReadRegularFileInRoot(f.root_fd.get(), "/big", 100, mode);
    REQUIRE_FALSE(big.ok());
    CHECK(big.error().message() == "file exceeds 100 bytes");

    auto exact = ReadRegularFileInRoot(f.root_fd.get(), "/exact", 100, mode);
    REQUIRE(exact.ok());
    CHECK(exact->size() == 100);

    auto missing = ReadRegularFileInRoot(f.root_fd.get(), "/nope", 100, mode);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().errno_value() == ENOENT);
  }
}

TEST_CASE("in_root: MkdirAllInRoot creates missing directories inside the root only") {
  for (InRootMode mode : kModes) {
    CAPTURE(static_cast<int>(mode));
    Fixture f;
    f.Link(f.tmp.Join("host"), "escape");  // an absolute symlink to a host directory
    auto made = MkdirAllInRoot(f.root_fd.get(), "/escape/new/deeper", mode);
    REQUIRE_MESSAGE(made.ok(), made.error().ToString());
    CHECK(std::filesystem::is_directory(f.root + f.tmp.Join("host") + "/new/deeper"));
    CHECK_FALSE(std::filesystem::exists(f.tmp.Join("host/new")));
    CHECK(MkdirAllInRoot(f.root_fd.get(), "a/b", mode).ok());  // existing
    auto file = MkdirAllInRoot(f.root_fd.get(), "/real/file/sub", mode);
    REQUIRE_FALSE(file.ok());
    CHECK(file.error().errno_value() == ENOTDIR);
  }
}

TEST_CASE("in_root: RemoveAllAt never follows symlinks") {
  Fixture f;
  testing::WriteFile(f.tmp.Join("victim/keep"), "precious");
  testing::MakeDirs(f.root + "/tree/sub");
  testing::WriteFile(f.root + "/tree/sub/file", "x");
  f.Link(f.tmp.Join("victim"), "tree/link");  // a symlink to a directory outside the root
  REQUIRE(RemoveAllAt(f.root_fd.get(), "tree").ok());
  CHECK_FALSE(std::filesystem::exists(f.root + "/tree"));
  CHECK(testing::ReadFile(f.tmp.Join("victim/keep")) == "precious");
  CHECK(RemoveAllAt(f.root_fd.get(), "missing").ok());
  testing::WriteFile(f.root + "/dir/a", "1");
  testing::WriteFile(f.root + "/dir/b", "2");
  UniqueFd dir(open((f.root + "/dir").c_str(), O_RDONLY | O_DIRECTORY));
  REQUIRE(RemoveChildrenAt(dir.get(), [](int, const std::string& n) { return n == "b"; }).ok());
  CHECK_FALSE(std::filesystem::exists(f.root + "/dir/a"));
  CHECK(std::filesystem::exists(f.root + "/dir/b"));
}

}  // namespace
}  // namespace slipway
