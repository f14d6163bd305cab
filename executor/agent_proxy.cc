#include "executor/agent_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace slipway::executor {
namespace {

// A unix socket address for `path`. A path longer than sun_path (a deep work directory) is
// reached through its directory's fd: /proc/self/fd/N/NAME.
struct SocketAddress {
  UniqueFd dir;  // held while the address is used
  sockaddr_un addr{};
};

Result<SocketAddress> Address(const std::string& path) {
  SocketAddress a;
  a.addr.sun_family = AF_UNIX;
  std::string use = path;
  if (path.size() >= sizeof(a.addr.sun_path)) {
    const std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) return Error("socket name \"" + path + "\" is too long", ENAMETOOLONG);
    a.dir.Reset(open(slash == 0 ? "/" : path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!a.dir.valid()) return ErrnoError("opening the directory of " + path);
    use = "/proc/self/fd/" + std::to_string(a.dir.get()) + "/" + path.substr(slash + 1);
  }
  if (use.empty() || use.size() >= sizeof(a.addr.sun_path)) {
    return Error("socket path \"" + path + "\" is empty or too long", ENAMETOOLONG);
  }
  std::memcpy(a.addr.sun_path, use.c_str(), use.size() + 1);
  return a;
}

// Copies what `from` has to `to`; false when the connection is over.
bool Pump(int from, int to) {
  char buf[65536];
  const ssize_t n = read(from, buf, sizeof(buf));
  if (n <= 0) return n < 0 && (errno == EINTR || errno == EAGAIN);
  for (ssize_t off = 0; off < n;) {
    const ssize_t w = send(to, buf + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += w;
  }
  return true;
}

}  // namespace

Result<UniqueFd> ConnectUnix(const std::string& path) {
  SLIPWAY_ASSIGN_OR_RETURN(SocketAddress a, Address(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("creating a socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a.addr), sizeof(a.addr)) != 0) {
    return ErrnoError("connecting to " + path);
  }
  return fd;
}

Result<std::unique_ptr<AgentProxy>> AgentProxy::Start(const std::string& agent,
                                                      const std::string& listen_path, uid_t uid,
                                                      gid_t gid, mode_t mode) {
  struct stat st;
  if (stat(agent.c_str(), &st) != 0) return ErrnoError("the SSH agent socket " + agent);
  if (!S_ISSOCK(st.st_mode)) return Error("the SSH agent " + agent + " is not a socket", ENOTSOCK);
  {
    auto probe = ConnectUnix(agent);  // fails now, not in the middle of the step
    if (!probe.ok()) return std::move(probe.error().AddContext("the SSH agent"));
  }
  SLIPWAY_ASSIGN_OR_RETURN(SocketAddress a, Address(listen_path));
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener.valid()) return ErrnoError("creating the SSH agent socket");
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&a.addr), sizeof(a.addr)) != 0) {
    return ErrnoError("creating the SSH agent socket " + listen_path);
  }
  if (chown(listen_path.c_str(), uid, gid) != 0 || chmod(listen_path.c_str(), mode) != 0) {
    const int e = errno;
    unlink(listen_path.c_str());
    return ErrnoError("setting the owner and mode of " + listen_path, e);
  }
  if (listen(listener.get(), 16) != 0) {
    const int e = errno;
    unlink(listen_path.c_str());
    return ErrnoError("listening on " + listen_path, e);
  }
  UniqueFd stop(eventfd(0, EFD_CLOEXEC));
  if (!stop.valid()) return ErrnoError("creating an eventfd");
  std::unique_ptr<AgentProxy> p(new AgentProxy(agent, std::move(listener), std::move(stop)));
  p->thread_ = std::thread([raw = p.get()] { raw->Serve(); });
  return p;
}

AgentProxy::AgentProxy(std::string agent, UniqueFd listener, UniqueFd stop)
    : agent_(std::move(agent)), listener_(std::move(listener)), stop_(std::move(stop)) {}

AgentProxy::~AgentProxy() {
  const std::uint64_t one = 1;
  (void)!write(stop_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void AgentProxy::Serve() {
  std::vector<std::pair<UniqueFd, UniqueFd>> links;  // (step side, agent side)
  for (;;) {
    std::vector<pollfd> fds = {{stop_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    for (const auto& [client, agent] : links) {
      fds.push_back({client.get(), POLLIN, 0});
      fds.push_back({agent.get(), POLLIN, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    std::vector<bool> closed(links.size(), false);
    for (std::size_t i = 0; i < links.size(); ++i) {
      const short c = fds[2 + 2 * i].revents, g = fds[3 + 2 * i].revents;
      if ((c && !Pump(links[i].first.get(), links[i].second.get())) ||
          (g && !Pump(links[i].second.get(), links[i].first.get()))) {
        closed[i] = true;
      }
    }
    for (std::size_t i = links.size(); i-- > 0;) {
      if (closed[i]) links.erase(links.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (fds[1].revents & POLLIN) {
      UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!client.valid()) continue;
      auto agent = ConnectUnix(agent_);
      if (!agent.ok()) continue;  // the step sees its connection closed
      links.emplace_back(std::move(client), std::move(*agent));
    }
  }
}

}  // namespace slipway::executor
