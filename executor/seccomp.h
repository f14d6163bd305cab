// Seccomp programs for build steps, compiled in the parent to classic BPF.
//
// libseccomp builds the filter and exports it as BPF here, in the parent; the child installs the
// finished program with one raw seccomp(2) call (libseccomp's own load step allocates, so it
// cannot run after clone).
//
//   auto prog = SeccompProgram::Default();                  // Slipway's default for RUN steps
//   auto custom = SeccompProgram::FromProfileFile("p.json");  // Docker's JSON format (YAML too)
//   spawn_options.seccomp = &*prog;
//
// The default allows everything except what a build step has no business doing -- loading kernel
// code or modules, rebooting, swap, the kernel keyring, bpf, perf events, userfaultfd,
// open_by_handle_at, mounting or entering/creating namespaces, setting clocks, accounting, quotas,
// raw port I/O -- which fail with EPERM. clone3 fails with ENOSYS (its flags cannot be inspected,
// so callers fall back to clone, whose namespace flags are then refused with EPERM).
//
// Guarantees: allocates (parent side only); the program is immutable once built.
#ifndef SLIPWAY_EXECUTOR_SECCOMP_H_
#define SLIPWAY_EXECUTOR_SECCOMP_H_

#include <linux/filter.h>

#include <set>
#include <string>
#include <vector>

#include "base/result.h"

namespace slipway::executor {

class SeccompProgram {
 public:
  // Slipway's default profile for RUN steps.
  static Result<SeccompProgram> Default();
  // A profile in Docker's JSON seccomp format (defaultAction, defaultErrnoRet, syscalls[] with
  // names, action, errnoRet, args, includes/excludes by arch, caps and minKernel). `caps` are the
  // capabilities the step has, for includes/excludes. Read with yaml-cpp, so YAML works too.
  static Result<SeccompProgram> FromProfile(const std::string& text, const std::string& file,
                                            const std::set<std::string>& caps = {});
  static Result<SeccompProgram> FromProfileFile(const std::string& path,
                                                const std::set<std::string>& caps = {});

  // The program for seccomp(SECCOMP_SET_MODE_FILTER); valid while this object lives.
  const sock_fprog* fprog() const { return &fprog_; }
  std::size_t instruction_count() const { return filter_.size(); }

  SeccompProgram(SeccompProgram&& o) noexcept { *this = std::move(o); }
  SeccompProgram& operator=(SeccompProgram&& o) noexcept {
    filter_ = std::move(o.filter_);
    fprog_ = {static_cast<unsigned short>(filter_.size()), filter_.data()};
    return *this;
  }

 private:
  SeccompProgram() = default;
  std::vector<sock_filter> filter_;
  sock_fprog fprog_{};
  friend class SeccompBuilder;
};

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_SECCOMP_H_
