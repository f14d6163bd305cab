#include "snapshot/walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/unique_fd.h"

namespace slipway::snapshot {
namespace {

constexpr int kMaxDepth = 4096;

std::string Join(std::string_view dir, std::string_view name) {
  std::string p;
  p.reserve(dir.size() + 1 + name.size());
  p.append(dir);
  if (!dir.empty()) p += '/';
  p.append(name);
  return p;
}

std::string_view Parent(std::string_view p) {
  std::size_t s = p.rfind('/');
  return s == std::string_view::npos ? std::string_view() : p.substr(0, s);
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

// The scanned tree: one node per directory, its children sorted by name.
struct Node;
struct Child {
  std::string name;
  FileMeta meta;
  std::unique_ptr<Node> dir;  // set for directories
};
struct Node {
  std::vector<Child> children;
};

// One directory to read: opened from its parent's fd when a worker takes it, so that only the
// directories with children still queued hold an fd.
struct Task {
  std::shared_ptr<UniqueFd> parent;  // null for the root
  const std::string* name = nullptr;
  Node* node = nullptr;
  std::string path;  // for messages
  int depth = 0;
};

class Walker {
 public:
  Walker(int root_fd, unsigned threads) : root_fd_(root_fd), threads_(threads) {}

  Result<void> Run(Node* root) {
    stack_.push_back(Task{nullptr, nullptr, root, "", 0});
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads_; ++t) pool.emplace_back([this] { Work(); });
    Work();
    for (auto& th : pool) th.join();
    if (error_) return std::move(*error_);
    return Ok{};
  }
  std::size_t entries() const { return entries_.load(); }

 private:
  void Work() {
    std::vector<char> buf(64 << 10);
    for (;;) {
      Task t;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return !stack_.empty() || busy_ == 0 || error_; });
        if (error_ || stack_.empty()) return;  // failed, or nothing queued and nobody busy
        t = std::move(stack_.back());
        stack_.pop_back();
        ++busy_;
      }
      std::vector<Task> more;
      auto r = ReadDir(t, buf, more);
      {
        std::lock_guard<std::mutex> l(mu_);
        --busy_;
        if (!r.ok() && !error_) error_ = std::move(r).error();
        for (auto it = more.rbegin(); it != more.rend(); ++it) stack_.push_back(std::move(*it));
      }
      cv_.notify_all();
    }
  }

  Result<void> ReadDir(Task& t, std::vector<char>& buf, std::vector<Task>& more) {
    const std::string shown = t.path.empty() ? "/" : t.path;
    if (t.depth > kMaxDepth) {
      return Error("directory tree deeper than " + std::to_string(kMaxDepth) + " levels at " +
                       shown,
                   ELOOP);
    }
    auto fd = std::make_shared<UniqueFd>(
        t.parent ? openat(t.parent->get(), t.name->c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                 : openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));  // own offset
    t.parent.reset();
    if (!fd->valid()) return ErrnoError("opening " + shown);
    std::vector<Child>& children = t.node->children;
    for (;;) {
      const ssize_t n = getdents64(fd->get(), buf.data(), buf.size());
      if (n < 0) return ErrnoError("listing " + shown);
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        const auto* d = reinterpret_cast<const struct dirent64*>(buf.data() + off);
        off += d->d_reclen;
        const char* nm = d->d_name;
        if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
        children.push_back(Child{nm, {}, nullptr});
      }
    }
    std::sort(children.begin(), children.end(),
              [](const Child& a, const Child& b) { return a.name < b.name; });
    std::size_t kept = 0;
    for (std::size_t i = 0; i < children.size(); ++i) {
      Child& c = children[i];
      struct stat st;
      if (fstatat(fd->get(), c.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // gone since it was listed
        return ErrnoError("inspecting " + Join(t.path, c.name));
      }
      c.meta = MetaOf(st);
      if (kept != i) children[kept] = std::move(c);
      ++kept;
    }
    children.resize(kept);
    entries_ += kept;
    for (Child& c : children) {
      if (!S_ISDIR(c.meta.mode)) continue;
      c.dir = std::make_unique<Node>();
      more.push_back(Task{fd, &c.name, c.dir.get(), Join(t.path, c.name), t.depth + 1});
    }
    return Ok{};
  }

  const int root_fd_;
  const unsigned threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Task> stack_;
  int busy_ = 0;
  std::optional<Error> error_;
  std::atomic<std::size_t> entries_{0};
};

bool SameType(const FileMeta& a, const FileMeta& b) {
  return (a.mode & S_IFMT) == (b.mode & S_IFMT);
}

}  // namespace

const FileMeta* Manifest::Find(std::string_view path) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), path,
                             [](const Entry& e, std::string_view p) { return TreeLess(e.path, p); });
  return it != entries_.end() && it->path == path ? &it->meta : nullptr;
}

std::vector<LayerEntry> Manifest::AllPaths() const {
  std::vector<LayerEntry> all;
  all.reserve(entries_.size());
  for (const Entry& e : entries_) {
    if (!e.path.empty()) all.push_back({LayerEntry::kPath, std::string(e.path)});
  }
  return all;
}

Result<Manifest> Manifest::Scan(int root_fd, unsigned threads) {
  struct stat st;
  if (fstat(root_fd, &st) != 0) return ErrnoError("inspecting the root");
  if (threads == 0) threads = std::clamp(std::thread::hardware_concurrency(), 1u, 16u);
  Node root;
  Walker walker(root_fd, threads);
  SLIPWAY_RETURN_IF_ERROR(walker.Run(&root));

  // Read the tree back in order; the paths go into arena chunks that never move.
  Manifest m;
  m.entries_.reserve(walker.entries() + 1);
  m.entries_.push_back(Entry{std::string_view(), MetaOf(st)});
  constexpr std::size_t kChunk = 256 << 10;
  char* free_at = nullptr;
  std::size_t free_left = 0;
  std::string path;
  auto emit = [&](auto& self, const Node& node) -> void {
    for (const Child& c : node.children) {
      const std::size_t len = path.size();
      if (len) path += '/';
      path += c.name;
      if (free_left < path.size()) {
        free_left = std::max(kChunk, path.size());
        m.arena_.push_back(std::make_unique<char[]>(free_left));
        free_at = m.arena_.back().get();
      }
      std::memcpy(free_at, path.data(), path.size());
      m.entries_.push_back(Entry{std::string_view(free_at, path.size()), c.meta});
      free_at += path.size();
      free_left -= path.size();
      if (c.dir) self(self, *c.dir);
      path.resize(len);
    }
  };
  emit(emit, root);
  return m;
}

std::vector<LayerEntry> Diff(const Manifest& before, const Manifest& after) {
  const auto& b = before.entries();
  const auto& a = after.entries();
  std::set<std::string> add;       // paths written from the filesystem
  std::set<std::string> opaque;    // directories deleted and made again
  std::set<std::string> replaced;  // paths whose old subtree is gone (type change or opaque)
  std::vector<std::string_view> deleted;
  // Both are in tree order: one merge pass finds new, changed and deleted paths.
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && TreeLess(a[i].path, b[j].path))) {
      if (!a[i].path.empty()) add.emplace(a[i].path);
      ++i;
      continue;
    }
    if (i == a.size() || TreeLess(b[j].path, a[i].path)) {
      if (!b[j].path.empty()) deleted.push_back(b[j].path);
      ++j;
      continue;
    }
    const std::string_view path = a[i].path;
    const FileMeta& meta = a[i].meta;
    const FileMeta& old = b[j].meta;
    ++i;
    ++j;
    if (path.empty()) continue;
    if (!SameType(old, meta)) {
      add.emplace(path);
      if (S_ISDIR(old.mode)) replaced.emplace(path);
    } else if (S_ISDIR(meta.mode) && (old.ino != meta.ino || old.dev != meta.dev)) {
      add.emplace(path);
      opaque.emplace(path);
      replaced.emplace(path);
    } else if (!(old == meta)) {
      add.emplace(path);
    }
  }
  // Parents of everything written come first, as directories of the layer.
  std::set<std::string> parents;
  for (const std::string& p : add) {
    for (std::string_view q = Parent(p); !q.empty(); q = Parent(q)) {
      if (!parents.emplace(q).second) break;
    }
  }
  add.merge(parents);

  auto under_replaced = [&](std::string_view p) {
    for (std::string_view q = Parent(p); !q.empty(); q = Parent(q)) {
      if (replaced.count(std::string(q))) return true;
      const FileMeta* m = after.Find(q);
      if (m && !S_ISDIR(m->mode)) return true;  // the parent is no longer a directory
    }
    return false;
  };
  std::vector<LayerEntry> out;
  for (std::string_view path : deleted) {
    // Only the topmost deleted path needs a whiteout; nothing under a replaced directory does.
    const std::string_view parent = Parent(path);
    if (!parent.empty() && !after.Find(parent)) continue;
    if (under_replaced(path)) continue;
    out.push_back({LayerEntry::kWhiteout, std::string(path)});
  }
  for (const std::string& p : opaque) out.push_back({LayerEntry::kOpaque, p});
  for (const std::string& p : add) out.push_back({LayerEntry::kPath, p});
  SortLayerEntries(out);
  return out;
}

}  // namespace slipway::snapshot
