#include "base/in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <deque>
#include <string>
#include <vector>

#include "base/fs.h"

namespace slipway {
namespace {

constexpr int kMaxSymlinks = 40;  // the kernel's own limit (MAXSYMLINKS)

long Openat2(int dirfd, const char* path, const open_how* how) {
  return syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

void SplitInto(std::string_view path, std::deque<std::string>& out, bool front) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  if (front) {
    out.insert(out.begin(), parts.begin(), parts.end());
  } else {
    out.insert(out.end(), parts.begin(), parts.end());
  }
}

Result<std::string> ReadLinkAt(int fd) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = readlinkat(fd, "", buf.data(), buf.size());
    if (n < 0) return ErrnoError("reading a symlink");
    if (static_cast<std::size_t>(n) < buf.size()) {
      buf.resize(n);
      return buf;
    }
    if (buf.size() >= 65536) return Error("symlink target too long", ENAMETOOLONG);
    buf.resize(buf.size() * 2);
  }
}

// The user-space walk. `dirs` is the chain of directories from the root down to the current one,
// so that ".." can step back without ever leaving the root.
Result<UniqueFd> OpenInRootUserspace(int root_fd, std::string_view path, int flags) {
  std::vector<UniqueFd> dirs;
  {
    int d = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) return ErrnoError("duplicating the root directory fd");
    dirs.emplace_back(d);
  }
  std::deque<std::string> todo;
  SplitInto(path, todo, false);
  int symlinks = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      if (dirs.size() > 1) dirs.pop_back();
      continue;
    }
    const bool last = todo.empty();
    int cur = dirs.back().get();
    // Look at the entry without following it.
    UniqueFd probe(openat(cur, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!probe.valid()) return ErrnoError("opening " + name);
    struct stat st;
    if (fstat(probe.get(), &st) != 0) return ErrnoError("inspecting " + name);
    if (S_ISLNK(st.st_mode)) {
      if (++symlinks > kMaxSymlinks) return Error("too many levels of symbolic links", ELOOP);
      SLIPWAY_ASSIGN_OR_RETURN(std::string target, ReadLinkAt(probe.get()));
      if (!target.empty() && target[0] == '/') dirs.resize(1);  // absolute: restart at the root
      SplitInto(target, todo, true);
      continue;
    }
    if (!last) {
      if (!S_ISDIR(st.st_mode)) return Error(name + " is not a directory", ENOTDIR);
      dirs.push_back(std::move(probe));
      continue;
    }
    // The last component: open it for real, still without following a symlink that may have
    // replaced it since the probe (then O_NOFOLLOW gives ELOOP rather than an escape).
    int fd = openat(cur, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError("opening " + name);
    return UniqueFd(fd);
  }
  // The path named a directory reached through "." / ".." / symlinks (or the root itself).
  int fd = openat(dirs.back().get(), ".", flags | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening directory");
  return UniqueFd(fd);
}

}  // namespace

Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags, InRootMode mode) {
  if (path.find('\0') != std::string_view::npos) {
    return Error("path contains a NUL byte", EINVAL);
  }
  if (mode != InRootMode::kUserspace) {
    open_how how{};
    how.flags = static_cast<unsigned>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    std::string p(path.empty() ? "." : path);
    long fd;
    do {
      fd = Openat2(root_fd, p.c_str(), &how);
    } while (fd < 0 && errno == EAGAIN);  // a concurrent rename; the kernel asks us to retry
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    // ENOSYS: kernel before 5.6. EPERM: a seccomp profile that does not know openat2.
    const bool unsupported = errno == ENOSYS || errno == EPERM;
    if (!unsupported || mode == InRootMode::kOpenat2) return ErrnoError("opening " + p);
  }
  return OpenInRootUserspace(root_fd, path, flags);
}

Result<std::string> ReadRegularFileInRoot(int root_fd, std::string_view path, std::size_t max_bytes,
                                          InRootMode mode) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; we refuse it right after.
  auto opened = OpenInRoot(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, mode);
  if (!opened.ok()) return std::move(opened).error();
  UniqueFd fd = std::move(opened).value();
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoError("inspecting file");
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                                              : "not a regular file";
    return Error(std::string("not a regular file (it is ") + kind + ")", EINVAL);
  }
  std::string data;
  // Read at most max_bytes + 1 so an oversized file is detected without reading all of it.
  const std::size_t want = max_bytes + 1;
  data.resize(std::min<std::size_t>(want, st.st_size > 0 ? st.st_size + 1 : 4096));
  std::size_t have = 0;
  for (;;) {
    if (have == data.size()) {
      if (data.size() >= want) break;
      data.resize(std::min(want, data.size() * 2));
    }
    ssize_t n = read(fd.get(), data.data() + have, data.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("reading file");
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  if (have > max_bytes) {
    return Error("file exceeds " + std::to_string(max_bytes) + " bytes", EFBIG);
  }
  data.resize(have);
  return data;
}

namespace {

Result<UniqueFd> MkdirAllInRootHops(int root_fd, std::string_view path, InRootMode mode, int hops) {
  if (hops > kMaxSymlinks) return Error("too many levels of symbolic links", ELOOP);
  auto opened = OpenInRoot(root_fd, path, O_PATH | O_DIRECTORY, mode);
  if (opened.ok() || opened.error().errno_value() != ENOENT) return opened;
  // Create the missing parent first, then this component, then open it again (in-root).
  std::string p(path);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  std::size_t slash = p.rfind('/');
  std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
  std::string leaf = slash == std::string::npos ? p : p.substr(slash + 1);
  if (leaf.empty() || leaf == "." || leaf == "..") return opened;
  SLIPWAY_ASSIGN_OR_RETURN(UniqueFd parent_fd, MkdirAllInRootHops(root_fd, parent, mode, hops));
  if (mkdirat(parent_fd.get(), leaf.c_str(), 0755) != 0) {
    if (errno != EEXIST) return ErrnoError("creating directory " + p);
    // A dangling symlink: create what it points to, resolved inside the root like any path.
    UniqueFd link(openat(parent_fd.get(), leaf.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (link.valid() && fstat(link.get(), &st) == 0 && S_ISLNK(st.st_mode)) {
      SLIPWAY_ASSIGN_OR_RETURN(std::string target, ReadLinkAt(link.get()));
      std::string next = !target.empty() && target[0] == '/' ? target : parent + "/" + target;
      return MkdirAllInRootHops(root_fd, next, mode, hops + 1);
    }
  }
  return OpenInRoot(root_fd, path, O_PATH | O_DIRECTORY, mode);
}

}  // namespace

Result<UniqueFd> MkdirAllInRoot(int root_fd, std::string_view path, InRootMode mode) {
  return MkdirAllInRootHops(root_fd, path, mode, 0);
}

namespace {

Result<void> RemoveChildren(int dir_fd, const std::function<bool(int, const std::string&)>* keep,
                            int depth) {
  if (depth > 4096) return Error("directory tree too deep to remove", ELOOP);
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> all, ListDirectory(dir_fd));
  std::vector<std::string> names;
  for (std::string& n : all) {
    if (!keep || !(*keep)(dir_fd, n)) names.push_back(std::move(n));
  }
  for (const std::string& n : names) {
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError("inspecting " + n);
    }
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoError("opening " + n);
      auto r = RemoveChildren(sub.get(), nullptr, depth + 1);
      if (!r.ok()) return std::move(r.error().AddContext(n));
      if (unlinkat(dir_fd, n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return ErrnoError("removing directory " + n);
      }
    } else if (unlinkat(dir_fd, n.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError("removing " + n);
    }
  }
  return Ok{};
}

}  // namespace

Result<std::string> HostPathInRoot(int root_fd, std::string_view path, InRootMode mode) {
  SLIPWAY_ASSIGN_OR_RETURN(UniqueFd dir, OpenInRoot(root_fd, path, O_PATH | O_DIRECTORY, mode));
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(dir.get());
  const ssize_t n = readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof(buf)) {
    return ErrnoError("naming the directory " + std::string(path));
  }
  return std::string(buf, static_cast<std::size_t>(n));
}

Result<void> RemoveAllAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok{};
    return ErrnoError("inspecting " + name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError("removing " + name);
    }
    return Ok{};
  }
  UniqueFd sub(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub.valid()) return ErrnoError("opening " + name);
  SLIPWAY_RETURN_IF_ERROR(RemoveChildren(sub.get(), nullptr, 0));
  if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoError("removing directory " + name);
  }
  return Ok{};
}

Result<void> RemoveChildrenAt(int dir_fd,
                              const std::function<bool(int, const std::string&)>& keep) {
  return RemoveChildren(dir_fd, &keep, 0);
}

}  // namespace slipway
