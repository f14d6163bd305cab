// MakeFdPlan: validates fd mappings and builds an FdPlan (parent side; allocates).
#ifndef SLIPWAY_EXECUTOR_FD_PLAN_BUILDER_H_
#define SLIPWAY_EXECUTOR_FD_PLAN_BUILDER_H_

#include <vector>

#include "base/result.h"
#include "executor/fd_plan.h"

namespace slipway::executor {

// `reserved` are fds the child needs until exec (the status pipe, the fd it execs), or -1.
// Rejects duplicate child fds and negative numbers.
Result<FdPlan> MakeFdPlan(std::vector<FdMapping> mappings, std::vector<int> reserved);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_FD_PLAN_BUILDER_H_
