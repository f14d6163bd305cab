// Change detection with overlayfs: the step runs on an overlay whose upper directory starts
// empty, so afterwards the upper directory *is* the change -- cost O(changed files), whatever the
// size of the image.
//
//   SLIPWAY_ASSIGN_OR_RETURN(OverlaySession s, OverlaySession::Mount(rootfs, scratch_dir));
//   ... run the step with s.merged() as its root ...
//   SLIPWAY_ASSIGN_OR_RETURN(std::vector<LayerEntry> changes, s.Changes());
//   WriteLayer(merged_fd, changes, out, opts);   // read through the merged view
//   s.Unmount();                                  // then extract the layer onto rootfs
//
// Overlay whiteouts (character devices 0/0) become OCI whiteouts, directories marked opaque
// (trusted.overlay.opaque=y) become opaque whiteouts, and every other upper entry -- new files and
// the parent directories the kernel copied up -- is written from the merged view. The overlay is
// mounted with redirect_dir, metacopy and index off, so a renamed directory is copied up whole
// and every changed file's data lives in the upper directory.
//
// Mounted "volatile" where the kernel has it: no fsync per copied-up file, no sync of the upper
// filesystem at unmount (a build step needs no durability).
//
// Needs CAP_SYS_ADMIN (mount). Guarantees: the destructor unmounts (detached) and removes the
// scratch directories, so nothing is left behind on any path.
#ifndef SLIPWAY_SNAPSHOT_OVERLAY_H_
#define SLIPWAY_SNAPSHOT_OVERLAY_H_

#include <string>
#include <vector>

#include "base/result.h"
#include "snapshot/layer_writer.h"

namespace slipway::snapshot {

class OverlaySession {
 public:
  // Mounts lower=`lower` with fresh upper/work directories under a new directory in `scratch`.
  static Result<OverlaySession> Mount(const std::string& lower, const std::string& scratch);
  // Several read-only lower directories, topmost first (overlay format: whiteout devices and
  // opaque directories in an upper one hide what is below). Changes() then compares against a
  // read-only view of them, mounted beside.
  static Result<OverlaySession> Mount(const std::vector<std::string>& lowers,
                                      const std::string& scratch);
  OverlaySession(OverlaySession&& o) noexcept;
  OverlaySession& operator=(OverlaySession&&) = delete;
  ~OverlaySession();

  const std::string& merged() const { return merged_; }
  const std::string& upper() const { return upper_; }
  Result<std::vector<LayerEntry>> Changes() const;
  Result<void> Unmount();

 private:
  OverlaySession() = default;
  std::string lower_, base_, upper_, work_, merged_;
  bool mounted_ = false;
  bool view_mounted_ = false;  // lower_ is a view of several lowers
};

// Moves an overlay upper directory's changes into `lower` (after the overlay is unmounted), so
// that `lower` becomes what the merged view showed: whiteouts delete, opaque directories replace,
// other directories merge (taking the upper copy's owner, mode, xattrs and times), everything
// else is renamed over. Cost O(changed entries), no data copied (upper and lower must be on one
// filesystem; EXDEV otherwise). Overlay-private xattrs (trusted.overlay.*) are dropped.
Result<void> MergeUpper(const std::string& upper, const std::string& lower);

// Moves an overlay upper directory's changes into another upper directory, `dest`, that sits on
// read-only lowers: the result stays in overlay format (whiteout devices and opaque directories
// are kept, because they hide entries of the lowers below). Cost O(changed entries).
Result<void> MergeIntoUpper(const std::string& upper, const std::string& dest);

// A read-only overlay of several directories (topmost first; at least two), for reading a stage
// that lives as an upper directory over cached base images.
class OverlayView {
 public:
  static Result<OverlayView> Mount(const std::vector<std::string>& lowers, const std::string& at);
  OverlayView(OverlayView&& o) noexcept;
  OverlayView& operator=(OverlayView&& o) noexcept;
  ~OverlayView();
  const std::string& path() const { return at_; }
  // Remounts: an overlay must not see its lowers change while mounted.
  Result<void> Refresh();

 private:
  OverlayView() = default;
  std::string at_, opts_;
  bool mounted_ = false;
};

// The changes recorded in an overlay upper directory over `lower` (exposed for tests). An opaque
// marker is kept only where the lower layer has a directory to hide.
Result<std::vector<LayerEntry>> ChangesFromUpper(const std::string& upper,
                                                 const std::string& lower);

}  // namespace slipway::snapshot

#endif  // SLIPWAY_SNAPSHOT_OVERLAY_H_
