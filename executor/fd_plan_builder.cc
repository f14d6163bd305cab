#include "executor/fd_plan_builder.h"

#include <algorithm>
#include <cerrno>
#include <string>

namespace slipway::executor {

Result<FdPlan> MakeFdPlan(std::vector<FdMapping> mappings, std::vector<int> reserved) {
  std::sort(mappings.begin(), mappings.end(),
            [](const FdMapping& a, const FdMapping& b) { return a.child_fd < b.child_fd; });
  int highest = 2;
  for (int fd : reserved) highest = std::max(highest, fd);
  for (std::size_t i = 0; i < mappings.size(); ++i) {
    const FdMapping& m = mappings[i];
    if (m.child_fd < 0 || m.parent_fd < 0) {
      return Error("fd mapping " + std::to_string(m.child_fd) + " <- " +
                       std::to_string(m.parent_fd) + ": fd numbers must not be negative",
                   EBADF);
    }
    if (i > 0 && mappings[i - 1].child_fd == m.child_fd) {
      return Error("child fd " + std::to_string(m.child_fd) + " is mapped twice", EINVAL);
    }
    highest = std::max({highest, m.child_fd, m.parent_fd});
  }
  return FdPlan(std::move(mappings), highest + 1);
}

}  // namespace slipway::executor
