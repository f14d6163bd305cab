#include "executor/seccomp.h"

#include <linux/sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace slipway::executor {

// Owns a libseccomp context; turns rules into a SeccompProgram.
class SeccompBuilder {
 public:
  explicit SeccompBuilder(std::uint32_t default_action) : ctx_(seccomp_init(default_action)) {}
  ~SeccompBuilder() {
    if (ctx_) seccomp_release(ctx_);
  }
  SeccompBuilder(const SeccompBuilder&) = delete;
  SeccompBuilder& operator=(const SeccompBuilder&) = delete;

  bool ok() const { return ctx_ != nullptr; }

  // Adds the architectures a native x86_64 kernel also runs (32-bit and x32 binaries), so an
  // image's 32-bit tools are filtered rather than killed as a "bad architecture".
  Result<void> AddCompatArches() {
    if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
      for (std::uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
        int r = seccomp_arch_add(ctx_, arch);
        if (r < 0 && r != -EEXIST) return Error("seccomp: adding a compat architecture", -r);
      }
    }
    return Ok{};
  }

  Result<void> AddArch(const std::string& name) {
    std::uint32_t arch = seccomp_arch_resolve_name(name.c_str());
    if (arch == 0) return Ok{};  // an architecture this libseccomp does not know: not ours
    int r = seccomp_arch_add(ctx_, arch);
    if (r < 0 && r != -EEXIST) return Error("seccomp: adding architecture " + name, -r);
    return Ok{};
  }

  // Returns false (and no error) for a syscall name this kernel/libseccomp does not know.
  Result<bool> Add(std::uint32_t action, const std::string& name,
                   const std::vector<scmp_arg_cmp>& args) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) return false;
    int r = seccomp_rule_add_array(ctx_, action, nr, static_cast<unsigned>(args.size()),
                                   args.empty() ? nullptr : args.data());
    if (r == -EACCES) return false;  // the same as the default action: nothing to add
    if (r < 0) return Error("seccomp: adding a rule for " + name, -r);
    return true;
  }

  Result<SeccompProgram> Export() {
    int fd = static_cast<int>(memfd_create("slipway-seccomp", MFD_CLOEXEC));
    if (fd < 0) return ErrnoError("seccomp: creating a memfd for the BPF program");
    int r = seccomp_export_bpf(ctx_, fd);
    if (r < 0) {
      close(fd);
      return Error("seccomp: exporting the BPF program", -r);
    }
    off_t size = lseek(fd, 0, SEEK_END);
    std::vector<sock_filter> filter(size / sizeof(sock_filter));
    ssize_t n = pread(fd, filter.data(), filter.size() * sizeof(sock_filter), 0);
    close(fd);
    if (size <= 0 || size % sizeof(sock_filter) != 0 || n != size) {
      return Error("seccomp: the exported BPF program is malformed", EINVAL);
    }
    if (filter.size() > BPF_MAXINSNS) {
      return Error("seccomp: the program has " + std::to_string(filter.size()) +
                       " instructions; the kernel accepts at most " + std::to_string(BPF_MAXINSNS),
                   E2BIG);
    }
    SeccompProgram p;
    p.filter_ = std::move(filter);
    p.fprog_ = {static_cast<unsigned short>(p.filter_.size()), p.filter_.data()};
    return p;
  }

 private:
  scmp_filter_ctx ctx_;
};

namespace {

const char* const kDeniedSyscalls[] = {
    // kernel code, modules, power
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "uselib",
    // swap, accounting, quotas, clocks
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "quotactl_fd",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "settimeofday",
    "adjtimex",
    "stime",
    // the kernel keyring, bpf, perf, userfaultfd, handles
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "nfsservctl",
    // mounts and namespaces inside the step
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // raw I/O and legacy
    "iopl",
    "ioperm",
    "vm86",
    "vm86old",
    "_sysctl",
    "sysfs",
    "ustat",
    "syslog",
};

// clone(2)'s namespace flags; CLONE_NEWTIME (0x80) is left out: for clone it overlaps the exit
// signal byte, and only clone3/unshare can ask for a time namespace.
const std::uint64_t kCloneNamespaceFlags[] = {CLONE_NEWNS,    CLONE_NEWUTS, CLONE_NEWIPC,
                                              CLONE_NEWUSER,  CLONE_NEWPID, CLONE_NEWNET,
                                              CLONE_NEWCGROUP};

std::string Where(const std::string& file, const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return file;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

Result<std::uint32_t> ParseAction(const std::string& file, const YAML::Node& node,
                                  std::uint32_t errno_ret) {
  const std::string a = node.as<std::string>();
  if (a == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (a == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_ret);
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (a == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (a == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (a == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (a == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(errno_ret);
  return Error(Where(file, node) + ": unknown seccomp action \"" + a + "\"", EINVAL);
}

Result<scmp_compare> ParseOp(const std::string& file, const YAML::Node& node) {
  const std::string op = node.as<std::string>();
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return Error(Where(file, node) + ": unknown seccomp comparison \"" + op + "\"", EINVAL);
}

// "5.10.0-foo" >= "4.8"?
bool KernelAtLeast(const std::string& want) {
  utsname u;
  if (uname(&u) != 0) return false;
  int have_major = 0, have_minor = 0, want_major = 0, want_minor = 0;
  std::sscanf(u.release, "%d.%d", &have_major, &have_minor);
  std::sscanf(want.c_str(), "%d.%d", &want_major, &want_minor);
  return have_major > want_major || (have_major == want_major && have_minor >= want_minor);
}

std::string NativeArchName() {
  const char* n =
      seccomp_arch_resolve_name("x86_64") == seccomp_arch_native() ? "x86_64" : "aarch64";
  return n;
}

std::string ArchName(std::string s) {  // "SCMP_ARCH_X86_64" -> "x86_64"
  if (s.rfind("SCMP_ARCH_", 0) == 0) s = s.substr(10);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Whether a rule's includes/excludes let it apply here.
bool Applies(const YAML::Node& rule, const std::set<std::string>& caps) {
  if (const YAML::Node inc = rule["includes"]) {
    if (const YAML::Node arches = inc["arches"]; arches && arches.size() > 0) {
      bool found = false;
      for (const auto& a : arches) found |= ArchName(a.as<std::string>()) == NativeArchName();
      if (!found) return false;
    }
    if (const YAML::Node cs = inc["caps"]) {
      for (const auto& c : cs) {
        if (!caps.count(c.as<std::string>())) return false;
      }
    }
    if (const YAML::Node k = inc["minKernel"]; k && !KernelAtLeast(k.as<std::string>())) {
      return false;
    }
  }
  if (const YAML::Node exc = rule["excludes"]) {
    if (const YAML::Node arches = exc["arches"]) {
      for (const auto& a : arches) {
        if (ArchName(a.as<std::string>()) == NativeArchName()) return false;
      }
    }
    if (const YAML::Node cs = exc["caps"]) {
      for (const auto& c : cs) {
        if (caps.count(c.as<std::string>())) return false;
      }
    }
    if (const YAML::Node k = exc["minKernel"]; k && KernelAtLeast(k.as<std::string>())) {
      return false;
    }
  }
  return true;
}

Result<SeccompProgram> BuildFromProfile(const YAML::Node& root, const std::string& file,
                                        const std::set<std::string>& caps) {
  if (!root.IsMap()) return Error(file + ": a seccomp profile must be a JSON object", EINVAL);
  const YAML::Node def = root["defaultAction"];
  if (!def) return Error(file + ": the profile has no \"defaultAction\"", EINVAL);
  std::uint32_t default_errno = EPERM;
  if (const YAML::Node e = root["defaultErrnoRet"]) default_errno = e.as<std::uint32_t>();
  SLIPWAY_ASSIGN_OR_RETURN(std::uint32_t default_action, ParseAction(file, def, default_errno));
  SeccompBuilder b(default_action);
  if (!b.ok()) return Error(file + ": seccomp_init failed", ENOMEM);
  if (const YAML::Node arches = root["architectures"]) {
    for (const auto& a : arches) SLIPWAY_RETURN_IF_ERROR(b.AddArch(ArchName(a.as<std::string>())));
  } else {
    SLIPWAY_RETURN_IF_ERROR(b.AddCompatArches());
  }
  if (const YAML::Node rules = root["syscalls"]) {
    if (!rules.IsSequence())
      return Error(Where(file, rules) + ": \"syscalls\" must be a list", EINVAL);
    for (const YAML::Node& rule : rules) {
      if (!Applies(rule, caps)) continue;
      std::vector<std::string> names;
      if (const YAML::Node n = rule["names"]) {
        for (const auto& x : n) names.push_back(x.as<std::string>());
      }
      if (const YAML::Node n = rule["name"]) names.push_back(n.as<std::string>());
      if (names.empty()) return Error(Where(file, rule) + ": a rule names no syscall", EINVAL);
      const YAML::Node action_node = rule["action"];
      if (!action_node) return Error(Where(file, rule) + ": a rule has no \"action\"", EINVAL);
      std::uint32_t errno_ret = default_errno;
      if (const YAML::Node e = rule["errnoRet"]) errno_ret = e.as<std::uint32_t>();
      SLIPWAY_ASSIGN_OR_RETURN(std::uint32_t action, ParseAction(file, action_node, errno_ret));
      std::vector<scmp_arg_cmp> args;
      if (const YAML::Node as = rule["args"]) {
        for (const YAML::Node& a : as) {
          scmp_arg_cmp cmp{};
          cmp.arg = a["index"].as<unsigned>();
          if (cmp.arg > 5) return Error(Where(file, a) + ": argument index above 5", EINVAL);
          SLIPWAY_ASSIGN_OR_RETURN(cmp.op, ParseOp(file, a["op"]));
          cmp.datum_a = a["value"].as<std::uint64_t>();
          cmp.datum_b = a["valueTwo"] ? a["valueTwo"].as<std::uint64_t>() : 0;
          args.push_back(cmp);
        }
      }
      for (const std::string& name : names) {
        auto added = b.Add(action, name, args);
        if (!added.ok()) return std::move(added.error().AddContext(Where(file, rule)));
      }
    }
  }
  return b.Export();
}

}  // namespace

Result<SeccompProgram> SeccompProgram::Default() {
  SeccompBuilder b(SCMP_ACT_ALLOW);
  if (!b.ok()) return Error("seccomp: seccomp_init failed", ENOMEM);
  SLIPWAY_RETURN_IF_ERROR(b.AddCompatArches());
  for (const char* name : kDeniedSyscalls) {
    SLIPWAY_RETURN_IF_ERROR(b.Add(SCMP_ACT_ERRNO(EPERM), name, {}));
  }
  for (std::uint64_t flag : kCloneNamespaceFlags) {
    SLIPWAY_RETURN_IF_ERROR(
        b.Add(SCMP_ACT_ERRNO(EPERM), "clone", {SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)}));
  }
  SLIPWAY_RETURN_IF_ERROR(b.Add(SCMP_ACT_ERRNO(ENOSYS), "clone3", {}));
  return b.Export();
}

Result<SeccompProgram> SeccompProgram::FromProfile(const std::string& text, const std::string& file,
                                                   const std::set<std::string>& caps) {
  try {
    return BuildFromProfile(YAML::Load(text), file, caps);
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports with exceptions; they stop here and become an Error naming the place.
    return Error(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                     std::to_string(e.mark.column + 1) + ": " + e.msg,
                 EINVAL);
  }
}

Result<SeccompProgram> SeccompProgram::FromProfileFile(const std::string& path,
                                                       const std::set<std::string>& caps) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("reading seccomp profile " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return FromProfile(ss.str(), path, caps);
}

}  // namespace slipway::executor
