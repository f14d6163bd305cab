#include "snapshot/walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "base/unique_fd.h"

namespace slipway::snapshot {
namespace {

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

std::string Parent(const std::string& p) {
  std::size_t s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}

FileMeta MetaOf(const struct stat& st) {
  FileMeta m;
  m.mode = st.st_mode;
  m.dev = st.st_dev;
  m.ino = st.st_ino;
  m.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  m.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  m.size = S_ISDIR(st.st_mode) ? 0 : static_cast<std::uint64_t>(st.st_size);
  m.uid = st.st_uid;
  m.gid = st.st_gid;
  m.rdev = st.st_rdev;
  return m;
}

Result<void> ScanDir(int dir_fd, const std::string& rel,
                     const std::function<bool(const std::string&)>& skip,
                     std::unordered_map<std::string, FileMeta>& out, int depth) {
  if (depth > 4096) return Error("directory tree deeper than 4096 levels at " + rel, ELOOP);
  int listing = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (listing < 0) return ErrnoError("listing " + (rel.empty() ? "/" : rel));
  DIR* d = fdopendir(listing);
  if (!d) {
    close(listing);
    return ErrnoError("listing " + rel);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  closedir(d);
  for (const std::string& n : names) {
    const std::string path = Join(rel, n);
    if (skip && skip(path)) continue;
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError("inspecting " + path);
    }
    out.emplace(path, MetaOf(st));
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoError("opening " + path);
      SLIPWAY_RETURN_IF_ERROR(ScanDir(sub.get(), path, skip, out, depth + 1));
    }
  }
  return Ok{};
}

bool SameType(const FileMeta& a, const FileMeta& b) {
  return (a.mode & S_IFMT) == (b.mode & S_IFMT);
}

}  // namespace

Result<Manifest> Manifest::Scan(int root_fd, const std::function<bool(const std::string&)>& skip) {
  Manifest m;
  struct stat st;
  if (fstat(root_fd, &st) != 0) return ErrnoError("inspecting the root");
  m.entries_.emplace("", MetaOf(st));
  SLIPWAY_RETURN_IF_ERROR(ScanDir(root_fd, "", skip, m.entries_, 0));
  return m;
}

std::vector<LayerEntry> Diff(const Manifest& before, const Manifest& after) {
  const auto& b = before.entries();
  const auto& a = after.entries();
  std::set<std::string> add;       // paths written from the filesystem
  std::set<std::string> opaque;    // directories deleted and made again
  std::set<std::string> replaced;  // paths whose old subtree is gone (type change or opaque)
  for (const auto& [path, meta] : a) {
    if (path.empty()) continue;
    auto it = b.find(path);
    if (it == b.end()) {
      add.insert(path);
      continue;
    }
    const FileMeta& old = it->second;
    if (!SameType(old, meta)) {
      add.insert(path);
      if (S_ISDIR(old.mode)) replaced.insert(path);
      continue;
    }
    if (S_ISDIR(meta.mode) && (old.ino != meta.ino || old.dev != meta.dev)) {
      add.insert(path);
      opaque.insert(path);
      replaced.insert(path);
      continue;
    }
    if (!(old == meta)) add.insert(path);
  }
  // Parents of everything written come first, as directories of the layer.
  std::set<std::string> parents;
  for (const std::string& p : add) {
    for (std::string q = Parent(p); !q.empty(); q = Parent(q)) {
      if (!parents.insert(q).second) break;
    }
  }
  for (const std::string& p : parents) add.insert(p);

  auto under_replaced = [&](const std::string& p) {
    for (std::string q = Parent(p); !q.empty(); q = Parent(q)) {
      if (replaced.count(q)) return true;
      auto it = a.find(q);
      if (it != a.end() && !S_ISDIR(it->second.mode)) return true;  // parent is no longer a dir
    }
    return false;
  };
  std::vector<LayerEntry> out;
  for (const auto& [path, meta] : b) {
    if (path.empty() || a.count(path)) continue;
    // Only the topmost deleted path needs a whiteout; nothing under a replaced directory does.
    if (!Parent(path).empty() && !a.count(Parent(path))) continue;
    if (under_replaced(path)) continue;
    out.push_back({LayerEntry::kWhiteout, path});
  }
  for (const std::string& p : opaque) out.push_back({LayerEntry::kOpaque, p});
  for (const std::string& p : add) out.push_back({LayerEntry::kPath, p});
  SortLayerEntries(out);
  return out;
}

}  // namespace slipway::snapshot
