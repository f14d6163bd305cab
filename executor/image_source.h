// Where base images come from, offline: image references mapped to local OCI layouts and
// docker-archive tarballs.
//
//   ImageSources s;
//   s.Add("ubuntu:latest=oci-layout:/images/debian:bookworm");     // --image-source
//   s.LoadConfig("slipway.yaml");                                   // --config
//   SLIPWAY_ASSIGN_OR_RETURN(BaseImage img, s.Load("ubuntu", platform, work_dir));
//
// A source is `oci-layout:PATH[:TAG]` (no TAG: the only image of the layout) or
// `docker-archive:PATH[:NAME:TAG]` (no NAME:TAG: the only image of the archive); PATH may not
// contain ':'. References are compared after normalisation: a missing tag means ":latest" and
// "docker.io/library/" or "docker.io/" prefixes are dropped, so "ubuntu", "ubuntu:latest" and
// "docker.io/library/ubuntu:latest" are the same image. The YAML config file has the form
//
//   image-sources:
//     ubuntu:latest: oci-layout:/images/debian:bookworm
//     busybox: docker-archive:/images/busybox.tar
//
// Layer blobs are verified against their digests where their bytes are used (VerifyLayer).
#ifndef SLIPWAY_EXECUTOR_IMAGE_SOURCE_H_
#define SLIPWAY_EXECUTOR_IMAGE_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "image/oci.h"

namespace slipway::executor {

// One layer of an image under construction or read from a source.
struct Layer {
  std::string diff_id;
  // The compressed (or plain) blob as it goes into an OCI layout; empty when not made yet.
  std::string blob_path, digest, media_type;
  std::int64_t size = 0;
  // The uncompressed tar; empty when not made yet.
  std::string tar_path;
  // Where it was pulled from (a push to the same registry can mount it instead of uploading).
  std::string origin_registry, origin_repository;
};

struct BaseImage {
  std::string reference;  // as written
  std::string source;     // the mapping used
  image::ImageConfig config;
  std::vector<Layer> layers;
};

class ImageSources {
 public:
  // "REF=SOURCE".
  Result<void> Add(const std::string& flag);
  Result<void> LoadConfig(const std::string& yaml_file);
  bool Has(const std::string& ref) const;
  // Reads the image (config and layer list; layer blobs stay where they are, docker-archive
  // members are copied into `work_dir`).
  Result<BaseImage> Load(const std::string& ref, const image::Platform& platform,
                         const std::string& work_dir) const;

 private:
  Result<void> Put(const std::string& ref, const std::string& source, const std::string& where);
  std::map<std::string, std::string> sources_;  // normalised ref -> source
};

std::string NormalizeReference(const std::string& ref);

// Checks a layer's blob against its digest (before its bytes are used).
Result<void> VerifyLayer(const Layer& layer);

// "linux/amd64/v8" -> Platform.
image::Platform ParsePlatform(const std::string& text);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_IMAGE_SOURCE_H_
