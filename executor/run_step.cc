#include "executor/run_step.h"

#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>

#include "base/fs.h"
#include "base/in_root.h"
#include "base/path.h"
#include "base/unique_fd.h"
#include "executor/agent_proxy.h"
#include "executor/copy.h"
#include "image/digest.h"
#include "userdb/resolve.h"

namespace slipway::executor {
namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Docker's default capabilities: the bounding set a step keeps.
constexpr int kDefaultCaps[] = {0 /*CHOWN*/,       1 /*DAC_OVERRIDE*/,     3 /*FOWNER*/,
                                4 /*FSETID*/,      5 /*KILL*/,             6 /*SETGID*/,
                                7 /*SETUID*/,      8 /*SETPCAP*/,          10 /*NET_BIND_SERVICE*/,
                                13 /*NET_RAW*/,    18 /*SYS_CHROOT*/,      27 /*MKNOD*/,
                                29 /*AUDIT_WRITE*/, 31 /*SETFCAP*/};

std::string Relative(const std::string& p) {
  std::string c = CleanPath("/" + p);
  return c == "/" ? "" : c.substr(1);
}

Result<void> WriteFileAt(const std::string& path, const std::string& content, mode_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd.valid()) return ErrnoError("creating " + path);
  for (std::size_t off = 0; off < content.size();) {
    ssize_t w = write(fd.get(), content.data() + off, content.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return ErrnoError("writing " + path);
    off += static_cast<std::size_t>(w);
  }
  if (fchmod(fd.get(), mode) != 0) return ErrnoError("chmod " + path);
  return Ok{};
}

Result<std::string> FdPath(int fd) {
  char buf[PATH_MAX + 1];
  ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, PATH_MAX);
  if (n < 0) return ErrnoError("resolving a mount point");
  return std::string(buf, static_cast<std::size_t>(n));
}

// Mount points inside the root: found or created in-root, and removed again afterwards.
class Mountpoints {
 public:
  explicit Mountpoints(int root_fd) : root_fd_(root_fd) {}
  ~Mountpoints() { Cleanup(); }

  // Returns the host path of `/rel` as a directory or a file, creating it (and missing parents)
  // when absent. An empty string when `optional` and it cannot be had (a dangling symlink).
  Result<std::string> Get(const std::string& abs, bool dir, bool optional) {
    const std::string rel = Relative(abs);
    std::size_t pos = 0;
    std::string done;
    UniqueFd cur(openat(root_fd_, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rel.empty()) return FdPath(cur.get());
    while (true) {
      const std::size_t slash = rel.find('/', pos);
      const std::string c = rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      const bool last = slash == std::string::npos;
      const std::string path = done.empty() ? c : done + "/" + c;
      struct stat st;
      if (fstatat(cur.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) return ErrnoError("mount point " + abs + ": stat /" + path);
        struct stat parent;
        fstat(cur.get(), &parent);
        if (last && !dir) {
          UniqueFd f(openat(cur.get(), c.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
          if (!f.valid()) return ErrnoError("creating the mount point " + abs);
        } else if (mkdirat(cur.get(), c.c_str(), 0755) != 0) {
          return ErrnoError("creating the mount point " + abs);
        }
        created_.push_back({path, !(last && !dir)});
        touched_.push_back({done, parent});
      } else if (S_ISLNK(st.st_mode)) {
        auto next = OpenInRoot(root_fd_, path, O_PATH);
        if (!next.ok()) {
          if (optional) return std::string();
          return Error("mount point " + abs + ": /" + path + " is a symlink that leads nowhere",
                       ENOENT);
        }
        struct stat t;
        fstat(next->get(), &t);
        if (!last && !S_ISDIR(t.st_mode)) {
          return Error("mount point " + abs + ": /" + path + " is not a directory", ENOTDIR);
        }
        if (last) return CheckType(abs, next->get(), t, dir);
        cur = std::move(next).value();
        done = path;
        pos = slash + 1;
        continue;
      } else if (!last && !S_ISDIR(st.st_mode)) {
        return Error("mount point " + abs + ": /" + path + " is not a directory", ENOTDIR);
      }
      UniqueFd next(openat(cur.get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid()) return ErrnoError("mount point " + abs + ": opening /" + path);
      if (last) {
        struct stat t;
        fstat(next.get(), &t);
        return CheckType(abs, next.get(), t, dir);
      }
      cur = std::move(next);
      done = path;
      pos = slash + 1;
    }
  }

  // Removes what Get() created, newest first, where it is still empty; puts the parents' times
  // back.
  void Cleanup() {
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      const std::size_t s = it->path.rfind('/');
      const std::string parent = s == std::string::npos ? "." : it->path.substr(0, s);
      const std::string name = s == std::string::npos ? it->path : it->path.substr(s + 1);
      auto dir = OpenInRoot(root_fd_, parent, O_PATH | O_DIRECTORY);
      if (!dir.ok()) continue;
      struct stat st;
      if (fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (it->dir && S_ISDIR(st.st_mode)) {
        unlinkat(dir->get(), name.c_str(), AT_REMOVEDIR);  // fails when not empty: kept
      } else if (!it->dir && S_ISREG(st.st_mode) && st.st_size == 0) {
        unlinkat(dir->get(), name.c_str(), 0);
      }
    }
    created_.clear();
    for (const TouchedDir& t : touched_) {
      auto dir = OpenInRoot(root_fd_, t.path.empty() ? "." : t.path, O_RDONLY | O_DIRECTORY);
      if (!dir.ok()) continue;
      const struct timespec times[2] = {t.before.st_atim, t.before.st_mtim};
      futimens(dir->get(), times);
    }
  }

  const std::vector<TouchedDir>& touched() const { return touched_; }

 private:
  Result<std::string> CheckType(const std::string& abs, int fd, const struct stat& st, bool dir) {
    if (dir && !S_ISDIR(st.st_mode)) {
      return Error("mount point " + abs + " is not a directory in the image", ENOTDIR);
    }
    if (!dir && S_ISDIR(st.st_mode)) {
      return Error("mount point " + abs + " is a directory in the image", EISDIR);
    }
    return FdPath(fd);
  }

  struct Created {
    std::string path;
    bool dir;
  };
  int root_fd_;
  std::vector<Created> created_;
  std::vector<TouchedDir> touched_;
};

std::string HostsFile(const std::string& hostname) {
  return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" +
         hostname + "\n";
}

std::string ResolvConf() {
  auto host = ReadWholeFile("/etc/resolv.conf");
  if (host.ok() && !host->empty()) return *host;
  return "nameserver 127.0.0.1\n";
}

bool HasKey(const std::vector<std::string>& env, const std::string& key) {
  for (const std::string& e : env) {
    if (e.compare(0, key.size() + 1, key + "=") == 0) return true;
  }
  return false;
}

std::string Sanitize(const std::string& id) {
  // Cache ids become directory names: hash them, keep a readable prefix.
  std::string readable;
  for (char c : id) readable += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  if (readable.size() > 40) readable.resize(40);
  return readable + "-" + image::Sha256Digest(id).substr(7, 16);
}

}  // namespace

Result<RunOutcome> RunStep(const RunRequest& r) {
  RunOutcome outcome;
  UniqueFd root(open(r.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError("opening the stage root " + r.root);

  // Who runs the step: resolved against the root as it is now.
  SLIPWAY_ASSIGN_OR_RETURN(userdb::Databases db, userdb::ReadDatabases(root.get()));
  for (const std::string& w : db.Warnings()) outcome.warnings.push_back(w);
  const std::string spec = r.user.empty() ? "0" : r.user;
  auto id = userdb::ResolveUser(db, spec);
  if (!id.ok()) return std::move(id.error().AddContext("USER " + spec));
  Credentials cred;
  cred.uid = id->uid;
  cred.gid = id->gid;
  {
    std::vector<gid_t> now(static_cast<std::size_t>(std::max(0, getgroups(0, nullptr))));
    if (!now.empty() && getgroups(static_cast<int>(now.size()), now.data()) < 0) now.clear();
    std::set<std::uint32_t> have(now.begin(), now.end());
    std::set<std::uint32_t> want(id->groups.begin(), id->groups.end());
    // Where setgroups is impossible (a user namespace that denies it), [] and [gid] are the same
    // identity as far as the kernel's access checks go -- the primary gid is a member either
    // way -- so that difference alone does not need a call. Any other difference does, and one
    // we cannot make is an error (Spawn's pre-flight check), never ignored.
    std::string why;
    auto with_gid = [&](std::set<std::uint32_t> g) {
      g.insert(id->gid);
      return g;
    };
    if (have == want || (!CanSetGroups(&why) && with_gid(have) == with_gid(want))) {
      cred.groups_mode = GroupsMode::kKeep;  // nothing to change: no setgroups call
    } else if (want.empty()) {
      cred.groups_mode = GroupsMode::kClear;
    } else {
      cred.groups_mode = GroupsMode::kSet;
      cred.groups = id->groups;
    }
  }

  SpawnOptions o;
  o.root = r.root;
  o.workdir = r.workdir.empty() ? "/" : r.workdir;
  o.credentials = cred;
  o.namespaces = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (r.network == "none") o.namespaces |= CLONE_NEWNET;
  o.hostname = r.hostname;
  o.no_new_privs = true;
  std::uint64_t caps = 0;
  for (int c : kDefaultCaps) caps |= std::uint64_t{1} << c;
  o.capability_bounding_set = caps;
  o.seccomp = r.seccomp;
  o.parent_death_signal = SIGKILL;

  o.env = r.env;
  if (!HasKey(o.env, "PATH")) o.env.push_back(std::string("PATH=") + kDefaultPath);
  if (!HasKey(o.env, "HOSTNAME")) o.env.push_back("HOSTNAME=" + r.hostname);
  if (!HasKey(o.env, "HOME")) o.env.push_back("HOME=" + id->home);

  // The step's own files: /dev, hosts, resolv.conf, hostname, secrets, a heredoc script.
  const std::string dev = r.scratch + "/dev";
  if (mkdir(dev.c_str(), 0755) != 0) return ErrnoError("creating " + dev);
  for (const char* d : {"pts", "shm"}) {
    if (mkdir((dev + "/" + d).c_str(), 0755) != 0) return ErrnoError("creating the step's /dev");
  }
  static const char* const kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (const char* d : kDevices) SLIPWAY_RETURN_IF_ERROR(WriteFileAt(dev + "/" + d, "", 0666));
  const std::pair<const char*, const char*> kLinks[] = {{"ptmx", "pts/ptmx"},
                                                        {"fd", "/proc/self/fd"},
                                                        {"stdin", "/proc/self/fd/0"},
                                                        {"stdout", "/proc/self/fd/1"},
                                                        {"stderr", "/proc/self/fd/2"}};
  for (const auto& [name, target] : kLinks) {
    if (symlink(target, (dev + "/" + name).c_str()) != 0) return ErrnoError("creating /dev/" + std::string(name));
  }
  SLIPWAY_RETURN_IF_ERROR(WriteFileAt(r.scratch + "/hosts", HostsFile(r.hostname), 0644));
  SLIPWAY_RETURN_IF_ERROR(WriteFileAt(r.scratch + "/resolv.conf", ResolvConf(), 0644));
  SLIPWAY_RETURN_IF_ERROR(WriteFileAt(r.scratch + "/hostname", r.hostname + "\n", 0644));
  o.argv = r.argv;
  if (!r.script.empty()) {
    SLIPWAY_RETURN_IF_ERROR(WriteFileAt(dev + "/.slipway-heredoc", r.script, 0755));
    o.argv = {"/dev/.slipway-heredoc"};
  }

  Mountpoints points(root.get());
  auto at = [&](const std::string& abs, bool dir, bool optional) { return points.Get(abs, dir, optional); };
  {
    SLIPWAY_ASSIGN_OR_RETURN(std::string proc, at("/proc", true, false));
    o.mounts.push_back({"proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""});
    SLIPWAY_ASSIGN_OR_RETURN(std::string devp, at("/dev", true, false));
    o.mounts.push_back({dev, devp, "", MS_BIND, ""});
    for (const char* d : kDevices) {
      o.mounts.push_back({std::string("/dev/") + d, devp + "/" + d, "", MS_BIND, ""});
    }
    o.mounts.push_back({"devpts", devp + "/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620"});
    o.mounts.push_back({"shm", devp + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"});
    for (const char* f : {"hosts", "resolv.conf", "hostname"}) {
      SLIPWAY_ASSIGN_OR_RETURN(std::string p, at(std::string("/etc/") + f, false, true));
      if (!p.empty()) o.mounts.push_back({r.scratch + "/" + f, p, "", MS_BIND, ""});
    }
  }

  // RUN --mount.
  std::vector<UniqueFd> locks;
  std::vector<std::unique_ptr<AgentProxy>> agents;  // live until the step has ended
  int copies = 0;
  std::vector<dockerfile::Mount> mounts = r.mounts;
  for (dockerfile::Mount& m : mounts) {
    if (m.type == "secret" && m.target.empty() && m.env.empty()) {
      m.target = "/run/secrets/" + (m.id.empty() ? m.target : m.id);
    }
    if (!m.target.empty() && m.target[0] != '/') m.target = CleanPath(o.workdir + "/" + m.target);
  }
  std::stable_sort(mounts.begin(), mounts.end(), [](const auto& a, const auto& b) {
    return std::count(a.target.begin(), a.target.end(), '/') <
           std::count(b.target.begin(), b.target.end(), '/');
  });
  for (const dockerfile::Mount& m : mounts) {
    const std::string what = "RUN --mount=" + m.ToString();
    if (m.type == "ssh") {
      const std::string id = m.id.empty() ? "default" : m.id;
      auto it = r.ssh_agents.find(id);
      if (it == r.ssh_agents.end()) {
        if (m.required) {
          return Error(what + ": SSH agent \"" + id + "\" is required but was not given (--ssh " +
                           id + "=SOCKET)",
                       ENOENT);
        }
        continue;
      }
      // The step gets a socket of its own (owner and mode as asked), forwarded to the agent.
      const std::string sock = r.scratch + "/ssh-" + std::to_string(copies++);
      auto proxy = AgentProxy::Start(it->second, sock, m.uid.value_or(0), m.gid.value_or(0),
                                     m.mode.value_or(0600));
      if (!proxy.ok()) return std::move(proxy.error().AddContext(what));
      agents.push_back(std::move(*proxy));
      SLIPWAY_ASSIGN_OR_RETURN(std::string p, at(m.target, false, false));
      o.mounts.push_back({sock, p, "", MS_BIND, ""});
      const bool has_sock = std::any_of(o.env.begin(), o.env.end(), [](const std::string& kv) {
        return kv.rfind("SSH_AUTH_SOCK=", 0) == 0;
      });
      if (!has_sock) o.env.push_back("SSH_AUTH_SOCK=" + m.target);
      continue;
    }
    if (m.type == "secret") {
      const std::string id = m.id.empty() ? Relative(m.target) : m.id;
      auto it = r.secrets.find(id);
      if (it == r.secrets.end()) {
        if (m.required) {
          return Error(what + ": secret \"" + id + "\" is required but was not given (--secret id=" +
                           id + ",src=FILE)",
                       ENOENT);
        }
        continue;
      }
      SLIPWAY_ASSIGN_OR_RETURN(std::string value, ReadWholeFile(it->second));
      if (!m.env.empty()) {
        o.env.push_back(m.env + "=" + value);
        if (m.target.empty()) continue;
      }
      const std::string file = r.scratch + "/secret-" + std::to_string(copies++);
      SLIPWAY_RETURN_IF_ERROR(WriteFileAt(file, value, m.mode.value_or(0400)));
      if (chown(file.c_str(), m.uid.value_or(0), m.gid.value_or(0)) != 0) {
        return ErrnoError(what + ": setting the secret's owner");
      }
      SLIPWAY_ASSIGN_OR_RETURN(std::string p, at(m.target, false, false));
      o.mounts.push_back({file, p, "", MS_BIND, ""});
      o.mounts.push_back({"", p, "", MS_BIND | MS_REMOUNT | MS_RDONLY, ""});
      continue;
    }
    if (m.target.empty()) return Error(what + ": a target is required", EINVAL);
    if (m.type == "tmpfs") {
      SLIPWAY_ASSIGN_OR_RETURN(std::string p, at(m.target, true, false));
      o.mounts.push_back({"tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV,
                          m.size ? "size=" + std::to_string(*m.size) : ""});
      continue;
    }
    if (m.type == "cache") {
      if (!m.from.empty()) {
        return Error(what + ": cache mounts seeded from= another stage are not supported", ENOTSUP);
      }
      if (r.cache_dir.empty()) return Error(what + ": no cache directory (--cache-dir)", EINVAL);
      const std::string base = r.cache_dir + "/run-cache";
      mkdir(r.cache_dir.c_str(), 0700);
      mkdir(base.c_str(), 0700);
      const std::string dir = base + "/" + Sanitize(m.id.empty() ? m.target : m.id);
      if (mkdir(dir.c_str(), 0755) == 0) {
        if (chown(dir.c_str(), m.uid.value_or(0), m.gid.value_or(0)) != 0 ||
            chmod(dir.c_str(), m.mode.value_or(0755)) != 0) {
          return ErrnoError(what + ": preparing the cache directory " + dir);
        }
      } else if (errno != EEXIST) {
        return ErrnoError(what + ": creating the cache directory " + dir);
      }
      if (m.sharing == "locked") {
        UniqueFd lock(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!lock.valid() || flock(lock.get(), LOCK_EX) != 0) {
          return ErrnoError(what + ": locking the cache");
        }
        locks.push_back(std::move(lock));
      }
      SLIPWAY_ASSIGN_OR_RETURN(std::string p, at(m.target, true, false));
      o.mounts.push_back({dir, p, "", MS_BIND | MS_REC, ""});
      if (m.readonly) {
        o.mounts.push_back({"", p, "", MS_BIND | MS_REMOUNT | MS_RDONLY, ""});
      }
      continue;
    }
    if (m.type != "bind") return Error(what + ": unknown mount type \"" + m.type + "\"", EINVAL);
    auto root_it = r.mount_roots.find(m.from);
    if (root_it == r.mount_roots.end()) {
      return Error(what + ": no source for from=\"" + m.from + "\"", ENOENT);
    }
    UniqueFd src_root(open(root_it->second.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!src_root.valid()) return ErrnoError(what + ": opening " + root_it->second);
    auto src = OpenInRoot(src_root.get(), m.source.empty() ? "." : m.source, O_PATH);
    if (!src.ok()) {
      return Error(what + ": source \"" + m.source + "\" not found" +
                       (m.from.empty() ? " in the build context" : " in " + m.from),
                   ENOENT);
    }
    struct stat sst;
    fstat(src->get(), &sst);
    std::string host_src;
    if (m.readonly) {
      SLIPWAY_ASSIGN_OR_RETURN(host_src, FdPath(src->get()));
    } else {
      // Writes to a rw bind are discarded: the step gets a private copy.
      host_src = r.scratch + "/bind-" + std::to_string(copies++);
      if (S_ISDIR(sst.st_mode)) {
        if (mkdir(host_src.c_str(), 0755) != 0) return ErrnoError("creating " + host_src);
      } else {
        if (mkdir(host_src.c_str(), 0755) != 0) return ErrnoError("creating " + host_src);
      }
      UniqueFd dst(open(host_src.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      CopyRequest c;
      c.src_root_fd = src_root.get();
      c.from_context = false;
      c.sources = {m.source.empty() ? "." : m.source};
      c.dest = "/";
      c.dst_root_fd = dst.get();
      auto copied = CopyFiles(c);
      if (!copied.ok()) return std::move(copied.error().AddContext(what));
      if (!S_ISDIR(sst.st_mode)) {
        std::string name = m.source;
        if (name.rfind('/') != std::string::npos) name = name.substr(name.rfind('/') + 1);
        host_src += "/" + name;
      }
    }
    SLIPWAY_ASSIGN_OR_RETURN(std::string p, at(m.target, S_ISDIR(sst.st_mode), false));
    o.mounts.push_back({host_src, p, "", MS_BIND | MS_REC, ""});
    if (m.readonly) o.mounts.push_back({"", p, "", MS_BIND | MS_REMOUNT | MS_RDONLY, ""});
  }

  // Output: one pipe for stdout and stderr, read line by line.
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoError("creating the output pipe");
  UniqueFd out_r(pipefd[0]), out_w(pipefd[1]);
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoError("opening /dev/null");
  o.fds = {{0, devnull.get()}, {1, out_w.get()}, {2, out_w.get()}};

  auto proc = Spawn(o);
  if (!proc.ok()) return std::move(proc).error();
  out_w.Reset();
  if (r.on_process) r.on_process(&*proc);
  std::string pending;
  char buf[65536];
  for (;;) {
    ssize_t n = read(out_r.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (r.output) r.output(std::string_view(pending).substr(start, nl - start));
    }
    pending.erase(0, start);
    if (pending.size() > 65536) {  // a very long line: shown in pieces
      if (r.output) r.output(pending);
      pending.clear();
    }
  }
  if (!pending.empty() && r.output) r.output(pending);
  auto status = proc->Wait();
  if (r.on_process) r.on_process(nullptr);
  if (!status.ok()) return std::move(status).error();
  outcome.status = *status;
  points.Cleanup();
  outcome.touched = points.touched();
  return outcome;
}

}  // namespace slipway::executor
