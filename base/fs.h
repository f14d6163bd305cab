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

// Writes `bytes` to a temporary name beside `path` (created with `mode`) and renames it over
// `path`: readers see the old file or the whole new one, never a part.
Result<void> WriteFileAtomic(const std::string& path, const std::string& bytes, int mode = 0644);

}  // namespace slipway

#endif  // SLIPWAY_BASE_FS_H_
