#include "snapshot/change_matrix.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>

#include "base/test_util.h"
#include "base/unique_fd.h"
#include "snapshot/walk.h"

namespace slipway::snapshot::testing {

namespace fs = std::filesystem;
using slipway::testing::MakeDirs;
using slipway::testing::ReadFile;
using slipway::testing::WriteFile;
using E = LayerEntry;

// What must match between the changed tree and the extracted copy.
std::map<std::string, std::string> Describe(const std::string& root, bool with_times) {
  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY));
  REQUIRE(fd.valid());
  auto m = Manifest::Scan(fd.get());
  REQUIRE(m.ok());
  std::map<std::string, std::string> out;
  for (const auto& [path, meta] : m->entries()) {
    if (path.empty()) continue;
    std::string d = std::to_string(meta.mode) + " " + std::to_string(meta.uid) + ":" +
                    std::to_string(meta.gid) +
                    (with_times ? " t=" + std::to_string(meta.mtime_ns / 1000000000) : "") +
                    " s=" + std::to_string(meta.size) + " r=" + std::to_string(meta.rdev);
    const std::string full = root + "/" + std::string(path);
    if (S_ISREG(meta.mode)) d += " c=" + ReadFile(full);
    if (S_ISLNK(meta.mode)) d += " l=" + fs::read_symlink(full).string();
    char names[1024];
    ssize_t n = llistxattr(full.c_str(), names, sizeof(names));
    for (ssize_t i = 0; i < n;) {
      std::string xn(names + i);
      i += static_cast<ssize_t>(xn.size()) + 1;
      if (xn.rfind("trusted.overlay.", 0) == 0 || xn.rfind("user.overlay.", 0) == 0) continue;
      char value[256];
      ssize_t v = lgetxattr(full.c_str(), xn.c_str(), value, sizeof(value));
      d += " x:" + xn + "=" + std::string(value, v > 0 ? v : 0);
    }
    out[std::string(path)] = d;
  }
  return out;
}

void SetMtime(const std::string& p, long sec) {
  timespec t[2] = {{sec, 0}, {sec, 0}};
  REQUIRE(utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW) == 0);
}

void Base(const std::string& r) {
  MakeDirs(r + "/etc");
  WriteFile(r + "/etc/conf", "a=1\n");
  MakeDirs(r + "/usr/lib/deep/er");
  WriteFile(r + "/usr/lib/deep/er/f", "deep");
  WriteFile(r + "/usr/lib/keep", "keep");
  fs::create_symlink("usr/lib", r + "/lib");
  MakeDirs(r + "/empty");
  for (const char* p : {"/etc/conf", "/usr/lib/deep/er/f", "/usr/lib/keep"})
    SetMtime(r + p, 1600000000);
}

const std::vector<Case>& ChangeMatrix() {
  static const std::vector<Case>* matrix = [] {
    auto* cases = new std::vector<Case>{
        {"create a file in a new directory",
         Base,
         [](const std::string& r) { WriteFile(r + "/opt/app/bin", "new"); },
         {{E::kPath, "opt"}, {E::kPath, "opt/app"}, {E::kPath, "opt/app/bin"}}},
        {"modify in place with the mtime put back",
         Base,
         [](const std::string& r) {
           WriteFile(r + "/etc/conf", "a=2\n");
           SetMtime(r + "/etc/conf", 1600000000);
         },
         {{E::kPath, "etc"}, {E::kPath, "etc/conf"}}},
        {"chmod",
         Base,
         [](const std::string& r) { chmod((r + "/usr/lib/keep").c_str(), 0600); },
         {}},
        {"chown (where this process may give files away)",
         Base,
         [](const std::string& r) {
           // In an unprivileged namespace the call fails and the case checks "no change" instead.
           if (lchown((r + "/etc/conf").c_str(), 1234, 1234) != 0) return;
           if (lchown((r + "/lib").c_str(), 1234, 1234) != 0) return;
         },
         {}},
        {"delete a file",
         Base,
         [](const std::string& r) { fs::remove(r + "/etc/conf"); },
         {{E::kPath, "etc"}, {E::kWhiteout, "etc/conf"}}},
        {"delete a tree: one whiteout at the top",
         Base,
         [](const std::string& r) { fs::remove_all(r + "/usr/lib/deep"); },
         {{E::kPath, "usr"}, {E::kPath, "usr/lib"}, {E::kWhiteout, "usr/lib/deep"}}},
        {"delete and recreate a directory: opaque",
         Base,
         [](const std::string& r) {
           fs::remove_all(r + "/usr/lib");
           WriteFile(r + "/usr/lib/fresh", "f");
         },
         // An opaque marker when the new directory has a new inode, or whiteouts for each old child
         // when the filesystem reused the inode: either extracts to the same tree (checked below).
         {},
         /*inode_dependent=*/true},
        {"delete and recreate a directory, inode kept busy: opaque",
         Base,
         [](const std::string& r) {
           // Hold the old directory open so its inode cannot be reused by the new one.
           static int hold = -1;
           hold = open((r + "/usr/lib").c_str(), O_RDONLY | O_DIRECTORY);
           fs::remove_all(r + "/usr/lib");
           WriteFile(r + "/usr/lib/fresh", "f");
           close(hold);
         },
         {{E::kPath, "usr"},
          {E::kPath, "usr/lib"},
          {E::kOpaque, "usr/lib"},
          {E::kPath, "usr/lib/fresh"}}},
        {"replace a directory with a file",
         Base,
         [](const std::string& r) {
           fs::remove_all(r + "/usr/lib/deep");
           WriteFile(r + "/usr/lib/deep", "now a file");
         },
         {}},
        {"replace a file with a directory",
         Base,
         [](const std::string& r) {
           fs::remove(r + "/etc/conf");
           WriteFile(r + "/etc/conf/inner", "x");
         },
         {}},
        {"replace a file with a symlink and a symlink with a file",
         Base,
         [](const std::string& r) {
           fs::remove(r + "/usr/lib/keep");
           fs::create_symlink("/etc/conf", r + "/usr/lib/keep");
           fs::remove(r + "/lib");
           WriteFile(r + "/lib", "was a link");
         },
         {}},
        {"replace a directory with a symlink and back",
         Base,
         [](const std::string& r) {
           fs::remove_all(r + "/empty");
           fs::create_symlink("etc", r + "/empty");
         },
         {}},
        {"new hardlinks inside the layer",
         Base,
         [](const std::string& r) {
           WriteFile(r + "/h1", "shared");
           REQUIRE(link((r + "/h1").c_str(), (r + "/h2").c_str()) == 0);
         },
         {{E::kPath, "h1"}, {E::kPath, "h2"}}},
        {"a hardlink to an unchanged file",
         Base,
         [](const std::string& r) {
           REQUIRE(link((r + "/usr/lib/keep").c_str(), (r + "/keep-link").c_str()) == 0);
         },
         {}},
        {"xattrs",
         Base,
         [](const std::string& r) {
           if (setxattr((r + "/etc/conf").c_str(), "user.note", "v", 1, 0) != 0) {
             MESSAGE("no user xattrs on this filesystem");
           }
         },
         {}},
        {"empty directories and a FIFO",
         Base,
         [](const std::string& r) {
           MakeDirs(r + "/var/empty/too");
           REQUIRE(mkfifo((r + "/var/fifo").c_str(), 0640) == 0);
           // A device node where this process may make one (real root).
           mknod((r + "/var/null").c_str(), S_IFCHR | 0666, makedev(1, 3));
         },
         {}},
        {"nothing changed", Base, [](const std::string&) {}, {}},

    };
    return cases;
  }();
  return *matrix;
}

}  // namespace slipway::snapshot::testing
