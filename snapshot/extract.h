// Safe extraction of an image layer (a tar stream, plain or compressed) onto a root directory.
//
//   ExtractOptions opts;                       // limits, privileges
//   SLIPWAY_ASSIGN_OR_RETURN(ExtractStats st, ExtractLayer(root_fd, layer_fd, "sha256:ab..",
//   opts));
//
// Every rule of shared/reference/images-and-safety.md §6.4: names are cleaned and a leading '/'
// stripped, and a name that climbs out ("..", "../x") is refused; the parent of each entry is
// resolved *inside* the root (an image's own symlinks are followed, never out of it) and the last
// component is created without following it, replacing what was there unless both are
// directories; symlink targets are stored verbatim; a hardlink's target is resolved in-root and
// must already exist and not be a directory; `.wh.NAME` deletes a lower entry and
// `.wh..wh..opq` hides a directory's lower children (entries of this same layer survive), never
// following a symlink while deleting; devices and FIFOs are created only when allowed; ownership,
// then mode (chown clears set-id bits), then `security.capability` and `user.*` xattrs; directory
// times are set last. Limits cap the entry count, the bytes written, the decompression ratio, the
// name length and the depth.
//
// Guarantees: nothing outside the root is read, written or deleted; memory does not grow with the
// layer's size (data is streamed in 64 KiB blocks). Errors name the layer and the entry.
#ifndef SLIPWAY_SNAPSHOT_EXTRACT_H_
#define SLIPWAY_SNAPSHOT_EXTRACT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace slipway::snapshot {

struct ExtractOptions {
  bool preserve_ownership = true;  // chown to the entry's uid/gid (needs privilege for others)
  bool allow_devices = false;      // create char/block devices and FIFOs (needs privilege)
  std::uint64_t max_entries = 2'000'000;
  std::uint64_t max_bytes = std::uint64_t{256} << 30;  // uncompressed bytes written
  double max_ratio = 1000.0;  // uncompressed / compressed, checked past max_ratio_floor
  std::uint64_t max_ratio_floor = std::uint64_t{64} << 20;
  std::size_t max_depth = 1024;  // path components
};

struct ExtractStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t whiteouts = 0;
  std::uint64_t skipped_special = 0;  // devices/FIFOs not created
  std::vector<std::string> warnings;  // duplicate entries, skipped specials, dropped xattrs
};

// `layer_fd` is read from its current offset to EOF; `layer_name` names it in messages.
Result<ExtractStats> ExtractLayer(int root_fd, int layer_fd, const std::string& layer_name,
                                  const ExtractOptions& options = {});

// Extracts a layer file, decompressing gzip or zstd on a second thread that feeds the extraction
// through a pipe (so inflating and creating files overlap), and hashing the file's bytes on the
// way: `*digest` gets its "sha256:..." (the blob digest), so a caller can verify the blob without
// reading it twice. The decompression-ratio limit applies in the decompressing thread. Other
// formats are extracted as ExtractLayer does.
Result<ExtractStats> ExtractLayerFile(int root_fd, const std::string& path,
                                      const std::string& layer_name,
                                      const ExtractOptions& options, std::string* digest);

// Cleans an entry name: strips a leading "/" and "./", applies path.Clean. Returns an error for a
// name that leaves the root ("..", "../x") or is empty.
Result<std::string> CleanEntryName(const std::string& name);

}  // namespace slipway::snapshot

#endif  // SLIPWAY_SNAPSHOT_EXTRACT_H_
