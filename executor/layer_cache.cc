#include "executor/layer_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/unique_fd.h"
#include "image/digest.h"
#include "image/oci.h"

namespace slipway::executor {
namespace {


// Seconds since 1970 of an RFC 3339 UTC time ("2026-11-23T04:16:00Z"), or -1.
std::int64_t ParseTime(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return -1;
  return static_cast<std::int64_t>(timegm(&tm));
}

// The entry as an image: its config and manifest.
std::pair<std::string, std::string> EntryImage(const CacheEntry& e) {
  image::ImageConfig c;
  c.created = image::Rfc3339(std::time(nullptr));
  c.history = {{c.created, "slipway layer cache", "", "", e.empty}};
  if (!e.empty) c.diff_ids = {e.layer.diff_id};
  const std::string config = image::Serialize(image::ToJson(c));
  image::Manifest m;
  m.config.media_type = image::kMediaTypeConfig;
  m.config.digest = image::Sha256Digest(config);
  m.config.size = static_cast<std::int64_t>(config.size());
  if (!e.empty) {
    image::Descriptor d;
    d.media_type = e.layer.media_type;
    d.digest = e.layer.digest;
    d.size = e.layer.size;
    m.layers = {d};
  }
  return {config, image::Serialize(image::ToJson(m))};
}

Result<std::optional<CacheEntry>> FromImage(const image::ImageConfig& c,
                                            const std::vector<Layer>& layers,
                                            std::int64_t ttl) {
  const std::int64_t created = ParseTime(c.created);
  if (ttl > 0 && (created < 0 || std::time(nullptr) - created > ttl)) return std::optional<CacheEntry>();
  CacheEntry e;
  if (layers.empty()) {
    e.empty = true;
    return std::optional<CacheEntry>(e);
  }
  if (layers.size() != 1 || c.diff_ids.size() != 1) {
    return Error("a cache entry must hold at most one layer", EINVAL);
  }
  e.layer = layers[0];
  e.layer.diff_id = c.diff_ids[0];
  return std::optional<CacheEntry>(e);
}

class OciCache : public LayerCache {
 public:
  OciCache(std::string path, std::int64_t ttl) : path_(std::move(path)), ttl_(ttl) {}

  Result<void> Init() {
    for (const std::string& d : {path_, path_ + "/blobs", path_ + "/blobs/sha256"}) {
      if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError("creating " + d);
    }
    if (access((path_ + "/oci-layout").c_str(), F_OK) != 0) {
      SLIPWAY_RETURN_IF_ERROR(WriteFileAtomic(path_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    }
    if (access((path_ + "/index.json").c_str(), F_OK) != 0) {
      image::Index empty;
      SLIPWAY_RETURN_IF_ERROR(WriteFileAtomic(path_ + "/index.json", image::Serialize(image::ToJson(empty))));
    }
    return Ok{};
  }

  Result<std::optional<CacheEntry>> Lookup(const std::string& key) override {
    SLIPWAY_ASSIGN_OR_RETURN(image::OciLayout layout, image::OciLayout::Open(path_));
    const std::string tag = CacheTag(key);
    bool found = false;
    for (const auto& d : layout.index().manifests) {
      auto it = d.annotations.find(image::kRefNameAnnotation);
      found |= it != d.annotations.end() && it->second == tag;
    }
    if (!found) return std::optional<CacheEntry>();
    SLIPWAY_ASSIGN_OR_RETURN(image::ResolvedImage img, layout.Resolve(tag, {}));
    std::vector<Layer> layers;
    for (const image::Descriptor& d : img.manifest.layers) {
      Layer l;
      l.blob_path = layout.BlobPath(d.digest);
      l.digest = d.digest;
      l.media_type = d.media_type;
      l.size = d.size;
      SLIPWAY_ASSIGN_OR_RETURN(std::string got, image::Sha256File(l.blob_path));
      if (got != d.digest) {
        return Error("cache entry " + tag + ": the layer blob is corrupt (" + got + ")", EINVAL);
      }
      layers.push_back(std::move(l));
    }
    return FromImage(img.config, layers, ttl_);
  }

  Result<void> Store(const std::string& key, const CacheEntry& e) override {
    auto [config, manifest] = EntryImage(e);
    if (!e.empty) SLIPWAY_RETURN_IF_ERROR(CopyBlob(e.layer.blob_path, e.layer.digest));
    SLIPWAY_RETURN_IF_ERROR(PutBlob(config));
    SLIPWAY_RETURN_IF_ERROR(PutBlob(manifest));
    // index.json: read, add (replacing the tag), write -- under a lock, renamed into place.
    // A lock file of its own: index.json is replaced by rename, so a lock on it would be taken on
    // an inode the next writer never opens.
    UniqueFd lock(open((path_ + "/.slipway-lock").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!lock.valid() || flock(lock.get(), LOCK_EX) != 0) return ErrnoError("locking " + path_);
    SLIPWAY_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path_ + "/index.json"));
    SLIPWAY_ASSIGN_OR_RETURN(image::Index index, image::IndexFromJson(text));
    const std::string tag = CacheTag(key);
    std::erase_if(index.manifests, [&](const image::Descriptor& d) {
      auto it = d.annotations.find(image::kRefNameAnnotation);
      return it != d.annotations.end() && it->second == tag;
    });
    image::Descriptor md;
    md.media_type = image::kMediaTypeManifest;
    md.digest = image::Sha256Digest(manifest);
    md.size = static_cast<std::int64_t>(manifest.size());
    md.annotations[image::kRefNameAnnotation] = tag;
    index.manifests.push_back(md);
    return WriteFileAtomic(path_ + "/index.json", image::Serialize(image::ToJson(index)));
  }

 private:
  Result<void> PutBlob(const std::string& bytes) {
    const std::string p = path_ + "/blobs/sha256/" + image::Sha256Digest(bytes).substr(7);
    if (access(p.c_str(), F_OK) == 0) return Ok{};
    return WriteFileAtomic(p, bytes);
  }
  Result<void> CopyBlob(const std::string& from, const std::string& digest) {
    const std::string p = path_ + "/blobs/sha256/" + digest.substr(7);
    if (access(p.c_str(), F_OK) == 0) return Ok{};
    SLIPWAY_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(from));
    if (image::Sha256Digest(bytes) != digest) return Error(from + " changed before caching", EIO);
    return WriteFileAtomic(p, bytes);
  }

  std::string path_;
  std::int64_t ttl_;
};

class RegistryCache : public LayerCache {
 public:
  RegistryCache(image::Reference repo, image::RegistryOptions o, std::int64_t ttl, std::string dir)
      : repo_(std::move(repo)), o_(std::move(o)), ttl_(ttl), dir_(std::move(dir)) {}

  Result<std::optional<CacheEntry>> Lookup(const std::string& key) override {
    image::Reference ref = repo_;
    ref.tag = CacheTag(key);
    ref.digest.clear();
    image::Registry reg(o_);
    auto pulled = reg.Pull(ref, {}, dir_);
    if (!pulled.ok()) {
      if (pulled.error().errno_value() == ENOENT) return std::optional<CacheEntry>();  // not cached
      return std::move(pulled).error();
    }
    std::vector<Layer> layers;
    for (const auto& b : pulled->layers) {
      Layer l;
      l.blob_path = b.path;
      l.digest = b.digest;
      l.media_type = b.media_type;
      l.size = b.size;
      layers.push_back(std::move(l));
    }
    return FromImage(pulled->config, layers, ttl_);
  }

  Result<void> Store(const std::string& key, const CacheEntry& e) override {
    auto [config, manifest] = EntryImage(e);
    const std::string config_file = dir_ + "/.cache-config-" + std::to_string(getpid());
    {
      UniqueFd fd(open(config_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!fd.valid() ||
          write(fd.get(), config.data(), config.size()) != static_cast<ssize_t>(config.size())) {
        return ErrnoError("writing " + config_file);
      }
    }
    std::vector<image::PushBlob> blobs;
    if (!e.empty) {
      blobs.push_back({e.layer.digest, e.layer.media_type, e.layer.blob_path, e.layer.size,
                       e.layer.origin_registry == repo_.registry ? e.layer.origin_repository : ""});
    }
    blobs.push_back({image::Sha256Digest(config), image::kMediaTypeConfig, config_file,
                     static_cast<std::int64_t>(config.size()), ""});
    image::Reference ref = repo_;
    ref.tag = CacheTag(key);
    ref.digest.clear();
    image::Registry reg(o_);
    auto pushed = reg.Push(ref, blobs, manifest, image::kMediaTypeManifest);
    unlink(config_file.c_str());
    if (!pushed.ok()) return std::move(pushed).error();
    return Ok{};
  }

 private:
  image::Reference repo_;
  image::RegistryOptions o_;
  std::int64_t ttl_;
  std::string dir_;
};

}  // namespace

std::string CacheTag(const std::string& key_digest) {
  return "sha256-" + (key_digest.rfind("sha256:", 0) == 0 ? key_digest.substr(7) : key_digest);
}

Result<std::unique_ptr<LayerCache>> OpenLayerCache(const std::string& repo,
                                                   const image::RegistryOptions& registry,
                                                   std::int64_t ttl_seconds,
                                                   const std::string& blob_dir) {
  if (repo.rfind("oci:", 0) == 0) {
    auto c = std::make_unique<OciCache>(repo.substr(4), ttl_seconds);
    SLIPWAY_RETURN_IF_ERROR(c->Init());
    return std::unique_ptr<LayerCache>(std::move(c));
  }
  auto ref = image::ParseReference(repo);
  if (!ref.ok()) return std::move(ref.error().AddContext("--cache-repo"));
  for (const std::string& d : {blob_dir}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("creating " + d);
  }
  return std::unique_ptr<LayerCache>(
      std::make_unique<RegistryCache>(*ref, registry, ttl_seconds, blob_dir));
}

}  // namespace slipway::executor
