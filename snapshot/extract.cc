#include "snapshot/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "base/in_root.h"
#include "base/path.h"
#include "base/unique_fd.h"
#include "image/digest.h"

namespace slipway::snapshot {
namespace {

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueWhiteout[] = ".wh..wh..opq";

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};

bool XattrAllowed(const std::string& name) {
  if (name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0) return false;
  return name.rfind("user.", 0) == 0 || name == "security.capability";
}

std::string Parent(const std::string& p) {
  std::size_t s = p.rfind('/');
  return s == std::string::npos ? "." : p.substr(0, s);
}

std::string Base(const std::string& p) {
  std::size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

class Extractor {
 public:
  Extractor(int root_fd, const std::string& layer, const ExtractOptions& opts)
      : root_fd_(root_fd), layer_(layer), opts_(opts) {}

  Result<ExtractStats> Run(int layer_fd) {
    std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
    if (!a) return Error(layer_ + ": cannot create an archive reader", ENOMEM);
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_empty(a.get());
    if (archive_read_open_fd(a.get(), layer_fd, 64 * 1024) != ARCHIVE_OK) {
      return Error(layer_ + ": " + archive_error_string(a.get()), archive_errno(a.get()));
    }
    archive_entry* entry = nullptr;
    for (;;) {
      int r = archive_read_next_header(a.get(), &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        return Error(layer_ + ": reading the layer: " + Str(archive_error_string(a.get())),
                     archive_errno(a.get()) > 0 ? archive_errno(a.get()) : EINVAL);
      }
      if (++stats_.entries > opts_.max_entries) {
        return Error(layer_ + ": more than " + std::to_string(opts_.max_entries) +
                         " entries; refusing to go on",
                     E2BIG);
      }
      const std::string raw = Str(archive_entry_pathname(entry));
      auto done = Entry(a.get(), entry, raw);
      if (!done.ok()) return std::move(done.error().AddContext(layer_ + ": entry \"" + raw + "\""));
      SLIPWAY_RETURN_IF_ERROR(CheckRatio(a.get()));
    }
    SLIPWAY_RETURN_IF_ERROR(FinishDirectories());
    return std::move(stats_);
  }

 private:
  static std::string Str(const char* s) { return s ? s : ""; }

  Result<void> CheckRatio(archive* a) {
    const std::int64_t in = archive_filter_bytes(a, -1);
    const std::int64_t out = archive_filter_bytes(a, 0);
    if (out > static_cast<std::int64_t>(opts_.max_ratio_floor) && in > 0 &&
        static_cast<double>(out) / static_cast<double>(in) > opts_.max_ratio) {
      return Error(layer_ + ": decompresses to more than " +
                       std::to_string(static_cast<long>(opts_.max_ratio)) +
                       " times its size; refusing a likely decompression bomb",
                   EFBIG);
    }
    return Ok{};
  }

  Result<void> Entry(archive* a, archive_entry* e, const std::string& raw) {
    retired_fd_.Reset();
    SLIPWAY_ASSIGN_OR_RETURN(std::string name, CleanEntryName(raw));
    if (static_cast<std::size_t>(std::count(name.begin(), name.end(), '/')) >= opts_.max_depth) {
      return Error("more than " + std::to_string(opts_.max_depth) + " path components",
                   ENAMETOOLONG);
    }
    const mode_t type = archive_entry_filetype(e);
    const bool is_hardlink = archive_entry_hardlink(e) != nullptr;
    if (name == ".") {
      if (type != AE_IFDIR || is_hardlink) return Error("cannot replace the root directory", EPERM);
      return Ok{};  // the root itself: its metadata belongs to the builder
    }
    const std::string base = Base(name);
    const std::string parent = Parent(name);
    if (base.rfind(kWhiteoutPrefix, 0) == 0) return Whiteout(parent, base);

    SLIPWAY_ASSIGN_OR_RETURN(const int dir_fd, ParentFd(parent));
    struct DirRef {
      int fd;
      int get() const { return fd; }
    } dir{dir_fd};
    if (!seen_.insert(name).second) {
      stats_.warnings.push_back("entry \"" + name + "\" appears twice in the layer; the last wins");
    }
    if (is_hardlink) return Hardlink(dir.get(), base, Str(archive_entry_hardlink(e)));
    const uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    const gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    const mode_t perm = archive_entry_perm(e) & 07777;

    // The common case first: a new regular file (one syscall fewer than looking first).
    if (type == AE_IFREG) {
      UniqueFd fd(openat(dir.get(), base.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (fd.valid()) return RegularFile(a, e, fd.get(), uid, gid, perm);
      if (errno != EEXIST) return ErrnoError("creating the file");
    }

    // Make room: an existing entry is replaced unless both are directories.
    struct stat old;
    const bool exists = fstatat(dir.get(), base.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
    const bool keep_dir = exists && S_ISDIR(old.st_mode) && type == AE_IFDIR;
    if (exists && !keep_dir) {
      InvalidateParent();  // the removed entry may be (an ancestor of) the cached directory
      SLIPWAY_RETURN_IF_ERROR(RemoveAllAt(dir.get(), base));
    }
    switch (type) {
      case AE_IFDIR: {
        if (!keep_dir && mkdirat(dir.get(), base.c_str(), 0700) != 0) {
          return ErrnoError("creating the directory");
        }
        UniqueFd fd(
            openat(dir.get(), base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd.valid()) return ErrnoError("opening the directory");
        SLIPWAY_RETURN_IF_ERROR(Attributes(fd.get(), e, uid, gid, perm, !keep_dir));
        dir_times_[name] = Times(e);
        return Ok{};
      }
      case AE_IFREG: {
        UniqueFd fd(openat(dir.get(), base.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid()) return ErrnoError("creating the file");
        return RegularFile(a, e, fd.get(), uid, gid, perm);
      }
      case AE_IFLNK: {
        // The target is stored verbatim: containment comes from resolving later entries in-root.
        InvalidateParent();  // later paths through this name now resolve through the link
        const std::string target = Str(archive_entry_symlink(e));
        if (symlinkat(target.c_str(), dir.get(), base.c_str()) != 0) {
          return ErrnoError("creating the symlink");
        }
        if (opts_.preserve_ownership &&
            fchownat(dir.get(), base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
          return ErrnoError("setting the owner of the symlink to " + std::to_string(uid) + ":" +
                            std::to_string(gid));
        }
        const timespec t[2] = {Times(e), Times(e)};
        utimensat(dir.get(), base.c_str(), t, AT_SYMLINK_NOFOLLOW);
        return Ok{};
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        if (!opts_.allow_devices) {
          ++stats_.skipped_special;
          stats_.warnings.push_back("entry \"" + name +
                                    "\": device or FIFO not created (not allowed here)");
          return Ok{};
        }
        const dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        const mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
        if (mknodat(dir.get(), base.c_str(), kind | 0600, type == AE_IFIFO ? 0 : dev) != 0) {
          return ErrnoError("creating the device node");
        }
        if (opts_.preserve_ownership &&
            fchownat(dir.get(), base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
          return ErrnoError("setting the owner");
        }
        if (fchmodat(dir.get(), base.c_str(), perm, 0) != 0) return ErrnoError("setting the mode");
        return Ok{};
      }
      default:
        return Error("unsupported entry type " + std::to_string(type), EINVAL);
    }
  }

  static timespec Times(archive_entry* e) {
    timespec t{};
    t.tv_sec = archive_entry_mtime(e);
    t.tv_nsec = archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0;
    return t;
  }

  Result<void> Data(archive* a, int fd) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    la_int64_t written = 0;
    for (;;) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        return Error("reading data: " + Str(archive_error_string(a)), EIO);
      }
      if (offset != written) {
        // A sparse hole: leave it unwritten (the file is extended by ftruncate below).
        if (offset < written) return Error("sparse map goes backwards", EINVAL);
        written = offset;
      }
      stats_.bytes += size;
      if (stats_.bytes > opts_.max_bytes) {
        return Error("the layer writes more than " + std::to_string(opts_.max_bytes) + " bytes",
                     EFBIG);
      }
      const char* p = static_cast<const char*>(buf);
      size_t left = size;
      while (left > 0) {
        ssize_t n = pwrite(fd, p, left, written);
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoError("writing data");
        }
        p += n;
        left -= static_cast<size_t>(n);
        written += n;
      }
    }
    if (ftruncate(fd, written) != 0) return ErrnoError("sizing the file");
    return Ok{};
  }

  // Owner, then mode (chown clears set-id bits), then xattrs (capabilities after chown too).
  Result<void> Attributes(int fd, archive_entry* e, uid_t uid, gid_t gid, mode_t perm,
                          bool fresh = true) {
    // Created just now, an entry already belongs to euid:egid; chown only to change that.
    const bool owned = fresh && uid == euid_ && gid == egid_;
    if (opts_.preserve_ownership && !owned && fchown(fd, uid, gid) != 0) {
      return ErrnoError("setting the owner to " + std::to_string(uid) + ":" + std::to_string(gid));
    }
    if (fchmod(fd, perm) != 0) return ErrnoError("setting the mode");
    archive_entry_xattr_reset(e);
    std::set<std::string> done;  // a PAX header may carry the same xattr in two spellings
    const char* xname;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
      const std::string n = Str(xname);
      if (!done.insert(n).second) continue;
      if (!XattrAllowed(n)) {
        stats_.warnings.push_back("xattr " + n + " not restored");
        continue;
      }
      if (fsetxattr(fd, n.c_str(), value, size, 0) != 0) {
        if (errno == ENOTSUP || errno == EPERM) {
          stats_.warnings.push_back("xattr " + n + " not restored: " + std::strerror(errno));
          continue;
        }
        return ErrnoError("setting xattr " + n);
      }
    }
    return Ok{};
  }

  // The directory fd of `parent`, resolved in-root and created if missing. Consecutive entries of
  // one directory share it; anything that could change what `parent` resolves to drops it.
  Result<int> ParentFd(const std::string& parent) {
    if (!parent_fd_.valid() || parent != parent_path_) {
      SLIPWAY_ASSIGN_OR_RETURN(parent_fd_, MkdirAllInRoot(root_fd_, parent));
      parent_path_ = parent;
    }
    return parent_fd_.get();
  }
  // The current entry may still be using the fd: park it until the next entry starts.
  void InvalidateParent() {
    if (parent_fd_.valid()) retired_fd_ = std::move(parent_fd_);
    parent_path_.clear();
  }

  Result<void> Hardlink(int dir, const std::string& base, const std::string& raw_target) {
    SLIPWAY_ASSIGN_OR_RETURN(std::string target, CleanEntryName(raw_target));
    if (target == ".") return Error("a hardlink to the root directory", EPERM);
    auto tdir = OpenInRoot(root_fd_, Parent(target), O_PATH | O_DIRECTORY);
    if (!tdir.ok()) {
      return Error("hardlink target \"" + raw_target + "\" does not exist in the root",
                   tdir.error().errno_value());
    }
    struct stat st;
    const std::string tbase = Base(target);
    if (fstatat(tdir->get(), tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError("hardlink target \"" + raw_target + "\" does not exist in the root");
    }
    if (S_ISDIR(st.st_mode)) {
      return Error("hardlink target \"" + raw_target + "\" is a directory", EPERM);
    }
    SLIPWAY_RETURN_IF_ERROR(RemoveAllAt(dir, base));
    if (linkat(tdir->get(), tbase.c_str(), dir, base.c_str(), 0) != 0) {
      return ErrnoError("creating the hardlink to \"" + raw_target + "\"");
    }
    return Ok{};
  }

  Result<void> RegularFile(archive* a, archive_entry* e, int fd, uid_t uid, gid_t gid,
                           mode_t perm) {
    SLIPWAY_RETURN_IF_ERROR(Data(a, fd));
    SLIPWAY_RETURN_IF_ERROR(Attributes(fd, e, uid, gid, perm));
    const timespec t[2] = {Times(e), Times(e)};
    if (futimens(fd, t) != 0) return ErrnoError("setting times");
    return Ok{};
  }

  // The names this layer put into directory `dir` (identified by inode, so that an opaque
  // whiteout reached through a symlinked path still recognises them).
  std::set<std::string> OwnChildren(int dir) {
    std::set<std::string> names;
    struct stat target;
    if (fstat(dir, &target) != 0) return names;
    std::map<std::string, bool> same;  // parent path -> resolves to `dir`
    for (const std::string& p : seen_) {
      const std::string parent = Parent(p);
      auto it = same.find(parent);
      if (it == same.end()) {
        bool match = false;
        auto fd = OpenInRoot(root_fd_, parent, O_PATH | O_DIRECTORY);
        struct stat st;
        if (fd.ok() && fstat(fd->get(), &st) == 0) {
          match = st.st_dev == target.st_dev && st.st_ino == target.st_ino;
        }
        it = same.emplace(parent, match).first;
      }
      if (it->second) names.insert(Base(p));
    }
    return names;
  }

  Result<void> Whiteout(const std::string& parent, const std::string& base) {
    ++stats_.whiteouts;
    InvalidateParent();
    const bool opaque = base == kOpaqueWhiteout;
    const std::string victim = base.substr(sizeof(kWhiteoutPrefix) - 1);
    if (!opaque && (victim.empty() || victim == "." || victim == ".." ||
                    victim.find('/') != std::string::npos)) {
      return Error("invalid whiteout name \"" + base + "\"", EINVAL);
    }
    auto dir = OpenInRoot(root_fd_, parent, O_PATH | O_DIRECTORY);
    if (!dir.ok()) {
      if (dir.error().errno_value() == ENOENT) return Ok{};  // nothing below to hide
      return std::move(dir).error();
    }
    if (opaque) {
      // Hide every lower child; keep what this layer already put there.
      UniqueFd rd(openat(dir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!rd.valid()) return ErrnoError("opening the directory of an opaque whiteout");
      const std::set<std::string> own = OwnChildren(rd.get());
      return RemoveChildrenAt(rd.get(),
                              [&](int, const std::string& child) { return own.count(child) > 0; });
    }
    UniqueFd rd(openat(dir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!rd.valid()) return ErrnoError("opening the directory of a whiteout");
    return RemoveAllAt(rd.get(), victim);
  }

  // Directory times last, deepest first, so creating children does not disturb them.
  Result<void> FinishDirectories() {
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      auto fd = OpenInRoot(root_fd_, it->first, O_RDONLY | O_DIRECTORY);
      if (!fd.ok()) continue;  // removed by a later whiteout
      const timespec t[2] = {it->second, it->second};
      futimens(fd->get(), t);
    }
    return Ok{};
  }

  int root_fd_;
  std::string layer_;
  const ExtractOptions& opts_;
  ExtractStats stats_;
  std::set<std::string> seen_;
  const uid_t euid_ = geteuid();
  const gid_t egid_ = getegid();
  UniqueFd parent_fd_;
  UniqueFd retired_fd_;
  std::string parent_path_;
  std::map<std::string, timespec> dir_times_;
};

}  // namespace

Result<std::string> CleanEntryName(const std::string& name) {
  if (name.empty()) return Error("empty entry name", EINVAL);
  if (name.size() > PATH_MAX) return Error("entry name longer than PATH_MAX", ENAMETOOLONG);
  std::string_view rel = name;
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  std::string clean = CleanPath(rel);
  if (clean == ".." || clean.rfind("../", 0) == 0) {
    return Error("\"" + name + "\" leaves the root", EPERM);
  }
  return clean;
}

Result<ExtractStats> ExtractLayer(int root_fd, int layer_fd, const std::string& layer_name,
                                  const ExtractOptions& options) {
  Extractor x(root_fd, layer_name, options);
  return x.Run(layer_fd);
}

namespace {

enum class Codec { kPlain, kGzip, kZstd };

Codec Sniff(const unsigned char* b, std::size_t n) {
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return Codec::kGzip;
  if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return Codec::kZstd;
  return Codec::kPlain;
}

// Reads `in` to EOF, hashing it, decompressing into `out`. Returns an error message or "".
std::string Pump(int in, int out, Codec codec, image::Sha256* hash, const ExtractOptions& o,
                 const std::string& name) {
  std::vector<unsigned char> ibuf(1 << 20), obuf(1 << 20);
  std::uint64_t read_total = 0, written = 0;
  auto emit = [&](const unsigned char* p, std::size_t n) -> bool {
    written += n;
    while (n > 0) {
      ssize_t w = write(out, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return false;  // the reader stopped (it failed): its error is the one to report
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  };
  auto bomb = [&] {
    return written > o.max_ratio_floor && read_total > 0 &&
           static_cast<double>(written) / static_cast<double>(read_total) > o.max_ratio;
  };
  z_stream z{};
  ZSTD_DStream* zs = nullptr;
  if (codec == Codec::kGzip && inflateInit2(&z, 15 + 32) != Z_OK) return "starting gzip";
  if (codec == Codec::kZstd) {
    zs = ZSTD_createDStream();
    if (!zs || ZSTD_isError(ZSTD_initDStream(zs))) return "starting zstd";
  }
  std::string err;
  bool ended = codec != Codec::kGzip;  // gzip: at the end of a member
  for (;;) {
    ssize_t n = read(in, ibuf.data(), ibuf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = std::string("reading ") + name + ": " + std::strerror(errno);
      break;
    }
    if (n == 0) break;
    hash->Update(ibuf.data(), static_cast<std::size_t>(n));
    read_total += static_cast<std::uint64_t>(n);
    if (codec == Codec::kGzip) {
      z.next_in = ibuf.data();
      z.avail_in = static_cast<uInt>(n);
      while (z.avail_in > 0) {
        z.next_out = obuf.data();
        z.avail_out = static_cast<uInt>(obuf.size());
        int r = inflate(&z, Z_NO_FLUSH);
        ended = false;
        if (r == Z_STREAM_END) {  // a member ends; another may follow
          ended = true;
          inflateReset(&z);
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
          err = name + ": corrupt gzip data";
          break;
        }
        if (!emit(obuf.data(), obuf.size() - z.avail_out)) return "";
        if (r == Z_BUF_ERROR && z.avail_out != 0) break;
      }
    } else if (codec == Codec::kZstd) {
      ZSTD_inBuffer zin{ibuf.data(), static_cast<std::size_t>(n), 0};
      while (zin.pos < zin.size) {
        ZSTD_outBuffer zout{obuf.data(), obuf.size(), 0};
        std::size_t r = ZSTD_decompressStream(zs, &zout, &zin);
        if (ZSTD_isError(r)) {
          err = name + ": corrupt zstd data";
          break;
        }
        if (!emit(obuf.data(), zout.pos)) return "";
      }
    } else if (!emit(ibuf.data(), static_cast<std::size_t>(n))) {
      return "";
    }
    if (!err.empty()) break;
    if (bomb()) {
      err = name + ": decompresses to more than " + std::to_string(static_cast<long>(o.max_ratio)) +
            " times its size; refusing a likely decompression bomb";
      break;
    }
  }
  if (codec == Codec::kGzip) inflateEnd(&z);
  if (zs) ZSTD_freeDStream(zs);
  if (err.empty() && !ended) err = name + ": truncated gzip data";
  return err;
}

}  // namespace

Result<ExtractStats> ExtractLayerFile(int root_fd, const std::string& path,
                                      const std::string& layer_name,
                                      const ExtractOptions& options, std::string* digest) {
  UniqueFd in(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return ErrnoError("opening the layer " + path);
  unsigned char head[4] = {};
  const ssize_t got = pread(in.get(), head, sizeof(head), 0);
  const Codec codec = Sniff(head, got > 0 ? static_cast<std::size_t>(got) : 0);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoError("creating a pipe for " + layer_name);
  UniqueFd pr(p[0]), pw(p[1]);
  fcntl(pw.get(), F_SETPIPE_SZ, 1 << 20);
  image::Sha256 hash;
  std::string pump_error;
  std::thread pump([&] {
    pump_error = Pump(in.get(), pw.get(), codec, &hash, options, layer_name);
    pw.Reset();  // EOF for the extraction
  });
  ExtractOptions o = options;
  auto stats = ExtractLayer(root_fd, pr.get(), layer_name, o);
  pr.Reset();  // unblocks the pump if extraction stopped early
  pump.join();
  if (!pump_error.empty()) return Error(pump_error, EINVAL);
  if (!stats.ok()) return std::move(stats).error();
  if (digest) *digest = hash.Digest();
  return stats;
}

}  // namespace slipway::snapshot
