// Writes a layer: the tar of a set of changes under a root, compressed, with its digests.
//
//   std::vector<LayerEntry> changes = ...;  // from a Snapshotter (walk.h)
//   SLIPWAY_ASSIGN_OR_RETURN(LayerBlob blob, WriteLayer(root_fd, changes, out_fd, {}));
//   blob.diff_id  // sha256 of the uncompressed tar (config rootfs.diff_ids)
//   blob.digest   // sha256 of what was written to out_fd (the manifest's layer digest)
//
// The tar is deterministic: entries sorted component-wise with parents first and, within a
// directory, whiteouts before the other entries; uname/gname empty; no atime/ctime; mtimes clamped
// to `clamp_mtime` (SOURCE_DATE_EPOCH) when given; a regular file linked more than once in the
// layer becomes one file and hardlinks to it; `security.capability` and `user.*` xattrs as PAX
// records. gzip output has no name and a zero time in its header. A regular file whose name starts
// with ".wh." cannot be represented in an image: that is an error naming the path.
//
// Guarantees: streaming (file data in 64 KiB blocks); reads the root through in-root resolution.
#ifndef SLIPWAY_SNAPSHOT_LAYER_WRITER_H_
#define SLIPWAY_SNAPSHOT_LAYER_WRITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace slipway::snapshot {

struct LayerEntry {
  enum Kind { kPath, kWhiteout, kOpaque };
  Kind kind = kPath;
  std::string path;  // relative to the root, no leading '/'; for kOpaque the directory
  bool operator==(const LayerEntry&) const = default;
};

enum class Compression { kNone, kGzip, kZstd };

struct LayerOptions {
  Compression compression = Compression::kGzip;
  int level = 6;  // gzip 1..9, zstd 1..19
  // Compression threads; 0: one per core. gzip is compressed in independent 1 MiB blocks (as
  // pigz does), so the output is the same whatever the thread count.
  int threads = 0;
  std::optional<std::int64_t> clamp_mtime;
};

struct LayerBlob {
  std::string diff_id;  // "sha256:..." of the uncompressed tar
  std::string digest;   // "sha256:..." of the written bytes
  std::uint64_t size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint64_t entries = 0;
};

// Sorts entries the way they are written (parents first; whiteouts first within a directory).
void SortLayerEntries(std::vector<LayerEntry>& entries);

Result<LayerBlob> WriteLayer(int root_fd, std::vector<LayerEntry> entries, int out_fd,
                             const LayerOptions& options = {});

// Compresses an uncompressed layer tar read from `tar_fd` (from its offset to EOF) into `out_fd`
// exactly as WriteLayer would have: the same bytes, the same digests.
Result<LayerBlob> CompressLayer(int tar_fd, int out_fd, const LayerOptions& options = {});

}  // namespace slipway::snapshot

#endif  // SLIPWAY_SNAPSHOT_LAYER_WRITER_H_
