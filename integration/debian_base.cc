#include "integration/debian_base.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/test_util.h"
#include "base/unique_fd.h"

namespace slipway::testing {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

// The Debian base, made once by debootstrap and kept outside the repository.
std::string DebianBase(std::string* skip) {
  const std::string cache = kDebianCache;
  const std::string layout = cache + "/oci";
  if (access((layout + "/index.json").c_str(), F_OK) == 0) return layout;
  if (access("/usr/sbin/debootstrap", X_OK) != 0) {
    *skip = "debootstrap is not installed (tools/setup.sh installs it)";
    return "";
  }
  std::filesystem::create_directories(cache);
  UniqueFd lock(open(cache.c_str(), O_RDONLY | O_DIRECTORY));
  flock(lock.get(), LOCK_EX);
  if (access((layout + "/index.json").c_str(), F_OK) == 0) return layout;
  const std::string rootfs = cache + "/rootfs.tmp";
  Run({"/bin/rm", "-rf", rootfs});
  std::fprintf(stderr, "making the Debian base image with debootstrap (once; cached in %s)\n",
               cache.c_str());
  auto r = Run({"/usr/sbin/debootstrap", "--variant=minbase", "bookworm", rootfs,
                "http://deb.debian.org/debian"});
  if (r.exit_code != 0) {
    Run({"/bin/rm", "-rf", rootfs});
    *skip = "debootstrap could not reach the Debian mirror (exit " + std::to_string(r.exit_code) +
            "): " + Trim(r.out.substr(r.out.size() > 300 ? r.out.size() - 300 : 0));
    return "";
  }
  // An image has no host configuration of its own.
  Run({"/bin/sh", "-c", "rm -rf " + rootfs + "/var/cache/apt/archives/*.deb " + rootfs +
                            "/etc/hostname " + rootfs + "/etc/resolv.conf"});
  auto m = Run({Runfile("integration/mkimage"), "--rootfs", rootfs, "--oci-layout",
                layout + ".tmp", "--tag", "bookworm"});
  Run({"/bin/rm", "-rf", rootfs});
  if (m.exit_code != 0) {
    *skip = "mkimage failed for the Debian base: " + m.err;
    return "";
  }
  std::filesystem::rename(layout + ".tmp", layout);
  return layout;
}


}  // namespace slipway::testing
