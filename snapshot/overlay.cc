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
  OverlaySession s;
  s.lower_ = lower;
  std::string tmpl = scratch + "/overlay-XXXXXX";
  if (!mkdtemp(tmpl.data())) return ErrnoError("creating overlay scratch in " + scratch);
  s.base_ = tmpl;
  s.upper_ = s.base_ + "/upper";
  s.work_ = s.base_ + "/work";
  s.merged_ = s.base_ + "/merged";
  for (const std::string* d : {&s.upper_, &s.work_, &s.merged_}) {
    if (mkdir(d->c_str(), 0755) != 0) return ErrnoError("creating " + *d);
  }
  const std::string opts = "lowerdir=" + lower + ",upperdir=" + s.upper_ + ",workdir=" + s.work_ +
                           ",redirect_dir=off,metacopy=off,index=off";
  if (mount("overlay", s.merged_.c_str(), "overlay", 0, opts.c_str()) != 0) {
    Error e = ErrnoError("mounting an overlay on " + s.merged_);
    if (e.errno_value() == EPERM) e.SetHint("mounting needs CAP_SYS_ADMIN");
    if (e.errno_value() == ENODEV) e.SetHint("this kernel has no overlayfs");
    return e;
  }
  s.mounted_ = true;
  // The root of the merged view has the lower root's metadata; the upper root starts as 0755.
  struct stat st;
  if (stat(lower.c_str(), &st) != 0 || chown(s.upper_.c_str(), st.st_uid, st.st_gid) != 0 ||
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
      mounted_(o.mounted_) {
  o.mounted_ = false;
  o.base_.clear();
}

Result<std::vector<LayerEntry>> OverlaySession::Changes() const {
  return ChangesFromUpper(upper_, lower_);
}

Result<void> OverlaySession::Unmount() {
  if (mounted_) {
    if (umount2(merged_.c_str(), MNT_DETACH) != 0) return ErrnoError("unmounting " + merged_);
    mounted_ = false;
  }
  return Ok{};
}

OverlaySession::~OverlaySession() {
  if (mounted_) umount2(merged_.c_str(), MNT_DETACH);
  if (!base_.empty()) {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
}

}  // namespace slipway::snapshot
