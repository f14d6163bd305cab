// COPY and ADD of local files: sources matched in a source root (the build context, an earlier
// stage's root or an image's), written into the stage root.
//
//   CopyRequest r;
//   r.src_root_fd = context_fd; r.from_context = true; r.ignore = &dockerignore;
//   r.sources = {"src/*.c"}; r.dest = "/app/"; r.dst_root_fd = stage_fd;
//   SLIPWAY_ASSIGN_OR_RETURN(CopyStats st, CopyFiles(r));
//
// Rules (shared/reference/dockerfile-syntax.md items 59-63):
// - sources are clamped into the source root ("/x" and "../x" mean "x"); a trailing '/' is
//   ignored; wildcards are Go filepath.Match patterns per component, `**` any number of
//   directories; a source excluded by .dockerignore (context only) or --exclude does not exist;
// - a source that is a directory copies its contents; a file goes to dest/NAME when dest ends in
//   '/', is an existing directory, or there are several sources; otherwise it is written as dest;
// - --parents keeps each source's parent directories (from a "/./" marker when there is one);
// - symlinks inside a copied tree are copied as symlinks; a named source is resolved in the
//   source root (its symlinks are followed, never out of the root);
// - destinations are resolved inside the stage root: its symlinks are followed in-root, except
//   with --link, where a symlinked parent is replaced by a directory (the layer is rebased);
// - owner: --chown, else 0:0 for context files, else the source's owner (--from keeps owners,
//   setuid bits and hardlinks); mode: --chmod (octal or symbolic) or the source's; mtimes kept;
//   missing parent directories are created 0755 owned like the files;
// - a file cannot replace a directory, nor a directory a file: an error names the path;
// - ADD: a local tar archive (plain, gzip, bzip2, xz or zstd, told by content) is extracted into
//   the destination directory unless unpack is false, with the safe extraction rules.
//
// Guarantees: nothing outside either root is read or written.
#ifndef SLIPWAY_EXECUTOR_COPY_H_
#define SLIPWAY_EXECUTOR_COPY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "dockerfile/dockerignore.h"

namespace slipway::executor {

struct FileOwner {
  std::uint32_t uid = 0, gid = 0;
};

struct InlineFile {
  std::string name;  // the file name at the destination
  std::string content;
};

struct CopyRequest {
  int src_root_fd = -1;
  bool from_context = true;
  const dockerfile::Dockerignore* ignore = nullptr;  // context only
  std::vector<std::string> sources;
  std::vector<InlineFile> inline_files;  // heredoc sources
  std::string dest;                      // absolute in the stage root
  int dst_root_fd = -1;
  std::optional<FileOwner> chown;
  std::string chmod;
  bool parents = false;
  bool link = false;
  bool unpack_archives = false;  // ADD
  std::vector<std::string> excludes;
  bool privileged = true;  // device nodes and FIFOs can be created
};

struct CopyStats {
  std::uint64_t files = 0, dirs = 0, symlinks = 0, hardlinks = 0, bytes = 0, archives = 0;
  std::vector<std::string> warnings;
};

Result<CopyStats> CopyFiles(const CopyRequest& request);

// Applies a --chmod value (octal, or symbolic like "u=rwX,go=rX" / "+x") to `mode`.
Result<mode_t> ApplyChmod(const std::string& spec, mode_t mode, bool is_dir);

// Go filepath.Match on one path component (dockerfile::MatchGlobSegment, as .dockerignore).
bool MatchComponent(const std::string& pattern, const std::string& name);

// Whether the file's first bytes are a tar archive, maybe compressed.
bool LooksLikeArchive(int fd);

// Creates the directories of `rel_dir` (relative to the root) one component at a time, owned by
// `owner` with mode 0755, and returns an O_PATH fd of it. Existing symlinks are followed inside
// the root, or, when `replace_symlinks`, replaced by directories.
Result<UniqueFd> MakeDirsInRoot(int root_fd, const std::string& rel_dir, const FileOwner& owner,
                           bool replace_symlinks);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_COPY_H_
