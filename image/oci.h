// OCI image formats: descriptors, manifests, indexes, the image config, the OCI image layout
// (read and write), and the hybrid docker-archive tarball (write) that `docker load`,
// `podman load` and `skopeo copy docker-archive:` accept.
//
//   OciLayoutWriter w = *OciLayoutWriter::Create("/out/layout");     // into a temporary dir
//   Descriptor layer = *w.AddBlobFile(layer_path, kMediaTypeLayerGzip);
//   ... config, manifest ...
//   w.AddManifest(manifest_desc, "latest");
//   w.Commit();                                                       // renamed into place
//
//   OciLayout in = *OciLayout::Open("/in/layout");
//   ResolvedImage img = *in.Resolve("latest", {"linux", "amd64", ""});  // digests verified
//
// JSON is written with sorted keys and no spaces, so equal inputs give byte-identical blobs.
// Readers ignore unknown fields and media types they do not need, and verify every digest.
//
// Guarantees: allocate; blobs are streamed from and to files; not thread-safe per object.
#ifndef SLIPWAY_IMAGE_OCI_H_
#define SLIPWAY_IMAGE_OCI_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace slipway::image {

inline constexpr char kMediaTypeIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kMediaTypeManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kMediaTypeConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kMediaTypeLayer[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kMediaTypeLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kMediaTypeLayerZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kDockerLayerGzip[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr char kRefNameAnnotation[] = "org.opencontainers.image.ref.name";

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;
};

struct Descriptor {
  std::string media_type;
  std::string digest;
  std::int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

struct Manifest {
  std::string media_type = kMediaTypeManifest;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

struct Index {
  std::string media_type = kMediaTypeIndex;
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct HistoryEntry {
  std::string created;
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
};

struct Healthcheck {
  std::vector<std::string> test;
  std::int64_t interval = 0, timeout = 0, start_period = 0, start_interval = 0;
  int retries = 0;
};

// The image config (OCI config.md, plus the Docker fields Docker round-trips).
struct ImageConfig {
  std::string created;  // RFC 3339
  std::string author;
  std::string architecture = "amd64";
  std::string os = "linux";
  std::string variant;
  // config
  std::string user;
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> env;
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::vector<std::string> volumes;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::optional<Healthcheck> healthcheck;
  std::vector<std::string> on_build;
  std::vector<std::string> shell;
  // rootfs and history
  std::vector<std::string> diff_ids;
  std::vector<HistoryEntry> history;
};

nlohmann::json ToJson(const Descriptor& d);
nlohmann::json ToJson(const Manifest& m);
nlohmann::json ToJson(const Index& i);
nlohmann::json ToJson(const ImageConfig& c);
// Compact, sorted-key serialisation: the bytes whose digest names the blob.
std::string Serialize(const nlohmann::json& j);

Result<Descriptor> DescriptorFromJson(const nlohmann::json& j);
Result<Manifest> ManifestFromJson(const std::string& bytes);
Result<Index> IndexFromJson(const std::string& bytes);
Result<ImageConfig> ConfigFromJson(const std::string& bytes);

// RFC 3339 UTC time of `seconds` since 1970 ("2026-11-23T04:16:00Z"), as configs carry it.
std::string Rfc3339(std::int64_t seconds);

// Whether a manifest for `p` (absent: any) serves `want` (a variant asked for must match).
bool PlatformMatches(const std::optional<Platform>& p, const Platform& want);

// Checks that history and layers line up: non-empty_layer history entries == diff_ids.
Result<void> CheckHistory(const ImageConfig& c);

class OciLayoutWriter {
 public:
  // Writes into a temporary directory beside `path`; Commit() renames it to `path` (which must
  // not exist), so a failed build leaves no half-written layout.
  static Result<OciLayoutWriter> Create(const std::string& path);
  OciLayoutWriter(OciLayoutWriter&&) noexcept;
  ~OciLayoutWriter();  // removes the temporary directory unless committed

  Result<Descriptor> AddBlob(const std::string& bytes, const std::string& media_type);
  // Copies a file into blobs/ (hashing it on the way).
  Result<Descriptor> AddBlobFile(const std::string& file, const std::string& media_type);
  // Lists a manifest in index.json, tagged `ref_name` (may be empty).
  void AddManifest(Descriptor manifest, const std::string& ref_name);
  Result<void> Commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  OciLayoutWriter() = default;
  std::string path_, tmp_;
  Index index_;
  bool committed_ = false;
};

struct ResolvedImage {
  Descriptor manifest_descriptor;
  Manifest manifest;
  std::string config_bytes;
  ImageConfig config;
};

class OciLayout {
 public:
  static Result<OciLayout> Open(const std::string& path);
  // Reads a blob and verifies its digest (and size when given).
  Result<std::string> ReadBlob(const std::string& digest, std::int64_t size = -1) const;
  std::string BlobPath(const std::string& digest) const;
  // The image tagged `ref` (or the only one, when `ref` is empty), following nested indexes and
  // picking `platform` from multi-platform indexes.
  Result<ResolvedImage> Resolve(const std::string& ref, const Platform& platform) const;
  const Index& index() const { return index_; }

 private:
  std::string path_;
  Index index_;
};

// Writes the hybrid docker-archive: an OCI layout (layers uncompressed, named by diff id) plus
// manifest.json and repositories, tagged with `tags` ("name:tag"). `layer_files` are uncompressed
// layer tars in rootfs order.
Result<void> WriteDockerArchive(const std::string& out_path, const std::string& config_bytes,
                                const std::vector<std::string>& layer_files,
                                const std::vector<std::string>& tags);

}  // namespace slipway::image

#endif  // SLIPWAY_IMAGE_OCI_H_
