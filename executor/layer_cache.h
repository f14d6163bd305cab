// The layer cache (--cache, --cache-repo, --cache-ttl): the layer a step produced, stored under a
// key computed from everything the step depends on, so that a rebuild reuses it as is.
//
//   SLIPWAY_ASSIGN_OR_RETURN(auto cache, OpenLayerCache("oci:/var/cache/layers", reg, ttl, dir));
//   auto hit = cache->Lookup(key);      // a miss is nullopt; a broken entry is an error (a miss)
//   cache->Store(key, entry);           // callers treat failures as warnings
//
// Each entry is an ordinary one-layer image (zero layers for a step that changed nothing) tagged
// "sha256-<key>" in the cache repository -- a registry repository ("registry.example/cache") or an
// OCI layout ("oci:PATH") -- so skopeo and registries handle it like any image. Its config's
// `created` is compared with the TTL. Entries are verified by digest when read.
#ifndef SLIPWAY_EXECUTOR_LAYER_CACHE_H_
#define SLIPWAY_EXECUTOR_LAYER_CACHE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "executor/image_source.h"
#include "image/registry.h"

namespace slipway::executor {

struct CacheEntry {
  bool empty = false;  // the step changed nothing
  Layer layer;         // blob_path, digest, media_type, size, diff_id
};

class LayerCache {
 public:
  virtual ~LayerCache() = default;
  virtual Result<std::optional<CacheEntry>> Lookup(const std::string& key) = 0;
  virtual Result<void> Store(const std::string& key, const CacheEntry& entry) = 0;
};

// `repo`: "oci:PATH" or a registry repository; `blob_dir` receives pulled blobs.
Result<std::unique_ptr<LayerCache>> OpenLayerCache(const std::string& repo,
                                                   const image::RegistryOptions& registry,
                                                   std::int64_t ttl_seconds,
                                                   const std::string& blob_dir);

// The cache tag of a key ("sha256-<hex>").
std::string CacheTag(const std::string& key_digest);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_LAYER_CACHE_H_
