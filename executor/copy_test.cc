#include "executor/copy.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/test_util.h"
#include "base/unique_fd.h"

namespace slipway::executor {
namespace {

using testing::MakeDirs;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

struct Roots {
  TempDir tmp;
  std::string ctx = tmp.Join("ctx"), dst = tmp.Join("dst");
  UniqueFd ctx_fd, dst_fd;
  Roots() {
    MakeDirs(ctx);
    MakeDirs(dst);
    ctx_fd.Reset(open(ctx.c_str(), O_RDONLY | O_DIRECTORY));
    dst_fd.Reset(open(dst.c_str(), O_RDONLY | O_DIRECTORY));
  }
  CopyRequest Request(std::vector<std::string> sources, std::string dest) {
    CopyRequest r;
    r.src_root_fd = ctx_fd.get();
    r.dst_root_fd = dst_fd.get();
    r.sources = std::move(sources);
    r.dest = std::move(dest);
    r.privileged = false;
    return r;
  }
};

std::string Mode(const std::string& p) {
  struct stat st;
  REQUIRE(lstat(p.c_str(), &st) == 0);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%o", st.st_mode & 07777);
  return buf;
}

TEST_CASE("copy: Go filepath.Match per component") {
  CHECK(MatchComponent("*.txt", "a.txt"));
  CHECK(MatchComponent("*.txt", ".hidden.txt"));  // Go's * matches a leading dot
  CHECK_FALSE(MatchComponent("*.txt", "a.txt.bak"));
  CHECK(MatchComponent("a?c", "abc"));
  CHECK(MatchComponent("[a-c]x", "bx"));
  CHECK_FALSE(MatchComponent("[^a-c]x", "bx"));
  CHECK_FALSE(MatchComponent("[!a-c]x", "dx"));  // Go: '!' is a member, only '^' negates
  CHECK(MatchComponent("[!a-c]x", "!x"));
  CHECK(MatchComponent("[[]x", "[x"));
  CHECK(MatchComponent("\\*", "*"));
  CHECK_FALSE(MatchComponent("\\*", "a"));
  CHECK_FALSE(MatchComponent("[abc", "a"));  // malformed: never matches
}

TEST_CASE("copy: --chmod values, octal and symbolic") {
  CHECK(*ApplyChmod("0755", 0600, false) == 0755);
  CHECK(*ApplyChmod("4755", 0600, false) == 04755);
  CHECK(*ApplyChmod("u=rwX,go=rX", 0600, false) == 0644);
  CHECK(*ApplyChmod("u=rwX,go=rX", 0700, false) == 0755);
  CHECK(*ApplyChmod("u=rwX,go=rX", 0700, true) == 0755);
  CHECK(*ApplyChmod("+x", 0644, false) == 0755);
  CHECK(*ApplyChmod("go-w", 0666, false) == 0644);
  CHECK(*ApplyChmod("a=r", 0777, false) == 0444);
  CHECK(*ApplyChmod("u+s", 0755, false) == 04755);
  for (const char* bad : {"", "9", "07777777", "u", "u=q", "z+x", "u=r,,"}) {
    auto r = ApplyChmod(bad, 0644, false);
    CHECK_MESSAGE(!r.ok(), bad);
    if (!r.ok()) CHECK(r.error().message().find("invalid --chmod value") == 0);
  }
}

TEST_CASE("copy: files, directories' contents, wildcards and destinations") {
  Roots r;
  WriteFile(r.ctx + "/one.txt", "1", 0640);
  WriteFile(r.ctx + "/two.txt", "2");
  WriteFile(r.ctx + "/dir/a", "a");
  WriteFile(r.ctx + "/dir/sub/b", "b", 0600);
  chmod((r.ctx + "/dir/sub/b").c_str(), 0600);
  chmod((r.ctx + "/one.txt").c_str(), 0640);
  REQUIRE(symlink("a", (r.ctx + "/dir/link").c_str()) == 0);

  REQUIRE(CopyFiles(r.Request({"one.txt"}, "/file")).ok());
  CHECK(ReadFile(r.dst + "/file") == "1");
  CHECK(Mode(r.dst + "/file") == "640");
  REQUIRE(CopyFiles(r.Request({"/../dir/"}, "/d")).ok());  // clamped into the context
  CHECK(ReadFile(r.dst + "/d/sub/b") == "b");
  CHECK(Mode(r.dst + "/d/sub/b") == "600");
  char target[64] = {};
  CHECK(readlink((r.dst + "/d/link").c_str(), target, sizeof(target)) == 1);
  CHECK(std::string(target) == "a");
  auto stats = CopyFiles(r.Request({"*.txt"}, "/t/"));
  REQUIRE(stats.ok());
  CHECK(stats->files == 2);
  CHECK(ReadFile(r.dst + "/t/two.txt") == "2");
  // An existing directory is a directory destination even without the slash.
  REQUIRE(CopyFiles(r.Request({"one.txt"}, "/t")).ok());
  CHECK(std::filesystem::exists(r.dst + "/t/one.txt"));

  SUBCASE("errors name the source") {
    auto missing = CopyFiles(r.Request({"nope.txt"}, "/x"));
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message() == "\"nope.txt\": not found in the build context (or "
                                       "excluded by .dockerignore)");
    auto none = CopyFiles(r.Request({"*.md"}, "/x/"));
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().message().find("\"*.md\" matches nothing") != std::string::npos);
    // A file cannot replace a directory, nor a directory a file.
    MakeDirs(r.dst + "/isdir/inner");
    auto onto_dir = CopyFiles(r.Request({"dir/"}, "/isdir/"));
    CHECK(onto_dir.ok());
    WriteFile(r.dst + "/plain", "p");
    auto dir_onto_file = CopyFiles(r.Request({"dir"}, "/plain"));
    REQUIRE_FALSE(dir_onto_file.ok());
    CHECK(dir_onto_file.error().message() == "cannot replace the file /plain with a directory");
  }
}

TEST_CASE("copy: a context symlink never reads outside the context") {
  Roots r;
  WriteFile(r.tmp.Join("outside-secret"), "secret");
  REQUIRE(symlink("../outside-secret", (r.ctx + "/escape").c_str()) == 0);
  REQUIRE(symlink("/etc/passwd", (r.ctx + "/abs").c_str()) == 0);
  WriteFile(r.ctx + "/etc/passwd", "context's own passwd");
  // Named sources are resolved inside the context: ../outside-secret is clamped to /outside-secret,
  // which does not exist there; /etc/passwd means the context's own file.
  auto esc = CopyFiles(r.Request({"escape"}, "/e"));
  REQUIRE_FALSE(esc.ok());
  CHECK(esc.error().errno_value() == ENOENT);
  REQUIRE(CopyFiles(r.Request({"abs"}, "/a")).ok());
  CHECK(ReadFile(r.dst + "/a") == "context's own passwd");
  // Inside a copied tree symlinks are copied as symlinks.
  REQUIRE(CopyFiles(r.Request({"."}, "/all/")).ok());
  char target[64] = {};
  CHECK(readlink((r.dst + "/all/escape").c_str(), target, sizeof(target)) > 0);
  CHECK(std::string(target) == "../outside-secret");
}

TEST_CASE("copy: destinations resolve inside the stage root; --link replaces a symlinked parent") {
  Roots r;
  WriteFile(r.ctx + "/f", "data");
  const std::string host_dir = r.tmp.Join("host");
  MakeDirs(host_dir);
  // The image's /app is a symlink to an absolute path: it must stay inside the root.
  REQUIRE(symlink(host_dir.c_str(), (r.dst + "/app").c_str()) == 0);
  REQUIRE(CopyFiles(r.Request({"f"}, "/app/f")).ok());
  CHECK_FALSE(std::filesystem::exists(host_dir + "/f"));
  CHECK(ReadFile(r.dst + host_dir + "/f") == "data");
  // /usr/lib -> lib: COPY into it follows the image's link.
  MakeDirs(r.dst + "/usr/lib");
  REQUIRE(symlink("usr/lib", (r.dst + "/lib").c_str()) == 0);
  REQUIRE(CopyFiles(r.Request({"f"}, "/lib/g")).ok());
  CHECK(ReadFile(r.dst + "/usr/lib/g") == "data");
  // --link: the parent is a plain directory in the new layer.
  auto req = r.Request({"f"}, "/lib/h");
  req.link = true;
  REQUIRE(CopyFiles(req).ok());
  struct stat st;
  REQUIRE(lstat((r.dst + "/lib").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(ReadFile(r.dst + "/lib/h") == "data");
}

TEST_CASE("copy: .dockerignore, --exclude, --parents and heredoc files") {
  Roots r;
  WriteFile(r.ctx + "/keep.txt", "k");
  WriteFile(r.ctx + "/skip.log", "s");
  WriteFile(r.ctx + "/build/out", "o");
  WriteFile(r.ctx + "/build/keep.me", "m");
  WriteFile(r.ctx + "/a/b/c.txt", "c");
  WriteFile(r.ctx + "/a/x/c.txt", "x");
  auto ignore = dockerfile::Dockerignore::Parse("*.log\nbuild\n!build/keep.me\n", ".dockerignore");
  REQUIRE(ignore.ok());
  auto req = r.Request({"."}, "/app/");
  req.ignore = &*ignore;
  REQUIRE(CopyFiles(req).ok());
  CHECK(std::filesystem::exists(r.dst + "/app/keep.txt"));
  CHECK_FALSE(std::filesystem::exists(r.dst + "/app/skip.log"));
  CHECK_FALSE(std::filesystem::exists(r.dst + "/app/build/out"));
  CHECK(std::filesystem::exists(r.dst + "/app/build/keep.me"));
  auto ignored_source = r.Request({"skip.log"}, "/x");
  ignored_source.ignore = &*ignore;
  CHECK_FALSE(CopyFiles(ignored_source).ok());

  auto ex = r.Request({"a"}, "/ex/");
  ex.excludes = {"x"};
  REQUIRE(CopyFiles(ex).ok());
  CHECK(std::filesystem::exists(r.dst + "/ex/b/c.txt"));
  CHECK_FALSE(std::filesystem::exists(r.dst + "/ex/x"));

  auto parents = r.Request({"a/**/c.txt"}, "/p/");
  parents.parents = true;
  REQUIRE(CopyFiles(parents).ok());
  CHECK(ReadFile(r.dst + "/p/a/b/c.txt") == "c");
  CHECK(ReadFile(r.dst + "/p/a/x/c.txt") == "x");
  auto pivot = r.Request({"a/./b/c.txt"}, "/q/");
  pivot.parents = true;
  REQUIRE(CopyFiles(pivot).ok());
  CHECK(ReadFile(r.dst + "/q/b/c.txt") == "c");

  auto inl = r.Request({}, "/etc/app.conf");
  inl.inline_files = {{"CONF", "k=v\n"}};
  inl.chmod = "0600";
  REQUIRE(CopyFiles(inl).ok());
  CHECK(ReadFile(r.dst + "/etc/app.conf") == "k=v\n");
  CHECK(Mode(r.dst + "/etc/app.conf") == "600");
}

TEST_CASE("copy: ADD unpacks archives told by content, refuses ones that climb out") {
  Roots r;
  WriteFile(r.ctx + "/tree/x", "x");
  auto t = testing::Run({"/bin/tar", "-C", r.ctx, "-czf", r.ctx + "/t.bin", "tree"});
  REQUIRE(t.exit_code == 0);
  WriteFile(r.ctx + "/plain.txt", "not an archive");
  WriteFile(r.ctx + "/empty", "");
  {
    UniqueFd fd(open((r.ctx + "/t.bin").c_str(), O_RDONLY));
    CHECK(LooksLikeArchive(fd.get()));
    UniqueFd p(open((r.ctx + "/plain.txt").c_str(), O_RDONLY));
    CHECK_FALSE(LooksLikeArchive(p.get()));
    UniqueFd e(open((r.ctx + "/empty").c_str(), O_RDONLY));
    CHECK_FALSE(LooksLikeArchive(e.get()));
  }
  auto add = r.Request({"t.bin", "plain.txt"}, "/opt/");
  add.unpack_archives = true;
  auto st = CopyFiles(add);
  REQUIRE_MESSAGE(st.ok(), st.error().ToString());
  CHECK(st->archives == 1);
  CHECK(ReadFile(r.dst + "/opt/tree/x") == "x");
  CHECK(ReadFile(r.dst + "/opt/plain.txt") == "not an archive");
  // An archive whose entries climb out of the destination is refused, naming it.
  auto evil = testing::Run({"/bin/sh", "-c",
                            "cd " + r.ctx + " && tar -czf evil.tgz --absolute-names "
                                            "--transform 's|^tree|../../escaped|' tree"});
  REQUIRE(evil.exit_code == 0);
  auto bad = r.Request({"evil.tgz"}, "/opt/");
  bad.unpack_archives = true;
  auto e = CopyFiles(bad);
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message().find("unpacking /evil.tgz") == 0);
  CHECK_FALSE(std::filesystem::exists(r.tmp.Join("escaped")));
}

}  // namespace
}  // namespace slipway::executor
