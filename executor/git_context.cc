#include "executor/git_context.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>

#include "base/fs.h"
#include "base/in_root.h"
#include "base/unique_fd.h"
#include "executor/spawn.h"

extern char** environ;

namespace slipway::executor {
namespace {

bool IsHex(const std::string& s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsCommitId(const std::string& s) { return IsHex(s, 40, 40) || IsHex(s, 64, 64); }

// A ref or branch name git will take as one argument: no options, spaces, ".." or control bytes.
bool IsSafeRef(const std::string& s) {
  if (s.empty() || s[0] == '-' || s.back() == '/' || s.find("..") != std::string::npos) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '.' && c != '_' &&
        c != '-' && c != '+') {
      return false;
    }
  }
  return true;
}

// %XX escapes decoded; nothing for a malformed escape.
std::optional<std::string> PercentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !IsHex(s.substr(i + 1, 2), 2, 2)) return std::nullopt;
    out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  return out;
}

bool ParseBool(const std::string& v, bool* out) {
  if (v == "true" || v == "1") return *out = true, true;
  if (v == "false" || v == "0") return *out = false, true;
  return false;
}

// Runs git; its output is kept in a memfd, for the message if it fails. `what` starts every
// message ("--context git://...", "ADD https://...").
class GitRunner {
 public:
  GitRunner(std::vector<std::string> env, std::string what)
      : env_(std::move(env)), what_(std::move(what)) {}

  Result<void> Run(const std::vector<std::string>& args) const {
    auto out = Output(args);
    if (!out.ok()) return std::move(out).error();
    return Ok{};
  }

  // Runs git and returns what it printed (the last line break removed).
  Result<std::string> Output(const std::vector<std::string>& args) const {
    SpawnOptions o;
    o.argv = {"git"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = env_;
    o.new_process_group = true;
    UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
    UniqueFd out(memfd_create("git-output", MFD_CLOEXEC));
    if (!devnull.valid() || !out.valid()) return ErrnoError(what_ + ": running git");
    o.fds = {{0, devnull.get()}, {1, out.get()}, {2, out.get()}};
    const std::string& command = args.size() > 2 && args[0] == "-C" ? args[2] : args.front();
    const std::string what = what_ + ": git " + command;
    auto proc = Spawn(o);
    if (!proc.ok()) {
      if (proc.error().errno_value() == ENOENT) {
        return Error(what_ + ": git sources need the git program, and it is not in PATH", ENOENT);
      }
      return std::move(proc.error().AddContext(what));
    }
    auto status = proc->Wait();
    if (!status.ok()) return std::move(status.error().AddContext(what));
    std::string text = Tail(out.get());
    if (status->code == 0 && status->signal == 0) return text;
    for (char& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return Error(what + " failed (" + status->ToString() + "): " + (text.empty() ? "(no output)" : text),
                 EIO);
  }

 private:
  // git's last 2 KiB of output, without the final line break.
  static std::string Tail(int fd) {
    const off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0) return "";
    const off_t from = size > 2048 ? size - 2048 : 0;
    std::string text(static_cast<std::size_t>(size - from), '\0');
    if (pread(fd, text.data(), text.size(), from) != static_cast<ssize_t>(text.size())) return "";
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
  }

  std::vector<std::string> env_;
  std::string what_;
};

// What git checked out, with the modes Docker gives files from git: 0755 for directories and
// executables, 0644 for other files (git records only the executable bit).
Result<void> NormaliseModes(int dir_fd, const std::string& what, int depth) {
  if (depth > 4096) return Error(what + ": the repository is nested too deeply", ELOOP);
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir_fd));
  for (const std::string& n : names) {
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoError(what + ": " + n);
    if (S_ISDIR(st.st_mode)) {
      if (fchmodat(dir_fd, n.c_str(), 0755, 0) != 0) return ErrnoError(what + ": chmod " + n);
      UniqueFd sub(openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoError(what + ": opening " + n);
      SLIPWAY_RETURN_IF_ERROR(NormaliseModes(sub.get(), what, depth + 1));
    } else if (S_ISREG(st.st_mode)) {
      if (fchmodat(dir_fd, n.c_str(), st.st_mode & 0111 ? 0755 : 0644, 0) != 0) {
        return ErrnoError(what + ": chmod " + n);
      }
    }
  }
  return Ok{};
}

// HOST/PATH, maybe with user:password@ in front: the URL git clones (credentials removed), the
// credentials, and `shown` -- the source as given but without them -- for every message.
Result<GitSource> SplitRemote(const std::string& scheme, std::string where, const std::string& prefix,
                              const std::string& fragment, const std::string& what_prefix,
                              const std::string& form) {
  GitSource s;
  const std::size_t slash = where.find('/');
  const std::size_t at = where.rfind('@', slash);
  bool bad_escape = false;
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    const std::string userinfo = where.substr(0, at);
    where = where.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    auto user = PercentDecode(userinfo.substr(0, colon));
    auto pass = PercentDecode(colon == std::string::npos ? "" : userinfo.substr(colon + 1));
    bad_escape = !user || !pass;
    if (!bad_escape) {
      s.username = *user;
      s.password = *pass;
    }
  }
  s.shown = prefix + where + fragment;
  const std::string what = what_prefix + s.shown;
  if (bad_escape) return Error(what + ": bad %-escape in the credentials", EINVAL);
  const std::size_t path_at = where.find('/');
  if (where.empty() || path_at == 0 || where[0] == '-') {
    return Error(what + ": no host (expected " + form + ")", EINVAL);
  }
  if (path_at == std::string::npos || path_at + 1 == where.size()) {
    return Error(what + ": no repository path (expected " + form + ")", EINVAL);
  }
  for (char c : where) {
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ' || c == '\\') {
      return Error(what + ": the repository address has spaces or control characters", EINVAL);
    }
  }
  s.url = scheme + "://" + where;
  return s;
}

// How a ref is reached: cloned directly (a branch or tag), fetched (any other ref), or checked
// out after the clone (a commit id).
struct Plan {
  std::string branch, fetch_ref, checkout;
};

Result<void> PlanRef(const std::string& ref, const std::string& what, Plan* p) {
  if (ref.empty()) return Ok{};
  std::string named;
  if (IsCommitId(ref)) {
    p->checkout = ref;
  } else if (ref.rfind("refs/heads/", 0) == 0) {
    named = ref.substr(11);
  } else if (ref.rfind("refs/tags/", 0) == 0) {
    named = ref.substr(10);
  } else if (ref.rfind("refs/", 0) == 0) {
    p->fetch_ref = ref;
  } else {
    named = ref;  // a bare branch or tag name
  }
  if (!named.empty()) {
    if (!p->branch.empty() && p->branch != named) {
      return Error(what + ": --git branch=" + p->branch + " names another branch", EINVAL);
    }
    p->branch = named;
  }
  return Ok{};
}

// git's environment: the caller's, minus any git configuration given through it, plus ours --
// credentials through a helper that answers for this host only (the secrets stay in git's
// environment, off every command line).
Result<std::vector<std::string>> GitEnv(const GitEnvironment& env, const GitSource& src,
                                        const std::string& user, const std::string& pass,
                                        bool insecure_skip_tls, const std::string& what) {
  if (user.find_first_of("\r\n") != std::string::npos ||
      pass.find_first_of("\r\n") != std::string::npos) {
    return Error(what + ": the git credentials contain a line break", EINVAL);
  }
  std::vector<std::string> genv;
  bool has_path = false;
  for (const std::string& kv : env.variables) {
    if (kv.rfind("GIT_CONFIG_", 0) == 0 || kv.rfind("GIT_TERMINAL_PROMPT=", 0) == 0 ||
        kv.rfind("SLIPWAY_GIT_", 0) == 0 || kv.rfind("GIT_ASKPASS=", 0) == 0 ||
        kv.rfind("GIT_DIR=", 0) == 0 || kv.rfind("GIT_WORK_TREE=", 0) == 0) {
      continue;
    }
    has_path |= kv.rfind("PATH=", 0) == 0;
    genv.push_back(kv);
  }
  if (!has_path) genv.push_back("PATH=/usr/local/bin:/usr/bin:/bin");
  genv.push_back("GIT_TERMINAL_PROMPT=0");
  std::vector<std::pair<std::string, std::string>> config;
  if (!user.empty() || !pass.empty()) {
    const std::string host_url = src.url.substr(0, src.url.find('/', src.url.find("://") + 3));
    config.emplace_back("credential." + host_url + ".helper",
                        "!f() { test \"$1\" = get || return 0; printf 'username=%s\\npassword=%s\\n' "
                        "\"$SLIPWAY_GIT_USERNAME\" \"$SLIPWAY_GIT_PASSWORD\"; }; f");
    genv.push_back("SLIPWAY_GIT_USERNAME=" + user);
    genv.push_back("SLIPWAY_GIT_PASSWORD=" + pass);
  }
  if (insecure_skip_tls) config.emplace_back("http.sslVerify", "false");
  genv.push_back("GIT_CONFIG_COUNT=" + std::to_string(config.size()));
  for (std::size_t i = 0; i < config.size(); ++i) {
    genv.push_back("GIT_CONFIG_KEY_" + std::to_string(i) + "=" + config[i].first);
    genv.push_back("GIT_CONFIG_VALUE_" + std::to_string(i) + "=" + config[i].second);
  }
  return genv;
}

Result<void> Checkout(const GitRunner& git, const GitSource& src, const Plan& plan,
                      const GitOptions& options, const std::string& dest) {
  std::vector<std::string> clone = {"clone", "--quiet"};
  if (!plan.branch.empty()) clone.insert(clone.end(), {"--branch", plan.branch});
  if (options.single_branch) clone.push_back("--single-branch");
  if (options.recurse_submodules) clone.push_back("--recurse-submodules");
  clone.insert(clone.end(), {"--", src.url, dest});
  SLIPWAY_RETURN_IF_ERROR(git.Run(clone));
  std::string checkout = plan.checkout;
  if (!plan.fetch_ref.empty()) {
    SLIPWAY_RETURN_IF_ERROR(git.Run({"-C", dest, "fetch", "--quiet", "origin", plan.fetch_ref}));
    if (checkout.empty()) checkout = "FETCH_HEAD";
  }
  if (!checkout.empty()) {
    SLIPWAY_RETURN_IF_ERROR(git.Run({"-C", dest, "checkout", "--quiet", "--detach", checkout}));
    if (options.recurse_submodules) {
      SLIPWAY_RETURN_IF_ERROR(
          git.Run({"-C", dest, "submodule", "--quiet", "update", "--init", "--recursive"}));
    }
  }
  return Ok{};
}

}  // namespace

Result<void> ParseGitOptions(const std::string& value, GitOptions* o) {
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t end = value.find(',', start);
    if (end == std::string::npos) end = value.size();
    const std::string item = value.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string v = eq == std::string::npos ? "" : item.substr(eq + 1);
    bool* flag = key == "single-branch"        ? &o->single_branch
                 : key == "recurse-submodules" ? &o->recurse_submodules
                 : key == "insecure-skip-tls"  ? &o->insecure_skip_tls
                                               : nullptr;
    if (key == "branch") {
      if (!IsSafeRef(v)) return Error("--git branch=" + v + ": not a branch name", EINVAL);
      o->branch = v;
    } else if (flag) {
      if (!ParseBool(v, flag)) return Error("--git " + item + ": expected true or false", EINVAL);
    } else {
      return Error("--git " + item +
                       ": unknown option (branch, single-branch, recurse-submodules, "
                       "insecure-skip-tls)",
                   EINVAL);
    }
  }
  return Ok{};
}

Result<GitSource> ParseGitContext(const std::string& context, const std::string& pull_method) {
  if (context.rfind("git://", 0) != 0) return Error(context + ": not a git:// context", EINVAL);
  std::vector<std::string> parts;
  for (std::size_t start = 6;;) {
    const std::size_t hash = context.find('#', start);
    parts.push_back(context.substr(start, hash == std::string::npos ? hash : hash - start));
    if (hash == std::string::npos) break;
    start = hash + 1;
  }
  std::string fragment;
  for (std::size_t i = 1; i < parts.size(); ++i) fragment += "#" + parts[i];
  const std::string method = pull_method.empty() ? "https" : pull_method;
  const bool method_ok = method == "https" || method == "http";
  SLIPWAY_ASSIGN_OR_RETURN(
      GitSource s, SplitRemote(method_ok ? method : "https", parts[0], "git://", fragment,
                               "--context ", "git://HOST/PATH[#REF[#COMMIT]]"));
  const std::string what = "--context " + s.shown;
  if (parts.size() > 3) return Error(what + ": expected git://HOST/PATH[#REF[#COMMIT]]", EINVAL);
  if (!method_ok) return Error("GIT_PULL_METHOD=" + pull_method + ": expected https or http", EINVAL);
  if (parts.size() > 1) {
    s.ref = parts[1];
    if (!s.ref.empty() && !IsCommitId(s.ref) && !IsSafeRef(s.ref)) {
      return Error(what + ": \"" + s.ref + "\" is neither a ref nor a commit id", EINVAL);
    }
  }
  if (parts.size() > 2) {
    s.commit = parts[2];
    if (!IsHex(s.commit, 7, 64)) return Error(what + ": \"" + s.commit + "\" is not a commit id", EINVAL);
  }
  return s;
}

Result<GitAddSource> ParseGitAddSource(const std::string& src) {
  if (src.rfind("git@", 0) == 0 || src.rfind("ssh://", 0) == 0) {
    return Error("ADD " + src + ": git over ssh is not supported (use an https URL)", ENOTSUP);
  }
  const std::size_t scheme_end = src.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : src.substr(0, scheme_end);
  if (scheme != "https" && scheme != "http" && scheme != "git") {
    return Error("ADD " + src + ": not a git URL (https://, http:// or git://)", EINVAL);
  }
  const std::size_t hash = src.find('#');
  const std::string where = src.substr(scheme_end + 3, hash == std::string::npos ? hash
                                                                                 : hash - scheme_end - 3);
  const std::string fragment = hash == std::string::npos ? "" : src.substr(hash);
  GitAddSource a;
  SLIPWAY_ASSIGN_OR_RETURN(a.source, SplitRemote(scheme, where, scheme + "://", fragment, "ADD ",
                                                 "SCHEME://HOST/PATH[#REF][:SUBDIR]"));
  const std::string what = "ADD " + a.source.shown;
  if (hash != std::string::npos) {
    // #REF:SUBDIR, either part optional.
    const std::string f = src.substr(hash + 1);
    const std::size_t colon = f.find(':');
    a.source.ref = f.substr(0, colon);
    if (colon != std::string::npos) a.subdir = f.substr(colon + 1);
    if (f.find('#') != std::string::npos) {
      return Error(what + ": expected SCHEME://HOST/PATH[#REF][:SUBDIR]", EINVAL);
    }
    if (!a.source.ref.empty() && !IsCommitId(a.source.ref) && !IsSafeRef(a.source.ref)) {
      return Error(what + ": \"" + a.source.ref + "\" is neither a ref nor a commit id", EINVAL);
    }
  }
  return a;
}

GitEnvironment GitEnvironment::FromProcess() {
  GitEnvironment e;
  for (char** p = ::environ; p && *p; ++p) e.variables.emplace_back(*p);
  auto get = [](const char* k) {
    const char* v = getenv(k);
    return std::string(v ? v : "");
  };
  e.username = get("GIT_USERNAME");
  e.password = get("GIT_PASSWORD");
  e.token = get("GIT_TOKEN");
  e.pull_method = get("GIT_PULL_METHOD");
  return e;
}

Result<void> CloneGitContext(const std::string& context, const GitOptions& options,
                             const GitEnvironment& env, const std::string& dest) {
  SLIPWAY_ASSIGN_OR_RETURN(GitSource src, ParseGitContext(context, env.pull_method));
  const std::string what = "--context " + src.shown;
  // Credentials: from the URL, else GIT_TOKEN (as the user name, like kaniko), else
  // GIT_USERNAME/GIT_PASSWORD.
  std::string user = src.username, pass = src.password;
  if (user.empty() && pass.empty()) {
    if (!env.token.empty()) {
      user = env.token;
    } else {
      user = env.username;
      pass = env.password;
    }
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> genv,
                           GitEnv(env, src, user, pass, options.insecure_skip_tls, what));
  Plan plan;
  plan.branch = options.branch;
  SLIPWAY_RETURN_IF_ERROR(PlanRef(src.ref, what, &plan));
  if (!src.commit.empty()) plan.checkout = src.commit;
  return Checkout(GitRunner(std::move(genv), what), src, plan, options, dest);
}

Result<std::string> FetchGitSource(const std::string& source, const std::string& checksum,
                                   bool keep_git_dir, const GitEnvironment& env,
                                   const std::string& dest) {
  SLIPWAY_ASSIGN_OR_RETURN(GitAddSource a, ParseGitAddSource(source));
  const std::string what = "ADD " + a.source.shown;
  if (!checksum.empty() && !IsHex(checksum, 7, 64)) {
    return Error(what + ": --checksum for a git source is a commit id (7 to 64 hex digits)", EINVAL);
  }
  SLIPWAY_ASSIGN_OR_RETURN(
      std::vector<std::string> genv,
      GitEnv(env, a.source, a.source.username, a.source.password, false, what));
  Plan plan;
  SLIPWAY_RETURN_IF_ERROR(PlanRef(a.source.ref, what, &plan));
  const GitRunner git(std::move(genv), what);
  SLIPWAY_RETURN_IF_ERROR(Checkout(git, a.source, plan, GitOptions{}, dest));
  if (!checksum.empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(std::string head, git.Output({"-C", dest, "rev-parse", "HEAD"}));
    std::string want = checksum;
    for (char& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (head.rfind(want, 0) != 0) {
      return Error(what + ": --checksum " + checksum + " does not match the commit checked out (" +
                       head + ")",
                   EINVAL);
    }
  }
  UniqueFd root(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError(what + ": opening the checkout");
  if (!keep_git_dir) SLIPWAY_RETURN_IF_ERROR(RemoveAllAt(root.get(), ".git"));
  SLIPWAY_RETURN_IF_ERROR(NormaliseModes(root.get(), what, 0));
  if (a.subdir.empty()) return dest;
  // The subdirectory, resolved inside the checkout (a symlink in it cannot lead out).
  auto sub = HostPathInRoot(root.get(), a.subdir);
  if (!sub.ok()) {
    return Error(what + ": " + a.subdir + " is not a directory of the repository: " +
                     std::strerror(sub.error().errno_value()),
                 sub.error().errno_value());
  }
  return *sub;
}

}  // namespace slipway::executor
