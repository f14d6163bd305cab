// SHA-256 digests in the OCI form ("sha256:<64 lower-hex>"), and base64 (HTTP Basic auth,
// docker config.json "auth" fields), with OpenSSL.
//
//   Sha256 h; h.Update(chunk1); h.Update(chunk2); std::string d = h.Digest();  // "sha256:..."
//
// Guarantees: streaming (constant memory); not thread-safe per object.
#ifndef SLIPWAY_IMAGE_DIGEST_H_
#define SLIPWAY_IMAGE_DIGEST_H_

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace slipway::image {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, std::size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Starts over, as if newly made.
  void Reset();
  std::string Hex();     // 64 lower-hex characters; the object must not be used afterwards
  std::string Digest();  // "sha256:" + Hex()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Digest(std::string_view data);

// The "sha256:..." of a file's contents, read in 1 MiB blocks.
Result<std::string> Sha256File(const std::string& path);

// Whether `d` is a well-formed "sha256:<64 lower-hex>" digest.
bool IsSha256Digest(std::string_view d);

// Standard base64 with padding. Base64Decode gives "" for input that is not base64.
std::string Base64Encode(std::string_view in);
std::string Base64Decode(std::string_view in);

}  // namespace slipway::image

#endif  // SLIPWAY_IMAGE_DIGEST_H_
