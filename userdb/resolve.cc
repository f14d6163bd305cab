#include "userdb/resolve.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include "base/unique_fd.h"

namespace slipway::userdb {
namespace {

constexpr char kPasswdPath[] = "/etc/passwd";
constexpr char kGroupPath[] = "/etc/group";

// A part of a spec: empty, a numeric id, or a name.
struct Part {
  enum Kind { kEmpty, kId, kName } kind = kEmpty;
  std::uint32_t id = 0;
  std::string_view name;
};

bool LooksNumeric(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<Part> ParsePart(std::string_view spec_for_errors, std::string_view what,
                       std::string_view s) {
  Part p;
  if (s.empty()) return p;
  if (LooksNumeric(s)) {
    if (!ParseId(s, &p.id)) {
      return Error("\"" + std::string(spec_for_errors) + "\": " + std::string(what) + " \"" +
                       std::string(s) + "\" is not an id in 0..2147483647",
                   ERANGE);
    }
    p.kind = Part::kId;
    return p;
  }
  if (s.find('\0') != std::string_view::npos) {
    return Error(
        "\"" + std::string(spec_for_errors) + "\": " + std::string(what) + " contains a NUL byte",
        EINVAL);
  }
  p.kind = Part::kName;
  p.name = s;
  return p;
}

struct Spec {
  Part user;
  Part group;
};

Result<Spec> ParseSpec(std::string_view spec) {
  std::size_t colon = spec.find(':');
  Spec s;
  SLIPWAY_ASSIGN_OR_RETURN(s.user, ParsePart(spec, "user", spec.substr(0, colon)));
  if (colon != std::string_view::npos) {
    SLIPWAY_ASSIGN_OR_RETURN(s.group, ParsePart(spec, "group", spec.substr(colon + 1)));
  }
  return s;
}

std::string Prefix(std::string_view kind, std::string_view spec) {
  return std::string(kind) + " \"" + std::string(spec) + "\"";
}

Result<const PasswdEntry*> FindUserByName(const Databases& db, std::string_view kind,
                                          std::string_view spec, std::string_view name) {
  if (!db.passwd) {
    return Error(Prefix(kind, spec) + ": user \"" + std::string(name) +
                     "\" cannot be looked up: " + kPasswdPath + " does not exist in the image",
                 ENOENT);
  }
  const PasswdEntry* e = db.passwd->FindByName(name);
  if (!e) {
    return Error(Prefix(kind, spec) + ": user \"" + std::string(name) + "\" not found in " +
                 kPasswdPath);
  }
  return e;
}

Result<std::uint32_t> GroupId(const Databases& db, std::string_view kind, std::string_view spec,
                              const Part& group) {
  if (group.kind == Part::kId) return group.id;  // numeric: as given, even if absent
  if (!db.group) {
    return Error(Prefix(kind, spec) + ": group \"" + std::string(group.name) +
                     "\" cannot be looked up: " + kGroupPath + " does not exist in the image",
                 ENOENT);
  }
  const GroupEntry* g = db.group->FindByName(group.name);
  if (!g) {
    return Error(Prefix(kind, spec) + ": group \"" + std::string(group.name) + "\" not found in " +
                 kGroupPath);
  }
  return g->gid;
}

void AddGroup(std::vector<std::uint32_t>& groups, std::unordered_set<std::uint32_t>& seen,
              std::uint32_t gid) {
  if (seen.insert(gid).second) groups.push_back(gid);
}

Result<Databases> ReadDatabasesAt(const std::string& root) {
  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("opening root directory " + root);
  auto db = ReadDatabases(fd.get());
  if (!db.ok()) db.error().AddContext("in root " + root);
  return db;
}

}  // namespace

std::vector<std::string> Databases::Warnings() const {
  std::vector<std::string> out;
  auto add = [&out](const DatabaseBase& d) {
    for (const ParseWarning& w : d.warnings()) out.push_back(w.ToString());
    if (d.skipped_lines() > d.warnings().size()) {
      out.push_back(d.file() + ": " + std::to_string(d.skipped_lines() - d.warnings().size()) +
                    " more malformed lines skipped");
    }
  };
  if (passwd) add(*passwd);
  if (group) add(*group);
  return out;
}

Result<Databases> ReadDatabases(int root_fd, InRootMode mode) {
  Databases db;
  auto passwd = ReadRegularFileInRoot(root_fd, kPasswdPath, kMaxFileBytes, mode);
  if (passwd.ok()) {
    db.passwd = Passwd::Parse(std::move(passwd).value(), kPasswdPath);
  } else if (passwd.error().errno_value() != ENOENT) {
    return std::move(passwd.error().AddContext(std::string("reading ") + kPasswdPath));
  }
  auto group = ReadRegularFileInRoot(root_fd, kGroupPath, kMaxFileBytes, mode);
  if (group.ok()) {
    db.group = Group::Parse(std::move(group).value(), kGroupPath);
  } else if (group.error().errno_value() != ENOENT) {
    return std::move(group.error().AddContext(std::string("reading ") + kGroupPath));
  }
  return db;
}

Result<Identity> ResolveUser(const Databases& db, std::string_view spec) {
  SLIPWAY_ASSIGN_OR_RETURN(Spec s, ParseSpec(spec));
  if (s.user.kind == Part::kEmpty) {  // "" and ":group" mean uid 0, as in Docker
    s.user.kind = Part::kId;
    s.user.id = 0;
  }
  Identity id;
  const PasswdEntry* entry = nullptr;
  if (s.user.kind == Part::kName) {
    SLIPWAY_ASSIGN_OR_RETURN(entry, FindUserByName(db, "USER", spec, s.user.name));
  } else if (db.passwd) {
    entry = db.passwd->FindByUid(s.user.id);
  }
  if (entry) {
    id.uid = entry->uid;
    id.gid = entry->gid;
    if (!entry->home.empty()) id.home = std::string(entry->home);
    id.name = std::string(entry->name);
  } else {
    id.uid = s.user.id;
    id.gid = 0;  // a user without a passwd entry runs with the root group (Docker's rule)
  }
  if (s.group.kind != Part::kEmpty) {
    SLIPWAY_ASSIGN_OR_RETURN(id.gid, GroupId(db, "USER", spec, s.group));
  }
  std::unordered_set<std::uint32_t> seen;
  AddGroup(id.groups, seen, id.gid);
  // Memberships count only when no group was given ("only the specified group membership").
  if (s.group.kind == Part::kEmpty && entry && db.group) {
    for (const GroupEntry& g : db.group->entries()) {
      if (g.HasMember(entry->name)) AddGroup(id.groups, seen, g.gid);
    }
  }
  if (id.groups.size() > kMaxGroups) {
    return Error(Prefix("USER", spec) + ": the user belongs to " +
                     std::to_string(id.groups.size()) + " groups in " + kGroupPath +
                     "; the kernel allows at most " + std::to_string(kMaxGroups),
                 EINVAL);
  }
  id.warnings = db.Warnings();
  return id;
}

Result<Owner> ResolveChown(const Databases& db, std::string_view spec) {
  SLIPWAY_ASSIGN_OR_RETURN(Spec s, ParseSpec(spec));
  if (s.user.kind == Part::kEmpty) {
    return Error(Prefix("--chown", spec) + ": the user part is empty", EINVAL);
  }
  Owner o;
  if (s.user.kind == Part::kName) {
    SLIPWAY_ASSIGN_OR_RETURN(const PasswdEntry* e,
                             FindUserByName(db, "--chown", spec, s.user.name));
    o.uid = e->uid;
    o.gid = e->gid;
  } else {
    o.uid = o.gid = s.user.id;  // a bare number N means N:N, whatever passwd says
  }
  if (s.group.kind != Part::kEmpty) {
    SLIPWAY_ASSIGN_OR_RETURN(o.gid, GroupId(db, "--chown", spec, s.group));
  }
  return o;
}

Result<Identity> ResolveUser(const std::string& root, std::string_view spec) {
  SLIPWAY_ASSIGN_OR_RETURN(Databases db, ReadDatabasesAt(root));
  return ResolveUser(db, spec);
}

Result<Owner> ResolveChown(const std::string& root, std::string_view spec) {
  SLIPWAY_ASSIGN_OR_RETURN(Databases db, ReadDatabasesAt(root));
  return ResolveChown(db, spec);
}

}  // namespace slipway::userdb
