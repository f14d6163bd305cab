// Change detection by metadata walk: record the state of a root before a step, walk it again
// after, and list what changed -- without reading any file's contents.
//
//   SLIPWAY_ASSIGN_OR_RETURN(Manifest before, Manifest::Scan(root_fd));
//   ... run the step ...
//   SLIPWAY_ASSIGN_OR_RETURN(Manifest after, Manifest::Scan(root_fd));
//   std::vector<LayerEntry> changes = Diff(before, after);   // feed to WriteLayer
//
// A path counts as changed when its type, inode, ctime, mtime, size, mode or owner differ. ctime
// is what makes this complete without reading anything else: the kernel moves it on every change
// of content, mode, owner or xattrs -- also when the mtime is put back -- and a new symlink
// target means a new inode. New and changed paths
// are listed with all their parent directories; a deleted path becomes a whiteout (once, at the
// topmost deleted directory); a directory that was deleted and made again becomes an opaque
// whiteout plus its new contents.
//
// Cost: one fstatat per entry and one getdents64 per directory, spread over a pool of threads
// that take directories (not just top-level subtrees) from a shared queue; no global sort (each
// directory's names are sorted, and the tree is read back in order); paths live in one arena.
//
// Guarantees: never follows symlinks while walking (fds of directories, AT_SYMLINK_NOFOLLOW);
// holds at most a few directory fds per thread.
#ifndef SLIPWAY_SNAPSHOT_WALK_H_
#define SLIPWAY_SNAPSHOT_WALK_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/path.h"  // TreeLess: the order of entries()
#include "base/result.h"
#include "snapshot/layer_writer.h"

namespace slipway::snapshot {

struct FileMeta {
  mode_t mode = 0;  // type and permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
  std::uint64_t size = 0;  // 0 for directories
  dev_t rdev = 0;
  bool operator==(const FileMeta&) const = default;
};

class Manifest {
 public:
  struct Entry {
    std::string_view path;  // relative to the root; "" is the root itself
    FileMeta meta;
  };
  // `threads` 0: one per core (at most 16).
  static Result<Manifest> Scan(int root_fd, unsigned threads = 0);
  // In tree order (TreeLess); the first entry is the root.
  const std::vector<Entry>& entries() const { return entries_; }
  const FileMeta* Find(std::string_view path) const;
  // Every path but the root, as layer entries (a whole tree as one layer).
  std::vector<LayerEntry> AllPaths() const;

 private:
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<char[]>> arena_;  // the bytes behind the paths
};

std::vector<LayerEntry> Diff(const Manifest& before, const Manifest& after);

}  // namespace slipway::snapshot

#endif  // SLIPWAY_SNAPSHOT_WALK_H_
