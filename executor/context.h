// The build context and the Dockerfile: `dir://PATH` or a plain path, `tar://PATH` (plain or
// compressed) or `tar://stdin`, extracted safely into the work directory, or `git://HOST/PATH`
// cloned into it (see git_context.h).
//
//   SLIPWAY_ASSIGN_OR_RETURN(BuildContext ctx, OpenContext("dir://.", "Dockerfile", work));
//   ctx.root; ctx.dockerfile_text; ctx.ignore.Excluded("node_modules/x");
//
// --context-sub-path: the build uses that directory of the context as its context. It is resolved
// inside the context (symlinks too) and never leaves it.
//
// --dockerfile: an absolute path is used as is; a relative one is looked up in the context
// first, then in the current directory. The ignore file is <Dockerfile>.dockerignore beside the
// Dockerfile, else .dockerignore at the context root.
#ifndef SLIPWAY_EXECUTOR_CONTEXT_H_
#define SLIPWAY_EXECUTOR_CONTEXT_H_

#include <string>

#include "base/result.h"
#include "dockerfile/dockerignore.h"
#include "executor/git_context.h"

namespace slipway::executor {

struct BuildContext {
  std::string root;             // a directory on the host
  std::string dockerfile_path;  // where it was read from
  std::string dockerfile_name;  // as named in messages ("Dockerfile")
  std::string dockerfile_text;
  dockerfile::Dockerignore ignore;
};

struct ContextOptions {
  std::string sub_path;  // --context-sub-path
  GitOptions git;        // --git, for git:// contexts
};

Result<BuildContext> OpenContext(const std::string& context, const std::string& dockerfile,
                                 const std::string& work_dir, const ContextOptions& options = {});

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_CONTEXT_H_
