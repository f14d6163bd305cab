// slipway-id: prints who USER <spec> is inside an image root, the way `id` would -- resolved from
// the root's own /etc/passwd and /etc/group by Slipway's resolver, never from the host.
#include <fcntl.h>

#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "base/unique_fd.h"
#include "userdb/id_format.h"
#include "userdb/resolve.h"

namespace {

constexpr char kUsage[] =
    "Usage: slipway-id --root DIR [--chown] SPEC\n"
    "\n"
    "Prints the identity a Dockerfile `USER SPEC` gives inside the image root DIR, as `id` would:\n"
    "  uid=10000(foo) gid=10000(foo) groups=10000(foo),20000(bar)\n"
    "The primary group comes first in groups=, then the others in ascending order.\n"
    "\n"
    "SPEC is one of: name, uid, name:group, uid:gid, name:gid, uid:group, or \"\" (root).\n"
    "Names are looked up only in DIR/etc/passwd and DIR/etc/group (symlinks are resolved inside\n"
    "DIR); numeric parts are always ids. Malformed lines in those files are skipped with a "
    "warning\n"
    "on stderr.\n"
    "\n"
    "Options:\n"
    "  --root DIR   the image's root directory (required)\n"
    "  --chown      resolve SPEC as COPY --chown does instead, and print \"uid:gid\"\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit status: 0 on success, 1 if SPEC cannot be resolved, 2 on a usage error.\n";

int Usage(const std::string& problem) {
  std::cerr << "slipway-id: " << problem << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace slipway;
  std::string root;
  std::string spec;
  bool have_spec = false;
  bool chown = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--root") {
      if (i + 1 >= argc) return Usage("--root needs a directory");
      root = argv[++i];
    } else if (a.rfind("--root=", 0) == 0) {
      root = std::string(a.substr(7));
    } else if (a == "--chown") {
      chown = true;
    } else if (a == "--") {
      if (i + 1 < argc) {
        spec = argv[++i];
        have_spec = true;
      }
    } else if (a.size() > 1 && a[0] == '-' && !have_spec && a.find(':') == std::string_view::npos &&
               !(a[1] >= '0' && a[1] <= '9')) {
      return Usage("unknown option " + std::string(a));
    } else if (!have_spec) {
      spec = std::string(a);
      have_spec = true;
    } else {
      return Usage("more than one SPEC given");
    }
  }
  if (root.empty()) return Usage("--root is required");
  if (!have_spec) return Usage("SPEC is required");

  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    std::cerr << "slipway-id: opening root directory " << root << ": " << std::strerror(errno)
              << "\n";
    return 1;
  }
  auto db = userdb::ReadDatabases(fd.get());
  if (!db.ok()) {
    std::cerr << "slipway-id: " << root << ": " << db.error().ToString() << "\n";
    return 1;
  }
  for (const std::string& w : db->Warnings()) std::cerr << "slipway-id: warning: " << w << "\n";
  if (chown) {
    auto owner = userdb::ResolveChown(*db, spec);
    if (!owner.ok()) {
      std::cerr << "slipway-id: " << owner.error().ToString() << "\n";
      return 1;
    }
    std::cout << owner->uid << ":" << owner->gid << "\n";
    return 0;
  }
  auto id = userdb::ResolveUser(*db, spec);
  if (!id.ok()) {
    std::cerr << "slipway-id: " << id.error().ToString() << "\n";
    return 1;
  }
  std::cout << userdb::FormatIdLine(*db, *id) << "\n";
  return 0;
}
