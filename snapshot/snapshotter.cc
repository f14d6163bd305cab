#include "snapshot/snapshotter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "base/unique_fd.h"
#include "snapshot/extract.h"
#include "snapshot/overlay.h"
#include "snapshot/walk.h"

namespace slipway::snapshot {
namespace {

class WalkSnapshotter : public Snapshotter {
 public:
  static Result<std::unique_ptr<Snapshotter>> Start(const std::string& rootfs, WalkMemo* memo) {
    auto s = std::unique_ptr<WalkSnapshotter>(new WalkSnapshotter(rootfs, memo));
    s->fd_.Reset(open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!s->fd_.valid()) return ErrnoError("opening " + rootfs);
    // The last step's "after" is this step's "before", if the root is still the one it saw.
    struct stat st;
    if (memo && memo->last && fstat(s->fd_.get(), &st) == 0 &&
        st.st_ino == memo->last->entries().front().meta.ino &&
        st.st_dev == memo->last->entries().front().meta.dev) {
      s->before_ = std::move(memo->last);
    } else {
      SLIPWAY_ASSIGN_OR_RETURN(s->before_, Manifest::Scan(s->fd_.get()));
    }
    if (memo) memo->last.reset();
    return std::unique_ptr<Snapshotter>(std::move(s));
  }
  Strategy strategy() const override { return Strategy::kWalk; }
  const std::string& root() const override { return rootfs_; }
  Result<std::vector<LayerEntry>> Changes() override {
    SLIPWAY_ASSIGN_OR_RETURN(after_, Manifest::Scan(fd_.get()));
    return Diff(*before_, *after_);
  }
  Result<void> Commit(const std::string&) override {  // changed in place
    if (memo_ && after_) memo_->last = std::move(after_);
    return Ok{};
  }

 private:
  WalkSnapshotter(std::string rootfs, WalkMemo* memo) : rootfs_(std::move(rootfs)), memo_(memo) {}
  std::string rootfs_;
  WalkMemo* memo_;
  UniqueFd fd_;
  std::optional<Manifest> before_, after_;
};

class OverlaySnapshotter : public Snapshotter {
 public:
  OverlaySnapshotter(std::string rootfs, OverlaySession s)
      : rootfs_(std::move(rootfs)), session_(std::move(s)) {}
  Strategy strategy() const override { return Strategy::kOverlay; }
  const std::string& root() const override { return session_.merged(); }
  Result<std::vector<LayerEntry>> Changes() override { return session_.Changes(); }
  Result<void> Commit(const std::string& layer_file) override {
    SLIPWAY_RETURN_IF_ERROR(session_.Unmount());
    // The upper directory is moved into place: O(changed entries), no data copied. Where that
    // is not possible (another filesystem), the layer is extracted instead.
    auto merged = MergeUpper(session_.upper(), rootfs_);
    if (merged.ok() || merged.error().errno_value() != EXDEV) return merged;
    UniqueFd root(open(rootfs_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd layer(open(layer_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!root.valid() || !layer.valid()) return ErrnoError("committing the overlay's changes");
    ExtractOptions o;
    o.allow_devices = geteuid() == 0;
    SLIPWAY_RETURN_IF_ERROR(ExtractLayer(root.get(), layer.get(), layer_file, o));
    return Ok{};
  }

 private:
  std::string rootfs_;
  OverlaySession session_;
};

class LayeredSnapshotter : public Snapshotter {
 public:
  LayeredSnapshotter(std::string dest, OverlaySession s)
      : dest_(std::move(dest)), session_(std::move(s)) {}
  Strategy strategy() const override { return Strategy::kOverlay; }
  const std::string& root() const override { return session_.merged(); }
  Result<std::vector<LayerEntry>> Changes() override { return session_.Changes(); }
  Result<void> Commit(const std::string&) override {
    SLIPWAY_RETURN_IF_ERROR(session_.Unmount());
    return MergeIntoUpper(session_.upper(), dest_);
  }

 private:
  std::string dest_;
  OverlaySession session_;
};

}  // namespace

Result<std::unique_ptr<Snapshotter>> StartLayeredSnapshot(const std::vector<std::string>& lowers,
                                                          const std::string& scratch) {
  SLIPWAY_ASSIGN_OR_RETURN(OverlaySession s, OverlaySession::Mount(lowers, scratch));
  return std::unique_ptr<Snapshotter>(new LayeredSnapshotter(lowers.front(), std::move(s)));
}

Result<std::unique_ptr<Snapshotter>> StartSnapshot(const std::string& rootfs,
                                                   const std::string& scratch, Strategy strategy,
                                                   WalkMemo* memo) {
  if (strategy == Strategy::kWalk) return WalkSnapshotter::Start(rootfs, memo);
  auto s = OverlaySession::Mount(rootfs, scratch);
  if (s.ok()) {
    return std::unique_ptr<Snapshotter>(new OverlaySnapshotter(rootfs, std::move(s).value()));
  }
  const int e = s.error().errno_value();
  if (strategy == Strategy::kAuto && (e == EPERM || e == ENODEV || e == EINVAL || e == EACCES)) {
    return WalkSnapshotter::Start(rootfs, memo);
  }
  return std::move(s).error();
}

}  // namespace slipway::snapshot
