// Git build contexts, as kaniko takes them:
//
//   --context git://HOST/PATH[#REF[#COMMIT]]   [--git branch=B,single-branch=true,
//                                               recurse-submodules=true,insecure-skip-tls=true]
//
// The repository is cloned over https (http when GIT_PULL_METHOD=http) by the `git` program
// found in PATH. REF is a branch or tag (refs/heads/X, refs/tags/X: cloned directly), any other
// ref such as refs/pull/1/head (fetched, then checked out), or a commit id; COMMIT, when given,
// is checked out last. Credentials: GIT_USERNAME and GIT_PASSWORD, or GIT_TOKEN, or user:password
// in the URL -- handed to git by a credential helper scoped to that host, never on a command line
// and never in a message. The clone keeps its .git directory, as kaniko's does (.dockerignore it
// to keep it out of COPY).
//
// Errors name the context (credentials removed), the git command that failed and git's own
// last lines. ADD's git sources (FetchGitSource) share all of this but the environment's
// credentials.
#ifndef SLIPWAY_EXECUTOR_GIT_CONTEXT_H_
#define SLIPWAY_EXECUTOR_GIT_CONTEXT_H_

#include <string>
#include <vector>

#include "base/result.h"

namespace slipway::executor {

// kaniko's --git flag.
struct GitOptions {
  std::string branch;
  bool single_branch = false;
  bool recurse_submodules = false;
  bool insecure_skip_tls = false;
};

// "branch=main,single-branch=true" (keys may repeat across several --git flags: merged into `o`).
Result<void> ParseGitOptions(const std::string& value, GitOptions* o);

struct GitSource {
  std::string url;      // https://HOST/PATH, without credentials
  std::string shown;    // the context as given, without credentials
  std::string username, password;  // from the URL, if it had them
  std::string ref;      // "" | refs/... | a commit id
  std::string commit;   // "" | a commit id
};

// `pull_method`: "https" (the default, also for "") or "http".
Result<GitSource> ParseGitContext(const std::string& context, const std::string& pull_method);

// What the clone takes from the environment.
struct GitEnvironment {
  std::vector<std::string> variables;  // passed to git (proxies, CA bundles, HOME, PATH ...)
  std::string username, password, token;  // GIT_USERNAME, GIT_PASSWORD, GIT_TOKEN
  std::string pull_method;                // GIT_PULL_METHOD
  static GitEnvironment FromProcess();
};

// Clones the context into `dest` (which must not exist yet).
Result<void> CloneGitContext(const std::string& context, const GitOptions& options,
                             const GitEnvironment& env, const std::string& dest);

// A git source of ADD, as BuildKit takes it: https://HOST/PATH.git[#REF][:SUBDIR] (also http://
// and git://; user:password@ in the URL for credentials). git@... and ssh:// are refused: --ssh
// agents are forwarded to RUN steps only.
struct GitAddSource {
  GitSource source;
  std::string subdir;  // "" for the whole repository
};
Result<GitAddSource> ParseGitAddSource(const std::string& src);

// ADD <git source>: clones it into `dest` (which must not exist yet), checks `checksum` (a commit
// id or a prefix of one; "" for none) against what was checked out, removes .git unless
// `keep_git_dir`, and gives directories and executables mode 0755, other files 0644. Returns the
// directory to copy from: `dest`, or SUBDIR in it (resolved inside the checkout).
Result<std::string> FetchGitSource(const std::string& src, const std::string& checksum,
                                   bool keep_git_dir, const GitEnvironment& env,
                                   const std::string& dest);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_GIT_CONTEXT_H_
