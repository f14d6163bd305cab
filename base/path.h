// Lexical path helpers for '/'-separated paths (no filesystem access).
#ifndef SLIPWAY_BASE_PATH_H_
#define SLIPWAY_BASE_PATH_H_

#include <string>
#include <string_view>

namespace slipway {

// Go's path.Clean: "a//b/./c/.." -> "a/b"; "/../x" -> "/x"; "../x/../../y" -> "../../y";
// "" -> ".".
std::string CleanPath(std::string_view path);

}  // namespace slipway

#endif  // SLIPWAY_BASE_PATH_H_
