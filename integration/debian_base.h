// The Debian base image for tests and benchmarks: `debootstrap --variant=minbase bookworm`,
// turned into a one-layer OCI layout by //integration:mkimage, made once and cached outside the
// repository in /var/cache/slipway-test (about a minute). Needs root and the Debian mirror.
//
//   std::string why;
//   std::string layout = DebianBase(&why);   // "" and `why` set when it cannot be made
#ifndef SLIPWAY_INTEGRATION_DEBIAN_BASE_H_
#define SLIPWAY_INTEGRATION_DEBIAN_BASE_H_

#include <string>

namespace slipway::testing {

inline constexpr char kDebianCache[] = "/var/cache/slipway-test/debian-bookworm-minbase";

// The OCI layout (tag "bookworm"), or "" with the reason in `skip`.
std::string DebianBase(std::string* skip);

}  // namespace slipway::testing

#endif  // SLIPWAY_INTEGRATION_DEBIAN_BASE_H_
