#include "snapshot/overlay.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "base/fs.h"
#include "base/in_root.h"
#include "base/unique_fd.h"

namespace slipway::snapshot {
namespace {

namespace fs = std::filesystem;

bool IsOpaque(const std::string& path) {
  char v[8];
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    ssize_t n = lgetxattr(path.c_str(), name, v, sizeof(v));
    if (n == 1 && v[0] == 'y') return true;
  }
  return false;
}

// Whether `rel` is a directory in the lower tree (resolved inside it).
bool LowerIsDir(int lower_fd, const std::string& rel) {
  const std::size_t slash = rel.rfind('/');
  auto dir = OpenInRoot(lower_fd, slash == std::string::npos ? "." : rel.substr(0, slash),
                        O_PATH | O_DIRECTORY);
  if (!dir.ok()) return false;
  struct stat st;
  const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  return fstatat(dir->get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

Result<void> Walk(const std::string& upper, int lower_fd, const std::string& rel,
                  std::vector<LayerEntry>& out, int depth) {
  if (depth > 4096) return Error("upper directory deeper than 4096 levels", ELOOP);
  const std::string dir = rel.empty() ? upper : upper + "/" + rel;
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir_fd.valid()) return ErrnoError("opening " + dir);
  auto listed = ListDirectory(dir_fd.get());
  if (!listed.ok()) return std::move(listed.error().AddContext(dir));
  const std::vector<std::string>& names = *listed;
  for (const std::string& n : names) {
    const std::string path = rel.empty() ? n : rel + "/" + n;
    const std::string full = upper + "/" + path;
    struct stat st;
    if (lstat(full.c_str(), &st) != 0) return ErrnoError("inspecting " + full);
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      out.push_back({LayerEntry::kWhiteout, path});
      continue;
    }
    out.push_back({LayerEntry::kPath, path});
    if (S_ISDIR(st.st_mode)) {
      // The kernel marks any directory made where a whiteout stood as opaque; it only has
      // something to hide where the lower layer has a directory.
      if (IsOpaque(full) && LowerIsDir(lower_fd, path)) out.push_back({LayerEntry::kOpaque, path});
      SLIPWAY_RETURN_IF_ERROR(Walk(upper, lower_fd, path, out, depth + 1));
    }
  }
  return Ok{};
}

}  // namespace

Result<std::vector<LayerEntry>> ChangesFromUpper(const std::string& upper,
                                                 const std::string& lower) {
  UniqueFd lower_fd(open(lower.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!lower_fd.valid()) return ErrnoError("opening the lower directory " + lower);
  std::vector<LayerEntry> out;
  SLIPWAY_RETURN_IF_ERROR(Walk(upper, lower_fd.get(), "", out, 0));
  SortLayerEntries(out);
  return out;
}

Result<OverlaySession> OverlaySession::Mount(const std::string& lower, const std::string& scratch) {
  return Mount(std::vector<std::string>{lower}, scratch);
}

namespace {

Result<std::string> LowerOption(const std::vector<std::string>& lowers) {
  if (lowers.empty()) return Error("an overlay needs a lower directory", EINVAL);
  std::string joined;
  for (const std::string& l : lowers) {
    if (l.find_first_of(":,") != std::string::npos) {
      return Error("an overlay lower directory cannot contain ':' or ',': " + l, EINVAL);
    }
    joined += (joined.empty() ? "" : ":") + l;
  }
  return joined;
}

Error MountError(const std::string& at) {
  Error e = ErrnoError("mounting an overlay on " + at);
  if (e.errno_value() == EPERM) e.SetHint("mounting needs CAP_SYS_ADMIN");
  if (e.errno_value() == ENODEV) e.SetHint("this kernel has no overlayfs");
  return e;
}

}  // namespace

Result<OverlaySession> OverlaySession::Mount(const std::vector<std::string>& lowers,
                                             const std::string& scratch) {
  SLIPWAY_ASSIGN_OR_RETURN(const std::string joined, LowerOption(lowers));
  OverlaySession s;
  s.lower_ = lowers.front();
  std::string tmpl = scratch + "/overlay-XXXXXX";
  if (!mkdtemp(tmpl.data())) return ErrnoError("creating overlay scratch in " + scratch);
  s.base_ = tmpl;
  s.upper_ = s.base_ + "/upper";
  s.work_ = s.base_ + "/work";
  s.merged_ = s.base_ + "/merged";
  for (const std::string* d : {&s.upper_, &s.work_, &s.merged_}) {
    if (mkdir(d->c_str(), 0755) != 0) return ErrnoError("creating " + *d);
  }
  if (lowers.size() > 1) {
    const std::string view = s.base_ + "/view";
    if (mkdir(view.c_str(), 0755) != 0) return ErrnoError("creating " + view);
    const std::string vopts = "lowerdir=" + joined + ",redirect_dir=off,metacopy=off,index=off";
    if (mount("overlay", view.c_str(), "overlay", MS_RDONLY, vopts.c_str()) != 0) {
      return MountError(view);
    }
    s.view_mounted_ = true;
    s.lower_ = view;
  }
  const std::string opts = "lowerdir=" + joined + ",upperdir=" + s.upper_ + ",workdir=" + s.work_ +
                           ",redirect_dir=off,metacopy=off,index=off";
  // volatile (Linux 5.10+): no fsync of every copied-up file and no sync of the whole upper
  // filesystem at unmount -- a build step needs no durability, and both cost seconds when a
  // step touches thousands of files. Older kernels refuse the option: mount without it.
  if (mount("overlay", s.merged_.c_str(), "overlay", 0, (opts + ",volatile").c_str()) != 0 &&
      mount("overlay", s.merged_.c_str(), "overlay", 0, opts.c_str()) != 0) {
    return MountError(s.merged_);
  }
  s.mounted_ = true;
  // The root of the merged view has the lower root's metadata; the upper root starts as 0755.
  struct stat st;
  if (stat(s.lower_.c_str(), &st) != 0 || chown(s.upper_.c_str(), st.st_uid, st.st_gid) != 0 ||
      chmod(s.upper_.c_str(), st.st_mode & 07777) != 0) {
    return ErrnoError("giving the upper directory the lower root's owner and mode");
  }
  return s;
}

OverlaySession::OverlaySession(OverlaySession&& o) noexcept
    : lower_(std::move(o.lower_)),
      base_(std::move(o.base_)),
      upper_(std::move(o.upper_)),
      work_(std::move(o.work_)),
      merged_(std::move(o.merged_)),
      mounted_(o.mounted_),
      view_mounted_(o.view_mounted_) {
  o.mounted_ = false;
  o.view_mounted_ = false;
  o.base_.clear();
}

Result<std::vector<LayerEntry>> OverlaySession::Changes() const {
  return ChangesFromUpper(upper_, lower_);
}

namespace {

bool IsWhiteoutDevice(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// Drops trusted.overlay.* from one entry (an fd that can take xattr calls) -- and, for a
// directory moved whole, from everything under it.
void StripOverlayXattrs(int dir, const std::string& name, bool recurse) {
  UniqueFd fd(openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return;  // symlinks and special files carry no overlay xattrs we set
  char names[4096];
  ssize_t n = flistxattr(fd.get(), names, sizeof(names));
  for (ssize_t i = 0; i < n;) {
    const std::string x(names + i);
    i += static_cast<ssize_t>(x.size()) + 1;
    if (x.rfind("trusted.overlay.", 0) == 0) fremovexattr(fd.get(), x.c_str());
  }
  struct stat st;
  if (!recurse || fstat(fd.get(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  auto children = ListDirectory(fd.get());
  if (!children.ok()) return;
  for (const std::string& c : *children) StripOverlayXattrs(fd.get(), c, true);
}


// Moves what `upper` holds into `dest`. In overlay format (`keep_format`: dest is itself an
// upper directory over read-only lowers) whiteout devices and opaque markers are kept, since they
// hide entries below; otherwise they are applied (deletions) and the overlay's xattrs dropped.
Result<void> Merge(int upper, int dest, const std::string& at, bool keep_format) {
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(upper));
  for (const std::string& n : names) {
    const std::string path = at.empty() ? n : at + "/" + n;
    struct stat u, d;
    if (fstatat(upper, n.c_str(), &u, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError("merging the overlay: stat " + path);
    }
    const bool in_dest = fstatat(dest, n.c_str(), &d, AT_SYMLINK_NOFOLLOW) == 0;
    if (IsWhiteoutDevice(u) && !keep_format) {
      SLIPWAY_RETURN_IF_ERROR(RemoveAllAt(dest, n));
      continue;
    }
    if (S_ISDIR(u.st_mode) && in_dest && S_ISDIR(d.st_mode)) {
      UniqueFd ud(openat(upper, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!ud.valid()) return ErrnoError("merging the overlay: opening " + path);
      char v = 0;
      const bool opaque = fgetxattr(ud.get(), "trusted.overlay.opaque", &v, 1) == 1 && v == 'y';
      if (!opaque) {
        UniqueFd dd(openat(dest, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dd.valid()) return ErrnoError("merging the overlay: opening " + path);
        SLIPWAY_RETURN_IF_ERROR(Merge(ud.get(), dd.get(), path, keep_format));
        // The upper copy holds the directory's current metadata.
        if (fchown(dd.get(), u.st_uid, u.st_gid) != 0 || fchmod(dd.get(), u.st_mode & 07777) != 0) {
          return ErrnoError("merging the overlay: owner and mode of " + path);
        }
        char xnames[4096];
        ssize_t xn = flistxattr(ud.get(), xnames, sizeof(xnames));
        for (ssize_t i = 0; i < xn;) {
          const std::string x(xnames + i);
          i += static_cast<ssize_t>(x.size()) + 1;
          if (x.rfind("trusted.overlay.", 0) == 0) continue;
          char value[8192];
          ssize_t vn = fgetxattr(ud.get(), x.c_str(), value, sizeof(value));
          if (vn >= 0) fsetxattr(dd.get(), x.c_str(), value, static_cast<std::size_t>(vn), 0);
        }
        const struct timespec times[2] = {u.st_atim, u.st_mtim};
        if (futimens(dd.get(), times) != 0) return ErrnoError("merging the overlay: times of " + path);
        continue;
      }
    }
    // Anything else (whiteouts kept in overlay format, opaque or new directories, files) replaces
    // what dest had under this name.
    if (in_dest && (S_ISDIR(d.st_mode) || S_ISDIR(u.st_mode))) {
      SLIPWAY_RETURN_IF_ERROR(RemoveAllAt(dest, n));
    }
    if (renameat(upper, n.c_str(), dest, n.c_str()) != 0) {
      return ErrnoError("merging the overlay: moving " + path);
    }
    // In overlay format the kernel's other bookkeeping xattrs (origin, impure) may stay: they are
    // read only on an overlay's upper layer, and dest is only ever a lower one. A plain tree
    // drops them all. No layer ever carries them (the layer writer keeps user.* and
    // security.capability only).
    if (!keep_format && (S_ISDIR(u.st_mode) || S_ISREG(u.st_mode))) {
      StripOverlayXattrs(dest, n, S_ISDIR(u.st_mode));
    }
  }
  return Ok{};
}

// Merge at the top: the root's metadata comes from the upper root.
Result<void> MergeRoot(const std::string& upper, const std::string& dest, bool keep_format) {
  UniqueFd u(open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd d(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!u.valid() || !d.valid()) return ErrnoError("merging " + upper + " into " + dest);
  struct stat root;
  if (fstat(u.get(), &root) != 0) return ErrnoError("stat " + upper);
  SLIPWAY_RETURN_IF_ERROR(Merge(u.get(), d.get(), "", keep_format));
  if (fchown(d.get(), root.st_uid, root.st_gid) != 0 || fchmod(d.get(), root.st_mode & 07777) != 0) {
    return ErrnoError("merging the overlay: owner and mode of the root");
  }
  const struct timespec times[2] = {root.st_atim, root.st_mtim};
  futimens(d.get(), times);
  return Ok{};
}

}  // namespace

Result<void> MergeIntoUpper(const std::string& upper, const std::string& dest) {
  return MergeRoot(upper, dest, /*keep_format=*/true);
}

Result<OverlayView> OverlayView::Mount(const std::vector<std::string>& lowers,
                                       const std::string& at) {
  if (lowers.size() < 2) return Error("an overlay view needs at least two lower directories", EINVAL);
  SLIPWAY_ASSIGN_OR_RETURN(const std::string joined, LowerOption(lowers));
  OverlayView v;
  v.at_ = at;
  v.opts_ = "lowerdir=" + joined + ",redirect_dir=off,metacopy=off,index=off";
  SLIPWAY_RETURN_IF_ERROR(v.Refresh());
  return v;
}

Result<void> OverlayView::Refresh() {
  if (mounted_) {
    if (umount2(at_.c_str(), MNT_DETACH) != 0) return ErrnoError("unmounting " + at_);
    mounted_ = false;
  }
  if (mount("overlay", at_.c_str(), "overlay", MS_RDONLY, opts_.c_str()) != 0) {
    return MountError(at_);
  }
  mounted_ = true;
  return Ok{};
}

OverlayView::OverlayView(OverlayView&& o) noexcept
    : at_(std::move(o.at_)), opts_(std::move(o.opts_)), mounted_(o.mounted_) {
  o.mounted_ = false;
}

OverlayView& OverlayView::operator=(OverlayView&& o) noexcept {
  if (this != &o) {
    if (mounted_) umount2(at_.c_str(), MNT_DETACH);
    at_ = std::move(o.at_);
    opts_ = std::move(o.opts_);
    mounted_ = o.mounted_;
    o.mounted_ = false;
  }
  return *this;
}

OverlayView::~OverlayView() {
  if (mounted_) umount2(at_.c_str(), MNT_DETACH);
}

Result<void> MergeUpper(const std::string& upper, const std::string& lower) {
  return MergeRoot(upper, lower, /*keep_format=*/false);
}

Result<void> OverlaySession::Unmount() {
  if (mounted_) {
    if (umount2(merged_.c_str(), MNT_DETACH) != 0) return ErrnoError("unmounting " + merged_);
    mounted_ = false;
  }
  if (view_mounted_) {
    if (umount2(lower_.c_str(), MNT_DETACH) != 0) return ErrnoError("unmounting " + lower_);
    view_mounted_ = false;
  }
  return Ok{};
}

OverlaySession::~OverlaySession() {
  if (mounted_) umount2(merged_.c_str(), MNT_DETACH);
  if (view_mounted_) umount2(lower_.c_str(), MNT_DETACH);
  if (!base_.empty()) {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
}

}  // namespace slipway::snapshot
