#include "executor/copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "base/fs.h"
#include "base/in_root.h"
#include "base/path.h"
#include "snapshot/extract.h"

namespace slipway::executor {
namespace {

std::string Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "/" + b;
}

std::string Parent(const std::string& rel) {
  std::size_t s = rel.rfind('/');
  return s == std::string::npos ? "" : rel.substr(0, s);
}

std::string Base(const std::string& rel) {
  std::size_t s = rel.rfind('/');
  return s == std::string::npos ? rel : rel.substr(s + 1);
}

// "/a/../b/" -> "b"; "" for the root.
std::string Relative(const std::string& p) {
  std::string c = CleanPath("/" + p);
  return c == "/" ? "" : c.substr(1);
}

std::vector<std::string> Split(const std::string& rel) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= rel.size() && !rel.empty()) {
    std::size_t s = rel.find('/', start);
    out.push_back(rel.substr(start, s == std::string::npos ? std::string::npos : s - start));
    if (s == std::string::npos) break;
    start = s + 1;
  }
  return out;
}

bool HasMeta(const std::string& s) { return s.find_first_of("*?[\\") != std::string::npos; }

struct FdStat {
  UniqueFd fd;
  struct stat st;
};

Result<FdStat> StatInRoot(int root_fd, const std::string& rel) {
  FdStat r;
  SLIPWAY_ASSIGN_OR_RETURN(r.fd, OpenInRoot(root_fd, rel.empty() ? "." : rel, O_PATH));
  if (fstat(r.fd.get(), &r.st) != 0) return ErrnoError("stat " + rel);
  return r;
}

Result<void> Glob(int root_fd, const std::vector<std::string>& comps, std::size_t i,
                  const std::string& prefix, std::vector<std::string>* out) {
  if (i == comps.size()) {
    out->push_back(prefix);
    return Ok{};
  }
  const std::string& comp = comps[i];
  if (comp != "**" && !HasMeta(comp)) {
    auto st = StatInRoot(root_fd, Join(prefix, comp));
    if (!st.ok()) {
      if (st.error().errno_value() == ENOENT || st.error().errno_value() == ENOTDIR) return Ok{};
      return std::move(st).error();
    }
    return Glob(root_fd, comps, i + 1, Join(prefix, comp), out);
  }
  auto dir = OpenInRoot(root_fd, prefix.empty() ? "." : prefix, O_RDONLY | O_DIRECTORY);
  if (!dir.ok()) {
    if (dir.error().errno_value() == ENOTDIR || dir.error().errno_value() == ENOENT) return Ok{};
    return std::move(dir).error();
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir->get()));
  std::sort(names.begin(), names.end());
  if (comp == "**") {
    SLIPWAY_RETURN_IF_ERROR(Glob(root_fd, comps, i + 1, prefix, out));
    for (const std::string& n : names) {
      struct stat st;
      if (fstatat(dir->get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        SLIPWAY_RETURN_IF_ERROR(Glob(root_fd, comps, i, Join(prefix, n), out));
      }
    }
    return Ok{};
  }
  for (const std::string& n : names) {
    if (MatchComponent(comp, n)) SLIPWAY_RETURN_IF_ERROR(Glob(root_fd, comps, i + 1, Join(prefix, n), out));
  }
  return Ok{};
}

bool KeepXattr(const char* n) {
  return std::strncmp(n, "user.", 5) == 0 || std::strcmp(n, "security.capability") == 0;
}

// Copies user.* and security.capability from one open file to another (both real fds).
void CopyXattrs(int from, int to, std::vector<std::string>* warnings, const std::string& path) {
  char names[8192];
  ssize_t n = flistxattr(from, names, sizeof(names));
  if (n <= 0) return;
  for (const char* p = names; p < names + n; p += std::strlen(p) + 1) {
    if (!KeepXattr(p)) continue;
    char value[8192];
    ssize_t v = fgetxattr(from, p, value, sizeof(value));
    if (v < 0 || fsetxattr(to, p, value, static_cast<std::size_t>(v), 0) != 0) {
      warnings->push_back("could not copy the xattr " + std::string(p) + " of " + path + ": " +
                          std::strerror(errno));
    }
  }
}

class Copier {
 public:
  explicit Copier(const CopyRequest& r) : r_(r) {}

  Result<CopyStats> Run() {
    if (!r_.excludes.empty()) {
      std::string text;
      for (const std::string& e : r_.excludes) text += e + "\n";
      SLIPWAY_ASSIGN_OR_RETURN(excludes_, dockerfile::Dockerignore::Parse(text, "--exclude"));
      has_excludes_ = true;
    }
    // Every source, matched.
    struct Match {
      std::string rel;    // in the source root
      std::string kept;   // --parents: the part kept under dest
    };
    std::vector<Match> matches;
    bool wildcard = false;
    for (const std::string& raw : r_.sources) {
      std::string pattern = raw;
      std::string pivot_prefix;  // --parents: the part before "/./"
      bool has_pivot = false;
      if (r_.parents) {
        std::size_t m = ("/" + pattern).find("/./");
        if (m != std::string::npos) {
          has_pivot = true;
          pivot_prefix = Relative(pattern.substr(0, m == 0 ? 0 : m - 1));
        }
      }
      const std::string rel = Relative(pattern);
      std::vector<std::string> found;
      if (HasMeta(rel) || rel.find("**") != std::string::npos) {
        wildcard = true;
        SLIPWAY_RETURN_IF_ERROR(Glob(r_.src_root_fd, Split(rel), 0, "", &found));
        std::sort(found.begin(), found.end());
        found.erase(std::unique(found.begin(), found.end()), found.end());
        found.erase(std::remove_if(found.begin(), found.end(),
                                   [&](const std::string& f) { return Ignored(f, f); }),
                    found.end());
        if (found.empty()) {
          return Error("no source files were specified: \"" + raw + "\" matches nothing" +
                           (r_.from_context ? " in the build context" : ""),
                       ENOENT);
        }
      } else {
        auto st = StatInRoot(r_.src_root_fd, rel);
        if (!st.ok() || (!rel.empty() && Ignored(rel, rel))) {
          return Error("\"" + raw + "\": not found" +
                           (r_.from_context
                                ? " in the build context (or excluded by .dockerignore)"
                                : ""),
                       ENOENT);
        }
        found.push_back(rel);
      }
      for (std::string& f : found) {
        Match m{f, ""};
        if (r_.parents) {
          if (has_pivot && (f == pivot_prefix || f.rfind(pivot_prefix + "/", 0) == 0 ||
                            pivot_prefix.empty())) {
            m.kept = pivot_prefix.empty() ? f : f.substr(std::min(f.size(), pivot_prefix.size() + 1));
          } else {
            m.kept = f;
          }
        }
        matches.push_back(std::move(m));
      }
    }
    const std::size_t count = matches.size() + r_.inline_files.size();
    const std::string dest_rel = Relative(r_.dest);
    bool dest_dir = r_.dest.empty() || r_.dest.back() == '/' || count > 1 || wildcard ||
                    r_.parents || dest_rel.empty();
    if (!dest_dir) {
      auto st = StatInRoot(r_.dst_root_fd, dest_rel);
      if (st.ok() && S_ISDIR(st->st.st_mode)) dest_dir = true;
    }
    const FileOwner parent_owner = r_.chown ? *r_.chown : FileOwner{};
    for (const Match& m : matches) {
      SLIPWAY_ASSIGN_OR_RETURN(FdStat src, StatInRoot(r_.src_root_fd, m.rel));
      const std::string shown = "/" + m.rel;
      if (S_ISDIR(src.st.st_mode)) {
        // The directory's contents go to dest (or dest/<kept> with --parents).
        const std::string target = r_.parents ? Join(dest_rel, m.kept) : dest_rel;
        SLIPWAY_ASSIGN_OR_RETURN(UniqueFd parent,
                                 MakeDirsInRoot(r_.dst_root_fd, Parent(target), parent_owner, r_.link));
        UniqueFd src_dir(openat(src.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!src_dir.valid()) return ErrnoError("opening " + shown);
        if (target.empty()) {
          UniqueFd root(openat(r_.dst_root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
          if (!root.valid()) return ErrnoError("opening the destination root");
          SLIPWAY_RETURN_IF_ERROR(CopyChildren(src_dir.get(), m.rel, "", root.get(), ""));
        } else {
          SLIPWAY_RETURN_IF_ERROR(CopyDir(src_dir.get(), src.st, m.rel, "", parent.get(),
                                          Base(target), target));
        }
        continue;
      }
      std::string target;
      if (r_.parents) {
        target = Join(dest_rel, m.kept);
      } else {
        target = dest_dir ? Join(dest_rel, Base(m.rel)) : dest_rel;
      }
      if (target.empty()) return Error("cannot copy the file " + shown + " onto /", EISDIR);
      if (r_.unpack_archives && S_ISREG(src.st.st_mode)) {
        SLIPWAY_ASSIGN_OR_RETURN(UniqueFd data, OpenInRoot(r_.src_root_fd, m.rel, O_RDONLY));
        if (LooksLikeArchive(data.get())) {
          SLIPWAY_RETURN_IF_ERROR(Unpack(data.get(), shown, dest_rel, parent_owner));
          continue;
        }
      }
      SLIPWAY_ASSIGN_OR_RETURN(UniqueFd parent,
                               MakeDirsInRoot(r_.dst_root_fd, Parent(target), parent_owner, r_.link));
      SLIPWAY_RETURN_IF_ERROR(
          CopyNonDir(src.fd.get(), "", src.st, m.rel, parent.get(), Base(target), target, true));
    }
    for (const InlineFile& f : r_.inline_files) {
      const std::string target = dest_dir ? Join(dest_rel, f.name) : dest_rel;
      SLIPWAY_ASSIGN_OR_RETURN(UniqueFd parent,
                               MakeDirsInRoot(r_.dst_root_fd, Parent(target), parent_owner, r_.link));
      SLIPWAY_RETURN_IF_ERROR(WriteInline(parent.get(), Base(target), target, f.content));
    }
    return std::move(stats_);
  }

 private:
  bool Ignored(const std::string& context_rel, const std::string& source_rel) const {
    if (r_.from_context && r_.ignore && r_.ignore->Excluded(context_rel)) return true;
    if (has_excludes_ &&
        (excludes_.Excluded(context_rel) || excludes_.Excluded(source_rel) ||
         excludes_.Excluded(Base(source_rel)))) {
      return true;
    }
    return false;
  }

  FileOwner OwnerOf(const struct stat& st) const {
    if (r_.chown) return *r_.chown;
    if (r_.from_context) return FileOwner{};
    return FileOwner{st.st_uid, st.st_gid};
  }

  Result<mode_t> ModeOf(const struct stat& st) const {
    const mode_t m = st.st_mode & 07777;
    if (r_.chmod.empty()) return m;
    return ApplyChmod(r_.chmod, m, S_ISDIR(st.st_mode));
  }

  // Makes room for `name` in `dir`: removes a non-directory; refuses to replace a directory by
  // a non-directory. Returns whether a directory is already there.
  Result<bool> Clear(int dir, const std::string& name, const std::string& shown, bool want_dir) {
    struct stat old;
    if (fstatat(dir, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return false;
      return ErrnoError("stat /" + shown);
    }
    if (S_ISDIR(old.st_mode)) {
      if (want_dir) return true;
      return Error("cannot replace the directory /" + shown + " with a file", EISDIR);
    }
    if (want_dir && !(S_ISLNK(old.st_mode) && r_.link)) {
      return Error("cannot replace the file /" + shown + " with a directory", ENOTDIR);
    }
    if (unlinkat(dir, name.c_str(), 0) != 0) return ErrnoError("replacing /" + shown);
    return false;
  }

  Result<void> Unpack(int data, const std::string& shown, const std::string& dest_rel,
                      const FileOwner& owner) {
    SLIPWAY_ASSIGN_OR_RETURN(UniqueFd dir,
                             MakeDirsInRoot(r_.dst_root_fd, dest_rel, owner, r_.link));
    UniqueFd real(openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!real.valid()) return ErrnoError("opening /" + dest_rel);
    snapshot::ExtractOptions o;
    o.allow_devices = r_.privileged;
    auto st = snapshot::ExtractLayer(real.get(), data, shown, o);
    if (!st.ok()) return std::move(st.error().AddContext("unpacking " + shown));
    for (const std::string& w : st->warnings) stats_.warnings.push_back(shown + ": " + w);
    ++stats_.archives;
    return Ok{};
  }

  Result<void> Finish(int fd, const std::string& shown, const FileOwner& o, mode_t mode,
                      const struct stat& st) {
    if (fchown(fd, o.uid, o.gid) != 0) {
      return ErrnoError("setting the owner of /" + shown + " to " + std::to_string(o.uid) + ":" +
                        std::to_string(o.gid));
    }
    if (fchmod(fd, mode) != 0) return ErrnoError("setting the mode of /" + shown);
    const struct timespec times[2] = {st.st_mtim, st.st_mtim};
    if (futimens(fd, times) != 0) return ErrnoError("setting the times of /" + shown);
    return Ok{};
  }

  // Copies a non-directory: src is (src_dir, src_name), or the O_PATH fd src_dir itself when
  // src_name is empty.
  Result<void> CopyNonDir(int src_dir, const std::string& src_name, const struct stat& st,
                          const std::string& src_rel, int dst_dir, const std::string& name,
                          const std::string& dst_rel, bool top) {
    (void)top;
    SLIPWAY_ASSIGN_OR_RETURN(bool is_dir, Clear(dst_dir, name, dst_rel, false));
    (void)is_dir;
    const FileOwner owner = OwnerOf(st);
    SLIPWAY_ASSIGN_OR_RETURN(mode_t mode, ModeOf(st));
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto it = links_.find({st.st_dev, st.st_ino});
      if (it != links_.end()) {
        SLIPWAY_ASSIGN_OR_RETURN(UniqueFd first_dir,
                                 OpenInRoot(r_.dst_root_fd, Parent(it->second).empty()
                                                                ? "."
                                                                : Parent(it->second),
                                            O_PATH | O_DIRECTORY));
        if (linkat(first_dir.get(), Base(it->second).c_str(), dst_dir, name.c_str(), 0) == 0) {
          ++stats_.hardlinks;
          return Ok{};
        }
        // Fall through to a copy when linking is not possible.
      }
      links_[{st.st_dev, st.st_ino}] = dst_rel;
    }
    if (S_ISREG(st.st_mode)) {
      UniqueFd in;
      if (src_name.empty()) {
        in.Reset(open(("/proc/self/fd/" + std::to_string(src_dir)).c_str(), O_RDONLY | O_CLOEXEC));
      } else {
        in.Reset(openat(src_dir, src_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      }
      if (!in.valid()) return ErrnoError("reading /" + src_rel);
      UniqueFd out(openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0600));
      if (!out.valid()) return ErrnoError("creating /" + dst_rel);
      std::uint64_t copied = 0;
      for (;;) {
        ssize_t n = copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
          char buf[1 << 16];
          for (;;) {
            ssize_t r = read(in.get(), buf, sizeof(buf));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return ErrnoError("reading /" + src_rel);
            if (r == 0) break;
            for (ssize_t off = 0; off < r;) {
              ssize_t w = write(out.get(), buf + off, static_cast<std::size_t>(r - off));
              if (w < 0 && errno == EINTR) continue;
              if (w < 0) return ErrnoError("writing /" + dst_rel);
              off += w;
            }
            copied += static_cast<std::uint64_t>(r);
          }
          break;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoError("copying /" + src_rel + " to /" + dst_rel);
        if (n == 0) break;
        copied += static_cast<std::uint64_t>(n);
      }
      CopyXattrs(in.get(), out.get(), &stats_.warnings, "/" + src_rel);
      SLIPWAY_RETURN_IF_ERROR(Finish(out.get(), dst_rel, owner, mode, st));
      ++stats_.files;
      stats_.bytes += copied;
      return Ok{};
    }
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX + 1];
      ssize_t n = src_name.empty() ? readlinkat(src_dir, "", target, PATH_MAX)
                                   : readlinkat(src_dir, src_name.c_str(), target, PATH_MAX);
      if (n < 0) return ErrnoError("reading the symlink /" + src_rel);
      target[n] = '\0';
      if (symlinkat(target, dst_dir, name.c_str()) != 0) return ErrnoError("creating /" + dst_rel);
      if (fchownat(dst_dir, name.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError("setting the owner of /" + dst_rel);
      }
      const struct timespec times[2] = {st.st_mtim, st.st_mtim};
      utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
      ++stats_.symlinks;
      return Ok{};
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      if (!r_.privileged) {
        stats_.warnings.push_back("skipped the special file /" + src_rel + " (no privilege)");
        return Ok{};
      }
      if (mknodat(dst_dir, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
        return ErrnoError("creating /" + dst_rel);
      }
      if (fchownat(dst_dir, name.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0 ||
          fchmodat(dst_dir, name.c_str(), mode, 0) != 0) {
        return ErrnoError("setting the owner and mode of /" + dst_rel);
      }
      return Ok{};
    }
    stats_.warnings.push_back("skipped the socket /" + src_rel);
    return Ok{};
  }

  Result<void> CopyDir(int src_dir, const struct stat& st, const std::string& src_rel,
                       const std::string& inner_rel, int dst_parent, const std::string& name,
                       const std::string& dst_rel) {
    UniqueFd dst;
    bool exists = false;
    struct stat existing;
    if (!r_.link && fstatat(dst_parent, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(existing.st_mode)) {
      // A symlink to a directory at the destination (/lib -> usr/lib) is followed inside the root.
      auto target = OpenInRoot(r_.dst_root_fd, dst_rel, O_RDONLY | O_DIRECTORY);
      if (target.ok()) {
        dst = std::move(target).value();
        exists = true;
      }
    }
    if (!dst.valid()) {
      SLIPWAY_ASSIGN_OR_RETURN(exists, Clear(dst_parent, name, dst_rel, true));
      if (!exists && mkdirat(dst_parent, name.c_str(), 0700) != 0) {
        return ErrnoError("creating /" + dst_rel);
      }
      dst.Reset(openat(dst_parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dst.valid()) return ErrnoError("opening /" + dst_rel);
    }
    SLIPWAY_RETURN_IF_ERROR(CopyChildren(src_dir, src_rel, inner_rel, dst.get(), dst_rel));
    if (!exists || r_.link) {
      SLIPWAY_ASSIGN_OR_RETURN(mode_t mode, ModeOf(st));
      CopyXattrs(src_dir, dst.get(), &stats_.warnings, "/" + src_rel);
      SLIPWAY_RETURN_IF_ERROR(Finish(dst.get(), dst_rel, OwnerOf(st), mode, st));
    }
    ++stats_.dirs;
    return Ok{};
  }

  Result<void> CopyChildren(int src_dir, const std::string& src_rel, const std::string& inner_rel,
                            int dst_dir, const std::string& dst_rel) {
    SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(src_dir));
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      const std::string child_src = Join(src_rel, n);
      const std::string child_inner = Join(inner_rel, n);
      const std::string child_dst = Join(dst_rel, n);
      struct stat st;
      if (fstatat(src_dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError("stat /" + child_src);
      }
      const bool ignored = Ignored(child_src, child_inner);
      if (S_ISDIR(st.st_mode)) {
        if (ignored && !(r_.ignore && r_.ignore->HasExceptions())) continue;
        UniqueFd sub(openat(src_dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.valid()) return ErrnoError("opening /" + child_src);
        // An excluded directory is entered only for what an exception brings back.
        if (ignored) {
          SLIPWAY_ASSIGN_OR_RETURN(bool wanted, HasIncluded(sub.get(), child_src, child_inner));
          if (!wanted) continue;
        }
        SLIPWAY_RETURN_IF_ERROR(CopyDir(sub.get(), st, child_src, child_inner, dst_dir, n, child_dst));
        continue;
      }
      if (ignored) continue;
      SLIPWAY_RETURN_IF_ERROR(CopyNonDir(src_dir, n, st, child_src, dst_dir, n, child_dst, false));
    }
    return Ok{};
  }

  // Whether anything under an excluded directory is brought back by an exception.
  Result<bool> HasIncluded(int dir, const std::string& src_rel, const std::string& inner_rel) {
    SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
    for (const std::string& n : names) {
      const std::string s = Join(src_rel, n), i = Join(inner_rel, n);
      struct stat st;
      if (fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (!Ignored(s, i)) return true;
      if (S_ISDIR(st.st_mode)) {
        UniqueFd sub(openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.valid()) continue;
        SLIPWAY_ASSIGN_OR_RETURN(bool found, HasIncluded(sub.get(), s, i));
        if (found) return true;
      }
    }
    return false;
  }

  Result<void> WriteInline(int dir, const std::string& name, const std::string& rel,
                           const std::string& content) {
    SLIPWAY_RETURN_IF_ERROR(Clear(dir, name, rel, false));
    UniqueFd out(openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) return ErrnoError("creating /" + rel);
    for (std::size_t off = 0; off < content.size();) {
      ssize_t w = write(out.get(), content.data() + off, content.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoError("writing /" + rel);
      off += static_cast<std::size_t>(w);
    }
    struct stat st;
    if (fstat(out.get(), &st) != 0) return ErrnoError("stat /" + rel);
    st.st_mode = S_IFREG | 0644;
    SLIPWAY_ASSIGN_OR_RETURN(mode_t mode, ModeOf(st));
    const FileOwner owner = r_.chown ? *r_.chown : FileOwner{};
    SLIPWAY_RETURN_IF_ERROR(Finish(out.get(), rel, owner, mode, st));
    ++stats_.files;
    stats_.bytes += content.size();
    return Ok{};
  }

  const CopyRequest& r_;
  CopyStats stats_;
  dockerfile::Dockerignore excludes_;
  bool has_excludes_ = false;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

bool MatchComponent(const std::string& pattern, const std::string& name) {
  return dockerfile::MatchGlobSegment(pattern, name);
}

Result<mode_t> ApplyChmod(const std::string& spec, mode_t mode, bool is_dir) {
  auto bad = [&] {
    return Error("invalid --chmod value \"" + spec + "\"", EINVAL);
  };
  if (!spec.empty() && spec.find_first_not_of("01234567") == std::string::npos) {
    if (spec.size() > 4) return bad();
    return static_cast<mode_t>(std::stoul(spec, nullptr, 8));
  }
  const mode_t original = mode;
  std::size_t i = 0;
  while (i <= spec.size()) {
    mode_t who = 0;
    while (i < spec.size() && std::string("ugoa").find(spec[i]) != std::string::npos) {
      switch (spec[i]) {
        case 'u': who |= 04700; break;
        case 'g': who |= 02070; break;
        case 'o': who |= 01007; break;
        default: who |= 07777; break;
      }
      ++i;
    }
    if (who == 0) who = 07777;
    if (i >= spec.size() || std::string("+-=").find(spec[i]) == std::string::npos) return bad();
    while (i < spec.size() && std::string("+-=").find(spec[i]) != std::string::npos) {
      const char op = spec[i++];
      mode_t bits = 0;
      while (i < spec.size() && std::string("rwxXst").find(spec[i]) != std::string::npos) {
        switch (spec[i]) {
          case 'r': bits |= 0444; break;
          case 'w': bits |= 0222; break;
          case 'x': bits |= 0111; break;
          case 'X':
            if (is_dir || (original & 0111)) bits |= 0111;
            break;
          case 's': bits |= 06000; break;
          case 't': bits |= 01000; break;
        }
        ++i;
      }
      bits &= who;
      if (op == '+') mode |= bits;
      if (op == '-') mode &= ~bits;
      if (op == '=') mode = (mode & ~(who & 07777)) | bits;
    }
    if (i == spec.size()) break;
    if (spec[i] != ',') return bad();
    ++i;
  }
  return static_cast<mode_t>(mode & 07777);
}

bool LooksLikeArchive(int fd) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  bool is_tar = false;
  if (lseek(fd, 0, SEEK_SET) == 0 && archive_read_open_fd(a.get(), fd, 1 << 16) == ARCHIVE_OK) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a.get(), &e);
    is_tar = r == ARCHIVE_OK || r == ARCHIVE_WARN || r == ARCHIVE_EOF;
    // An empty file is not an archive, even though libarchive may call it an empty one.
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == 0) is_tar = false;
  }
  lseek(fd, 0, SEEK_SET);
  return is_tar;
}

Result<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& rel_dir, const FileOwner& owner,
                                bool replace_symlinks) {
  UniqueFd cur(openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!cur.valid()) return ErrnoError("opening the destination root");
  std::string done;
  for (const std::string& c : Split(Relative(rel_dir))) {
    const std::string path = Join(done, c);
    struct stat st;
    if (fstatat(cur.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return ErrnoError("stat /" + path);
      if (mkdirat(cur.get(), c.c_str(), 0755) != 0) return ErrnoError("creating /" + path);
      if (fchownat(cur.get(), c.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError("setting the owner of /" + path);
      }
      if (fchmodat(cur.get(), c.c_str(), 0755, 0) != 0) return ErrnoError("chmod /" + path);
    } else if (S_ISLNK(st.st_mode)) {
      if (replace_symlinks) {
        if (unlinkat(cur.get(), c.c_str(), 0) != 0 || mkdirat(cur.get(), c.c_str(), 0755) != 0 ||
            fchownat(cur.get(), c.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) != 0) {
          return ErrnoError("replacing the symlink /" + path + " with a directory");
        }
      } else {
        // Follow it inside the root, then go on from wherever it led.
        auto next = MkdirAllInRoot(root_fd, path);
        if (!next.ok()) {
          return Error("cannot create /" + Relative(rel_dir) + ": /" + path +
                           " is a symlink that does not lead to a directory",
                       ENOTDIR);
        }
        cur = std::move(next).value();
        done = path;
        continue;
      }
    } else if (!S_ISDIR(st.st_mode)) {
      return Error("cannot create /" + Relative(rel_dir) + ": /" + path + " is not a directory",
                   ENOTDIR);
    }
    UniqueFd next(openat(cur.get(), c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return ErrnoError("opening /" + path);
    cur = std::move(next);
    done = path;
  }
  return cur;
}

Result<CopyStats> CopyFiles(const CopyRequest& request) {
  Copier c(request);
  return c.Run();
}

}  // namespace slipway::executor
