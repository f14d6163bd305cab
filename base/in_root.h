// Opening files inside a root directory as if it were "/".
//
// An image's filesystem is hostile input: `/etc/passwd` may be a symlink to `/host/etc/passwd`
// or to `../../../etc/shadow`. OpenInRoot resolves every component -- symlinks, absolute targets
// and ".." -- against root_fd, never above it, exactly like openat2(RESOLVE_IN_ROOT). It uses
// openat2 where the kernel has it and falls back to a component-by-component walk in user space
// (O_PATH|O_NOFOLLOW at each step, ".." clamped at the root, at most 40 symlinks) where it does
// not.
//
// Guarantees: no path ever resolves outside root_fd; magic links (/proc/self/...) are refused;
// every fd returned is O_CLOEXEC. Allocates; thread-safe (no shared state).
#ifndef SLIPWAY_BASE_IN_ROOT_H_
#define SLIPWAY_BASE_IN_ROOT_H_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace slipway {

enum class InRootMode {
  kAuto,       // openat2(RESOLVE_IN_ROOT), or the user-space walk if the kernel lacks it
  kOpenat2,    // openat2 only (an error where the kernel lacks it)
  kUserspace,  // the user-space walk only (for tests and old kernels)
};

// Opens `path` (absolute or relative, both taken from the root) under `root_fd` with `flags`
// (O_CLOEXEC is added). Errors carry the errno of the failing step (ENOENT, ELOOP, ...).
Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, int flags,
                            InRootMode mode = InRootMode::kAuto);

// Reads the regular file at `path` inside the root. Refuses anything that is not a regular file
// (a FIFO is never waited on), and files larger than `max_bytes` ("file exceeds N bytes").
// A missing file gives an Error whose errno_value() is ENOENT.
Result<std::string> ReadRegularFileInRoot(int root_fd, std::string_view path, std::size_t max_bytes,
                                          InRootMode mode = InRootMode::kAuto);

// Opens directory `path` inside the root, creating missing components (mode 0755) on the way.
// Existing components -- symlinks included -- are resolved inside the root. Returns an O_PATH fd
// of the directory.
Result<UniqueFd> MkdirAllInRoot(int root_fd, std::string_view path,
                                InRootMode mode = InRootMode::kAuto);

// The host path of the directory `path` names inside the root (resolved as OpenInRoot does, so
// never outside it), as the kernel names it (/proc/self/fd). For handing a directory chosen in
// an untrusted tree to code that takes paths.
Result<std::string> HostPathInRoot(int root_fd, std::string_view path,
                                   InRootMode mode = InRootMode::kAuto);

// Removes `name` inside directory `dir_fd`, recursively if it is a directory. Never follows a
// symlink: a symlink is removed itself, and a directory's children are reached through fds of
// the directory, not through path strings. ENOENT is not an error.
Result<void> RemoveAllAt(int dir_fd, const std::string& name);

// Removes every entry inside directory `dir_fd` for which `keep(dir_fd, name)` is false.
Result<void> RemoveChildrenAt(int dir_fd, const std::function<bool(int, const std::string&)>& keep);

}  // namespace slipway

#endif  // SLIPWAY_BASE_IN_ROOT_H_
