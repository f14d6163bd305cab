// Test helper: builds tar streams with arbitrary (also malicious) entries in memory.
#ifndef SLIPWAY_SNAPSHOT_TAR_BUILDER_H_
#define SLIPWAY_SNAPSHOT_TAR_BUILDER_H_

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace slipway::snapshot::testing {

struct TarEntry {
  enum Type { kFile, kDir, kSymlink, kHardlink, kFifo, kCharDevice };
  std::string name;
  Type type = kFile;
  std::string data;  // kFile
  std::string link;  // kSymlink target / kHardlink target
  mode_t mode = 0644;
  uid_t uid = 0;
  gid_t gid = 0;
  long mtime = 1700000000;
  unsigned major = 0, minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

TarEntry File(std::string name, std::string data, mode_t mode = 0644);
TarEntry Dir(std::string name, mode_t mode = 0755);
TarEntry Symlink(std::string name, std::string target);
TarEntry Hardlink(std::string name, std::string target);

enum class Compression { kNone, kGzip, kZstd };
std::string BuildTar(const std::vector<TarEntry>& entries, Compression c = Compression::kNone);

}  // namespace slipway::snapshot::testing

#endif  // SLIPWAY_SNAPSHOT_TAR_BUILDER_H_
