// Reading `docker save` tarballs (the legacy v1.2 layout and the current OCI-hybrid one) as a
// base image source.
//
//   SLIPWAY_ASSIGN_OR_RETURN(ArchiveImage img, ReadDockerArchive("busybox.tar", "busybox:latest",
//   work)); for (const std::string& layer : img.layer_files) ExtractLayer(root, layer...);
//
// Rules (as `docker load` and skopeo check them): manifest.json must be a non-empty array; the
// image is chosen by a "name:tag" in RepoTags, by "@N" (its position), or is the only one; the
// config must have rootfs; there must be exactly one layer per diff_id, and each layer --
// decompressed when it is gzip or zstd -- must hash to its diff_id; one layer file cannot stand
// for two different diff_ids. Members are found by their cleaned path; a symlinked member is
// followed once. Files are copied out of the tarball into `work_dir` (which must exist).
#ifndef SLIPWAY_IMAGE_DOCKER_ARCHIVE_H_
#define SLIPWAY_IMAGE_DOCKER_ARCHIVE_H_

#include <string>
#include <vector>

#include "base/result.h"
#include "image/oci.h"

namespace slipway::image {

struct ArchiveImage {
  std::string config_bytes;
  ImageConfig config;
  std::vector<std::string> layer_files;  // in work_dir, as stored (maybe compressed)
  std::vector<std::string> repo_tags;
};

Result<ArchiveImage> ReadDockerArchive(const std::string& tar_path, const std::string& selector,
                                       const std::string& work_dir);

// The sha256 of a layer's uncompressed tar (gzip, zstd, xz, bzip2 or plain, by content).
Result<std::string> UncompressedDigest(const std::string& file);

}  // namespace slipway::image

#endif  // SLIPWAY_IMAGE_DOCKER_ARCHIVE_H_
