// An SSH agent for RUN --mount=type=ssh: a new unix socket, owned and moded as the mount asks,
// whose connections are forwarded to the agent socket given with --ssh. Steps never see the
// host's socket (its path, owner or mode), only this one, bind-mounted at the mount's target.
//
//   SLIPWAY_ASSIGN_OR_RETURN(auto proxy, AgentProxy::Start(agent, scratch + "/ssh-0", 0, 0, 0600));
//   ... run the step ...   // the proxy lives as long as the step
//
// One thread forwards every connection (poll); a connection ends when either side closes it.
// Destroying the proxy stops the thread and closes every fd.
#ifndef SLIPWAY_EXECUTOR_AGENT_PROXY_H_
#define SLIPWAY_EXECUTOR_AGENT_PROXY_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/unique_fd.h"

namespace slipway::executor {

class AgentProxy {
 public:
  // Refuses an `agent` that is not a socket, or that nothing answers on.
  static Result<std::unique_ptr<AgentProxy>> Start(const std::string& agent,
                                                   const std::string& listen_path, uid_t uid,
                                                   gid_t gid, mode_t mode);
  ~AgentProxy();
  AgentProxy(const AgentProxy&) = delete;
  AgentProxy& operator=(const AgentProxy&) = delete;

 private:
  AgentProxy(std::string agent, UniqueFd listener, UniqueFd stop);
  void Serve();

  std::string agent_;
  UniqueFd listener_;
  UniqueFd stop_;  // an eventfd: written to stop the thread
  std::thread thread_;
};

// Connects to the unix socket at `path` (an error naming it otherwise).
Result<UniqueFd> ConnectUnix(const std::string& path);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_AGENT_PROXY_H_
