#include "executor/git_context.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

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

Result<std::string> PercentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !IsHex(s.substr(i + 1, 2), 2, 2)) {
      return Error("bad %-escape in the credentials", EINVAL);
    }
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

// Runs git, its stdout and stderr kept in a memfd for the message if it fails.
class GitRunner {
 public:
  GitRunner(std::vector<std::string> env, std::string shown)
      : env_(std::move(env)), shown_(std::move(shown)) {}

  Result<void> Run(const std::vector<std::string>& args) const {
    SpawnOptions o;
    o.argv = {"git"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = env_;
    o.new_process_group = true;
    UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
    UniqueFd out(memfd_create("git-output", MFD_CLOEXEC));
    if (!devnull.valid() || !out.valid()) return ErrnoError("--context " + shown_ + ": running git");
    o.fds = {{0, devnull.get()}, {1, out.get()}, {2, out.get()}};
    const std::string& command = args.size() > 2 && args[0] == "-C" ? args[2] : args.front();
    const std::string what = "--context " + shown_ + ": git " + command;
    auto proc = Spawn(o);
    if (!proc.ok()) {
      if (proc.error().errno_value() == ENOENT) {
        return Error("--context " + shown_ + ": git contexts need the git program, and it is "
                     "not in PATH",
                     ENOENT);
      }
      return std::move(proc.error().AddContext(what));
    }
    auto status = proc->Wait();
    if (!status.ok()) return std::move(status.error().AddContext(what));
    if (status->code == 0 && status->signal == 0) return Ok{};
    return Error(what + " failed (" + status->ToString() + "): " + Tail(out.get()), EIO);
  }

 private:
  // git's last lines, on one line.
  static std::string Tail(int fd) {
    const off_t size = lseek(fd, 0, SEEK_END);
    const off_t from = size > 2048 ? size - 2048 : 0;
    std::string text(static_cast<std::size_t>(size - from), '\0');
    if (size <= 0 || pread(fd, text.data(), text.size(), from) != static_cast<ssize_t>(text.size())) {
      return "(no output)";
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    for (char& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return text;
  }

  std::vector<std::string> env_;
  std::string shown_;
};

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
  GitSource s;
  std::string where = parts[0];
  const std::size_t slash = where.find('/');
  const std::size_t at = where.rfind('@', slash);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    const std::string userinfo = where.substr(0, at);
    where = where.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    auto user = PercentDecode(userinfo.substr(0, colon));
    auto pass = PercentDecode(colon == std::string::npos ? "" : userinfo.substr(colon + 1));
    if (!user.ok() || !pass.ok()) return Error("--context git://...: bad %-escape in the credentials", EINVAL);
    s.username = *user;
    s.password = *pass;
  }
  s.shown = "git://" + where;
  for (std::size_t i = 1; i < parts.size(); ++i) s.shown += "#" + parts[i];
  const std::string what = "--context " + s.shown;
  if (parts.size() > 3) return Error(what + ": expected git://HOST/PATH[#REF[#COMMIT]]", EINVAL);
  const std::size_t path_at = where.find('/');
  if (where.empty() || path_at == 0 || where[0] == '-') {
    return Error(what + ": no host (expected git://HOST/PATH[#REF[#COMMIT]])", EINVAL);
  }
  if (path_at == std::string::npos || path_at + 1 == where.size()) {
    return Error(what + ": no repository path (expected git://HOST/PATH[#REF[#COMMIT]])", EINVAL);
  }
  for (char c : where) {
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ' || c == '\\') {
      return Error(what + ": the repository address has spaces or control characters", EINVAL);
    }
  }
  const std::string method = pull_method.empty() ? "https" : pull_method;
  if (method != "https" && method != "http") {
    return Error("GIT_PULL_METHOD=" + pull_method + ": expected https or http", EINVAL);
  }
  s.url = method + "://" + where;
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
  if (user.find_first_of("\r\n") != std::string::npos ||
      pass.find_first_of("\r\n") != std::string::npos) {
    return Error(what + ": the git credentials contain a line break", EINVAL);
  }
  // git's environment: the caller's, minus any git configuration given through it, plus ours.
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
    // A helper that answers for this host only; the secrets stay in git's environment.
    const std::string host_url = src.url.substr(0, src.url.find('/', src.url.find("://") + 3));
    config.emplace_back("credential." + host_url + ".helper",
                        "!f() { test \"$1\" = get || return 0; printf 'username=%s\\npassword=%s\\n' "
                        "\"$SLIPWAY_GIT_USERNAME\" \"$SLIPWAY_GIT_PASSWORD\"; }; f");
    genv.push_back("SLIPWAY_GIT_USERNAME=" + user);
    genv.push_back("SLIPWAY_GIT_PASSWORD=" + pass);
  }
  if (options.insecure_skip_tls) config.emplace_back("http.sslVerify", "false");
  genv.push_back("GIT_CONFIG_COUNT=" + std::to_string(config.size()));
  for (std::size_t i = 0; i < config.size(); ++i) {
    genv.push_back("GIT_CONFIG_KEY_" + std::to_string(i) + "=" + config[i].first);
    genv.push_back("GIT_CONFIG_VALUE_" + std::to_string(i) + "=" + config[i].second);
  }
  const GitRunner git(std::move(genv), src.shown);

  // What to clone directly (a branch or tag) and what to check out afterwards.
  std::string branch = options.branch, fetch_ref, checkout;
  if (!src.ref.empty()) {
    std::string named;
    if (IsCommitId(src.ref)) {
      checkout = src.ref;
    } else if (src.ref.rfind("refs/heads/", 0) == 0) {
      named = src.ref.substr(11);
    } else if (src.ref.rfind("refs/tags/", 0) == 0) {
      named = src.ref.substr(10);
    } else if (src.ref.rfind("refs/", 0) == 0) {
      fetch_ref = src.ref;
    } else {
      named = src.ref;  // a bare branch or tag name
    }
    if (!named.empty()) {
      if (!branch.empty() && branch != named) {
        return Error(what + ": --git branch=" + branch + " names another branch", EINVAL);
      }
      branch = named;
    }
  }
  if (!src.commit.empty()) checkout = src.commit;

  std::vector<std::string> clone = {"clone", "--quiet"};
  if (!branch.empty()) clone.insert(clone.end(), {"--branch", branch});
  if (options.single_branch) clone.push_back("--single-branch");
  if (options.recurse_submodules) clone.push_back("--recurse-submodules");
  clone.insert(clone.end(), {"--", src.url, dest});
  SLIPWAY_RETURN_IF_ERROR(git.Run(clone));
  if (!fetch_ref.empty()) {
    SLIPWAY_RETURN_IF_ERROR(git.Run({"-C", dest, "fetch", "--quiet", "origin", fetch_ref}));
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

}  // namespace slipway::executor
