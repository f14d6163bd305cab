// USER and COPY --chown resolution against an image's own /etc/passwd and /etc/group.
//
//   auto id = ResolveUser("/var/lib/slipway/stage0/rootfs", "app:staff");
//   if (!id.ok()) return id.error();     // "USER app:staff: group "staff" not found in /etc/group"
//   spawn_plan.uid = id->uid; spawn_plan.groups = id->groups; ...
//
// Semantics are Docker's (moby/sys/user GetExecUser with nil defaults, plus the primary gid that
// the daemon and BuildKit always prepend), as listed in shared/reference/spawn-and-identity.md §2:
//
//   spec        uid                 gid                      groups                      home
//   ""          as "0"
//   name        passwd[name].uid    passwd[name].gid         [gid] + member-of(name)     entry
//   N (found)   N                   passwd[uid N].gid        [gid] + member-of(its name) entry
//   N (absent)  N                   0                        [0]                         "/"
//   u:g         from u as above     g (numeric: as given;    [gid] only                  from u
//                                   name: group[g].gid)
//
// A part that looks numeric ([+-]?digits) is only ever an id and must be in 0..2^31-1; a name is
// only ever a name. Names need the file (a missing file is an error naming it); numeric specs work
// without. Files are opened inside the root (symlinks cannot escape it), must be regular files and
// at most 10 MiB. Lookup errors are never ignored.
//
// Guarantees: no libc NSS, ever; allocates; thread-safe (no shared state).
#ifndef SLIPWAY_USERDB_RESOLVE_H_
#define SLIPWAY_USERDB_RESOLVE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/in_root.h"
#include "base/result.h"
#include "userdb/database.h"

namespace slipway::userdb {

// The kernel's NGROUPS_MAX: setgroups(2) refuses longer lists.
inline constexpr std::size_t kMaxGroups = 65536;

struct Identity {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  // Supplementary groups: the primary gid first, then memberships in file order, deduplicated.
  std::vector<std::uint32_t> groups;
  std::string home = "/";
  std::optional<std::string> name;  // the passwd name, when the user has an entry
  // Malformed lines skipped while reading the files ("/etc/group:3: skipped: ...").
  std::vector<std::string> warnings;
};

struct Owner {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

// The two databases of one root, each absent when its file does not exist.
struct Databases {
  std::optional<Passwd> passwd;
  std::optional<Group> group;
  std::vector<std::string> Warnings() const;
};

// Reads /etc/passwd and /etc/group inside the root directory `root`. A missing file is not an
// error here (the resolver decides); any other failure is (not a regular file, too large,
// unreadable), naming the file.
Result<Databases> ReadDatabases(int root_fd, InRootMode mode = InRootMode::kAuto);

// USER semantics (see the table above) over already-read databases.
Result<Identity> ResolveUser(const Databases& db, std::string_view spec);
// COPY/ADD --chown semantics: a name gives its uid and primary gid; a bare number N gives N:N; a
// group, if given, overrides the gid. Names must exist.
Result<Owner> ResolveChown(const Databases& db, std::string_view spec);

// Convenience: open `root` (a directory path), read its databases and resolve.
Result<Identity> ResolveUser(const std::string& root, std::string_view spec);
Result<Owner> ResolveChown(const std::string& root, std::string_view spec);

}  // namespace slipway::userdb

#endif  // SLIPWAY_USERDB_RESOLVE_H_
