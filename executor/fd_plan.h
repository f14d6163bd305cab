// FdPlan: which parent fd becomes which child fd, as a pure algorithm.
//
// The caller asks for any child fd from any parent fd (fan-out, cycles and clashes allowed); every
// other fd must be closed when the command starts. The plan is built and validated in the parent
// (allocation allowed); Apply() runs in the child and performs only the primitive operations of
// FdOps -- raw syscalls in the real child, a recording fake in tests -- without allocating:
//
//   1. every fd that must survive (a source, or the status pipe) but sits on a number some mapping
//      will overwrite is first copied above every number in use (close-on-exec copies);
//   2. each mapping is made with dup3 (not close-on-exec), or by clearing close-on-exec when the
//      source already has the right number;
//   3. every other number is marked close-on-exec (close_range(CLOSE_RANGE_CLOEXEC)), so the
//      status pipe keeps working until exec and everything else disappears at exec.
//
// Guarantees: Apply() allocates nothing and calls only FdOps. This target depends on nothing that
// allocates on its own; MakeFdPlan() (fd_plan_builder.h, parent side) validates and builds plans.
#ifndef SLIPWAY_EXECUTOR_FD_PLAN_H_
#define SLIPWAY_EXECUTOR_FD_PLAN_H_

#include <vector>

namespace slipway::executor {

struct FdMapping {
  int child_fd;
  int parent_fd;
};

// The primitive fd operations. Each returns >= 0 on success or -errno.
class FdOps {
 public:
  virtual ~FdOps() = default;
  // fcntl(fd, F_DUPFD_CLOEXEC, min_fd): the new fd.
  virtual int DupAbove(int fd, int min_fd) = 0;
  // dup3(from, to, 0): `to` now refers to `from`'s file, not close-on-exec.
  virtual int DupTo(int from, int to) = 0;
  // fcntl(fd, F_SETFD, 0).
  virtual int ClearCloexec(int fd) = 0;
  // Marks every open fd in [lo, hi] close-on-exec.
  virtual int CloexecRange(unsigned lo, unsigned hi) = 0;
};

class FdPlan {
 public:
  FdPlan() = default;
  // `mappings` sorted by child fd with no duplicates; `first_free` above every fd involved. Use
  // MakeFdPlan(), which checks both.
  FdPlan(std::vector<FdMapping> mappings, int first_free)
      : mappings_(std::move(mappings)), scratch_(mappings_.size(), -1), first_free_(first_free) {}

  // Runs in the child. `reserved[0..count)` are updated where a reserved fd had to move. On
  // failure returns -errno and sets *failed_index to the mapping being made (or -1 otherwise).
  int Apply(FdOps& ops, int* reserved, int count, int* failed_index) const;

  const std::vector<FdMapping>& mappings() const { return mappings_; }
  // The lowest fd number above every number the plan touches.
  int first_free_fd() const { return first_free_; }

 private:
  bool IsTarget(int fd) const;

  std::vector<FdMapping> mappings_;   // sorted by child_fd
  mutable std::vector<int> scratch_;  // sized up front; written only by Apply
  int first_free_ = 3;
};

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_FD_PLAN_H_
