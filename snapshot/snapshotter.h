// One interface over the two change-detection strategies, chosen automatically.
//
//   SLIPWAY_ASSIGN_OR_RETURN(auto snap, StartSnapshot(rootfs, scratch));   // overlay if possible
//   RunStep(snap->root());                                 // the step sees and changes this tree
//   SLIPWAY_ASSIGN_OR_RETURN(auto changes, snap->Changes());
//   WriteLayer(root_fd_of(snap->root()), changes, out_fd, opts);
//   snap->Commit(layer_path);     // afterwards `rootfs` holds the step's result either way
//
// kOverlay runs the step on an overlay of `rootfs` (cost O(changed files)); kWalk runs it on
// `rootfs` itself and compares metadata walks (cost O(files)); kAuto tries the overlay and falls
// back to the walk where mounting is not possible (no privilege, no overlayfs).
#ifndef SLIPWAY_SNAPSHOT_SNAPSHOTTER_H_
#define SLIPWAY_SNAPSHOT_SNAPSHOTTER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "snapshot/layer_writer.h"
#include "snapshot/walk.h"

namespace slipway::snapshot {

enum class Strategy { kAuto, kOverlay, kWalk };

class Snapshotter {
 public:
  virtual ~Snapshotter() = default;
  virtual Strategy strategy() const = 0;
  // The directory the step must run in.
  virtual const std::string& root() const = 0;
  // What the step changed, ready for WriteLayer (reading from root()).
  virtual Result<std::vector<LayerEntry>> Changes() = 0;
  // Makes `rootfs` hold the step's result; `layer_file` is the layer written from Changes().
  virtual Result<void> Commit(const std::string& layer_file) = 0;
};

// What the walk strategy saw of a rootfs after the last committed step, so that the next step
// starts from it instead of walking the tree again. The caller keeps one per rootfs and must
// clear it (`last.reset()`) whenever it changes that tree other than through a Snapshotter.
struct WalkMemo {
  std::optional<Manifest> last;
};

// `memo` (may be null): used and refilled by the walk strategy.
Result<std::unique_ptr<Snapshotter>> StartSnapshot(const std::string& rootfs,
                                                   const std::string& scratch,
                                                   Strategy strategy = Strategy::kAuto,
                                                   WalkMemo* memo = nullptr);

// A stage kept as an overlay-format upper directory (`lowers[0]`) over read-only lowers (cached
// base images, parent stages): the step runs on an overlay of all of them, and Commit moves its
// changes into lowers[0], still in overlay format (MergeIntoUpper). Nothing below lowers[0] is
// ever written, so an unpacked base image can be shared by every build. Needs overlayfs.
Result<std::unique_ptr<Snapshotter>> StartLayeredSnapshot(const std::vector<std::string>& lowers,
                                                          const std::string& scratch);

}  // namespace slipway::snapshot

#endif  // SLIPWAY_SNAPSHOT_SNAPSHOTTER_H_
