#include "userdb/id_format.h"

#include <algorithm>
#include <vector>

namespace slipway::userdb {
namespace {

std::string UserLabel(const Databases& db, const Identity& id) {
  std::string out = std::to_string(id.uid);
  if (id.name) return out + "(" + *id.name + ")";
  if (db.passwd) {
    if (const PasswdEntry* e = db.passwd->FindByUid(id.uid)) {
      out.append("(").append(e->name).append(")");
    }
  }
  return out;
}

std::string GroupLabel(const Databases& db, std::uint32_t gid) {
  std::string out = std::to_string(gid);
  if (db.group) {
    if (const GroupEntry* g = db.group->FindByGid(gid)) out.append("(").append(g->name).append(")");
  }
  return out;
}

}  // namespace

std::string FormatIdLine(const Databases& db, const Identity& id) {
  std::string out = "uid=" + UserLabel(db, id) + " gid=" + GroupLabel(db, id.gid) + " groups=";
  std::vector<std::uint32_t> rest;
  rest.reserve(id.groups.size());
  for (std::uint32_t g : id.groups) {
    if (g != id.gid) rest.push_back(g);
  }
  std::sort(rest.begin(), rest.end());
  out += GroupLabel(db, id.gid);
  for (std::uint32_t g : rest) out += "," + GroupLabel(db, g);
  return out;
}

}  // namespace slipway::userdb
