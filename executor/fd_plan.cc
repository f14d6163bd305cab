#include "executor/fd_plan.h"

#include <algorithm>
#include <cerrno>

namespace slipway::executor {

bool FdPlan::IsTarget(int fd) const {
  auto it = std::lower_bound(mappings_.begin(), mappings_.end(), fd,
                             [](const FdMapping& m, int v) { return m.child_fd < v; });
  return it != mappings_.end() && it->child_fd == fd;
}

int FdPlan::Apply(FdOps& ops, int* reserved, int count, int* failed_index) const {
  *failed_index = -1;
  // Pass 1: lift everything that would be overwritten out of the way.
  for (int r = 0; r < count; ++r) {
    if (reserved[r] >= 0 && IsTarget(reserved[r])) {
      int moved = ops.DupAbove(reserved[r], first_free_);
      if (moved < 0) return moved;
      reserved[r] = moved;
    }
  }
  for (std::size_t i = 0; i < mappings_.size(); ++i) {
    const FdMapping& m = mappings_[i];
    scratch_[i] = m.parent_fd;
    if (m.parent_fd != m.child_fd && IsTarget(m.parent_fd)) {
      int moved = ops.DupAbove(m.parent_fd, first_free_);
      if (moved < 0) {
        *failed_index = static_cast<int>(i);
        return moved;
      }
      scratch_[i] = moved;
    }
  }
  // Pass 2: put every source on its number.
  for (std::size_t i = 0; i < mappings_.size(); ++i) {
    const int child = mappings_[i].child_fd;
    int r = scratch_[i] == child ? ops.ClearCloexec(child) : ops.DupTo(scratch_[i], child);
    if (r < 0) {
      *failed_index = static_cast<int>(i);
      return r;
    }
  }
  // Pass 3: everything else closes at exec.
  unsigned next = 0;
  for (const FdMapping& m : mappings_) {
    const unsigned c = static_cast<unsigned>(m.child_fd);
    if (c > next) {
      int r = ops.CloexecRange(next, c - 1);
      if (r < 0) return r;
    }
    next = c + 1;
  }
  return ops.CloexecRange(next, ~0u);
}

}  // namespace slipway::executor
