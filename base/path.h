// Lexical path helpers for '/'-separated paths (no filesystem access).
#ifndef SLIPWAY_BASE_PATH_H_
#define SLIPWAY_BASE_PATH_H_

#include <string>
#include <string_view>

namespace slipway {

// Go's path.Clean: "a//b/./c/.." -> "a/b"; "/../x" -> "/x"; "../x/../../y" -> "../../y";
// "" -> ".".
std::string CleanPath(std::string_view path);

// Tree order: a directory's contents right after it, siblings by name (bytes). That is byte order
// with '/' ranked below every other byte: "a" < "a/z" < "a-b" < "a0".
bool TreeLess(std::string_view a, std::string_view b);

}  // namespace slipway

#endif  // SLIPWAY_BASE_PATH_H_
