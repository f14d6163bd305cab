#include "executor/spawn.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "executor/child.h"
#include "executor/fd_plan_builder.h"
#include "executor/raw_syscall.h"

namespace slipway::executor {
namespace {

constexpr char kReaperArgv0[] = "slipway-reaper";
constexpr char kReaperMagic[] = "SLIPWAY-REAPER-PLAN-1";
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::size_t kChildStackSize = 256 * 1024;
constexpr std::size_t kMaxGroups = 65536;
constexpr int kForwardedSignals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

// An fd of our own executable, opened at start-up so the reaper can be started even after the
// binary on disk was replaced or deleted.
int g_self_exe_fd = -1;

// ---- Validation and preparation (parent side; allocation allowed) ----------------------------

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

Result<void> CheckId(const char* what, std::uint32_t id) {
  if (id > kMaxSpawnId) {
    return Error(std::string(what) + " " + std::to_string(id) + " is out of range (0.." +
                     std::to_string(kMaxSpawnId) + ")",
                 EINVAL);
  }
  return Ok{};
}

std::string JoinIds(const std::vector<std::uint32_t>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s + "]";
}

std::vector<std::uint32_t> CurrentGroups() {
  int n = getgroups(0, nullptr);
  std::vector<gid_t> g(n > 0 ? n : 0);
  if (n > 0) n = getgroups(n, g.data());
  std::vector<std::uint32_t> out(g.begin(), g.begin() + std::max(n, 0));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<void> Validate(const SpawnOptions& o) {
  if (o.argv.empty() || o.argv[0].empty()) return Error("spawn: argv is empty", EINVAL);
  for (const auto& a : o.argv) {
    if (HasNul(a)) return Error("spawn: an argument contains a NUL byte", EINVAL);
  }
  for (const auto& e : o.env) {
    if (HasNul(e)) return Error("spawn: an environment entry contains a NUL byte", EINVAL);
  }
  if (HasNul(o.root) || HasNul(o.workdir) || HasNul(o.hostname)) {
    return Error("spawn: a path contains a NUL byte", EINVAL);
  }
  if (!o.workdir.empty() && o.workdir[0] != '/') {
    return Error("spawn: working directory \"" + o.workdir + "\" is not absolute", EINVAL);
  }
  if (!o.root.empty() && o.root[0] != '/') {
    return Error("spawn: root directory \"" + o.root + "\" is not absolute", EINVAL);
  }
  const bool newns = o.namespaces & CLONE_NEWNS;
  if (o.root_switch == RootSwitch::kPivotRoot && !o.root.empty() && !newns) {
    return Error("spawn: pivot_root needs a mount namespace (CLONE_NEWNS)", EINVAL);
  }
  if (!o.mounts.empty() && !newns) {
    return Error(
        "spawn: mounts need a mount namespace (CLONE_NEWNS); refusing to mount on the host",
        EINVAL);
  }
  if (!o.hostname.empty() && !(o.namespaces & CLONE_NEWUTS)) {
    return Error("spawn: a hostname needs a UTS namespace (CLONE_NEWUTS)", EINVAL);
  }
  if ((!o.uid_map.empty() || !o.gid_map.empty()) && !(o.namespaces & CLONE_NEWUSER)) {
    return Error("spawn: id maps need a user namespace (CLONE_NEWUSER)", EINVAL);
  }
  const int allowed = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                      CLONE_NEWUSER | CLONE_NEWCGROUP;
  if (o.namespaces & ~allowed) return Error("spawn: unknown namespace flags", EINVAL);
  if (o.parent_death_signal < 0 || o.parent_death_signal >= 65) {
    return Error("spawn: invalid parent-death signal", EINVAL);
  }
  if (o.credentials) {
    SLIPWAY_RETURN_IF_ERROR(CheckId("uid", o.credentials->uid));
    SLIPWAY_RETURN_IF_ERROR(CheckId("gid", o.credentials->gid));
    for (std::uint32_t g : o.credentials->groups) SLIPWAY_RETURN_IF_ERROR(CheckId("group", g));
    if (o.credentials->groups.size() > kMaxGroups) {
      return Error("spawn: " + std::to_string(o.credentials->groups.size()) +
                       " supplementary groups; the kernel allows at most 65536",
                   EINVAL);
    }
  }
  for (const FdMapping& m : o.fds) {
    if (m.parent_fd < 0 || fcntl(m.parent_fd, F_GETFD) < 0) {
      return Error("spawn: parent fd " + std::to_string(m.parent_fd) + " (for child fd " +
                       std::to_string(m.child_fd) + ") is not open",
                   EBADF);
    }
  }
  return Ok{};
}

// The groups change the child will make, after the pre-flight check may have turned an
// impossible-but-unneeded change into kKeep.
Result<GroupsMode> PreflightGroups(const SpawnOptions& o) {
  if (!o.credentials || o.credentials->groups_mode == GroupsMode::kKeep) return GroupsMode::kKeep;
  const GroupsMode mode = o.credentials->groups_mode;
  std::vector<std::uint32_t> want =
      mode == GroupsMode::kClear ? std::vector<std::uint32_t>{} : o.credentials->groups;
  if (!o.preflight_groups_check) return mode;
  std::string why;
  if (o.namespaces & CLONE_NEWUSER) {
    if (o.userns_allow_setgroups) return mode;
    why = "the new user namespace is created with setgroups denied";
  } else if (CanSetGroups(&why)) {
    return mode;
  }
  std::vector<std::uint32_t> have = CurrentGroups();
  std::vector<std::uint32_t> sorted = want;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (sorted == have && !(o.namespaces & CLONE_NEWUSER)) return GroupsMode::kKeep;
  Error e((mode == GroupsMode::kClear ? std::string("clearing supplementary groups")
                                      : "setting supplementary groups " + JoinIds(want)) +
              " is not possible (the process has " + JoinIds(have) + ")",
          EPERM);
  e.SetHint(why);
  return e;
}

// All storage the child reads, kept alive until the child has exec'd or failed.
struct Prepared {
  std::vector<std::string> strings;  // argv then env
  std::vector<char*> argv, envp;
  std::vector<std::string> candidates;
  std::vector<const char*> candidate_ptrs;
  std::unique_ptr<bool[]> relative;
  std::vector<const char*> sh_argv;
  std::vector<ChildMount> mounts;
  std::vector<gid_t> groups;
  std::vector<ChildRlimit> rlimits;
  std::vector<char> cwd_buf;
  std::optional<FdPlan> fd_plan;
  ChildPlan plan;
};

std::string PathOf(const std::vector<std::string>& env) {
  std::string path = kDefaultPath;
  for (const std::string& e : env) {  // the last PATH= wins, as in the shell
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  return path;
}

int CapLast() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int v = CAP_LAST_CAP;
  if (in) in >> v;
  return std::min(v, 63);
}

// Builds the child's plan from options. `status_fd` is the pipe the child reports to.
Result<std::unique_ptr<Prepared>> Prepare(const SpawnOptions& o, GroupsMode groups_mode,
                                          int status_fd) {
  auto p = std::make_unique<Prepared>();
  ChildPlan& c = p->plan;
  c.status_fd = status_fd;
  c.setsid = o.new_session;
  c.setpgid = o.new_process_group && !o.new_session;
  c.signal_mask = 0;

  p->strings.reserve(o.argv.size() + o.env.size());
  for (const auto& a : o.argv) p->strings.push_back(a);
  for (const auto& e : o.env) p->strings.push_back(e);
  for (std::size_t i = 0; i < o.argv.size(); ++i) p->argv.push_back(p->strings[i].data());
  p->argv.push_back(nullptr);
  for (std::size_t i = 0; i < o.env.size(); ++i) {
    p->envp.push_back(p->strings[o.argv.size() + i].data());
  }
  p->envp.push_back(nullptr);

  // PATH candidates, searched inside the new root by the child.
  const std::string& file = o.argv[0];
  const bool searched = file.find('/') == std::string::npos;
  std::vector<bool> rel;
  if (!searched) {
    p->candidates.push_back(file);
    rel.push_back(false);
  } else {
    std::string path = PathOf(o.env);
    std::size_t i = 0;
    for (;;) {
      std::size_t j = path.find(':', i);
      std::string dir = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
      if (dir.empty()) dir = ".";
      p->candidates.push_back(dir + "/" + file);
      rel.push_back(dir[0] != '/');
      if (j == std::string::npos) break;
      i = j + 1;
    }
  }
  p->relative.reset(new bool[rel.size()]);
  for (std::size_t i = 0; i < rel.size(); ++i) {
    p->candidate_ptrs.push_back(p->candidates[i].c_str());
    p->relative[i] = rel[i];
  }
  p->sh_argv.push_back("/bin/sh");
  p->sh_argv.push_back(nullptr);  // the candidate goes here
  for (std::size_t i = 1; i < o.argv.size(); ++i) p->sh_argv.push_back(p->strings[i].c_str());
  p->sh_argv.push_back(nullptr);
  c.exec.candidates = p->candidate_ptrs.data();
  c.exec.relative = p->relative.get();
  c.exec.candidate_count = static_cast<int>(p->candidate_ptrs.size());
  c.exec.searched = searched;
  c.exec.argv = p->argv.data();
  c.exec.envp = p->envp.data();
  c.exec.sh_argv = p->sh_argv.data();

  c.mount_private = (o.namespaces & CLONE_NEWNS) != 0;
  if (!o.hostname.empty()) {
    c.hostname = o.hostname.c_str();
    c.hostname_len = o.hostname.size();
  }
  for (const MountSpec& m : o.mounts) {
    p->mounts.push_back(ChildMount{m.source.c_str(), m.target.c_str(),
                                   m.fstype.empty() ? nullptr : m.fstype.c_str(), m.flags,
                                   m.data.empty() ? nullptr : m.data.c_str()});
  }
  c.mounts = p->mounts.data();
  c.mount_count = p->mounts.size();
  if (!o.root.empty()) c.root = o.root.c_str();
  c.pivot_root = o.root_switch == RootSwitch::kPivotRoot;

  if (o.capability_bounding_set) {
    c.drop_bounding_set = true;
    c.bounding_keep = *o.capability_bounding_set;
    c.cap_last = CapLast();
  }
  if (o.credentials) {
    c.set_ids = true;
    c.uid = o.credentials->uid;
    c.gid = o.credentials->gid;
    if (groups_mode != GroupsMode::kKeep) {
      c.set_groups = true;
      if (groups_mode == GroupsMode::kSet) {
        p->groups.assign(o.credentials->groups.begin(), o.credentials->groups.end());
      }
      c.groups = p->groups.empty() ? nullptr : p->groups.data();
      c.group_count = p->groups.size();
    }
  }
  if (!o.workdir.empty()) {
    c.workdir = o.workdir.c_str();
    p->cwd_buf.assign(PATH_MAX + 1, '\0');
    c.cwd_buf = p->cwd_buf.data();
    c.cwd_buf_len = p->cwd_buf.size();
  }
  c.parent_death_signal = o.parent_death_signal;
  c.parent_pid = (o.namespaces & CLONE_NEWPID) ? 0 : getpid();

  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  c.cloexec_fallback_limit = static_cast<unsigned>(std::min<rlim_t>(nofile.rlim_cur, 1u << 20));
  for (const RlimitSpec& r : o.rlimits) {
    p->rlimits.push_back(ChildRlimit{r.resource, r.soft, r.hard});
  }
  c.rlimits = p->rlimits.data();
  c.rlimit_count = p->rlimits.size();
  c.no_new_privs = o.no_new_privs;
  c.seccomp = o.seccomp ? o.seccomp->fprog() : nullptr;
  return p;
}

// ---- The reaper's plan, carried in a sealed memfd -------------------------------------------

class Writer {
 public:
  void U64(std::uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof(v)); }
  void Str(const std::string& s) {
    U64(s.size());
    out_ += s;
  }
  void Strs(const std::vector<std::string>& v) {
    U64(v.size());
    for (const auto& s : v) Str(s);
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  std::uint64_t U64() {
    std::uint64_t v = 0;
    if (in_.size() < sizeof(v)) {
      ok_ = false;
      return 0;
    }
    std::memcpy(&v, in_.data(), sizeof(v));
    in_.remove_prefix(sizeof(v));
    return v;
  }
  std::string Str() {
    std::uint64_t n = U64();
    if (n > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  bool Bytes(void* out, std::size_t n) {
    if (n > in_.size()) return ok_ = false;
    if (n == 0) return true;  // `out` may be null then (an empty vector's data())
    std::memcpy(out, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  std::vector<std::string> Strs() {
    std::uint64_t n = U64();
    std::vector<std::string> v;
    for (std::uint64_t i = 0; i < n && ok_; ++i) v.push_back(Str());
    return v;
  }

 private:
  std::string_view in_;
  bool ok_ = true;
};

// Everything the reaper needs: the options (fds and namespaces are already done by then), the
// groups decision, and the seccomp program.
std::string SerializeForReaper(const SpawnOptions& o, GroupsMode groups_mode) {
  Writer w;
  w.out() = kReaperMagic;
  w.Strs(o.argv);
  w.Strs(o.env);
  w.Str(o.root);
  w.U64(static_cast<std::uint64_t>(o.root_switch));
  w.Str(o.workdir);
  w.U64(o.credentials.has_value());
  if (o.credentials) {
    w.U64(o.credentials->uid);
    w.U64(o.credentials->gid);
    w.U64(static_cast<std::uint64_t>(groups_mode));
    w.U64(o.credentials->groups.size());
    for (auto g : o.credentials->groups) w.U64(g);
  }
  w.U64(static_cast<std::uint64_t>(o.namespaces));
  w.Str(o.hostname);
  w.U64(o.mounts.size());
  for (const auto& m : o.mounts) {
    w.Str(m.source);
    w.Str(m.target);
    w.Str(m.fstype);
    w.U64(m.flags);
    w.Str(m.data);
  }
  w.U64(static_cast<std::uint64_t>(o.parent_death_signal));
  w.U64(o.no_new_privs);
  w.U64(o.capability_bounding_set.has_value());
  w.U64(o.capability_bounding_set.value_or(0));
  w.U64(o.rlimits.size());
  for (const auto& r : o.rlimits) {
    w.U64(static_cast<std::uint64_t>(r.resource));
    w.U64(r.soft);
    w.U64(r.hard);
  }
  const sock_fprog* prog = o.seccomp ? o.seccomp->fprog() : nullptr;
  w.U64(prog ? prog->len : 0);
  if (prog) {
    w.out().append(reinterpret_cast<const char*>(prog->filter), prog->len * sizeof(sock_filter));
  }
  return w.out();
}

struct ReaperPlan {
  SpawnOptions options;
  GroupsMode groups_mode = GroupsMode::kKeep;
  std::vector<sock_filter> seccomp;
};

bool Deserialize(std::string_view in, ReaperPlan* rp) {
  const std::size_t magic_len = sizeof(kReaperMagic) - 1;
  if (in.substr(0, magic_len) != kReaperMagic) return false;
  Reader r(in.substr(magic_len));
  SpawnOptions& o = rp->options;
  o.argv = r.Strs();
  o.env = r.Strs();
  o.root = r.Str();
  o.root_switch = static_cast<RootSwitch>(r.U64());
  o.workdir = r.Str();
  if (r.U64()) {
    Credentials c;
    c.uid = static_cast<std::uint32_t>(r.U64());
    c.gid = static_cast<std::uint32_t>(r.U64());
    rp->groups_mode = static_cast<GroupsMode>(r.U64());
    c.groups_mode = rp->groups_mode;
    std::uint64_t n = r.U64();
    for (std::uint64_t i = 0; i < n && r.ok(); ++i)
      c.groups.push_back(static_cast<std::uint32_t>(r.U64()));
    o.credentials = c;
  }
  o.namespaces = static_cast<int>(r.U64());
  o.hostname = r.Str();
  std::uint64_t mounts = r.U64();
  for (std::uint64_t i = 0; i < mounts && r.ok(); ++i) {
    MountSpec m;
    m.source = r.Str();
    m.target = r.Str();
    m.fstype = r.Str();
    m.flags = r.U64();
    m.data = r.Str();
    o.mounts.push_back(m);
  }
  o.parent_death_signal = static_cast<int>(r.U64());
  o.no_new_privs = r.U64();
  bool has_caps = r.U64();
  std::uint64_t caps = r.U64();
  if (has_caps) o.capability_bounding_set = caps;
  std::uint64_t rl = r.U64();
  for (std::uint64_t i = 0; i < rl && r.ok(); ++i) {
    RlimitSpec s;
    s.resource = static_cast<int>(r.U64());
    s.soft = r.U64();
    s.hard = r.U64();
    o.rlimits.push_back(s);
  }
  std::uint64_t len = r.U64();
  if (!r.ok() || len > BPF_MAXINSNS) return false;
  rp->seccomp.resize(len);
  return r.Bytes(rp->seccomp.data(), len * sizeof(sock_filter)) && r.ok();
}

// ---- Child failure → Error -------------------------------------------------------------------

std::string Describe(const SpawnOptions& o, const Prepared& p, const ChildFailure& f) {
  std::string what = StageName(f.stage);
  switch (f.stage) {
    case Stage::kSetGroups:
      return what + " " +
             JoinIds(o.credentials ? o.credentials->groups : std::vector<std::uint32_t>{});
    case Stage::kSetGid:
      return what + " to " + std::to_string(o.credentials->gid);
    case Stage::kSetUid:
      return what + " to " + std::to_string(o.credentials->uid);
    case Stage::kMount:
      if (f.index >= 0 && static_cast<std::size_t>(f.index) < o.mounts.size()) {
        const MountSpec& m = o.mounts[f.index];
        return what + " " + (m.fstype.empty() ? m.source : m.fstype) + " on " + m.target;
      }
      return what;
    case Stage::kBindRoot:
    case Stage::kPivotRoot:
    case Stage::kChroot:
      return what + " " + o.root;
    case Stage::kChdirWorkdir:
    case Stage::kVerifyWorkdir:
      return what + " " + o.workdir;
    case Stage::kRlimit:
      if (f.index >= 0 && static_cast<std::size_t>(f.index) < o.rlimits.size()) {
        return what + " (resource " + std::to_string(o.rlimits[f.index].resource) + ")";
      }
      return what;
    case Stage::kCapBoundingSet:
      return what + " (capability " + std::to_string(f.index) + ")";
    case Stage::kFdMap:
      if (f.index >= 0 && p.fd_plan &&
          static_cast<std::size_t>(f.index) < p.fd_plan->mappings().size()) {
        const FdMapping& m = p.fd_plan->mappings()[f.index];
        return what + " (child fd " + std::to_string(m.child_fd) + " from parent fd " +
               std::to_string(m.parent_fd) + ")";
      }
      return what;
    case Stage::kPathSearch:
      return "finding \"" + o.argv[0] + "\" in PATH=" + PathOf(o.env) +
             (o.root.empty() ? "" : " inside " + o.root);
    case Stage::kPathOnlyRelative:
      return "finding \"" + o.argv[0] + "\": it is only found as " +
             (f.index >= 0 && static_cast<std::size_t>(f.index) < p.candidates.size()
                  ? p.candidates[f.index]
                  : std::string("?")) +
             ", relative to the working directory; refusing to run it";
    case Stage::kExec:
      if (f.index >= 0 && static_cast<std::size_t>(f.index) < p.candidates.size()) {
        return what + " " + p.candidates[f.index];
      }
      return what + " " + o.argv[0];
    default:
      return what;
  }
}

std::string Hint(const SpawnOptions& o, const ChildFailure& f) {
  const int e = f.error;
  switch (f.stage) {
    case Stage::kSetGroups:
      if (e == EPERM) {
        std::string why;
        if (!CanSetGroups(&why)) return why;
        return "no CAP_SETGID";
      }
      break;
    case Stage::kSetGid:
    case Stage::kSetUid:
      if (e == EINVAL) return "the id is not mapped in this user namespace";
      if (e == EPERM) return "running without CAP_SETUID/CAP_SETGID";
      break;
    case Stage::kChroot:
    case Stage::kChdirRoot:
      if (e == ENOENT) return "the root directory does not exist";
      break;
    case Stage::kChdirWorkdir:
      if (e == EACCES) return "the user cannot enter it";
      if (e == ENOENT) return "no such directory in the root";
      break;
    case Stage::kExec:
    case Stage::kPathSearch:
      if (e == ENOENT) return o.root.empty() ? "no such file" : "no such file in the root";
      if (e == EACCES) return "not executable, or a directory on the way is not searchable";
      if (e == ENOEXEC) return "not an executable format this kernel can run";
      break;
    case Stage::kSeccomp:
      if (e == EACCES) return "installing a filter without no_new_privs needs CAP_SYS_ADMIN";
      break;
    case Stage::kMountPrivate:
    case Stage::kMount:
    case Stage::kPivotRoot:
    case Stage::kBindRoot:
      if (e == EPERM) return "no CAP_SYS_ADMIN in this mount namespace's user namespace";
      break;
    default:
      break;
  }
  return "";
}

Error ChildError(const SpawnOptions& o, const Prepared& p, const ChildFailure& f) {
  Error e(Describe(o, p, f), f.error);
  std::string hint = Hint(o, f);
  if (!hint.empty()) e.SetHint(hint);
  return e;
}

Error CloneError(int err, int namespaces) {
  Error e("starting the process (clone)", err);
  if (err == EPERM && namespaces)
    e.SetHint("creating namespaces needs privilege: are user namespaces enabled?");
  if (err == EINVAL && (namespaces & CLONE_NEWUSER))
    e.SetHint("the kernel refused this namespace combination");
  return e;
}

Result<void> WriteProcFile(pid_t pid, const char* name, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("opening " + path);
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoError("writing " + path);
  }
  return Ok{};
}

std::string MapText(const std::vector<IdMap>& maps) {
  std::string s;
  for (const IdMap& m : maps) {
    s += std::to_string(m.inside) + " " + std::to_string(m.outside) + " " +
         std::to_string(m.count) + "\n";
  }
  return s;
}

}  // namespace

bool CanSetGroups(std::string* why) {
  std::ifstream f("/proc/self/setgroups");
  std::string s;
  if (f >> s && s == "deny") {
    *why = "setgroups is denied in this user namespace";
    return false;
  }
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0 || !(data[0].effective & (1u << CAP_SETGID))) {
    *why = "no CAP_SETGID in this user namespace";
    return false;
  }
  return true;
}

std::string ExitStatus::ToString() const {
  std::string s =
      signal ? "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")"
             : "exit code " + std::to_string(code);
  return timed_out ? s + " after the time limit" : s;
}

Result<Process> Spawn(const SpawnOptions& o) {
  SLIPWAY_RETURN_IF_ERROR(Validate(o));
  SLIPWAY_ASSIGN_OR_RETURN(GroupsMode groups_mode, PreflightGroups(o));
  const bool pidns = o.namespaces & CLONE_NEWPID;
  const bool userns = o.namespaces & CLONE_NEWUSER;

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoError("creating the status pipe");
  UniqueFd status_read(pipefd[0]), status_write(pipefd[1]);
  SLIPWAY_ASSIGN_OR_RETURN(std::unique_ptr<Prepared> p,
                           Prepare(o, groups_mode, status_write.get()));
  ChildPlan& plan = p->plan;

  std::vector<FdMapping> fds = o.fds;
  UniqueFd plan_memfd, own_exe;
  std::string reaper_fd_arg;
  std::vector<char*> reaper_argv;
  char* empty_env[] = {nullptr};
  if (pidns) {
    int exe = g_self_exe_fd;
    if (exe < 0) {
      own_exe.Reset(open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
      if (!own_exe.valid()) return ErrnoError("opening /proc/self/exe to start the reaper");
      exe = own_exe.get();
    }
    plan_memfd.Reset(
        static_cast<int>(memfd_create("slipway-reaper-plan", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
    if (!plan_memfd.valid()) return ErrnoError("creating the reaper's plan memfd");
    const std::string text = SerializeForReaper(o, groups_mode);
    if (write(plan_memfd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        fcntl(plan_memfd.get(), F_ADD_SEALS,
              F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
      return ErrnoError("writing the reaper's plan");
    }
    int highest = 2;
    for (const FdMapping& m : o.fds) highest = std::max(highest, m.child_fd);
    const int plan_fd = highest + 1;
    fds.push_back({plan_fd, plan_memfd.get()});
    fds.push_back({plan_fd + 1, status_write.get()});
    reaper_fd_arg = std::to_string(plan_fd);
    reaper_argv = {const_cast<char*>(kReaperArgv0), reaper_fd_arg.data(), nullptr};
    plan.parts = ChildPlan::kPrelude;
    plan.fds_in_prelude = true;
    plan.exec = ExecPlan{};
    plan.exec.exec_fd = exe;
    plan.exec.argv = reaper_argv.data();
    plan.exec.envp = empty_env;
  }
  SLIPWAY_ASSIGN_OR_RETURN(p->fd_plan, MakeFdPlan(fds, {status_write.get(), plan.exec.exec_fd}));
  plan.fds = &*p->fd_plan;

  UniqueFd sync_read, sync_write;
  if (userns) {
    int s[2];
    if (pipe2(s, O_CLOEXEC) != 0) return ErrnoError("creating the id-map sync pipe");
    sync_read.Reset(s[0]);
    sync_write.Reset(s[1]);
    plan.sync_fd = sync_read.get();
    plan.sync_write_fd = sync_write.get();
  }

  void* stack = mmap(nullptr, kChildStackSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return ErrnoError("allocating the child's stack");

  // ---- From here until the child has exec'd, it shares our memory (CLONE_VM): it runs only
  // ---- child.cc's raw-syscall stages on the plan prepared above. All signals stay blocked
  // ---- across the clone so no handler of ours can run in it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pidfd = -1;
  const int flags = o.namespaces | CLONE_PIDFD | SIGCHLD | (userns ? 0 : (CLONE_VM | CLONE_VFORK));
  pid_t pid = clone(ChildEntry, static_cast<char*>(stack) + kChildStackSize, flags, &plan, &pidfd);
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kChildStackSize);
  if (pid < 0) return CloneError(clone_errno, o.namespaces);
  UniqueFd pidfd_owner(pidfd);
  status_write.Reset();
  sync_read.Reset();

  auto reap = [&]() {
    siginfo_t info;
    while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED) != 0 && errno == EINTR) {
    }
  };

  std::optional<Error> map_error;
  if (userns) {
    // The child waits on the sync pipe; write its maps, then let it go (or close the pipe: EPIPE).
    auto r = WriteProcFile(pid, "uid_map", MapText(o.uid_map));
    if (r.ok()) {
      auto s = WriteProcFile(pid, "setgroups", o.userns_allow_setgroups ? "allow" : "deny");
      if (!s.ok() && s.error().errno_value() != ENOENT) r = s;
    }
    if (r.ok()) r = WriteProcFile(pid, "gid_map", MapText(o.gid_map));
    if (r.ok()) {
      const char one = 1;
      if (write(sync_write.get(), &one, 1) != 1) r = ErrnoError("releasing the child");
    }
    if (!r.ok()) map_error = std::move(r).error();
    sync_write.Reset();
  }

  ChildFailure failure;
  std::size_t got = 0;
  while (got < sizeof(failure)) {
    ssize_t n =
        read(status_read.get(), reinterpret_cast<char*>(&failure) + got, sizeof(failure) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (map_error) {
    reap();
    map_error->AddContext("writing the user namespace id maps");
    return std::move(*map_error);
  }
  if (got == sizeof(failure)) {
    reap();
    return ChildError(o, *p, failure);
  }
  if (got != 0) {
    reap();
    return Error("the child reported a truncated failure record", EPIPE);
  }
  const bool kill_group = !pidns && (o.new_session || o.new_process_group);
  return Process(pid, std::move(pidfd_owner), kill_group);
}

// ---- Process --------------------------------------------------------------------------------

Process::~Process() {
  if (done_ || pid_ <= 0 || !pidfd_.valid()) return;
  syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  KillRest();
  siginfo_t info;
  while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
}

void Process::KillRest() {
  if (kill_group_) kill(-pid_, SIGKILL);  // ESRCH: nothing left, fine
}

Result<void> Process::Signal(int sig) {
  if (done_) return Error("signalling pid " + std::to_string(pid_) + ": already waited for", ESRCH);
  if (syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0) {
    return ErrnoError("signalling pid " + std::to_string(pid_));
  }
  return Ok{};
}

Result<ExitStatus> Process::Wait(std::optional<std::chrono::milliseconds> timeout) {
  if (done_)
    return Error("waiting for pid " + std::to_string(pid_) + ": already waited for", ECHILD);
  ExitStatus st;
  if (timeout) {
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + *timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      int r = poll(&pfd, 1, static_cast<int>(std::max<long>(0, left.count())));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoError("waiting for pid " + std::to_string(pid_));
      if (r == 0) {
        st.timed_out = true;
        syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
        KillRest();
      }
      break;
    }
  }
  siginfo_t info{};
  while (waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED) != 0) {
    if (errno != EINTR) return ErrnoError("waiting for pid " + std::to_string(pid_));
  }
  done_ = true;
  KillRest();
  if (info.si_code == CLD_EXITED) {
    st.code = info.si_status;
  } else {
    st.signal = info.si_status;
  }
  return st;
}

// ---- The reaper (pid 1 of a step's pid namespace) -------------------------------------------

namespace {

[[noreturn]] void ReaperMain(int plan_fd) {
  const int status_fd = plan_fd + 1;
  struct stat st;
  std::string text;
  if (fstat(plan_fd, &st) == 0 && st.st_size > 0) {
    text.resize(st.st_size);
    if (pread(plan_fd, text.data(), text.size(), 0) != st.st_size) text.clear();
  }
  close(plan_fd);
  ReaperPlan rp;
  if (!Deserialize(text, &rp)) ReportAndExit(status_fd, Stage::kExec, -EINVAL, -1);
  auto prepared = Prepare(rp.options, rp.groups_mode, status_fd);
  if (!prepared.ok()) ReportAndExit(status_fd, Stage::kExec, -EINVAL, -1);
  ChildPlan& c = (*prepared)->plan;
  sock_fprog fprog{static_cast<unsigned short>(rp.seccomp.size()), rp.seccomp.data()};
  c.seccomp = rp.seccomp.empty() ? nullptr : &fprog;

  // The root is set up here, in pid 1, so the reaper itself sees only the image from now on.
  c.parts = ChildPlan::kRootSetup;
  RunChild(&c);
  // The step must not be able to ptrace its own init.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (int s : kForwardedSignals) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) ReportAndExit(status_fd, Stage::kSignals, -errno, -1);
  fcntl(status_fd, F_SETFD, FD_CLOEXEC);  // the command's copy closes at its exec

  const pid_t reaper_pid = getpid();
  pid_t cmd = fork();
  if (cmd < 0) ReportAndExit(status_fd, Stage::kExec, -errno, -1);
  if (cmd == 0) {
    c.parts = ChildPlan::kPrelude | ChildPlan::kIdentityAndExec;
    c.setsid = c.setpgid = false;
    c.sync_fd = -1;
    c.sync_write_fd = -1;
    c.fds = nullptr;  // the fds were arranged before the reaper started
    c.parent_pid = reaper_pid;
    RunChild(&c);
    _exit(127);
  }
  close(status_fd);
  for (;;) {
    signalfd_siginfo si;
    if (read(sfd, &si, sizeof(si)) != sizeof(si)) continue;
    if (si.ssi_signo != SIGCHLD) {
      kill(cmd, static_cast<int>(si.ssi_signo));
      continue;
    }
    int wst;
    pid_t w;
    while ((w = waitpid(-1, &wst, WNOHANG)) > 0) {
      if (w != cmd) continue;  // an orphan: reaped, nothing more
      // Exiting as pid 1 makes the kernel kill everything else the step left running.
      _exit(WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst));
    }
  }
}

// Runs before main() in every binary that links the spawn library: opens our own executable for
// later re-execution, and becomes the reaper when started as one. Only a sealed memfd (which a
// user cannot produce by typing arguments) is accepted as the plan.
__attribute__((constructor)) void SpawnStartupHook(int argc, char** argv, char**) {
  if (argc == 2 && argv && std::strcmp(argv[0], kReaperArgv0) == 0) {
    char* end = nullptr;
    long fd = std::strtol(argv[1], &end, 10);
    if (end && *end == '\0' && fd > 2 && fd < 65536) {
      int seals = fcntl(static_cast<int>(fd), F_GET_SEALS);
      if (seals >= 0 && (seals & F_SEAL_WRITE)) ReaperMain(static_cast<int>(fd));
    }
  }
  g_self_exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
}

}  // namespace

Result<void> UseReaperImage(std::string_view elf) {
  UniqueFd fd(static_cast<int>(memfd_create("slipway-reaper", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!fd.valid()) return ErrnoError("creating a memfd for the reaper");
  for (std::size_t off = 0; off < elf.size();) {
    ssize_t w = write(fd.get(), elf.data() + off, elf.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return ErrnoError("writing the reaper image");
    off += static_cast<std::size_t>(w);
  }
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return ErrnoError("sealing the reaper image");
  }
  if (g_self_exe_fd >= 0) close(g_self_exe_fd);
  g_self_exe_fd = fd.Release();
  return Ok{};
}

}  // namespace slipway::executor
