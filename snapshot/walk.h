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
// whiteout plus its new contents. Cost: O(files), a few syscalls each.
//
// Guarantees: never follows symlinks while walking (fds of directories, AT_SYMLINK_NOFOLLOW).
#ifndef SLIPWAY_SNAPSHOT_WALK_H_
#define SLIPWAY_SNAPSHOT_WALK_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "snapshot/layer_writer.h"

namespace slipway::snapshot {

struct FileMeta {
  mode_t mode = 0;  // type and permission bits
  dev_t dev = 0;
  ino_t ino = 0;
  std::int64_t mtime_ns = 0, ctime_ns = 0;
  std::uint64_t size = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  dev_t rdev = 0;
  std::string link;    // symlink target
  std::string xattrs;  // name=value pairs of the kept xattrs, serialised
  bool operator==(const FileMeta&) const = default;
};

class Manifest {
 public:
  using Entry = std::pair<std::string, FileMeta>;
  // `skip(path)` leaves a path (and what is under it) out of the walk, e.g. mount points. The
  // top-level directories are walked on several threads, so `skip` must be thread-safe.
  static Result<Manifest> Scan(int root_fd,
                               const std::function<bool(const std::string&)>& skip = {});
  // Sorted by path (byte order); "" is the root itself.
  const std::vector<Entry>& entries() const { return entries_; }
  const FileMeta* Find(const std::string& path) const;

 private:
  std::vector<Entry> entries_;
};

std::vector<LayerEntry> Diff(const Manifest& before, const Manifest& after);

}  // namespace slipway::snapshot

#endif  // SLIPWAY_SNAPSHOT_WALK_H_
