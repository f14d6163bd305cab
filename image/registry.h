// A registry client (distribution-spec v2, libcurl): pull images into a local blob cache, push
// images, with the auth flows registries use.
//
//   RegistryOptions o;  o.insecure_registries = {"localhost:5000"};
//   Registry reg(o);
//   SLIPWAY_ASSIGN_OR_RETURN(PulledImage img, reg.Pull(ref, {"linux", "amd64", ""}, "/cache/blobs"));
//   SLIPWAY_ASSIGN_OR_RETURN(std::string digest, reg.Push(dest, blobs, manifest, media_type));
//
// Auth: a 401's WWW-Authenticate says Basic or Bearer. Bearer tokens are fetched from the realm
// for the repository's scope (plus the source repository's pull scope for a cross-repository
// mount), with Basic credentials when the docker config.json has some ($DOCKER_CONFIG or
// ~/.docker: `auths` entries with `auth`, `username`/`password`, or an `identitytoken` used as an
// OAuth2 refresh token). Credentials are never logged; redirects are followed by hand, and the
// Authorization header is never sent to another host (blob downloads commonly redirect to a CDN).
//
// Pull: tags and digests; OCI indexes and Docker manifest lists resolved to the platform asked
// for; manifests and blobs verified against their digests; blobs streamed to disk into
// `blob_dir/sha256/<hex>` (a blob already there is not downloaded again).
// Push: a blob the repository already has is skipped (HEAD); one known in another repository of
// the same registry is mounted; others are uploaded whole, or in chunks when `chunk_size` is set
// (resuming after a 416 from the offset the registry reports); the manifest goes last, with its
// media type as Content-Type.
// Retries (`retries` times, exponential backoff from 200 ms) on connection errors, 5xx and 429
// (honouring Retry-After); errors quote the registry's error code and message.
#ifndef SLIPWAY_IMAGE_REGISTRY_H_
#define SLIPWAY_IMAGE_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "image/oci.h"
#include "image/reference.h"

namespace slipway::image {

struct RegistryOptions {
  bool insecure = false;                        // plain http for every registry
  std::set<std::string> insecure_registries;    // plain http for these hosts ("localhost:5000")
  bool skip_tls_verify = false;                 // https without certificate checks
  std::map<std::string, std::string> ca_files;  // host -> PEM file of CAs to trust
  std::vector<std::string> mirrors;             // tried first for docker.io pulls
  std::map<std::string, std::string> registry_map;  // registry -> the one to use instead
  int retries = 3;
  std::size_t chunk_size = 0;  // 0: monolithic blob uploads
  std::string docker_config;   // config.json path; "" = $DOCKER_CONFIG/config.json or ~/.docker
  std::function<void(const std::string&)> log;  // requests and retries (never credentials)
};

struct PulledImage {
  Reference ref;
  std::string manifest_digest;
  std::string config_bytes;
  ImageConfig config;
  struct Blob {
    std::string digest, media_type, path;
    std::int64_t size = 0;
  };
  std::vector<Blob> layers;
};

struct PushBlob {
  std::string digest, media_type, path;
  std::int64_t size = 0;
  std::string mount_from;  // a repository of the same registry that has it, or ""
};

struct RegistryStats {
  int requests = 0;
  int blobs_uploaded = 0;
  int blobs_skipped = 0;
  int blobs_mounted = 0;
  int retries = 0;
};

class Registry {
 public:
  explicit Registry(RegistryOptions options);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Result<PulledImage> Pull(const Reference& ref, const Platform& platform,
                           const std::string& blob_dir);
  // Pushes the blobs (the config among them), then the manifest; returns its digest.
  Result<std::string> Push(const Reference& ref, const std::vector<PushBlob>& blobs,
                           const std::string& manifest, const std::string& media_type);

  const RegistryStats& stats() const { return stats_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  RegistryStats stats_;
};

// Parses a WWW-Authenticate header: the scheme ("bearer", "basic") and its parameters.
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
Challenge ParseChallenge(const std::string& header);

}  // namespace slipway::image

#endif  // SLIPWAY_IMAGE_REGISTRY_H_
