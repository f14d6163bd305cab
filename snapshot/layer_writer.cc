#include "snapshot/layer_writer.h"

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
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <thread>

#include "base/in_root.h"
#include "base/path.h"
#include "base/unique_fd.h"
#include "image/digest.h"

namespace slipway::snapshot {
namespace {

// The name an entry has in the tar.
std::string TarName(const LayerEntry& e) {
  const std::size_t slash = e.path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : e.path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
  switch (e.kind) {
    case LayerEntry::kWhiteout:
      return dir + ".wh." + base;
    case LayerEntry::kOpaque:
      return e.path + "/.wh..wh..opq";
    case LayerEntry::kPath:
      break;
  }
  return e.path;
}

// gzip in independent blocks on several threads. Each block is raw deflate ending in a sync
// flush (byte-aligned, not final); the last one ends the stream. Concatenated behind one gzip
// header and followed by the combined CRC-32 and size, they form one ordinary gzip member.
class ParallelGzip {
 public:
  static constexpr std::size_t kBlock = 1 << 20;
  struct Done {
    std::string bytes;
    uLong crc = 0;
    std::size_t in = 0;
    bool ok = true;
  };

  ParallelGzip(int level, int threads) : level_(level), threads_(std::max(1, threads)) {
    block_.reserve(kBlock);
  }

  // Header: magic, deflate, no flags, mtime 0, no extra flags, OS unix.
  static std::string Header() {
    return std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  }

  template <typename Emit>
  Result<void> Write(const char* data, std::size_t n, Emit&& emit) {
    while (n > 0) {
      std::size_t take = std::min(n, kBlock - block_.size());
      block_.append(data, take);
      data += take;
      n -= take;
      if (block_.size() == kBlock) SLIPWAY_RETURN_IF_ERROR(Submit(false, emit));
    }
    return Ok{};
  }

  template <typename Emit>
  Result<void> Finish(Emit&& emit) {
    SLIPWAY_RETURN_IF_ERROR(Submit(true, emit));
    while (!pending_.empty()) SLIPWAY_RETURN_IF_ERROR(Drain(emit));
    unsigned char trailer[8];
    for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>(crc_ >> (8 * i));
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>(total_ >> (8 * i));
    return emit(trailer, sizeof(trailer));
  }

 private:
  static Done Compress(std::string in, int level, bool last) {
    Done d;
    d.in = in.size();
    d.crc = crc32(0L, reinterpret_cast<const Bytef*>(in.data()), static_cast<uInt>(in.size()));
    z_stream z{};
    if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      d.ok = false;
      return d;
    }
    d.bytes.resize(deflateBound(&z, in.size()) + 64);
    z.next_in = reinterpret_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(d.bytes.data());
    z.avail_out = static_cast<uInt>(d.bytes.size());
    int r = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
    d.ok = last ? r == Z_STREAM_END : r == Z_OK;
    d.bytes.resize(d.bytes.size() - z.avail_out);
    deflateEnd(&z);
    return d;
  }

  template <typename Emit>
  Result<void> Submit(bool last, Emit&& emit) {
    pending_.push_back(std::async(std::launch::async, Compress, std::move(block_), level_, last));
    block_ = std::string();
    block_.reserve(kBlock);
    // At most two blocks per thread in flight: memory stays bounded.
    while (pending_.size() >= static_cast<std::size_t>(2 * threads_)) {
      SLIPWAY_RETURN_IF_ERROR(Drain(emit));
    }
    return Ok{};
  }

  template <typename Emit>
  Result<void> Drain(Emit&& emit) {
    Done d = pending_.front().get();
    pending_.pop_front();
    if (!d.ok) return Error("gzip compression failed", EIO);
    crc_ = crc32_combine(crc_, d.crc, static_cast<z_off_t>(d.in));
    total_ += d.in;
    return emit(d.bytes.data(), d.bytes.size());
  }

  int level_;
  int threads_;
  std::string block_;
  std::deque<std::future<Done>> pending_;
  uLong crc_ = 0;
  std::uint64_t total_ = 0;
};

// Compressor + digests: tar bytes in, (digest of tar, digest of output, output to fd).
class Sink {
 public:
  Sink(int fd, const LayerOptions& o) : fd_(fd), opts_(o) {}
  ~Sink() {
    if (gz_started_) deflateEnd(&gz_);
    if (zs_) ZSTD_freeCStream(zs_);
  }

  Result<void> Start() {
    const int threads =
        opts_.threads > 0 ? opts_.threads : static_cast<int>(std::thread::hardware_concurrency());
    if (opts_.compression == Compression::kGzip && threads > 1) {
      pgz_ = std::make_unique<ParallelGzip>(opts_.level, threads);
      const std::string header = ParallelGzip::Header();
      return Emit(header.data(), header.size());
    }
    if (opts_.compression == Compression::kGzip) {
      std::memset(&gz_, 0, sizeof(gz_));
      // windowBits 15+16: a gzip wrapper; zlib writes mtime 0, no name, OS unix: deterministic.
      if (deflateInit2(&gz_, opts_.level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return Error("starting gzip compression", ENOMEM);
      }
      gz_started_ = true;
    } else if (opts_.compression == Compression::kZstd) {
      zs_ = ZSTD_createCStream();
      if (!zs_ || ZSTD_isError(ZSTD_initCStream(zs_, opts_.level))) {
        return Error("starting zstd compression", ENOMEM);
      }
    }
    return Ok{};
  }

  Result<void> Write(const void* data, std::size_t n) {
    tar_hash_.Update(data, n);
    uncompressed_ += n;
    return Compress(data, n, false);
  }

  Result<void> Finish() { return Compress(nullptr, 0, true); }

  std::string diff_id() { return tar_hash_.Digest(); }
  std::string digest() { return out_hash_.Digest(); }
  std::uint64_t size() const { return written_; }
  std::uint64_t uncompressed() const { return uncompressed_; }

 private:
  Result<void> Emit(const void* data, std::size_t n) {
    out_hash_.Update(data, n);
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("writing the layer");
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      written_ += static_cast<std::uint64_t>(w);
    }
    return Ok{};
  }

  Result<void> Compress(const void* data, std::size_t n, bool finish) {
    if (pgz_) {
      auto emit = [this](const void* d, std::size_t k) { return Emit(d, k); };
      SLIPWAY_RETURN_IF_ERROR(pgz_->Write(static_cast<const char*>(data), n, emit));
      if (finish) return pgz_->Finish(emit);
      return Ok{};
    }
    unsigned char out[1 << 16];
    if (opts_.compression == Compression::kNone) {
      if (n) return Emit(data, n);
      return Ok{};
    }
    if (opts_.compression == Compression::kGzip) {
      gz_.next_in = static_cast<Bytef*>(const_cast<void*>(data));
      gz_.avail_in = static_cast<uInt>(n);
      int r;
      do {
        gz_.next_out = out;
        gz_.avail_out = sizeof(out);
        r = deflate(&gz_, finish ? Z_FINISH : Z_NO_FLUSH);
        if (r == Z_STREAM_ERROR) return Error("gzip compression failed", EIO);
        SLIPWAY_RETURN_IF_ERROR(Emit(out, sizeof(out) - gz_.avail_out));
      } while (gz_.avail_out == 0 || (finish && r != Z_STREAM_END));
      return Ok{};
    }
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer o{out, sizeof(out), 0};
      std::size_t left = ZSTD_compressStream2(zs_, &o, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
      if (ZSTD_isError(left)) return Error(std::string("zstd: ") + ZSTD_getErrorName(left), EIO);
      SLIPWAY_RETURN_IF_ERROR(Emit(out, o.pos));
      if (finish ? left == 0 : in.pos == in.size) break;
    }
    return Ok{};
  }

  int fd_;
  const LayerOptions& opts_;
  z_stream gz_{};
  bool gz_started_ = false;
  ZSTD_CStream* zs_ = nullptr;
  std::unique_ptr<ParallelGzip> pgz_;
  image::Sha256 tar_hash_, out_hash_;
  std::uint64_t written_ = 0, uncompressed_ = 0;

 public:
  std::optional<Error> error;  // set by the libarchive callback
};

la_ssize_t WriteCallback(archive*, void* client, const void* buf, size_t n) {
  Sink* s = static_cast<Sink*>(client);
  auto r = s->Write(buf, n);
  if (!r.ok()) {
    s->error = std::move(r).error();
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

struct WriterDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

bool KeepXattr(const std::string& n) {
  if (n.rfind("trusted.overlay.", 0) == 0 || n.rfind("user.overlay.", 0) == 0) return false;
  return n == "security.capability" || n.rfind("user.", 0) == 0;
}

// xattrs of `name` in directory `dir` (not following a final symlink), sorted by name.
std::vector<std::pair<std::string, std::string>> Xattrs(int dir, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string path = "/proc/self/fd/" + std::to_string(dir) + "/" + name;
  char names[8192];
  ssize_t n = llistxattr(path.c_str(), names, sizeof(names));
  if (n <= 0) return out;
  for (ssize_t i = 0; i < n;) {
    std::string xn(names + i);
    i += static_cast<ssize_t>(xn.size()) + 1;
    if (!KeepXattr(xn)) continue;
    char value[65536];
    ssize_t v = lgetxattr(path.c_str(), xn.c_str(), value, sizeof(value));
    if (v >= 0) out.push_back({xn, std::string(value, static_cast<std::size_t>(v))});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void SortLayerEntries(std::vector<LayerEntry>& entries) {
  // The key of each entry, made once: its tar name in tree order, with the last component marked
  // so that within a directory whiteouts come first.
  std::vector<std::pair<std::string, std::size_t>> keyed;
  keyed.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::string name = TarName(entries[i]);
    const std::size_t slash = name.rfind('/');
    const std::size_t last = slash == std::string::npos ? 0 : slash + 1;
    const bool wh = name.compare(last, 4, ".wh.") == 0;
    name.insert(last, 1, wh ? '\x01' : '\x02');
    keyed.emplace_back(std::move(name), i);
  }
  auto less = [](const auto& a, const auto& b) { return TreeLess(a.first, b.first); };
  // Lists from the change detectors come sorted already (and are sorted again by WriteLayer).
  if (std::is_sorted(keyed.begin(), keyed.end(), less)) {
    entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
    return;
  }
  std::stable_sort(keyed.begin(), keyed.end(), less);
  std::vector<LayerEntry> sorted;
  sorted.reserve(entries.size());
  for (const auto& k : keyed) {
    if (sorted.empty() || !(sorted.back() == entries[k.second])) {
      sorted.push_back(std::move(entries[k.second]));
    }
  }
  entries = std::move(sorted);
}

Result<LayerBlob> WriteLayer(int root_fd, std::vector<LayerEntry> entries, int out_fd,
                             const LayerOptions& options) {
  SortLayerEntries(entries);
  Sink sink(out_fd, options);
  SLIPWAY_RETURN_IF_ERROR(sink.Start());
  std::unique_ptr<archive, WriterDeleter> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_per_block(a.get(), 10240);
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &sink, nullptr, WriteCallback, nullptr) != ARCHIVE_OK) {
    return Error(std::string("starting the layer tar: ") + archive_error_string(a.get()), EIO);
  }
  auto clamp = [&](std::int64_t t) {
    return options.clamp_mtime && t > *options.clamp_mtime ? *options.clamp_mtime : t;
  };
  std::map<std::pair<dev_t, ino_t>, std::string> linked;  // first path of each hardlink set
  LayerBlob blob;
  auto fail = [&](const std::string& what, const std::string& path) -> Error {
    if (sink.error) return std::move(sink.error->AddContext(path));
    return Error("writing layer entry \"" + path + "\": " + what + ": " +
                     (archive_error_string(a.get()) ? archive_error_string(a.get()) : "?"),
                 EIO);
  };
  for (const LayerEntry& le : entries) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    const std::string name = TarName(le);
    archive_entry_set_pathname(e.get(), name.c_str());
    if (le.kind != LayerEntry::kPath) {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_perm(e.get(), 0);
      archive_entry_set_size(e.get(), 0);
      archive_entry_set_mtime(e.get(), clamp(0), 0);
      if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) return fail("header", name);
      ++blob.entries;
      continue;
    }
    const std::size_t slash = le.path.rfind('/');
    const std::string parent = slash == std::string::npos ? "." : le.path.substr(0, slash);
    const std::string base = slash == std::string::npos ? le.path : le.path.substr(slash + 1);
    SLIPWAY_ASSIGN_OR_RETURN(UniqueFd dir, OpenInRoot(root_fd, parent, O_PATH | O_DIRECTORY));
    struct stat st;
    if (fstatat(dir.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError("reading \"" + le.path + "\" for the layer");
    }
    if (S_ISREG(st.st_mode) && base.rfind(".wh.", 0) == 0) {
      return Error("\"" + le.path +
                       "\" cannot be stored in an image: names starting with .wh. "
                       "are whiteouts",
                   EINVAL);
    }
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_mtime(
        e.get(), clamp(st.st_mtim.tv_sec),
        options.clamp_mtime && st.st_mtim.tv_sec >= *options.clamp_mtime ? 0 : st.st_mtim.tv_nsec);
    UniqueFd data;
    if (S_ISREG(st.st_mode)) {
      auto it = st.st_nlink > 1 ? linked.find({st.st_dev, st.st_ino}) : linked.end();
      if (it != linked.end()) {
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
      } else {
        if (st.st_nlink > 1) linked[{st.st_dev, st.st_ino}] = le.path;
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), st.st_size);
        data.Reset(openat(dir.get(), base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!data.valid()) return ErrnoError("opening \"" + le.path + "\" for the layer");
      }
    } else if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      char target[PATH_MAX + 1];
      ssize_t n = readlinkat(dir.get(), base.c_str(), target, PATH_MAX);
      if (n < 0) return ErrnoError("reading the symlink \"" + le.path + "\"");
      archive_entry_set_symlink(e.get(), std::string(target, static_cast<std::size_t>(n)).c_str());
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode)   ? AE_IFCHR
                                          : S_ISBLK(st.st_mode) ? AE_IFBLK
                                                                : AE_IFIFO);
      archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
      archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
    } else {
      continue;  // sockets have no place in an image
    }
    if (!S_ISLNK(st.st_mode)) {
      for (const auto& [k, v] : Xattrs(dir.get(), base)) {
        archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
      }
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) return fail("header", le.path);
    ++blob.entries;
    if (data.valid()) {
      char buf[1 << 16];
      std::int64_t left = st.st_size;
      while (left > 0) {
        ssize_t n = read(data.get(), buf,
                         static_cast<std::size_t>(std::min<std::int64_t>(left, sizeof(buf))));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoError("reading \"" + le.path + "\" for the layer");
        if (n == 0) return Error("\"" + le.path + "\" shrank while being written", EIO);
        if (archive_write_data(a.get(), buf, static_cast<std::size_t>(n)) < 0) {
          return fail("data", le.path);
        }
        left -= n;
      }
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return fail("closing", "(end)");
  SLIPWAY_RETURN_IF_ERROR(sink.Finish());
  blob.diff_id = sink.diff_id();
  blob.digest = sink.digest();
  blob.size = sink.size();
  blob.uncompressed_size = sink.uncompressed();
  return blob;
}

Result<LayerBlob> CompressLayer(int tar_fd, int out_fd, const LayerOptions& options) {
  Sink sink(out_fd, options);
  SLIPWAY_RETURN_IF_ERROR(sink.Start());
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = read(tar_fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("reading the layer tar");
    if (n == 0) break;
    SLIPWAY_RETURN_IF_ERROR(sink.Write(buf.data(), static_cast<std::size_t>(n)));
  }
  SLIPWAY_RETURN_IF_ERROR(sink.Finish());
  LayerBlob blob;
  blob.diff_id = sink.diff_id();
  blob.digest = sink.digest();
  blob.size = sink.size();
  blob.uncompressed_size = sink.uncompressed();
  return blob;
}

}  // namespace slipway::snapshot
