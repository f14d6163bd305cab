#include "executor/context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cerrno>
#include <cstring>

#include "base/fs.h"
#include "base/in_root.h"
#include "base/path.h"
#include "base/unique_fd.h"
#include "snapshot/extract.h"

namespace slipway::executor {
namespace {

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// `sub` inside `root`, resolved as if `root` were "/" (so a symlink cannot lead out of it), as
// the host path of the directory it names.
Result<std::string> SubDirectory(const std::string& root, const std::string& sub) {
  const std::string what = "--context-sub-path " + sub;
  const std::string clean = CleanPath(sub);
  if (clean == ".." || clean.rfind("../", 0) == 0) {
    return Error(what + ": leads out of the context", EINVAL);
  }
  UniqueFd root_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return ErrnoError("opening the context " + root);
  auto dir = HostPathInRoot(root_fd.get(), clean);
  if (!dir.ok()) {
    return Error(what + ": not a directory in the context: " + std::strerror(dir.error().errno_value()),
                 dir.error().errno_value());
  }
  return *dir;
}

}  // namespace

Result<BuildContext> OpenContext(const std::string& context, const std::string& dockerfile,
                                 const std::string& work_dir, const ContextOptions& options) {
  BuildContext c;
  if (context.rfind("tar://", 0) == 0) {
    const std::string src = context.substr(6);
    c.root = work_dir + "/context";
    if (mkdir(c.root.c_str(), 0755) != 0) return ErrnoError("creating " + c.root);
    UniqueFd in(src == "stdin" ? dup(0) : open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return ErrnoError("--context " + context + ": opening " + src);
    UniqueFd root(open(c.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    snapshot::ExtractOptions o;
    o.preserve_ownership = false;
    o.allow_devices = false;
    auto st = snapshot::ExtractLayer(root.get(), in.get(), src, o);
    if (!st.ok()) return std::move(st.error().AddContext("--context " + context));
  } else if (context.rfind("git://", 0) == 0) {
    c.root = work_dir + "/context";
    SLIPWAY_RETURN_IF_ERROR(
        CloneGitContext(context, options.git, GitEnvironment::FromProcess(), c.root));
  } else if (context.find("://") != std::string::npos && context.rfind("dir://", 0) != 0) {
    return Error(context.substr(0, context.find("://") + 3) +
                     ": unsupported --context scheme (supported: dir://PATH, tar://PATH, "
                     "tar://stdin, git://HOST/PATH[#REF[#COMMIT]], or a plain path)",
                 EINVAL);
  } else {
    c.root = context.rfind("dir://", 0) == 0 ? context.substr(6) : context;
    if (c.root.empty()) c.root = ".";
    struct stat st;
    if (stat(c.root.c_str(), &st) != 0) return ErrnoError("--context " + context);
    if (!S_ISDIR(st.st_mode)) {
      return Error("--context " + context + ": not a directory", ENOTDIR);
    }
  }
  if (!options.sub_path.empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(c.root, SubDirectory(c.root, options.sub_path));
  }
  const std::string name = dockerfile.empty() ? "Dockerfile" : dockerfile;
  if (name[0] == '/') {
    c.dockerfile_path = name;
  } else if (Exists(c.root + "/" + name)) {
    c.dockerfile_path = c.root + "/" + name;
  } else if (Exists(name)) {
    c.dockerfile_path = name;
  } else {
    return Error("--dockerfile " + name + ": not found in the context (" + c.root +
                     ") nor in the current directory",
                 ENOENT);
  }
  c.dockerfile_name = name;
  SLIPWAY_ASSIGN_OR_RETURN(c.dockerfile_text, ReadWholeFile(c.dockerfile_path));
  const std::string ignore_file = dockerfile::ChooseIgnoreFile(c.dockerfile_path, c.root, Exists);
  if (!ignore_file.empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(ignore_file));
    SLIPWAY_ASSIGN_OR_RETURN(c.ignore, dockerfile::Dockerignore::Parse(text, ignore_file));
  }
  return c;
}

}  // namespace slipway::executor
