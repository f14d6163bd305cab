// The hermetic busybox base image of the tests (testonly): integration/busybox_rootfs.sh makes a
// root directory from busybox-static in DIR/busybox-rootfs, and //integration:mkimage writes it
// as an OCI layout at DIR/busybox-oci (tag latest) and, when asked, as a docker-archive at
// DIR/busybox.tar named busybox:latest.
//
//   BusyboxImage base = MakeBusyboxImage(tmp.path());
//   ... "--image-source", "busybox=oci-layout:" + base.oci ...
#ifndef SLIPWAY_INTEGRATION_BUSYBOX_BASE_H_
#define SLIPWAY_INTEGRATION_BUSYBOX_BASE_H_

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/test_util.h"

namespace slipway::testing {

struct BusyboxImage {
  std::string oci;      // the OCI layout
  std::string archive;  // the docker-archive, or "" when not asked for
};

inline BusyboxImage MakeBusyboxImage(const std::string& dir, bool with_archive = false) {
  const std::string rootfs = dir + "/busybox-rootfs";
  auto r = Run({"/bin/sh", Runfile("integration/busybox_rootfs.sh"), rootfs});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  BusyboxImage image{dir + "/busybox-oci", with_archive ? dir + "/busybox.tar" : ""};
  std::vector<std::string> argv = {Runfile("integration/mkimage"), "--rootfs", rootfs,
                                   "--oci-layout", image.oci, "--tag", "latest"};
  if (with_archive) {
    argv.insert(argv.end(), {"--docker-archive", image.archive, "--name", "busybox:latest"});
  }
  auto m = Run(argv);
  REQUIRE_MESSAGE(m.exit_code == 0, m.err);
  return image;
}

}  // namespace slipway::testing

#endif  // SLIPWAY_INTEGRATION_BUSYBOX_BASE_H_
