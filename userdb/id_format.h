// Renders an Identity the way coreutils `id` prints one, with names taken from the image's own
// databases (never the host's):
//
//   uid=10000(foo) gid=10000(foo) groups=10000(foo),20000(bar)
//
// The primary gid comes first in groups=, then the other groups in ascending order; an id without
// an entry is printed as a bare number. Pure function; allocates.
#ifndef SLIPWAY_USERDB_ID_FORMAT_H_
#define SLIPWAY_USERDB_ID_FORMAT_H_

#include <string>

#include "userdb/resolve.h"

namespace slipway::userdb {

std::string FormatIdLine(const Databases& db, const Identity& id);

}  // namespace slipway::userdb

#endif  // SLIPWAY_USERDB_ID_FORMAT_H_
