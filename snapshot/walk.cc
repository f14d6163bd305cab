#include "snapshot/walk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <set>
#include <thread>

#include "base/fs.h"
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
                     std::vector<Manifest::Entry>& out, int depth) {
  if (depth > 4096) return Error("directory tree deeper than 4096 levels at " + rel, ELOOP);
  auto listed = ListDirectory(dir_fd);
  if (!listed.ok()) return std::move(listed.error().AddContext(rel.empty() ? "/" : rel));
  const std::vector<std::string>& names = *listed;
  for (const std::string& n : names) {
    const std::string path = Join(rel, n);
    if (skip && skip(path)) continue;
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError("inspecting " + path);
    }
    out.emplace_back(path, MetaOf(st));
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoError("opening " + path);
      SLIPWAY_RETURN_IF_ERROR(ScanDir(sub.get(), path, skip, out, depth + 1));
    }
  }
  return Ok{};
}

// The entries of the root directory itself (not descending).
Result<void> ScanDirShallow(int dir_fd, const std::function<bool(const std::string&)>& skip,
                            std::vector<Manifest::Entry>& out) {
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir_fd));
  for (const std::string& n : names) {
    if (skip && skip(n)) continue;
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError("inspecting " + n);
    }
    out.emplace_back(n, MetaOf(st));
  }
  return Ok{};
}

bool SameType(const FileMeta& a, const FileMeta& b) {
  return (a.mode & S_IFMT) == (b.mode & S_IFMT);
}

}  // namespace

const FileMeta* Manifest::Find(const std::string& path) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), path,
                             [](const Entry& e, const std::string& p) { return e.first < p; });
  return it != entries_.end() && it->first == path ? &it->second : nullptr;
}

Result<Manifest> Manifest::Scan(int root_fd, const std::function<bool(const std::string&)>& skip) {
  Manifest m;
  struct stat st;
  if (fstat(root_fd, &st) != 0) return ErrnoError("inspecting the root");
  m.entries_.emplace_back("", MetaOf(st));
  // The root's own entries here; its subdirectories on worker threads, one subtree at a time.
  std::vector<Entry> top;
  SLIPWAY_RETURN_IF_ERROR(ScanDirShallow(root_fd, skip, top));
  std::vector<std::size_t> dirs;
  for (std::size_t i = 0; i < top.size(); ++i) {
    if (S_ISDIR(top[i].second.mode)) dirs.push_back(i);
  }
  const unsigned threads = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(),
                                                           static_cast<unsigned>(dirs.size())));
  std::vector<std::vector<Entry>> found(threads);
  std::vector<std::optional<Error>> errors(threads);
  std::atomic<std::size_t> next{0};
  auto work = [&](unsigned t) {
    for (std::size_t k; (k = next.fetch_add(1)) < dirs.size();) {
      const std::string& name = top[dirs[k]].first;
      UniqueFd sub(openat(root_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      auto r = sub.valid() ? ScanDir(sub.get(), name, skip, found[t], 1)
                           : Result<void>(ErrnoError("opening " + name));
      if (!r.ok()) {
        errors[t] = std::move(r).error();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors) {
    if (e) return std::move(*e);
  }
  std::size_t total = m.entries_.size() + top.size();
  for (const auto& f : found) total += f.size();
  m.entries_.reserve(total);
  for (auto& e : top) m.entries_.push_back(std::move(e));
  for (auto& f : found) {
    for (auto& e : f) m.entries_.push_back(std::move(e));
    std::vector<Entry>().swap(f);  // give the memory back before the next one is moved
  }
  std::sort(m.entries_.begin(), m.entries_.end(),
            [](const Entry& a, const Entry& b) { return a.first < b.first; });
  return m;
}

std::vector<LayerEntry> Diff(const Manifest& before, const Manifest& after) {
  const auto& b = before.entries();
  const auto& a = after.entries();
  std::set<std::string> add;       // paths written from the filesystem
  std::set<std::string> opaque;    // directories deleted and made again
  std::set<std::string> replaced;  // paths whose old subtree is gone (type change or opaque)
  std::vector<const std::string*> deleted;
  // Both are sorted by path: one merge pass finds new, changed and deleted paths.
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
      if (!a[i].first.empty()) add.insert(a[i].first);
      ++i;
      continue;
    }
    if (i == a.size() || b[j].first < a[i].first) {
      if (!b[j].first.empty()) deleted.push_back(&b[j].first);
      ++j;
      continue;
    }
    const std::string& path = a[i].first;
    const FileMeta& meta = a[i].second;
    const FileMeta& old = b[j].second;
    ++i;
    ++j;
    if (path.empty()) continue;
    if (!SameType(old, meta)) {
      add.insert(path);
      if (S_ISDIR(old.mode)) replaced.insert(path);
    } else if (S_ISDIR(meta.mode) && (old.ino != meta.ino || old.dev != meta.dev)) {
      add.insert(path);
      opaque.insert(path);
      replaced.insert(path);
    } else if (!(old == meta)) {
      add.insert(path);
    }
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
      const FileMeta* m = after.Find(q);
      if (m && !S_ISDIR(m->mode)) return true;  // the parent is no longer a directory
    }
    return false;
  };
  std::vector<LayerEntry> out;
  for (const std::string* path : deleted) {
    // Only the topmost deleted path needs a whiteout; nothing under a replaced directory does.
    const std::string parent = Parent(*path);
    if (!parent.empty() && !after.Find(parent)) continue;
    if (under_replaced(*path)) continue;
    out.push_back({LayerEntry::kWhiteout, *path});
  }
  for (const std::string& p : opaque) out.push_back({LayerEntry::kOpaque, p});
  for (const std::string& p : add) out.push_back({LayerEntry::kPath, p});
  SortLayerEntries(out);
  return out;
}

}  // namespace slipway::snapshot
