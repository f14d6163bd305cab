// Small filesystem helpers shared by every package (parent side; allocate).
#ifndef SLIPWAY_BASE_FS_H_
#define SLIPWAY_BASE_FS_H_

#include <string>
#include <vector>

#include "base/result.h"

namespace slipway {

// The names in directory `dir_fd` (without "." and ".."), in the order the kernel returns them.
// `dir_fd` itself is left open and untouched.
Result<std::vector<std::string>> ListDirectory(int dir_fd);

// The whole content of the file at `path`.
Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace slipway

#endif  // SLIPWAY_BASE_FS_H_
