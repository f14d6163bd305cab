// Image references as Docker reads them: [registry/]repository[:tag][@digest].
//
//   SLIPWAY_ASSIGN_OR_RETURN(Reference r, ParseReference("ubuntu"));
//   r.registry == "docker.io"; r.repository == "library/ubuntu"; r.tag == "latest";
//
// The first component is a registry when it contains '.' or ':' or is "localhost"; otherwise the
// registry is docker.io and a one-component repository gets "library/". Repository components
// are lower-case [a-z0-9] runs joined by '.', '_', '__' or '-'; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]
// (at most 128); a digest is sha256:<64 hex>. Without tag or digest the tag is "latest".
#ifndef SLIPWAY_IMAGE_REFERENCE_H_
#define SLIPWAY_IMAGE_REFERENCE_H_

#include <string>
#include <string_view>

#include "base/result.h"

namespace slipway::image {

struct Reference {
  std::string registry;    // "docker.io", "localhost:5000", "ghcr.io"
  std::string repository;  // "library/ubuntu"
  std::string tag;         // "" when only a digest was given
  std::string digest;      // "sha256:..." or ""
  // What a manifest request names: the digest when there is one, else the tag.
  std::string Target() const { return digest.empty() ? tag : digest; }
  // registry/repository[:tag][@digest]
  std::string ToString() const;
  // Docker's short form of the name: "busybox" for docker.io/library/busybox, "me/app" for
  // docker.io/me/app, otherwise registry/repository (no tag or digest).
  std::string FamiliarName() const;
  // The host to talk to: docker.io's API lives at registry-1.docker.io.
  std::string ApiHost() const;
};

Result<Reference> ParseReference(std::string_view text);

}  // namespace slipway::image

#endif  // SLIPWAY_IMAGE_REFERENCE_H_
